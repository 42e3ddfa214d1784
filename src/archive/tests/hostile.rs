//! One hostile archive per rule of the reader, built byte by byte here
//! (the `tar` crate refuses to write most of them), each refused naming
//! its entry, with nothing written beside the staging directory (checked
//! by `read`) nor through a link the archive planted.

use super::super::manifest::{ARCHIVE_SCHEMA, FORMAT};
use super::*;
use tar::EntryType;

/// One raw tar entry.
#[derive(Clone)]
pub(super) enum E {
    File(Vec<u8>, Vec<u8>, u32),
    Dir(Vec<u8>),
    Sym(Vec<u8>, Vec<u8>),
    Link(Vec<u8>, Vec<u8>),
    Node(Vec<u8>, EntryType),
}

pub(super) fn file(name: &str, data: &[u8]) -> E {
    E::File(name.into(), data.to_vec(), 0o644)
}

fn raw_header(name: &[u8], kind: EntryType, size: u64, mode: u32, link: &[u8]) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    let g = h.as_gnu_mut().unwrap();
    g.name[..name.len()].copy_from_slice(name);
    g.linkname[..link.len()].copy_from_slice(link);
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(1_733_000_000);
    h.set_uid(0);
    h.set_gid(0);
    if matches!(kind, EntryType::Char | EntryType::Block) {
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
    }
    h.set_cksum();
    h
}

/// A tar of `entries`, with the end marker when `end`.
pub(super) fn tar_of(entries: &[E], end: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let (h, data) = match e {
            E::File(n, d, mode) => (raw_header(n, EntryType::Regular, d.len() as u64, *mode, b""), d.clone()),
            E::Dir(n) => (raw_header(n, EntryType::Directory, 0, 0o755, b""), vec![]),
            E::Sym(n, t) => (raw_header(n, EntryType::Symlink, 0, 0o777, t), vec![]),
            E::Link(n, t) => (raw_header(n, EntryType::Link, 0, 0o644, t), vec![]),
            E::Node(n, k) => (raw_header(n, *k, 0, 0o600, b""), vec![]),
        };
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    if end {
        out.resize(out.len() + 1024, 0);
    }
    out
}

fn base() -> Vec<E> {
    vec![
        file("spec.dump", b"{\"ociVersion\":\"1.2.0\"}"),
        E::Dir(b"checkpoint/".to_vec()),
        file("checkpoint/pstree.img", b"pstree"),
    ]
}

/// A ckpt archive: a manifest that declares `entries` (base ones first),
/// changed by `tweak` before it is written.
pub(super) fn ckpt(extra: Vec<E>, tweak: impl FnOnce(&mut Manifest)) -> Vec<u8> {
    let entries: Vec<E> = base().into_iter().chain(extra).collect();
    let mut declared = BTreeMap::new();
    for e in &entries {
        if let E::File(n, d, _) = e {
            declared.insert(String::from_utf8_lossy(n).into_owned(), digest(d));
        }
    }
    let mut m = Manifest {
        schema_version: ARCHIVE_SCHEMA,
        format: FORMAT.into(),
        tool: "test".into(),
        container_id: "web".into(),
        checkpoint: "one".into(),
        runtime: "runc".into(),
        image: None,
        checkpointed_at: "2026-12-01T00:00:00Z".into(),
        rootfs: RootfsDecl::none(),
        entry_count: entries.len() as u64,
        total_bytes: declared.values().map(|d| d.size).sum(),
        entries: declared,
    };
    tweak(&mut m);
    let all: Vec<E> = std::iter::once(file("ckpt.json", &m.to_json()))
        .chain(entries)
        .collect();
    tar_of(&all, true)
}

/// A ckpt archive whose `rootfs.tar` holds `nested`, declared exactly.
fn with_rootfs(nested: Vec<E>) -> Vec<u8> {
    let bytes: u64 = nested
        .iter()
        .map(|e| if let E::File(_, d, _) = e { d.len() as u64 } else { 0 })
        .sum();
    let count = nested.len() as u64;
    ckpt(
        vec![E::File(b"rootfs.tar".to_vec(), tar_of(&nested, true), 0o600)],
        |m| {
            m.rootfs = RootfsDecl {
                kind: RootfsKind::Tree,
                entries: count,
                bytes,
            }
        },
    )
}

