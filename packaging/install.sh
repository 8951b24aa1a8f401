#!/bin/sh
# Installs the vigo binary and its three role links under PREFIX (default /usr/local).
# Usage: packaging/install.sh path/to/vigo [PREFIX]
set -eu
bin="${1:?usage: install.sh path/to/vigo [PREFIX]}"
prefix="${2:-/usr/local}"
install -D -m 0755 "$bin" "$prefix/bin/vigo"
for role in vigosrv vigocli vigo-agent; do
  ln -sf vigo "$prefix/bin/$role"
done
echo "installed $prefix/bin/vigo with links vigosrv, vigocli, vigo-agent"
