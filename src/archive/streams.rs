//! The byte streams archives pass through: on write, a source file read
//! with its size and BLAKE3 checked ([`Checked`]), a hashing and counting
//! sink ([`HashCount`]) and progress ([`Tracker`]); on read, the input
//! and its byte budget ([`Input`], [`Budget`], [`Shared`]), the copy of
//! an entry into its staged file ([`Tee`]), and what a stream error
//! means ([`stream_error`]).

use super::compress::Compression;
use super::manifest::EntryDigest;
use super::writer::{source_err, Progress};
use super::{io_err, refused_archive, ArchiveError, Refusal};
use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::rc::Rc;

/// Progress is reported at most once per this many bytes.
const PROGRESS_STEP: u64 = 1 << 20;

/// Reports progress, at most once per [`PROGRESS_STEP`].
pub(crate) struct Tracker<'a> {
    pub done: u64,
    pub reported: u64,
    pub total: u64,
    pub callback: &'a mut dyn FnMut(Progress),
}

impl Tracker<'_> {
    pub(crate) fn add(&mut self, n: u64) {
        self.done += n;
        self.report(false);
    }

    pub(crate) fn report(&mut self, last: bool) {
        if last || self.done - self.reported >= PROGRESS_STEP {
            self.reported = self.done;
            (self.callback)(Progress {
                done: self.done,
                total: self.total,
            });
        }
    }
}

/// A source file read for an entry of `size` bytes: never more than
/// `size`, an error if it ends before, and hashed on the way.
pub(crate) struct Checked<'t, 'a> {
    pub file: File,
    left: u64,
    size: u64,
    hasher: blake3::Hasher,
    shown: String,
    tracker: Option<&'t mut Tracker<'a>>,
    short: bool,
}

impl<'t, 'a> Checked<'t, 'a> {
    pub(crate) fn new(file: File, size: u64, shown: &str, tracker: impl Into<Option<&'t mut Tracker<'a>>>) -> Self {
        Checked {
            file,
            left: size,
            size,
            hasher: blake3::Hasher::new(),
            shown: shown.to_string(),
            tracker: tracker.into(),
            short: false,
        }
    }

    /// Maps a copy error: a short file is the source's fault.
    pub(crate) fn error(&self, e: io::Error, op: &'static str) -> ArchiveError {
        if self.short {
            return source_err(
                &self.shown,
                format!("it has {} bytes, {} were recorded", self.size - self.left, self.size),
            );
        }
        ArchiveError::Io {
            op,
            path: self.shown.clone(),
            source: e,
        }
    }

    /// Checks that the file ended where expected and, when `want` says,
    /// its digest.
    pub(crate) fn finish(mut self, want: &EntryDigest) -> Result<(), ArchiveError> {
        let mut one = [0u8; 1];
        if self.file.read(&mut one).map_err(io_err("read", self.shown.clone()))? != 0 {
            return Err(source_err(
                &self.shown,
                format!("it is larger than the {} bytes recorded", self.size),
            ));
        }
        let found = self.hasher.finalize().to_hex().to_string();
        if found != want.blake3 {
            return Err(source_err(
                &self.shown,
                format!("its BLAKE3 is {found}, {} was recorded", want.blake3),
            ));
        }
        Ok(())
    }
}

impl Read for Checked<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.file.read(&mut buf[..max])?;
        if n == 0 {
            self.short = true;
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n as u64;
        self.hasher.update(&buf[..n]);
        if let Some(t) = self.tracker.as_mut() {
            t.add(n as u64);
        }
        Ok(n)
    }
}

/// A writer that counts and BLAKE3-hashes what passes through, and
/// reports it as progress when it has a tracker.
pub(crate) struct HashCount<'t, 'a, W> {
    inner: W,
    hasher: blake3::Hasher,
    count: u64,
    pub tracker: Option<&'t mut Tracker<'a>>,
}

