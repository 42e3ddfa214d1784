//! Reading CRIU's `pagemap-*.img`: which virtual addresses the pages of a
//! `pages-<n>.img` belong to, in file order.
//!
//! The format (CRIU `images/pagemap.proto`, `criu/include/magic.h`): a u32
//! `IMG_COMMON_MAGIC`, a u32 `PAGEMAP_MAGIC`, then entries, each a
//! little-endian u32 length and that many bytes of protobuf. The first
//! entry is `pagemap_head { pages_id = 1 }`, naming `pages-<pages_id>.img`;
//! every other one is `pagemap_entry { vaddr = 1, nr_pages = 2, in_parent
//! = 3, flags = 4 }`. The pages of entries flagged `PE_PRESENT` follow one
//! another in the pages file, in entry order.
//!
//! Pure: parses bytes, never touches the filesystem, and never panics or
//! allocates more than its input on malformed input (it is fed files from
//! the store).

/// `IMG_COMMON_MAGIC`, first in every CRIU image but the inventory.
pub const IMG_COMMON_MAGIC: u32 = 0x5456_4319;
/// `PAGEMAP_MAGIC` (also used for shmem pagemaps).
pub const PAGEMAP_MAGIC: u32 = 0x5608_4025;
/// Pages are in the parent image (pre-dump chains), not in this one.
pub const PE_PARENT: u32 = 1 << 0;
/// Pages may be restored lazily; with `PE_PRESENT` still in the file.
pub const PE_LAZY: u32 = 1 << 1;
/// Pages are in this image's pages file.
pub const PE_PRESENT: u32 = 1 << 2;
/// CRIU's page size on the architectures ckpt supports.
pub const PAGE_SIZE: u64 = 4096;

/// One `pagemap_entry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub vaddr: u64,
    pub nr_pages: u32,
    /// `flags`, or what CRIU assumes when the field is absent (old images):
    /// `PE_PARENT` if `in_parent`, else `PE_PRESENT`.
    pub flags: u32,
}

/// A parsed pagemap image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pagemap {
    /// `pages-<pages_id>.img` holds the pages.
    pub pages_id: u32,
    pub entries: Vec<Entry>,
}

/// A run of pages in the pages file: `len` bytes at virtual address
/// `vaddr`, following the previous run in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub vaddr: u64,
    pub len: u64,
}

/// Why a pagemap image could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PagemapError {
    #[error("not a pagemap image (magic {0:#010x} {1:#010x})")]
    Magic(u32, u32),
    #[error("truncated at byte {0}")]
    Truncated(usize),
    #[error("bad protobuf in entry at byte {0}")]
    Protobuf(usize),
    #[error("no pagemap_head")]
    NoHead,
    #[error("entry at byte {0} lacks {1}")]
    MissingField(usize, &'static str),
}

impl Pagemap {
    /// Parses a whole `pagemap-*.img`.
    pub fn parse(bytes: &[u8]) -> Result<Pagemap, PagemapError> {
        let word = |at: usize| -> Result<u32, PagemapError> {
            let b = bytes.get(at..at + 4).ok_or(PagemapError::Truncated(at))?;
            Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
        };
        let (common, magic) = (word(0)?, word(4)?);
        if common != IMG_COMMON_MAGIC || magic != PAGEMAP_MAGIC {
            return Err(PagemapError::Magic(common, magic));
        }
        let mut at = 8;
        let mut head = None;
        let mut entries = Vec::new();
        while at < bytes.len() {
            let len = word(at)? as usize;
            let start = at + 4;
            let body = bytes
                .get(start..start.saturating_add(len))
                .ok_or(PagemapError::Truncated(start))?;
            let fields = fields(body).ok_or(PagemapError::Protobuf(start))?;
            if head.is_none() {
                head = Some(fields.get(1).ok_or(PagemapError::MissingField(start, "pages_id"))? as u32);
            } else {
                let vaddr = fields.get(1).ok_or(PagemapError::MissingField(start, "vaddr"))?;
                let nr_pages = fields.get(2).ok_or(PagemapError::MissingField(start, "nr_pages"))? as u32;
                let flags = match fields.get(4) {
                    Some(f) => f as u32,
                    None if fields.get(3).unwrap_or(0) != 0 => PE_PARENT,
                    None => PE_PRESENT,
                };
                entries.push(Entry { vaddr, nr_pages, flags });
            }
            at = start + len;
        }
        Ok(Pagemap {
            pages_id: head.ok_or(PagemapError::NoHead)?,
            entries,
        })
    }

    /// The runs of pages that are in the pages file, in file order:
    /// entries flagged `PE_PRESENT`, with neighbours that continue each
    /// other in memory merged (CRIU splits runs at its pipe buffer size,
    /// at places that move when earlier pages change).
    pub fn present_runs(&self) -> Vec<Run> {
        let mut runs: Vec<Run> = Vec::new();
        for e in self
            .entries
            .iter()
            .filter(|e| e.flags & PE_PRESENT != 0 && e.nr_pages > 0)
        {
            let len = u64::from(e.nr_pages) * PAGE_SIZE;
            match runs.last_mut() {
                Some(last) if last.vaddr.checked_add(last.len) == Some(e.vaddr) => last.len += len,
                _ => runs.push(Run { vaddr: e.vaddr, len }),
            }
        }
        runs
    }
}

