//! `export`, `import`, `create --export` and `start --import` through the
//! fake engine: an archive written from the fixture store and read back
//! into it, and every refusal leaving the store as it was.

use super::*;
use crate::cli::{ArchiveFlags, CompressArg, ExportArgs, ImportArgs, ImportFlags};
use serde_json::json;
use std::path::{Path, PathBuf};

/// A spec an import's default policy accepts: namespaces of its own.
fn own_spec() -> serde_json::Value {
    let mut spec: serde_json::Value = serde_json::from_str(SPEC).unwrap();
    let ns: Vec<_> = ["pid", "network", "ipc", "uts", "mount"]
        .iter()
        .map(|t| json!({"type": t}))
        .collect();
    spec["linux"] = json!({ "namespaces": ns });
    spec
}

/// Publishes checkpoint `name` of `web` with `spec`, and a root
/// filesystem with a file in it.
fn checkpoint_with(w: &World, name: &str, spec: serde_json::Value) {
    std::fs::create_dir_all(w.path("bundle/rootfs/tmp")).unwrap();
    std::fs::write(w.path("bundle/rootfs/tmp/count"), b"41\n").unwrap();
    let store = w.store();
    let staging = store.begin("web", name).unwrap();
    staging.write_file("inventory.img", b"inv").unwrap();
    staging.write_file("pstree.img", b"tree").unwrap();
    staging.write_file("pages-1.img", &[7u8; 4096]).unwrap();
    let mut meta = w.meta(name);
    meta.spec = spec;
    staging.publish(meta).unwrap();
}

fn export_args(name: &str, file: &Path, compress: CompressArg) -> ExportArgs {
    ExportArgs {
        output: file.to_path_buf(),
        archive: ArchiveFlags {
            compress,
            no_rootfs: false,
        },
        json: false,
        container: "web".into(),
        checkpoint: name.into(),
    }
}

fn import_args(file: &Path, name: Option<&str>) -> ImportArgs {
    ImportArgs {
        name: name.map(str::to_string),
        import: ImportFlags::default(),
        json: true,
        file: file.to_path_buf(),
    }
}

/// Every entry of the store below `rel`, for "nothing changed" checks.
fn tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                out.push(e.path());
                if e.file_type().unwrap().is_dir() {
                    walk(&e.path(), out);
                }
            }
        }
    }
    walk(root, &mut out);
    out.retain(|p| !p.ends_with(".ckpt.lock"));
    out.sort();
    out
}

/// The store's own staging directory holds nothing once a command is done.
fn assert_no_import_staging(w: &World) {
    let staging = w.path("store/.ckpt-staging");
    let left: Vec<_> = std::fs::read_dir(&staging)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in staging: {left:?}");
}

#[test]
fn an_export_imported_as_a_new_id_is_the_same_checkpoint_with_its_rootfs() {
    let w = World::new();
    checkpoint_with(&w, "n1", own_spec());
    let file = w.path("out/web.tar.zst");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let (text, code, err) = run(|out| export::run(&w.ctx(), &export_args("n1", &file, CompressArg::Zstd), out));
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains("exported to") && text.contains("root filesystem: tree"),
        "{text}"
    );
    let names: Vec<_> = std::fs::read_dir(w.path("out"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("web.tar.zst")], "no temp file left");

    let (text, code, err) = run(|out| import::run(&w.ctx(), &import_args(&file, Some("web2")), out));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (v["container"].as_str(), v["checkpoint"].as_str()),
        (Some("web2"), Some("n1"))
    );
    assert_eq!(v["made_by"], "ckpt");
    let entry = w.store().load("web2", "n1").unwrap();
    w.store().verify(&entry).unwrap();
    let meta = entry.meta.clone().unwrap();
    let rootfs = w.path("store/web2/checkpoints/n1/rootfs");
    assert_eq!(meta.rootfs.as_deref(), Some(rootfs.as_path()));
    assert_eq!(meta.spec["root"]["path"], rootfs.display().to_string());
    assert_eq!(meta.bundle, None, "restores generate a bundle");
    assert_eq!(
        meta.runtime_root,
        Some(w.path("run/runc")),
        "the runtime root given to the import"
    );
    assert_eq!(std::fs::read(rootfs.join("tmp/count")).unwrap(), b"41\n");
    for f in ["inventory.img", "pstree.img", "pages-1.img"] {
        assert_eq!(
            std::fs::read(entry.dir.join(f)).unwrap(),
            std::fs::read(w.path(&format!("store/web/checkpoints/n1/{f}"))).unwrap(),
            "{f}"
        );
    }
    let record = meta.imported.unwrap();
    assert_eq!(
        (record.source_container.as_str(), record.made_by.as_str()),
        ("web", "ckpt")
    );
    assert_no_import_staging(&w);

    // The same again: the checkpoint exists, nothing changes.
    let before = tree(&w.path("store"));
    let (_, code, err) = run(|out| import::run(&w.ctx(), &import_args(&file, Some("web2")), out));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already has a checkpoint named"), "{err}");
    assert_eq!(tree(&w.path("store")), before);
}

