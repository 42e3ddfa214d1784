# scripts/lib/docker-env.sh — a private containerd + dockerd in one directory,
# for scripts/demo --docker. tests/common/docker.rs does the same in Rust;
# keep the two configurations alike.
#
# Everything lives under DIR: configs, sockets, containerd's root, state and
# TMPDIR, dockerd's data-root and exec-root, both logs. Nothing touches the
# host's /var/lib/docker, /run/docker or /run/containerd, so this can run
# next to a system Docker (or another private one). DIR must be short: the
# sockets inside it are limited to ~108 bytes.
#
# Functions (each needs root):
#   ckpt_docker_start DIR [EXPERIMENTAL]  start both daemons, wait until ready
#   ckpt_docker_import_image DIR IMAGE    busybox + /bin/counter as IMAGE
#   ckpt_docker_stop DIR                  remove containers, stop, unmount, rm
#   ckpt_docker_cli DIR ARGS...           /usr/bin/docker ARGS against DIR's daemon
# and sets CKPT_DOCKER_HOST=unix://DIR/docker.sock.

source "$(dirname "${BASH_SOURCE[0]}")/rootfs.sh"

# The Debian CLI matches the Debian daemon; /usr/local/bin may hold a newer
# client that talks a newer API.
CKPT_DOCKER_CLI=/usr/bin/docker

# ckpt_docker_cli DIR ARGS...: the CLI against DIR's daemon, with a private
# config dir so the user's contexts and plugins do not interfere.
ckpt_docker_cli() {
    local dir=$1
    shift
    DOCKER_HOST="unix://$dir/docker.sock" DOCKER_CONFIG="$dir/cfg" "$CKPT_DOCKER_CLI" "$@"
}

# ckpt_docker_start DIR [EXPERIMENTAL=true]
ckpt_docker_start() {
    local dir=$1 experimental=${2:-true} i
    mkdir -p "$dir"/{tmp,cfg}
    CKPT_DOCKER_HOST="unix://$dir/docker.sock"
    # The CRI plugin is a Kubernetes interface Docker does not use; without
    # it containerd starts faster and touches no CNI directories. containerd
    # 2.x split it into three plugins (1.7 ignores the two ids it does not
    # know). Config version 2 is the newest 1.7 reads; 2.x migrates it.
    cat >"$dir/containerd.toml" <<EOF
version = 2
root = "$dir/ctrd-root"
state = "$dir/ctrd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime"]
[grpc]
  address = "$dir/containerd.sock"
EOF
    cat >"$dir/daemon.json" <<EOF
{
  "experimental": $experimental,
  "iptables": false,
  "ip6tables": false,
  "bridge": "none",
  "data-root": "$dir/data",
  "exec-root": "$dir/exec",
  "pidfile": "$dir/docker.pid",
  "hosts": ["unix://$dir/docker.sock"],
  "containerd": "$dir/containerd.sock"
}
EOF
    # containerd copies each checkpoint it restores into $TMPDIR
    # (ctrd-checkpoint*); keeping that inside DIR makes leftovers visible.
    TMPDIR="$dir/tmp" setsid containerd --config "$dir/containerd.toml" \
        </dev/null >"$dir/containerd.log" 2>&1 &
    echo $! >"$dir/containerd.pid"
    for ((i = 0; i < 100; i++)); do
        [ -S "$dir/containerd.sock" ] && break
        sleep 0.1
    done
    setsid dockerd --config-file "$dir/daemon.json" </dev/null >"$dir/dockerd.log" 2>&1 &
    echo $! >"$dir/dockerd.launch.pid"
    for ((i = 0; i < 300; i++)); do
        if ckpt_docker_cli "$dir" info >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    echo "docker-env: dockerd did not answer within 30 s; its log:" >&2
    tail -n 30 "$dir/dockerd.log" >&2
    echo "docker-env: containerd's log:" >&2
    tail -n 15 "$dir/containerd.log" >&2
    return 1
}

# ckpt_docker_import_image DIR IMAGE: a one-layer image of the test rootfs.
ckpt_docker_import_image() {
    local dir=$1 image=$2
    rm -rf "$dir/rootfs"
    ckpt_build_rootfs "$dir/rootfs"
    tar -C "$dir/rootfs" -c . | ckpt_docker_cli "$dir" import - "$image" >/dev/null
    rm -rf "$dir/rootfs"
}

# _ckpt_kill_pidfile FILE: SIGTERM the pid in FILE, SIGKILL after 10 s.
_ckpt_kill_pidfile() {
    local pid i
    pid=$(cat "$1" 2>/dev/null) || return 0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# ckpt_docker_stop DIR: best effort, safe to call twice or after a failed start.
ckpt_docker_stop() {
    local dir=$1 ids shim child m
    [ -d "$dir" ] || return 0
    if [ -S "$dir/docker.sock" ]; then
        ids=$(ckpt_docker_cli "$dir" ps -aq 2>/dev/null) || ids=
        [ -n "$ids" ] && ckpt_docker_cli "$dir" rm -f $ids >/dev/null 2>&1
    fi
    _ckpt_kill_pidfile "$dir/dockerd.launch.pid"
    _ckpt_kill_pidfile "$dir/containerd.pid"
    # Shims outlive containerd; kill any of ours and what they still run.
    for shim in $(pgrep -f -- "-address $dir/containerd.sock" || true); do
        for child in $(pgrep -P "$shim" || true); do
            kill -KILL "$child" 2>/dev/null || true
        done
        kill -KILL "$shim" 2>/dev/null || true
    done
    # Overlay, shm and netns mounts, deepest first.
    awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$dir"
}
