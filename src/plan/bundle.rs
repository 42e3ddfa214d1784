//! PURE: which bundle a restore uses, and which spec a new container gets.
//!
//! The bundle rule: a restore uses only the hooks, rootfs and bundle the
//! original container had, as `ckpt.json` recorded them at dump (and its
//! seal vouches for them). The recorded rootfs must be what the recorded
//! spec's `root.path` names in the recorded bundle; an original bundle
//! used again must still have the recorded hooks and root. Anything else
//! is refused, naming the difference. Nothing here touches the system.

use crate::store::CheckpointMeta;
use serde_json::Value;
use std::path::{Component, Path, PathBuf};

/// The bundle a restore will use, decided before anything is written.
#[derive(Debug, Clone, PartialEq)]
pub enum BundleChoice {
    /// The original bundle directory, as recorded, used as it is.
    Original(PathBuf),
    /// A bundle to generate in the store, with this spec.
    Generated(Value),
}

/// Why the bundle a restore would use is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BundleRefusal {
    /// `ckpt.json` contradicts itself (the caller reports it as corrupt).
    #[error("{0}")]
    Inconsistent(String),
    /// No rootfs was recorded, so no bundle can be generated.
    #[error("the checkpoint recorded no root filesystem")]
    NoRootfs,
    /// The original bundle's spec is no longer the one recorded at dump.
    #[error(
        "{} no longer matches the spec recorded in checkpoint {name}: {}; put back the original, or restore a copy from the recorded spec with --name NEW_ID",
        .config.display(),
        .differences.join("; ")
    )]
    Changed {
        config: PathBuf,
        name: String,
        differences: Vec<String>,
    },
}

/// Chooses the bundle of a restore. `original` is the parsed
/// `config.json` of the recorded bundle, `None` if it is gone or
/// unreadable. For the same id (`new_id` false) the original bundle is
/// used if it is there and still has the recorded hooks and root;
/// otherwise a bundle is generated from the recorded spec.
pub fn choose_bundle(
    meta: &CheckpointMeta,
    new_id: bool,
    original: Option<&Value>,
) -> Result<BundleChoice, BundleRefusal> {
    check_recorded_root(meta)?;
    match (new_id, &meta.bundle, original) {
        (false, Some(bundle), Some(current)) => {
            let differences = spec_differences(&meta.spec, current, bundle);
            if differences.is_empty() {
                Ok(BundleChoice::Original(bundle.clone()))
            } else {
                Err(BundleRefusal::Changed {
                    config: bundle.join("config.json"),
                    name: meta.name.clone(),
                    differences,
                })
            }
        }
        _ => {
            let rootfs = meta.rootfs.as_deref().ok_or(BundleRefusal::NoRootfs)?;
            Ok(BundleChoice::Generated(spec_for_new_container(&meta.spec, rootfs)))
        }
    }
}

/// The recorded `rootfs` must be the recorded spec's `root.path`, resolved
/// against the recorded bundle when relative (as runc and crun resolve
/// it), compared lexically. Nothing to check when no rootfs was recorded.
fn check_recorded_root(meta: &CheckpointMeta) -> Result<(), BundleRefusal> {
    let Some(rootfs) = &meta.rootfs else { return Ok(()) };
    let resolved = root_of(&meta.spec, meta.bundle.as_deref()).map_err(BundleRefusal::Inconsistent)?;
    if clean(rootfs) != resolved {
        return Err(BundleRefusal::Inconsistent(format!(
            "rootfs {} is not the root of the recorded spec, which names {} (root.path in bundle {})",
            rootfs.display(),
            resolved.display(),
            meta.bundle.as_deref().unwrap_or(Path::new("(none)")).display()
        )));
    }
    Ok(())
}

/// The host path `spec`'s `root.path` names, relative paths taken from
/// `bundle`, cleaned lexically.
fn root_of(spec: &Value, bundle: Option<&Path>) -> Result<PathBuf, String> {
    let path = crate::spec::root_path(spec).ok_or_else(|| "the recorded spec has no root.path".to_string())?;
    let path = Path::new(path);
    if path.is_absolute() {
        return Ok(clean(path));
    }
    match bundle {
        Some(b) => Ok(clean(&b.join(path))),
        None => Err(format!(
            "root.path {} is relative, and no bundle was recorded",
            path.display()
        )),
    }
}

