#!/usr/bin/env bash
# The logic of the grader's GitHub Action (action.yml at the repository root): get the grader's
# release binary for this machine (checksum verified), grade one submission, write the Markdown
# points table to the job summary and the results to the step outputs, and exit with the
# grader's own exit code (0: at or above the minimum score, 1: below, 2: not graded), so the job
# is gated on `--min-score`.
#
# It runs outside GitHub Actions too (a dry run, as the test suite does): every input is an
# environment variable, GITHUB_STEP_SUMMARY and GITHUB_OUTPUT are written only when set, and
# GRADER_BIN (or GRADER_RELEASE_URL) replaces the download from GitHub.
#
# Inputs (environment):
#   GRADER_TASK          task number (required)
#   GRADER_SUBMISSION    the executable or folder to grade (default ./classchat); a regular file
#                        without its executable bit (a Windows checkout) gets it
#   GRADER_MIN_SCORE     `--min-score`: points (`24`) or a percentage (`80%`); empty: every
#                        scenario must pass for exit code 0
#   GRADER_TASKS_DIR     `--tasks-dir`: task files to use instead of the bundled ones
#   GRADER_ARGS          more arguments for `grader run`, split on blanks (no shell, no quotes)
#   GRADER_OUT           report folder (default grader-reports)
#   GRADER_UPLOAD_RECORDS  `true` (default): the artifact list includes the TOML records
#   GRADER_BIN           a grader binary to run instead of downloading one
#   GRADER_RELEASE_URL   base URL of the release assets (`https://...`, `file:///...`): download
#                        `grader-<target>.tar.gz` and its `.sha256` from there
#   GRADER_REPOSITORY    owner/name whose GitHub releases hold the binary (default: the action's
#                        own repository, read from GRADER_ACTION_PATH)
#   GRADER_VERSION       release tag (`v0.1.0`) or `latest` (default: the action's ref when it is
#                        a full version such as `v0.1.0`, else `latest`)
#   GRADER_TOKEN         token that can read GRADER_REPOSITORY's releases (a private repository
#                        needs one with read access to it; used through `gh`)
#   GRADER_ACTION_PATH   the action's folder (`github.action_path`)
# Outputs (GITHUB_OUTPUT): exit-code, score, max-score, reports (absolute report folder),
# grader (the binary used), artifact-paths (the report files to keep, one per line).
set -uo pipefail

fail() { # message: an infrastructure error (exit 2), as the grader reports its own
  echo "::error::grader action: $*" >&2
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    printf '### Not graded\n\nThe grader action failed before grading: %s\n\n' "$*" >> "$GITHUB_STEP_SUMMARY"
  fi
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    echo "exit-code=2" >> "$GITHUB_OUTPUT"
  fi
  exit 2
}

task=${GRADER_TASK:-}
submission=${GRADER_SUBMISSION:-./classchat}
out=${GRADER_OUT:-grader-reports}
[ -n "$task" ] || fail "the task input is required (task: 1)"
case "$task" in *[!0-9]*) fail "task must be a number, not '$task'" ;; esac

# --- the grader binary -------------------------------------------------------------------------
target() {
  [ "$(uname -s)" = Linux ] || fail "the grader runs on Linux only: use a Linux runner (runs-on: ubuntu-latest), not $(uname -s)"
  case "$(uname -m)" in
    x86_64 | amd64) echo x86_64-unknown-linux-musl ;;
    aarch64 | arm64) echo aarch64-unknown-linux-musl ;;
    *) fail "no grader release for this machine's architecture ($(uname -m)); x86_64 and aarch64 exist" ;;
  esac
}

