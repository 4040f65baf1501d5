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
# Rootless engines: .ci/engine-rootless.sh.
#
# Stop it: kill "$(cat /run/safeclaw-ci/podman.pid)"
set -euo pipefail

RUN_DIR=/run/safeclaw-ci
SOCKET=$RUN_DIR/podman.sock
PIDFILE=$RUN_DIR/podman.pid
LOG=$RUN_DIR/podman.log
# uidmap, slirp4netns and fuse-overlayfs are what rootless Podman needs
# (.ci/engine-rootless.sh).
PACKAGES=(podman uidmap slirp4netns fuse-overlayfs)
WAIT_SECONDS=60

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


install_podman

if [ -z "$(api_version)" ]; then
  mkdir -p "$RUN_DIR"
  chmod 0755 "$RUN_DIR"
  rm -f "$SOCKET"
  echo "== starting podman system service on $SOCKET" >&2
  # setsid: the service outlives this script and CI's shell job control.
  # From /: its conmon needs the service's working directory, and a
  # checkout the service was started in may be removed while it runs
  # ("[conmon:e] Failed to get working directory", then every start fails
  # with "write child: broken pipe").
  setsid sh -c 'cd / && exec podman system service --time=0 "$1"' sh "$HOST" \
    >"$LOG" 2>&1 </dev/null &
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