/// How `current` (the bundle's spec now) differs from `recorded` in what a
/// restore runs on the host or restores onto: each hook list, and the root.
fn spec_differences(recorded: &Value, current: &Value, bundle: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let (rec, now) = (hooks_of(recorded), hooks_of(current));
    let kinds: std::collections::BTreeSet<&String> = rec.keys().chain(now.keys()).collect();
    for kind in kinds {
        let (a, b) = (hook_list(&rec, kind), hook_list(&now, kind));
        if a != b {
            let paths: Vec<&str> = b.iter().filter_map(|h| h["path"].as_str()).collect();
            out.push(format!(
                "hooks.{kind}: {} recorded at dump, {} now{}",
                a.len(),
                b.len(),
                if paths.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", paths.join(", "))
                }
            ));
        }
    }
    match (root_of(recorded, Some(bundle)), root_of(current, Some(bundle))) {
        (Ok(a), Ok(b)) if a == b => {}
        (a, b) => out.push(format!(
            "root.path: {} recorded at dump, {} now",
            a.map_or_else(|e| e, |p| p.display().to_string()),
            b.map_or_else(|e| e, |p| p.display().to_string())
        )),
    }
    out
}

fn hooks_of(spec: &Value) -> serde_json::Map<String, Value> {
    crate::spec::hooks(spec)
}

/// A hook list; absent and `null` are the empty list.
fn hook_list<'a>(hooks: &'a serde_json::Map<String, Value>, kind: &str) -> &'a [Value] {
    hooks.get(kind).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// `path` with `.`, `..` and repeated separators resolved lexically (like
/// Go's `filepath.Clean`, which runc applies), without touching the disk.
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    out
}

/// The spec of a container restored under a new id: the checkpoint's saved
/// spec with an absolute rootfs (the new bundle lives elsewhere) and no
/// explicit cgroup path, so the runtime derives one from the new id instead
/// of sharing the source container's cgroup.
pub fn spec_for_new_container(saved: &serde_json::Value, rootfs: &Path) -> serde_json::Value {
    let mut spec = saved.clone();
    if let Some(root) = spec.get_mut("root").and_then(|r| r.as_object_mut()) {
        root.insert("path".into(), serde_json::Value::String(rootfs.display().to_string()));
    }
    if let Some(linux) = spec.get_mut("linux").and_then(|l| l.as_object_mut()) {
        linux.remove("cgroupsPath");
    }
    spec
}

/// The annotation runc and crun read for an extra CRIU config file.
pub const CRIU_CONFIG_ANNOTATION: &str = "org.criu.config";

/// The CRIU config file `--tcp-close` writes: the options of the spec's own
/// `org.criu.config` file (`existing`, when it named one), then `tcp-close`,
/// which CRIU's config files spell as its long option without dashes.
pub fn criu_config_text(existing: Option<&str>) -> String {
    let mut text = existing.unwrap_or_default().to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    if !text.lines().any(|l| l.trim() == "tcp-close") {
        text.push_str("tcp-close\n");
    }
    text
}

/// The path of the CRIU config file `spec`'s annotation names, when it
/// names one (an empty value means none, as runc reads it).
pub fn criu_config_of(spec: &Value) -> Option<&str> {
    spec["annotations"][CRIU_CONFIG_ANNOTATION]
        .as_str()
        .filter(|p| !p.is_empty())
}

