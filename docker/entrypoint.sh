#!/usr/bin/env bash
# Entry point of the grader's container image (Dockerfile at the repository root): runs
# `grader "$@"` with the strongest isolation the container allows, and says which.
#
# - As root with the capabilities and permissions the grader's confinement needs (docker run
#   --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_PTRACE, and on AppArmor hosts
#   --security-opt apparmor=unconfined; or --privileged): the grader runs as root, so every
#   scenario gets a network namespace of its own and every student process the minimal root, an
#   unprivileged uid and no capabilities (README, "Security model").
# - As root without them (a plain `docker run`): a root grader could not start any student
#   program there, so the grader runs as the unprivileged user GRADER_USER (default `grader`,
#   uid 1000) instead, in host isolation, with a note saying so and which flags would change it.
# - As any other user (docker run --user ...): the grader runs as that user (host isolation).
#
# Environment: GRADER (the grader binary, default /usr/local/bin/grader), GRADER_USER (the user,
# or uid:gid, to drop to). Outside a container (the test suite) the same decisions hold.
set -euo pipefail

grader=${GRADER:-/usr/local/bin/grader}
user=${GRADER_USER:-grader}

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
elif needed; then
  exec "$grader" "$@"
else
  echo "note: this container does not give root what the grader's isolation needs (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_SYS_PTRACE, mounts); grading as the unprivileged user $user (in a user namespace of its own where the container allows one, else on the host network; the report's isolation says which). For full isolation: docker run --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_PTRACE --security-opt apparmor=unconfined ... (or --privileged)" >&2
  case "$user" in
    *:*) ids=(--reuid "${user%%:*}" --regid "${user##*:}" --clear-groups) ;;
    *) ids=(--reuid "$user" --regid "$(id -g "$user")" --init-groups) ;;
  esac
  home=$(getent passwd "${user%%:*}" | cut -d: -f6 || true)
  if [ -z "$home" ] || [ ! -d "$home" ]; then home=/tmp; fi
  exec setpriv "${ids[@]}" --inh-caps=-all --bounding-set=-all env HOME="$home" "$grader" "$@"
fi
