//! PURE decisions of a restore: which spec a new container gets, and
//! whether what runs after the restore is the checkpointed process tree.

use crate::criu::log::restore_finished;
use crate::store::CheckpointMeta;
use std::path::Path;

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

/// The init process seen after a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveInit {
    /// Pid inside the container's pid namespace.
    pub ns_pid: i32,
    pub comm: String,
    /// Whether it runs in a time namespace other than the host's; `None`
    /// when the kernel has no time namespaces.
    pub own_time_namespace: Option<bool>,
}

/// Checks that the restore resumed the saved processes rather than starting
/// the container afresh (Docker has shipped releases that did that
/// silently). The strongest sign is the time namespace: CRIU restores the
/// tree into a new one so that monotonic clocks continue, whereas a fresh
/// start of a spec without a time namespace runs in the host's. Then the
/// init must have the saved pid-namespace pid and command name, and CRIU's
/// log, when there is one, must say it finished.
pub fn confirm_resumed(meta: &CheckpointMeta, live: &LiveInit, restore_log: Option<&str>) -> Result<(), String> {
    if let Some(log) = restore_log {
        if !restore_finished(log) {
            return Err("CRIU's restore log does not say \"Restore finished successfully\"".into());
        }
    }
    let spec_has_timens = meta.spec["linux"]["namespaces"]
        .as_array()
        .is_some_and(|ns| ns.iter().any(|n| n["type"] == "time"));
    if live.own_time_namespace == Some(false) && !spec_has_timens {
        return Err("the init runs in the host's time namespace, so it was started afresh (CRIU restores into a new time namespace)".into());
    }
    let Some((ns_pid, comm)) = meta.inventory.processes.first() else {
        return Ok(());
    };
    if *ns_pid != live.ns_pid || *comm != live.comm {
        return Err(format!(
            "the checkpoint's init was pid {ns_pid} ({comm}) in the container, the running init is pid {} ({})",
            live.ns_pid, live.comm
        ));
    }
    Ok(())
}

/// Parses `NSpid` (last value) from `/proc/<pid>/status` text.
pub fn ns_pid_from_status(status: &str) -> Option<i32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|v| v.split_whitespace().last())
        .and_then(|v| v.parse().ok())
}

/// Reads what [`confirm_resumed`] needs about a live init from a proc root.
pub fn live_init(proc_root: &Path, pid: i32) -> LiveInit {
    let dir = proc_root.join(pid.to_string());
    let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
    let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
    let host_timens = std::fs::read_link(proc_root.join("self/ns/time")).ok();
    let init_timens = std::fs::read_link(dir.join("ns/time")).ok();
    LiveInit {
        ns_pid: ns_pid_from_status(&status).unwrap_or(-1),
        comm: comm.trim().to_string(),
        own_time_namespace: match (host_timens, init_timens) {
            (Some(h), Some(i)) => Some(h != i),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    const OK_LOG: &str = "(00.12) Restore finished successfully. Tasks resumed.\n";

    #[test]
    fn resumed_when_log_and_init_match() {
        let live = LiveInit {
            ns_pid: 1,
            comm: "counter".into(),
            own_time_namespace: Some(true),
        };
        assert!(confirm_resumed(&meta_with_init(1, "counter"), &live, Some(OK_LOG)).is_ok());
        assert!(
            confirm_resumed(&meta_with_init(1, "counter"), &live, None).is_ok(),
            "Docker keeps no log"
        );
        let old_kernel = LiveInit {
            own_time_namespace: None,
            ..live
        };
        assert!(confirm_resumed(&meta_with_init(1, "counter"), &old_kernel, Some(OK_LOG)).is_ok());
    }

    #[test]
    fn fresh_start_is_detected() {
        let live = LiveInit {
            ns_pid: 1,
            comm: "sh".into(),
            own_time_namespace: Some(true),
        };
        let e = confirm_resumed(&meta_with_init(1, "counter"), &live, Some(OK_LOG)).unwrap_err();
        assert!(e.contains("counter"), "{e}");
        let live = LiveInit {
            ns_pid: 1,
            comm: "counter".into(),
            own_time_namespace: Some(true),
        };
        assert!(confirm_resumed(&meta_with_init(1, "counter"), &live, Some("no restore happened")).is_err());
        // Same pid and name, but in the host's time namespace: a fresh start.
        let fresh = LiveInit {
            own_time_namespace: Some(false),
            ..live
        };
        let e = confirm_resumed(&meta_with_init(1, "counter"), &fresh, None).unwrap_err();
        assert!(e.contains("afresh"), "{e}");
    }

    #[test]
    fn a_spec_with_its_own_time_namespace_is_not_judged_by_it() {
        let mut m = meta_with_init(1, "counter");
        m.spec = json!({"linux": {"namespaces": [{"type": "time"}]}});
        let live = LiveInit {
            ns_pid: 1,
            comm: "counter".into(),
            own_time_namespace: Some(false),
        };
        assert!(confirm_resumed(&m, &live, None).is_ok());
    }

    #[test]
    fn parses_nspid() {
        assert_eq!(ns_pid_from_status("Name:\tsh\nNSpid:\t5130\t1\n"), Some(1));
        assert_eq!(ns_pid_from_status("Name:\tsh\n"), None);
    }
}
