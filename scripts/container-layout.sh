#!/usr/bin/env bash
# The container image's layout without Docker: follows the Dockerfile's steps into a folder and
# grades from it, so the image's entry point and paths are tested where no Docker daemon runs.
#
#   scripts/container-layout.sh PREFIX [GRADER_BINARY] [-- GRADER ARGS...]
#
# - checks that every COPY source of the Dockerfile's build context exists, and that the runtime
#   tools the image installs (python3, java, javac, gcc, make) are on this machine (missing
#   ones are listed; the grading below needs none of them);
# - installs the grader (GRADER_BINARY, else `cargo build --locked --profile dist -p grader`) at
#   PREFIX/usr/local/bin/grader and docker/entrypoint.sh at PREFIX/usr/local/bin/grader-entrypoint,
#   as the Dockerfile does;
# - runs the entry point from PREFIX/work (the image's WORKDIR) with GRADER pointing at the
#   installed binary and the given grader arguments (default: `run --task 1`, the bundled
#   reference), and exits with its exit code.
# GRADER_USER is passed through (the user a root without capabilities drops to; `grader` in the
# image, which needs not exist here: use uid:gid).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 PREFIX [GRADER_BINARY] [-- GRADER ARGS...]" >&2; exit 2; }
prefix=$1
shift
binary=
if [ $# -ge 1 ] && [ "$1" != -- ]; then binary=$1; shift; fi
if [ $# -ge 1 ] && [ "$1" = -- ]; then shift; fi
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(run --task 1)

# The build context: every COPY source the Dockerfile names (not --from= stages).
missing=0
while read -r src; do
  if [ ! -e "$root/$src" ]; then echo "Dockerfile copies $src, which does not exist" >&2; missing=1; fi
done < <(sed -n '/^COPY --from=/d; s/^COPY \(.*\) [^ ]*$/\1/p' "$root/Dockerfile" | tr ' ' '\n' | grep -v '^$')
[ "$missing" = 0 ] || exit 1
grep -q '^COPY --from=build /usr/local/bin/grader /usr/local/bin/grader$' "$root/Dockerfile" \
  || { echo "the Dockerfile no longer installs the grader at /usr/local/bin/grader" >&2; exit 1; }
grep -q '^COPY docker/entrypoint.sh /usr/local/bin/grader-entrypoint$' "$root/Dockerfile" \
  || { echo "the Dockerfile no longer installs docker/entrypoint.sh as /usr/local/bin/grader-entrypoint" >&2; exit 1; }

absent=()
for tool in python3 java javac gcc make; do command -v "$tool" >/dev/null 2>&1 || absent+=("$tool"); done
[ ${#absent[@]} = 0 ] || echo "note: not on this machine (the image installs them): ${absent[*]}" >&2

if [ -z "$binary" ]; then
  (cd "$root" && cargo build --locked --profile dist -p grader >&2)
  binary="${CARGO_TARGET_DIR:-$root/target}/dist/grader"
fi
mkdir -p "$prefix/usr/local/bin" "$prefix/work"
install -m 0755 "$binary" "$prefix/usr/local/bin/grader"
install -m 0755 "$root/docker/entrypoint.sh" "$prefix/usr/local/bin/grader-entrypoint"
chmod 0755 "$prefix" "$prefix/usr" "$prefix/usr/local" "$prefix/usr/local/bin"
chmod 0777 "$prefix/work"

cd "$prefix/work"
GRADER="$prefix/usr/local/bin/grader" exec "$prefix/usr/local/bin/grader-entrypoint" "${args[@]}"
