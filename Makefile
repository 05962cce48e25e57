# flightrec - the two commands a new user runs are `make run` and `make test`.
# Both install missing Debian packages first (scripts/deps.sh), then build
# with CMake. Everything else here is for developers.

BUILD       ?= build
TEST_PLAIN_BUILD ?= build-test
SAN_BUILD   ?= build-asan
BENCH_BUILD ?= build-bench
SHARED_BUILD ?= build-shared
TSAN_BUILD  ?= build-tsan
PACKAGE_BUILD ?= build-package
SANITIZE    ?= 0
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
DB          ?= var/flightrec.db
FUZZ_SECONDS ?= 60

# The kill -9 stress rounds (ctest label "stress") run with STRESS=1 (CI does);
# without them `make test` stays about a minute on 2 cores.
STRESS      ?= 0
ifeq ($(STRESS),1)
CTEST_LABELS :=
else
CTEST_LABELS := -LE stress
endif

ifeq ($(SANITIZE),1)
TEST_BUILD := $(SAN_BUILD)
TEST_FLAGS := -DFR_SANITIZE=ON -DFR_WERROR=ON -DCMAKE_BUILD_TYPE=Debug
else
TEST_BUILD := $(TEST_PLAIN_BUILD)
TEST_FLAGS :=
endif

.PHONY: all deps build run test layers tsan bench soak fuzz valgrind format format-check clean \
	package package-test

all: build

deps:
	@scripts/deps.sh

# The binary users run: no test suite, no test-only hooks (make test builds
# those into $(TEST_PLAIN_BUILD) or $(SAN_BUILD)).
build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFR_TESTS=OFF -DFR_TEST_HOOKS=OFF >/dev/null
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
	@scripts/check-layers.py $(TEST_BUILD)
	@cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_LABELS)

# The layering proof (CI): every stage as a shared library linked with
# -Wl,--no-undefined, so a stage that calls anything downstream fails to
# link, then scripts/check-layers.py on its objects and includes
# (docs/architecture.md).
layers: deps
	@cmake -S . -B $(SHARED_BUILD) -DFR_SHARED=ON -DFR_WERROR=ON -DFR_TESTS=OFF -DFR_TEST_HOOKS=OFF >/dev/null
	@cmake --build $(SHARED_BUILD) -j $(JOBS)
	@scripts/check-layers.py $(SHARED_BUILD)
	@if grep -q FLIGHTREC_CRASH_AT $(SHARED_BUILD)/libfr_*.so $(SHARED_BUILD)/flightrec; then \
	  echo "layers: a release build carries the test-only FLIGHTREC_CRASH_AT hook" >&2; exit 1; fi
	@echo "layers: no test-only hook in the release build"

# The whole suite under ThreadSanitizer (CI): the daemon is multi-threaded
# (sources, writer, jobs); a race report makes the reporting process exit 66,
# and every test asserts its daemon's exit status.
tsan: deps
	@scripts/npm-deps.sh
	@cmake -S . -B $(TSAN_BUILD) -DFR_TSAN=ON -DFR_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(TSAN_BUILD) -j $(JOBS)
	@cd $(TSAN_BUILD) && TSAN_OPTIONS="halt_on_error=0 exitcode=66 second_deadlock_stack=1" \
	  ctest --output-on-failure -j $(JOBS) $(CTEST_LABELS)

bench: deps
	@cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DFR_TESTS=OFF >/dev/null
	@cmake --build $(BENCH_BUILD) -j $(JOBS)
	@BUILD=$(BENCH_BUILD) bench/run.sh
	@BUILD=$(BENCH_BUILD) bench/retention.sh
	@BUILD=$(BENCH_BUILD) bench/otlp.sh
	@BUILD=$(BENCH_BUILD) bench/bundle.sh
	@BUILD=$(BENCH_BUILD) bench/erase.sh
	@BUILD=$(BENCH_BUILD) bench/segment.sh
	@BUILD=$(BENCH_BUILD) bench/stages.sh
	@BUILD=$(BENCH_BUILD) bench/indexes.sh
	@BUILD=$(BENCH_BUILD) bench/queries.sh
	@BUILD=$(BENCH_BUILD) bench/scale.sh
	@BUILD=$(BENCH_BUILD) bench/fleet.sh
	@BUILD=$(BENCH_BUILD) bench/console.sh
	@BUILD=$(BENCH_BUILD) bench/longconv.sh

# the soak (not part of make test): SOAK_SECONDS (600) of paced load with
# retention every minute and periodic bundles; RSS, fds, lost events, integrity
soak: deps
	@cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DFR_TESTS=OFF >/dev/null
	@cmake --build $(BENCH_BUILD) -j $(JOBS)
	@BUILD=$(BENCH_BUILD) bench/soak.sh

# libFuzzer harnesses (clang), FUZZ_SECONDS each: scripts/fuzz.sh
fuzz: deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

# The Debian package: build-package/flightrec_<version>_amd64.deb (CPack,
# hardened flags, stripped; docs/packaging.md).
package:
	@scripts/deps.sh package
	@cmake -S . -B $(PACKAGE_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFR_TESTS=OFF \
	  -DFR_TEST_HOOKS=OFF -DFR_PACKAGE=ON \
	  -DCMAKE_C_FLAGS="-O2 -g -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE -fcf-protection" \
	  -DCMAKE_EXE_LINKER_FLAGS="-pie -Wl,-z,relro -Wl,-z,now" >/dev/null
	@cmake --build $(PACKAGE_BUILD) -j $(JOBS)
	@cd $(PACKAGE_BUILD) && cpack -G DEB >/dev/null && ls -1 $(CURDIR)/$(PACKAGE_BUILD)/*.deb

# The package as a user gets it (root; CI): lintian, install, run as the
# flightrec user, man, remove and purge leave nothing behind.
package-test: package
	@BUILD=$(PACKAGE_BUILD) scripts/package-test.sh

# the daemon and the integration test under valgrind: scripts/valgrind.sh
valgrind: deps
	@cmake -S . -B $(TEST_PLAIN_BUILD) >/dev/null
	@cmake --build $(TEST_PLAIN_BUILD) -j $(JOBS)
	@BUILD=$(TEST_PLAIN_BUILD) scripts/valgrind.sh

format:
	@git ls-files --cached --others --exclude-standard '*.c' '*.cc' '*.h' | xargs clang-format -i

format-check: deps
	@git ls-files '*.c' '*.cc' '*.h' | xargs clang-format --dry-run --Werror

clean:
	rm -rf $(BUILD) $(TEST_PLAIN_BUILD) $(SAN_BUILD) $(BENCH_BUILD) $(SHARED_BUILD) $(TSAN_BUILD) build-fuzz
