//! The follower: a thread that watches one directory with inotify and
//! hashes each file's new bytes as they land, and the final pass that
//! turns what it saw into one digest per file.
//!
//! inotify is the source of truth for what happened to a name (created,
//! renamed in or out, deleted, closed after writing); the thread keeps one
//! [`GrowingFile`] per name and advances every one of them each round,
//! sleeping only when a round found nothing new. Without inotify (no
//! instance left) [`Follower::spawn`] fails and the caller hashes after the
//! dump as before: polling alone cannot see a file reopened for writing.

use super::file::{hash_file, Advance, GrowingFile, Range, Writeback};
use super::{io_err, Digest, DigestError};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How to follow.
#[derive(Debug, Clone, Copy)]
pub struct FollowOptions {
    /// Start writeback of each hashed range (`sync_file_range`, from a
    /// thread of its own). Slows a writer whose disk cannot keep up: use
    /// it when the total time matters, not the writer's.
    pub writeback: bool,
    /// How long the thread sleeps after a round that found nothing new.
    pub idle_sleep: Duration,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            writeback: true,
            idle_sleep: Duration::from_millis(2),
        }
    }
}

/// Where the bytes of a finished follow were hashed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FollowStats {
    /// Regular files in the result.
    pub files: usize,
    /// Bytes hashed while the writer was still writing.
    pub followed_bytes: u64,
    /// Bytes of followed files hashed after the writer was done (the tail).
    pub tail_bytes: u64,
    /// Files hashed again from their first byte (see the module docs).
    pub rehashed_files: usize,
    /// Bytes of those.
    pub rehashed_bytes: u64,
    /// inotify lost events: every file was rehashed.
    pub overflowed: bool,
}

/// The result of [`Follower::finish`]: one digest per file, by
/// `/`-separated path relative to the followed directory.
#[derive(Debug, Clone, Default)]
pub struct Followed {
    pub digests: BTreeMap<String, Digest>,
    pub stats: FollowStats,
}

/// What the thread knows about one name in the directory.
struct Tracked {
    file: Option<GrowingFile>,
    /// `IN_CLOSE_WRITE` events seen since the name appeared.
    closes: u32,
    /// Shrank or failed to read: rehash at the end.
    tainted: bool,
}

/// Everything the thread hands back when it stops.
#[derive(Default)]
struct Seen {
    tracked: HashMap<String, Tracked>,
    overflowed: bool,
    followed_bytes: u64,
    /// Bytes the thread hashed in its last round, after `stop`.
    tail_bytes: u64,
}

/// A running follower of one directory.
pub struct Follower {
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    followed: Arc<AtomicU64>,
    thread: Option<JoinHandle<Seen>>,
    writeback: Option<Writeback>,
}

impl Follower {
    /// Starts following `dir` (which must exist): files already there and
    /// every file created later.
    pub fn spawn(dir: &Path, opts: FollowOptions) -> Result<Follower, DigestError> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|e| io_err("start inotify for", dir)(e.into()))?;
        let mask = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_ONLYDIR
            | AddWatchFlags::IN_DONT_FOLLOW;
        inotify
            .add_watch(dir, mask)
            .map_err(|e| io_err("watch", dir)(e.into()))?;
        let writeback = if opts.writeback {
            Some(Writeback::spawn().map_err(io_err("start a writeback thread for", dir))?)
        } else {
            None
        };
        let wb = writeback.as_ref().and_then(Writeback::sender);
        // Listed after the watch exists, so that no file falls between.
        let mut seen = Seen::default();
        for entry in fs::read_dir(dir).map_err(io_err("read", dir))? {
            let entry = entry.map_err(io_err("read", dir))?;
            if let Some(name) = entry.file_name().to_str() {
                seen.tracked
                    .entry(name.to_string())
                    .or_insert_with(|| track(dir, name, &wb));
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let followed = Arc::new(AtomicU64::new(0));
        let thread = {
            let (d, stop, followed) = (dir.to_path_buf(), stop.clone(), followed.clone());
            std::thread::Builder::new()
                .name("ckpt-digest".into())
                .spawn(move || run(&d, inotify, seen, &stop, &followed, wb, opts))
                .map_err(io_err("start a thread to follow", dir))?
        };
        Ok(Follower {
            dir: dir.to_path_buf(),
            stop,
            followed,
            thread: Some(thread),
            writeback,
        })
    }

    /// Bytes hashed so far while following (for progress reports, and for
    /// tests that must know the follower has caught up).
    pub fn followed_bytes(&self) -> u64 {
        self.followed.load(Ordering::Relaxed)
    }

    /// Stops following and returns the digest of every regular file in the
    /// directory (recursively; files in subdirectories are hashed here from
    /// their first byte). Call it once the writer is done: bytes written
    /// after it are not covered. With `fsync`, every file is fsynced
    /// before this returns.
    pub fn finish(mut self, fsync: bool) -> Result<Followed, DigestError> {
        self.stop.store(true, Ordering::SeqCst);
        let seen = self
            .thread
            .take()
            .and_then(|t| t.join().ok())
            .ok_or_else(|| DigestError::ThreadDied { dir: self.dir.clone() })?;
        let out = final_pass(&self.dir, seen, fsync);
        // Every sender is gone with the followed files: no request is
        // left on the way once this returns.
        if let Some(wb) = self.writeback.take() {
            wb.join();
        }
        out
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        // Dropped without finish (an error path): just stop the thread.
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(wb) = self.writeback.take() {
            wb.join();
        }
    }
}

