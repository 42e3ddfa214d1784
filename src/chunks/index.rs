//! The loaded packs of a chunk store, and everything that reads chunks:
//! reassembling a page file, verifying recipes.
//!
//! Packs are read through read-only memory maps (see `map`). Every chunk
//! read is checked against its digest before its bytes are used. A chunk held by two packs (left by a collection cut short) is
//! read from the pack with fewer entries, the compacted copy. Never writes
//! into the chunk store.
use super::fsutil::create_new;
use super::map::Map;
use super::pack::{self, Entry, PackIndex, PACK_EXT};
use super::{io_err, ChunkError, Digest, FileRecipe, Recipe};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Bytes read, hashed and written per step when streaming a file.
pub(crate) const BATCH: usize = 8 << 20;

/// Where a chunk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc {
    pub pack: usize,
    pub offset: u64,
    pub len: u32,
}

/// One pack, open and mapped.
#[derive(Debug)]
pub(crate) struct OpenPack {
    pub map: Map,
    pub index: PackIndex,
}

impl OpenPack {
    fn open(path: &Path) -> Result<OpenPack, ChunkError> {
        let (file, index) = pack::read_index(path)?;
        let len = file.metadata().map_err(io_err("inspect", path))?.len();
        Ok(OpenPack {
            map: Map::new(&file, len, path)?,
            index,
        })
    }

    /// The bytes of a chunk at `loc` (in bounds: `read_index` checked
    /// every entry against the file's length, which is the map's).
    pub(crate) fn chunk(&self, offset: u64, len: u32) -> &[u8] {
        &self.map.bytes()[offset as usize..offset as usize + len as usize]
    }
}

/// The packs of a chunk store as they were when loaded.
#[derive(Debug)]
pub struct Packs {
    pub(crate) dir: PathBuf,
    pub(crate) packs: Vec<OpenPack>,
    pub(crate) index: HashMap<Digest, Loc>,
    /// Packs that could not be read, with why; their chunks count as missing.
    pub(crate) bad: Vec<ChunkError>,
}

/// What is wrong with one chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkProblem {
    Missing,
    /// The bytes in this pack do not hash to the chunk's name.
    Corrupt(PathBuf),
}

/// One problem found by [`Packs::verify`], for one checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The name the caller gave the recipe (the checkpoint's).
    pub checkpoint: String,
    pub file: String,
    pub digest: Digest,
    pub problem: ChunkProblem,
}

/// How [`Packs::reassemble`] writes and checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reassembly {
    /// Also check the whole file against the recipe's BLAKE3 (a second
    /// hash of every byte; each chunk is checked either way).
    pub check_file: bool,
    /// fsync the result (a restore's work directory does not need it; an
    /// export to keep might).
    pub durable: bool,
}

impl Reassembly {
    /// For a restore's work directory: both checks, no fsync.
    pub const RESTORE: Reassembly = Reassembly {
        check_file: true,
        durable: false,
    };
}

/// Counts for `ls`-like reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub packs: usize,
    pub chunks: usize,
    pub chunk_bytes: u64,
    /// On-disk size of the pack files (data plus index and framing).
    pub file_bytes: u64,
}