download() { # -> path of the verified, unpacked binary
  local target asset dir repo version ref
  target=$(target) || exit 2
  asset="grader-$target.tar.gz"
  dir=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/grader-action.XXXXXX") || fail "cannot create a temporary folder"
  repo=${GRADER_REPOSITORY:-}
  version=${GRADER_VERSION:-}
  if [[ "${GRADER_ACTION_PATH:-}" =~ /_actions/([^/]+)/([^/]+)/(.+)$ ]]; then
    repo=${repo:-${BASH_REMATCH[1]}/${BASH_REMATCH[2]}}
    ref=${BASH_REMATCH[3]}
    if [ -z "$version" ] && [[ "$ref" =~ ^v[0-9]+\.[0-9]+\.[0-9]+ ]]; then version=$ref; fi
  fi
  version=${version:-latest}
  if [ -n "${GRADER_RELEASE_URL:-}" ]; then
    echo "Downloading $asset from $GRADER_RELEASE_URL" >&2
    if ! { curl -fsSL --retry 3 -o "$dir/$asset" "$GRADER_RELEASE_URL/$asset" \
      && curl -fsSL --retry 3 -o "$dir/$asset.sha256" "$GRADER_RELEASE_URL/$asset.sha256"; }; then
      fail "could not download $asset (and its .sha256) from $GRADER_RELEASE_URL"
    fi
  else
    [ -n "$repo" ] || fail "set the repository input (owner/name of the grader's repository): it could not be read from the action's path"
    echo "Downloading $asset from the $version release of $repo" >&2
    if [ -n "${GRADER_TOKEN:-}" ] && command -v gh >/dev/null 2>&1; then
      local tag=()
      [ "$version" = latest ] || tag=("$version")
      GH_TOKEN=$GRADER_TOKEN gh release download "${tag[@]}" --repo "$repo" --dir "$dir" \
        --pattern "$asset" --pattern "$asset.sha256" >&2 \
        || fail "could not download $asset from the $version release of $repo (a private repository needs a token input with read access to it)"
    else
      local base="https://github.com/$repo/releases/download/$version"
      [ "$version" = latest ] && base="https://github.com/$repo/releases/latest/download"
      if ! { curl -fsSL --retry 3 -o "$dir/$asset" "$base/$asset" \
        && curl -fsSL --retry 3 -o "$dir/$asset.sha256" "$base/$asset.sha256"; }; then
        fail "could not download $asset from $base (a private repository needs a token and the gh CLI)"
      fi
    fi
  fi
  (cd "$dir" && sha256sum --check --strict "$asset.sha256" >&2) \
    || fail "the checksum of $asset does not match its $asset.sha256: not running it"
  tar -xzf "$dir/$asset" -C "$dir" || fail "cannot unpack $asset"
  [ -x "$dir/grader-$target/grader" ] || fail "$asset holds no grader-$target/grader"
  echo "$dir/grader-$target/grader"
}

if [ -n "${GRADER_BIN:-}" ]; then
  [ -x "$GRADER_BIN" ] || fail "GRADER_BIN=$GRADER_BIN is not an executable"
  grader=$GRADER_BIN
else
  grader=$(download) || exit 2
fi
# The token has done its work; the grader (and so nothing it starts) never holds it.
unset GRADER_TOKEN
"$grader" --version || fail "$grader does not run on this machine"

# --- grading -----------------------------------------------------------------------------------
if [ -f "$submission" ] && [ ! -x "$submission" ]; then
  # Git for Windows and zip uploads lose the executable bit; the grader itself reports a
  # missing file or a missing `#!` line.
  chmod +x "$submission" 2>/dev/null && echo "note: made $submission executable" >&2
fi
args=(run --task "$task" "$submission" --out "$out" --format compact)
[ -z "${GRADER_MIN_SCORE:-}" ] || args+=(--min-score "$GRADER_MIN_SCORE")
[ -z "${GRADER_TASKS_DIR:-}" ] || args+=(--tasks-dir "$GRADER_TASKS_DIR")
read -r -a extra <<< "${GRADER_ARGS:-}"
args+=("${extra[@]}")

echo "grader ${args[*]}" >&2
"$grader" "${args[@]}"
code=$?

# --- summary and outputs -----------------------------------------------------------------------
mkdir -p "$out" 2>/dev/null
reports=$(cd "$out" 2>/dev/null && pwd) || reports=$out
record=$(find "$reports" -mindepth 2 -maxdepth 2 -name "task$task.toml" 2>/dev/null | head -n1)
score=
max=
if [ "$code" -le 1 ] && [ -n "$record" ]; then
  score=$(sed -n 's/^score = //p' "$record" | head -n1)
  max=$(sed -n 's/^max_score = //p' "$record" | head -n1)
fi

if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  if [ "$code" -le 1 ] && [ -n "$record" ]; then
    "$grader" export --format markdown "$reports" --out - >> "$GITHUB_STEP_SUMMARY" \
      || echo "warning: could not write the points table to the job summary" >&2
    if [ -n "${GRADER_MIN_SCORE:-}" ]; then
      if [ "$code" -eq 0 ]; then verdict="reached"; else verdict="**not reached**"; fi
      printf '\nMinimum score %s: %s.\n' "$GRADER_MIN_SCORE" "$verdict" >> "$GITHUB_STEP_SUMMARY"
    fi
  else
    printf '### Task %s: not graded\n\nThe grader could not grade this submission (exit code %s): its log in this step says why.\n' \
      "$task" "$code" >> "$GITHUB_STEP_SUMMARY"
  fi
fi

if [ -n "${GITHUB_OUTPUT:-}" ]; then
  {
    echo "exit-code=$code"
    echo "score=$score"
    echo "max-score=$max"
    echo "reports=$reports"
    echo "grader=$grader"
    echo "artifact-paths<<GRADER_ARTIFACT_PATHS"
    echo "$reports/*/task$task.junit.xml"
    if [ "${GRADER_UPLOAD_RECORDS:-true}" = true ]; then echo "$reports/*/task$task.toml"; fi
    echo "GRADER_ARTIFACT_PATHS"
  } >> "$GITHUB_OUTPUT"
fi
exit "$code"
