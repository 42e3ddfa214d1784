//! One file hashed as it grows: an open descriptor, the BLAKE3 state of
//! the bytes read so far, and how far writeback has been started.
//!
//! Reads with `pread` from where it stopped to the size `fstat` reports, so
//! a writer appending meanwhile is never raced: bytes past that size are
//! read on the next [`GrowingFile::advance`]. Never writes to the file.
//!
//! Writeback requests go to a [`Writeback`] thread of their own:
//! `sync_file_range(SYNC_FILE_RANGE_WRITE)` blocks while the device queue
//! is congested (measured: a 1.8 s stall of the hashing thread), and
//! hashing must never wait for the disk.

use super::{io_err, Digest, DigestError};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Bytes read per `pread`.
pub(super) const READ_CHUNK: usize = 4 << 20;

/// Writeback is started once this many hashed bytes have not been handed
/// to `sync_file_range` yet: fewer, larger requests.
const WRITEBACK_BATCH: u64 = 8 << 20;

/// Tails at least this long are hashed on all cores (rayon); shorter ones
/// are not worth the hand-off.
const PARALLEL_TAIL: usize = 1 << 20;

/// What one [`GrowingFile::advance`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// This many new bytes were hashed (possibly 0).
    Grew(u64),
    /// The file is shorter than what was already hashed: it was truncated
    /// or reopened with `O_TRUNC`; the hash so far is worthless.
    Shrank { hashed: u64, now: u64 },
}

/// A regular file followed from its first byte.
pub struct GrowingFile {
    path: PathBuf,
    file: Arc<File>,
    dev: u64,
    ino: u64,
    hasher: blake3::Hasher,
    hashed: u64,
    writeback_from: u64,
    writeback: Option<Sender<Range>>,
}

/// A stretch of one file to hand to the kernel's writeback.
pub(super) struct Range {
    file: Arc<File>,
    path: PathBuf,
    from: u64,
    len: u64,
}

/// The thread that issues the writeback requests, in the order they come.
pub(super) struct Writeback {
    tx: Option<Sender<Range>>,
    thread: Option<JoinHandle<()>>,
}