impl Packs {
    /// Reads the index of every `*.pack` in `packs_dir`. A pack that cannot
    /// be read is kept in `bad`, not fatal: its chunks count as missing.
    pub(crate) fn load(packs_dir: &Path) -> Result<Packs, ChunkError> {
        let mut names = Vec::new();
        for entry in fs::read_dir(packs_dir).map_err(io_err("read", packs_dir))? {
            let entry = entry.map_err(io_err("read", packs_dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(&format!(".{PACK_EXT}")) {
                names.push(name.to_string());
            }
        }
        names.sort();
        let mut packs = Vec::new();
        let mut bad = Vec::new();
        for name in names {
            match OpenPack::open(&packs_dir.join(&name)) {
                Ok(p) => packs.push(p),
                Err(e @ (ChunkError::BadPack { .. } | ChunkError::Unsafe { .. })) => bad.push(e),
                Err(e) => return Err(e),
            }
        }
        let mut loaded = Packs {
            dir: packs_dir.to_path_buf(),
            packs,
            index: HashMap::new(),
            bad,
        };
        loaded.build_index();
        Ok(loaded)
    }

    /// Maps each digest to its owning pack: the one with the fewest
    /// entries (then the smaller name), so that after a collection cut
    /// short the compacted copy wins and the old pack is left owning
    /// nothing.
    fn build_index(&mut self) {
        let mut order: Vec<usize> = (0..self.packs.len()).collect();
        order.sort_by(|&a, &b| {
            let (pa, pb) = (&self.packs[a].index, &self.packs[b].index);
            (pa.entries.len(), &pa.path).cmp(&(pb.entries.len(), &pb.path))
        });
        self.index.clear();
        for p in order {
            for e in &self.packs[p].index.entries {
                self.index.entry(e.digest).or_insert(Loc {
                    pack: p,
                    offset: e.offset,
                    len: e.len,
                });
            }
        }
    }

    /// Adds a pack just written (its chunks are in no other pack).
    pub(crate) fn add(&mut self, path: &Path) -> Result<(), ChunkError> {
        let pack = OpenPack::open(path)?;
        let p = self.packs.len();
        for e in &pack.index.entries {
            self.index.entry(e.digest).or_insert(Loc {
                pack: p,
                offset: e.offset,
                len: e.len,
            });
        }
        self.packs.push(pack);
        Ok(())
    }

    /// Whether the store holds chunk `d`.
    pub fn contains(&self, d: &Digest) -> bool {
        self.index.contains_key(d)
    }

    /// Packs that could not be read.
    pub fn bad_packs(&self) -> &[ChunkError] {
        &self.bad
    }

    /// Totals over the loaded packs (owned chunks only).
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            packs: self.packs.len(),
            chunks: self.index.len(),
            chunk_bytes: self.index.values().map(|l| u64::from(l.len)).sum(),
            file_bytes: self.packs.iter().map(|p| p.map.bytes().len() as u64).sum(),
        }
    }

    /// Writes page file `file` to `out`, reading, verifying and writing
    /// [`BATCH`] bytes at a time. A missing or corrupt chunk stops it with
    /// an error naming the chunk; with `check_file` the whole file's digest
    /// is checked at the end ([`ChunkError::FileMismatch`]). Bytes already
    /// written to `out` are the caller's to discard on error.
    pub fn write_file(
        &self,
        file: &FileRecipe,
        out: &mut dyn Write,
        out_path: &Path,
        check_file: bool,
    ) -> Result<u64, ChunkError> {
        let mut whole = blake3::Hasher::new();
        let mut written = 0u64;
        let mut i = 0;
        while i < file.chunks.len() {
            // Chunks i..k make at most one batch (always at least one chunk).
            let mut k = i;
            let mut n = 0usize;
            while k < file.chunks.len() && (k == i || n + file.chunks[k].len as usize <= BATCH) {
                n += file.chunks[k].len as usize;
                k += 1;
            }
            let refs = &file.chunks[i..k];
            let pieces = self.pieces(&file.name, refs)?;
            let digests = hash_pieces_and(&pieces, || {
                if check_file {
                    for piece in &pieces {
                        whole.update(piece);
                    }
                }
            });
            for (c, got) in refs.iter().zip(digests) {
                if got != c.digest {
                    let loc = self.index[&c.digest];
                    return Err(ChunkError::CorruptChunk {
                        file: file.name.clone(),
                        digest: c.digest,
                        pack: self.packs[loc.pack].index.path.clone(),
                    });
                }
            }
            write_all_pieces(out, &pieces).map_err(io_err("write", out_path))?;
            written += n as u64;
            i = k;
        }
        let found = Digest::from(whole.finalize());
        if check_file && found != file.blake3 {
            return Err(ChunkError::FileMismatch {
                file: file.name.clone(),
                expected: file.blake3,
                found,
            });
        }
        Ok(written)
    }

    /// The stored bytes of chunks `refs` (not yet verified); a chunk in no
    /// pack, or stored with another length, is an error naming it.
    fn pieces(&self, file: &str, refs: &[super::ChunkRef]) -> Result<Vec<&[u8]>, ChunkError> {
        refs.iter()
            .map(|c| {
                let loc = *self.index.get(&c.digest).ok_or_else(|| ChunkError::MissingChunk {
                    file: file.to_string(),
                    digest: c.digest,
                })?;
                let pack = &self.packs[loc.pack];
                if loc.len != c.len {
                    return Err(ChunkError::CorruptChunk {
                        file: file.to_string(),
                        digest: c.digest,
                        pack: pack.index.path.clone(),
                    });
                }
                Ok(pack.chunk(loc.offset, loc.len))
            })
            .collect()
    }

