//! Root tests of the archive module against the real tools it must agree
//! with: a Podman-made `--export` archive is read (and every staged file
//! is byte-identical to what GNU tar extracts from it), and checkpointctl
//! reads an archive ckpt wrote from a real runc checkpoint, and a Podman
//! export is restored by `ckpt start --import` into runc. Run as root
//! with `cargo test --test archive -- --test-threads=1`. Without podman or
//! checkpointctl they print `SKIPPED:` and pass, except under `CI=true`,
//! where they fail (see `common::prereqs_with`).
//!
//! The reading tests call the library directly; `ckpt export`, `import`
//! and the move to another store are in `tests/portable.rs`.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use ckpt::archive::{
    self, ArchiveKind, CheckpointFiles, Compression, EntryDigest, ExportSource, ReadOptions, RootfsSource,
};
use common::{expect_code, prereqs_with, unique_id, wait_until, Container, Store};
use tempfile::TempDir;

/// A Podman with all of its state in a tempdir (storage, run root, tmp,
/// events), runtime runc, no network: nothing of the host's Podman is used.
struct Podman {
    dir: TempDir,
    containers: Vec<String>,
}

impl Podman {
    fn new() -> Podman {
        Podman {
            dir: tempfile::Builder::new().prefix("ckpt-podman-").tempdir().unwrap(),
            containers: Vec::new(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        let p = |s: &str| d.join(s).display().to_string();
        Command::new("podman")
            .args(["--root", &p("root"), "--runroot", &p("run"), "--tmpdir", &p("tmp")])
            .args([
                "--runtime",
                "runc",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ])
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env("PODMAN_IGNORE_CGROUPSV1_WARNING", "1")
            .output()
            .expect("run podman")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "podman {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = self.cmd(&["rm", "-f", "-t", "0", c]);
        }
        let _ = self.cmd(&["rmi", "-a", "-f"]);
    }
}

/// Extracts `archive` with GNU tar into `dir` (the reference reader).
fn gnu_tar_extract(archive: &Path, dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    let st = Command::new("tar")
        .args(["--zstd", "-xf"])
        .arg(archive)
        .arg("-C")
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success(), "tar -xf {}", archive.display());
}

/// Builds the test rootfs under `dir` and `podman import`s it as
/// `localhost/ckpt-busybox:test` (no registry: images are made at run
/// time); returns the rootfs.
fn import_busybox_image(pm: &Podman, dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    common::rootfs::build_rootfs(&rootfs);
    let tar = dir.join("busybox.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success(), "tar of the rootfs");
    pm.ok(&["import", &tar.display().to_string(), "localhost/ckpt-busybox:test"]);
    rootfs
}

#[test]
fn a_podman_export_is_read_and_every_file_matches_gnu_tar() {
    if !prereqs_with(&["podman", "tar", "zstd"]) {
        return;
    }
    let pm = Podman::new();
    let t = tempfile::tempdir().unwrap();
    import_busybox_image(&pm, t.path());
    let name = unique_id();
    let mut pm = pm;
    pm.containers.push(name.clone());
    let id = pm.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "localhost/ckpt-busybox:test",
        "/bin/counter",
    ]);
    assert!(
        wait_until(Duration::from_secs(10), || {
            pm.ok(&["logs", &name])
                .lines()
                .filter_map(|l| l.trim().parse::<u64>().ok())
                .any(|n| n > 5)
        }),
        "the counter never counted"
    );
    let export = t.path().join("export.tar.zst");
    pm.ok(&[
        "container",
        "checkpoint",
        "--export",
        &export.display().to_string(),
        &name,
    ]);

    let parent = tempfile::tempdir().unwrap();
    let staging = parent.path().join("staging");
    fs::create_dir(&staging).unwrap();
    let len = fs::metadata(&export).unwrap().len();
    let report = archive::read_archive(fs::File::open(&export).unwrap(), &staging, &ReadOptions::for_input(len))
        .unwrap_or_else(|e| panic!("the reader refused Podman's export: {e}"));
    assert_eq!(report.kind, ArchiveKind::Podman);
    assert_eq!(report.compression, Compression::Zstd);
    assert!(report.manifest.is_none());
    assert_eq!(report.config.as_ref().unwrap()["id"], id.as_str());
    assert_eq!(report.config.as_ref().unwrap()["runtime"], "runc");
    assert_eq!(
        report.spec.as_ref().unwrap()["annotations"]["io.container.manager"],
        "libpod"
    );
    for f in [
        "checkpoint/inventory.img",
        "checkpoint/pstree.img",
        "checkpoint/descriptors.json",
        "stats-dump",
    ] {
        assert!(report.files.contains_key(f), "{f} not in {:?}", report.files.keys());
    }
    let rootfs_part = report.rootfs.as_ref().expect("Podman exported a rootfs-diff.tar");
    assert_eq!(rootfs_part.entry, "rootfs-diff.tar");
    assert!(rootfs_part.unpacked_to.is_none());

    // Every staged file is what GNU tar extracts, byte for byte.
    let reference = t.path().join("reference");
    gnu_tar_extract(&export, &reference);
    for name in report.files.keys() {
        let ours = fs::read(staging.join(name)).unwrap();
        let theirs = fs::read(reference.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ours, theirs, "{name} differs from GNU tar's");
    }
    let inner = Command::new("tar")
        .arg("-tf")
        .arg(staging.join("rootfs-diff.tar"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&inner.stdout).lines().any(|l| l == "tmp/count"));
    eprintln!(
        "podman export: {len} bytes, {} entries, {} bytes unpacked, files: {:?}",
        report.entries,
        report.bytes,
        report
            .files
            .keys()
            .filter(|k| !k.starts_with("checkpoint/"))
            .collect::<Vec<_>>()
    );
}

