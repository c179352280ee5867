#!/usr/bin/python3
"""The clock rule (src/core/env.h): outside src/sys and src/bin, code reads
time and sleeps through the Clock it is given, and takes randomness from
src/security, so that the simulation (tests/sim) can drive it with one seed.
This check fails on a direct call to the system's clock, sleeps or random
generators anywhere else in src/, unless ALLOWED names the file and the call
with the reason it may. An ALLOWED entry that no longer matches fails too,
so the list stays true.

Usage: scripts/check_clock_rule.py [SRC_DIR]   (exit 0: clean, 1: violations, 2: bad usage)
"""

import re
import sys
from pathlib import Path

# What counts as a direct call, and what to use instead.
RULES = [
    (r"(?<![.>\w])sleep_ms\s*\(", "sleep_ms(): use Clock::sleep_ms"),
    (r"\bmono_us\s*\(|\bmono_ms_now\s*\(", "the system's monotonic clock: use Clock::mono_ms"),
    (r"\b(steady_clock|system_clock|high_resolution_clock)\b", "std::chrono clocks: use Clock"),
    (r"\b(clock_gettime|gettimeofday|usleep|nanosleep)\s*\(", "a system clock call: use Clock"),
    (r"(?<![\w.>:])(sleep|time)\s*\(", "sleep()/time(): use Clock"),
    (r"\bsleep_(for|until)\b", "std::this_thread sleeps: use Clock::sleep_ms"),
    (r"\brandom_device\b|(?<![\w.>:])s?rand\s*\(|\bgetrandom\s*\(|/dev/u?random",
     "a random source: use random_u64() (src/security)"),
    (r"\b(mt19937(_64)?|minstd_rand0?|default_random_engine)\b",
     "a random engine: use random_u64() (src/security)"),
    (r"\bSystemClock\b", "the real clock: only an assembling process makes one"),
]

# (path under src/, rule pattern index) -> why this file may do it.
ALLOWED = {
    ("daemon/daemon.cc", 8): "bulwarkd assembles the real environment: the Daemon owns the "
                            "SystemClock it hands to every part",
    ("cli/resource_commands.cc", 8): "the CLI process waits in real time for the cluster "
                                     "(`resource ... --wait`); nothing in it is simulated",
    ("cli/dev_cluster.cc", 8): "`bulwark dev` starts and waits for real daemons in real time",
    ("proxy/worker.cc", 1): "the proxy's data plane reads the clock once per event-loop turn "
                            "for every session's timers; an injected Clock call per turn is "
                            "avoidable cost on the hot path, and the proxy is not simulated",
    ("proxy/http_session.cc", 1): "request timing for the access log and stats, on the hot "
                                  "path (microseconds, which Clock does not offer)",
    ("proxy/health_checker.cc", 1): "the proxy's health checker loop shares the data plane's "
                                    "clock reading (timers of its checks)",
    ("proxy/proxy.cc", 0): "a graceful stop polls the workers' open sessions until its grace "
                           "period ends; the proxy is not simulated",
    ("proxy/proxy.cc", 1): "the deadline of that graceful stop",
}


def code_of(text):
    """The text with comments and string literals blanked (line numbers kept)."""
    out = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    out = re.sub(r'"(\\.|[^"\\\n])*"', '""', out)
    return re.sub(r"//[^\n]*", "", out)


def main():
    src = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "src")
    if not (src / "core").is_dir():
        print(f"{src}: not the project's src/ directory (no core/ in it)", file=sys.stderr)
        return 2
    problems, used = [], set()
    for path in sorted(list(src.rglob("*.cc")) + list(src.rglob("*.h"))):
        rel = path.relative_to(src).as_posix()
        if rel.startswith(("sys/", "bin/")):
            continue
        for lineno, line in enumerate(code_of(path.read_text()).splitlines(), 1):
            for i, (pattern, advice) in enumerate(RULES):
                if not re.search(pattern, line):
                    continue
                # Declaring or defining Clock's own sleep_ms is no call.
                if i == 0 and re.search(r"\bvoid\s+sleep_ms\s*\(", line):
                    continue
                if (rel, i) in ALLOWED:
                    used.add((rel, i))
                    continue
                problems.append(f"src/{rel}:{lineno}: {advice}: {line.strip()}")
    for key in sorted(set(ALLOWED) - used):
        problems.append(f"scripts/check_clock_rule.py: ALLOWED entry {key} matches nothing; "
                        "remove it")
    for p in problems:
        print(p)
    if problems:
        print(f"clock rule: {len(problems)} problem(s) (see src/core/env.h)")
        return 1
    print("clock rule: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
