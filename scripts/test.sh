#!/usr/bin/env bash
# test.sh - Quick start: install what is missing, build, and run every test twice: once in a
# normal (gcc, optimized) build and once in a clang build with AddressSanitizer +
# UndefinedBehaviorSanitizer, which also builds the libFuzzer harnesses and runs each briefly.
# Any sanitizer report fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

# Browser tests (tests/browser): playwright-core from the committed package-lock.json; the
# browser is Debian's chromium. Reinstalled only when the lock file changed since the last `npm ci`.
lock_sum=$(sha256sum tests/browser/package-lock.json | cut -d' ' -f1)
if [ "$(cat tests/browser/node_modules/.ei-lock.sha256 2>/dev/null)" != "$lock_sum" ]; then
    echo "== npm ci (tests/browser)"
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" > tests/browser/node_modules/.ei-lock.sha256
fi

jobs=$(nproc)
status=0

echo "== build: gcc, RelWithDebInfo"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
echo "== tests: normal build"
(cd build && ctest --output-on-failure -j"$jobs") || status=1

echo "== build: clang, AddressSanitizer + UndefinedBehaviorSanitizer, libFuzzer"
CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DEI_SANITIZE=ON -DEI_FUZZ=ON >/dev/null
cmake --build build-asan -j"$jobs"
echo "== tests: sanitizer build"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
(cd build-asan && ctest --output-on-failure -j"$jobs") || status=1

if [ "$status" -eq 0 ]; then echo "== all tests passed (normal and sanitizer builds)"; else echo "== FAILED"; fi
exit "$status"
