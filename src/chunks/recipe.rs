//! The recipe of an incremental checkpoint: which chunks make up each of
//! its page files.
//!
//! Binary, because it is long: one entry per 4 KiB page, 262 144 per GiB
//! (as JSON with hex digests a recipe would take ~2 % of the memory it
//! describes, per checkpoint; binary takes 0.9 %). Little-endian:
//!
//! ```text
//! magic     8   "CKPTRCP\n"
//! version   u32 1 (RECIPE_VERSION); a newer one is refused by name
//! files     u32
//! per file: name_len u16, name (UTF-8, a plain file name),
//!           size u64, blake3 [32] (of the whole file),
//!           chunks u64, then per chunk: len u32, blake3 [32]
//! trailer   [32] BLAKE3 of every byte before it
//! ```
//!
//! The recipe lies in the checkpoint directory, so `ckpt.json` records its
//! digest like any other file's and the seal covers it; the trailer lets
//! this module check a recipe on its own (repair, `verify --all`).
//!
//! Pure apart from [`Recipe::read`]; parsing never panics and never
//! allocates more than the input justifies.
use super::fsutil::read_small_file;
use super::{ChunkError, Digest};
use std::collections::BTreeSet;
use std::path::Path;

/// The recipe's file name inside a checkpoint directory.
pub const RECIPE_FILE: &str = "pages.recipe";
/// The recipe format this ckpt writes and the newest it reads.
pub const RECIPE_VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"CKPTRCP\n";
const CHUNK_ENTRY: usize = 4 + 32;

/// One chunk of a page file, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    pub len: u32,
    pub digest: Digest,
}

/// How one page file is made of chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecipe {
    /// The file's name in the checkpoint (`pages-1.img`).
    pub name: String,
    /// Its size: the sum of its chunks' lengths.
    pub size: u64,
    /// The BLAKE3 of the whole file, as `ckpt.json` would record it.
    pub blake3: Digest,
    pub chunks: Vec<ChunkRef>,
}

/// A checkpoint's recipe: its page files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipe {
    pub files: Vec<FileRecipe>,
}

impl Recipe {
    /// Every chunk digest the recipe uses, each once.
    pub fn digests(&self) -> BTreeSet<Digest> {
        self.files
            .iter()
            .flat_map(|f| f.chunks.iter().map(|c| c.digest))
            .collect()
    }

    /// The total size of the page files it describes.
    pub fn logical_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The recipe file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let chunks: usize = self.files.iter().map(|f| f.chunks.len()).sum();
        let mut out = Vec::with_capacity(48 + self.files.len() * 64 + chunks * CHUNK_ENTRY);
        out.extend_from_slice(MAGIC);
        out.extend(RECIPE_VERSION.to_le_bytes());
        out.extend((self.files.len() as u32).to_le_bytes());
        for f in &self.files {
            out.extend((f.name.len() as u16).to_le_bytes());
            out.extend_from_slice(f.name.as_bytes());
            out.extend(f.size.to_le_bytes());
            out.extend_from_slice(&f.blake3.0);
            out.extend((f.chunks.len() as u64).to_le_bytes());
            for c in &f.chunks {
                out.extend(c.len.to_le_bytes());
                out.extend_from_slice(&c.digest.0);
            }
        }
        let trailer = Digest::of(&out);
        out.extend_from_slice(&trailer.0);
        out
    }

    /// Parses and checks a recipe; `path` only names it in errors.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Recipe, ChunkError> {
        let bad = |reason: String| ChunkError::BadRecipe {
            path: path.to_path_buf(),
            reason,
        };
        if bytes.len() < MAGIC.len() + 8 + 32 || &bytes[..8] != MAGIC {
            return Err(bad("not a ckpt recipe".into()));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version > RECIPE_VERSION {
            return Err(ChunkError::FutureRecipe {
                path: path.to_path_buf(),
                found: version,
                supported: RECIPE_VERSION,
            });
        }
        if version == 0 {
            return Err(bad("version 0".into()));
        }
        let (body, trailer) = bytes.split_at(bytes.len() - 32);
        if Digest::of(body).0 != trailer {
            return Err(bad("checksum mismatch".into()));
        }
        let mut r = Reader {
            buf: &body[12..],
            at: 12,
            path,
        };
        let nfiles = r.u32()?;
        let mut files = Vec::new();
        let mut names = BTreeSet::new();
        for _ in 0..nfiles {
            let name_len = usize::from(r.u16()?);
            let name = std::str::from_utf8(r.take(name_len)?)
                .map_err(|_| bad("a file name is not UTF-8".into()))?
                .to_string();
            if !plain_file_name(&name) {
                return Err(bad(format!("{name:?} is not a plain file name")));
            }
            if !names.insert(name.clone()) {
                return Err(bad(format!("{name} is listed twice")));
            }
            let size = r.u64()?;
            let blake3 = r.digest()?;
            let count = r.u64()?;
            // Never trust a count to size an allocation: it must fit the input.
            if count > (r.buf.len() / CHUNK_ENTRY) as u64 {
                return Err(bad(format!("{name}: {count} chunks do not fit the file")));
            }
            let mut chunks = Vec::with_capacity(count as usize);
            let mut total = 0u64;
            for _ in 0..count {
                let len = r.u32()?;
                if len == 0 {
                    return Err(bad(format!("{name}: a chunk of length 0")));
                }
                total += u64::from(len);
                chunks.push(ChunkRef {
                    len,
                    digest: r.digest()?,
                });
            }
            if total != size {
                return Err(bad(format!(
                    "{name}: chunks add up to {total} bytes, the file has {size}"
                )));
            }
            files.push(FileRecipe {
                name,
                size,
                blake3,
                chunks,
            });
        }
        if !r.buf.is_empty() {
            return Err(bad(format!("{} bytes after the last file", r.buf.len())));
        }
        Ok(Recipe { files })
    }

    /// Reads the recipe at `path` (`O_NOFOLLOW`, a regular file).
    pub fn read(path: &Path) -> Result<Recipe, ChunkError> {
        let bytes = read_small_file(path)?;
        Recipe::from_bytes(path, &bytes)
    }
}

