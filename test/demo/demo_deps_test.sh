#!/usr/bin/env bash
# scripts/demo's dependency step on a machine it cannot install on, with fakes of apt-get,
# dpkg-query, node and npm first on PATH (nothing is installed for real): every failure stops the
# demo with the packages and the reason, and a machine with its own Node.js is never offered
# Debian's conflicting npm.
set -euo pipefail
DEMO=$EPH_SOURCE_DIR/scripts/demo
work=$(mktemp -d /tmp/eph-demo-deps.XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
check() {  # check DESCRIPTION CONDITION...
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fails=$((fails + 1)); fi
}

# fakes NODE_VERSION(or none) NPM(yes/no) APT(ok/fail): a fresh PATH directory.
fakes() {
  local dir=$work/bin-$RANDOM
  mkdir -p "$dir"
  printf '#!/bin/sh\nexit 1\n' >"$dir/dpkg-query"  # nothing is installed
  if [ "$3" = ok ]; then
    printf '#!/bin/sh\necho "$@" >>"%s/apt-args"\nexit 0\n' "$work" >"$dir/apt-get"
  else
    printf '#!/bin/sh\n[ "$1" = update ] && exit 0\necho "E: Unable to correct problems, you have held broken packages." >&2\nexit 100\n' >"$dir/apt-get"
  fi
  # "none": no node at all (run_deps's PATH holds only the fakes and basic tools).
  if [ "$1" != none ]; then
    printf '#!/bin/sh\ncase "$1" in --version) echo v%s;; -p) echo %s;; esac\n' "$1" "${1%%.*}" >"$dir/node"
  fi
  [ "$2" = yes ] && printf '#!/bin/sh\nexit 0\n' >"$dir/npm"
  chmod +x "$dir"/*
  echo "$dir"
}

run_deps() {  # run_deps BIN_DIR: scripts/demo deps with only the fakes and /usr/bin basics
  local bin=$1 tools=$work/tools-$RANDOM
  mkdir -p "$tools"
  for t in bash sh env dirname readlink realpath mkdir flock cat sed grep tr tail rm date sleep; do
    ln -sf "$(command -v "$t")" "$tools/$t"
  done
  EPH_DEMO_DIR=$work/demo PATH=$bin:$tools "$DEMO" deps >"$work/out" 2>&1
}

# 1. apt cannot install: the demo stops, naming the packages and pointing at apt's reason.
rc=0
run_deps "$(fakes 20.20.2 yes fail)" || rc=$?
cat "$work/out"
check "a failed apt-get stops the demo" test "$rc" -ne 0
check "the failure names the packages" grep -q "apt-get could not install docker.io" "$work/out"
check "apt's own reason is shown" grep -q "held broken packages" "$work/out"

# 2. The machine's own Node.js (with its npm): apt is never asked for nodejs or npm.
rm -f "$work/apt-args"
rc=0
run_deps "$(fakes 20.20.2 yes ok)" || rc=$?
cat "$work/out"
check "with apt working and Node.js 20 the step succeeds" test "$rc" -eq 0
check "apt was asked for the engine" grep -q "docker.io" "$work/apt-args"
check "apt was not asked for npm or nodejs" bash -c "! grep -qwE 'npm|nodejs' '$work/apt-args'"

# 3. A Node.js too old for the stand-in.
rc=0
run_deps "$(fakes 18.19.0 yes ok)" || rc=$?
cat "$work/out"
check "Node.js 18 stops the demo" test "$rc" -ne 0
check "the message says what is needed" grep -q "needs 20 or newer" "$work/out"

# 4. node without npm: said, and Debian's npm not offered.
rm -f "$work/apt-args"
rc=0
run_deps "$(fakes 20.20.2 no ok)" || rc=$?
cat "$work/out"
check "node without npm stops the demo" test "$rc" -ne 0
check "the message says to install its own npm" grep -q "installed without npm" "$work/out"
check "apt was not asked for anything" test ! -s "$work/apt-args"

# 5. No Node.js at all: Debian's nodejs and npm are asked for (here they install nothing, so
# the version check then says Node.js is missing or too old).
rm -f "$work/apt-args"
rc=0
run_deps "$(fakes none no ok)" || rc=$?
cat "$work/out"
check "without Node.js apt is asked for nodejs and npm" grep -qw "nodejs" "$work/apt-args"
check "and the demo still stops, as no Node.js came" test "$rc" -ne 0
check "saying so" grep -q "no Node.js after installing nodejs" "$work/out"

[ "$fails" -eq 0 ] || { echo "demo_deps_test: $fails check(s) failed"; exit 1; }
echo "demo_deps_test: all checks passed"