fn track(dir: &Path, name: &str, wb: &Option<Sender<Range>>) -> Tracked {
    // A name that is gone again, or is not a regular file, is judged in
    // the final pass, from whatever is there then.
    let file = GrowingFile::open(&dir.join(name), wb.clone()).ok();
    Tracked {
        file,
        closes: 0,
        tainted: false,
    }
}

/// The thread: drain events, advance every file, sleep when idle; after
/// `stop`, one last full round so that nothing the writer did is missed.
fn run(
    dir: &Path,
    inotify: Inotify,
    mut seen: Seen,
    stop: &AtomicBool,
    followed: &AtomicU64,
    wb: Option<Sender<Range>>,
    opts: FollowOptions,
) -> Seen {
    let mut buf = Vec::new();
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        drain(dir, &inotify, &mut seen, &wb);
        let mut grew = 0;
        for t in seen.tracked.values_mut().filter(|t| !t.tainted) {
            let Some(f) = t.file.as_mut() else { continue };
            match f.advance(&mut buf, false) {
                Ok(Advance::Grew(n)) => grew += n,
                Ok(Advance::Shrank { .. }) | Err(_) => t.tainted = true,
            }
        }
        if stopping {
            seen.tail_bytes = grew;
            return seen;
        }
        seen.followed_bytes += grew;
        followed.store(seen.followed_bytes, Ordering::Relaxed);
        if grew == 0 {
            std::thread::sleep(opts.idle_sleep);
        }
    }
}

fn drain(dir: &Path, inotify: &Inotify, seen: &mut Seen, wb: &Option<Sender<Range>>) {
    loop {
        let events = match inotify.read_events() {
            Ok(events) if !events.is_empty() => events,
            // EAGAIN: nothing queued. Another error: treat like lost events.
            Ok(_) | Err(nix::errno::Errno::EAGAIN) => return,
            Err(_) => {
                seen.overflowed = true;
                return;
            }
        };
        for ev in events {
            if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                seen.overflowed = true;
                continue;
            }
            let Some(name) = ev.name.as_ref().and_then(|n| n.to_str()).map(str::to_string) else {
                continue;
            };
            if ev
                .mask
                .intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
            {
                // A new file under this name: whatever was followed before
                // is not what the name shows now.
                seen.tracked.insert(name.clone(), track(dir, &name, wb));
            }
            if ev
                .mask
                .intersects(AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM)
            {
                seen.tracked.remove(&name);
            }
            if ev.mask.contains(AddWatchFlags::IN_CLOSE_WRITE) {
                seen.tracked
                    .entry(name.clone())
                    .or_insert_with(|| track(dir, &name, wb))
                    .closes += 1;
            }
        }
    }
}

/// Every regular file now in `dir`: finished from what was followed when
/// the follower can vouch for it, hashed from scratch otherwise.
fn final_pass(dir: &Path, mut seen: Seen, fsync: bool) -> Result<Followed, DigestError> {
    let mut out = Followed::default();
    out.stats.followed_bytes = seen.followed_bytes;
    out.stats.tail_bytes = seen.tail_bytes;
    out.stats.overflowed = seen.overflowed;
    let mut buf = Vec::new();
    for (key, path) in regular_files(dir)? {
        let followed = if seen.overflowed || key.contains('/') {
            None
        } else {
            seen.tracked.remove(&key).and_then(|t| vouched(t, &path))
        };
        let (digest, file) = match followed {
            Some(mut f) => match f.advance(&mut buf, true) {
                Ok(Advance::Grew(n)) => {
                    out.stats.tail_bytes += n;
                    f.finish()
                }
                Ok(Advance::Shrank { .. }) | Err(_) => rehash(&path, &mut out.stats)?,
            },
            None => rehash(&path, &mut out.stats)?,
        };
        if fsync {
            file.sync_all().map_err(io_err("fsync", &path))?;
        }
        out.digests.insert(key, digest);
    }
    out.stats.files = out.digests.len();
    Ok(out)
}

/// The followed file of `t`, if nothing says its hash could be stale and
/// `path` still names that same inode.
fn vouched(t: Tracked, path: &Path) -> Option<GrowingFile> {
    if t.tainted || t.closes > 1 {
        return None;
    }
    let f = t.file?;
    let meta = fs::symlink_metadata(path).ok()?;
    ((meta.dev(), meta.ino()) == f.identity()).then_some(f)
}

fn rehash(path: &Path, stats: &mut FollowStats) -> Result<(Digest, Arc<File>), DigestError> {
    let (digest, file) = hash_file(path)?;
    stats.rehashed_files += 1;
    stats.rehashed_bytes += digest.size;
    Ok((digest, file))
}

/// `(key, path)` of every regular file below `dir`, sorted by key; a
/// symlink, fifo, socket or device is an error, as is a non-UTF-8 name.
fn regular_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, DigestError> {
    let mut out = Vec::new();
    let mut dirs = vec![(String::new(), dir.to_path_buf())];
    while let Some((prefix, d)) = dirs.pop() {
        for entry in fs::read_dir(&d).map_err(io_err("read", &d))? {
            let entry = entry.map_err(io_err("read", &d))?;
            let path = entry.path();
            let name = entry
                .file_name()
                .to_str()
                .map(str::to_string)
                .ok_or_else(|| DigestError::NotUtf8 { path: path.clone() })?;
            let meta = fs::symlink_metadata(&path).map_err(io_err("inspect", &path))?;
            let key = format!("{prefix}{name}");
            if meta.is_dir() {
                dirs.push((format!("{key}/"), path));
            } else if meta.is_file() {
                out.push((key, path));
            } else {
                return Err(DigestError::NotRegular { path });
            }
        }
    }
    out.sort();
    Ok(out)
}