/// A single path component ckpt could have written: not empty, `.` or
/// `..`, no `/` or NUL, at most 255 bytes.
pub(crate) fn plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && name.len() <= 255 && !name.contains(['/', '\0'])
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ChunkError> {
        if self.buf.len() < n {
            return Err(ChunkError::BadRecipe {
                path: self.path.to_path_buf(),
                reason: format!("truncated at byte {}", self.at),
            });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        self.at += n;
        Ok(head)
    }
    fn u16(&mut self) -> Result<u16, ChunkError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self) -> Result<u32, ChunkError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, ChunkError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn digest(&mut self) -> Result<Digest, ChunkError> {
        Ok(Digest(self.take(32)?.try_into().expect("32 bytes")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Recipe {
        let c = |n: u8, len| ChunkRef {
            len,
            digest: Digest::of(&[n]),
        };
        Recipe {
            files: vec![
                FileRecipe {
                    name: "pages-1.img".into(),
                    size: 8192 + 100,
                    blake3: Digest::of(b"whole"),
                    chunks: vec![c(1, 4096), c(2, 4096), c(1, 100)],
                },
                FileRecipe {
                    name: "pages-2.img".into(),
                    size: 0,
                    blake3: Digest::of(b""),
                    chunks: vec![],
                },
            ],
        }
    }

    #[test]
    fn round_trips() {
        let r = sample();
        let bytes = r.to_bytes();
        assert_eq!(bytes.len(), 8 + 4 + 4 + (2 + 11 + 8 + 32 + 8) * 2 + 3 * 36 + 32);
        assert_eq!(Recipe::from_bytes(Path::new("r"), &bytes).unwrap(), r);
        assert_eq!(r.digests().len(), 2);
        assert_eq!(r.logical_bytes(), 8292);
    }

    #[test]
    fn damage_is_refused_by_name() {
        let bytes = sample().to_bytes();
        let err = |b: &[u8]| {
            Recipe::from_bytes(Path::new("/c/pages.recipe"), b)
                .unwrap_err()
                .to_string()
        };
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        assert!(err(&flipped).contains("checksum mismatch"), "{}", err(&flipped));
        assert!(err(&bytes[..bytes.len() - 1]).contains("checksum mismatch"));
        assert!(err(b"CKPTRCP").contains("not a ckpt recipe"));
        let mut future = bytes.clone();
        future[8] = 2;
        assert!(matches!(
            Recipe::from_bytes(Path::new("r"), &future),
            Err(ChunkError::FutureRecipe {
                found: 2,
                supported: 1,
                ..
            })
        ));
        // Every truncation fails cleanly (the trailer no longer matches).
        for n in 0..bytes.len() {
            assert!(Recipe::from_bytes(Path::new("r"), &bytes[..n]).is_err());
        }
    }

    /// Internally inconsistent recipes with a valid trailer: what a bug
    /// (or an attacker who rewrites the trailer) could produce.
    #[test]
    fn inconsistent_content_is_refused_even_with_a_good_trailer() {
        let reseal = |mut r: Recipe, edit: &dyn Fn(&mut Recipe)| {
            edit(&mut r);
            r.to_bytes()
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("add up to", reseal(sample(), &|r| r.files[0].size += 1)),
            ("length 0", reseal(sample(), &|r| r.files[0].chunks[0].len = 0)),
            (
                "plain file name",
                reseal(sample(), &|r| r.files[0].name = "../x".into()),
            ),
            (
                "plain file name",
                reseal(sample(), &|r| r.files[0].name = String::new()),
            ),
            (
                "listed twice",
                reseal(sample(), &|r| r.files[1].name = "pages-1.img".into()),
            ),
        ];
        for (want, bytes) in cases {
            let e = Recipe::from_bytes(Path::new("r"), &bytes).unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
        // A chunk count far beyond the input, resealed: refused before allocating.
        let mut bytes = sample().to_bytes();
        let count_at = 8 + 4 + 4 + 2 + 11 + 8 + 32;
        bytes[count_at..count_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        let n = bytes.len() - 32;
        let t = Digest::of(&bytes[..n]);
        bytes[n..].copy_from_slice(&t.0);
        let e = Recipe::from_bytes(Path::new("r"), &bytes).unwrap_err().to_string();
        assert!(e.contains("do not fit"), "{e}");
    }
}
