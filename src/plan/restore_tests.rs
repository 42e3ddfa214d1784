//! Table tests of the restore planner: each rule for runc/crun and for
//! Docker, with what is planned or refused, the exit code, and the message
//! a single problem gives (the one `start` gave before there was a plan).
use super::*;
use serde_json::json;
use std::path::Path;

const CRIU: CriuVersion = CriuVersion {
    major: 4,
    minor: 1,
    sublevel: 1,
};

fn meta() -> CheckpointMeta {
    serde_json::from_value(json!({
        "schema_version": 2, "tool": "ckpt", "container_id": "web", "name": "n1", "runtime": "runc",
        "runtime_root": "/run/runc", "bundle": "/b", "rootfs": "/b/rootfs",
        "spec": {"root": {"path": "rootfs"}, "mounts": [
            {"destination": "/data", "type": "bind", "source": "/srv/data"},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}
        ]},
        "inventory": {"process_count": 1, "fd_count": 3, "anon_rss_bytes": 0, "processes": [[1, "counter"]]},
        "criu_version": "4.1.1", "kernel": "6", "created_at": "x", "frozen_ms": 0, "dump_ms": 0, "size_bytes": 0,
        "options": {"leave_running": false, "tcp_established": true, "file_locks": false, "ext_unix_sk": false},
        "descriptors": [], "files": {}
    }))
    .unwrap()
}

fn entry(meta: Option<CheckpointMeta>) -> CheckpointEntry {
    CheckpointEntry {
        container_id: "web".into(),
        name: "n1".into(),
        dir: "/s/web/checkpoints/n1".into(),
        meta,
        size_bytes: 0,
    }
}

/// Facts of a restore of web's checkpoint into web with runc: nothing
/// there, the original bundle unchanged, every path present.
fn oci_facts() -> RestoreFacts {
    RestoreFacts {
        restorer: Restorer::Oci,
        criu: Some(CRIU),
        home_id: "web".into(),
        target_name: "web".into(),
        target: TargetState::Absent,
        original_spec: Some(meta().spec),
        present: ["/b/rootfs", "/srv/data"].into_iter().map(PathBuf::from).collect(),
        unsafe_target: None,
        missing_image: None,
    }
}

fn docker_facts() -> RestoreFacts {
    RestoreFacts {
        restorer: Restorer::Docker,
        home_id: "web".into(),
        target: TargetState::Stopped,
        original_spec: None,
        ..oci_facts()
    }
}

fn named(name: &str) -> RestoreOptions {
    RestoreOptions {
        new_name: Some(name.into()),
        ..Default::default()
    }
}

type Change = fn(&mut CheckpointMeta, &mut RestoreFacts);

/// (case, change to meta and facts, --name, exit code, the message)
#[rustfmt::skip]
fn refusals() -> Vec<(&'static str, Change, Option<&'static str>, u8, &'static str)> {
    vec![
        ("target running", |_, f| f.target = TargetState::Running, None, 3,
         "container web is running; stop it first, or restore the checkpoint as a new container with --name NEW_ID"),
        ("made by a newer CRIU", |m, _| m.criu_version = "4.2.0".into(), None, 5,
         "checkpoint n1 was made by CRIU 4.2.0, newer than the installed CRIU 4.1.1; install CRIU >= 4.2.0"),
        ("a runtime ckpt does not drive", |m, _| m.runtime = "kata".into(), None, 1,
         "checkpoint n1 was made for runtime \"kata\", which this ckpt cannot restore"),
        ("bind-mount source gone", |_, f| { f.present.remove(Path::new("/srv/data")); }, None, 4,
         "bind-mount source /srv/data does not exist; the checkpoint needs it to restore"),
        ("rootfs gone, new id", |_, f| { f.present.remove(Path::new("/b/rootfs")); }, Some("copy"), 4,
         "root filesystem /b/rootfs does not exist; the checkpoint needs it to restore"),
        ("no rootfs recorded, new id", |m, _| m.rootfs = None, Some("copy"), 4,
         "root filesystem (not recorded) does not exist; the checkpoint needs it to restore"),
        ("original bundle changed", |_, f| f.original_spec = Some(json!({"root": {"path": "/elsewhere"}})), None, 3,
         "/b/config.json no longer matches the spec recorded in checkpoint n1: root.path: /b/rootfs recorded at dump, /elsewhere now; put back the original, or restore a copy from the recorded spec with --name NEW_ID"),
        ("rootfs not the spec's root", |m, _| m.rootfs = Some("/other".into()), None, 7,
         "checkpoint /s/web/checkpoints/n1 is corrupt: ckpt.json: rootfs /other is not the root of the recorded spec, which names /b/rootfs (root.path in bundle /b)"),
        ("a symlink where start writes", |_, f| f.unsafe_target = Some(("/s/web/output.log".into(), "it is a symlink")), None, 5,
         "refusing to use /s/web/output.log: it is a symlink"),
    ]
}

