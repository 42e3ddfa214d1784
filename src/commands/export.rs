//! `ckpt export`: load → verify → ask the engine (runs? rootfs?) → plan →
//! write the archive beside FILE → rename it over FILE.
//!
//! Promises: FILE is replaced only by a complete, fsynced archive (it is
//! written as a new 0600 file `<FILE>.ckpt-tmp.<pid>` first, removed on any
//! failure); every checkpoint file is checked against its recorded digest
//! while it is copied, so a damaged checkpoint fails the export (exit 7)
//! instead of travelling. Never writes into the store, never changes the
//! container.

use super::{Context, LOCK_WAIT};
use crate::archive::{self, Compression, RootfsSource};
use crate::cli::{ArchiveFlags, ExportArgs};
use crate::engine::Engine;
use crate::error::Error;
use crate::output::Output;
use crate::plan::export::{export_plan, ExportOptions};
use crate::progress::ByteProgress;
use crate::store::{names, CheckpointEntry, StoreError};
use std::fs::{self, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// What an export wrote, printed as text or JSON.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Exported {
    pub container: String,
    pub checkpoint: String,
    pub file: PathBuf,
    pub compression: &'static str,
    /// `tree` (the whole root filesystem), `diff` or `none`.
    pub rootfs: &'static str,
    /// The archive's size on disk.
    pub bytes: u64,
    /// Entries after the manifest.
    pub entries: u64,
    /// Root filesystem paths tar cannot hold (sockets) or on another filesystem.
    pub skipped: Vec<String>,
}

pub fn run(ctx: &Context, args: &ExportArgs, out: &mut Output) -> Result<(), Error> {
    names::validate_container_id(&args.container)?;
    names::validate_checkpoint_name(&args.checkpoint)?;
    let engine = ctx.engines.home(&args.container)?;
    let home = engine.home();
    let store = ctx.open_store(&home.root)?;
    // Look before locking: the lock would create the container's directory.
    if !store.layout().checkpoint_dir(&home.id, &args.checkpoint).exists() {
        return Err(StoreError::NotFound {
            container: home.name.clone(),
            name: args.checkpoint.clone(),
        }
        .into());
    }
    // Held while the files are read: no rm of this checkpoint meanwhile.
    let _lock = store.lock(&home.id, LOCK_WAIT)?;
    let entry = store.load(&home.id, &args.checkpoint)?;
    if entry.meta.is_none() {
        return Err(StoreError::Corrupt {
            dir: entry.dir.clone(),
            reason: "ckpt.json: missing (only ckpt's own checkpoints are exported)".into(),
        }
        .into());
    }
    store.verify(&entry)?;
    let exported = export_verified(&store, engine.as_ref(), &entry, &args.output, &args.archive, ctx.quiet)?;
    if args.json {
        out.json(&exported)?;
    } else {
        out.say(describe(&exported));
    }
    Ok(())
}

/// The sentence `export` and `create --export` print.
pub fn describe(e: &Exported) -> String {
    format!(
        "checkpoint {} of {} exported to {} ({}, {}, root filesystem: {}){}",
        e.checkpoint,
        e.container,
        e.file.display(),
        crate::plan::human_bytes(e.bytes),
        e.compression,
        e.rootfs,
        match e.skipped.len() {
            0 => String::new(),
            n => format!("; {n} path(s) of the root filesystem left out (sockets, other filesystems)"),
        }
    )
}

/// [`export_entry`] of the verified checkpoint `entry`, in its full form
/// if it is incremental: an archive always holds whole page files, so its
/// import is a full checkpoint. The caller holds the container's lock.
pub fn export_verified(
    store: &crate::store::Store,
    engine: &dyn Engine,
    entry: &CheckpointEntry,
    file: &Path,
    flags: &ArchiveFlags,
    quiet: bool,
) -> Result<Exported, Error> {
    match entry.meta.as_ref().map(|m| (m, m.incremental.as_ref())) {
        Some((meta, Some(record))) => {
            let work = store.restore_work_dir(&entry.container_id)?;
            let full = super::incremental::full_form(store, entry, meta, record, &work)?;
            export_entry(engine, &full, file, flags, quiet)
        }
        _ => export_entry(engine, entry, file, flags, quiet),
    }
}

/// Writes the archive of the verified checkpoint `entry` to `file`. The
/// caller holds the container's lock.
pub fn export_entry(
    engine: &dyn Engine,
    entry: &CheckpointEntry,
    file: &Path,
    flags: &ArchiveFlags,
    quiet: bool,
) -> Result<Exported, Error> {
    let meta = entry
        .meta
        .as_ref()
        .expect("export_entry is given ckpt's own checkpoints");
    let facts = engine.export_facts(entry)?;
    let src = export_plan(
        entry,
        &meta.runtime,
        meta.spec.clone(),
        &facts,
        ExportOptions {
            ignore_rootfs: flags.no_rootfs,
        },
    )?;
    let compression = flags.compress.compression();
    let bar = ByteProgress::new(&format!("exporting {}", entry.name), !quiet);
    let summary = write_replacing(file, |w| {
        archive::write_archive(w, &src, compression, &mut |p| bar.set(p.done, p.total))
    });
    bar.finish();
    let summary = summary?;
    let bytes = fs::metadata(file)
        .map_err(|source| Error::Io {
            op: "inspect",
            path: file.to_path_buf(),
            source,
        })?
        .len();
    Ok(Exported {
        container: entry.container_id.clone(),
        checkpoint: entry.name.clone(),
        file: file.to_path_buf(),
        compression: compression_name(compression),
        rootfs: match src.rootfs {
            RootfsSource::None => "none",
            RootfsSource::Tree(_) => "tree",
            RootfsSource::Diff { .. } => "diff",
        },
        bytes,
        entries: summary.manifest.entry_count,
        skipped: summary.skipped,
    })
}

fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::Zstd => "zstd",
        Compression::Gzip => "gzip",
        Compression::None => "none",
    }
}

/// Runs `write` into a new file beside `file`, then fsyncs it and renames
/// it over `file` (and fsyncs the directory); on any failure the new file
/// is removed and `file` is as it was.
fn write_replacing<T>(
    file: &Path,
    write: impl FnOnce(&mut BufWriter<fs::File>) -> Result<T, archive::ArchiveError>,
) -> Result<T, Error> {
    let io = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { op, path, source }
    };
    let name = file.file_name().ok_or_else(|| Error::Usage {
        message: format!("{} names no file", file.display()),
    })?;
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".ckpt-tmp.{}", std::process::id()));
    let tmp = parent.join(tmp_name);
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    let result = (|| {
        let mut w = BufWriter::with_capacity(1 << 16, f);
        let value = write(&mut w)?;
        w.flush().map_err(io("write", &tmp))?;
        let f = w.into_inner().map_err(|e| io("write", &tmp)(e.into_error()))?;
        f.sync_all().map_err(io("fsync", &tmp))?;
        fs::rename(&tmp, file).map_err(io("rename", &tmp))?;
        if let Ok(d) = fs::File::open(&parent) {
            d.sync_all().map_err(io("fsync", &parent))?;
        }
        Ok(value)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
