//! Writing an archive: a checkpoint directory, what is known about its
//! container, and optionally its root filesystem, streamed into any
//! `Write` as a (compressed) tar. Memory is a few buffers whatever the
//! size: file data is copied through `io::copy`, never held.
//!
//! The manifest is the first entry and declares every later file's size
//! and BLAKE3, so whatever is not recorded already is hashed first: the
//! checkpoint's files come with the digests `ckpt.json` recorded (only
//! `ckpt.json` and its seal are hashed), and the nested root filesystem
//! tar is built once into a hashing sink to learn its size and digest,
//! then built again into the archive and compared. Each file is checked
//! while it is copied; a file that differs from its record, or changed
//! between the two passes, fails the export ([`ArchiveError::Source`]),
//! and the caller must discard the incomplete output.

use super::compress::{Compression, Encoder};
use super::manifest::{self, ConfigDump, EntryDigest, ImageRef, Manifest, RootfsDecl, RootfsKind};
use super::rootfs_tar as nested;
use super::streams::{Checked, Counter, HashCount, Tracker};
use super::{io_err, ArchiveError};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The files of one checkpoint directory to carry under `checkpoint/`.
#[derive(Debug, Clone)]
pub struct CheckpointFiles {
    pub dir: PathBuf,
    /// `/`-separated relative name → the size and BLAKE3 the checkpoint
    /// recorded, or `None` to hash it before writing (`ckpt.json`, its
    /// seal, or every file of a checkpoint ckpt did not make).
    pub files: BTreeMap<String, Option<EntryDigest>>,
}

/// The root filesystem part of an export.
#[derive(Debug, Clone)]
pub enum RootfsSource {
    /// Leave it out: the target has it.
    None,
    /// A runc/crun bundle's root filesystem, whole, as `rootfs.tar`.
    Tree(PathBuf),
    /// A Docker container's writable layer as `rootfs-diff.tar`: the
    /// `changed` paths (relative to `root`, the container's merged root;
    /// a directory is taken whole), and `deleted` paths as
    /// `deleted.files`, over `image`.
    Diff {
        root: PathBuf,
        changed: Vec<PathBuf>,
        deleted: Vec<String>,
        image: ImageRef,
    },
}

/// Everything an export writes.
#[derive(Debug, Clone)]
pub struct ExportSource {
    pub checkpoint: CheckpointFiles,
    pub container_id: String,
    /// A human name, if the engine has one (Docker's); else the id.
    pub container_name: Option<String>,
    pub checkpoint_name: String,
    /// The engine: `runc`, `crun` or `docker`.
    pub runtime: String,
    /// The OCI runtime under it (`runc` for Docker).
    pub oci_runtime: String,
    /// The spec recorded at dump time.
    pub spec: Value,
    /// When the container was created (RFC 3339), if known.
    pub created: Option<String>,
    /// When the checkpoint was taken (RFC 3339).
    pub checkpointed_at: String,
    pub rootfs: RootfsSource,
    /// Docker: the create body that makes the container again on the
    /// target (see [`ConfigDump::docker_create`]).
    pub docker_create: Option<Value>,
}

/// How far an export is: bytes of file data copied, of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct WriteSummary {
    /// The manifest, as written first.
    pub manifest: Manifest,
    /// Length of the uncompressed tar stream.
    pub tar_bytes: u64,
    /// Paths of the root filesystem left out: sockets (tar has no such
    /// type) and the contents of directories on another filesystem.
    pub skipped: Vec<String>,
}

/// [`write_tar`] through `compression`, into `out`.
pub fn write_archive<W: Write>(
    out: W,
    src: &ExportSource,
    compression: Compression,
    progress: &mut dyn FnMut(Progress),
) -> Result<WriteSummary, ArchiveError> {
    let enc = Encoder::new(out, compression).map_err(io_err("start compressing", "the archive"))?;
    let (enc, summary) = write_tar(enc, src, progress)?;
    enc.finish().map_err(io_err("finish", "the archive"))?;
    Ok(summary)
}

