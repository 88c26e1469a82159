# The two commands of the README are the contract:
#   make demo   - install what the demo needs, build only `jamnet` (release),
#                 run `jamnet demo`
#   make test   - install what is missing, build with ASan+UBSan, run every
#                 test (unit + integration) with JAMNET_REQUIRE_ALL=1 (a skip
#                 of a part this machine has fails), run the threaded units
#                 under ThreadSanitizer, then fuzz the parsers
# Also: make bench (bench/REPORT.md + bench/results.json), make build, make clean.
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60

.PHONY: deps build demo test tsan unit fuzz bench clean

deps:
	@scripts/install-deps.sh

build: deps
	cmake --preset release -DJAMNET_BUILD_TESTS=ON -DJAMNET_BUILD_BENCH=ON >/dev/null
	cmake --build --preset release -j$(JOBS)

# The quick first run: no test, fuzz or benchmark toolchains, one target.
demo:
	@scripts/install-deps.sh --demo
	cmake --preset release -DJAMNET_BUILD_TESTS=OFF -DJAMNET_BUILD_BENCH=OFF >/dev/null
	cmake --build --preset release -j$(JOBS) --target jamnet
	./build/release/jamnet demo

test: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j$(JOBS)
	JAMNET_REQUIRE_ALL=1 ctest --preset asan -j$(JOBS)
	$(MAKE) --no-print-directory tsan
	scripts/run-fuzz.sh $(FUZZ_SECONDS) 15

# The threaded units under ThreadSanitizer (part of `make test`).
tsan: deps
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j$(JOBS)
	JAMNET_REQUIRE_ALL=1 ctest --preset tsan -j$(JOBS)

unit: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j$(JOBS)
	ctest --preset asan -j$(JOBS) -LE integration

fuzz: deps
	scripts/run-fuzz.sh $(FUZZ_SECONDS) 15

bench: build
	python3 bench/run.py build/release/bench/jamnet_bench

clean:
	rm -rf build
