//! Packs: many chunks in one file, with an index.
//!
//! One file per create (the chunks it added), instead of one file per
//! chunk: at 4 KiB a chunk file per page would be 262 144 files per GiB,
//! and creating them costs several times a full checkpoint
//! (docs/incremental.md). Little-endian:
//!
//! ```text
//! header  4096  "CKPTPACK", version u32 (1), zeros to 4096
//! data          the chunks' bytes, back to back, so page-sized chunks lie
//!               on block boundaries (a reflink could share them, see
//!               docs/incremental.md)
//! index         per chunk, sorted by digest: blake3 [32], offset u64, len u32
//! footer  56    index offset u64, entries u64, BLAKE3 of the index [32], "CKPTPEND"
//! ```
//!
//! A pack is named `<BLAKE3 of its index>.pack`, so its name checks its
//! index; each chunk's bytes are checked against its digest when read. A
//! pack is written under a temp name, fsynced and renamed into `packs/`:
//! it is whole or absent. Packs are never modified; collection writes a
//! smaller pack and removes the old one.
use super::faults::Faults;
use super::fsutil::{create_new, open_read, read_at};
use super::{io_err, ChunkError, Digest};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"CKPTPACK";
const END_MAGIC: &[u8; 8] = b"CKPTPEND";
const VERSION: u32 = 1;
/// Bytes before the first chunk: one block, so that chunks of whole pages
/// are block-aligned in the file.
pub const HEADER_LEN: u64 = 4096;
const FOOTER_LEN: u64 = 56;
const ENTRY_LEN: usize = 44;
/// The extension of a published pack.
pub const PACK_EXT: &str = "pack";

/// Where one chunk lies in its pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub digest: Digest,
    pub offset: u64,
    pub len: u32,
}

/// A pack's index, as read from its file.
#[derive(Debug, Clone)]
pub struct PackIndex {
    pub path: PathBuf,
    /// Sorted by digest, no digest twice.
    pub entries: Vec<Entry>,
}

impl PackIndex {
    /// Total bytes of chunk data.
    pub fn data_bytes(&self) -> u64 {
        self.entries.iter().map(|e| u64::from(e.len)).sum()
    }
}

/// A pack being written into a temp file.
#[derive(Debug)]
pub struct PackWriter {
    tmp: PathBuf,
    out: BufWriter<File>,
    offset: u64,
    entries: Vec<Entry>,
}

