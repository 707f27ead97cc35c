#!/usr/bin/env bash
# Installs the build into a scratch prefix and builds and runs a consumer
# against it through find_package(Chorus) and through pkg-config.
#   install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
source=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
lib=$(find "$work/prefix" -name 'libnccl.so.2' | head -n 1)
[ -n "$lib" ] || { echo "FAIL: libnccl.so.2 was not installed"; exit 1; }
libdir=$(dirname "$lib")
[ -f "$work/prefix/include/nccl.h" ] || { echo "FAIL: nccl.h was not installed"; exit 1; }
[ -L "$libdir/libnccl.so" ] || { echo "FAIL: libnccl.so link was not installed"; exit 1; }
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cmake -S "$source/tests/install/consumer" -B "$work/consumer" \
  -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log" ||
  { cat "$work/configure.log"; exit 1; }
cmake --build "$work/consumer" > "$work/build.log" || { cat "$work/build.log"; exit 1; }
LD_LIBRARY_PATH="$libdir" "$work/consumer/consumer_cmake"
LD_LIBRARY_PATH="$libdir" "$work/consumer/consumer_pkgconfig"
echo "install test passed"
