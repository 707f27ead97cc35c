#!/usr/bin/env bash
# Makes sure the tools and libraries that Chorus's build and tests need are
# present (Debian/Ubuntu). Quiet and offline when nothing is missing; as root
# it installs what is missing with apt-get (one `apt-get update`, then one
# install); otherwise it stops and names exactly what to install.
#
#   bash scripts/install_deps.sh
#
# CHORUS_SKIP_DEPS=1 skips every check (for machines prepared another way).
set -euo pipefail

if [[ "${CHORUS_SKIP_DEPS:-0}" == 1 ]]; then
  exit 0
fi

readonly CMAKE_MIN=3.25

log() { printf 'install_deps: %s\n' "$*" >&2; }

have_command() { command -v "$1" >/dev/null 2>&1; }

# True when dpkg knows the package as installed; without dpkg, false.
have_package() {
  have_command dpkg-query || return 1
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

# True when version $1 >= $2 (dotted numbers).
version_at_least() {
  [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]
}

cmake_ok() {
  have_command cmake || return 1
  local version
  version="$(cmake --version 2>/dev/null | sed -n 's/^cmake version \([0-9][0-9.]*\).*/\1/p')"
  [[ -n "$version" ]] && version_at_least "$version" "$CMAKE_MIN"
}

# Each check is "<test> <package>": the package to install when the test fails.
missing=()
check() {
  local test="$1" package="$2"
  if ! eval "$test"; then
    missing+=("$package")
  fi
}

find_missing() {
  missing=()
  check cmake_ok                       cmake
  check 'have_command ninja'           ninja-build
  check 'have_command gcc'             gcc
  check 'have_command g++'             g++
  check 'have_command pkg-config'      pkg-config
  check 'have_command nm && have_command readelf' binutils
  check 'have_command ip'              iproute2
  # Libraries: asked of dpkg; a machine without dpkg is judged by the headers.
  if have_command dpkg-query; then
    check 'have_package libgtest-dev'      libgtest-dev
    check 'have_package libgmock-dev'      libgmock-dev
    check 'have_package libbenchmark-dev'  libbenchmark-dev
    # Open MPI: the perf programs are built with it and tested under mpirun.
    check 'have_package libopenmpi-dev'    libopenmpi-dev
    check 'have_command mpirun.openmpi'    openmpi-bin
  else
    check '[[ -f /usr/include/gtest/gtest.h || -f /usr/local/include/gtest/gtest.h ]]' libgtest-dev
    check '[[ -f /usr/include/gmock/gmock.h || -f /usr/local/include/gmock/gmock.h ]]' libgmock-dev
    check '[[ -f /usr/include/benchmark/benchmark.h || -f /usr/local/include/benchmark/benchmark.h ]]' \
      libbenchmark-dev
  fi
}

find_missing
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
  log "missing: ${missing[*]}"
  log "install them as root, for example:"
  log "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
  if [[ " ${missing[*]} " == *" cmake "* ]]; then
    log "(cmake >= $CMAKE_MIN is required; Debian 12 and Ubuntu 24.04 ship one)"
  fi
  exit 1
fi
if ! have_command apt-get; then
  log "missing: ${missing[*]}; this script installs with apt-get, which this machine lacks"
  exit 1
fi

log "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_options=(-q -o DPkg::Lock::Timeout=300)
apt-get "${apt_options[@]}" update </dev/null >/dev/null
apt-get "${apt_options[@]}" install -y --no-install-recommends "${missing[@]}" </dev/null >/dev/null

find_missing
if [[ ${#missing[@]} -ne 0 ]]; then
  log "still missing after apt-get install: ${missing[*]}"
  if [[ " ${missing[*]} " == *" cmake "* ]]; then
    log "cmake here is $(cmake --version 2>/dev/null | head -n1 || echo absent); need >= $CMAKE_MIN"
  fi
  exit 1
fi
log "done"
