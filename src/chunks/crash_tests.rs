//! Crash tests: every operation cut at every step that changes the disk.
//!
//! For each step n, a fresh container gets two published checkpoints, the
//! operation runs with [`FailAt`]`(n)` (step n and all later ones fail,
//! as after a crash), and then, without faults:
//! 1. the published checkpoints are the old set or the new set, nothing
//!    in between;
//! 2. every published checkpoint reassembles, byte for byte, to the
//!    pages it was made from (so every chunk its recipe names exists);
//! 3. after the next command's repair no chunk that nothing references
//!    remains, no temp file remains, and 2. still holds.
//!
//! The loop ends at the first n the operation survives, and checks that
//! it went through the steps it should have. What this cannot model is a
//! crash that loses unsynced data; the order of fsyncs that covers that
//! is argued in `store.rs` and docs/incremental.md.
use super::faults::FailAt;
use super::tests::{page, Harness};
use super::*;
use std::collections::BTreeSet;
use std::fs;
use std::sync::Arc;

/// Pages (tags) of the checkpoints: c3 shares with both c1 and c2 and has
/// new pages of its own; removing c1 leaves its pack partly dead.
const C1: &[u64] = &[1, 2, 3, 4, 5, 6];
const C2: &[u64] = &[1, 2, 3, 4, 15, 16];
const C3: &[u64] = &[1, 2, 13, 14, 15, 26];

fn pages_of(name: &str) -> &'static [u64] {
    match name {
        "c1" => C1,
        "c2" => C2,
        "c3" => C3,
        _ => unreachable!(),
    }
}

fn base() -> Harness {
    let h = Harness::new();
    for name in ["c1", "c2"] {
        h.create(name, &h.images(name, 0x7f00_0000_0000, pages_of(name)))
            .unwrap();
    }
    h
}

fn published_names(h: &Harness) -> BTreeSet<String> {
    h.published().into_iter().map(|(n, _)| n).collect()
}

/// Invariant 2: each published checkpoint reassembles to its pages.
fn all_restorable(h: &Harness, context: &str) {
    for name in published_names(h) {
        let out = h
            .restore(&name)
            .unwrap_or_else(|e| panic!("{context}: {name} not restorable: {e}"));
        let want: Vec<u8> = pages_of(&name).iter().flat_map(|&t| page(t)).collect();
        assert_eq!(fs::read(out.join("pages-1.img")).unwrap(), want, "{context}: {name}");
    }
}

/// Invariant 3: after repair, exactly the referenced chunks are stored.
fn repaired_exactly(h: &Harness, context: &str) {
    h.repair().unwrap_or_else(|e| panic!("{context}: repair failed: {e}"));
    let used: BTreeSet<Digest> = h.published().iter().flat_map(|(_, r)| r.digests()).collect();
    assert_eq!(h.stored(), used, "{context}: stored chunks after repair");
    let reader = h.chunks.reader(tests::WAIT).unwrap();
    let per_pack: usize = reader.packs.iter().map(|p| p.index.entries.len()).sum();
    assert_eq!(per_pack, used.len(), "{context}: a chunk stored twice after repair");
    drop(reader);
    let tmp = fs::read_dir(h.chunks.dir().join(".tmp")).unwrap().count();
    assert_eq!(tmp, 0, "{context}: temp files left after repair");
    all_restorable(h, context);
}

/// Runs `op` cut at every step; `old` and `new` are the allowed published
/// sets after it. Returns the steps of the uncut run.
fn cut_everywhere(
    what: &str,
    old: &[&str],
    new: &[&str],
    op: impl Fn(&Harness) -> Result<(), ChunkError>,
) -> Vec<&'static str> {
    let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    for n in 0.. {
        let h = base();
        let faults = Arc::new(FailAt::new(n));
        let result = op(&h.with_faults(faults.clone()));
        let context = format!("{what} cut at step {n} after {:?}", faults.passed());
        if !faults.fired() {
            result.unwrap_or_else(|e| panic!("{context}: failed without a fault: {e}"));
            assert_eq!(published_names(&h), set(new), "{context}");
            all_restorable(&h, &context);
            repaired_exactly(&h, &context);
            return faults.passed();
        }
        match result {
            Err(ChunkError::Injected { .. }) => {}
            other => panic!("{context}: expected the injected fault, got {other:?}"),
        }
        let names = published_names(&h);
        assert!(names == set(old) || names == set(new), "{context}: published {names:?}");
        all_restorable(&h, &context);
        repaired_exactly(&h, &context);
    }
    unreachable!()
}

