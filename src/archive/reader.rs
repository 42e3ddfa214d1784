//! Reading an archive into a staging directory, hostile by default.
//!
//! The input is decompressed (kind detected by magic), walked entry by
//! entry ([`super::tarwalk`]) and every accepted file is created below the
//! staging directory through [`super::staging`], never following a link.
//! Checks, each refusing with the entry's name ([`ArchiveError::Refused`]):
//! - names: relative, no `..`, UTF-8 outside a root filesystem part;
//! - types: outside a root filesystem part only regular files and
//!   directories; inside one also symlinks and hard links that stay
//!   inside it, devices and fifos; never sparse or unknown types;
//! - modes: no setuid/setgid file unless [`ReadOptions::allow_setuid`];
//! - ckpt archives: `ckpt.json` first; every file declared there with
//!   the same size (checked at the header, before any data) and BLAKE3
//!   (checked at its end); the entry counts and the root filesystem's
//!   declared entries and bytes exact; nothing declared missing;
//! - bombs: entries and bytes (nested tars included) within [`Limits`],
//!   and a ckpt manifest may not declare more;
//! - the stream: a complete compressed stream, the tar end marker
//!   present, nothing but zeros after it.
//!
//! On any error the staging directory holds a partial import; the caller
//! removes it whole. Staged files are 0600 and directories 0700, except
//! inside an unpacked root filesystem, which keeps the archive's modes,
//! times and (as root) owners.

use super::compress::{self, Compression};
use super::manifest::{self, ArchiveKind, EntryDigest, Manifest, RootfsKind};
use super::names::{EntryPath, Limits};
use super::staging::{Dir, StageError};
use super::streams::{drain_zeros, stream_error, Budget, Input, Shared, StagedWriteError, Tee};
use super::tarwalk::{self, Meta};
use super::unpack::{self, Nested, NestedMode};
use super::{io_err, refused, refused_archive, ArchiveError, Refusal};
use nix::sys::stat::Mode;
use serde_json::Value;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::path::Path;
use std::rc::Rc;

/// How to read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub limits: Limits,
    /// Accept setuid/setgid files (a root filesystem may need them).
    pub allow_setuid: bool,
    /// Unpack a ckpt archive's `rootfs.tar` into `<staging>/rootfs/`
    /// (otherwise it is kept as a file, validated). Diff tars
    /// (`rootfs-diff.tar`) are always kept: they are applied over an
    /// image on the target, by the engine.
    pub unpack_rootfs: bool,
    /// How many bytes a ckpt manifest may declare, beyond `limits.max_bytes`
    /// (the importing store's free space): a ckpt archive is then bounded by
    /// its declared sizes, not by its compression ratio. `None`: the ratio
    /// limit alone.
    pub declared_max_bytes: Option<u64>,
}

impl ReadOptions {
    /// Hostile defaults for an input of `input_len` bytes.
    pub fn for_input(input_len: u64) -> ReadOptions {
        ReadOptions {
            limits: Limits::proportional(input_len),
            allow_setuid: false,
            unpack_rootfs: true,
            declared_max_bytes: None,
        }
    }
}

/// One staged regular file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundFile {
    pub size: u64,
    /// BLAKE3 of what was staged.
    pub blake3: String,
    /// Whether a manifest declared this digest (always, in ckpt archives).
    pub verified: bool,
}

/// The root filesystem part found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsFound {
    /// `rootfs.tar` or `rootfs-diff.tar`.
    pub entry: String,
    /// `rootfs` when unpacked there; `None` when kept as the file `entry`.
    pub unpacked_to: Option<String>,
    pub entries: u64,
    pub bytes: u64,
}

/// What an archive held, all of it staged.
#[derive(Debug, Clone)]
pub struct Report {
    pub kind: ArchiveKind,
    pub compression: Compression,
    /// ckpt archives: the manifest, every digest in it verified.
    pub manifest: Option<Manifest>,
    pub spec: Option<Value>,
    pub config: Option<Value>,
    /// `deleted.files`, each path checked to be clean.
    pub deleted_files: Option<Vec<String>>,
    /// Every staged regular file by archive path (nested tars as one file;
    /// an unpacked `rootfs.tar` is listed with its digest, not staged as a file).
    pub files: BTreeMap<String, FoundFile>,
    pub rootfs: Option<RootfsFound>,
    /// Entries in the archive, nested ones included.
    pub entries: u64,
    /// Bytes of the uncompressed stream, nested tars included.
    pub bytes: u64,
}