#[test]
fn an_archive_with_a_changed_byte_is_refused_with_7_and_nothing_is_imported() {
    let w = World::new();
    checkpoint_with(&w, "n1", own_spec());
    let file = w.path("web.tar");
    let (_, code, err) = run(|out| export::run(&w.ctx(), &export_args("n1", &file, CompressArg::None), out));
    assert_eq!(code, 0, "{err}");
    // Flip one byte inside pages-1.img's data (all 7s).
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.windows(64).position(|b| b.iter().all(|&x| x == 7)).unwrap() + 10;
    bytes[at] = 8;
    std::fs::write(&file, &bytes).unwrap();
    let before = tree(&w.path("store"));
    let (_, code, err) = run(|out| import::run(&w.ctx(), &import_args(&file, Some("web2")), out));
    assert_eq!(code, 7, "{err}");
    assert!(
        err.contains("checkpoint/pages-1.img") && err.contains("BLAKE3"),
        "{err}"
    );
    assert!(!w.path("store/web2").exists());
    assert_no_import_staging(&w);
    assert_eq!(
        tree(&w.path("store"))
            .into_iter()
            .filter(|p| !p.starts_with(w.path("store/.ckpt-staging")))
            .collect::<Vec<_>>(),
        before
            .into_iter()
            .filter(|p| !p.starts_with(w.path("store/.ckpt-staging")))
            .collect::<Vec<_>>()
    );
}

#[test]
fn an_import_refused_by_policy_says_why_exits_3_and_leaves_nothing() {
    // (what, spec change, exit code, words in the error)
    let cases: Vec<(&str, serde_json::Value, u8, &str)> = vec![
        (
            "no namespaces of its own",
            json!({"linux": {}}),
            3,
            "the host's pid namespace",
        ),
        (
            "a host bind",
            json!({"mounts": [{"destination": "/h", "type": "bind", "source": "/etc", "options": ["rbind"]}]}),
            3,
            "host path /etc",
        ),
    ];
    for (what, change, want, words) in cases {
        let w = World::new();
        let mut spec = own_spec();
        for (k, v) in change.as_object().unwrap() {
            spec[k] = v.clone();
        }
        checkpoint_with(&w, "n1", spec);
        let file = w.path("web.tar.zst");
        let (_, code, err) = run(|out| export::run(&w.ctx(), &export_args("n1", &file, CompressArg::Zstd), out));
        assert_eq!(code, 0, "{what}: {err}");
        let (_, code, err) = run(|out| import::run(&w.ctx(), &import_args(&file, Some("web2")), out));
        assert_eq!(code, want, "{what}: {err}");
        assert!(
            err.contains(words) && err.contains("nothing was imported"),
            "{what}: {err}"
        );
        assert!(!w.path("store/web2").exists(), "{what}");
        assert_no_import_staging(&w);
    }
}

#[test]
fn an_import_drops_hooks_and_replaces_engine_files_and_says_so() {
    let w = World::new();
    let mut spec = own_spec();
    spec["hooks"] = json!({"prestart": [{"path": "/usr/bin/evil"}]});
    spec["mounts"] =
        json!([{"destination": "/etc/hosts", "type": "bind", "source": "/var/lib/src/hosts", "options": ["rbind"]}]);
    checkpoint_with(&w, "n1", spec);
    let file = w.path("web.tar.zst");
    let (_, code, err) = run(|out| export::run(&w.ctx(), &export_args("n1", &file, CompressArg::Gzip), out));
    assert_eq!(code, 0, "{err}");
    let mut args = import_args(&file, Some("web2"));
    args.json = false;
    let (text, code, err) = run(|out| import::run(&w.ctx(), &args, out));
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("import: dropped prestart hook /usr/bin/evil"), "{text}");
    assert!(text.contains("import: replaced"), "{text}");
    let meta = w.store().load("web2", "n1").unwrap().meta.unwrap();
    assert!(meta.spec.get("hooks").is_none());
    let hosts = w.path("store/web2/checkpoints/n1/binds/etc-hosts");
    assert_eq!(meta.spec["mounts"][0]["source"], hosts.display().to_string());
    assert!(std::fs::read_to_string(&hosts).unwrap().contains("localhost"));
}

