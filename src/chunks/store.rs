//! The chunk store of one container: sessions, writing, collection.
//!
//! Three ways in, each holding `chunks/.lock` for as long as it lives:
//! - [`ChunkStore::reader`] (shared lock): reassemble and verify.
//! - [`ChunkStore::session`] (exclusive): collect garbage, repair.
//! - [`ChunkStore::writer`] (exclusive): add page files, then
//!   [`Writer::commit`], which makes the new chunks durable and returns
//!   the session. The caller publishes its recipe **before** dropping that
//!   session: from the writer's first look-up ("is this chunk present?")
//!   to the publish, no collection can run, so no chunk the new recipe
//!   relies on can go.
//!
//! Collection is given the recipes of every published checkpoint, read
//! after the session began; it keeps exactly the chunks they use. The
//! per-container flock of `src/store/lock.rs` already serialises create,
//! rm and start of one container; this lock makes the chunk store's
//! promise hold on its own, and lets lock-free readers (`verify`, `ls`)
//! see no pack vanish under them.
//!
//! Order of steps, and what a crash between any two leaves:
//! - write: new chunks go to `.tmp/<pack>` → fsync → rename into `packs/` →
//!   fsync `packs/`. Before the rename: a temp file, swept by the next
//!   session. After it: a pack nobody references until the recipe is
//!   published, collected by the next collection if it never is.
//! - collect: first every compacted pack (live chunks of a pack that also
//!   holds dead ones) is written, fsynced, renamed and `packs/` fsynced;
//!   only then are old packs unlinked, and `packs/` fsynced again. A crash
//!   leaves the old pack, or both (the smaller wins on read, the next
//!   collection removes the other), or the new one alone.
use super::faults::{Faults, NoFaults};
use super::fsutil::{ensure_private_dir, fsync_dir};
use super::images::{page_files, PageFile};
use super::index::{hash_pieces_and, split_pieces, Packs, BATCH};
use super::pack::PackWriter;
use super::split::{plan_with_fallback, ChunkRule, Span};
use super::{io_err, ChunkError, ChunkRef, Digest, FileRecipe, Recipe, CHUNK_SIZE};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::ops::Deref;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LOCK_FILE: &str = ".lock";
const TMP_DIR: &str = ".tmp";
const PACKS_DIR: &str = "packs";
const RETRY_EVERY: Duration = Duration::from_millis(50);

/// The chunk store in one directory (typically `<container dir>/chunks`).
#[derive(Debug, Clone)]
pub struct ChunkStore {
    dir: PathBuf,
    faults: Arc<dyn Faults>,
}

impl ChunkStore {
    /// Opens the chunk store in `dir`, creating it and its subdirectories
    /// (0700) if missing. The caller has checked `dir`'s parents.
    pub fn open(dir: &Path) -> Result<ChunkStore, ChunkError> {
        ensure_private_dir(dir)?;
        ensure_private_dir(&dir.join(PACKS_DIR))?;
        ensure_private_dir(&dir.join(TMP_DIR))?;
        Ok(ChunkStore {
            dir: dir.to_path_buf(),
            faults: Arc::new(NoFaults),
        })
    }

    /// Injects faults into every step that changes the disk (tests).
    pub fn with_faults(mut self, faults: Arc<dyn Faults>) -> ChunkStore {
        self.faults = faults;
        self
    }

    /// The chunk store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A read-only view (shared lock), waiting up to `wait` for writers.
    pub fn reader(&self, wait: Duration) -> Result<Reader, ChunkError> {
        let lock = self.lock(FlockArg::LockSharedNonblock, wait)?;
        let packs = Packs::load(&self.dir.join(PACKS_DIR))?;
        Ok(Reader { packs, _lock: lock })
    }

    /// An exclusive session, for collection and repair. Sweeps `.tmp/`
    /// first: whatever is there was left by a session that is over.
    pub fn session(&self, wait: Duration) -> Result<Session, ChunkError> {
        let lock = self.lock(FlockArg::LockExclusiveNonblock, wait)?;
        let swept = self.sweep_tmp()?;
        let packs = Packs::load(&self.dir.join(PACKS_DIR))?;
        Ok(Session {
            store: self.clone(),
            packs,
            swept,
            _lock: lock,
        })
    }

    /// An exclusive session that adds page files.
    pub fn writer(&self, wait: Duration) -> Result<Writer, ChunkError> {
        Ok(Writer {
            session: self.session(wait)?,
            pending: None,
            pending_index: HashSet::new(),
            stats: WriteStats::default(),
        })
    }

