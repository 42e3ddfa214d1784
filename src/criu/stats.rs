//! CRIU's `stats-dump` image: how long the tasks were frozen.
//!
//! ```text
//! u32 IMG_SERVICE_MAGIC | u32 STATS_MAGIC | u32 size | StatsEntry (protobuf)
//! StatsEntry { 1: DumpStatsEntry { 1: freezing_time, 2: frozen_time,
//!              3: memdump_time, 4: memwrite_time, 5: pages_scanned,
//!              7: pages_written, ... } }      (times in microseconds)
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

const STATS_MAGIC: u32 = 0x5709_3306;

/// Parses a `stats-dump` file; `None` if it is not one.
pub fn parse_dump_stats(bytes: &[u8]) -> Option<DumpStats> {
    let word = |i: usize| -> Option<u32> { Some(u32::from_le_bytes(bytes.get(i..i + 4)?.try_into().ok()?)) };
    if word(4)? != STATS_MAGIC {
        return None;
    }
    let size = word(8)? as usize;
    let entry = bytes.get(12..12 + size)?;
    // Field 1 of StatsEntry is the DumpStatsEntry message.
    let dump = fields(entry)?.into_iter().find_map(|(n, v)| match (n, v) {
        (1, Value::Bytes(b)) => Some(b),
        _ => None,
    })?;
    let mut s = DumpStats::default();
    for (n, v) in fields(dump)? {
        if let Value::Varint(x) = v {
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
    }
    Some(s)
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

    #[test]
    fn rejects_other_files() {
        assert_eq!(parse_dump_stats(b"not a stats file at all"), None);
        assert_eq!(parse_dump_stats(&[]), None);
        let mut truncated = include_bytes!("../../tests/fixtures/stats-dump").to_vec();
        truncated.truncate(20);
        assert_eq!(parse_dump_stats(&truncated), None);
    }
}
