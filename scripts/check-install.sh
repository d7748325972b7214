#!/usr/bin/env bash
# Installs a build into a temporary prefix and builds a user's program
# against it twice: with pkg-config, and with CMake's find_package(cgrad).
# Usage: scripts/check-install.sh [BUILD_DIR]   (default: build)
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(ls -d "$prefix"/lib*/pkgconfig | head -1)
export PKG_CONFIG_PATH="$libdir"

# 1. pkg-config (the shared library)
# shellcheck disable=SC2046
cc -std=c17 "$root/examples/embed.c" $(pkg-config --cflags --libs cgrad) -o "$prefix/embed-pc"
out=$(LD_LIBRARY_PATH="${libdir%/pkgconfig}" "$prefix/embed-pc" 2>&1 || true)
grep -qi "usage" <<<"$out" || { echo "check-install: pkg-config build does not run: $out" >&2; exit 1; }
echo "install ok: pkg-config --cflags --libs cgrad"

# 2. CMake package
mkdir -p "$prefix/user"
cat >"$prefix/user/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(user C)
find_package(cgrad REQUIRED)
add_executable(embed "$root/examples/embed.c")
target_link_libraries(embed PRIVATE cgrad::cgrad_shared)
CM
cmake -S "$prefix/user" -B "$prefix/user/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/user/build" >/dev/null
out=$(LD_LIBRARY_PATH="${libdir%/pkgconfig}" "$prefix/user/build/embed" 2>&1 || true)
grep -qi "usage" <<<"$out" || { echo "check-install: find_package build does not run: $out" >&2; exit 1; }
echo "install ok: find_package(cgrad)"
