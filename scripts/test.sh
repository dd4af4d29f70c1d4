#!/usr/bin/env bash
# The test suite: the optimized build and an ASan+UBSan build run every GoogleTest test
# under CTest; the PyTorch reference checks itself and is cross-checked live against the
# engine, and its autograd twin against `dsv3 grad`, on freshly generated checkpoints; the
# official `openai` and `@anthropic-ai/sdk` npm clients drive `dsv3 serve` on loopback, headless
# Chromium drives its chat page, then a one-minute soak (bench/soak.mjs) abuses it; the
# safetensors header fuzzer gets a short run.
# Usage: scripts/test.sh [--quick]   (--quick: optimized build only)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

echo "== release build + tests"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== PyTorch reference self-check and live cross-check"
/usr/bin/python3 scripts/test_reference.py
/usr/bin/python3 scripts/cross_check.py --dsv3 build/dsv3
/usr/bin/python3 scripts/grad_cross_check.py --dsv3 build/dsv3

echo "== OpenAI and Anthropic clients against dsv3 serve (the tests start the server on a free loopback port)"
DSV3_BINARY="$PWD/build/dsv3" node --test tests/server/

echo "== the chat page in headless Chromium (puppeteer-core) against dsv3 serve with the default model"
DSV3_BINARY="$PWD/build/dsv3" node --test tests/browser/

echo "== soak: 1 minute of mixed, aborted and malformed requests against dsv3 serve (its own server on a free loopback port)"
DSV3_BINARY="$PWD/build/dsv3" node bench/soak.mjs --minutes 1

if [ "${1:-}" = "--quick" ]; then exit 0; fi

echo "== ASan + UBSan build + tests"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDSV3_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs" --target dsv3 dsv3_tests
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --test-dir build-asan --output-on-failure -j"$jobs"

echo "== fuzz the safetensors header parser (libFuzzer, 30 s)"
CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDSV3_FUZZ=ON -DDSV3_TESTS=OFF >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_safetensors_header
mkdir -p build-fuzz/corpus
build-fuzz/fuzz_safetensors_header -max_total_time=30 -print_final_stats=1 build-fuzz/corpus fuzz/corpus/safetensors_header 2>&1 | tail -n 3
echo "test.sh: all passed"