/// Writes the uncompressed tar stream of `src` into `out` and returns
/// `out`. Use this to tap the stream (an OCI layer's diff id is the
/// digest of exactly these bytes).
pub fn write_tar<W: Write>(
    out: W,
    src: &ExportSource,
    progress: &mut dyn FnMut(Progress),
) -> Result<(W, WriteSummary), ArchiveError> {
    let mtime = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let plan = plan(src)?;
    let manifest = plan.manifest.clone();
    let mut tracker = Tracker {
        done: 0,
        reported: 0,
        total: manifest.total_bytes,
        callback: progress,
    };
    let mut b = tar::Builder::new(Counter { inner: out, count: 0 });
    append_bytes(&mut b, manifest::MANIFEST, &manifest.to_json(), mtime, None)?;
    for entry in &plan.entries {
        match entry {
            Planned::Dir(name) => {
                let mut h = header(tar::EntryType::Directory, 0o700, 0, mtime);
                b.append_data(&mut h, name, io::empty())
                    .map_err(io_err("write", name.clone()))?;
            }
            Planned::Bytes(name, bytes) => append_bytes(&mut b, name, bytes, mtime, Some(&mut tracker))?,
            Planned::File(name, path, digest) => append_file(&mut b, name, path, digest, mtime, &mut tracker)?,
            Planned::Nested(name, digest) => append_nested(&mut b, name, &src.rootfs, digest, mtime, &mut tracker)?,
        }
    }
    b.finish().map_err(io_err("finish", "the archive"))?;
    let counter = b.into_inner().map_err(io_err("finish", "the archive"))?;
    tracker.report(true);
    Ok((
        counter.inner,
        WriteSummary {
            manifest,
            tar_bytes: counter.count,
            skipped: plan.skipped,
        },
    ))
}

/// One entry after the manifest, in archive order.
enum Planned {
    Dir(String),
    Bytes(String, Vec<u8>),
    File(String, PathBuf, EntryDigest),
    Nested(String, EntryDigest),
}

struct Plan {
    manifest: Manifest,
    entries: Vec<Planned>,
    skipped: Vec<String>,
}

/// Decides the entries and learns every digest the manifest declares.
fn plan(src: &ExportSource) -> Result<Plan, ArchiveError> {
    let ck = &src.checkpoint;
    let mut entries = Vec::new();
    let config = ConfigDump {
        id: src.container_id.clone(),
        name: src.container_name.clone().unwrap_or_else(|| src.container_id.clone()),
        image: match &src.rootfs {
            RootfsSource::Diff { image, .. } => Some(image.clone()),
            _ => None,
        },
        oci_runtime: src.oci_runtime.clone(),
        engine: src.runtime.clone(),
        checkpoint: src.checkpoint_name.clone(),
        tool: tool(),
        created: src.created.clone(),
        checkpointed: src.checkpointed_at.clone(),
        docker_create: src.docker_create.clone(),
    };
    entries.push(Planned::Bytes(manifest::CONFIG_DUMP.into(), config.to_json()));
    entries.push(Planned::Bytes(
        manifest::SPEC_DUMP.into(),
        manifest::spec_dump(&src.spec),
    ));

    let mut files = Vec::new();
    for (name, recorded) in &ck.files {
        if name.is_empty() || name.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(source_err(name, "not a clean relative name"));
        }
        let path = ck.dir.join(name);
        let digest = match recorded {
            Some(d) => d.clone(),
            None => hash_file(&path)?,
        };
        files.push((name.clone(), path, digest));
    }
    // checkpointctl --stats reads stats-dump at the archive's root, as Podman puts it.
    if let Some((_, path, d)) = files.iter().find(|(n, _, _)| n == manifest::STATS_DUMP) {
        entries.push(Planned::File(manifest::STATS_DUMP.into(), path.clone(), d.clone()));
    }
    if let RootfsSource::Diff { deleted, .. } = &src.rootfs {
        let mut json = serde_json::to_vec_pretty(deleted).expect("JSON serializes");
        json.push(b'\n');
        entries.push(Planned::Bytes(manifest::DELETED_FILES.into(), json));
    }
    // checkpointctl requires a directory entry named checkpoint.
    let mut dirs = BTreeSet::new();
    dirs.insert(format!("{}/", manifest::CHECKPOINT_DIR));
    for (name, _, _) in &files {
        let mut at = manifest::CHECKPOINT_DIR.to_string();
        for c in name.split('/').collect::<Vec<_>>().iter().rev().skip(1).rev() {
            at = format!("{at}/{c}");
            dirs.insert(format!("{at}/"));
        }
    }
    entries.extend(dirs.into_iter().map(Planned::Dir));
    for (name, path, d) in files {
        entries.push(Planned::File(format!("{}/{name}", manifest::CHECKPOINT_DIR), path, d));
    }

    let mut rootfs = RootfsDecl::none();
    let mut skipped = Vec::new();
    if let Some((kind, name)) = match &src.rootfs {
        RootfsSource::None => None,
        RootfsSource::Tree(_) => Some((RootfsKind::Tree, manifest::ROOTFS_TAR)),
        RootfsSource::Diff { .. } => Some((RootfsKind::Diff, manifest::ROOTFS_DIFF_TAR)),
    } {
        let mut sink = HashCount::new(io::sink());
        let stats = nested::write(&mut sink, &src.rootfs)?;
        rootfs = RootfsDecl {
            kind,
            entries: stats.entries,
            bytes: stats.bytes,
        };
        skipped = stats.skipped;
        entries.push(Planned::Nested(name.into(), sink.digest()));
    }

    let mut declared = BTreeMap::new();
    for e in &entries {
        let (name, d) = match e {
            Planned::Dir(_) => continue,
            Planned::Bytes(n, b) => (n, digest_of(b)),
            Planned::File(n, _, d) | Planned::Nested(n, d) => (n, d.clone()),
        };
        declared.insert(name.clone(), d);
    }
    let manifest = Manifest {
        schema_version: manifest::ARCHIVE_SCHEMA,
        format: manifest::FORMAT.into(),
        tool: tool(),
        container_id: src.container_id.clone(),
        checkpoint: src.checkpoint_name.clone(),
        runtime: src.runtime.clone(),
        image: config.image.clone(),
        checkpointed_at: src.checkpointed_at.clone(),
        rootfs,
        entry_count: entries.len() as u64,
        total_bytes: declared.values().map(|d| d.size).sum(),
        entries: declared,
    };
    Ok(Plan {
        manifest,
        entries,
        skipped,
    })
}

