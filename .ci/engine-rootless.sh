#!/usr/bin/env bash
# Rootless engines for tests/rootless.rs: an unprivileged user made for
# them ($ROOTLESS_USER, with subordinate IDs), and as that user rootless
# Podman's service ($XDG_RUNTIME_DIR/podman/podman.sock) and rootless
# Docker (Debian's dockerd-rootless.sh under rootlesskit,
# $XDG_RUNTIME_DIR/docker.sock). Prints the user's name on stdout
# (everything else goes to stderr). Idempotent; needs root.
#
#   SAFECLAW_TEST_ROOTLESS_USER=$(.ci/engine-rootless.sh) cargo test --test rootless
#
# Stop them: pkill -u safeclaw-rootless
set -euo pipefail

ROOTLESS_USER=safeclaw-rootless
# rootlesskit gives rootless Docker its network through slirp4netns, which
# opens /dev/net/tun (0600 root on this machine): the user gets it through
# a group of its own, nobody else does.
TUN_GROUP=safeclaw-tun
RUN_DIR=/run/safeclaw-ci
PACKAGES=(podman uidmap slirp4netns fuse-overlayfs rootlesskit)
WAIT_SECONDS=60

need=()
command -v podman >/dev/null || need+=(podman)
command -v newuidmap >/dev/null || need+=(uidmap)
command -v slirp4netns >/dev/null || need+=(slirp4netns)
command -v fuse-overlayfs >/dev/null || need+=(fuse-overlayfs)
command -v rootlesskit >/dev/null || need+=(rootlesskit)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]} (of ${PACKAGES[*]})" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2 \
    || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2; }
fi
contrib=/usr/share/docker.io/contrib
[ -x "$contrib/dockerd-rootless.sh" ] || { echo "no $contrib/dockerd-rootless.sh (Debian's docker.io)" >&2; exit 1; }

if ! id "$ROOTLESS_USER" >/dev/null 2>&1; then
  # useradd gives the user subordinate uid and gid ranges (login.defs).
  useradd --create-home --shell /usr/sbin/nologin "$ROOTLESS_USER" >&2
fi
grep -q "^$ROOTLESS_USER:" /etc/subuid \
  || usermod --add-subuids 300000-365535 --add-subgids 300000-365535 "$ROOTLESS_USER"
getent group "$TUN_GROUP" >/dev/null || groupadd --system "$TUN_GROUP"
id -nG "$ROOTLESS_USER" | grep -qw "$TUN_GROUP" || usermod -aG "$TUN_GROUP" "$ROOTLESS_USER"
chgrp "$TUN_GROUP" /dev/net/tun
chmod 0660 /dev/net/tun

uid=$(id -u "$ROOTLESS_USER")
runtime_dir=/run/user/$uid
install -d -m 0700 -o "$ROOTLESS_USER" -g "$ROOTLESS_USER" "$runtime_dir"
mkdir -p "$RUN_DIR"
as_user() {
  runuser -u "$ROOTLESS_USER" -- env -i HOME="$(getent passwd "$ROOTLESS_USER" | cut -d: -f6)" \
    XDG_RUNTIME_DIR="$runtime_dir" PATH="$contrib:/usr/sbin:/usr/bin:/sbin:/bin" "$@"
}
answers() { curl -fsS --unix-socket "$1" http://d/version >/dev/null 2>&1; }
wait_for() {
  local socket=$1 log=$2 what=$3
  for _ in $(seq 1 "$WAIT_SECONDS"); do answers "$socket" && return 0; sleep 1; done
  echo "$what did not come up:" >&2
  tail -20 "$log" >&2
  exit 1
}

podman_socket=$runtime_dir/podman/podman.sock
if ! answers "$podman_socket"; then
  echo "== starting rootless podman for $ROOTLESS_USER" >&2
  as_user mkdir -p "$runtime_dir/podman"
  as_user setsid podman system service --time=0 "unix://$podman_socket" \
    >"$RUN_DIR/rootless-podman.log" 2>&1 </dev/null &
  wait_for "$podman_socket" "$RUN_DIR/rootless-podman.log" "rootless podman"
fi

docker_socket=$runtime_dir/docker.sock
if ! answers "$docker_socket"; then
  echo "== starting rootless docker for $ROOTLESS_USER" >&2
  as_user sh -c 'cd && exec setsid dockerd-rootless.sh' \
    >"$RUN_DIR/rootless-docker.log" 2>&1 </dev/null &
  wait_for "$docker_socket" "$RUN_DIR/rootless-docker.log" "rootless docker"
fi

echo "$ROOTLESS_USER"
