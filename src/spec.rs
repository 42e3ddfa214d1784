//! The one place that reads an OCI runtime spec (`config.json`, via `oci-spec`).
//!
//! [`load`] returns the parsed spec reduced to [`SpecFacts`], the plain data
//! the planner needs, plus the raw JSON that is copied into each checkpoint.
//! A spec kept as raw JSON (the copy in `ckpt.json`, a bundle's
//! `config.json` as it is now) is read with the accessors below
//! ([`root_path`], [`hooks`], [`has_namespace`], [`cgroups_path`],
//! [`bind_sources`]), which never fail on a shape they do not expect: they
//! find nothing there.

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

/// The raw JSON of the spec at `path`; `None` if there is no file there.
pub fn read_raw(path: &Path) -> Result<Option<serde_json::Value>, SpecError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SpecError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| SpecError::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// `root.path` of a raw spec, as written (may be relative to the bundle).
pub fn root_path(raw: &serde_json::Value) -> Option<&str> {
    raw["root"]["path"].as_str()
}

/// `hooks` of a raw spec: hook kind → its list (absent: empty).
pub fn hooks(raw: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    raw["hooks"].as_object().cloned().unwrap_or_default()
}

/// Whether a raw spec asks for a namespace of `kind` (`time`, `cgroup`, ...).
pub fn has_namespace(raw: &serde_json::Value, kind: &str) -> bool {
    raw["linux"]["namespaces"]
        .as_array()
        .is_some_and(|ns| ns.iter().any(|n| n["type"] == kind))
}

/// `linux.cgroupsPath` of a raw spec.
pub fn cgroups_path(raw: &serde_json::Value) -> Option<&str> {
    raw["linux"]["cgroupsPath"].as_str()
}

/// The host sources of a raw spec's bind mounts ([`SpecMount::is_bind`]),
/// in the spec's order.
pub fn bind_sources(raw: &serde_json::Value) -> Vec<PathBuf> {
    let Some(mounts) = raw["mounts"].as_array() else {
        return Vec::new();
    };
    mounts
        .iter()
        .filter_map(|m| {
            let mount = SpecMount {
                destination: PathBuf::from(m["destination"].as_str().unwrap_or_default()),
                typ: m["type"].as_str().unwrap_or_default().to_string(),
                source: m["source"].as_str().map(PathBuf::from),
                options: m["options"]
                    .as_array()
                    .map(|o| o.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                    .unwrap_or_default(),
            };
            mount.is_bind().then_some(mount.source).flatten()
        })
        .collect()
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

    #[test]
    fn raw_accessors_find_what_is_there_and_nothing_else() {
        let raw: serde_json::Value = serde_json::from_str(RUNC_SPEC).unwrap();
        assert_eq!(root_path(&raw), Some("rootfs"));
        assert!(has_namespace(&raw, "pid") && !has_namespace(&raw, "time"));
        assert_eq!(bind_sources(&raw), vec![PathBuf::from("/srv/data")]);
        assert_eq!(cgroups_path(&raw), None);
        assert!(hooks(&raw).is_empty());
        let odd = serde_json::json!({"root": 7, "mounts": {"x": 1}, "hooks": [], "linux": {"cgroupsPath": "/c", "namespaces": "no"}});
        assert_eq!(root_path(&odd), None);
        assert!(bind_sources(&odd).is_empty() && hooks(&odd).is_empty() && !has_namespace(&odd, "pid"));
        assert_eq!(cgroups_path(&odd), Some("/c"));
        // type "bind", or an (r)bind option, as runc judges it.
        let m = serde_json::json!({"mounts": [
            {"destination": "/a", "type": "bind", "source": "/x"},
            {"destination": "/b", "type": "none", "source": "/y", "options": ["rbind"]},
            {"destination": "/c", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/d", "type": "bind"}
        ]});
        assert_eq!(bind_sources(&m), vec![PathBuf::from("/x"), PathBuf::from("/y")]);
    }

    #[test]
    fn read_raw_of_a_missing_file_is_none_and_of_garbage_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_raw(&dir.path().join("config.json")).unwrap().is_none());
        std::fs::write(dir.path().join("config.json"), "{").unwrap();
        assert!(matches!(
            read_raw(&dir.path().join("config.json")),
            Err(SpecError::Parse { .. })
        ));
    }
}