/// `spec` with its `org.criu.config` annotation naming `config`.
pub fn with_criu_config(mut spec: Value, config: &Path) -> Value {
    if !spec["annotations"].is_object() {
        spec["annotations"] = Value::Object(Default::default());
    }
    spec["annotations"][CRIU_CONFIG_ANNOTATION] = Value::String(config.display().to_string());
    spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tcp_close_goes_into_a_criu_config_the_annotation_names() {
        // (the spec's own config file, the file written)
        #[rustfmt::skip]
        let table: &[(Option<&str>, &str)] = &[
            (None, "tcp-close\n"),
            (Some(""), "tcp-close\n"),
            (Some("log-file=x.log"), "log-file=x.log\ntcp-close\n"),
            (Some("tcp-close\n"), "tcp-close\n"),
        ];
        for (existing, want) in table {
            assert_eq!(criu_config_text(*existing), *want, "{existing:?}");
        }
        let spec = with_criu_config(json!({"root": {"path": "/r"}}), Path::new("/s/web/bundle/criu.conf"));
        assert_eq!(criu_config_of(&spec), Some("/s/web/bundle/criu.conf"));
        let spec = with_criu_config(
            json!({"annotations": {"a": "b", "org.criu.config": "/etc/mine.conf"}}),
            Path::new("/c"),
        );
        assert_eq!(
            (spec["annotations"]["a"].as_str(), criu_config_of(&spec)),
            (Some("b"), Some("/c"))
        );
        assert_eq!(criu_config_of(&json!({"annotations": {"org.criu.config": ""}})), None);
        assert_eq!(criu_config_of(&json!({})), None);
    }

    #[test]
    fn new_container_spec_gets_absolute_root_and_no_cgroup_path() {
        let saved = json!({"root": {"path": "rootfs", "readonly": false}, "linux": {"cgroupsPath": "/docker/abc", "namespaces": []}});
        let s = spec_for_new_container(&saved, Path::new("/b/rootfs"));
        assert_eq!(s["root"]["path"], "/b/rootfs");
        assert_eq!(s["root"]["readonly"], false);
        assert!(s["linux"].get("cgroupsPath").is_none());
        assert!(s["linux"].get("namespaces").is_some());
    }

    fn meta_with_init(ns_pid: i32, comm: &str) -> CheckpointMeta {
        let mut m: CheckpointMeta = serde_json::from_value(json!({
            "schema_version": 1, "tool": "t", "container_id": "c", "name": "n", "runtime": "runc",
            "runtime_root": null, "bundle": null, "rootfs": null, "spec": {},
            "inventory": {"process_count": 1, "fd_count": 0, "anon_rss_bytes": 0, "processes": []},
            "criu_version": "4.1.1", "kernel": "6", "created_at": "x", "frozen_ms": 0, "dump_ms": 0,
            "size_bytes": 0, "options": {"leave_running": false, "tcp_established": false, "file_locks": false, "ext_unix_sk": false},
            "descriptors": [], "files": {}
        }))
        .unwrap();
        m.inventory.processes.push((ns_pid, comm.into()));
        m
    }

    fn meta_for_bundle(bundle: &str, rootfs: &str, spec: Value) -> CheckpointMeta {
        let mut m = meta_with_init(1, "counter");
        m.name = "good".into();
        m.bundle = Some(bundle.into());
        m.rootfs = Some(rootfs.into());
        m.spec = spec;
        m
    }

    fn hook(path: &str) -> Value {
        json!({"path": path, "args": [path]})
    }

    #[test]
    fn recorded_rootfs_must_be_the_recorded_specs_root() {
        let ok = [
            ("/b", "/b/rootfs", json!({"root": {"path": "rootfs"}})),
            ("/b", "/b/rootfs", json!({"root": {"path": "./rootfs/"}})),
            ("/b", "/srv/r", json!({"root": {"path": "/srv//r"}})),
            ("/b/x", "/b/rootfs", json!({"root": {"path": "../rootfs"}})),
        ];
        for (bundle, rootfs, spec) in ok {
            let m = meta_for_bundle(bundle, rootfs, spec.clone());
            assert!(choose_bundle(&m, true, None).is_ok(), "{bundle} {rootfs} {spec}");
        }
        let bad = [
            (
                "/b",
                "/",
                json!({"root": {"path": "rootfs"}}),
                "rootfs / is not the root",
            ),
            (
                "/evil",
                "/b/rootfs",
                json!({"root": {"path": "rootfs"}}),
                "bundle /evil",
            ),
            ("/b", "/b/rootfs", json!({"root": {"path": "/other"}}), "names /other"),
            ("/b", "/b/rootfs", json!({}), "no root.path"),
        ];
        for (bundle, rootfs, spec, needle) in bad {
            let m = meta_for_bundle(bundle, rootfs, spec);
            match choose_bundle(&m, true, None) {
                Err(BundleRefusal::Inconsistent(r)) => assert!(r.contains(needle), "{r}"),
                other => panic!("{bundle} {rootfs}: {other:?}"),
            }
        }
        let mut m = meta_for_bundle("/b", "/b/rootfs", json!({"root": {"path": "rootfs"}}));
        m.bundle = None;
        assert!(matches!(
            choose_bundle(&m, true, None),
            Err(BundleRefusal::Inconsistent(_))
        ));
    }

    #[test]
    fn same_id_uses_the_original_bundle_only_while_it_matches_the_record() {
        let spec = json!({"root": {"path": "rootfs"}, "hooks": {"prestart": [hook("/bin/net")]}});
        let m = meta_for_bundle("/b", "/b/rootfs", spec.clone());
        // Unchanged, or changed in what the restore does not act on.
        let mut other_env = spec.clone();
        other_env["process"] = json!({"env": ["A=1"]});
        for current in [spec.clone(), other_env] {
            assert_eq!(
                choose_bundle(&m, false, Some(&current)),
                Ok(BundleChoice::Original("/b".into()))
            );
        }
        // Gone: generated from the record.
        assert!(matches!(choose_bundle(&m, false, None), Ok(BundleChoice::Generated(_))));
        // A new id never uses the original bundle.
        assert!(matches!(
            choose_bundle(&m, true, Some(&spec)),
            Ok(BundleChoice::Generated(_))
        ));
        let cases = [
            (
                json!({"root": {"path": "rootfs"}, "hooks": {"prestart": [hook("/bin/net")], "createRuntime": [hook("/tmp/evil")]}}),
                vec!["hooks.createRuntime: 0 recorded at dump, 1 now (/tmp/evil)"],
            ),
            (
                json!({"root": {"path": "rootfs"}}),
                vec!["hooks.prestart: 1 recorded at dump, 0 now"],
            ),
            (
                json!({"root": {"path": "rootfs"}, "hooks": {"prestart": [hook("/bin/other")]}}),
                vec!["hooks.prestart: 1 recorded at dump, 1 now (/bin/other)"],
            ),
            (
                json!({"root": {"path": "/elsewhere"}, "hooks": {"prestart": [hook("/bin/net")]}}),
                vec!["root.path: /b/rootfs recorded at dump, /elsewhere now"],
            ),
        ];
        for (current, want) in cases {
            match choose_bundle(&m, false, Some(&current)) {
                Err(BundleRefusal::Changed {
                    config,
                    name,
                    differences,
                }) => {
                    assert_eq!(config, Path::new("/b/config.json"));
                    assert_eq!(name, "good");
                    assert_eq!(differences, want);
                }
                other => panic!("{current}: {other:?}"),
            }
        }
    }

    #[test]
    fn absent_and_empty_hooks_are_the_same() {
        let m = meta_for_bundle("/b", "/b/rootfs", json!({"root": {"path": "rootfs"}}));
        for current in [
            json!({"root": {"path": "rootfs"}, "hooks": {}}),
            json!({"root": {"path": "rootfs"}, "hooks": {"prestart": []}}),
            json!({"root": {"path": "rootfs"}, "hooks": null}),
        ] {
            assert_eq!(
                choose_bundle(&m, false, Some(&current)),
                Ok(BundleChoice::Original("/b".into())),
                "{current}"
            );
        }
    }

    #[test]
    fn generated_bundle_keeps_the_recorded_hooks_and_needs_a_rootfs() {
        let spec = json!({"root": {"path": "rootfs"}, "hooks": {"prestart": [hook("/bin/net")]}, "linux": {"cgroupsPath": "/x"}});
        let m = meta_for_bundle("/b", "/b/rootfs", spec);
        match choose_bundle(&m, true, None) {
            Ok(BundleChoice::Generated(s)) => {
                assert_eq!(s["root"]["path"], "/b/rootfs");
                assert_eq!(s["hooks"]["prestart"][0]["path"], "/bin/net");
                assert!(s["linux"].get("cgroupsPath").is_none());
            }
            other => panic!("{other:?}"),
        }
        let mut m = m;
        m.rootfs = None;
        assert_eq!(choose_bundle(&m, true, None), Err(BundleRefusal::NoRootfs));
    }

    #[test]
    fn clean_is_lexical_like_go() {
        for (p, want) in [
            ("/a/./b//c/", "/a/b/c"),
            ("/a/b/../c", "/a/c"),
            ("/../a", "/a"),
            ("a/../../b", "../b"),
        ] {
            assert_eq!(clean(Path::new(p)), Path::new(want), "{p}");
        }
    }
}
