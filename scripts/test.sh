#!/usr/bin/env bash
# Runs the test suite and ends with the list of checks that were skipped, and why: a test that
# cannot check anything here (no root, no network namespaces, no Chromium, no actionlint, no
# xmllint, ...) passes as "ok" in cargo's own output, so this list is the only place that says
# what was not checked. Exits with cargo's status.
#
# Usage: scripts/test.sh [CARGO-TEST-ARGS...]   (default: --workspace)
# The skip log is $GRADER_TEST_SKIP_LOG when set (emptied first), else a temporary file.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${GRADER_TEST_SKIP_LOG:-}" ]; then
  log=$GRADER_TEST_SKIP_LOG
else
  log=$(mktemp "${TMPDIR:-/tmp}/grader-test-skips.XXXXXX")
  trap 'rm -f "$log"' EXIT
fi
export GRADER_TEST_SKIP_LOG="$log"
: >"$log"

[ $# -gt 0 ] || set -- --workspace
status=0
cargo test "$@" || status=$?

echo
if [ -s "$log" ]; then
  skips=$(sort -u "$log" | sed 's/^SKIPPED /  /')
  echo "Skipped checks as $(id -un) ($(printf '%s\n' "$skips" | wc -l)): each test below passed as \"ok\" without this check:"
  printf '%s\n' "$skips"
else
  echo "Skipped checks as $(id -un): none."
fi
exit "$status"
