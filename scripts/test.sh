#!/usr/bin/env bash
# The test command of the README: installs what is missing, builds with
# warnings as errors, runs the whole suite (unit + integration against a
# throwaway PostgreSQL), then builds again with ASan/UBSan and runs it again,
# then runs each libFuzzer target for a bounded time; the lint pass comes
# first. Cleans up the servers it started (ctest fixtures, the fuzz seeds'
# nf-ytsim).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=$(nproc)

echo "== format (clang-format, .clang-format)"
find shared proto broker workers tools tests fuzz bench -name '*.[ch]' -print0 \
  | xargs -0 clang-format --dry-run --Werror

echo "== lint (cppcheck)"
cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
  --suppress=missingIncludeSystem -I shared -I proto -I broker \
  -I workers/sanitizer -I workers/geo -I workers/analyst -I workers/exporter -I workers/architect \
  -I workers/scraper -I tools/ytsim -I fuzz \
  shared proto broker workers tools fuzz tests/*.c

run_suite() {
  local dir=$1; shift
  echo "== build $dir ($*)"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNF_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs" >/dev/null
  echo "== test $dir"
  (cd "$dir" && ctest -j2 --output-on-failure --timeout 300)
}

run_suite build
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp \
  run_suite build-asan -DNF_SANITIZE=ON -DNF_TEST_PG_PORT=25434

# libFuzzer targets (fuzz/): a bounded run of each with seeds from nf-ytsim.
# bash scripts/fuzz.sh 600 runs them longer.
echo "== fuzz (${NF_FUZZ_SECONDS:-40}s per target)"
bash scripts/fuzz.sh "${NF_FUZZ_SECONDS:-40}"
