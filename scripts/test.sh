#!/usr/bin/env bash
# The test command of the README: installs what is missing, builds with
# warnings as errors, runs the whole suite (unit + integration against a
# throwaway PostgreSQL, the multi-host test in network namespaces), then
# builds again with ASan/UBSan and runs it again; lints the deployment files
# against the build; runs the README's quickstart (timed) and its up/down
# mode; then runs each libFuzzer target for a bounded time. The source lint
# comes first. Cleans up the servers it started (ctest fixtures, the
# quickstart's services, the fuzz seeds' nf-ytsim).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=$(nproc)

echo "== format (clang-format, .clang-format)"
find base shared proto broker workers tools tests fuzz bench -name '*.[ch]' -print0 \
  | xargs -0 clang-format --dry-run --Werror

echo "== lint (cppcheck)"
cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
  --suppress=missingIncludeSystem -I base -I shared -I proto -I broker \
  -I workers/sanitizer -I workers/geo -I workers/analyst -I workers/exporter -I workers/architect \
  -I workers/scraper -I tools/ytsim -I tools/web -I fuzz \
  base shared proto broker workers tools fuzz tests/*.c

run_suite() {
  local dir=$1; shift
  echo "== build $dir ($*)"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNF_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs" >/dev/null
  echo "== test $dir"
  (cd "$dir" && ctest -j2 --output-on-failure --timeout 300)
}

if docker info >/dev/null 2>&1; then
  echo "== docker: an engine answers; the suite's docker.stack and docker.readme build the images and run them"
else
  echo "== docker: SKIPPED, docker info fails (no engine here); ctest will list docker.stack and docker.readme as skipped"
fi
rm -f build/test-logs/docker-summary.txt   # the Docker tests' figures, shown below
run_suite build
if [ -s build/test-logs/docker-summary.txt ]; then
  cat build/test-logs/docker-summary.txt
fi
# In the fresh root (scripts/fresh-root.sh) the sanitizer suite and the
# fuzz run are left out, saying so: the host ran both on the same commit
# minutes before, and the fresh root is there to show that the commands set
# a new machine up, which the plain suite, the lint and the quickstart show.
if [ "${NF_FRESH_ROOT:-0}" = 1 ]; then
  echo "== build-asan: skipped in the fresh root (the host ran it on this commit)"
else
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp \
    run_suite build-asan -DNF_SANITIZE=ON -DNF_TEST_PG_PORT=25434
fi

# docker-compose.yml and deploy/Dockerfile against what was just built.
echo "== deploy lint"
/usr/bin/python3 deploy/lint.py build

# The README's first command, as a user runs it (it reuses ./build), timed;
# then its up/down mode with a niche submitted by hand.
echo "== quickstart: scripts/demo.sh"
t=$(date +%s)
demo_out=$(mktemp /tmp/nf-demo-out.XXXXXX)
bash scripts/demo.sh | tee "$demo_out"
echo "quickstart: $(( $(date +%s) - t )) s"
# Its workbook's funnel names the scrape stage's rejections of today's
# YouTube (nf-ytsim's default): age gates, removed and unplayable videos,
# no captions, tracks in another language; the reasons add up to the
# rejected count (issue 21).
wb=$(sed -n 's/^workbook: //p' "$demo_out" | tail -n 1)
rm -f "$demo_out"
/usr/bin/python3 - "$wb" <<'PY'
import openpyxl, sys
rows = {r[0]: r[1] for r in openpyxl.load_workbook(sys.argv[1])["Metadata"].iter_rows(values_only=True) if r and r[0]}
for reason in ("age_restricted", "unavailable", "unplayable", "no_transcript", "no_transcript_in_language"):
    assert rows.get(f"Rejected: {reason}", 0) > 0, f"the funnel lacks 'Rejected: {reason}': {rows}"
total = sum(v for k, v in rows.items() if str(k).startswith("Rejected: "))
assert total == rows["Funnel: rejected"], f"rejection reasons {total} != rejected {rows['Funnel: rejected']}"
print(f"quickstart funnel: {rows['Funnel: discovered']} discovered, {total} rejected with their reasons")
PY
echo "== quickstart: scripts/demo.sh up / down"
bash scripts/demo.sh up
trap 'bash scripts/demo.sh down' EXIT   # also when a check below fails
( . .nf-run/env && nf-submit "home espresso" --count 40 --wait -o out/quickstart-up.xlsx )
/usr/bin/python3 -c 'import openpyxl, sys; ws = openpyxl.load_workbook(sys.argv[1])["Outliers"]
assert ws.max_row > 1, "no outlier rows"; print("up/down: workbook with", ws.max_row - 1, "outliers")' \
  out/quickstart-up.xlsx
trap - EXIT
bash scripts/demo.sh down
[ ! -e .nf-run ] || { echo "demo.sh down left .nf-run behind" >&2; exit 1; }

# libFuzzer targets (fuzz/): a bounded run of each with seeds from nf-ytsim.
# bash scripts/fuzz.sh 600 runs them longer.
if [ "${NF_FRESH_ROOT:-0}" = 1 ]; then
  echo "== fuzz: skipped in the fresh root (the host ran it on this commit)"
else
  echo "== fuzz (${NF_FUZZ_SECONDS:-30}s per target)"
  bash scripts/fuzz.sh "${NF_FUZZ_SECONDS:-30}"
fi

# The README's two commands again, in a fresh debootstrapped Debian 12 with
# the clone under /root (scripts/fresh-root.sh): in CI (CI=true) and when
# asked with NF_FRESH=1; NF_FRESH=0 skips it; never from inside that root.
fresh=${NF_FRESH:-}
[ -n "$fresh" ] || { [ "${CI:-}" = true ] && fresh=1 || fresh=0; }
if [ "${NF_FRESH_ROOT:-0}" = 1 ]; then
  :
elif [ "$fresh" = 1 ]; then
  echo "== fresh root: the README's commands in a fresh Debian 12 (scripts/fresh-root.sh)"
  t=$(date +%s)
  bash scripts/fresh-root.sh
  echo "fresh root: $(( $(date +%s) - t )) s"
else
  echo "== fresh root: skipped (CI=true or NF_FRESH=1 runs it)"
fi
