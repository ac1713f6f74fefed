#!/usr/bin/env bash
# tests/run.sh -- the runner behind `make test`.
#
#  0. starts one throw-away Ceph RGW for the whole run (tests/tools/rgw.sh)
#     and exports SHALE_TEST_S3_ENDPOINT, SHALE_TEST_S3_BUCKET,
#     AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION to every test;
#     it is stopped at the end whatever happens (trap).  If it cannot
#     start, that is one failure and every S3 test fails (never skips);
#  1. builds and runs every cmocka unit binary (tests/unit/test_*.c);
#  2. rebuilds them with AddressSanitizer + UndefinedBehaviorSanitizer and
#     runs them again (SHALE_TEST_QUICK=1: suites may shrink their loops);
#  3. runs every tests/integration/*.sh (TAP-style "ok"/"not ok" lines).
# Each binary's output goes to tests/tmp/logs/; failures are printed.
# The last line is the summary: "N passed, M failed" (skipped tests, which
# cmocka reports apart, are on the line before it and never counted as passed).
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
LOGS=tests/tmp/logs
rm -rf "$LOGS"; mkdir -p "$LOGS"
export SHALE_TEST_TMP=${SHALE_TEST_TMP:-$PWD/tests/tmp/work}
mkdir -p "$SHALE_TEST_TMP"
passed=0; failed=0; skipped=0; failures=()

# One S3 server per run; tests make their own prefixes inside its bucket.
RGW_DIR=$SHALE_TEST_TMP/rgw-$$
trap 'bash tests/tools/rgw.sh stop "$RGW_DIR" >/dev/null 2>&1' EXIT
trap 'exit 130' INT TERM
echo "== Ceph RGW (S3) for the S3 tests"
if bash tests/tools/rgw.sh start "$RGW_DIR" >"$LOGS/rgw-env" 2>"$LOGS/rgw-start.log"; then
  # shellcheck disable=SC1091
  . "$LOGS/rgw-env"
  echo "RGW at $SHALE_TEST_S3_ENDPOINT, bucket $SHALE_TEST_S3_BUCKET"
else
  echo "--- FAILED: rgw start (S3 tests will fail) ---"; tail -20 "$LOGS/rgw-start.log"
  failed=$((failed + 1)); failures+=("rgw-start")
  unset SHALE_TEST_S3_ENDPOINT SHALE_TEST_S3_BUCKET
fi

build() {  # build LABEL MAKEARGS...
  local label=$1; shift
  if ! make -s -j"$JOBS" "$@" unit >"$LOGS/build-$label.log" 2>&1; then
    echo "BUILD FAILED ($label):"; tail -40 "$LOGS/build-$label.log"
    echo "0 passed, 1 failed"; exit 1
  fi
}

# Runs one cmocka binary, counts its tests from cmocka's summary lines.
run_unit() {  # run_unit LABEL BIN
  local label=$1 bin=$2 name log p f s
  name=$(basename "$bin"); log="$LOGS/$label-$name.log"
  timeout -k 10 900 "$bin" >"$log" 2>&1; local rc=$?
  p=$(grep -aoE '^\[  PASSED  \] [0-9]+' "$log" | awk '{s+=$4} END {print s+0}')
  f=$(grep -aoE '^\[  FAILED  \] [0-9]+' "$log" | awk '{s+=$4} END {print s+0}')
  s=$(grep -aoE '^\[  SKIPPED \] [0-9]+' "$log" | awk '{s+=$4} END {print s+0}')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  echo "$p $f $s $label/$name $rc"
}
export -f run_unit; export LOGS

run_suite() {  # run_suite LABEL BUILDDIR
  local label=$1 dir=$2 line p f s name rc
  while read -r p f s name rc; do
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    if [ "$f" -ne 0 ]; then
      failures+=("$name")
      echo "--- FAILED: $name (exit $rc) ---"
      grep -aE '\[  (FAILED|ERROR) \]|\[   LINE   \]|ERROR:|runtime error|Assertion|Sanitizer' \
        "$LOGS/${name/\//-}.log" | head -30
    fi
  done < <(ls "$dir"/tests/test_* 2>/dev/null | xargs -r -n1 -P"$JOBS" bash -c 'run_unit '"$label"' "$0"')
}

echo "== unit tests"
build plain
run_suite unit build
echo "== unit tests under ASan+UBSan"
build san SANITIZE=address,undefined
SHALE_TEST_QUICK=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 run_suite asan build-san

echo "== fuzz corpora replayed under ASan+UBSan"
for bin in build-san/fuzz/replay_*; do
  [ -x "$bin" ] || continue
  name=${bin##*/replay_}; log="$LOGS/fuzz-$name.log"
  ASAN_OPTIONS=detect_leaks=1 timeout -k 10 600 "$bin" "tests/fuzz/corpus/$name" >"$log" 2>&1; rc=$?
  p=$(grep -acE '^ok ' "$log"); f=$(grep -acE '^not ok ' "$log")
  if [ "$rc" -ne 0 ]; then f=$((f + 1)); failures+=("fuzz/$name"); tail -20 "$log"; fi
  passed=$((passed + p)); failed=$((failed + f))
done

echo "== integration tests"
for t in tests/integration/*.sh; do
  [ -e "$t" ] || continue
  name=$(basename "$t" .sh); log="$LOGS/integration-$name.log"
  timeout -k 10 1200 bash "$t" >"$log" 2>&1; rc=$?
  p=$(grep -acE '^ok ' "$log"); f=$(grep -acE '^not ok ' "$log")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$f" -ne 0 ]; then
    failures+=("integration/$name"); echo "--- FAILED: integration/$name (exit $rc) ---"
    grep -aE '^not ok|^#' "$log" | head -20; tail -15 "$log"
  fi
done

[ ${#failures[@]} -gt 0 ] && echo "failed suites: ${failures[*]}"
# A skipped test is neither a pass nor a failure: it is shown on its own.
[ "$skipped" -gt 0 ] && echo "$skipped skipped (not counted as passed)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
