#!/usr/bin/env bash
# Installs the browser driver (playwright-core)'s npm modules (exact versions from package-lock.json) into a
# cache under the cargo target directory, keyed by the lockfile's hash, and links
# tests/console/node_modules to it. npm runs only when that cache is missing. Prints the cache path.
# Usage: tests/console/install.sh [TARGET_DIR]   (default: $CARGO_TARGET_DIR, else ./target)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
target="${1:-${CARGO_TARGET_DIR:-$here/../../target}}"
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "tests/console/install.sh: '$tool' is not installed; the browser tests need Node.js 20+ with npm" >&2
    exit 1
  fi
done
mkdir -p "$target/console-node"
target="$(cd "$target" && pwd)"
hash="$(sha256sum "$here/package-lock.json" | cut -c1-16)"
cache="$target/console-node/$hash"
if [ ! -f "$cache/.complete" ]; then
  # Test processes may run this at once: one installs, the others wait for it.
  exec 9>"$target/console-node/.lock"
  flock 9
  if [ ! -f "$cache/.complete" ]; then
    rm -rf "$cache.tmp"
    mkdir -p "$cache.tmp"
    cp "$here/package.json" "$here/package-lock.json" "$cache.tmp/"
    (cd "$cache.tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
    touch "$cache.tmp/.complete"
    rm -rf "$cache"
    mv "$cache.tmp" "$cache"
  fi
  flock -u 9
fi
# ES modules resolve imports next to the importing file: link node_modules there (atomically).
if [ "$(readlink "$here/node_modules" 2>/dev/null)" != "$cache/node_modules" ]; then
  ln -sfn "$cache/node_modules" "$here/.node_modules.$$"
  mv -T "$here/.node_modules.$$" "$here/node_modules"
fi
echo "$cache"