/// Reads the archive `input` into the empty directory `staging`.
pub fn read_archive<R: Read>(input: R, staging: &Path, opts: &ReadOptions) -> Result<Report, ArchiveError> {
    let shown = staging.display().to_string();
    let root = Dir::open(staging).map_err(io_err("open the staging directory", &shown))?;
    if !root.is_empty().map_err(io_err("list", &shown))? {
        return Err(ArchiveError::Io {
            op: "use the staging directory",
            path: shown,
            source: io::Error::other("it is not empty"),
        });
    }
    let shared = Rc::new(Shared::default());
    shared.limit.set(opts.limits.max_bytes);
    let (compression, decoded) = compress::decoder(Input {
        inner: input,
        shared: shared.clone(),
    })?;
    let budget = Budget {
        inner: decoded,
        shared: shared.clone(),
    };
    let stream_err = {
        let shared = shared.clone();
        move |e: io::Error| stream_error(&shared, compression, e)
    };
    let total = Cell::new(0u64);
    let mut reader = Reader {
        entries: &total,
        root,
        opts: opts.clone(),
        compression,
        manifest: None,
        first: true,
        outer_entries: 0,
        dirs_seen: BTreeSet::new(),
        report_files: BTreeMap::new(),
        spec: None,
        config: None,
        deleted: None,
        rootfs: None,
        stream_err: &stream_err,
        shared: shared.clone(),
    };
    let mut archive = tar::Archive::new(budget);
    let limits = opts.limits;
    let end = tarwalk::walk(
        &mut archive,
        &stream_err,
        &mut || count_entry(&total, limits.max_entries),
        &mut |meta, entry| reader.entry(meta, entry),
    )?;
    let mut rest = archive.into_inner();
    if shared.bytes.get() <= end.last_end {
        return Err(refused_archive(Refusal::Truncated(
            "it ends without the tar end-of-archive marker".into(),
        )));
    }
    drain_zeros(&mut rest).map_err(&stream_err)?;
    reader.finish(shared.bytes.get())
}

fn count_entry(total: &Cell<u64>, max: u64) -> Result<(), ArchiveError> {
    total.set(total.get() + 1);
    if total.get() > max {
        return Err(refused_archive(Refusal::TooManyEntries { limit: max }));
    }
    Ok(())
}

struct Reader<'s> {
    root: Dir,
    opts: ReadOptions,
    compression: Compression,
    manifest: Option<Manifest>,
    first: bool,
    /// Entries after the manifest.
    outer_entries: u64,
    /// Every entry so far, nested ones included (counted by the walks).
    entries: &'s Cell<u64>,
    dirs_seen: BTreeSet<String>,
    report_files: BTreeMap<String, FoundFile>,
    spec: Option<Value>,
    config: Option<Value>,
    deleted: Option<Vec<String>>,
    rootfs: Option<RootfsFound>,
    stream_err: &'s dyn Fn(io::Error) -> ArchiveError,
    shared: Rc<Shared>,
}

/// Where an outer regular file goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Manifest,
    Json,
    /// A nested tar that is a root filesystem (or like one: /dev/shm, a volume).
    NestedTar {
        unpack: bool,
        is_rootfs: bool,
    },
    Plain,
}

