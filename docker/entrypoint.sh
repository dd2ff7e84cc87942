#!/usr/bin/env bash
# Entry point of the grader's container image (Dockerfile at the repository root): runs
# `grader "$@"` with the strongest isolation the container allows, and says which.
#
# - As root with the capabilities and permissions the grader's confinement needs (docker run
#   --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_PTRACE, and on AppArmor hosts
#   --security-opt apparmor=unconfined; or --privileged): the grader runs as root, so every
#   scenario gets a network namespace of its own and every student process the minimal root, an
#   unprivileged uid and no capabilities (docs/security.md).
# - As root without them (a plain `docker run`, Docker's default capability set): the grader still
#   runs as root and decides itself (docs/security.md, "Root without the capabilities"): host
#   network, no minimal root, but student code under a per-grading unprivileged uid, with one
#   note naming the missing capabilities and the flags that give them. That is stronger than
#   running the grader as an unprivileged user there: student code would then share the grader's
#   uid (its reports, its signals), since Docker's seccomp profile refuses the user namespace
#   an unprivileged grader would use.
# - Opt-in: with GRADER_USER set (a user name, or uid:gid), root without those capabilities runs
#   the grader as that user instead (in a user namespace of its own where the container allows
#   one, e.g. `--security-opt seccomp=unconfined` without capabilities: a network namespace and
#   the minimal root, but no per-grading uid). The `grader` user (uid 1000) exists in the image.
# - As any other user (docker run --user ...): the grader runs as that user (host isolation).
#
# Environment: GRADER (the grader binary, default /usr/local/bin/grader), GRADER_USER (see
# above; unset by default). Outside a container (the test suite) the same decisions hold.
set -euo pipefail

grader=${GRADER:-/usr/local/bin/grader}
user=${GRADER_USER:-}

# What a root grader needs (capability numbers from linux/capability.h): chown, dac_override,
# fowner, kill, setgid, setuid (the per-grading uid and its files), net_admin (a namespace's
# loopback), sys_ptrace (the student's /proc/<pid>/fd, where the grader finds its socket),
# sys_admin (namespaces and mounts).
needed() {
  local eff
  eff=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)
  for cap in 0 1 3 5 6 7 12 19 21; do
    (( (16#$eff >> cap) & 1 )) || return 1
  done
  # Capabilities are not enough where AppArmor or seccomp refuse mounts or namespaces.
  unshare --mount --net --propagation private true 2>/dev/null
}

if [ "$(id -u)" != 0 ]; then
  # Another user: the grader runs with what it has; a HOME it cannot write is replaced.
  if [ ! -w "${HOME:-/nonexistent}" ]; then export HOME=/tmp; fi
  exec "$grader" "$@"
elif [ -z "$user" ] || needed; then
  exec "$grader" "$@"
else
  echo "note: GRADER_USER is set and this container does not give root what the grader's isolation needs (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_SYS_PTRACE, mounts); grading as the unprivileged user $user (in a user namespace of its own where the container allows one, else on the host network; the report's isolation says which). For full isolation: docker run --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_PTRACE --security-opt apparmor=unconfined ... (or --privileged)" >&2
  case "$user" in
    *:*) ids=(--reuid "${user%%:*}" --regid "${user##*:}" --clear-groups) ;;
    *) ids=(--reuid "$user" --regid "$(id -g "$user")" --init-groups) ;;
  esac
  home=$(getent passwd "${user%%:*}" | cut -d: -f6 || true)
  if [ -z "$home" ] || [ ! -d "$home" ]; then home=/tmp; fi
  exec setpriv "${ids[@]}" --inh-caps=-all --bounding-set=-all env HOME="$home" "$grader" "$@"
fi
