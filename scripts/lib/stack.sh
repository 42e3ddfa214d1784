# scripts/lib/stack.sh — the second test stack: a Debian testing root that
# carries the Docker, containerd, runc, crun, CRIU and podman users run today,
# next to the Debian 13 set installed on the host (scripts/setup).
#
# Functions (each needs root):
#   ckpt_stack_root NAME          the root's path
#   ckpt_stack_build NAME         build the root once; reuse it when complete
#   ckpt_stack_versions NAME      one "package version" line per stack package
# scripts/in-stack enters a root; scripts/setup --stack NAME builds it.

# The roots live outside the repo, in one fixed place:
#  - they are ~1 GiB of root-owned files with device nodes and setuid
#    binaries, which no git clean, cargo or editor should walk or delete;
#  - CI runs in a fresh clone each time, and building a root takes minutes,
#    so a root that survives the clone is reused;
#  - not under /tmp, which tests and daemons fill and clean.
# CKPT_STACKS_DIR overrides the place (for a machine with a small /var).
CKPT_STACKS_DIR=${CKPT_STACKS_DIR:-/var/lib/ckpt-stacks}

# What the tests and the experiments need inside the root. docker-cli holds
# /usr/bin/docker; procps gives pgrep/pkill to the daemon scripts; mount
# (no longer Essential in testing) gives mount/umount to scripts/in-stack;
# iproute2 and the busybox applets inspect and probe container networks;
# python3-pycriu gives crit, with which `ckpt inspect C N` reads checkpoints
# that Docker or runc made.
CKPT_STACK_TESTING_PKGS=(docker.io docker-cli containerd runc crun criu libcriu2 python3-pycriu
    podman busybox-static tar iptables procps iproute2 util-linux mount ca-certificates)

# Written last into a complete root: its presence is what "reuse" checks.
CKPT_STACK_STAMP=.ckpt-stack

_stack_log() { printf 'stack: %s\n' "$*" >&2; }

ckpt_stack_root() {
    printf '%s/%s\n' "$CKPT_STACKS_DIR" "$1"
}

# ckpt_apt_uris: the URIs of the system's main Debian source (the one whose
# suites are not -security/-updates/-backports), so that a stack is built
# from the mirror this machine already uses and no mirror host is written
# into the repo. Prints nothing when there is none.
ckpt_apt_uris() {
    local uris=""
    if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
        uris=$(awk '
            /^URIs:/ { u=$2 }
            /^Suites:/ { for (i=2;i<=NF;i++) if ($i !~ /-security$/ && $i !~ /-updates$/ && $i !~ /-backports$/) s=1 }
            /^$/ { if (u!="" && s) { print u; exit } u=""; s=0 }
            END { if (u!="" && s) print u }
        ' /etc/apt/sources.list.d/*.sources | grep -v -- '-security' | head -n1)
    fi
    if [ -z "$uris" ] && [ -f /etc/apt/sources.list ]; then
        uris=$(awk '$1=="deb" && $0 !~ /security/ { for (i=2;i<=NF;i++) if ($i ~ /^(https?|file|ftp):/) { print $i; exit } }' /etc/apt/sources.list | head -n1)
    fi
    printf '%s\n' "$uris"
}

# _stack_suite NAME: the Debian suite a stack is built from. Debian 12's
# tools know the rolling suite only as `testing` (or `sid`), not by its
# codename, and `testing` is what follows the versions users get.
_stack_suite() {
    case $1 in
    testing) echo testing ;;
    *) return 1 ;;
    esac
}

# _stack_complete ROOT: the stamp is there and every wanted binary runs.
_stack_complete() {
    local root=$1 b
    [ -f "$root/$CKPT_STACK_STAMP" ] || return 1
    for b in /usr/sbin/criu /usr/sbin/runc /usr/bin/crun /usr/bin/containerd \
        /usr/sbin/dockerd /usr/bin/docker /usr/bin/podman /bin/busybox /usr/bin/tar \
        /usr/bin/mount /usr/bin/umount /usr/bin/crit; do
        [ -x "$root$b" ] || [ -x "$root/usr$b" ] || return 1
    done
}

