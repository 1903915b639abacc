#!/usr/bin/env bash
# Fails when any secret of integration/e2e/test-secrets.txt appears in the
# given files or directories (the logs a test run left, its output).
#
#   integration/secret-grep.sh PATH...
set -euo pipefail
cd "$(dirname "$0")/.."
patterns=$(mktemp)
trap 'rm -f "$patterns"' EXIT
grep -v -e '^#' -e '^$' integration/e2e/test-secrets.txt >"$patterns"
files=$(find "$@" -type f 2>/dev/null | wc -l)
if grep -r -a -F -l -f "$patterns" "$@" 2>/dev/null; then
  echo "secret-grep: a test secret appears in the files above" >&2
  exit 1
fi
echo "secret-grep: $(wc -l <"$patterns") test secrets, $files log files: none found"
