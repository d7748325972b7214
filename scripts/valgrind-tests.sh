#!/usr/bin/env bash
# Runs every test program of a build under valgrind's memcheck: any memory
# error, or any leak that is definitely or indirectly lost, fails. (libgomp
# keeps its worker threads' memory for the life of the process; valgrind
# calls that "possibly lost", which is not ours and not counted.)
# The real-data checks are left out (CGRAD_DATA unset): they would take
# minutes under valgrind and exercise the same code as the fixtures.
# Usage: scripts/valgrind-tests.sh [BUILD_DIR]   (default: build)
set -euo pipefail
build=${1:-build}
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
unset CGRAD_DATA
export OMP_NUM_THREADS=2 CGRAD_TEST_BUILD="$build"
status=0
for t in "$build"/tests/test_*; do
  [[ -x "$t" && ! -d "$t" ]] || continue
  log=$(mktemp)
  if valgrind --quiet --error-exitcode=99 --leak-check=full \
       --suppressions="$(dirname "$0")/../tests/cairo.supp" \
       --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
       "$t" >"$log" 2>&1; then
    echo "valgrind ok:   $(basename "$t")"
  else
    echo "valgrind FAIL: $(basename "$t")"; tail -40 "$log"; status=1
  fi
  rm -f "$log"
done
exit $status
