#!/usr/bin/env bash
# A second Docker engine, side by side with the system one, that uses the
# containerd image store (what Docker Engine >= 29 and Docker Desktop >= 4.34
# use by default, where an image's ID is its manifest's digest, not its
# config's): Debian 13's docker.io, unpacked (never installed) under
# $ENGINE_ROOT, run with its own data root, exec root, socket, bridge and
# cgroup parent, no iptables, and Debian 12's containerd, which it starts
# itself. docs/engines.md explains why and how to use it.
#
# Idempotent: starts the engine if it is not answering, waits for it, checks
# that it really uses the containerd snapshotter, and prints its API version
# on stdout (everything else goes to stderr). Needs root and the Debian
# archive; the .debs are cached, so later runs need no network at all.
#
#   DOCKER_HOST=$(.ci/engine-containerd.sh --host) cargo test --test image_pin
#
# Stop it: kill "$(cat /run/safeclaw-ci/docker26.pid)"
set -euo pipefail

# Everything is named once, here.
ENGINE_ROOT=/opt/docker-26                    # the unpacked .debs
CACHE=/var/cache/safeclaw-ci/docker26         # the .debs and the private apt state
DATA_ROOT=/var/lib/safeclaw-ci/docker26       # images, containers, containerd's content store
RUN_DIR=/run/safeclaw-ci
EXEC_ROOT=$RUN_DIR/docker26                   # containerd's socket, netns, runtime state
SOCKET=$RUN_DIR/docker26.sock
PIDFILE=$RUN_DIR/docker26.pid
LOG=$RUN_DIR/docker26.log
CONFIG=$DATA_ROOT/daemon.json
# The engine's default bridge: its own device and subnet, so nothing is
# shared with the system engine's docker0 (172.17.0.0/16).
BRIDGE=sc-docker26
# The bridges of this engine whose containers may talk to each other.
OWN_BRIDGES=sc-+
BRIDGE_ADDR=10.213.26.1/24
# The system engine's bridge, which this engine must never touch.
SYSTEM_BRIDGE=docker0
# Debian 13 (trixie) carries the 26.1 engine (API 1.45). The signing key is
# the same archive key Debian 12 ships.
SUITE=trixie
# The Debian archive this machine's apt already uses (the first URI of its
# main archive, from deb822 .sources or a one-line sources.list): no host is
# named here.
system_mirror() {
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | sed -E 's/\[[^]]*\] //' | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
  fi
  echo "$uri"
}
MIRROR=$(system_mirror)
PACKAGES=(docker.io docker-cli)
WANT_MAJOR=26
SNAPSHOTTER=io.containerd.snapshotter.v1
WAIT_SECONDS=60

HOST=unix://$SOCKET
if [ "${1:-}" = --host ]; then
  echo "$HOST"
  exit 0
fi

say() { echo "engine-containerd: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (it runs a dockerd)"

docker26() { DOCKER_HOST=$HOST "$ENGINE_ROOT/usr/bin/docker" "$@"; }
answers() { [ -x "$ENGINE_ROOT/usr/bin/docker" ] && docker26 version --format '{{.Server.APIVersion}}' >/dev/null 2>&1; }

# One run at a time: two concurrent runs must not start two daemons on the
# same data root. (flock and setsid are util-linux, which Debian always has.)
mkdir -p "$RUN_DIR"
exec 9>"$RUN_DIR/docker26.lock"
flock 9

# --- the binaries -----------------------------------------------------------
# apt runs with a private sources list, state and cache, so the system's apt
# never sees trixie (no `apt-get install` elsewhere can pull a package from
# it) and no system file is changed. apt checks every .deb against the
# archive's signed index.
fetch_debs() {
  [ -n "$MIRROR" ] || die "no Debian archive in this machine's apt sources to fetch $SUITE's ${PACKAGES[*]} from"
  local apt_dir=$CACHE/apt
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/empty" "$CACHE/debs"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $SUITE main" \
    >"$apt_dir/sources.list"
  local opts=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o "Dir::Etc::SourceParts=$apt_dir/empty"
    -o "Dir::Etc::Preferences=/dev/null"
    -o "Dir::Etc::PreferencesParts=$apt_dir/empty"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::State::status=/dev/null"
    -o "Dir::Cache=$apt_dir"
    -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
    -o "APT::Sandbox::User=root"
  )
  say "downloading ${PACKAGES[*]} from $SUITE"
  apt-get "${opts[@]}" update -qq
  (cd "$CACHE/debs" && apt-get "${opts[@]}" download "${PACKAGES[@]}")
}

debs_cached() {
  local p
  for p in "${PACKAGES[@]}"; do
    compgen -G "$CACHE/debs/${p}_${WANT_MAJOR}.*.deb" >/dev/null || return 1
  done
}

if [ ! -x "$ENGINE_ROOT/usr/sbin/dockerd" ] || [ ! -x "$ENGINE_ROOT/usr/bin/docker" ]; then
  debs_cached || fetch_debs
  debs_cached || die "no ${PACKAGES[*]} $WANT_MAJOR.x in $SUITE (see $CACHE/debs)"
  rm -rf "$ENGINE_ROOT.new"
  mkdir -p "$ENGINE_ROOT.new"
  for p in "${PACKAGES[@]}"; do
    # The newest cached one, if several point releases were fetched.
    deb=$(printf '%s\n' "$CACHE/debs/${p}_${WANT_MAJOR}."*.deb | sort -V | tail -1)
    dpkg -x "$deb" "$ENGINE_ROOT.new"
  done
  rm -rf "$ENGINE_ROOT"
  mv "$ENGINE_ROOT.new" "$ENGINE_ROOT"
