//! Memory of one process, from `/proc/<pid>/smaps_rollup` and `maps`.
//!
//! Promises a [`MemorySummary`] in bytes. Never fails because a process
//! has no `smaps_rollup` (kernels before 4.14, or fixture trees): the
//! resident figures are then zero, which only makes the size estimate low.

use super::{InventoryError, MemorySummary};
use crate::procfs::Process;

/// Reads the memory summary of `process`.
pub(super) fn read_memory(process: &Process) -> Result<MemorySummary, InventoryError> {
    let mut summary = MemorySummary::default();
    if let Some(text) = process.read_optional("smaps_rollup")? {
        let (rss, anon_rss) = parse_smaps_rollup(&text);
        summary.rss = rss;
        summary.anon_rss = anon_rss;
    }
    if let Some(text) = process.read_optional("maps")? {
        let maps = parse_maps(&text);
        summary.anon_mapped = maps.anon;
        summary.file_mapped = maps.file;
        summary.map_count = maps.count;
    }
    Ok(summary)
}

/// `(Rss, Anonymous)` of an `smaps_rollup` file, in bytes. Absent lines count
/// as zero.
fn parse_smaps_rollup(text: &str) -> (u64, u64) {
    let mut rss = 0;
    let mut anon = 0;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match key.trim() {
            "Rss" => &mut rss,
            "Anonymous" => &mut anon,
            _ => continue,
        };
        *slot = parse_kib(value).unwrap_or(0);
    }
    (rss, anon)
}

/// Parses `"   1234 kB"` into bytes.
fn parse_kib(value: &str) -> Option<u64> {
    let mut words = value.split_whitespace();
    let number: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => number.checked_mul(1024),
        Some(_) => None,
    }
}

/// Sizes of the mappings listed in a `maps` file.
#[derive(Debug, Default, PartialEq, Eq)]
struct MapTotals {
    anon: u64,
    file: u64,
    count: u64,
}

/// Sums a `maps` file. A line looks like
/// `7f00-7f10 r-xp 00000000 08:01 1234   /usr/lib/libc.so.6`.
fn parse_maps(text: &str) -> MapTotals {
    let mut totals = MapTotals::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(_perms), Some(_offset), Some(_dev), Some(inode)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            continue;
        };
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16)) else {
            continue;
        };
        let size = end.saturating_sub(start);
        let path = fields.next().unwrap_or("");
        totals.count += 1;
        if is_file_backed(inode, path) {
            totals.file += size;
        } else {
            totals.anon += size;
        }
    }
    totals
}

/// A mapping is file-backed when it has an inode, except shared anonymous
/// memory: the kernel backs `MAP_SHARED|MAP_ANONYMOUS` and SysV shm with
/// hidden shmem inodes (`/dev/zero (deleted)`, `/SYSV...`), and CRIU dumps
/// those pages like anonymous ones.
fn is_file_backed(inode: &str, path: &str) -> bool {
    let has_inode = inode.parse::<u64>().map(|i| i != 0).unwrap_or(false);
    has_inode && !path.starts_with("/dev/zero") && !path.starts_with("/SYSV")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLLUP: &str = "\
55d0c0000000-7ffc00000000 ---p 00000000 00:00 0                          [rollup]
Rss:                2048 kB
Pss:                1024 kB
Pss_Anon:            512 kB
Anonymous:           768 kB
Swap:                  0 kB
";

    const MAPS: &str = "\
00400000-00401000 r-xp 00000000 08:01 1234                               /usr/bin/app
00600000-00602000 rw-p 00000000 00:00 0                                  [heap]
7f0000000000-7f0000003000 rw-s 00000000 00:01 77                         /dev/zero (deleted)
7f0000010000-7f0000014000 r--p 00000000 08:01 99                         /usr/lib/libc.so.6
7ffc00000000-7ffc00001000 rw-p 00000000 00:00 0
";

    #[test]
    fn smaps_rollup_gives_rss_and_anonymous_in_bytes() {
        assert_eq!(parse_smaps_rollup(ROLLUP), (2048 * 1024, 768 * 1024));
    }

    #[test]
    fn maps_split_file_and_anonymous_with_shared_anon_as_anonymous() {
        let totals = parse_maps(MAPS);
        assert_eq!(
            totals,
            MapTotals {
                file: 0x1000 + 0x4000,
                anon: 0x2000 + 0x3000 + 0x1000,
                count: 5
            }
        );
    }

    #[test]
    fn missing_smaps_rollup_and_maps_give_zeros() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("1")).unwrap();
        let process = crate::procfs::ProcRoot::new(dir.path()).process(1);
        assert_eq!(read_memory(&process).unwrap(), MemorySummary::default());
    }

    #[test]
    fn read_memory_combines_both_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("1")).unwrap();
        std::fs::write(dir.path().join("1/smaps_rollup"), ROLLUP).unwrap();
        std::fs::write(dir.path().join("1/maps"), MAPS).unwrap();
        let summary = read_memory(&crate::procfs::ProcRoot::new(dir.path()).process(1)).unwrap();
        assert_eq!(summary.rss, 2048 * 1024);
        assert_eq!(summary.anon_rss, 768 * 1024);
        assert_eq!(summary.file_mapped, 0x5000);
        assert_eq!(summary.map_count, 5);
    }
}
