#!/usr/bin/env bash
# Installs what cgrad needs to build and test, on Debian/Ubuntu (apt-get);
# elsewhere it names the packages to install. Safe to run again: it only
# installs what is missing. `--bench` adds the PyTorch reference side.
set -euo pipefail

pkgs=(build-essential cmake pkg-config clang libclang-rt-dev libomp-dev
      libpng-dev zlib1g-dev libcurl4-openssl-dev libarchive-dev
      libcmocka-dev libmicrohttpd-dev libssl-dev valgrind python3
      libcairo2-dev fonts-dejavu-core openmpi-bin libopenmpi-dev)
# The browser test of `cgrad serve`'s page (tests/browser): Chromium, and
# Node.js with npm unless a Node.js is already there (NodeSource's brings
# its own npm, which Debian's npm package would conflict with).
pkgs+=(chromium)
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)
if [[ "${1:-}" == "--bench" ]]; then
  pkgs+=(python3-torch python3-pil libopenblas-openmp-dev time)
  pkgs+=(wrk) # bench/bench_serve.sh
fi

if ! command -v dpkg >/dev/null || ! command -v apt-get >/dev/null; then
  echo "cgrad: not a Debian/Ubuntu system; please install the equivalents of:" >&2
  echo "  ${pkgs[*]}" >&2
  exit 0
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "cgrad: installing ${missing[*]}" >&2
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null; then sudo="sudo"; else
      echo "cgrad: run as root, or install: ${missing[*]}" >&2; exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The browser test's npm package (quick when it is already in).
"$(dirname "$0")/install-browser-test.sh"
