#!/usr/bin/env bash
# Runs the test suite as an ordinary (non-root) user, as contributors and hosted CI runners do:
# tests that need root (network namespaces, the sandbox, cgroups) must skip, saying so, and
# everything else must pass. Run it as root (.ci/run does): it
#   1. creates the user (default `gradertest`, or $GRADER_TEST_USER) when missing;
#   2. lets that user reach the toolchain root uses: every folder above `rustc --print sysroot`
#      that the user cannot enter (/root is 0700 on the CI machine) gets an ACL entry granting
#      that one user search (x) permission, nothing more (installs Debian's `acl` for setfacl
#      when missing); the toolchain's own files are world-readable as rustup installs them;
#   3. copies the working tree (without target/ and .git) to <home>/grader-src, owned by the user;
#   4. runs scripts/test.sh there as the user, with its own CARGO_HOME (crates come from
#      crates.io) and target dir (<home>/target, kept between runs).
# Exits with the test run's status.
#
# Usage: scripts/test-as-user.sh [CARGO-TEST-ARGS...]   (default: --workspace --locked)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
user=${GRADER_TEST_USER:-gradertest}
[ "$(id -u)" = 0 ] || { echo "test-as-user: run as root (it creates the user $user)" >&2; exit 2; }
[ $# -gt 0 ] || set -- --workspace --locked

if ! id "$user" >/dev/null 2>&1; then
  echo "test-as-user: creating the user $user"
  useradd --create-home --shell /bin/bash "$user"
fi
home=$(getent passwd "$user" | cut -d: -f6)
[ -d "$home" ] || { mkdir -p "$home"; chown "$user:" "$home"; }

sysroot=$(rustc --print sysroot)
# The folders from / down to the toolchain, outermost first (a folder below one the user cannot
# enter looks closed too until that one is opened).
dirs=()
dir=$sysroot
while [ "$dir" != / ]; do
  dirs=("$dir" "${dirs[@]}")
  dir=$(dirname "$dir")
done
for dir in "${dirs[@]}"; do
  if ! runuser -u "$user" -- test -x "$dir"; then
    if ! command -v setfacl >/dev/null 2>&1; then
      echo "test-as-user: installing Debian's acl package (setfacl)"
      (apt-get update -qq && apt-get install -y -qq acl >/dev/null) || true
    fi
    command -v setfacl >/dev/null 2>&1 \
      || { echo "test-as-user: no setfacl: cannot let $user reach the toolchain in $sysroot" >&2; exit 2; }
    echo "test-as-user: granting $user search permission on $dir (ACL) to reach the toolchain"
    setfacl -m "u:$user:x" "$dir"
  fi
done
runuser -u "$user" -- "$sysroot/bin/cargo" --version >/dev/null \
  || { echo "test-as-user: $user cannot run $sysroot/bin/cargo" >&2; exit 2; }

src=$home/grader-src
rm -rf "$src"
mkdir -p "$src"
tar -C "$repo" --exclude=./target --exclude=./.git -cf - . | tar -C "$src" -xf -
chown -R "$user:" "$src"

echo "test-as-user: running the tests as $user in $src"
runuser -u "$user" -- env -i \
  HOME="$home" USER="$user" LOGNAME="$user" LANG=C.UTF-8 CI="${CI:-}" \
  PATH="$sysroot/bin:/usr/local/bin:/usr/bin:/bin" \
  CARGO_HOME="$home/.cargo" CARGO_TARGET_DIR="$home/target" \
  GRADER_TEST_SKIP_LOG="$home/grader-test-skips.log" \
  bash "$src/scripts/test.sh" "$@"
