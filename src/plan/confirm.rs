//! PURE: did the restore resume the checkpointed processes, rather than
//! start the container afresh? Judged from what the restored init looks
//! like ([`LiveInit`], read through [`crate::procfs`] by the caller), what
//! `ckpt.json` recorded, and CRIU's log.

use crate::criu::log::restore_finished;
pub use crate::procfs::LiveInit;
use crate::store::CheckpointMeta;

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
    if live.own_time_namespace == Some(false) && !crate::spec::has_namespace(&meta.spec, "time") {
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

/// For a checkpoint ckpt did not make (no `ckpt.json` to compare with):
/// only the time namespace can tell that Docker started it afresh.
pub fn confirm_foreign(live: &LiveInit) -> Result<(), String> {
    if live.own_time_namespace == Some(false) {
        return Err("the init runs in the host's time namespace, so Docker started it afresh".to_string());
    }
    Ok(())
}

/// [`confirm_resumed`] when there is metadata, [`confirm_foreign`] when not.
pub fn confirm(meta: Option<&CheckpointMeta>, live: &LiveInit, restore_log: Option<&str>) -> Result<(), String> {
    match meta {
        Some(meta) => confirm_resumed(meta, live, restore_log),
        None => confirm_foreign(live),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn a_foreign_checkpoint_is_judged_by_the_time_namespace_alone() {
        let live = |own_time_namespace| LiveInit {
            ns_pid: 7,
            comm: "anything".into(),
            own_time_namespace,
        };
        // (own time namespace, resumed?)
        for (own, ok) in [(Some(true), true), (None, true), (Some(false), false)] {
            assert_eq!(confirm(None, &live(own), None).is_ok(), ok, "{own:?}");
        }
        let e = confirm(None, &live(Some(false)), None).unwrap_err();
        assert!(e.contains("Docker started it afresh"), "{e}");
    }
}
