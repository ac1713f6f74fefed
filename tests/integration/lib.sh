# lib.sh -- shared helpers for the integration tests (sourced).
# TAP-style output: "ok - what" / "not ok - what"; the runner counts them.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHALE=$ROOT/build/shale
AGENT=$ROOT/build/shale-agent
FAILS=0
ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; FAILS=$((FAILS + 1)); }
check() {  # check "what" command...
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then ok "$what"; else notok "$what"; fi
}
tmpdir() { mktemp -d "${SHALE_TEST_TMP:-/tmp}/it.XXXXXX"; }
# Expected key list of `shale load --count N`: key0000000000 ...
expected_keys() { local n=$1 i; for ((i = 0; i < n; i++)); do printf 'key%010d\n' "$i"; done; }
finish() { [ "$FAILS" -eq 0 ]; exit $?; }
