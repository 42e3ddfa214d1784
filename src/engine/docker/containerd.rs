//! What containerd leaves to ckpt: the runc state root of a container
//! (found through its shim), and the copies of checkpoints containerd 1.7
//! leaves in its temp dirs after every start-with-checkpoint.
//!
//! Reads through [`ProcRoot`]; removes only copies of the checkpoint just
//! restored, never through a mount.

use crate::procfs::ProcRoot;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The runc state root of a Docker (containerd) container, found through
/// its shim: the init's parent is `containerd-shim-runc-v2 -namespace NS`,
/// whose working directory is the bundle, whose `options.json` names the
/// runc root. Nothing about Docker's exec-root is assumed.
pub fn runc_root_of(proc: &ProcRoot, init_pid: i32) -> Option<PathBuf> {
    let ppid = proc.process(init_pid).stat().ok()?.ppid;
    let shim = proc.process(ppid);
    let namespace = shim_namespace(&shim.cmdline().ok()?)?;
    let bundle = shim.cwd().ok()?;
    let options: Value = serde_json::from_slice(&std::fs::read(bundle.join("options.json")).ok()?).ok()?;
    let root = options["root"].as_str().unwrap_or("/run/containerd/runc");
    Some(Path::new(root).join(namespace))
}

/// PURE: the `-namespace` of a containerd shim command line.
pub fn shim_namespace(args: &[String]) -> Option<String> {
    if !args.first()?.contains("containerd-shim") {
        return None;
    }
    args.windows(2)
        .find(|w| w[0] == "-namespace" || w[0] == "--namespace")
        .map(|w| w[1].clone())
}

/// The temp dirs of running containerd daemons (`$TMPDIR`, default /tmp).
pub fn temp_dirs(proc: &ProcRoot) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for pid in proc.pids().unwrap_or_default() {
        let p = proc.process(pid);
        if p.comm().ok().flatten().is_some_and(|c| c.trim() == "containerd") {
            let env = p.environ().unwrap_or_default();
            let tmp = crate::procfs::env_value(&env, "TMPDIR")
                .map(|v| PathBuf::from(String::from_utf8_lossy(v).into_owned()))
                .unwrap_or_else(|| PathBuf::from("/tmp"));
            if !dirs.contains(&tmp) {
                dirs.push(tmp);
            }
        }
    }
    dirs
}

/// The names and sizes of a directory's CRIU images: what identifies a
/// copy of a checkpoint.
pub fn image_signature(dir: &Path) -> Vec<(std::ffi::OsString, u64)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".img"))
                .filter_map(|e| Some((e.file_name(), e.metadata().ok()?.len())))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `ctrd-checkpoint*` directories in `dirs`.
pub fn checkpoint_copies(dirs: &[PathBuf]) -> std::collections::BTreeSet<PathBuf> {
    dirs.iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|rd| rd.flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with("ctrd-checkpoint"))
        .map(|e| e.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_namespace_parsing() {
        let a: Vec<String> = ["/usr/bin/containerd-shim-runc-v2", "-namespace", "moby", "-id", "x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(shim_namespace(&a).as_deref(), Some("moby"));
        assert_eq!(shim_namespace(&["/bin/sh".to_string()]), None);
    }
}
