//! The one place that reads an OCI runtime spec (`config.json`, via `oci-spec`).
//!
//! [`load`] returns the parsed spec reduced to [`SpecFacts`], the plain data
//! the planner needs, plus the raw JSON that is copied into each checkpoint.

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Errors reading a spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read OCI spec {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse OCI spec {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
}

/// One mount of the spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecMount {
    pub destination: PathBuf,
    pub typ: String,
    pub source: Option<PathBuf>,
    pub options: Vec<String>,
}

impl SpecMount {
    /// A bind mount: type `bind`, or options containing `bind`/`rbind`
    /// (runc treats both the same).
    pub fn is_bind(&self) -> bool {
        self.typ == "bind" || self.options.iter().any(|o| o == "bind" || o == "rbind")
    }
}

/// One namespace of the spec; `path` set when it joins an existing one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecNamespace {
    /// `pid`, `network`, `mount`, `ipc`, `uts`, `user`, `cgroup`, `time`.
    pub typ: String,
    pub path: Option<PathBuf>,
}

/// What the planner needs from a spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SpecFacts {
    /// `process.terminal`.
    pub terminal: bool,
    /// `process.args`.
    pub args: Vec<String>,
    /// `root.path` as written (may be relative to the bundle).
    pub root_path: PathBuf,
    pub mounts: Vec<SpecMount>,
    pub masked_paths: Vec<String>,
    pub device_paths: Vec<PathBuf>,
    pub namespaces: Vec<SpecNamespace>,
}

impl SpecFacts {
    /// The namespace entry of a type, if the container has its own.
    pub fn namespace(&self, typ: &str) -> Option<&SpecNamespace> {
        self.namespaces.iter().find(|n| n.typ == typ)
    }
}

/// A loaded spec: facts plus the raw JSON.
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    pub facts: SpecFacts,
    pub raw: serde_json::Value,
}

/// Reads and parses `path`.
pub fn load(path: &Path) -> Result<LoadedSpec, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses spec text (`path` only names it in errors).
pub fn parse(path: &Path, text: &str) -> Result<LoadedSpec, SpecError> {
    let err = |reason: String| SpecError::Parse {
        path: path.to_path_buf(),
        reason,
    };
    let spec: Spec = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
    let raw: serde_json::Value = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
    Ok(LoadedSpec {
        facts: facts(&spec),
        raw,
    })
}

fn facts(spec: &Spec) -> SpecFacts {
    let process = spec.process().as_ref();
    let linux = spec.linux().as_ref();
    SpecFacts {
        terminal: process.and_then(|p| p.terminal()).unwrap_or(false),
        args: process.and_then(|p| p.args().clone()).unwrap_or_default(),
        root_path: spec.root().as_ref().map(|r| r.path().clone()).unwrap_or_default(),
        mounts: spec
            .mounts()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|m| SpecMount {
                destination: m.destination().clone(),
                typ: m.typ().clone().unwrap_or_default(),
                source: m.source().clone(),
                options: m.options().clone().unwrap_or_default(),
            })
            .collect(),
        masked_paths: linux.and_then(|l| l.masked_paths().clone()).unwrap_or_default(),
        device_paths: linux
            .and_then(|l| l.devices().as_ref())
            .map(|ds| ds.iter().map(|d| d.path().clone()).collect())
            .unwrap_or_default(),
        namespaces: linux
            .and_then(|l| l.namespaces().as_ref())
            .map(|ns| {
                ns.iter()
                    .map(|n| SpecNamespace {
                        typ: namespace_name(n.typ()).to_string(),
                        path: n.path().clone().filter(|p| !p.as_os_str().is_empty()),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn namespace_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Time => "time",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed output of `runc spec`, plus a bind mount and a joined netns.
    pub(crate) const RUNC_SPEC: &str = r#"{
      "ociVersion": "1.2.0",
      "process": {"terminal": true, "user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/"},
      "root": {"path": "rootfs", "readonly": true},
      "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid","strictatime","mode=755","size=65536k"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid","noexec","nodev","relatime","ro"]},
        {"destination": "/data", "type": "none", "source": "/srv/data", "options": ["rbind","rw"]}
      ],
      "linux": {
        "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}],
        "namespaces": [{"type": "pid"}, {"type": "network", "path": "/var/run/netns/x"}, {"type": "mount"}],
        "maskedPaths": ["/proc/kcore", "/sys/firmware"]
      }
    }"#;

    #[test]
    fn reads_the_facts_the_planner_needs() {
        let s = parse(Path::new("config.json"), RUNC_SPEC).unwrap();
        let f = &s.facts;
        assert!(f.terminal);
        assert_eq!(f.args, vec!["sh"]);
        assert_eq!(f.root_path, PathBuf::from("rootfs"));
        assert_eq!(f.mounts.len(), 4);
        assert!(f.mounts[3].is_bind());
        assert!(!f.mounts[1].is_bind());
        assert_eq!(f.masked_paths, vec!["/proc/kcore", "/sys/firmware"]);
        assert_eq!(f.device_paths, vec![PathBuf::from("/dev/fuse")]);
        assert_eq!(
            f.namespace("network").unwrap().path,
            Some(PathBuf::from("/var/run/netns/x"))
        );
        assert_eq!(f.namespace("pid").unwrap().path, None);
        assert!(f.namespace("user").is_none());
        assert_eq!(s.raw["ociVersion"], "1.2.0");
    }

    #[test]
    fn bad_json_names_the_file() {
        let e = parse(Path::new("/b/config.json"), "{").unwrap_err();
        assert!(e.to_string().contains("/b/config.json"));
    }
}
