//! Table tests of the import plan.

use super::*;
use crate::archive::manifest::{EntryDigest, Manifest, RootfsDecl, ARCHIVE_SCHEMA, FORMAT};
use crate::archive::{Compression, FoundFile, RootfsFound};
use serde_json::json;
use std::collections::BTreeMap;

fn found(size: u64, b: &str) -> FoundFile {
    FoundFile {
        size,
        blake3: b.repeat(64),
        verified: true,
    }
}

fn sealed() -> CheckpointMeta {
    serde_json::from_value(json!({
        "schema_version": 2, "tool": "ckpt", "container_id": "web", "name": "one", "runtime": "runc",
        "runtime_root": "/run/runc", "bundle": "/b", "rootfs": "/b/rootfs",
        "spec": {"root": {"path": "rootfs"}, "hostname": "web",
                 "hooks": {"prestart": [{"path": "/usr/bin/evil"}]},
                 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                            {"destination": "/etc/hosts", "type": "bind", "source": "/var/lib/x/hosts", "options": ["rbind"]}],
                 "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]}},
        "inventory": {"process_count": 1, "fd_count": 3, "anon_rss_bytes": 0, "processes": [[1, "counter"]]},
        "criu_version": "4.1.1", "kernel": "6", "created_at": "2026-12-01T00:00:00Z", "frozen_ms": 0, "dump_ms": 0,
        "size_bytes": 0, "options": {"leave_running": false, "tcp_established": false, "file_locks": false, "ext_unix_sk": false},
        "descriptors": ["/dev/null", "pipe:[1]", "pipe:[1]"],
        "files": {"inventory.img": {"size": 1, "blake3": "a".repeat(64)}, "pstree.img": {"size": 2, "blake3": "b".repeat(64)}}
    }))
    .unwrap()
}

fn report(rootfs: RootfsKind) -> Report {
    let mut files = BTreeMap::new();
    files.insert("checkpoint/inventory.img".to_string(), found(1, "a"));
    files.insert("checkpoint/pstree.img".to_string(), found(2, "b"));
    files.insert("checkpoint/ckpt.json".to_string(), found(9, "c"));
    let entry = RootfsDecl {
        kind: rootfs,
        entries: 1,
        bytes: 0,
    };
    Report {
        kind: ArchiveKind::Ckpt,
        compression: Compression::Zstd,
        manifest: Some(Manifest {
            schema_version: ARCHIVE_SCHEMA,
            format: FORMAT.into(),
            tool: "ckpt".into(),
            container_id: "web".into(),
            checkpoint: "one".into(),
            runtime: "runc".into(),
            image: None,
            checkpointed_at: "x".into(),
            rootfs: entry.clone(),
            entry_count: 5,
            total_bytes: 0,
            entries: BTreeMap::<String, EntryDigest>::new(),
        }),
        spec: Some(json!({})),
        config: Some(json!({"id": "web", "runtime": "runc"})),
        deleted_files: None,
        files,
        rootfs: entry.entry().map(|e| RootfsFound {
            entry: e.into(),
            unpacked_to: (rootfs == RootfsKind::Tree).then(|| "rootfs".into()),
            entries: 1,
            bytes: 0,
        }),
        entries: 5,
        bytes: 0,
    }
}

fn opts() -> ImportOptions {
    ImportOptions {
        from: "/tmp/a.tar.zst".into(),
        now: "2026-12-02T00:00:00Z".into(),
        ..ImportOptions::default()
    }
}