/// The checkpoint files a published ckpt checkpoint records, plus its
/// `ckpt.json` and seal, as an export takes them.
fn checkpoint_files(dir: &Path) -> (CheckpointFiles, serde_json::Value) {
    let meta: serde_json::Value = serde_json::from_slice(&fs::read(dir.join("ckpt.json")).unwrap()).unwrap();
    let mut files = BTreeMap::new();
    for (name, d) in meta["files"].as_object().unwrap() {
        let digest = EntryDigest {
            size: d["size"].as_u64().unwrap(),
            blake3: d["blake3"].as_str().unwrap().to_string(),
        };
        files.insert(name.clone(), Some(digest));
    }
    files.insert("ckpt.json".into(), None);
    files.insert("ckpt.json.blake3".into(), None);
    (
        CheckpointFiles {
            dir: dir.to_path_buf(),
            files,
        },
        meta,
    )
}

fn checkpointctl(args: &[&str], archive: &Path) -> String {
    let out = Command::new("checkpointctl").args(args).arg(archive).output().unwrap();
    assert!(
        out.status.success(),
        "checkpointctl {args:?} refused a ckpt archive:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn checkpointctl_reads_a_ckpt_archive_of_a_runc_container() {
    if !prereqs_with(&["checkpointctl"]) {
        return;
    }
    let store = Store::new();
    let c = Container::runc().start();
    c.wait_counter_above(10, Duration::from_secs(10))
        .expect("counter warms up");
    // Not --leave-running: a running counter rewrites /tmp/count in the
    // rootfs, and the export refuses a root filesystem that changes under it.
    expect_code(&store.ckpt(["create", &c.id, "one"]), 0, "ckpt create");
    let dir = store.checkpoint_dir(&c.id, "one");
    let (files, meta) = checkpoint_files(&dir);
    let rootfs = PathBuf::from(meta["rootfs"].as_str().unwrap());
    let src = ExportSource {
        checkpoint: files,
        container_id: c.id.clone(),
        container_name: None,
        checkpoint_name: "one".into(),
        runtime: "runc".into(),
        oci_runtime: "runc".into(),
        spec: meta["spec"].clone(),
        created: None,
        checkpointed_at: meta["created_at"].as_str().unwrap().into(),
        rootfs: RootfsSource::Tree(rootfs.clone()),
        docker_create: None,
    };
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("one.tar.zst");
    let summary =
        archive::write_archive(fs::File::create(&path).unwrap(), &src, Compression::Zstd, &mut |_| {}).expect("export");

    let show = checkpointctl(&["show"], &path);
    assert!(
        show.contains(&c.id[..c.id.len().min(12)]) && show.contains("runc"),
        "{show}"
    );
    let tree = checkpointctl(&["inspect", "--ps-tree", "--stats"], &path);
    assert!(tree.contains("counter"), "no counter in the process tree:\n{tree}");
    assert!(tree.contains("Pages written"), "no dump statistics:\n{tree}");
    eprintln!("checkpointctl show:\n{show}\ncheckpointctl inspect --ps-tree --stats:\n{tree}");
    // The same through the command: `ckpt export`'s archive is read too.
    let by_command = t.path().join("by-command.tar.zst");
    let out = store.ckpt(["export", &c.id, "one", "-o", by_command.to_str().unwrap()]);
    expect_code(&out, 0, "ckpt export");
    let show = checkpointctl(&["show"], &by_command);
    assert!(show.contains(&c.id[..c.id.len().min(12)]), "{show}");
    let tree = checkpointctl(&["inspect", "--ps-tree"], &by_command);
    assert!(tree.contains("counter"), "no counter in the process tree:\n{tree}");

    // And ckpt reads it back: the checkpoint byte for byte, the rootfs whole.
    let parent = tempfile::tempdir().unwrap();
    let staging = parent.path().join("staging");
    fs::create_dir(&staging).unwrap();
    let len = fs::metadata(&path).unwrap().len();
    let report = archive::read_archive(fs::File::open(&path).unwrap(), &staging, &ReadOptions::for_input(len)).unwrap();
    assert_eq!(report.kind, ArchiveKind::Ckpt);
    assert_eq!(report.manifest.as_ref().unwrap(), &summary.manifest);
    for name in src.checkpoint.files.keys() {
        assert_eq!(
            fs::read(staging.join("checkpoint").join(name)).unwrap(),
            fs::read(dir.join(name)).unwrap(),
            "checkpoint/{name}"
        );
    }
    assert_eq!(
        fs::read(staging.join("rootfs/bin/busybox")).unwrap(),
        fs::read(rootfs.join("bin/busybox")).unwrap()
    );
    assert_eq!(
        fs::read_link(staging.join("rootfs/bin/sh")).unwrap(),
        PathBuf::from("busybox")
    );
}

/// Podman → ckpt: a counter checkpointed by `podman container checkpoint
/// --export` (runtime runc) is restored by `ckpt start --import` into a
/// runc root of its own, over `--rootfs` (the image's contents, here the
/// tree the image was made from), after Podman removed the container; the
/// counter continues from where Podman's checkpoint left it.
#[test]
fn a_podman_export_is_restored_by_start_import_into_runc_and_the_counter_continues() {
    if !prereqs_with(&["podman", "tar"]) {
        return;
    }
    let mut pm = Podman::new();
    let t = tempfile::tempdir().unwrap();
    let rootfs = import_busybox_image(&pm, t.path());
    let name = unique_id();
    pm.containers.push(name.clone());
    pm.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "localhost/ckpt-busybox:test",
        "/bin/counter",
    ]);
    let last = |pm: &Podman| {
        pm.ok(&["logs", &name])
            .lines()
            .filter_map(|l| l.trim().parse::<u64>().ok())
            .max()
    };
    assert!(
        wait_until(Duration::from_secs(10), || last(&pm).is_some_and(|n| n > 5)),
        "the counter never counted"
    );
    let export = t.path().join("export.tar.zst");
    pm.ok(&[
        "container",
        "checkpoint",
        "--export",
        &export.display().to_string(),
        &name,
    ]);
    let saved = last(&pm).expect("the counter's last value");
    pm.ok(&["rm", "-f", "-t", "0", &name]);

    let store = Store::new();
    let root = common::runc_root::RuncRoot::new();
    let new_id = unique_id();
    let out = store.ckpt([
        "--runtime",
        "runc",
        "--runtime-root",
        root.path().to_str().unwrap(),
        "start",
        "--import",
        export.to_str().unwrap(),
        "--name",
        &new_id,
        "--rootfs",
        rootfs.to_str().unwrap(),
        "--json",
    ]);
    expect_code(&out, 0, "ckpt start --import of a Podman export");
    let started: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON value");
    assert_eq!(started["container"], new_id.as_str());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("import: replaced host path") && stderr.contains("/etc/hosts"),
        "the policy says what it replaced: {stderr}"
    );
    assert_eq!(root.status(&new_id).as_deref(), Some("running"));
    let restored_rootfs = store.checkpoint_dir(&new_id, "imported").join("rootfs");
    let mut seen = 0;
    assert!(
        wait_until(Duration::from_secs(10), || {
            seen = fs::read_to_string(restored_rootfs.join("tmp/count"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            seen > saved
        }),
        "the counter continues from {saved} (last seen {seen})"
    );
    assert!(seen < saved + 100, "it continued ({seen}), it did not start again");
    assert_eq!(
        fs::read(rootfs.join("bin/busybox")).unwrap(),
        fs::read(restored_rootfs.join("bin/busybox")).unwrap()
    );
    assert!(
        !rootfs.join("tmp/count").exists(),
        "--rootfs DIR was copied, not written to"
    );
}