fn create_c3(h: &Harness) -> Result<(), ChunkError> {
    let images = h.images("c3", 0x7f00_0000_0000, C3);
    h.create("c3", &images).map(drop)
}

#[test]
fn create_cut_at_every_step() {
    let steps = cut_everywhere("create", &["c1", "c2"], &["c1", "c2", "c3"], create_c3);
    for want in [
        "create pack",
        "write chunk",
        "fsync pack",
        "rename pack",
        "fsync packs dir",
        "publish",
    ] {
        assert!(steps.contains(&want), "{want} not in {steps:?}");
    }
}

#[test]
fn remove_of_the_first_checkpoint_cut_at_every_step() {
    // c1's pack still holds chunks c2 uses: removal rewrites it.
    let steps = cut_everywhere("rm c1", &["c1", "c2"], &["c2"], |h| h.remove("c1").map(drop));
    for want in ["unpublish", "create pack", "rename pack", "remove pack", "delete trash"] {
        assert!(steps.contains(&want), "{want} not in {steps:?}");
    }
}

#[test]
fn remove_of_the_last_checkpoint_cut_at_every_step() {
    let steps = cut_everywhere("rm c2", &["c1", "c2"], &["c1"], |h| h.remove("c2").map(drop));
    assert!(steps.contains(&"remove pack"), "{steps:?}");
}

/// `create --retain 1`: the create, then removal of the older ones, in
/// one go. Cut anywhere, the published set is one of the stages.
#[test]
fn create_with_retention_cut_at_every_step() {
    let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let stages = [
        set(&["c1", "c2"]),
        set(&["c1", "c2", "c3"]),
        set(&["c2", "c3"]),
        set(&["c3"]),
    ];
    for n in 0.. {
        let h = base();
        let faults = Arc::new(FailAt::new(n));
        let f = h.with_faults(faults.clone());
        let result = create_c3(&f).and_then(|()| f.remove("c1")).and_then(|_| f.remove("c2"));
        let context = format!("create+retain cut at step {n} after {:?}", faults.passed());
        let names = published_names(&h);
        assert!(stages.contains(&names), "{context}: published {names:?}");
        all_restorable(&h, &context);
        repaired_exactly(&h, &context);
        if !faults.fired() {
            result.unwrap();
            assert_eq!(names, set(&["c3"]));
            break;
        }
    }
}

/// A repair that is itself cut (say a second crash during the next
/// command) still leaves every checkpoint restorable, and the one after
/// it finishes the job.
#[test]
fn repair_cut_at_every_step() {
    for n in 0.. {
        let h = base();
        // Leave garbage: c3's chunks committed, its publish never happened,
        // and c1 unpublished without collection.
        {
            let mut w = h.chunks.writer(tests::WAIT).unwrap();
            w.add_page_files(&h.images("c3", 0x7f00_0000_0000, C3)).unwrap();
            drop(w.commit().unwrap());
        }
        fs::rename(h.root().join("checkpoints/c1"), h.root().join("staging/c1.rm")).unwrap();
        let faults = Arc::new(FailAt::new(n));
        let result = h.with_faults(faults.clone()).repair();
        let context = format!("repair cut at step {n} after {:?}", faults.passed());
        assert_eq!(
            published_names(&h),
            ["c2".to_string()].into_iter().collect(),
            "{context}"
        );
        all_restorable(&h, &context);
        repaired_exactly(&h, &context);
        if !faults.fired() {
            let report = result.unwrap();
            assert!(report.bytes_freed > 0, "{context}: {report:?}");
            break;
        }
    }
}