fi

# What dockerd 26 runs but Debian 13's docker.io does not carry: Debian 12's
# containerd (1.6; trixie's would need a newer libc), runc and tini
# (docker-init). The system engine's package brings them already.
need_apt=()
command -v containerd >/dev/null || need_apt+=(containerd)
command -v runc >/dev/null || need_apt+=(runc)
command -v docker-init >/dev/null || need_apt+=(tini)
command -v ip >/dev/null || need_apt+=(iproute2)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing ${need_apt[*]} (Debian 12)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

# --- the engine -------------------------------------------------------------
if answers; then
  say "already running at $HOST"
else
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    die "dockerd $(cat "$PIDFILE") holds $PIDFILE but does not answer at $HOST (see $LOG)"
  fi
  rm -f "$PIDFILE" "$SOCKET"

  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add name "$BRIDGE" type bridge
  fi
  # With --bridge, dockerd takes the subnet from the bridge's address.
  if ! ip -4 addr show dev "$BRIDGE" | grep -qF "inet $BRIDGE_ADDR "; then
    ip addr add "$BRIDGE_ADDR" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up

  mkdir -p "$DATA_ROOT" "$EXEC_ROOT"
  # Without iptables of its own (below), traffic between two containers on
  # one of this engine's bridges still crosses the host's FORWARD chain
  # (bridge netfilter), where the system engine's policy drops it. Allowed
  # for bridges named $OWN_BRIDGES (this engine's default one, and the
  # networks tests make here with com.docker.network.bridge.name).
  iptables -C FORWARD -i "$OWN_BRIDGES" -o "$OWN_BRIDGES" -j ACCEPT 2>/dev/null \
    || iptables -I FORWARD 1 -i "$OWN_BRIDGES" -o "$OWN_BRIDGES" -j ACCEPT
  # Written on every start so a change here takes effect. No iptables: the
  # system engine owns the DOCKER chains, and a second daemon managing them
  # would flush its rules. Published ports still work through docker-proxy
  # (the tests only publish on 127.0.0.1), and the host reaches containers
  # on the bridge directly. No "default-address-pools": with it, dockerd
  # (daemon/daemon_unix.go, configureNetworking) deletes the interface named
  # docker0 when it restarts with a data root that already has a default
  # network, whatever its own bridge is called: the system engine's bridge.
  cat >"$CONFIG" <<EOF
{
  "features": { "containerd-snapshotter": true },
  "data-root": "$DATA_ROOT",
  "exec-root": "$EXEC_ROOT",
  "pidfile": "$PIDFILE",
  "hosts": ["$HOST"],
  "bridge": "$BRIDGE",
  "iptables": false,
  "ip6tables": false,
  "ip-masq": false,
  "cgroup-parent": "safeclaw-docker26",
  "userland-proxy-path": "$ENGINE_ROOT/usr/sbin/docker-proxy"
}
EOF
  system_bridge_before=$(ip -o link show "$SYSTEM_BRIDGE" 2>/dev/null || true)
  say "starting dockerd $("$ENGINE_ROOT/usr/sbin/dockerd" --version | sed 's/^Docker version //') at $HOST"
  # Its own binaries first on PATH (docker-proxy), then the system's
  # containerd, runc and docker-init. setsid: it outlives this script and
  # the CI step that ran it. 9>&-: it must not inherit the lock, or the
  # next run would wait for it forever.
  PATH=$ENGINE_ROOT/usr/sbin:$ENGINE_ROOT/usr/bin:$PATH \
    setsid "$ENGINE_ROOT/usr/sbin/dockerd" --config-file "$CONFIG" \
    </dev/null >>"$LOG" 2>&1 9>&- &
  started=$SECONDS
  until answers; do
    if [ $((SECONDS - started)) -ge $WAIT_SECONDS ]; then
      tail -20 "$LOG" >&2
      die "dockerd did not answer at $HOST within ${WAIT_SECONDS}s (log: $LOG)"
    fi
    sleep 0.5
  done
  say "up after $((SECONDS - started))s"
  # A guard for the warning above: the system engine's containers cannot
  # start without its bridge.
  if [ -n "$system_bridge_before" ] && ! ip link show "$SYSTEM_BRIDGE" >/dev/null 2>&1; then
    die "starting this engine removed $SYSTEM_BRIDGE, the system engine's bridge: restore it (ip link add $SYSTEM_BRIDGE type bridge, its address, up) and fix $CONFIG"
  fi
fi

# The point of this engine: refuse to go on if it is not the containerd
# image store (an old data root, a config that was not read, ...).
driver_status=$(docker26 info --format '{{json .DriverStatus}}')
case "$driver_status" in
  *"\"$SNAPSHOTTER\""*) ;;
  *) die "the engine at $HOST does not use the containerd image store: DriverStatus $driver_status" ;;
esac
docker26 version --format '{{.Server.APIVersion}}'