    fn lock(&self, how: FlockArg, wait: Duration) -> Result<Flock<File>, ChunkError> {
        let path = self.dir.join(LOCK_FILE);
        let deadline = Instant::now() + wait;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => ChunkError::Unsafe {
                    path: path.clone(),
                    reason: "it is a symlink",
                },
                _ => io_err("open", &path)(e),
            })?;
        loop {
            match Flock::lock(file, how) {
                Ok(lock) => return Ok(lock),
                Err((f, Errno::EWOULDBLOCK)) => file = f,
                Err((_, errno)) => return Err(io_err("flock", &path)(io::Error::from(errno))),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ChunkError::Busy { path });
            }
            std::thread::sleep(RETRY_EVERY.min(deadline - now));
        }
    }

    /// Removes every entry of `.tmp/` (only files are ever put there).
    fn sweep_tmp(&self) -> Result<usize, ChunkError> {
        let tmp = self.dir.join(TMP_DIR);
        let mut n = 0;
        for entry in fs::read_dir(&tmp).map_err(io_err("read", &tmp))? {
            let path = entry.map_err(io_err("read", &tmp))?.path();
            self.faults.step("remove temp file")?;
            match fs::remove_file(&path) {
                Ok(()) => n += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &path)(e)),
            }
        }
        Ok(n)
    }

    fn tmp_path(&self) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.dir.join(TMP_DIR).join(format!("pack.{}.{n}", std::process::id()))
    }
}

/// A shared, read-only view of the chunk store.
#[derive(Debug)]
pub struct Reader {
    packs: Packs,
    _lock: Flock<File>,
}

impl Deref for Reader {
    type Target = Packs;
    fn deref(&self) -> &Packs {
        &self.packs
    }
}

/// An exclusive session: nobody else reads or writes the chunk store
/// while it lives.
#[derive(Debug)]
pub struct Session {
    store: ChunkStore,
    packs: Packs,
    swept: usize,
    _lock: Flock<File>,
}

impl Deref for Session {
    type Target = Packs;
    fn deref(&self) -> &Packs {
        &self.packs
    }
}

/// How much dead data collection may leave in a pack rather than rewrite
/// the pack's live chunks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CollectPolicy {
    /// 0.0: keep exactly the referenced chunks (rewrite any pack with a
    /// dead chunk); 0.2: rewrite a pack only once a fifth of it is dead.
    pub max_dead_fraction: f64,
}

impl CollectPolicy {
    /// Keep exactly the referenced chunks.
    pub const EXACT: CollectPolicy = CollectPolicy { max_dead_fraction: 0.0 };
}

/// What a collection did and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectReport {
    pub packs_removed: usize,
    pub packs_rewritten: usize,
    /// Chunk bytes no longer stored.
    pub bytes_freed: u64,
    /// Dead chunk bytes left in packs under the policy.
    pub dead_bytes_kept: u64,
    /// Chunks a recipe uses that no pack holds (damage done before).
    pub missing: Vec<Digest>,
    /// Live chunks found corrupt while rewriting; their packs were kept.
    pub corrupt: Vec<Digest>,
    /// Temp files of earlier sessions removed when this one began.
    pub temp_files_swept: usize,
    /// Packs that could not be read (kept, reported).
    pub bad_packs: Vec<String>,
}

enum Plan {
    Remove,
    Rewrite(Vec<super::pack::Entry>),
}

