//! CRIU's `stats-dump` and `stats-restore` images: how long the tasks were
//! frozen, how long the restore took.
//!
//! ```text
//! u32 IMG_SERVICE_MAGIC | u32 STATS_MAGIC | u32 size | StatsEntry (protobuf)
//! StatsEntry { 1: DumpStatsEntry { 1: freezing_time, 2: frozen_time,
//!              3: memdump_time, 4: memwrite_time, 5: pages_scanned,
//!              7: pages_written, ... },
//!              2: RestoreStatsEntry { 1: pages_compared, 2: pages_skipped_cow,
//!              3: forking_time, 4: restore_time, 5: pages_restored } }
//!                                             (times in microseconds)
//! ```
//! Only varint and length-delimited fields occur; a tiny decoder is enough.

/// Dump timings, in microseconds, and page counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DumpStats {
    pub freezing_us: u64,
    pub frozen_us: u64,
    pub memdump_us: u64,
    pub memwrite_us: u64,
    pub pages_scanned: u64,
    pub pages_written: u64,
}

/// Restore timings, in microseconds, and page counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RestoreStats {
    pub pages_compared: u64,
    pub pages_skipped_cow: u64,
    pub forking_us: u64,
    pub restore_us: u64,
    pub pages_restored: u64,
}

const STATS_MAGIC: u32 = 0x5709_3306;

/// The message in field `field` of the file's StatsEntry (1: dump,
/// 2: restore); `None` if the file is not a stats image or lacks it.
fn stats_entry(bytes: &[u8], field: u64) -> Option<&[u8]> {
    let word = |i: usize| -> Option<u32> { Some(u32::from_le_bytes(bytes.get(i..i + 4)?.try_into().ok()?)) };
    if word(4)? != STATS_MAGIC {
        return None;
    }
    let size = word(8)? as usize;
    let entry = bytes.get(12..12 + size)?;
    fields(entry)?.into_iter().find_map(|(n, v)| match v {
        Value::Bytes(b) if n == field => Some(b),
        _ => None,
    })
}

/// Parses a `stats-restore` file; `None` if it is not one.
pub fn parse_restore_stats(bytes: &[u8]) -> Option<RestoreStats> {
    let mut s = RestoreStats::default();
    for (n, x) in counters(bytes, 2)? {
        match n {
            1 => s.pages_compared = x,
            2 => s.pages_skipped_cow = x,
            3 => s.forking_us = x,
            4 => s.restore_us = x,
            5 => s.pages_restored = x,
            _ => {}
        }
    }
    Some(s)
}

/// Parses a `stats-dump` file; `None` if it is not one.
pub fn parse_dump_stats(bytes: &[u8]) -> Option<DumpStats> {
    let mut s = DumpStats::default();
    for (n, x) in counters(bytes, 1)? {
        match n {
            1 => s.freezing_us = x,
            2 => s.frozen_us = x,
            3 => s.memdump_us = x,
            4 => s.memwrite_us = x,
            5 => s.pages_scanned = x,
            7 => s.pages_written = x,
            _ => {}
        }
    }
    Some(s)
}

/// The numeric fields (field number, value) of the stats entry `field`
/// (1: dump, 2: restore); `None` if the file holds no such entry.
fn counters(bytes: &[u8], field: u64) -> Option<Vec<(u64, u64)>> {
    let numbers = fields(stats_entry(bytes, field)?)?
        .into_iter()
        .filter_map(|(n, v)| match v {
            Value::Varint(x) => Some((n, x)),
            Value::Bytes(_) => None,
        })
        .collect();
    Some(numbers)
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn fields(mut b: &[u8]) -> Option<Vec<(u64, Value<'_>)>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b)?;
        let (num, wire) = (key >> 3, key & 7);
        match wire {
            0 => out.push((num, Value::Varint(varint(&mut b)?))),
            2 => {
                let len = varint(&mut b)? as usize;
                let (v, rest) = (b.get(..len)?, b.get(len..)?);
                out.push((num, Value::Bytes(v)));
                b = rest;
            }
            1 => b = b.get(8..)?,
            5 => b = b.get(4..)?,
            _ => return None,
        }
    }
    Some(out)
}

fn varint(b: &mut &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_real_stats_dump() {
        // Written by CRIU 4.1.1 dumping a busybox counter container.
        let bytes = include_bytes!("../../tests/fixtures/stats-dump");
        let s = parse_dump_stats(bytes).unwrap();
        assert_eq!(s.freezing_us, 2594); // varint a2 14
        assert!(s.frozen_us > s.freezing_us);
        assert!(s.pages_scanned > 0);
    }

    /// A stats image around `entry` (a StatsEntry's bytes), as CRIU frames it.
    fn image(entry: &[u8]) -> Vec<u8> {
        let mut b = 0x5510_5940u32.to_le_bytes().to_vec(); // IMG_SERVICE_MAGIC
        b.extend(STATS_MAGIC.to_le_bytes());
        b.extend((entry.len() as u32).to_le_bytes());
        b.extend(entry);
        b
    }

    #[test]
    fn parses_a_stats_restore() {
        // StatsEntry { 2: RestoreStatsEntry { 1: 0, 2: 0, 3: 300 (ac 02),
        // 4: 70000 (f0 a2 04), 5: 14 } }, the shape CRIU 4.1.1 writes.
        let restore = [0x08, 0, 0x10, 0, 0x18, 0xac, 0x02, 0x20, 0xf0, 0xa2, 0x04, 0x28, 14];
        let mut entry = vec![0x12, restore.len() as u8];
        entry.extend(restore);
        let s = parse_restore_stats(&image(&entry)).unwrap();
        assert_eq!(
            s,
            RestoreStats {
                pages_compared: 0,
                pages_skipped_cow: 0,
                forking_us: 300,
                restore_us: 70_000,
                pages_restored: 14,
            }
        );
        // A stats-restore is not a stats-dump, nor the other way round.
        assert_eq!(parse_dump_stats(&image(&entry)), None);
        assert_eq!(
            parse_restore_stats(include_bytes!("../../tests/fixtures/stats-dump")),
            None
        );
    }

    #[test]
    fn rejects_other_files() {
        assert_eq!(parse_dump_stats(b"not a stats file at all"), None);
        assert_eq!(parse_dump_stats(&[]), None);
        let mut truncated = include_bytes!("../../tests/fixtures/stats-dump").to_vec();
        truncated.truncate(20);
        assert_eq!(parse_dump_stats(&truncated), None);
        assert_eq!(parse_restore_stats(&truncated), None);
        assert_eq!(parse_restore_stats(b"not a stats file at all"), None);
    }
}
