//! The other files ckpt reads and does not write itself: `/proc/<pid>/`
//! `mountinfo`, `cgroup` and `stat`, CRIU's `stats-dump` image and
//! `criu --version` output, and the container's OCI `config.json`. None of
//! their parsers may panic, whatever the bytes.
//!
//! The first byte picks the parser so that each one's seeds steer the
//! fuzzer toward its own format; the rest is the file's content.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    if which % 6 == 3 {
        let _ = ckpt::criu::stats::parse_dump_stats(body);
        return;
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    match which % 6 {
        0 => {
            let _ = ckpt::mountinfo::parse(text);
        }
        1 => {
            let _ = ckpt::cgroups::parse_proc_cgroup(text);
        }
        2 => {
            if let Some(stat) = ckpt::procfs::parse_stat(text) {
                assert!(!stat.state.is_whitespace(), "state letter is whitespace in {text:?}");
            }
        }
        4 => {
            let _ = ckpt::spec::parse(Path::new("config.json"), text);
        }
        _ => {
            if let Some(v) = ckpt::criu::version::CriuVersion::parse(text) {
                // What Display writes, parse_plain must read back (metadata
                // stores the version that way).
                let shown = v.to_string();
                assert_eq!(ckpt::criu::version::CriuVersion::parse_plain(&shown), Some(v), "{shown}");
            }
        }
    }
});