impl Session {
    /// Keeps the chunks that `roots` use and removes every other one. The
    /// roots must be all published recipes, read after this session began.
    pub fn collect<'a>(
        &mut self,
        roots: impl IntoIterator<Item = &'a Recipe>,
        policy: CollectPolicy,
    ) -> Result<CollectReport, ChunkError> {
        let live = super::refs::live(roots);
        let mut report = CollectReport {
            temp_files_swept: self.swept,
            bad_packs: self.packs.bad.iter().map(ToString::to_string).collect(),
            ..CollectReport::default()
        };
        report.missing = live.iter().filter(|d| !self.packs.contains(d)).copied().collect();
        report.missing.sort();
        let mut plans = Vec::new();
        for p in 0..self.packs.packs.len() {
            let entries = self.packs.entries(p);
            let owned_live: Vec<_> = entries
                .iter()
                .filter(|e| live.contains(&e.digest) && self.packs.index.get(&e.digest).is_some_and(|l| l.pack == p))
                .copied()
                .collect();
            let total: u64 = entries.iter().map(|e| u64::from(e.len)).sum();
            let kept: u64 = owned_live.iter().map(|e| u64::from(e.len)).sum();
            let dead = total - kept;
            if owned_live.is_empty() {
                plans.push((p, Plan::Remove));
            } else if dead > 0 && dead as f64 > policy.max_dead_fraction * total as f64 {
                plans.push((p, Plan::Rewrite(owned_live)));
            } else {
                report.dead_bytes_kept += dead;
            }
        }
        // Rewrites first: live chunks are durable in their new packs
        // before any pack is removed.
        let mut remove = Vec::new();
        for (p, plan) in plans {
            let old = self.packs.packs[p].index.path.clone();
            let total = self.packs.packs[p].index.data_bytes();
            match plan {
                Plan::Remove => remove.push((old, Some(total))),
                Plan::Rewrite(live) => match self.rewrite(p, &live)? {
                    Ok(()) => {
                        report.packs_rewritten += 1;
                        let kept: u64 = live.iter().map(|e| u64::from(e.len)).sum();
                        report.bytes_freed += total - kept;
                        remove.push((old, None));
                    }
                    Err(corrupt) => report.corrupt.extend(corrupt),
                },
            }
        }
        for (path, whole) in remove {
            self.store.faults.step("remove pack")?;
            fs::remove_file(&path).map_err(io_err("remove", &path))?;
            // A rewritten pack's freed bytes were counted with the rewrite.
            if let Some(freed) = whole {
                report.packs_removed += 1;
                report.bytes_freed += freed;
            }
        }
        self.store.faults.step("fsync packs dir")?;
        fsync_dir(&self.packs.dir)?;
        self.packs = Packs::load(&self.packs.dir)?;
        if report.packs_removed + report.packs_rewritten > 0 {
            log::info!(
                "chunk store {}: {} packs removed, {} rewritten, {} bytes freed",
                self.store.dir.display(),
                report.packs_removed,
                report.packs_rewritten,
                report.bytes_freed
            );
        }
        Ok(report)
    }

    /// Recomputes what the recipes reference and removes everything else,
    /// exactly (the repair path of `verify --all`); reports what it could
    /// not mend: chunks missing or corrupt, packs unreadable.
    pub fn repair<'a>(&mut self, roots: impl IntoIterator<Item = &'a Recipe>) -> Result<CollectReport, ChunkError> {
        self.collect(roots, CollectPolicy::EXACT)
    }

    /// Writes the chunks `live` of pack `p` into a new pack and renames it
    /// into place (the old pack is removed by the caller, later). The inner
    /// `Err` lists live chunks found corrupt: then nothing is renamed.
    fn rewrite(&self, p: usize, live: &[super::pack::Entry]) -> Result<Result<(), Vec<Digest>>, ChunkError> {
        let faults = &*self.store.faults;
        let src = &self.packs.packs[p];
        let mut sorted = live.to_vec();
        sorted.sort_by_key(|e| e.offset);
        let tmp = self.store.tmp_path();
        let mut out = PackWriter::create(&tmp, faults)?;
        let mut corrupt = Vec::new();
        for e in &sorted {
            let bytes = src.chunk(e.offset, e.len);
            if Digest::of(bytes) != e.digest {
                corrupt.push(e.digest);
                continue;
            }
            out.append(e.digest, bytes, faults)?;
        }
        if !corrupt.is_empty() {
            // Keep the old pack whole: what is corrupt stays reported.
            drop(out);
            faults.step("remove temp file")?;
            fs::remove_file(&tmp).map_err(io_err("remove", &tmp))?;
            return Ok(Err(corrupt));
        }
        let (tmp, name, _) = out.finish(faults)?;
        let target = self.packs.dir.join(name);
        faults.step("rename pack")?;
        fs::rename(&tmp, &target).map_err(io_err("rename", &tmp))?;
        faults.step("fsync packs dir")?;
        fsync_dir(&self.packs.dir)?;
        Ok(Ok(()))
    }

    /// Temp files of earlier sessions removed when this one began.
    pub fn temp_files_swept(&self) -> usize {
        self.swept
    }
}

/// Counts of what a writer stored and reused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub files: usize,
    pub chunks: usize,
    pub bytes: u64,
    pub new_chunks: usize,
    pub new_bytes: u64,
    /// Page files that had to be cut by file offset (no usable pagemap).
    pub cut_by_offset: usize,
}

/// An exclusive session that adds page files to the chunk store.
#[derive(Debug)]
pub struct Writer {
    session: Session,
    pending: Option<PackWriter>,
    pending_index: HashSet<Digest>,
    stats: WriteStats,
}

