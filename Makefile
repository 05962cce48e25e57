# flightrec - the two commands a new user runs are `make run` and `make test`.
# Both install missing Debian packages first (scripts/deps.sh), then build
# with CMake. Everything else here is for developers.

BUILD       ?= build
SAN_BUILD   ?= build-asan
BENCH_BUILD ?= build-bench
SANITIZE    ?= 0
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
DB          ?= var/flightrec.db
FUZZ_SECONDS ?= 60

ifeq ($(SANITIZE),1)
TEST_BUILD := $(SAN_BUILD)
TEST_FLAGS := -DFR_SANITIZE=ON -DFR_WERROR=ON -DCMAKE_BUILD_TYPE=Debug
else
TEST_BUILD := $(BUILD)
TEST_FLAGS :=
endif

.PHONY: all deps build run test bench soak fuzz valgrind format format-check clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# `make run` starts the agent in the foreground with configs/flightrec.yaml:
# HTTP on 127.0.0.1:8787, the socket and the database in ./var. Ctrl-C stops
# it (every acknowledged event is committed first).
run: build
	@mkdir -p -m 700 var
	@echo "flightrec agent: post events with"
	@echo "  curl -sS --data-binary @configs/sample-events.ndjson http://127.0.0.1:8787/v1/events"
	@echo "then query http://127.0.0.1:8787/v1/conversations (README: Quick demo). Ctrl-C stops."
	@exec $(BUILD)/flightrec agent --config configs/flightrec.yaml

test: deps
	@scripts/npm-deps.sh
	@cmake -S . -B $(TEST_BUILD) $(TEST_FLAGS) >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS)
	@scripts/check-tests.sh
	@cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS)

bench: deps
	@cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DFR_TESTS=OFF >/dev/null
	@cmake --build $(BENCH_BUILD) -j $(JOBS)
	@BUILD=$(BENCH_BUILD) bench/run.sh
	@BUILD=$(BENCH_BUILD) bench/retention.sh
	@BUILD=$(BENCH_BUILD) bench/otlp.sh
	@BUILD=$(BENCH_BUILD) bench/bundle.sh

# the soak (not part of make test): SOAK_SECONDS (600) of paced load with
# retention every minute and periodic bundles; RSS, fds, lost events, integrity
soak: deps
	@cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DFR_TESTS=OFF >/dev/null
	@cmake --build $(BENCH_BUILD) -j $(JOBS)
	@BUILD=$(BENCH_BUILD) bench/soak.sh

# libFuzzer harnesses (clang), FUZZ_SECONDS each: scripts/fuzz.sh
fuzz: deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

# the daemon and the integration test under valgrind: scripts/valgrind.sh
valgrind: build
	@BUILD=$(BUILD) scripts/valgrind.sh

format:
	@git ls-files --cached --others --exclude-standard '*.c' '*.h' | xargs clang-format -i

format-check: deps
	@git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(BENCH_BUILD) build-fuzz