impl<W: Write> HashCount<'_, '_, W> {
    pub(crate) fn new(inner: W) -> Self {
        HashCount {
            inner,
            hasher: blake3::Hasher::new(),
            count: 0,
            tracker: None,
        }
    }

    pub(crate) fn digest(&self) -> EntryDigest {
        EntryDigest {
            size: self.count,
            blake3: self.hasher.finalize().to_hex().to_string(),
        }
    }
}

impl<W: Write> Write for HashCount<'_, '_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        if let Some(t) = self.tracker.as_mut() {
            t.add(n as u64);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Counts the bytes of the tar stream.
pub(crate) struct Counter<W> {
    pub inner: W,
    pub count: u64,
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// State shared between the stream wrappers and the reader, to tell a
/// failing input from a corrupt stream and a bomb from both.
#[derive(Default)]
pub(crate) struct Shared {
    pub input_failed: Cell<bool>,
    pub over_limit: Cell<bool>,
    pub bytes: Cell<u64>,
    /// The byte limit of the decompressed stream now: the ratio limit,
    /// raised once a ckpt manifest has declared its exact sizes.
    pub limit: Cell<u64>,
}

pub(crate) struct Input<R> {
    pub inner: R,
    pub shared: Rc<Shared>,
}

impl<R: Read> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|_| self.shared.input_failed.set(true))
    }
}

/// Counts the decompressed stream and stops it at the byte limit.
pub(crate) struct Budget<R> {
    pub inner: R,
    pub shared: Rc<Shared>,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self.shared.bytes.get() + n as u64;
        self.shared.bytes.set(total);
        if total > self.shared.limit.get() {
            self.shared.over_limit.set(true);
            return Err(io::Error::other("byte limit"));
        }
        Ok(n)
    }
}

/// Reads to the end, refusing anything but zeros (tar's record padding).
pub(crate) fn drain_zeros(r: &mut impl Read) -> io::Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if buf[..n].iter().any(|b| *b != 0) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, TRAILING));
        }
    }
}

const TRAILING: &str = "ckpt: trailing data";

/// Maps an error of the decompressed stream to what it means.
pub(crate) fn stream_error(shared: &Shared, compression: Compression, e: io::Error) -> ArchiveError {
    let limit = shared.limit.get();
    if shared.input_failed.get() {
        return ArchiveError::Io {
            op: "read",
            path: "the archive".into(),
            source: e,
        };
    }
    if shared.over_limit.get() {
        return refused_archive(Refusal::TooManyBytes { limit });
    }
    if e.kind() == io::ErrorKind::InvalidData && e.to_string() == TRAILING {
        return refused_archive(Refusal::TrailingData);
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return refused_archive(Refusal::Truncated(e.to_string()));
    }
    refused_archive(Refusal::Corrupt(match compression {
        Compression::None => format!("a valid tar stream ({e})"),
        c => format!("a valid {} tar stream ({e})", c.name()),
    }))
}

/// Marks an error of writing the staged copy, so it is not taken for a
/// fault of the stream.
#[derive(Debug)]
pub(crate) struct StagedWriteError(pub io::Error);

impl std::fmt::Display for StagedWriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "writing the staged file: {}", self.0)
    }
}

impl std::error::Error for StagedWriteError {}

/// Reads an entry's data while hashing it, and copying it into the staged
/// file and (for JSON) memory.
pub(crate) struct Tee<'f, R> {
    pub inner: R,
    pub hasher: blake3::Hasher,
    pub count: u64,
    pub file: Option<&'f mut std::fs::File>,
    pub json: Option<&'f mut Vec<u8>>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let data = &buf[..n];
        self.hasher.update(data);
        self.count += n as u64;
        if let Some(f) = self.file.as_mut() {
            f.write_all(data).map_err(|e| io::Error::other(StagedWriteError(e)))?;
        }
        if let Some(j) = self.json.as_mut() {
            j.extend_from_slice(data);
        }
        Ok(n)
    }
}
