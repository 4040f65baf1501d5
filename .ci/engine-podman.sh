#!/usr/bin/env bash
# Podman's Docker-compatible service, rootful, beside the system Docker
# engine: Debian 12's podman 4.3 (what docs/engines.md measures), serving
# the API on its own socket with no time-out. Podman keeps no daemon of its
# own; the service is one process that the tests talk to as they talk to
# dockerd.
#
# Idempotent: installs podman if missing, starts the service if it is not
# answering, waits for it, and prints its API version on stdout (everything
# else goes to stderr). Needs root.
#
#   DOCKER_HOST=$(.ci/engine-podman.sh --host) cargo test --test runtime
#
# With --rootless it does the same for rootless Podman instead: an
# unprivileged user made for it ($ROOTLESS_USER, with subordinate IDs), its
# service on $XDG_RUNTIME_DIR/podman/podman.sock, and prints that user's name
# (tests/rootless_podman.rs runs safeclaw as that user).
#
# Stop them: kill "$(cat /run/safeclaw-ci/podman.pid)" and
# pkill -u safeclaw-rootless podman
set -euo pipefail

RUN_DIR=/run/safeclaw-ci
SOCKET=$RUN_DIR/podman.sock
PIDFILE=$RUN_DIR/podman.pid
LOG=$RUN_DIR/podman.log
# uidmap, slirp4netns and fuse-overlayfs are what rootless Podman needs;
# installed with it so the rootless checks of docs/engines.md can run too.
PACKAGES=(podman uidmap slirp4netns fuse-overlayfs)
WAIT_SECONDS=60
ROOTLESS_USER=safeclaw-rootless

HOST=unix://$SOCKET
if [ "${1:-}" = --host ]; then
  echo "$HOST"
  exit 0
fi

api_version() {
  curl -fsS --unix-socket "$SOCKET" http://d/version 2>/dev/null \
    | sed -nE 's/.*"ApiVersion":"([^"]+)".*/\1/p'
}

install_podman() {
  command -v podman >/dev/null && command -v newuidmap >/dev/null && return
  echo "== installing ${PACKAGES[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PACKAGES[@]}" >&2 \
    || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PACKAGES[@]}" >&2; }
}

if [ "${1:-}" = --rootless ]; then
  install_podman
  if ! id "$ROOTLESS_USER" >/dev/null 2>&1; then
    # useradd gives the user subordinate uid and gid ranges (login.defs).
    useradd --create-home --shell /usr/sbin/nologin "$ROOTLESS_USER" >&2
  fi
  grep -q "^$ROOTLESS_USER:" /etc/subuid || usermod --add-subuids 300000-365535 --add-subgids 300000-365535 "$ROOTLESS_USER"
  uid=$(id -u "$ROOTLESS_USER")
  runtime_dir=/run/user/$uid
  install -d -m 0700 -o "$ROOTLESS_USER" -g "$ROOTLESS_USER" "$runtime_dir"
  user_socket=$runtime_dir/podman/podman.sock
  as_user() {
    runuser -u "$ROOTLESS_USER" -- env -i HOME="$(getent passwd "$ROOTLESS_USER" | cut -d: -f6)" \
      XDG_RUNTIME_DIR="$runtime_dir" PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"
  }
  rootless_up() { curl -fsS --unix-socket "$user_socket" http://d/version >/dev/null 2>&1; }
  if ! rootless_up; then
    echo "== starting rootless podman system service for $ROOTLESS_USER" >&2
    as_user mkdir -p "$runtime_dir/podman"
    as_user setsid podman system service --time=0 "unix://$user_socket" \
      >"$RUN_DIR/rootless-podman.log" 2>&1 </dev/null &
    for _ in $(seq 1 "$WAIT_SECONDS"); do rootless_up && break; sleep 1; done
    rootless_up || { echo "rootless podman did not come up:" >&2; tail -20 "$RUN_DIR/rootless-podman.log" >&2; exit 1; }
  fi
  echo "$ROOTLESS_USER"
  exit 0
fi

install_podman

if [ -z "$(api_version)" ]; then
  mkdir -p "$RUN_DIR"
  chmod 0755 "$RUN_DIR"
  rm -f "$SOCKET"
  echo "== starting podman system service on $SOCKET" >&2
  # setsid: the service outlives this script and CI's shell job control.
  setsid podman system service --time=0 "$HOST" >"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 "$WAIT_SECONDS"); do
    [ -n "$(api_version)" ] && break
    sleep 1
  done
fi
version=$(api_version)
if [ -z "$version" ]; then
  echo "podman's service did not come up:" >&2
  tail -20 "$LOG" >&2 || true
  exit 1
fi
echo "$version"
