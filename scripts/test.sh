#!/usr/bin/env bash
# Runs every test: unit tests of the normal and the sanitizer build, then the
# multi-process tests against the sanitizer build's binaries (so ASan/UBSan
# watch the real daemons too). Usage: scripts/test.sh BUILD_DIR ASAN_BUILD_DIR
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
asan=${2:-build-asan}
fuzz=${3:-}
jobs=$(nproc)
failed=0

echo "== the code's rules: the clock (src/core/env.h), no include cycle between src/ folders"
/usr/bin/python3 scripts/check_clock_rule.py || failed=1
/usr/bin/python3 scripts/check_layers.py || failed=1

echo "== unit tests ($build)"
(cd "$build" && ctest --output-on-failure -j "$jobs") || failed=1

echo "== unit tests under ASan+UBSan ($asan)"
(cd "$asan" && ctest --output-on-failure -j "$jobs") || failed=1

echo "== multi-process tests (bulwarkd, etcd, CLI from $asan)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
BULWARK_BIN_DIR="$(pwd)/$asan/bin" /usr/bin/python3 -m pytest -q -p no:cacheprovider --durations=8 tests/e2e
rc=$?
# pytest exits 5 when it collected nothing: that is a failure here.
[[ $rc -ne 0 ]] && failed=1

echo "== network-namespace tests (VIPs, the testbed; need root, skipped otherwise)"
BULWARK_BIN_DIR="$(pwd)/$asan/bin" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/netns
[[ $? -ne 0 ]] && failed=1

if [[ -n $fuzz ]]; then
  echo "== fuzzers, ${FUZZ_TEST_SECONDS:-20}s each (make fuzz runs them longer)"
  bash scripts/fuzz.sh "$fuzz" "${FUZZ_TEST_SECONDS:-20}" || failed=1
fi

if [[ $failed -ne 0 ]]; then
  echo "make test: FAILED"
  exit 1
fi
echo "make test: all tests passed"
