# Convenience wrapper around CMake. The two quick-start commands:
#   make run    installs what is missing, builds, and runs the article's pipeline
#   make test   installs what is missing, builds, and runs the whole test suite
BUILD ?= build
JOBS  ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps build run test sanitize test-sanitize test-valgrind bench fuzz clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The main job: the pixel-similarity baseline, then the article's linear
# model and the book's simple_net on MNIST_SAMPLE (fetched if not on disk).
run: build
	$(BUILD)/cgrad baseline
	$(BUILD)/cgrad train --model linear
	$(BUILD)/cgrad train --model mlp

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

sanitize: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCGRAD_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)

# The sanitizer build runs everything but the full-MNIST training runs (label
# ten_classes: minutes at -O0; the same code runs here on small fixtures).
test-sanitize: sanitize
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS) -LE ten_classes

test-valgrind: build
	@scripts/valgrind-tests.sh $(BUILD)

bench: build
	@scripts/install-deps.sh --bench
	@bench/run_bench.sh

fuzz: deps
	@fuzz/run.sh

clean:
	rm -rf $(BUILD) build-asan build-fuzz
