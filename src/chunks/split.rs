//! Where a page file is cut into chunks. Pure.
//!
//! Two rules, both page-aligned:
//! - [`ChunkRule::Address`] (the one ckpt uses): within each run of
//!   contiguous present pages (from the pagemap), cut at every virtual
//!   address that is a multiple of the chunk size, and at the run's ends.
//!   A page keeps its chunk boundaries wherever CRIU puts it in the file,
//!   so a mapping that grows, shrinks or appears before it costs only the
//!   chunks it touches.
//! - [`ChunkRule::FileOffset`]: cut at file offsets that are multiples of
//!   the chunk size. Needs no pagemap, but one page more or less anywhere
//!   shifts every chunk after it. Used when the pagemap cannot be read or
//!   does not add up to the file, and kept for the measurements.
//!
//! Either way the spans cover the file exactly, in order, with no span
//! longer than the chunk size.
use super::pagemap::{Run, PAGE_SIZE};

/// The chunk size ckpt uses, chosen by measurement (docs/incremental.md):
/// one page. Writes that scatter over memory change one chunk per page they
/// touch, not one per 16 or 256 pages.
pub const CHUNK_SIZE: u32 = 4096;

/// How to cut a page file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkRule {
    Address,
    FileOffset,
}

/// A byte range of the page file that becomes one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub offset: u64,
    pub len: u32,
}

/// Why a chunk size is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chunk size {0} is not a power of two between 4 KiB and 16 MiB")]
pub struct BadChunkSize(pub u32);

/// Checks that `size` is a page multiple that divides address space evenly.
pub fn check_chunk_size(size: u32) -> Result<(), BadChunkSize> {
    if size.is_power_of_two() && u64::from(size) >= PAGE_SIZE && size <= 16 << 20 {
        Ok(())
    } else {
        Err(BadChunkSize(size))
    }
}

/// The spans of a page file of `file_len` bytes. `runs` are its pagemap's
/// present runs; with [`ChunkRule::Address`] they are used only if they add
/// up to `file_len` (else the file-offset rule applies; see
/// [`plan_with_fallback`] to learn which was used).
pub fn plan(rule: ChunkRule, chunk_size: u32, file_len: u64, runs: Option<&[Run]>) -> Result<Vec<Span>, BadChunkSize> {
    plan_with_fallback(rule, chunk_size, file_len, runs).map(|(spans, _)| spans)
}

/// [`plan`], also saying which rule it applied.
pub fn plan_with_fallback(
    rule: ChunkRule,
    chunk_size: u32,
    file_len: u64,
    runs: Option<&[Run]>,
) -> Result<(Vec<Span>, ChunkRule), BadChunkSize> {
    check_chunk_size(chunk_size)?;
    let usable = runs.filter(|r| r.iter().map(|r| r.len).sum::<u64>() == file_len && !r.is_empty());
    match (rule, usable) {
        (ChunkRule::Address, Some(runs)) => Ok((by_address(chunk_size, runs), ChunkRule::Address)),
        _ => Ok((by_offset(chunk_size, file_len), ChunkRule::FileOffset)),
    }
}

fn by_offset(chunk_size: u32, file_len: u64) -> Vec<Span> {
    let size = u64::from(chunk_size);
    (0..file_len.div_ceil(size))
        .map(|i| Span {
            offset: i * size,
            len: (file_len - i * size).min(size) as u32,
        })
        .collect()
}