/// A Podman-like archive: no manifest.
pub(super) fn foreign(extra: Vec<E>) -> Vec<u8> {
    let mut entries = vec![
        file("spec.dump", b"{\"annotations\":{\"io.container.manager\":\"libpod\"}}"),
        E::Dir(b"checkpoint/".to_vec()),
    ];
    entries.extend(extra);
    tar_of(&entries, true)
}

fn zstd_of(b: &[u8]) -> Vec<u8> {
    let mut e = compress::Encoder::new(Vec::new(), Compression::Zstd).unwrap();
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn gzip_of(b: &[u8]) -> Vec<u8> {
    let mut e = compress::Encoder::new(Vec::new(), Compression::Gzip).unwrap();
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

type Check = fn(&Refusal) -> bool;

/// What a case is, its archive, how it is read, the entry it must name, its refusal.
type Case = (&'static str, Vec<u8>, ReadOptions, Option<&'static str>, Check);

#[test]
fn every_hostile_archive_is_refused_naming_its_entry() {
    let outside = tempfile::tempdir().unwrap();
    let out = outside.path().to_str().unwrap().as_bytes().to_vec();
    let small = |max_entries, max_bytes| ReadOptions {
        limits: Limits {
            max_bytes,
            max_entries,
            max_json_bytes: 1 << 20,
        },
        ..opts()
    };
    let valid = foreign(vec![file("checkpoint/pages-1.img", &[5u8; 3000])]);
    let huge_decl = ckpt(vec![], |m| {
        let d = m.entries.get_mut("checkpoint/pstree.img").unwrap();
        d.size = 10 << 30;
        m.total_bytes = m.entries.values().map(|d| d.size).sum();
    });
    let mut trailing = valid.clone();
    trailing.extend_from_slice(b"hidden data");
    let mut zstd_cut = zstd_of(&valid);
    zstd_cut.truncate(zstd_cut.len() - 8);
    let mut gzip_cut = gzip_of(&valid);
    gzip_cut.truncate(gzip_cut.len() - 8);
    let mut zstd_bad = vec![0x28, 0xb5, 0x2f, 0xfd];
    zstd_bad.extend([0x55u8; 600]);
    let mut gzip_bad = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    gzip_bad.extend([0x55u8; 600]);
    let mut xz = vec![0xfd, b'7', b'z', b'X', b'Z', 0];
    xz.resize(600, 1);
    let many: Vec<E> = (0..100).map(|i| file(&format!("checkpoint/f{i}"), b"")).collect();
    let mut long_ext = raw_header(b"././@LongLink", EntryType::GNULongName, 100 << 10, 0o644, b"")
        .as_bytes()
        .to_vec();
    long_ext.resize(512 + (100 << 10), b'a');
    long_ext.extend(tar_of(&[], true));

    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("`..` in a name", foreign(vec![file("checkpoint/../../evil", b"x")]), opts(),
            Some("checkpoint/../../evil"), |r| *r == Refusal::DotDot),
        ("an absolute name", foreign(vec![file("/etc/evil", b"x")]), opts(),
            Some("/etc/evil"), |r| *r == Refusal::Absolute),
        ("a name that is not UTF-8", foreign(vec![E::File(b"checkpoint/\xff".to_vec(), vec![], 0o644)]), opts(),
            Some("checkpoint/\u{fffd}"), |r| *r == Refusal::NotUtf8),
        ("a symlink outside a root filesystem", foreign(vec![E::Sym(b"checkpoint/l".to_vec(), b"/etc".to_vec())]), opts(),
            Some("checkpoint/l"), |r| matches!(r, Refusal::SpecialOutsideRootfs { kind: "symlink" })),
        ("a hard link outside a root filesystem", foreign(vec![E::Link(b"checkpoint/l".to_vec(), b"spec.dump".to_vec())]), opts(),
            Some("checkpoint/l"), |r| matches!(r, Refusal::SpecialOutsideRootfs { kind: "hard link" })),
        ("a device outside a root filesystem", foreign(vec![E::Node(b"checkpoint/mem".to_vec(), EntryType::Char)]), opts(),
            Some("checkpoint/mem"), |r| matches!(r, Refusal::SpecialOutsideRootfs { kind: "character device" })),
        ("a fifo outside a root filesystem", foreign(vec![E::Node(b"checkpoint/p".to_vec(), EntryType::Fifo)]), opts(),
            Some("checkpoint/p"), |r| matches!(r, Refusal::SpecialOutsideRootfs { kind: "fifo" })),
        ("a sparse file", foreign(vec![E::Node(b"checkpoint/s".to_vec(), EntryType::GNUSparse)]), opts(),
            Some("checkpoint/s"), |r| matches!(r, Refusal::UnsupportedType { .. })),
        ("a setuid file", foreign(vec![E::File(b"checkpoint/su".to_vec(), vec![1], 0o4755)]), opts(),
            Some("checkpoint/su"), |r| matches!(r, Refusal::Setuid { mode: 0o4755 })),
        ("a relative symlink climbing out of the rootfs", with_rootfs(vec![E::Sym(b"bin/x".to_vec(), b"../../../etc/shadow".to_vec())]), opts(),
            Some("rootfs.tar:bin/x"), |r| matches!(r, Refusal::SymlinkOutside { .. })),
        ("a file through a symlink the archive planted", with_rootfs(vec![E::Sym(b"a".to_vec(), out.clone()), file("a/evil", b"x")]), opts(),
            Some("rootfs.tar:a/evil"), |r| *r == Refusal::NotADirectory),
        ("a hard link through a symlink the archive planted", with_rootfs(vec![E::Sym(b"a".to_vec(), out.clone()), E::Link(b"x".to_vec(), b"a/y".to_vec())]), opts(),
            Some("rootfs.tar:x"), |r| *r == Refusal::NotADirectory),
        ("a hard link out of the rootfs", with_rootfs(vec![E::Link(b"x".to_vec(), b"../../etc/passwd".to_vec())]), opts(),
            Some("rootfs.tar:x"), |r| matches!(r, Refusal::HardlinkOutside { .. })),
        ("an absolute hard link", with_rootfs(vec![E::Link(b"x".to_vec(), b"/etc/passwd".to_vec())]), opts(),
            Some("rootfs.tar:x"), |r| matches!(r, Refusal::HardlinkOutside { .. })),
        ("a setuid file in the rootfs", with_rootfs(vec![E::File(b"bin/su".to_vec(), vec![1], 0o4755)]), opts(),
            Some("rootfs.tar:bin/su"), |r| matches!(r, Refusal::Setuid { .. })),
        ("a rootfs with more entries than declared", ckpt(vec![E::File(b"rootfs.tar".to_vec(), tar_of(&[file("a", b"1"), file("b", b"2")], true), 0o600)],
            |m| m.rootfs = RootfsDecl { kind: RootfsKind::Tree, entries: 1, bytes: 1 }), opts(),
            Some("rootfs.tar"), |r| matches!(r, Refusal::CountMismatch { declared: 1, found: 2, .. })),
        ("a manifest whose total does not add up", ckpt(vec![], |m| m.entries.get_mut("spec.dump").unwrap().size += 1), opts(),
            Some("ckpt.json"), |r| matches!(r, Refusal::Invalid(_))),
        ("a header size that differs from the manifest", ckpt(vec![], |m| {
                m.entries.get_mut("checkpoint/pstree.img").unwrap().size = 7;
                m.total_bytes += 1;
            }), opts(),
            Some("checkpoint/pstree.img"), |r| matches!(r, Refusal::SizeMismatch { declared: 7, found: 6 })),
        ("a checksum that differs from the manifest", ckpt(vec![], |m| m.entries.get_mut("checkpoint/pstree.img").unwrap().blake3 = "0".repeat(64)), opts(),
            Some("checkpoint/pstree.img"), |r| matches!(r, Refusal::ChecksumMismatch { .. })),
        ("an entry the manifest does not declare", ckpt(vec![], |m| {
                let d = m.entries.remove("checkpoint/pstree.img").unwrap();
                m.total_bytes -= d.size;
            }), opts(),
            Some("checkpoint/pstree.img"), |r| *r == Refusal::Undeclared),
        ("a declared entry that is missing", ckpt(vec![], |m| {
                m.entries.insert("checkpoint/core-1.img".into(), digest(b"core"));
                m.total_bytes += 4;
                m.entry_count += 1;
            }), opts(),
            Some("checkpoint/core-1.img"), |r| *r == Refusal::Missing),
        ("more entries than the manifest counts", ckpt(vec![], |m| m.entry_count -= 1), opts(),
            Some("checkpoint/pstree.img"), |r| matches!(r, Refusal::CountMismatch { .. })),
        ("a manifest that is not first", tar_of(&base().into_iter().chain([file("ckpt.json", b"{}")]).collect::<Vec<_>>(), true), opts(),
            Some("ckpt.json"), |r| *r == Refusal::ManifestNotFirst),
        ("a duplicate entry", foreign(vec![file("checkpoint/a", b"1"), file("checkpoint/a", b"2")]), opts(),
            Some("checkpoint/a"), |r| *r == Refusal::Duplicate),
        ("a file where a directory is needed", foreign(vec![file("checkpoint/a", b"1"), file("checkpoint/a/b", b"2")]), opts(),
            Some("checkpoint/a/b"), |r| *r == Refusal::NotADirectory),
        ("too many entries", foreign(many), small(50, 1 << 30),
            None, |r| matches!(r, Refusal::TooManyEntries { limit: 50 })),
        ("too many bytes", foreign(vec![file("checkpoint/pages-1.img", &vec![1u8; 2 << 20])]), small(1000, 1 << 20),
            None, |r| matches!(r, Refusal::TooManyBytes { .. })),
        ("a manifest declaring more than the limit", huge_decl, opts(),
            Some("ckpt.json"), |r| matches!(r, Refusal::TooManyBytes { .. })),
        ("an oversized long-name header", long_ext, opts(),
            Some("././@LongLink"), |r| matches!(r, Refusal::Invalid(_))),
        ("a stream cut inside an entry", valid[..valid.len() - 1024 - 1000].to_vec(), opts(),
            Some("checkpoint/pages-1.img"), |r| matches!(r, Refusal::Truncated(_))),
        ("a stream cut between entries", valid[..valid.len() - 1024].to_vec(), opts(),
            None, |r| matches!(r, Refusal::Truncated(_))),
        ("a cut zstd stream", zstd_cut, opts(),
            None, |r| matches!(r, Refusal::Truncated(_))),
        ("a cut gzip stream", gzip_cut, opts(),
            None, |r| matches!(r, Refusal::Truncated(_))),
        ("garbage behind zstd's magic", zstd_bad, opts(),
            None, |r| matches!(r, Refusal::Corrupt(_))),
        ("garbage behind gzip's magic", gzip_bad, opts(),
            None, |r| matches!(r, Refusal::Corrupt(_))),
        ("an xz stream", xz, opts(),
            None, |r| matches!(r, Refusal::UnknownFormat(s) if s.contains("xz"))),
        ("data after the end marker", trailing, opts(),
            None, |r| *r == Refusal::TrailingData),
        ("no checkpoint directory", tar_of(&[file("spec.dump", b"{}")], true), opts(),
            None, |r| matches!(r, Refusal::NotACheckpoint(_))),
        ("no spec", tar_of(&[E::Dir(b"checkpoint/".to_vec())], true), opts(),
            None, |r| matches!(r, Refusal::NotACheckpoint(_))),
        ("a spec that is not JSON", tar_of(&[file("spec.dump", b"{"), E::Dir(b"checkpoint/".to_vec())], true), opts(),
            Some("spec.dump"), |r| matches!(r, Refusal::Invalid(_))),
        ("deleted.files climbing out", foreign(vec![file("deleted.files", br#"["/etc/../../x"]"#)]), opts(),
            Some("deleted.files"), |r| matches!(r, Refusal::Invalid(s) if s.contains("..") || s.contains("`..`"))),
        ("a root entry that is a file", foreign(vec![file("./", b"x")]), opts(),
            Some("./"), |r| matches!(r, Refusal::BadName(_))),
    ];
    for (what, bytes, o, entry, check) in cases {
        let (_parent, r) = read(&bytes, &o);
        let e = match r {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => e,
        };
        let refusal = e.refusal().unwrap_or_else(|| panic!("{what}: not a refusal: {e}"));
        eprintln!("{what}: {e}");
        assert!(check(refusal), "{what}: wrong refusal: {e}");
        assert_eq!(e.entry(), entry, "{what}: names the wrong entry: {e}");
        assert_eq!(
            fs::read_dir(outside.path()).unwrap().count(),
            0,
            "{what}: wrote outside"
        );
    }
}

#[test]
fn setuid_files_are_accepted_when_asked_and_keep_their_mode() {
    let bytes = with_rootfs(vec![
        E::Dir(b"bin/".to_vec()),
        E::File(b"bin/su".to_vec(), vec![1], 0o4755),
    ]);
    let mut o = opts();
    o.allow_setuid = true;
    let (parent, r) = read(&bytes, &o);
    r.unwrap();
    let m = fs::metadata(parent.path().join("staging/rootfs/bin/su")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o4755);
}

#[test]
fn a_foreign_archive_is_accepted_and_told_apart() {
    let bytes = foreign(vec![
        file("config.dump", br#"{"id":"abc","rootfsImageID":"x","CreateCommand":[]}"#),
        file("checkpoint/inventory.img", b"inv"),
        E::File(
            b"rootfs-diff.tar".to_vec(),
            tar_of(
                &[E::Node(b"dev/null".to_vec(), EntryType::Fifo), file("tmp/count", b"42")],
                true,
            ),
            0o644,
        ),
        file("network.status", b"null"),
    ]);
    let (parent, r) = read(&gzip_of(&bytes), &opts());
    let report = r.unwrap();
    assert_eq!(report.kind, ArchiveKind::Podman);
    assert_eq!(report.compression, Compression::Gzip);
    assert!(report.manifest.is_none());
    assert!(!report.files["checkpoint/inventory.img"].verified);
    assert_eq!(report.rootfs.as_ref().unwrap().entries, 2);
    assert!(parent.path().join("staging/rootfs-diff.tar").is_file());
    assert_eq!(report.config.unwrap()["id"], "abc");
}

#[test]
fn devices_and_fifos_are_allowed_inside_the_rootfs_part() {
    let mut nested = vec![E::Dir(b"dev/".to_vec()), E::Node(b"dev/p".to_vec(), EntryType::Fifo)];
    let root = nix::unistd::geteuid().is_root();
    if root {
        nested.push(E::Node(b"dev/null".to_vec(), EntryType::Char));
    }
    let (parent, r) = read(&with_rootfs(nested), &opts());
    r.unwrap();
    use std::os::unix::fs::FileTypeExt;
    let p = fs::symlink_metadata(parent.path().join("staging/rootfs/dev/p")).unwrap();
    assert!(p.file_type().is_fifo());
    if root {
        let n = fs::symlink_metadata(parent.path().join("staging/rootfs/dev/null")).unwrap();
        assert!(n.file_type().is_char_device());
        assert_eq!(n.rdev(), nix::sys::stat::makedev(1, 3));
    }
}

#[test]
fn a_ckpt_archive_repacked_with_a_root_entry_first_is_still_ckpts() {
    // `tar -C dir -c .` of an unpacked archive puts `./` before ckpt.json.
    let mut bytes = raw_header(b"./", EntryType::Directory, 0, 0o755, b"")
        .as_bytes()
        .to_vec();
    bytes.extend(ckpt(vec![], |_| {}));
    let (_parent, r) = read(&bytes, &opts());
    assert_eq!(r.unwrap().kind, ArchiveKind::Ckpt);
}