impl Reader<'_> {
    fn entry<R: Read>(&mut self, meta: Meta, entry: &mut tar::Entry<'_, R>) -> Result<(), ArchiveError> {
        let shown = meta.shown();
        let Some(path) = EntryPath::parse_utf8(&meta.name).map_err(|r| refused(&shown, r))? else {
            // The archive's own root (`./`), as GNU tar and Podman write it.
            return if meta.kind.is_dir() {
                Ok(())
            } else {
                Err(refused(shown, Refusal::BadName("a root entry that is not a directory")))
            };
        };
        // The root entry above does not count: `tar -C dir -c .` writes one first.
        let first = std::mem::replace(&mut self.first, false);
        let name = path.display();
        if name == manifest::MANIFEST && !first {
            return Err(refused(name, Refusal::ManifestNotFirst));
        }
        if !(first && name == manifest::MANIFEST) {
            self.outer_entries += 1;
            if let Some(m) = &self.manifest {
                if self.outer_entries > m.entry_count {
                    return Err(refused(
                        name,
                        Refusal::CountMismatch {
                            what: "entries",
                            declared: m.entry_count,
                            found: self.outer_entries,
                        },
                    ));
                }
            }
        }
        let kind = meta.kind;
        if kind.is_file() && meta.mode & 0o6000 != 0 && !self.opts.allow_setuid {
            return Err(refused(name, Refusal::Setuid { mode: meta.mode }));
        }
        if kind.is_dir() {
            return self.dir(&path, &name);
        }
        if !kind.is_file() {
            return Err(refused(name, outer_type_refusal(kind)));
        }
        let slot = self.slot(&path, &name, first);
        self.file(&path, &name, slot, &meta, entry)
    }

    fn slot(&self, path: &EntryPath, name: &str, first: bool) -> Slot {
        let ckpt = self.manifest.is_some();
        match name {
            manifest::MANIFEST if first => Slot::Manifest,
            manifest::SPEC_DUMP | manifest::CONFIG_DUMP | manifest::DELETED_FILES => Slot::Json,
            manifest::ROOTFS_TAR if ckpt => Slot::NestedTar {
                unpack: self.opts.unpack_rootfs,
                is_rootfs: true,
            },
            manifest::ROOTFS_DIFF_TAR => Slot::NestedTar {
                unpack: false,
                is_rootfs: true,
            },
            manifest::DEVSHM_TAR => Slot::NestedTar {
                unpack: false,
                is_rootfs: false,
            },
            _ if path.depth() == 2 && path.first() == manifest::VOLUMES_DIR.as_bytes() && name.ends_with(".tar") => {
                Slot::NestedTar {
                    unpack: false,
                    is_rootfs: false,
                }
            }
            _ => Slot::Plain,
        }
    }

    fn dir(&mut self, path: &EntryPath, name: &str) -> Result<(), ArchiveError> {
        if let Some(m) = &self.manifest {
            let prefix = format!("{name}/");
            if !m.entries.keys().any(|k| k.starts_with(&prefix)) && name != manifest::CHECKPOINT_DIR {
                return Err(refused(name, Refusal::Undeclared));
            }
        }
        self.root
            .walk(path.components(), Some(Mode::S_IRWXU))
            .map_err(|e| stage_err(e, name, "create"))?;
        self.dirs_seen.insert(name.to_string());
        Ok(())
    }

    fn file<R: Read>(
        &mut self,
        path: &EntryPath,
        name: &str,
        slot: Slot,
        meta: &Meta,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ArchiveError> {
        let size = meta.size;
        let declared = match (&self.manifest, slot) {
            (Some(m), _) => {
                let d = m.entries.get(name).ok_or_else(|| refused(name, Refusal::Undeclared))?;
                if d.size != size {
                    return Err(refused(
                        name,
                        Refusal::SizeMismatch {
                            declared: d.size,
                            found: size,
                        },
                    ));
                }
                Some(d.clone())
            }
            (None, _) => None,
        };
        if matches!(slot, Slot::Manifest | Slot::Json) && size > self.opts.limits.max_json_bytes {
            return Err(refused(
                name,
                Refusal::Invalid(format!(
                    "{size} bytes of JSON, more than {}",
                    self.opts.limits.max_json_bytes
                )),
            ));
        }
        let unpack_into = match slot {
            Slot::NestedTar { unpack: true, .. } => Some(
                self.root
                    .child(std::ffi::OsStr::new("rootfs"), Some(Mode::S_IRWXU))
                    .map_err(|e| stage_err(e, "rootfs", "create"))?,
            ),
            _ => None,
        };
        let mut file = match unpack_into {
            Some(_) => None,
            None => {
                let parent = self
                    .root
                    .walk(path.components().take(path.depth() - 1), Some(Mode::S_IRWXU))
                    .map_err(|e| stage_err(e, name, "create"))?;
                let last = path.components().last().expect("a path has a component");
                Some(
                    parent
                        .create_file(last, Mode::S_IRUSR | Mode::S_IWUSR)
                        .map_err(|e| stage_err(e, name, "create"))?,
                )
            }
        };
        let mut json = matches!(slot, Slot::Manifest | Slot::Json).then(Vec::new);
        let mut tee = Tee {
            inner: entry.take(size),
            hasher: blake3::Hasher::new(),
            count: 0,
            file: file.as_mut(),
            json: json.as_mut(),
        };
        let nested = match slot {
            Slot::NestedTar { unpack, is_rootfs } => {
                let declared_rootfs = self
                    .manifest
                    .as_ref()
                    .filter(|_| is_rootfs)
                    .map(|m| (m.rootfs.entries, m.rootfs.bytes));
                let mode = match &unpack_into {
                    Some(dir) => NestedMode::Unpack(dir),
                    None => NestedMode::Validate,
                };
                debug_assert_eq!(unpack, unpack_into.is_some());
                Some(unpack::nested(
                    &mut tee,
                    name,
                    mode,
                    &Nested {
                        allow_setuid: self.opts.allow_setuid,
                        entries: self.entries,
                        max_entries: self.opts.limits.max_entries,
                        declared: declared_rootfs,
                    },
                    self.stream_err,
                )?)
            }
            _ => {
                io::copy(&mut tee, &mut io::sink()).map_err(|e| self.copy_err(e, name))?;
                None
            }
        };
        if tee.count < size {
            return Err(refused(
                name,
                Refusal::Truncated(format!("the entry has {} of its {size} bytes", tee.count)),
            ));
        }
        let found = EntryDigest {
            size,
            blake3: tee.hasher.finalize().to_hex().to_string(),
        };
        if let Some(f) = file.as_mut() {
            f.flush().map_err(io_err("write", name))?;
        }
        if let Some(d) = &declared {
            if d.blake3 != found.blake3 {
                return Err(refused(
                    name,
                    Refusal::ChecksumMismatch {
                        declared: d.blake3.clone(),
                        found: found.blake3,
                    },
                ));
            }
        }
        if let Some(n) = nested {
            if let Slot::NestedTar { is_rootfs: true, .. } = slot {
                self.rootfs = Some(RootfsFound {
                    entry: name.to_string(),
                    unpacked_to: unpack_into.as_ref().map(|_| "rootfs".to_string()),
                    entries: n.entries,
                    bytes: n.bytes,
                });
            }
        }
        if let Some(bytes) = json {
            self.json(name, slot, &bytes)?;
        }
        self.report_files.insert(
            name.to_string(),
            FoundFile {
                size,
                blake3: found.blake3,
                verified: declared.is_some(),
            },
        );
        Ok(())
    }

    fn copy_err(&self, e: io::Error, name: &str) -> ArchiveError {
        // Errors of the staged file are the machine's; all others come from the stream.
        match e.get_ref().and_then(|i| i.downcast_ref::<StagedWriteError>()) {
            Some(_) => io_err("write", name)(e),
            None => (self.stream_err)(e),
        }
    }

    fn json(&mut self, name: &str, slot: Slot, bytes: &[u8]) -> Result<(), ArchiveError> {
        if slot == Slot::Manifest {
            let m = Manifest::from_json(bytes).map_err(|e| refused(name, Refusal::Invalid(e)))?;
            let ceiling = self
                .opts
                .declared_max_bytes
                .unwrap_or(0)
                .max(self.opts.limits.max_bytes);
            if m.total_bytes > ceiling {
                return Err(refused(name, Refusal::TooManyBytes { limit: ceiling }));
            }
            // From here the manifest's exact sizes bound every entry; the
            // stream may hold them plus the ratio limit's room for headers.
            // (Checkpoint memory can compress far beyond the ratio limit.)
            if m.total_bytes > self.opts.limits.max_bytes {
                self.shared
                    .limit
                    .set(self.opts.limits.max_bytes.saturating_add(m.total_bytes));
            }
            if m.entry_count.saturating_add(m.rootfs.entries) > self.opts.limits.max_entries {
                return Err(refused(
                    name,
                    Refusal::TooManyEntries {
                        limit: self.opts.limits.max_entries,
                    },
                ));
            }
            self.manifest = Some(m);
            return Ok(());
        }
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| refused(name, Refusal::Invalid(format!("JSON: {e}"))))?;
        match name {
            manifest::SPEC_DUMP => {
                if !v.is_object() {
                    return Err(refused(name, Refusal::Invalid("a spec must be a JSON object".into())));
                }
                self.spec = Some(v);
            }
            manifest::CONFIG_DUMP => self.config = Some(v),
            _ => self.deleted = Some(deleted_files(name, v)?),
        }
        Ok(())
    }

    fn finish(mut self, bytes: u64) -> Result<Report, ArchiveError> {
        if let Some(m) = &self.manifest {
            if let Some(missing) = m.entries.keys().find(|k| !self.report_files.contains_key(*k)) {
                return Err(refused(missing.clone(), Refusal::Missing));
            }
            if self.outer_entries != m.entry_count {
                return Err(refused_archive(Refusal::CountMismatch {
                    what: "entries",
                    declared: m.entry_count,
                    found: self.outer_entries,
                }));
            }
            if m.rootfs.kind == RootfsKind::None && self.rootfs.is_some() {
                return Err(refused_archive(Refusal::Invalid(
                    "a root filesystem ckpt.json does not declare".into(),
                )));
            }
        }
        let has_checkpoint = self.dirs_seen.contains(manifest::CHECKPOINT_DIR)
            || self.report_files.keys().any(|k| k.starts_with("checkpoint/"));
        if !has_checkpoint {
            return Err(refused_archive(Refusal::NotACheckpoint(
                "it has no checkpoint/ directory",
            )));
        }
        if self.spec.is_none() {
            return Err(refused_archive(Refusal::NotACheckpoint("it has no spec.dump")));
        }
        let kind = if self.manifest.is_some() {
            ArchiveKind::Ckpt
        } else {
            let names: BTreeSet<&str> = self.report_files.keys().map(String::as_str).collect();
            manifest::classify_foreign(self.spec.as_ref(), self.config.as_ref(), |n| names.contains(n))
        };
        Ok(Report {
            kind,
            compression: self.compression,
            manifest: self.manifest.take(),
            spec: self.spec.take(),
            config: self.config.take(),
            deleted_files: self.deleted.take(),
            files: std::mem::take(&mut self.report_files),
            rootfs: self.rootfs.take(),
            entries: self.entries.get(),
            bytes,
        })
    }
}

