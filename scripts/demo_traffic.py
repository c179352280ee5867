#!/usr/bin/python3
"""Steady client traffic for `make demo`: a fresh HTTP GET to URL every
INTERVAL_MS until DURATION_S have passed (bounded), each answer or failure
recorded with its wall-clock time; then a JSON summary on stdout. The kill
time (wall ms) is read from KILL_FILE once the demo has written it, to tell
how long after the kill the service answered again."""

import argparse
import json
import time
import urllib.request
from pathlib import Path


def get(url, timeout_s):
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return r.read().decode(errors="replace").strip()
    except (OSError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--duration-s", type=float, default=12.0)
    ap.add_argument("--interval-ms", type=int, default=20)
    ap.add_argument("--kill-file", required=True)
    args = ap.parse_args()
    samples = []  # (wall ms, node or None)
    end = time.monotonic() + min(args.duration_s, 120.0)
    while time.monotonic() < end:
        t = time.time() * 1000
        samples.append((t, get(args.url, 0.5)))
        time.sleep(max(0.0, args.interval_ms / 1000 - (time.time() * 1000 - t) / 1000))
    kill_file = Path(args.kill_file)
    kill_ms = float(kill_file.read_text()) if kill_file.exists() else None
    served = [s for s in samples if s[1] is not None]
    failed = [s for s in samples if s[1] is None]
    summary = {"requests": len(samples), "served": len(served), "failed": len(failed),
               "by_node": {}, "failover_ms": None, "first_failure_after_kill_ms": None}
    for _, node in served:
        summary["by_node"][node] = summary["by_node"].get(node, 0) + 1
    if kill_ms is not None:
        after = [s for s in samples if s[0] >= kill_ms]
        failures = [s for s in after if s[1] is None]
        if failures:
            last_failure = failures[-1][0]
            recovered = next((s[0] for s in after if s[0] > last_failure and s[1]), None)
            summary["failover_ms"] = round(recovered - kill_ms) if recovered else None
            summary["first_failure_after_kill_ms"] = round(failures[0][0] - kill_ms)
        else:
            summary["failover_ms"] = 0
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