/// The varint fields of a protobuf message (field number → last value),
/// skipping fields of other wire types. `None` if it is malformed.
fn fields(mut msg: &[u8]) -> Option<Fields> {
    let mut out = Fields::default();
    while !msg.is_empty() {
        let key = varint(&mut msg)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                let v = varint(&mut msg)?;
                if field < out.0.len() as u64 {
                    out.0[field as usize] = Some(v);
                }
            }
            1 => msg = msg.get(8..)?,
            2 => {
                let len = usize::try_from(varint(&mut msg)?).ok()?;
                msg = msg.get(len..)?;
            }
            5 => msg = msg.get(4..)?,
            _ => return None,
        }
    }
    Some(out)
}

/// Fields 0..8 of a message; pagemap messages use 1..4.
#[derive(Default)]
struct Fields([Option<u64>; 8]);

impl Fields {
    fn get(&self, n: usize) -> Option<u64> {
        self.0[n]
    }
}

fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// A pagemap image with `entries` as `(vaddr, nr_pages, flags)`
    /// (`flags` `None`: field absent).
    pub(crate) fn image(pages_id: u32, entries: &[(u64, u32, Option<u32>)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(IMG_COMMON_MAGIC.to_le_bytes());
        out.extend(PAGEMAP_MAGIC.to_le_bytes());
        let mut push = |msg: Vec<u8>| {
            out.extend((msg.len() as u32).to_le_bytes());
            out.extend(msg);
        };
        let mut head = vec![0x08];
        put_varint(&mut head, pages_id.into());
        push(head);
        for &(vaddr, nr, flags) in entries {
            let mut m = vec![0x08];
            put_varint(&mut m, vaddr);
            m.push(0x10);
            put_varint(&mut m, nr.into());
            if let Some(f) = flags {
                m.push(0x20);
                put_varint(&mut m, f.into());
            }
            push(m);
        }
        out
    }

    #[test]
    fn parses_head_and_entries_as_criu_writes_them() {
        let img = image(7, &[(0x401000, 1, Some(4)), (0x7f7a1ca00000, 249, Some(6))]);
        let pm = Pagemap::parse(&img).unwrap();
        assert_eq!(pm.pages_id, 7);
        assert_eq!(
            pm.entries,
            vec![
                Entry {
                    vaddr: 0x401000,
                    nr_pages: 1,
                    flags: 4
                },
                Entry {
                    vaddr: 0x7f7a1ca00000,
                    nr_pages: 249,
                    flags: 6
                },
            ]
        );
    }

    #[test]
    fn absent_flags_mean_present_unless_in_parent() {
        let mut img = image(1, &[(0x1000, 1, None)]);
        // An old-style entry with in_parent = true and no flags.
        let msg = [0x08, 0x80, 0x20, 0x10, 0x01, 0x18, 0x01];
        img.extend((msg.len() as u32).to_le_bytes());
        img.extend(msg);
        let pm = Pagemap::parse(&img).unwrap();
        assert_eq!(pm.entries[0].flags, PE_PRESENT);
        assert_eq!(pm.entries[1].flags, PE_PARENT);
    }

    #[test]
    fn runs_merge_neighbours_and_skip_pages_not_in_the_file() {
        // CRIU's split of one mapping at its pipe size, a gap, a parent-only
        // entry, a lazy-but-present one.
        let img = image(
            1,
            &[
                (0x10000, 249, Some(6)),
                (0x10000 + 249 * 4096, 256, Some(6)),
                (0x900000, 2, Some(PE_PARENT)),
                (0x902000, 3, Some(PE_PRESENT)),
                (0xa00000, 1, Some(PE_LAZY | PE_PRESENT)),
            ],
        );
        let runs = Pagemap::parse(&img).unwrap().present_runs();
        assert_eq!(
            runs,
            vec![
                Run {
                    vaddr: 0x10000,
                    len: 505 * 4096
                },
                // Not merged with the parent entry before it: that one is not in the file.
                Run {
                    vaddr: 0x902000,
                    len: 3 * 4096
                },
                Run {
                    vaddr: 0xa00000,
                    len: 4096
                },
            ]
        );
    }

    #[test]
    fn malformed_images_are_errors_not_panics() {
        let good = image(1, &[(0x1000, 2, Some(4))]);
        assert!(matches!(Pagemap::parse(&good[..6]), Err(PagemapError::Truncated(4))));
        assert!(matches!(Pagemap::parse(&[0u8; 8]), Err(PagemapError::Magic(0, 0))));
        assert!(matches!(
            Pagemap::parse(&good[..good.len() - 1]),
            Err(PagemapError::Truncated(_))
        ));
        assert_eq!(Pagemap::parse(&good[..8]), Err(PagemapError::NoHead));
        let mut huge = good[..8].to_vec();
        huge.extend(u32::MAX.to_le_bytes());
        assert!(matches!(Pagemap::parse(&huge), Err(PagemapError::Truncated(12))));
        let mut bad_varint = good[..8].to_vec();
        bad_varint.extend(11u32.to_le_bytes());
        bad_varint.extend([0x08; 1].iter().chain([0xff; 10].iter()));
        assert!(matches!(Pagemap::parse(&bad_varint), Err(PagemapError::Protobuf(12))));
        // Every prefix of a good image parses or fails cleanly.
        for n in 0..good.len() {
            let _ = Pagemap::parse(&good[..n]);
        }
        let no_nr = image(1, &[]);
        let mut no_nr = no_nr;
        no_nr.extend(2u32.to_le_bytes());
        no_nr.extend([0x08, 0x01]);
        assert!(matches!(
            Pagemap::parse(&no_nr),
            Err(PagemapError::MissingField(_, "nr_pages"))
        ));
    }
}
