//! runc state directories: `<root>/<id>/state.json`.
//!
//! The same format is used by Docker (`/run/docker/runtime-runc/moby`) and
//! containerd (`/run/containerd/runc/<namespace>`), which both drive runc.

use crate::engine::{Container, EngineError, RuntimeKind};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct StateFile {
    id: String,
    init_process_pid: i32,
    init_process_start: u64,
    #[serde(default)]
    cgroup_paths: BTreeMap<String, PathBuf>,
    #[serde(default)]
    external_descriptors: Vec<String>,
    config: StateConfig,
}

#[derive(Deserialize)]
struct StateConfig {
    rootfs: PathBuf,
    #[serde(default)]
    labels: Vec<String>,
}

/// Loads `<root>/<id>/state.json`; `Ok(None)` when there is none.
pub fn load(root: &Path, id: &str) -> Result<Option<Container>, EngineError> {
    let path = root.join(id).join("state.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(EngineError::ReadState { path, source }),
    };
    parse_state(&path, &text, root).map(Some)
}

/// Parses runc's `state.json` text.
pub fn parse_state(path: &Path, text: &str, root: &Path) -> Result<Container, EngineError> {
    let st: StateFile = serde_json::from_str(text).map_err(|e| EngineError::ParseState {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    // runc records the bundle as a `bundle=<dir>` label.
    let bundle = st
        .config
        .labels
        .iter()
        .find_map(|l| l.strip_prefix("bundle="))
        .map(PathBuf::from)
        .ok_or_else(|| EngineError::ParseState {
            path: path.to_path_buf(),
            reason: "no bundle= label in config.labels".into(),
        })?;
    Ok(Container {
        id: st.id,
        runtime: RuntimeKind::Runc,
        runtime_root: root.to_path_buf(),
        init_pid: st.init_process_pid,
        init_start: st.init_process_start,
        spec_path: bundle.join("config.json"),
        bundle,
        rootfs: st.config.rootfs,
        external_descriptors: st.external_descriptors,
        cgroup_paths: st.cgroup_paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = r#"{"id":"exp1","init_process_pid":4871,"init_process_start":12636,
      "created":"2026-11-21T21:42:43Z","config":{"rootfs":"/tmp/exp/b/rootfs","labels":["bundle=/tmp/exp/b"]},
      "cgroup_paths":{"freezer":"/sys/fs/cgroup/freezer/exp1","":"/sys/fs/cgroup/unified/exp1"},
      "external_descriptors":["/dev/null","pipe:[11305]","pipe:[11305]"]}"#;

    #[test]
    fn parses_runc_state() {
        let c = parse_state(Path::new("s.json"), STATE, Path::new("/run/runc")).unwrap();
        assert_eq!(c.id, "exp1");
        assert_eq!(c.init_pid, 4871);
        assert_eq!(c.init_start, 12636);
        assert_eq!(c.bundle, PathBuf::from("/tmp/exp/b"));
        assert_eq!(c.spec_path, PathBuf::from("/tmp/exp/b/config.json"));
        assert_eq!(c.rootfs, PathBuf::from("/tmp/exp/b/rootfs"));
        assert_eq!(c.external_descriptors[1], "pipe:[11305]");
        assert_eq!(c.cgroup_paths["freezer"], PathBuf::from("/sys/fs/cgroup/freezer/exp1"));
    }

    #[test]
    fn missing_bundle_label_is_a_parse_error() {
        let text = STATE.replace("bundle=/tmp/exp/b", "other=1");
        let err = parse_state(Path::new("s.json"), &text, Path::new("/r")).unwrap_err();
        assert!(err.to_string().contains("bundle"), "{err}");
    }

    #[test]
    fn garbage_is_a_parse_error_naming_the_file() {
        let err = parse_state(Path::new("/run/runc/x/state.json"), "{", Path::new("/r")).unwrap_err();
        assert!(err.to_string().contains("/run/runc/x/state.json"));
    }

    #[test]
    fn missing_state_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path(), "nope").unwrap().is_none());
    }
}
