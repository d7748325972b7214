#!/bin/sh
# run.sh CGRAD OUT_DIR - CTest's entry to the browser test (page_test.js).
# Without Node.js it skips (77), saying so; without playwright-core it first
# tries to install it (scripts/install-browser-test.sh), and page_test.js
# skips, naming what is missing, if that failed or Chromium is absent.
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null 2>&1; then
  echo "skipped: Node.js is not installed (scripts/install-deps.sh installs it)"
  exit 77
fi
[ -d "$here/node_modules/playwright-core" ] || "$here/../../scripts/install-browser-test.sh" || true
exec node "$here/page_test.js" "$@"
