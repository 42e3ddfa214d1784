//! A checkpoint archive comes from another machine, a registry or a
//! user: `archive::read_archive` must refuse bad bytes without panicking,
//! within its limits, and never write beside the staging directory it was
//! given, whatever the bytes. What it accepts as a ckpt archive must have
//! every file its manifest declares, each verified.
#![no_main]

use ckpt::archive::{read_archive, ArchiveKind, Limits, ReadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parent = tempfile::tempdir().expect("a temp dir");
    let staging = parent.path().join("staging");
    std::fs::create_dir(&staging).expect("the staging dir");
    let opts = ReadOptions {
        limits: Limits {
            max_bytes: 16 << 20,
            max_entries: 4096,
            max_json_bytes: 1 << 20,
        },
        allow_setuid: false,
        unpack_rootfs: true,
        // The ratio limit alone: the bound asserted below.
        declared_max_bytes: None,
    };
    let result = read_archive(data, &staging, &opts);
    let beside: Vec<_> = std::fs::read_dir(parent.path())
        .expect("list the parent")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    assert_eq!(beside, [std::ffi::OsString::from("staging")], "wrote beside staging");
    if let Ok(report) = result {
        if report.kind == ArchiveKind::Ckpt {
            let m = report.manifest.as_ref().expect("a ckpt archive has its manifest");
            for name in m.entries.keys() {
                assert!(report.files[name].verified, "{name} accepted unverified");
            }
        }
        assert!(report.bytes <= opts.limits.max_bytes);
    }
});