# ckpt_stack_build NAME: builds $CKPT_STACKS_DIR/NAME with mmdebstrap into
# NAME.new and renames it into place when complete, so an interrupted build
# is never taken for a root. A complete root is left alone (delete it to
# rebuild). Installs mmdebstrap on the host if missing.
ckpt_stack_build() {
    local name=$1 suite root tmp uris keyring sources start
    suite=$(_stack_suite "$name") || {
        _stack_log "unknown stack \"$name\" (known: testing)"
        return 2
    }
    root=$(ckpt_stack_root "$name")
    if _stack_complete "$root"; then
        _stack_log "$name root present at $root, reused"
        return 0
    fi
    if [ -e "$root" ]; then
        _stack_log "$root is incomplete (no $CKPT_STACK_STAMP or a binary missing); rebuilding"
        rm -rf --one-file-system "$root"
    fi
    if ! command -v mmdebstrap >/dev/null 2>&1; then
        _stack_log "installing mmdebstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap \
            >/tmp/ckpt-stack-apt.log 2>&1 || {
            apt-get update -qq >/dev/null 2>&1 || true
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap \
                >/tmp/ckpt-stack-apt.log 2>&1 || {
                tail -n 20 /tmp/ckpt-stack-apt.log >&2
                _stack_log "cannot install mmdebstrap"
                return 1
            }
        }
    fi
    uris=$(ckpt_apt_uris)
    if [ -z "$uris" ]; then
        _stack_log "cannot find a Debian mirror in the system's apt sources to reuse"
        return 1
    fi
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    mkdir -p "$CKPT_STACKS_DIR"
    tmp="$root.new"
    rm -rf --one-file-system "$tmp"
    # mmdebstrap names the root's sources file after this one.
    sources=$(mktemp -d)/ckpt-$name.sources
    # The rolling suite's Release file can look older than this machine's
    # clock; accept that for this suite only (a per-source option), not for
    # every source apt knows.
    {
        echo "Types: deb"
        echo "URIs: $uris"
        echo "Suites: $suite"
        echo "Components: main"
        echo "Check-Valid-Until: no"
        [ -f "$keyring" ] && echo "Signed-By: $keyring"
    } >"$sources"
    _stack_log "building the $name root ($suite from $uris) in $tmp"
    start=$(date +%s)
    # --variant=apt: only Essential packages and apt, then what we name;
    # no recommends, which for podman and docker.io pull in hundreds of MiB
    # the tests never use.
    if ! mmdebstrap --variant=apt --mode=root \
        --aptopt='APT::Install-Recommends "false"' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --include="$(
            IFS=,
            echo "${CKPT_STACK_TESTING_PKGS[*]}"
        )" \
        "$suite" "$tmp" "$sources" >/tmp/ckpt-stack-build.log 2>&1; then
        tail -n 30 /tmp/ckpt-stack-build.log >&2
        rm -rf "$(dirname "$sources")"
        rm -rf --one-file-system "$tmp"
        _stack_log "mmdebstrap failed (full log: /tmp/ckpt-stack-build.log)"
        return 1
    fi
    rm -rf "$(dirname "$sources")"
    # What the tests expect of a host: a /bin/busybox (the rootfs builder
    # copies it) and an /etc/criu for runc's optional config file.
    mkdir -p "$tmp/etc/criu"
    ckpt_stack_versions_of "$tmp" >"$tmp/$CKPT_STACK_STAMP"
    mv "$tmp" "$root"
    _stack_log "$name root built in $(($(date +%s) - start)) s, $(du -sh --one-file-system "$root" | cut -f1) at $root"
}

# ckpt_stack_versions_of ROOT: "package version" per stack package, from
# the root's dpkg database (no need to enter it).
ckpt_stack_versions_of() {
    dpkg-query --admindir="$1/var/lib/dpkg" -W -f '${Package} ${Version}\n' \
        "${CKPT_STACK_TESTING_PKGS[@]}" 2>/dev/null
}

ckpt_stack_versions() {
    ckpt_stack_versions_of "$(ckpt_stack_root "$1")"
}
