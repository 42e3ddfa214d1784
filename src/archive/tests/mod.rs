//! Tests of writing and reading archives: round trips (every file back
//! byte for byte, the root filesystem with its modes and links), flat
//! memory on a 512 MiB stream, and (in `hostile`) one refusal per rule.

mod hostile;

use super::*;
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A fake checkpoint directory: CRIU-like images, a stats-dump, a store
/// `ckpt.json` and seal (unrecorded, as the store keeps them).
pub(super) struct FakeCheckpoint {
    pub dir: tempfile::TempDir,
    pub files: BTreeMap<String, Option<EntryDigest>>,
}

pub(super) fn digest(bytes: &[u8]) -> EntryDigest {
    EntryDigest {
        size: bytes.len() as u64,
        blake3: blake3::hash(bytes).to_hex().to_string(),
    }
}

pub(super) fn fake_checkpoint() -> FakeCheckpoint {
    let dir = tempfile::tempdir().unwrap();
    let mut files = BTreeMap::new();
    let content: Vec<(&str, Vec<u8>)> = vec![
        ("inventory.img", b"inventory".to_vec()),
        ("pstree.img", b"pstree".to_vec()),
        ("core-1.img", vec![7u8; 3000]),
        ("pages-1.img", (0..200_000u32).map(|i| (i * 31 % 256) as u8).collect()),
        ("descriptors.json", br#"["/dev/null","pipe:[1]","pipe:[1]"]"#.to_vec()),
        ("stats-dump", vec![1, 2, 3, 4]),
        ("dump.log", b"(00.000001) Dumping finished successfully\n".to_vec()),
    ];
    for (name, bytes) in &content {
        fs::write(dir.path().join(name), bytes).unwrap();
        files.insert(name.to_string(), Some(digest(bytes)));
    }
    for name in ["ckpt.json", "ckpt.json.blake3"] {
        fs::write(dir.path().join(name), format!("{{\"{name}\": 1}}")).unwrap();
        files.insert(name.to_string(), None);
    }
    FakeCheckpoint { dir, files }
}

/// A small root filesystem with each kind of entry an unprivileged test can make.
pub(super) fn fake_rootfs() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    for d in ["bin", "etc", "tmp", "usr/lib/deep/er"] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    fs::write(r.join("bin/busybox"), vec![0x7fu8; 5000]).unwrap();
    fs::set_permissions(r.join("bin/busybox"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("busybox", r.join("bin/sh")).unwrap();
    symlink("/bin/busybox", r.join("bin/ls")).unwrap();
    symlink("../../../bin/busybox", r.join("usr/lib/deep/x")).unwrap();
    fs::write(r.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    fs::set_permissions(r.join("etc/passwd"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(r.join("usr/lib/deep/er/long"), "x".repeat(10)).unwrap();
    fs::set_permissions(r.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    nix::unistd::mkfifo(&r.join("tmp/fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // A name longer than a tar header's 100 bytes (a GNU long-name entry).
    let long = "n".repeat(150);
    fs::write(r.join("usr/lib").join(&long), "long name").unwrap();
    t
}

pub(super) fn source(ck: &FakeCheckpoint, rootfs: RootfsSource) -> ExportSource {
    source_at(ck.dir.path(), ck.files.clone(), rootfs)
}

fn source_at(dir: &Path, files: BTreeMap<String, Option<EntryDigest>>, rootfs: RootfsSource) -> ExportSource {
    ExportSource {
        checkpoint: CheckpointFiles {
            dir: dir.to_path_buf(),
            files,
        },
        container_id: "web".into(),
        container_name: None,
        checkpoint_name: "one".into(),
        runtime: "runc".into(),
        oci_runtime: "runc".into(),
        spec: serde_json::json!({"ociVersion": "1.2.0", "root": {"path": "rootfs"}}),
        created: Some("2026-12-01T10:00:00Z".into()),
        checkpointed_at: "2026-12-01T10:05:00Z".into(),
        rootfs,
        docker_create: None,
    }
}

pub(super) fn write(src: &ExportSource, c: Compression) -> Vec<u8> {
    let mut out = Vec::new();
    write_archive(&mut out, src, c, &mut |_| {}).unwrap();
    out
}

/// Reads `bytes` into a fresh staging dir inside a parent that must hold
/// nothing else afterwards.
pub(super) fn read(bytes: &[u8], opts: &ReadOptions) -> (tempfile::TempDir, Result<Report, ArchiveError>) {
    let parent = tempfile::tempdir().unwrap();
    fs::create_dir(parent.path().join("staging")).unwrap();
    let r = read_archive(bytes, &parent.path().join("staging"), opts);
    let names: Vec<_> = fs::read_dir(parent.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("staging")],
        "something was written beside staging"
    );
    (parent, r)
}

pub(super) fn opts() -> ReadOptions {
    ReadOptions::for_input(1 << 20)
}

/// Type, mode, size, link target and content of every path below `root`.
fn tree(root: &Path) -> BTreeMap<PathBuf, (u32, u64, Option<PathBuf>, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        let link = m.file_type().is_symlink().then(|| fs::read_link(&p).unwrap());
        let data = if m.is_file() { fs::read(&p).unwrap() } else { vec![] };
        out.insert(rel, (m.mode(), if m.is_file() { m.len() } else { 0 }, link, data));
        if m.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    out
}

#[test]
fn round_trip_gives_back_every_file_byte_for_byte_in_each_compression() {
    let ck = fake_checkpoint();
    let rootfs = fake_rootfs();
    let src = source(&ck, RootfsSource::Tree(rootfs.path().to_path_buf()));
    for c in [Compression::Zstd, Compression::Gzip, Compression::None] {
        let bytes = write(&src, c);
        let (parent, r) = read(&bytes, &opts());
        let report = r.unwrap_or_else(|e| panic!("{c:?}: {e}"));
        let staging = parent.path().join("staging");
        assert_eq!(report.kind, ArchiveKind::Ckpt);
        assert_eq!(report.compression, c);
        for name in ck.files.keys() {
            let want = fs::read(ck.dir.path().join(name)).unwrap();
            let got = fs::read(staging.join("checkpoint").join(name)).unwrap();
            assert_eq!(got, want, "{c:?}: checkpoint/{name}");
            let f = &report.files[&format!("checkpoint/{name}")];
            assert!(f.verified, "{name} not verified");
        }
        assert_eq!(fs::read(staging.join("stats-dump")).unwrap(), vec![1, 2, 3, 4]);
        let mode = fs::metadata(staging.join("checkpoint/pages-1.img")).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o600, "staged checkpoint files are private");
        assert_eq!(
            tree(&staging.join("rootfs")),
            tree(rootfs.path()),
            "{c:?}: the root filesystem differs"
        );
        let rf = report.rootfs.unwrap();
        assert_eq!(rf.unpacked_to.as_deref(), Some("rootfs"));
        assert_eq!(rf.entries, report.manifest.as_ref().unwrap().rootfs.entries);
        assert_eq!(report.spec.unwrap()["annotations"]["io.container.manager"], "ckpt");
        assert_eq!(report.config.unwrap()["id"], "web");
    }
}

#[test]
fn a_kept_rootfs_tar_and_a_docker_diff_are_validated_but_not_unpacked() {
    let ck = fake_checkpoint();
    let rootfs = fake_rootfs();
    let diff = RootfsSource::Diff {
        root: rootfs.path().to_path_buf(),
        changed: vec![
            PathBuf::from("/etc/passwd"),
            PathBuf::from("/usr/lib"),
            PathBuf::from("/usr/lib/deep/x"),
        ],
        deleted: vec!["/etc/motd".into()],
        image: ImageRef {
            name: "busybox:1".into(),
            id: Some("sha256:abcd".into()),
        },
    };
    let bytes = write(&source(&ck, diff), Compression::Zstd);
    let (parent, r) = read(&bytes, &opts());
    let report = r.unwrap();
    let staging = parent.path().join("staging");
    assert!(staging.join("rootfs-diff.tar").is_file());
    assert!(!staging.join("rootfs").exists());
    assert_eq!(report.deleted_files, Some(vec!["/etc/motd".to_string()]));
    assert_eq!(
        report.manifest.as_ref().unwrap().image.as_ref().unwrap().name,
        "busybox:1"
    );
    assert_eq!(report.config.as_ref().unwrap()["rootfsImageName"], "busybox:1");
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(fs::File::open(staging.join("rootfs-diff.tar")).unwrap());
    for e in ar.entries().unwrap() {
        names.push(e.unwrap().path().unwrap().display().to_string());
    }
    assert!(names.contains(&"etc/passwd".to_string()), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("usr/lib/deep/er")), "{names:?}");
    assert_eq!(
        names.iter().filter(|n| *n == "usr/lib/deep/x").count(),
        1,
        "a path under a listed directory is written once"
    );

    let mut keep = opts();
    keep.unpack_rootfs = false;
    let bytes = write(
        &source(&ck, RootfsSource::Tree(rootfs.path().into())),
        Compression::None,
    );
    let (parent, r) = read(&bytes, &keep);
    r.unwrap();
    assert!(parent.path().join("staging/rootfs.tar").is_file());
}

/// (regression) A real checkpoint of 400 MiB of patterned memory
/// compressed beyond the ratio limit (64 x + 256 MiB) and `ckpt import`
/// refused its own export as a tar bomb ("the archive expands to more
/// than 344632448 bytes", found by measuring export/import by hand). A
/// ckpt manifest may now declare up to `declared_max_bytes` (the store's
/// free space): its exact sizes bound the stream instead.
#[test]
fn a_ckpt_archive_that_compresses_beyond_the_ratio_is_read_when_its_sizes_are_allowed() {
    let ck = fake_checkpoint();
    let zeros = vec![0u8; 8 << 20];
    fs::write(ck.dir.path().join("pages-2.img"), &zeros).unwrap();
    let mut files = ck.files.clone();
    files.insert("pages-2.img".into(), Some(digest(&zeros)));
    let bytes = write(&source_at(ck.dir.path(), files, RootfsSource::None), Compression::Zstd);
    assert!(
        bytes.len() < 1 << 20,
        "8 MiB of zeros compress to {} bytes",
        bytes.len()
    );
    let limited = |declared: Option<u64>| ReadOptions {
        limits: Limits {
            max_bytes: 1 << 20,
            max_entries: 1000,
            max_json_bytes: 1 << 20,
        },
        declared_max_bytes: declared,
        ..opts()
    };
    for declared in [None, Some(4 << 20)] {
        let (_, r) = read(&bytes, &limited(declared));
        let e = r.unwrap_err();
        assert!(
            matches!(e.refusal(), Some(Refusal::TooManyBytes { .. })),
            "{declared:?}: {e}"
        );
        assert_eq!(
            e.entry(),
            Some("ckpt.json"),
            "{declared:?}: refused before any data: {e}"
        );
    }
    let (parent, r) = read(&bytes, &limited(Some(16 << 20)));
    let report = r.unwrap();
    assert!(report.bytes > 8 << 20);
    assert_eq!(
        fs::read(parent.path().join("staging/checkpoint/pages-2.img")).unwrap(),
        zeros
    );
}

#[test]
fn no_rootfs_and_progress_reaches_the_total() {
    let ck = fake_checkpoint();
    let src = source(&ck, RootfsSource::None);
    let mut seen = Vec::new();
    let mut out = Vec::new();
    let summary = write_archive(&mut out, &src, Compression::Zstd, &mut |p| seen.push(p)).unwrap();
    let last = seen.last().unwrap();
    assert_eq!(last.done, last.total);
    assert_eq!(summary.manifest.rootfs.kind, RootfsKind::None);
    let (_, r) = read(&out, &opts());
    assert!(r.unwrap().rootfs.is_none());
}

#[test]
fn a_checkpoint_file_that_differs_from_its_record_fails_the_export() {
    let ck = fake_checkpoint();
    let src = source(&ck, RootfsSource::None);
    // Same size, other bytes: only the BLAKE3 check can catch it.
    fs::write(ck.dir.path().join("pstree.img"), b"PSTREE").unwrap();
    let mut out = Vec::new();
    let e = write_archive(&mut out, &src, Compression::None, &mut |_| {}).unwrap_err();
    assert!(
        e.to_string().contains("pstree.img") && e.to_string().contains("BLAKE3"),
        "{e}"
    );
    fs::write(ck.dir.path().join("pstree.img"), b"short").unwrap();
    let e = write_archive(&mut Vec::new(), &src, Compression::None, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("5 bytes, 6 were recorded"), "{e}");
    fs::remove_file(ck.dir.path().join("pstree.img")).unwrap();
    symlink("/etc/passwd", ck.dir.path().join("pstree.img")).unwrap();
    let e = write_archive(&mut Vec::new(), &src, Compression::None, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("symlink"), "{e}");
}

#[test]
fn checkpointctl_finds_what_it_requires() {
    // checkpointctl 1.3: a regular-file tar with a `checkpoint` directory
    // entry, valid JSON in config.dump and spec.dump, stats-dump at the root.
    let ck = fake_checkpoint();
    let bytes = write(&source(&ck, RootfsSource::None), Compression::None);
    let mut ar = tar::Archive::new(&bytes[..]);
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        if e.header().entry_type().is_dir() {
            dirs.push(name);
        } else {
            files.push(name);
        }
    }
    assert_eq!(files[0], "ckpt.json", "the manifest comes first");
    assert!(dirs.iter().any(|d| d.trim_end_matches('/') == "checkpoint"), "{dirs:?}");
    for f in [
        "config.dump",
        "spec.dump",
        "stats-dump",
        "checkpoint/pstree.img",
        "checkpoint/core-1.img",
    ] {
        assert!(files.contains(&f.to_string()), "{f} missing from {files:?}");
    }
}

/// Streams 512 MiB (by default) of generated pages through writer → pipe → reader in a
/// child process (so no other test's memory counts) and checks its peak
/// RSS. Prints the numbers it measured.
#[test]
fn streaming_512_mib_keeps_memory_flat() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "archive::tests::memory_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CKPT_ARCHIVE_MEMORY_CHILD", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{text}");
    let field = |k: &str| -> u64 {
        let line = text
            .lines()
            .find(|l| l.contains(k))
            .unwrap_or_else(|| panic!("no {k} in:\n{text}"));
        line.split('=').nth(1).unwrap().trim().parse().unwrap()
    };
    let (base, peak) = (field("BASE_KIB"), field("PEAK_KIB"));
    let timing = text.lines().find(|l| l.starts_with("MIB=")).unwrap_or("");
    eprintln!("archive memory: rss before {base} KiB, peak {peak} KiB, written and read through zstd: {timing}");
    assert!(
        peak < base + 48 * 1024,
        "peak RSS grew from {base} KiB to {peak} KiB while streaming 512 MiB"
    );
}

fn status_kib(field: &str) -> u64 {
    let s = fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
#[ignore = "run by streaming_512_mib_keeps_memory_flat in a child process"]
fn memory_child() {
    if std::env::var_os("CKPT_ARCHIVE_MEMORY_CHILD").is_none() {
        return;
    }
    // CKPT_ARCHIVE_MEMORY_MIB=1024 measures a 1 GiB checkpoint by hand.
    let mib: u64 = std::env::var("CKPT_ARCHIVE_MEMORY_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let size: u64 = mib << 20;
    let dir = tempfile::tempdir().unwrap();
    // Incompressible pages, generated and hashed in 1 MiB steps.
    let mut f = fs::File::create(dir.path().join("pages-1.img")).unwrap();
    let mut h = blake3::Hasher::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&buf).unwrap();
        h.update(&buf);
    }
    drop(f);
    drop(buf);
    let mut files = BTreeMap::new();
    files.insert(
        "pages-1.img".to_string(),
        Some(EntryDigest {
            size,
            blake3: h.finalize().to_hex().to_string(),
        }),
    );
    fs::write(dir.path().join("pstree.img"), b"p").unwrap();
    files.insert("pstree.img".into(), None);
    let src = source_at(dir.path(), files, RootfsSource::None);
    let staging = tempfile::tempdir().unwrap();
    // Reset the high-water mark now that the setup is done.
    fs::write("/proc/self/clear_refs", "5").unwrap();
    let base = status_kib("VmRSS:");
    let started = std::time::Instant::now();
    let (rx, tx) = nix::unistd::pipe().unwrap();
    let writer = std::thread::spawn(move || {
        let out = std::io::BufWriter::new(fs::File::from(tx));
        write_archive(out, &src, Compression::Zstd, &mut |_| {}).unwrap();
    });
    let report = read_archive(fs::File::from(rx), staging.path(), &ReadOptions::for_input(size)).unwrap();
    writer.join().unwrap();
    let elapsed = started.elapsed();
    assert!(report.files["checkpoint/pages-1.img"].verified);
    let mut got = fs::File::open(staging.path().join("checkpoint/pages-1.img")).unwrap();
    let mut first = [0u8; 8];
    got.read_exact(&mut first).unwrap();
    println!("BASE_KIB={base}");
    println!("PEAK_KIB={}", status_kib("VmHWM:"));
    println!("MIB={mib} ELAPSED_MS={}", elapsed.as_millis());
}
