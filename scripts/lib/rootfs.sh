# scripts/lib/rootfs.sh — build a tiny busybox rootfs and an OCI bundle whose
# process is the `counter` workload. Sourced by scripts/demo; the Rust tests
# (tests/common/rootfs.rs) build the same thing in Rust from the same
# counter script.
#
# The workload (tests/fixtures/counter.sh) keeps its counter in a shell
# variable, prints it each tick and rewrites /tmp/count, so after a restore
# the value visibly continues from the checkpointed memory.

# Applets the counter and the demo need inside the container.
CKPT_APPLETS=(sh ash sleep echo cat head tr ls ps mv rm mkdir true false test "[")

# The counter workload is one file shared with the Rust tests.
CKPT_COUNTER_SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tests/fixtures/counter.sh"

# ckpt_build_rootfs DIR: populate DIR (created if needed) with busybox,
# its applet links, the usual empty mount points and /bin/counter.
ckpt_build_rootfs() {
    local root=$1 a
    [ -x /bin/busybox ] || { echo "rootfs: /bin/busybox missing (install busybox-static)" >&2; return 1; }
    mkdir -p "$root"/{bin,proc,sys,dev,tmp,etc,root}
    cp /bin/busybox "$root/bin/busybox"
    for a in "${CKPT_APPLETS[@]}"; do
        ln -sf busybox "$root/bin/$a"
    done
    cp "$CKPT_COUNTER_SCRIPT" "$root/bin/counter"
    chmod 0755 "$root/bin/counter"
    chmod 1777 "$root/tmp"
}

# ckpt_build_bundle DIR: DIR/rootfs plus a config.json (from `runc spec`)
# that runs /bin/counter without a terminal on a writable rootfs.
ckpt_build_bundle() {
    local bundle=$1
    mkdir -p "$bundle"
    ckpt_build_rootfs "$bundle/rootfs"
    (cd "$bundle" && rm -f config.json && runc spec)
    # `runc spec` output is stable; edit the three fields with sed rather
    # than depending on jq being installed.
    sed -i \
        -e 's/"terminal": true/"terminal": false/' \
        -e 's/"readonly": true/"readonly": false/' \
        -e 's/"sh"$/"\/bin\/counter"/' \
        "$bundle/config.json"
    grep -q '"/bin/counter"' "$bundle/config.json" || {
        echo "rootfs: could not set args in $bundle/config.json" >&2
        return 1
    }
}