#[test]
fn a_ckpt_archive_lands_under_its_own_names_with_the_policy_applied() {
    let plan = import_plan(&report(RootfsKind::Tree), Some(&sealed()), None, &opts()).unwrap();
    assert_eq!((plan.target.as_str(), plan.checkpoint.as_str()), ("web", "one"));
    let ImportHow::Oci(oci) = &plan.how else {
        panic!("{plan:?}")
    };
    assert_eq!(oci.rootfs, RootfsLanding::Unpacked);
    assert!(oci.meta.spec.get("hooks").is_none(), "hooks are dropped");
    assert_eq!(oci.replacements.len(), 1);
    assert_eq!(oci.replacements[0].destination, "/etc/hosts");
    assert_eq!(oci.replacements[0].file, "etc-hosts");
    assert!(String::from_utf8_lossy(oci.replacements[0].contents.as_ref().unwrap()).contains("web"));
    assert_eq!(
        oci.meta.runtime_root.as_deref(),
        Some(std::path::Path::new("/run/runc"))
    );
    assert_eq!(oci.meta.bundle, None);
    assert_eq!(oci.meta.inventory.processes, vec![(1, "counter".to_string())]);
    let rec = oci.meta.imported.as_ref().unwrap();
    assert_eq!(rec.source_container, "web");
    assert!(
        plan.changes
            .iter()
            .any(|c| c.contains("dropped prestart hook /usr/bin/evil")),
        "{:?}",
        plan.changes
    );
    assert!(plan
        .changes
        .iter()
        .any(|c| c.contains("/etc/hosts") && c.starts_with("replaced")));

    let mut o = opts();
    o.new_name = Some("copy".into());
    o.runtime_root = Some("/run/other".into());
    let plan = import_plan(&report(RootfsKind::Tree), Some(&sealed()), None, &o).unwrap();
    let ImportHow::Oci(oci) = &plan.how else { panic!() };
    assert_eq!((plan.target.as_str(), oci.meta.container_id.as_str()), ("copy", "copy"));
    assert_eq!(
        oci.meta.runtime_root.as_deref(),
        Some(std::path::Path::new("/run/other"))
    );
}

#[test]
fn where_the_root_filesystem_comes_from() {
    let dir = || Some(PathBuf::from("/srv/image"));
    let cases: Vec<(RootfsKind, Option<PathBuf>, Result<RootfsLanding, &str>)> = vec![
        (RootfsKind::Tree, None, Ok(RootfsLanding::Unpacked)),
        (RootfsKind::Tree, dir(), Err("carries its whole root filesystem")),
        (RootfsKind::None, dir(), Ok(RootfsLanding::InPlace("/srv/image".into()))),
        (RootfsKind::None, None, Ok(RootfsLanding::InPlace("/b/rootfs".into()))),
    ];
    for (kind, rootfs_dir, want) in cases {
        let mut o = opts();
        o.rootfs_dir = rootfs_dir;
        let got = import_plan(&report(kind), Some(&sealed()), None, &o);
        match (got, want) {
            (Ok(p), Ok(w)) => match p.how {
                ImportHow::Oci(oci) => assert_eq!(oci.rootfs, w, "{kind:?}"),
                other => panic!("{other:?}"),
            },
            (Err(r), Err(needle)) => assert!(r.to_string().contains(needle), "{r}"),
            (got, want) => panic!("{kind:?}: {got:?}, wanted {want:?}"),
        }
    }
}