impl PackWriter {
    /// Creates the temp file `tmp` (which must not exist) and writes the header.
    pub fn create(tmp: &Path, faults: &dyn Faults) -> Result<PackWriter, ChunkError> {
        faults.step("create pack")?;
        let file = create_new(tmp)?;
        let mut out = BufWriter::with_capacity(4 << 20, file);
        let mut header = vec![0u8; HEADER_LEN as usize];
        header[..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out.write_all(&header).map_err(io_err("write", tmp))?;
        Ok(PackWriter {
            tmp: tmp.to_path_buf(),
            out,
            offset: HEADER_LEN,
            entries: Vec::new(),
        })
    }

    /// Appends one chunk. The caller never appends a digest twice.
    pub fn append(&mut self, digest: Digest, bytes: &[u8], faults: &dyn Faults) -> Result<(), ChunkError> {
        faults.step("write chunk")?;
        self.out.write_all(bytes).map_err(io_err("write", &self.tmp))?;
        self.entries.push(Entry {
            digest,
            offset: self.offset,
            len: bytes.len() as u32,
        });
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// How many chunks have been appended.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no chunk has been appended.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the index and footer and fsyncs the temp file. Returns the
    /// temp path, the pack's file name, and its entries (sorted).
    pub fn finish(mut self, faults: &dyn Faults) -> Result<(PathBuf, String, Vec<Entry>), ChunkError> {
        self.entries.sort_by_key(|e| e.digest);
        let mut index = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for e in &self.entries {
            index.extend_from_slice(&e.digest.0);
            index.extend(e.offset.to_le_bytes());
            index.extend(e.len.to_le_bytes());
        }
        let index_digest = Digest::of(&index);
        let mut footer = Vec::with_capacity(FOOTER_LEN as usize);
        footer.extend(self.offset.to_le_bytes());
        footer.extend((self.entries.len() as u64).to_le_bytes());
        footer.extend_from_slice(&index_digest.0);
        footer.extend_from_slice(END_MAGIC);
        faults.step("write pack index")?;
        self.out.write_all(&index).map_err(io_err("write", &self.tmp))?;
        self.out.write_all(&footer).map_err(io_err("write", &self.tmp))?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| io_err("write", &self.tmp)(e.into_error()))?;
        faults.step("fsync pack")?;
        file.sync_all().map_err(io_err("fsync", &self.tmp))?;
        Ok((self.tmp, format!("{index_digest}.{PACK_EXT}"), self.entries))
    }
}

/// The digest a pack's file name claims for its index, if it is a pack name.
pub fn name_digest(file_name: &str) -> Option<Digest> {
    file_name.strip_suffix(".pack").and_then(|hex| hex.parse().ok())
}

/// Reads and checks a pack's header, footer and index.
pub fn read_index(path: &Path) -> Result<(File, PackIndex), ChunkError> {
    let bad = |reason: String| ChunkError::BadPack {
        path: path.to_path_buf(),
        reason,
    };
    let file = open_read(path)?;
    let len = file.metadata().map_err(io_err("inspect", path))?.len();
    if len < HEADER_LEN + FOOTER_LEN {
        return Err(bad(format!("{len} bytes is too short for a pack")));
    }
    let mut header = [0u8; 12];
    read_at(&file, &mut header, 0, path)?;
    if &header[..8] != MAGIC {
        return Err(bad("no pack header".into()));
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(bad(format!("pack version {version}, this ckpt reads {VERSION}")));
    }
    let mut footer = [0u8; FOOTER_LEN as usize];
    read_at(&file, &mut footer, len - FOOTER_LEN, path)?;
    if &footer[48..] != END_MAGIC {
        return Err(bad("no pack footer (a pack cut short?)".into()));
    }
    let index_offset = u64::from_le_bytes(footer[..8].try_into().expect("8 bytes"));
    let count = u64::from_le_bytes(footer[8..16].try_into().expect("8 bytes"));
    let index_digest = Digest(footer[16..48].try_into().expect("32 bytes"));
    let index_len = count.checked_mul(ENTRY_LEN as u64);
    if index_offset < HEADER_LEN || index_len.and_then(|l| l.checked_add(index_offset)) != Some(len - FOOTER_LEN) {
        return Err(bad(format!(
            "footer says {count} entries at {index_offset}, the file has {len} bytes"
        )));
    }
    let mut index = vec![0u8; index_len.expect("checked") as usize];
    read_at(&file, &mut index, index_offset, path)?;
    if Digest::of(&index) != index_digest {
        return Err(bad("index checksum mismatch".into()));
    }
    let named = path.file_name().and_then(|n| n.to_str()).and_then(name_digest);
    if named != Some(index_digest) {
        return Err(bad("its name is not the digest of its index".into()));
    }
    let mut entries = Vec::with_capacity(count as usize);
    for raw in index.chunks_exact(ENTRY_LEN) {
        let e = Entry {
            digest: Digest(raw[..32].try_into().expect("32 bytes")),
            offset: u64::from_le_bytes(raw[32..40].try_into().expect("8 bytes")),
            len: u32::from_le_bytes(raw[40..44].try_into().expect("4 bytes")),
        };
        let end = e.offset.checked_add(u64::from(e.len));
        if e.offset < HEADER_LEN || e.len == 0 || end.is_none_or(|end| end > index_offset) {
            return Err(bad(format!("chunk {} lies outside the pack's data", e.digest)));
        }
        if entries.last().is_some_and(|p: &Entry| p.digest >= e.digest) {
            return Err(bad("index not sorted".into()));
        }
        entries.push(e);
    }
    Ok((
        file,
        PackIndex {
            path: path.to_path_buf(),
            entries,
        },
    ))
}
