#!/usr/bin/env bash
# Runs every fuzz target for a bounded time. Usage: scripts/fuzz.sh BUILD SECONDS
# Corpora grow in a scratch copy, so a run never dirties the checkout; a crash
# leaves its input in the scratch dir, named in the output.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
seconds=${2:-300}
work=$(mktemp -d /tmp/bulwark-fuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT
failed=0
for target in config heartbeat records http; do
  seeds=tests/fuzz/corpus/$target
  mkdir -p "$work/$target" "$work/crash-$target"
  [[ -d $seeds ]] && cp -r "$seeds/." "$work/$target/"
  echo "== fuzz_$target for ${seconds}s"
  if ! "$build/bin/fuzz_$target" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$work/crash-$target/" "$work/$target" \
      > "$work/$target.log" 2>&1; then
    failed=1
    tail -40 "$work/$target.log"
    # Keep the crashing inputs where a developer can find them.
    mkdir -p /tmp/bulwark-fuzz-crashes && cp -r "$work/crash-$target" /tmp/bulwark-fuzz-crashes/
    echo "fuzz_$target FAILED; crashing inputs in /tmp/bulwark-fuzz-crashes/crash-$target"
  else
    grep -E "stat::number_of_executed_units|Done" "$work/$target.log" | tail -2
  fi
done
exit $failed