fn tool() -> String {
    format!("ckpt {}", env!("CARGO_PKG_VERSION"))
}

pub(crate) fn source_err(path: impl Into<String>, reason: impl Into<String>) -> ArchiveError {
    ArchiveError::Source {
        path: path.into(),
        reason: reason.into(),
    }
}

/// A header for an entry ckpt generates: owned by root, `mode`, `mtime`.
fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_size(size);
    h
}

fn append_bytes<W: Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
    mtime: u64,
    tracker: Option<&mut Tracker>,
) -> Result<(), ArchiveError> {
    let mut h = header(tar::EntryType::Regular, 0o600, bytes.len() as u64, mtime);
    b.append_data(&mut h, name, bytes).map_err(io_err("write", name))?;
    if let Some(t) = tracker {
        t.add(bytes.len() as u64);
    }
    Ok(())
}

/// Appends a checkpoint file, checking its size before and its BLAKE3
/// while it is copied.
fn append_file<W: Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    path: &Path,
    want: &EntryDigest,
    mtime: u64,
    tracker: &mut Tracker,
) -> Result<(), ArchiveError> {
    let shown = path.display().to_string();
    let file = open_regular(path)?;
    let mut h = header(tar::EntryType::Regular, 0o600, want.size, mtime);
    let mut r = Checked::new(file, want.size, &shown, tracker);
    b.append_data(&mut h, name, &mut r).map_err(|e| r.error(e, "write"))?;
    r.finish(want)
}

/// Appends the nested root filesystem tar, built again straight into the
/// archive, and checks it against the first pass.
fn append_nested<W: Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    rootfs: &RootfsSource,
    want: &EntryDigest,
    mtime: u64,
    tracker: &mut Tracker,
) -> Result<(), ArchiveError> {
    let mut h = header(tar::EntryType::Regular, 0o600, want.size, mtime);
    h.set_path(name).map_err(io_err("write", name))?;
    h.set_cksum();
    let out = b.get_mut();
    out.write_all(h.as_bytes()).map_err(io_err("write", name))?;
    let mut sink = HashCount::new(&mut *out);
    sink.tracker = Some(tracker);
    nested::write(&mut sink, rootfs)?;
    let got = sink.digest();
    if &got != want {
        let how = if got.size == want.size {
            format!("same {} bytes, other content", got.size)
        } else {
            format!("{} bytes, then {}", want.size, got.size)
        };
        return Err(source_err(
            name,
            format!("the root filesystem changed between the two passes of the export ({how}); is the container still running?"),
        ));
    }
    let pad = (512 - got.size % 512) % 512;
    out.write_all(&[0u8; 512][..pad as usize])
        .map_err(io_err("write", name))
}

/// Opens a file to export: no symlink, no fifo, a regular file.
pub(crate) fn open_regular(path: &Path) -> Result<File, ArchiveError> {
    let shown = path.display().to_string();
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => source_err(&shown, "it is a symlink"),
            _ => ArchiveError::Io {
                op: "open",
                path: shown.clone(),
                source: e,
            },
        })?;
    let m = f.metadata().map_err(io_err("inspect", &shown))?;
    if !m.file_type().is_file() {
        return Err(source_err(&shown, "it is not a regular file"));
    }
    Ok(f)
}

/// The size and BLAKE3 of a file, read in a streaming pass.
fn hash_file(path: &Path) -> Result<EntryDigest, ArchiveError> {
    let mut h = HashCount::new(io::sink());
    let mut f = open_regular(path)?;
    io::copy(&mut f, &mut h).map_err(io_err("read", path.display().to_string()))?;
    Ok(h.digest())
}

fn digest_of(bytes: &[u8]) -> EntryDigest {
    EntryDigest {
        size: bytes.len() as u64,
        blake3: blake3::hash(bytes).to_hex().to_string(),
    }
}
