# The small set of commands every developer and CI use. Each target does its
# own set-up, so `make demo` and `make test` work on a fresh Debian 12 machine.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
# Seconds per fuzz target: `make fuzz` explores for long, `make test` briefly.
FUZZ_SECONDS ?= 300
JOBS       ?= $(shell nproc)
PYTEST     := /usr/bin/python3 -m pytest

.PHONY: setup build build-asan build-fuzz fuzz test unit e2e demo bench bench-core bench-proxy bench-resources bench-vip sim format lint clean

setup:
	@bash scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: setup
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DBULWARK_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

build-fuzz: setup
	@CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DBULWARK_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_config fuzz_heartbeat fuzz_records fuzz_http

fuzz: build-fuzz
	@bash scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Every test: unit tests of both builds, multi-process tests against the
# sanitizer build (which also proves the binaries clean under ASan/UBSan),
# and a short run of every fuzzer.
test: build build-asan build-fuzz
	@bash scripts/test.sh $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

unit: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

e2e: build
	@BULWARK_BIN_DIR=$(abspath $(BUILD))/bin $(PYTEST) -q tests/e2e

demo: build
	@bash scripts/demo.sh $(BUILD)/bin

bench: bench-core bench-proxy bench-resources bench-vip

bench-core: build
	@/usr/bin/python3 bench/core/cluster_bench.py --bin $(BUILD)/bin

# Failover, restarts (in place, behind a proxy, rolling), convergence and policy speed
# (see bench/resources/README.md).
bench-resources: build
	@/usr/bin/python3 bench/resources/resource_bench.py --bin $(BUILD)/bin

# bulwark-proxy against HAProxy, side by side (see bench/proxy/README.md).
bench-proxy: build
	@/usr/bin/python3 bench/proxy/proxy_bench.py --bin $(BUILD)/bin

# VIP failover against keepalived on the netns testbed; needs root (see bench/vip/README.md).
bench-vip: build
	@/usr/bin/python3 bench/vip/vip_bench.py --bin $(BUILD)/bin

# The deterministic simulation (tests/sim/README.md): `make sim SEED=N`
# replays one seed exactly (VERBOSE=1: every event); without SEED, SIM_SEEDS
# seeds from SIM_FIRST (`make test` runs the first 2000).
SIM_SEEDS ?= 10000
SIM_FIRST ?= 1
sim: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target bulwark_sim
	@if [ -n "$(SEED)" ]; then \
	  $(BUILD)/bin/bulwark_sim --seed $(SEED) $(if $(VERBOSE),--verbose); \
	else \
	  $(BUILD)/bin/bulwark_sim --seeds $(SIM_SEEDS) --first $(SIM_FIRST); \
	fi

format:
	@find src tests -name '*.cc' -o -name '*.h' | xargs clang-format -i

lint: build
	@find src -name '*.cc' | xargs clang-tidy -p $(BUILD) --quiet

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