fn by_address(chunk_size: u32, runs: &[Run]) -> Vec<Span> {
    let size = u64::from(chunk_size);
    let mut spans = Vec::new();
    let mut offset = 0u64;
    for run in runs {
        let end = run.vaddr.saturating_add(run.len);
        let mut at = run.vaddr;
        while at < end {
            // The next multiple of the chunk size, or the run's end.
            let next = (at / size + 1).saturating_mul(size).min(end);
            let len = next - at;
            spans.push(Span {
                offset,
                len: len as u32,
            });
            offset += len;
            at = next;
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = PAGE_SIZE;

    fn lens(spans: &[Span]) -> Vec<u64> {
        spans.iter().map(|s| u64::from(s.len)).collect()
    }

    fn covers(spans: &[Span], len: u64) {
        let mut at = 0;
        for s in spans {
            assert_eq!(s.offset, at);
            at += u64::from(s.len);
        }
        assert_eq!(at, len);
    }

    #[test]
    fn chunk_sizes_must_be_page_powers_of_two() {
        for ok in [4096, 16384, 1 << 20, 16 << 20] {
            assert!(check_chunk_size(ok).is_ok(), "{ok}");
        }
        for bad in [0, 2048, 4097, 12288, 32 << 20] {
            assert_eq!(check_chunk_size(bad), Err(BadChunkSize(bad)));
        }
    }

    #[test]
    fn table_of_plans() {
        let run = |vaddr: u64, pages: u64| Run { vaddr, len: pages * P };
        // (rule, chunk size, file length, runs, expected lengths in pages, rule used)
        type Case = (ChunkRule, u32, u64, Option<Vec<Run>>, Vec<u64>, ChunkRule);
        let cases: Vec<Case> = vec![
            // Offset rule: fixed pieces, a short last one.
            (
                ChunkRule::FileOffset,
                16384,
                10 * P,
                None,
                vec![4, 4, 2],
                ChunkRule::FileOffset,
            ),
            (
                ChunkRule::FileOffset,
                4096,
                3 * P,
                None,
                vec![1, 1, 1],
                ChunkRule::FileOffset,
            ),
            (ChunkRule::FileOffset, 16384, 0, None, vec![], ChunkRule::FileOffset),
            // Address rule: a run starting mid-chunk is cut at the next multiple.
            (
                ChunkRule::Address,
                16384,
                10 * P,
                Some(vec![run(0x10000 + 3 * P, 10)]),
                vec![1, 4, 4, 1],
                ChunkRule::Address,
            ),
            // Two runs: each cut on its own, never a chunk across the gap.
            (
                ChunkRule::Address,
                16384,
                5 * P,
                Some(vec![run(0x10000, 2), run(0x20000 + 2 * P, 3)]),
                vec![2, 2, 1],
                ChunkRule::Address,
            ),
            // Runs that do not add up to the file: fall back to offsets.
            (
                ChunkRule::Address,
                16384,
                9 * P,
                Some(vec![run(0x10000, 8)]),
                vec![4, 4, 1],
                ChunkRule::FileOffset,
            ),
            // No pagemap, or an empty one for a non-empty file.
            (
                ChunkRule::Address,
                16384,
                5 * P,
                None,
                vec![4, 1],
                ChunkRule::FileOffset,
            ),
            (
                ChunkRule::Address,
                16384,
                5 * P,
                Some(vec![]),
                vec![4, 1],
                ChunkRule::FileOffset,
            ),
            // One page chunks: the rules agree.
            (
                ChunkRule::Address,
                4096,
                3 * P,
                Some(vec![run(0x7000, 3)]),
                vec![1, 1, 1],
                ChunkRule::Address,
            ),
        ];
        for (rule, size, len, runs, want, used) in cases {
            let (spans, got_rule) = plan_with_fallback(rule, size, len, runs.as_deref()).unwrap();
            covers(&spans, len);
            assert!(spans.iter().all(|s| s.len <= size && s.len > 0));
            assert_eq!(
                lens(&spans),
                want.iter().map(|p| p * P).collect::<Vec<_>>(),
                "{rule:?} {runs:?}"
            );
            assert_eq!(got_rule, used, "{rule:?} {runs:?}");
        }
    }

    /// What the rule is for: pages moved to a later file offset (a page
    /// appeared before them) keep their chunks by address, not by offset.
    #[test]
    fn a_shift_in_the_file_keeps_address_chunks() {
        let big = Run {
            vaddr: 0x100000,
            len: 64 * P,
        };
        let before = [Run { vaddr: 0x1000, len: P }, big];
        let after = [
            Run {
                vaddr: 0x1000,
                len: 2 * P,
            },
            big,
        ];
        // The big run's spans, as (offset from the run's start in the file, length).
        let in_big = |spans: &[Span], start: u64| -> Vec<(u64, u32)> {
            spans
                .iter()
                .filter(|s| s.offset >= start)
                .map(|s| (s.offset - start, s.len))
                .collect()
        };
        let a = plan(ChunkRule::Address, 65536, 65 * P, Some(&before)).unwrap();
        let b = plan(ChunkRule::Address, 65536, 66 * P, Some(&after)).unwrap();
        assert_eq!(in_big(&a, P), in_big(&b, 2 * P));
        assert_eq!(in_big(&a, P).len(), 4);
        // By offset, every cut in the big run moved by a page.
        let a = plan(ChunkRule::FileOffset, 65536, 65 * P, None).unwrap();
        let b = plan(ChunkRule::FileOffset, 65536, 66 * P, None).unwrap();
        assert_ne!(in_big(&a, P), in_big(&b, 2 * P));
    }
}
