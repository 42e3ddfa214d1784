//! Builds, at test time, a busybox rootfs and an OCI bundle running the
//! counter workload (`tests/fixtures/counter.sh`, shared with
//! `scripts/lib/rootfs.sh`). Everything lives in a caller-owned directory;
//! nothing here touches the host outside it, except running `runc spec`.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The workload, word for word the file the shell builder copies.
pub const COUNTER_SCRIPT: &str = include_str!("../fixtures/counter.sh");

/// Busybox applets linked into `/bin`: what the counter and a debugging
/// `runc exec` need.
const APPLETS: &[&str] = &[
    "sh", "ash", "sleep", "echo", "cat", "head", "tr", "ls", "ps", "mv", "rm", "mkdir", "true", "false", "test", "[",
];

/// How the bundle's `config.json` is edited after `runc spec`.
#[derive(Clone, Debug, Default)]
pub struct BundleOpts {
    /// `process.terminal`: true gives the container a pty (needs a console socket).
    pub terminal: bool,
    /// `BALLAST_MB` for the counter: MiB held in memory before counting.
    pub ballast_mb: Option<u32>,
    /// Start a child beside the counter that leaves a zombie of its own
    /// (it forks a shell that exits, then execs `sleep`, which never reaps).
    pub zombie_child: bool,
    /// The `org.criu.config` annotation: a CRIU config file that runc
    /// hands the CRIU it runs (e.g. with an `action-script` line).
    pub criu_config: Option<PathBuf>,
}

/// Populates `root` with busybox, applet links, empty mount points and
/// `/bin/counter`.
pub fn build_rootfs(root: &Path) {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
        fs::create_dir_all(root.join(d)).unwrap_or_else(|e| panic!("mkdir {d} in rootfs: {e}"));
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod rootfs/tmp");
    fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("copy /bin/busybox into the rootfs (is busybox-static installed?)");
    for applet in APPLETS {
        symlink("busybox", root.join("bin").join(applet)).unwrap_or_else(|e| panic!("link applet {applet}: {e}"));
    }
    let counter = root.join("bin/counter");
    fs::write(&counter, COUNTER_SCRIPT).expect("write /bin/counter");
    fs::set_permissions(&counter, fs::Permissions::from_mode(0o755)).expect("chmod /bin/counter");
}

/// Creates `dir/rootfs` and `dir/config.json` (from `runc spec`, edited with
/// `opts`) and returns the rootfs path.
pub fn build_bundle(dir: &Path, opts: &BundleOpts) -> PathBuf {
    let rootfs = dir.join("rootfs");
    build_rootfs(&rootfs);
    let out = Command::new("runc")
        .arg("spec")
        .current_dir(dir)
        .output()
        .expect("run `runc spec`");
    assert!(
        out.status.success(),
        "`runc spec` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join("config.json");
    let mut spec: Value =
        serde_json::from_slice(&fs::read(&path).expect("read config.json")).expect("parse config.json");
    edit_spec(&mut spec, opts);
    fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).expect("write config.json");
    rootfs
}

/// The edits to a `runc spec` default: our args, terminal, writable root,
/// and the ballast variable.
fn edit_spec(spec: &mut Value, opts: &BundleOpts) {
    let process = &mut spec["process"];
    process["terminal"] = Value::Bool(opts.terminal);
    process["args"] = if opts.zombie_child {
        // The init still becomes /bin/counter (exec), as restores check.
        serde_json::json!([
            "/bin/sh",
            "-c",
            "(sh -c 'exit 0' & exec sleep 100000) & exec /bin/counter"
        ])
    } else {
        serde_json::json!(["/bin/counter"])
    };
    if let Some(mb) = opts.ballast_mb {
        let env = process["env"].as_array_mut().expect("process.env is an array");
        env.push(Value::String(format!("BALLAST_MB={mb}")));
    }
    spec["root"]["readonly"] = Value::Bool(false);
    if let Some(conf) = &opts.criu_config {
        spec["annotations"]["org.criu.config"] = Value::String(conf.display().to_string());
    }
}