    /// Reassembles `file` into `target_dir/<name>` (a new 0600 file). On
    /// any error the partial file is removed.
    pub fn reassemble(&self, file: &FileRecipe, target_dir: &Path, how: Reassembly) -> Result<PathBuf, ChunkError> {
        let path = target_dir.join(&file.name);
        let mut out = create_new(&path)?;
        let done = self.write_file(file, &mut out, &path, how.check_file).and_then(|_| {
            if how.durable {
                out.sync_all().map_err(io_err("fsync", &path))?;
            }
            Ok(())
        });
        if let Err(e) = done {
            drop(out);
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        Ok(path)
    }

    /// Checks every chunk that `recipes` (named by checkpoint) use, each
    /// chunk once however many recipes share it, and reports each bad
    /// chunk for every checkpoint and file that uses it.
    pub fn verify<'a>(&self, recipes: impl IntoIterator<Item = (&'a str, &'a Recipe)> + Clone) -> Vec<Problem> {
        let mut used: Vec<Digest> = recipes.clone().into_iter().flat_map(|(_, r)| r.digests()).collect();
        used.sort_unstable();
        used.dedup();
        let mut bad: HashMap<Digest, ChunkProblem> = HashMap::new();
        // Per pack, the used chunks it owns, in file order.
        let mut by_pack: BTreeMap<usize, Vec<(Digest, Loc)>> = BTreeMap::new();
        for d in &used {
            match self.index.get(d) {
                None => {
                    bad.insert(*d, ChunkProblem::Missing);
                }
                Some(loc) => by_pack.entry(loc.pack).or_default().push((*d, *loc)),
            }
        }
        for (p, mut chunks) in by_pack {
            chunks.sort_by_key(|(_, l)| l.offset);
            let pack = &self.packs[p];
            for group in chunks.chunks(BATCH / 4096) {
                let pieces: Vec<&[u8]> = group.iter().map(|(_, l)| pack.chunk(l.offset, l.len)).collect();
                for ((d, _), got) in group.iter().zip(hash_pieces_and(&pieces, || ())) {
                    if got != *d {
                        bad.insert(*d, ChunkProblem::Corrupt(pack.index.path.clone()));
                    }
                }
            }
        }
        let mut problems = Vec::new();
        for (checkpoint, recipe) in recipes {
            for file in &recipe.files {
                let mut seen = HashSet::new();
                for c in &file.chunks {
                    if let Some(problem) = bad.get(&c.digest) {
                        if seen.insert(c.digest) {
                            problems.push(Problem {
                                checkpoint: checkpoint.to_string(),
                                file: file.name.clone(),
                                digest: c.digest,
                                problem: problem.clone(),
                            });
                        }
                    }
                }
            }
        }
        problems
    }

    /// The packs directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entries of pack `p`.
    pub(crate) fn entries(&self, p: usize) -> &[Entry] {
        &self.packs[p].index.entries
    }
}

/// Writes `pieces` in order with as few `writev` calls as it can.
fn write_all_pieces(out: &mut dyn Write, pieces: &[&[u8]]) -> std::io::Result<()> {
    use std::io::IoSlice;
    for group in pieces.chunks(1024) {
        let mut slices: Vec<IoSlice> = group.iter().map(|p| IoSlice::new(p)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            match out.write_vectored(rest) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// `buf` cut into consecutive pieces of the given lengths.
pub(crate) fn split_pieces(buf: &[u8], lens: impl Iterator<Item = u32>) -> Vec<&[u8]> {
    let mut at = 0usize;
    lens.map(|len| {
        let piece = &buf[at..at + len as usize];
        at += len as usize;
        piece
    })
    .collect()
}

/// The BLAKE3 of each piece, hashed on all cores, while `also` runs on a
/// thread of its own (the whole-file hash, which must see the bytes in
/// order and so cannot be split like the pieces).
pub(crate) fn hash_pieces_and(pieces: &[&[u8]], also: impl FnOnce() + Send) -> Vec<Digest> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out = vec![Digest([0; 32]); pieces.len()];
    let per = pieces.len().div_ceil(cores).max(64);
    std::thread::scope(|s| {
        s.spawn(also);
        for (outs, ins) in out.chunks_mut(per).zip(pieces.chunks(per)) {
            s.spawn(move || {
                for (o, piece) in outs.iter_mut().zip(ins) {
                    *o = Digest::of(piece);
                }
            });
        }
    });
    out
}