impl Writer {
    /// Splits every `pages-*.img` of CRIU image directory `dir` by
    /// [`ChunkRule::Address`] at [`CHUNK_SIZE`] and adds it. Returns the
    /// recipe (files sorted by name). The page files are left in place:
    /// the caller removes them once the recipe is published.
    pub fn add_page_files(&mut self, dir: &Path) -> Result<Recipe, ChunkError> {
        let mut files = Vec::new();
        for pf in page_files(dir)? {
            files.push(self.add_page_file(&pf, ChunkRule::Address, CHUNK_SIZE)?);
        }
        Ok(Recipe { files })
    }

    /// Adds one page file cut by `rule` at `chunk_size`.
    pub fn add_page_file(&mut self, pf: &PageFile, rule: ChunkRule, chunk_size: u32) -> Result<FileRecipe, ChunkError> {
        let (spans, used) =
            plan_with_fallback(rule, chunk_size, pf.len, pf.runs.as_deref()).map_err(|e| ChunkError::Io {
                op: "plan chunks of",
                path: pf.path.clone(),
                source: io::Error::new(io::ErrorKind::InvalidInput, e),
            })?;
        if used != rule {
            self.stats.cut_by_offset += 1;
        }
        self.add_file(&pf.path, &pf.name, &spans)
    }

    /// Adds file `path` under the name `name`, cut into `spans` (which
    /// must cover it exactly, in order). Stores only chunks that are in no
    /// pack yet; they stay in the pending pack until [`Writer::commit`].
    pub fn add_file(&mut self, path: &Path, name: &str, spans: &[Span]) -> Result<FileRecipe, ChunkError> {
        let faults = self.session.store.faults.clone();
        let mut file = super::fsutil::open_read(path)?;
        let size = file.metadata().map_err(io_err("inspect", path))?.len();
        let covered = spans
            .iter()
            .try_fold(0u64, |at, s| (s.offset == at).then(|| at + u64::from(s.len)));
        if covered != Some(size) {
            return Err(ChunkError::Io {
                op: "split",
                path: path.to_path_buf(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "the spans do not cover the file"),
            });
        }
        let mut whole = blake3::Hasher::new();
        let mut chunks = Vec::with_capacity(spans.len());
        let mut buf = vec![0u8; BATCH.min(size as usize)];
        let mut i = 0;
        while i < spans.len() {
            let mut k = i;
            let mut n = 0usize;
            while k < spans.len() && (k == i || n + spans[k].len as usize <= buf.len()) {
                n += spans[k].len as usize;
                k += 1;
            }
            if buf.len() < n {
                buf.resize(n, 0);
            }
            read_full(&mut file, &mut buf[..n], path)?;
            let lens = spans[i..k].iter().map(|s| s.len);
            let pieces = split_pieces(&buf[..n], lens);
            let digests = hash_pieces_and(&pieces, || {
                whole.update(&buf[..n]);
            });
            for (piece, digest) in pieces.iter().zip(digests) {
                chunks.push(ChunkRef {
                    len: piece.len() as u32,
                    digest,
                });
                self.stats.chunks += 1;
                self.stats.bytes += piece.len() as u64;
                if self.session.packs.contains(&digest) || self.pending_index.contains(&digest) {
                    continue;
                }
                if self.pending.is_none() {
                    self.pending = Some(PackWriter::create(&self.session.store.tmp_path(), &*faults)?);
                }
                let pack = self.pending.as_mut().expect("just created");
                pack.append(digest, piece, &*faults)?;
                self.pending_index.insert(digest);
                self.stats.new_chunks += 1;
                self.stats.new_bytes += piece.len() as u64;
            }
            i = k;
        }
        self.stats.files += 1;
        Ok(FileRecipe {
            name: name.to_string(),
            size,
            blake3: whole.finalize().into(),
            chunks,
        })
    }

    /// What has been added so far.
    pub fn stats(&self) -> WriteStats {
        self.stats
    }

    /// Makes the added chunks durable in a new pack and returns the
    /// session, still exclusive: publish the recipe, then drop it.
    pub fn commit(mut self) -> Result<Session, ChunkError> {
        let faults = self.session.store.faults.clone();
        if let Some(pack) = self.pending.take() {
            let (tmp, name, _) = pack.finish(&*faults)?;
            let target = self.session.packs.dir.join(name);
            faults.step("rename pack")?;
            fs::rename(&tmp, &target).map_err(io_err("rename", &tmp))?;
            faults.step("fsync packs dir")?;
            fsync_dir(&self.session.packs.dir)?;
            self.session.packs.add(&target)?;
        }
        Ok(self.session)
    }
}

fn read_full(file: &mut File, buf: &mut [u8], path: &Path) -> Result<(), ChunkError> {
    file.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => ChunkError::Io {
            op: "read",
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while it was read"),
        },
        _ => io_err("read", path)(e),
    })
}
