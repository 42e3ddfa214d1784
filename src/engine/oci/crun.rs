//! crun state directories: `<root>/<id>/status` (JSON) plus a copy of the
//! spec as `<root>/<id>/config.json`.

use crate::engine::{Container, EngineError, RuntimeKind};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct StatusFile {
    pid: i32,
    #[serde(rename = "process-start-time")]
    process_start_time: u64,
    #[serde(rename = "cgroup-path", default)]
    cgroup_path: String,
    rootfs: PathBuf,
    bundle: PathBuf,
    /// crun keeps this as a JSON array *inside a string*.
    #[serde(default)]
    external_descriptors: Option<String>,
}

/// Loads `<root>/<id>/status`; `Ok(None)` when there is none.
pub fn load(root: &Path, id: &str) -> Result<Option<Container>, EngineError> {
    let path = root.join(id).join("status");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(EngineError::ReadState { path, source }),
    };
    parse_status(&path, &text, root, id).map(Some)
}

/// Parses crun's `status` text. crun's `cgroup-path` is relative to each
/// hierarchy's mount point; it is kept under the key `""` and resolved
/// against the host's cgroup mounts by `cgroups::freezer_dir` when needed.
pub fn parse_status(path: &Path, text: &str, root: &Path, id: &str) -> Result<Container, EngineError> {
    let parse_err = |reason: String| EngineError::ParseState {
        path: path.to_path_buf(),
        reason,
    };
    let st: StatusFile = serde_json::from_str(text).map_err(|e| parse_err(e.to_string()))?;
    let external_descriptors = match st.external_descriptors.as_deref() {
        None | Some("") => Vec::new(),
        Some(s) => serde_json::from_str(s).map_err(|e| parse_err(format!("external_descriptors: {e}")))?,
    };
    // crun stores the rootfs as given in config.json: possibly relative to the bundle.
    let rootfs = if st.rootfs.is_absolute() {
        st.rootfs
    } else {
        st.bundle.join(st.rootfs)
    };
    let mut cgroup_paths = BTreeMap::new();
    if !st.cgroup_path.is_empty() {
        cgroup_paths.insert(String::new(), PathBuf::from(st.cgroup_path));
    }
    Ok(Container {
        id: id.to_string(),
        runtime: RuntimeKind::Crun,
        runtime_root: root.to_path_buf(),
        init_pid: st.pid,
        init_start: st.process_start_time,
        spec_path: root.join(id).join("config.json"),
        bundle: st.bundle,
        rootfs,
        external_descriptors,
        cgroup_paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = r#"{"pid": 7741, "process-start-time": 23775, "cgroup-path": "/expc1",
      "scope": "", "rootfs": "rootfs", "systemd-cgroup": false, "bundle": "/tmp/exp/bc",
      "created": "2026-11-21T21:44:34.727456Z", "owner": "root", "detached": true,
      "external_descriptors": "[\"/dev/null\",\"pipe:[15210]\",\"pipe:[15210]\"]"}"#;

    #[test]
    fn parses_crun_status() {
        let c = parse_status(Path::new("status"), STATUS, Path::new("/run/crun"), "expc1").unwrap();
        assert_eq!(c.init_pid, 7741);
        assert_eq!(c.init_start, 23775);
        assert_eq!(c.rootfs, PathBuf::from("/tmp/exp/bc/rootfs"));
        assert_eq!(c.spec_path, PathBuf::from("/run/crun/expc1/config.json"));
        assert_eq!(
            c.external_descriptors,
            vec!["/dev/null", "pipe:[15210]", "pipe:[15210]"]
        );
        assert_eq!(c.cgroup_paths[""], PathBuf::from("/expc1"));
        assert_eq!(c.runtime, RuntimeKind::Crun);
    }

    #[test]
    fn bad_descriptor_string_is_an_error() {
        let text = STATUS.replace(r#""[\"/dev/null\",\"pipe:[15210]\",\"pipe:[15210]\"]""#, r#""[oops""#);
        assert!(parse_status(Path::new("status"), &text, Path::new("/r"), "x").is_err());
    }
}