#[test]
fn a_podman_export_needs_the_image_and_gets_a_synthesised_record() {
    let mut r = report(RootfsKind::None);
    r.kind = ArchiveKind::Podman;
    r.manifest = None;
    r.files.remove("checkpoint/ckpt.json");
    r.config = Some(
        json!({"id": "abc", "name": "pmc", "runtime": "runc", "rootfsImageName": "localhost/bb:t",
        "checkpointedTime": "2026-12-01T10:00:00.123Z"}),
    );
    r.spec = Some(
        json!({"root": {"path": "/var/lib/containers/x"}, "mounts": [], "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]}}),
    );
    r.rootfs = Some(RootfsFound {
        entry: "rootfs-diff.tar".into(),
        unpacked_to: None,
        entries: 1,
        bytes: 2,
    });
    let e = import_plan(&r, None, None, &opts()).unwrap_err();
    assert_eq!(e.exit_code(), NOT_FOUND);
    assert!(e.to_string().contains("diff over image localhost/bb:t"), "{e}");
    let mut o = opts();
    o.rootfs_dir = Some("/srv/bb".into());
    let plan = import_plan(&r, None, Some(vec!["/dev/null".into()]), &o).unwrap();
    assert_eq!((plan.target.as_str(), plan.checkpoint.as_str()), ("pmc", "imported"));
    let ImportHow::Oci(oci) = plan.how else { panic!() };
    assert_eq!(oci.rootfs, RootfsLanding::CopyAndDiff("/srv/bb".into()));
    assert_eq!(oci.meta.runtime, "runc");
    assert_eq!(oci.meta.descriptors, vec!["/dev/null".to_string()]);
    assert_eq!(oci.meta.created_at, "2026-12-01T10:00:00.123Z");
    assert_eq!(oci.meta.imported.unwrap().made_by, "podman");
}

#[test]
fn refusals_name_every_problem_and_the_first_decides_the_code() {
    // A checkpoint file that is not what its ckpt.json says.
    let mut r = report(RootfsKind::Tree);
    r.files.insert("checkpoint/pstree.img".into(), found(2, "f"));
    let e = import_plan(&r, Some(&sealed()), None, &opts()).unwrap_err();
    assert_eq!(e.exit_code(), CORRUPT);
    assert!(e.to_string().contains("checkpoint/pstree.img: does not match"), "{e}");
    // The host's network namespace.
    let mut m = sealed();
    m.spec["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]);
    let e = import_plan(&report(RootfsKind::Tree), Some(&m), None, &opts()).unwrap_err();
    assert_eq!(e.exit_code(), REFUSED);
    assert!(
        e.to_string().contains("host's network namespace") && e.to_string().contains("--allow-host-namespaces"),
        "{e}"
    );
    let mut o = opts();
    o.policy.allow_host_namespaces = true;
    assert!(import_plan(&report(RootfsKind::Tree), Some(&m), None, &o).is_ok());
    // A name that cannot be a container id.
    let mut o = opts();
    o.new_name = Some("../x".into());
    assert_eq!(
        import_plan(&report(RootfsKind::Tree), Some(&sealed()), None, &o)
            .unwrap_err()
            .exit_code(),
        USAGE
    );
    // Not a CRIU checkpoint.
    let mut r = report(RootfsKind::Tree);
    r.files.remove("checkpoint/pstree.img");
    let mut m = sealed();
    m.files.remove("pstree.img");
    let e = import_plan(&r, Some(&m), None, &opts()).unwrap_err();
    assert!(e.to_string().contains("pstree.img: missing"), "{e}");
}

#[test]
fn a_docker_archive_is_checked_against_the_docker_policy() {
    let mut r = report(RootfsKind::Diff);
    let m = r.manifest.as_mut().unwrap();
    m.runtime = "docker".into();
    m.image = Some(crate::archive::ImageRef {
        name: "busybox".into(),
        id: Some("sha256:1".into()),
    });
    r.config = Some(json!({"ckpt": {"docker_create": {"Image": "busybox", "HostConfig": {"Privileged": true}}}}));
    r.deleted_files = Some(vec!["/etc/motd".into()]);
    let e = import_plan(&r, Some(&sealed()), None, &opts()).unwrap_err();
    assert!(e.to_string().contains("privileged mode"), "{e}");
    r.config = Some(json!({"ckpt": {"docker_create": {"Image": "busybox", "HostConfig": {"NetworkMode": "none"}}}}));
    let plan = import_plan(&r, Some(&sealed()), None, &opts()).unwrap();
    let ImportHow::Docker(d) = plan.how else { panic!() };
    assert_eq!(d.image_id.as_deref(), Some("sha256:1"));
    assert_eq!(d.deleted, vec!["/etc/motd".to_string()]);
}

#[test]
fn finish_spec_points_at_what_the_import_made() {
    let mut spec = json!({"root": {"path": "/old", "readonly": false}, "mounts": [{"destination": "/etc/hosts", "source": "/old/hosts"}]});
    finish_spec(
        &mut spec,
        std::path::Path::new("/s/web/checkpoints/one/rootfs"),
        &[(0, "/s/web/checkpoints/one/binds/etc-hosts".into())],
    );
    assert_eq!(spec["root"]["path"], "/s/web/checkpoints/one/rootfs");
    assert_eq!(spec["root"]["readonly"], false);
    assert_eq!(spec["mounts"][0]["source"], "/s/web/checkpoints/one/binds/etc-hosts");
}
