#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image: it installs what the
# student programs need (Python 3, a C toolchain) and puts the grader at /usr/local/bin/grader,
# which is on PATH when run_autograder runs. When the autograder zip (unpacked at
# /autograder/source, see README.md next to this file) holds a release asset
# `grader-x86_64-unknown-linux-musl.tar.gz` with its `.sha256`, that static binary is installed
# (checksum verified; no Rust toolchain, no build); otherwise the grader is built from the sources
# in the zip.
#
# Environment (for trying it elsewhere): AUTOGRADER_ROOT (default /autograder), GRADER_PREFIX
# (install root, default /usr/local).
set -euo pipefail

ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
PREFIX="${GRADER_PREFIX:-/usr/local}"

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends ca-certificates curl python3 build-essential

asset="$SOURCE/grader-x86_64-unknown-linux-musl.tar.gz"
if [ -f "$asset" ]; then
  (cd "$SOURCE" && sha256sum --check --strict "$(basename "$asset").sha256")
  unpacked=$(mktemp -d)
  tar -xzf "$asset" -C "$unpacked"
  install -D -m 0755 "$unpacked/grader-x86_64-unknown-linux-musl/grader" "$PREFIX/bin/grader"
  rm -rf "$unpacked"
  "$PREFIX/bin/grader" --version
  exit 0
fi

# The grader needs Rust 1.85 or later (edition 2024); Ubuntu's packaged Rust is often older, so
# install the current stable toolchain with rustup.
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
    | sh -s -- -y --profile minimal --default-toolchain stable
fi
export PATH="$HOME/.cargo/bin:$PATH"

# Build outside the source tree and drop the build afterwards: the image stays small, and
# /autograder/source stays as uploaded.
target=$(mktemp -d)
cargo install --locked --force --root "$PREFIX" --target-dir "$target" --path "$SOURCE/grader"
rm -rf "$target"

"$PREFIX/bin/grader" --version