#[test]
fn oci_refusals_say_what_start_said_with_its_exit_code() {
    for (case, change, name, code, message) in refusals() {
        let (mut m, mut f) = (meta(), oci_facts());
        change(&mut m, &mut f);
        let opts = RestoreOptions {
            new_name: name.map(str::to_string),
            ..Default::default()
        };
        let r = restore_plan(&entry(Some(m)), &f, &opts).unwrap_err();
        assert_eq!(r.problems.len(), 1, "{case}: {r}");
        assert_eq!((r.exit_code(), r.to_string().as_str()), (code, message), "{case}");
    }
}

#[test]
fn oci_plans_the_runtime_the_bundle_and_what_to_clear() {
    // (target now, --name, bundle generated?, clear the target first?)
    let table = [
        (TargetState::Absent, None, false, false),
        (TargetState::Stopped, None, false, true),
        (TargetState::Leftover, None, false, true),
        (TargetState::Absent, Some("copy"), true, false),
        (TargetState::Leftover, Some("copy"), true, true),
    ];
    for (target, name, generated, clear) in table {
        let f = RestoreFacts { target, ..oci_facts() };
        let opts = RestoreOptions {
            new_name: name.map(str::to_string),
            ..Default::default()
        };
        let plan = restore_plan(&entry(Some(meta())), &f, &opts).unwrap();
        assert_eq!(plan.target, name.unwrap_or("web"));
        assert_eq!(plan.images, PathBuf::from("/s/web/checkpoints/n1"));
        assert!(plan.options.tcp_established, "the dump's flags are repeated");
        match plan.how {
            How::Oci {
                runtime,
                binary,
                root,
                bundle,
                clear_target,
                ..
            } => {
                assert_eq!(
                    (runtime, binary, root.as_path()),
                    (RuntimeKind::Runc, RuntimeKind::Runc, Path::new("/run/runc"))
                );
                assert_eq!(
                    matches!(bundle, BundleChoice::Generated(_)),
                    generated,
                    "{target:?} {name:?}"
                );
                assert_eq!(clear_target, clear, "{target:?} {name:?}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn oci_hands_the_restored_init_a_pipe_for_each_recorded_stdio_pipe() {
    use crate::plan::stdio::StdioSource::{EmptyPipe, Null, Relay};
    let mut m = meta();
    m.descriptors = vec!["pipe:[7]".into(), "pipe:[8]".into(), "/dev/null".into()];
    for name in [None, Some("copy")] {
        let opts = RestoreOptions {
            new_name: name.map(str::to_string),
            ..Default::default()
        };
        let plan = restore_plan(&entry(Some(m.clone())), &oci_facts(), &opts).unwrap();
        assert!(
            matches!(
                plan.how,
                How::Oci {
                    stdio: [EmptyPipe, Relay, Null],
                    ..
                }
            ),
            "{name:?}: {:?}",
            plan.how
        );
    }
}

#[test]
fn a_docker_containers_checkpoint_in_ckpts_store_is_restored_with_runc() {
    let mut m = meta();
    m.runtime = "docker".into();
    let plan = restore_plan(&entry(Some(m.clone())), &oci_facts(), &RestoreOptions::default()).unwrap();
    assert!(matches!(
        plan.how,
        How::Oci {
            runtime: RuntimeKind::Docker,
            binary: RuntimeKind::Runc,
            ..
        }
    ));
    assert_eq!(
        recorded_runtime(&m).map(|(_, b, r)| (b, r)),
        Ok((RuntimeKind::Runc, PathBuf::from("/run/runc")))
    );
    // Without a recorded root there is no default for Docker.
    m.runtime_root = None;
    assert_eq!(recorded_runtime(&m), Err("docker".to_string()));
    m.runtime = "crun".into();
    assert_eq!(recorded_runtime(&m).unwrap().2, PathBuf::from("/run/crun"));
}

#[test]
fn a_checkpoint_without_metadata_in_ckpts_store_is_corrupt() {
    let r = restore_plan(&entry(None), &oci_facts(), &RestoreOptions::default()).unwrap_err();
    assert_eq!(
        (r.exit_code(), r.to_string()),
        (
            7,
            "checkpoint /s/web/checkpoints/n1 is corrupt: ckpt.json: missing".to_string()
        )
    );
}

#[test]
fn every_problem_is_listed_and_the_first_decides_the_code() {
    let mut m = meta();
    m.criu_version = "9.0.0".into();
    let f = RestoreFacts {
        target: TargetState::Running,
        present: BTreeSet::new(),
        ..oci_facts()
    };
    let r = restore_plan(&entry(Some(m)), &f, &RestoreOptions::default()).unwrap_err();
    let codes: Vec<u8> = r.problems.iter().map(RestoreProblem::exit_code).collect();
    assert_eq!(codes, vec![5, 4, 3], "CRIU, the bind source, the running target: {r}");
    assert_eq!(r.exit_code(), 5);
    let text = r.to_string();
    assert!(
        text.starts_with("cannot restore checkpoint n1 into web (nothing was changed):\n  "),
        "{text}"
    );
    for part in ["CRIU 9.0.0", "bind-mount source /srv/data", "container web is running"] {
        assert!(text.contains(part), "{part:?} not in {text}");
    }
}

#[test]
fn docker_restores_its_own_container_or_a_copy() {
    // (target now, --name, copy?)
    let table = [
        (TargetState::Stopped, None, false),
        (TargetState::Running, Some("c2"), true),
        (TargetState::Stopped, Some("c2"), true),
    ];
    for (target, name, copy) in table {
        let f = RestoreFacts {
            target,
            ..docker_facts()
        };
        let opts = RestoreOptions {
            new_name: name.map(str::to_string),
            ..Default::default()
        };
        let plan = restore_plan(&entry(Some(meta())), &f, &opts).unwrap();
        assert_eq!(plan.how, How::Docker { copy });
        assert_eq!(plan.target, name.unwrap_or("web"));
    }
}

#[test]
fn docker_refusals() {
    let running = RestoreFacts {
        target: TargetState::Running,
        target_name: "web-name".into(),
        ..docker_facts()
    };
    let r = restore_plan(&entry(Some(meta())), &running, &RestoreOptions::default()).unwrap_err();
    assert_eq!(r.exit_code(), 3);
    assert!(r.to_string().starts_with("container web-name is running"), "{r}");

    let elsewhere = RestoreFacts {
        home_id: "other".into(),
        ..docker_facts()
    };
    let r = restore_plan(&entry(Some(meta())), &elsewhere, &named("c2")).unwrap_err();
    assert_eq!(
        (r.exit_code(), r.to_string()),
        (1, "checkpoint n1 was made from container web, not other; restore it into a copy of its own container with --name".to_string())
    );

    let mut newer = meta();
    newer.criu_version = "5.0.0".into();
    let r = restore_plan(&entry(Some(newer)), &docker_facts(), &RestoreOptions::default()).unwrap_err();
    assert_eq!(r.exit_code(), 5);
}

#[test]
fn docker_takes_foreign_checkpoints_that_have_criu_images() {
    // Made by `docker checkpoint create`: nothing to check but the images.
    let plan = restore_plan(&entry(None), &docker_facts(), &RestoreOptions::default()).unwrap();
    assert_eq!(plan.options, DumpOptions::default());
    let without = RestoreFacts {
        missing_image: Some("pstree.img"),
        ..docker_facts()
    };
    let r = restore_plan(&entry(None), &without, &RestoreOptions::default()).unwrap_err();
    assert_eq!(
        (r.exit_code(), r.to_string()),
        (
            7,
            "checkpoint /s/web/checkpoints/n1 is corrupt: pstree.img: missing (not a CRIU checkpoint)".to_string()
        )
    );
}

#[test]
fn the_paths_to_check_are_the_rootfs_and_the_bind_sources() {
    assert_eq!(
        paths_to_check(&entry(Some(meta()))),
        vec![PathBuf::from("/b/rootfs"), PathBuf::from("/srv/data")]
    );
    assert!(paths_to_check(&entry(None)).is_empty());
}

#[test]
fn an_imported_checkpoint_runs_only_with_what_its_import_allowed() {
    let imported = |allowed: &[&str]| {
        let mut m = meta();
        m.bundle = None;
        m.rootfs = Some("/s/web/checkpoints/n1/rootfs".into());
        m.spec["root"]["path"] = json!("/s/web/checkpoints/n1/rootfs");
        let ns: Vec<_> = ["pid", "network", "ipc", "uts", "mount"]
            .iter()
            .map(|t| json!({"type": t}))
            .collect();
        m.spec["linux"] = json!({ "namespaces": ns });
        m.imported = Some(crate::store::ImportRecord {
            allowed_bind_sources: allowed.iter().map(PathBuf::from).collect(),
            ..Default::default()
        });
        m
    };
    let mut f = oci_facts();
    f.present.insert("/s/web/checkpoints/n1/rootfs".into());
    f.present.insert("/s/web/checkpoints/n1/binds/etc-hosts".into());
    f.present.insert("/var/lib/x/hosts".into());
    let plan = |m: CheckpointMeta| restore_plan(&entry(Some(m)), &f, &RestoreOptions::default());
    let ok = plan(imported(&["/srv"]));
    assert!(
        ok.is_ok(),
        "the bind its import allowed: {:?}",
        ok.err().map(|e| e.to_string())
    );
    let r = plan(imported(&[])).unwrap_err();
    assert_eq!(r.exit_code(), 3);
    assert!(
        r.to_string()
            .contains("host path /srv/data bound at /data, which its import did not allow"),
        "{r}"
    );

    let mut m = imported(&["/srv"]);
    m.spec["hooks"] = json!({"poststop": [{"path": "/bin/evil"}]});
    let r = plan(m).unwrap_err();
    assert!(r.to_string().contains("poststop hook /bin/evil"), "{r}");

    let hosts = |src: &str| json!({"destination": "/etc/hosts", "type": "bind", "source": src, "options": ["rbind"]});
    let mut m = imported(&["/srv"]);
    m.spec["mounts"].as_array_mut().unwrap().push(hosts("/var/lib/x/hosts"));
    let r = plan(m).unwrap_err();
    assert!(
        r.to_string()
            .contains("/etc/hosts bound from /var/lib/x/hosts, not from its own /s/web/checkpoints/n1/binds"),
        "{r}"
    );
    let mut m = imported(&["/srv"]);
    m.spec["mounts"]
        .as_array_mut()
        .unwrap()
        .push(hosts("/s/web/checkpoints/n1/binds/etc-hosts"));
    assert!(plan(m).is_ok());
}

#[test]
fn tcp_close_restores_from_a_generated_bundle_and_is_refused_for_docker() {
    let tcp_close = RestoreOptions {
        tcp_close: true,
        ..Default::default()
    };
    // The same id, its original bundle unchanged: without --tcp-close the
    // original is used; with it, a generated one (the user's is never
    // written) that carries the CRIU config.
    for (opts, generated) in [(RestoreOptions::default(), false), (tcp_close.clone(), true)] {
        let plan = restore_plan(&entry(Some(meta())), &oci_facts(), &opts).unwrap();
        match plan.how {
            How::Oci { bundle, tcp_close, .. } => {
                assert_eq!(matches!(bundle, BundleChoice::Generated(_)), generated, "{opts:?}");
                assert_eq!(tcp_close, opts.tcp_close);
            }
            other => panic!("{other:?}"),
        }
    }
    // A bundle changed since the dump refuses the original, not a generated one.
    let mut f = oci_facts();
    f.original_spec = Some(json!({"root": {"path": "elsewhere"}}));
    assert!(restore_plan(&entry(Some(meta())), &f, &RestoreOptions::default()).is_err());
    assert!(restore_plan(&entry(Some(meta())), &f, &tcp_close).is_ok());

    // Docker: a usage error that says why.
    let e = restore_plan(&entry(Some(meta())), &docker_facts(), &tcp_close).unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert_eq!(
        e.to_string(),
        "--tcp-close cannot be used for a Docker container: Docker's start-with-checkpoint passes no CRIU options to its runtime"
    );
    assert!(restore_plan(&entry(Some(meta())), &docker_facts(), &RestoreOptions::default()).is_ok());
}
