#!/usr/bin/env bash
# Installs the npm package of the browser test (tests/browser: playwright-core,
# the version pinned by its package-lock.json) into tests/browser/node_modules.
# It drives Debian's /usr/bin/chromium; no browser is downloaded. Called by
# install-deps.sh, and by the test itself when the package is missing.
# Quick when nothing changed: the lock file installed is kept beside the
# package and compared. Without npm, or when the registry cannot be reached,
# it says so and exits 0: the test then skips, naming what is missing.
set -uo pipefail
dir="$(cd "$(dirname "$0")/../tests/browser" && pwd)"
stamp="$dir/node_modules/.cgrad-package-lock.json"
cmp -s "$dir/package-lock.json" "$stamp" && exit 0
if ! command -v npm >/dev/null; then
  echo "cgrad: npm is not installed; the browser test will be skipped" >&2
  exit 0
fi
echo "cgrad: installing the browser test's npm package (tests/browser)" >&2
if (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1 \
      timeout 300 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error); then
  cp "$dir/package-lock.json" "$stamp"
else
  echo "cgrad: 'npm ci' failed in $dir; the browser test will be skipped" >&2
fi
exit 0