/// Why an outer entry of this type is refused.
fn outer_type_refusal(kind: tar::EntryType) -> Refusal {
    match unpack::special_kind(kind) {
        Some(k) => Refusal::SpecialOutsideRootfs { kind: k },
        None => Refusal::UnsupportedType {
            kind: unpack::type_name(kind),
        },
    }
}

/// `deleted.files`: a JSON array of paths in the container, each clean.
fn deleted_files(name: &str, v: Value) -> Result<Vec<String>, ArchiveError> {
    let bad = |why: String| refused(name, Refusal::Invalid(why));
    let Value::Array(items) = v else {
        return Err(bad("it must be a JSON array of paths".into()));
    };
    items
        .into_iter()
        .map(|i| {
            let Value::String(s) = i else {
                return Err(bad("it must be a JSON array of paths".into()));
            };
            match EntryPath::parse(s.trim_start_matches('/').as_bytes()) {
                Ok(Some(_)) => Ok(s),
                Ok(None) => Err(bad(format!("it deletes the root {s:?}"))),
                Err(r) => Err(bad(format!("path {s:?}: {r}"))),
            }
        })
        .collect()
}

/// Maps a staging failure of `name`.
pub(crate) fn stage_err(e: StageError, name: &str, op: &'static str) -> ArchiveError {
    match e {
        StageError::NotADirectory => refused(name, Refusal::NotADirectory),
        StageError::Exists => refused(name, Refusal::Duplicate),
        StageError::Io(source) => ArchiveError::Io {
            op,
            path: name.to_string(),
            source,
        },
    }
}