impl Writeback {
    pub(super) fn spawn() -> std::io::Result<Writeback> {
        let (tx, rx) = channel::<Range>();
        let thread = std::thread::Builder::new()
            .name("ckpt-writeback".into())
            .spawn(move || rx.into_iter().for_each(|r| r.start()))?;
        Ok(Writeback {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// A sender for [`GrowingFile::open`].
    pub(super) fn sender(&self) -> Option<Sender<Range>> {
        self.tx.clone()
    }

    /// Waits until every request sent so far has been issued (the senders
    /// held elsewhere must be gone for the thread to end).
    pub(super) fn join(mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Range {
    /// Advisory: a failure only means the final fsync has more to wait for.
    fn start(self) {
        // SAFETY: a plain syscall on a descriptor the Arc keeps open; it
        // reads no memory of ours.
        let rc = unsafe {
            libc::sync_file_range(
                self.file.as_raw_fd(),
                self.from as libc::off64_t,
                self.len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
        if rc != 0 {
            log::debug!(
                "sync_file_range on {}: {}; the final fsync will do it",
                self.path.display(),
                io::Error::last_os_error()
            );
        }
    }
}

impl GrowingFile {
    /// Opens `path` (`O_NOFOLLOW`, `O_NONBLOCK`) and checks that it is a
    /// regular file. With a `writeback` sender, hashed ranges are handed to
    /// the kernel's writeback (by the [`Writeback`] thread) as they are read.
    pub(super) fn open(path: &Path, writeback: Option<Sender<Range>>) -> Result<GrowingFile, DigestError> {
        let file = open_no_follow(path)?;
        let meta = file.metadata().map_err(io_err("inspect", path))?;
        if !meta.is_file() {
            return Err(DigestError::NotRegular {
                path: path.to_path_buf(),
            });
        }
        Ok(GrowingFile {
            path: path.to_path_buf(),
            file: Arc::new(file),
            dev: meta.dev(),
            ino: meta.ino(),
            hasher: blake3::Hasher::new(),
            hashed: 0,
            writeback_from: 0,
            writeback,
        })
    }

    /// Bytes hashed so far.
    pub fn hashed(&self) -> u64 {
        self.hashed
    }

    /// `(st_dev, st_ino)` of the open file.
    pub fn identity(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// Hashes everything between what was hashed and the current size.
    /// `parallel` hashes long stretches on all cores (for the catch-up
    /// after the writer is done; while it writes, one core is enough and
    /// leaves the other to the writer).
    pub fn advance(&mut self, buf: &mut Vec<u8>, parallel: bool) -> Result<Advance, DigestError> {
        let size = self.file.metadata().map_err(io_err("inspect", &self.path))?.len();
        if size < self.hashed {
            return Ok(Advance::Shrank {
                hashed: self.hashed,
                now: size,
            });
        }
        let start = self.hashed;
        if buf.len() < READ_CHUNK {
            buf.resize(READ_CHUNK, 0);
        }
        while self.hashed < size {
            let want = ((size - self.hashed) as usize).min(buf.len());
            let n = match self.file.read_at(&mut buf[..want], self.hashed) {
                // Shrank between fstat and pread: the next advance says so.
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err("read", &self.path)(e)),
            };
            if parallel && n >= PARALLEL_TAIL {
                self.hasher.update_rayon(&buf[..n]);
            } else {
                self.hasher.update(&buf[..n]);
            }
            self.hashed += n as u64;
            if self.writeback.is_some() && self.hashed - self.writeback_from >= WRITEBACK_BATCH {
                self.start_writeback();
            }
        }
        Ok(Advance::Grew(self.hashed - start))
    }

    /// Hands the hashed bytes not yet handed over to the writeback thread.
    fn start_writeback(&mut self) {
        if let Some(tx) = &self.writeback {
            let _ = tx.send(Range {
                file: Arc::clone(&self.file),
                path: self.path.clone(),
                from: self.writeback_from,
                len: self.hashed - self.writeback_from,
            });
        }
        self.writeback_from = self.hashed;
    }

    /// The digest of the bytes hashed, and the file for a final `fsync`.
    pub fn finish(mut self) -> (Digest, Arc<File>) {
        if self.writeback.is_some() && self.hashed > self.writeback_from {
            self.start_writeback();
        }
        let digest = Digest {
            size: self.hashed,
            blake3: self.hasher.finalize().to_hex().to_string(),
        };
        (digest, self.file)
    }
}

/// Size and BLAKE3 of a whole file, read from its first byte on all
/// cores: the way `store::files::digest_open_file` hashes after a dump,
/// here for files the follower could not vouch for.
pub fn hash_file(path: &Path) -> Result<(Digest, Arc<File>), DigestError> {
    let mut file = open_no_follow(path)?;
    if !file.metadata().map_err(io_err("inspect", path))?.is_file() {
        return Err(DigestError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    let (size, blake3) = blake3_of(&mut file, READ_CHUNK).map_err(io_err("read", path))?;
    Ok((Digest { size, blake3 }, Arc::new(file)))
}

/// Size and lower-case hex BLAKE3 of everything `reader` yields, read in
/// `chunk`-byte pieces and hashed on all cores: the one hashing loop of
/// whole files (the store's after a dump, the follower's fallback).
pub fn blake3_of(mut reader: impl Read, chunk: usize) -> io::Result<(u64, String)> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; chunk];
    let mut size = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update_rayon(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hasher.finalize().to_hex().to_string()))
}

fn open_no_follow(path: &Path) -> Result<File, DigestError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) => DigestError::NotRegular {
                path: path.to_path_buf(),
            },
            _ => io_err("open", path)(source),
        })
}