#[test]
fn an_export_of_a_running_container_is_refused_and_writes_nothing() {
    let mut w = World::new();
    checkpoint_with(&w, "n1", own_spec());
    w.script().export_running = true;
    let file = w.path("web.tar.zst");
    let (_, code, err) = run(|out| export::run(&w.ctx(), &export_args("n1", &file, CompressArg::Zstd), out));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("--no-rootfs"), "{err}");
    let left: Vec<_> = std::fs::read_dir(w.path(""))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        !left.iter().any(|n| n.to_string_lossy().starts_with("web.tar")),
        "{left:?}"
    );
    // Without the root filesystem it goes, and the import then needs one.
    let mut args = export_args("n1", &file, CompressArg::Zstd);
    args.archive.no_rootfs = true;
    let (text, code, err) = run(|out| export::run(&w.ctx(), &args, out));
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("root filesystem: none"), "{text}");
}

#[test]
fn create_export_writes_the_archive_and_refuses_leave_running_with_a_rootfs() {
    let w = World::new();
    let mut args = create_args("n1", true);
    args.export = Some(w.path("n1.tar.zst"));
    let (_, code, err) = run(|out| create::run(&w.ctx(), &args, out));
    assert_eq!(code, 2, "{err}");
    assert!(w.criu.runs().is_empty(), "refused before CRIU ran");
    assert!(!w.path("store/web").exists());

    let mut args = create_args("n1", false);
    args.export = Some(w.path("n1.tar.zst"));
    args.json = true;
    let (text, code, err) = run(|out| create::run(&w.ctx(), &args, out));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["export"]["rootfs"], "tree");
    assert!(w.path("n1.tar.zst").is_file());
}

#[test]
fn start_import_imports_then_restores_the_imported_checkpoint() {
    let w = World::new();
    checkpoint_with(&w, "n1", own_spec());
    let file = w.path("web.tar.zst");
    let (_, code, err) = run(|out| export::run(&w.ctx(), &export_args("n1", &file, CompressArg::Zstd), out));
    assert_eq!(code, 0, "{err}");
    let args = StartArgs {
        checkpoint_dir: None,
        checkpoint: None,
        name: Some("web2".into()),
        import: Some(file.clone()),
        import_flags: ImportFlags::default(),
        json: false,
        print_stats: false,
        tcp_close: false,
        container: None,
    };
    let (text, code, err) = run(|out| start::run(&w.ctx(), &args, out));
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("restored from checkpoint n1"), "{text}");
    assert!(
        w.engine.calls().contains(&"home web2".to_string()),
        "{:?}",
        w.engine.calls()
    );
    assert!(w.store().load("web2", "n1").unwrap().meta.unwrap().imported.is_some());
}

#[test]
fn an_incremental_checkpoint_exports_whole_page_files_and_imports_as_a_full_one() {
    let w = World::new();
    std::fs::write(w.path("bundle/config.json"), own_spec().to_string()).unwrap();
    std::fs::create_dir_all(w.path("bundle/rootfs/tmp")).unwrap();
    let args = CreateArgs {
        incremental: true,
        ..create_args("n1", false)
    };
    let (_, code, err) = run(|out| create::run(&w.ctx(), &args, out));
    assert_eq!(code, 0, "{err}");
    assert!(!w.path("store/web/checkpoints/n1/pages-1.img").exists());
    let file = w.path("out/web.tar");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let (_, code, err) = run(|out| export::run(&w.ctx(), &export_args("n1", &file, CompressArg::None), out));
    assert_eq!(code, 0, "{err}");
    let left: Vec<_> = std::fs::read_dir(w.path("store/web/.ckpt-staging")).unwrap().collect();
    assert!(left.is_empty(), "the full form goes after the export: {left:?}");

    let (_, code, err) = run(|out| import::run(&w.ctx(), &import_args(&file, Some("web2")), out));
    assert_eq!(code, 0, "{err}");
    let entry = w.store().load("web2", "n1").unwrap();
    w.store().verify(&entry).unwrap();
    let meta = entry.meta.clone().unwrap();
    assert_eq!((meta.schema_version, meta.incremental), (2, None));
    assert_eq!(std::fs::read(entry.dir.join("pages-1.img")).unwrap(), [7u8; 4096]);
    assert!(!entry.dir.join("pages.recipe").exists(), "the recipe is not exported");
    assert_eq!(std::fs::read(entry.dir.join("pstree.img")).unwrap(), b"tree");
}
