//! The chunk store (`src/chunks/`) on real CRIU images, before any command
//! uses it: real checkpoints' page files are chunked (their real pagemaps
//! parsed), removed from the checkpoint, collected, reassembled, and the
//! checkpoint restored by the real `ckpt start`. Root only: run with
//! `cargo test --test chunks_e2e -- --test-threads=1` as root. Without
//! root or criu/runc they print `SKIPPED:` and pass, except under
//! `CI=true`, where they fail.

mod common;

use std::fs;
use std::path::Path;
use std::thread;
use std::time::Duration;

use ckpt::chunks::images::{is_page_file, page_files};
use ckpt::chunks::{ChunkStore, CollectPolicy, Reassembly, Recipe};
use common::{expect_code, prereqs, wait_until, Container, Runtime, Store};

const WAIT: Duration = Duration::from_secs(10);

fn remove_page_files(dir: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if is_page_file(e.file_name().to_str().unwrap()) {
            fs::remove_file(e.path()).unwrap();
        }
    }
}

/// Two `--leave-running` checkpoints of one container share most pages;
/// with their page files replaced by chunks, the older one removed and its
/// chunks collected, the newer one reassembles byte for byte (ckpt's own
/// verify agrees) and restores with its counter continuing.
#[test]
fn real_checkpoints_dedup_collect_reassemble_and_restore() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().ballast_mb(16).start();
    c.wait_counter_above(10, WAIT).expect("counter warms up");
    expect_code(&store.ckpt(["create", "-R", &c.id, "one"]), 0, "ckpt create one");
    let at_one = c.counter().expect("counter after one");
    c.wait_counter_above(at_one + 5, WAIT).expect("counter runs on");
    expect_code(&store.ckpt(["create", "-R", &c.id, "two"]), 0, "ckpt create two");
    let after_two = c.counter().expect("counter after two");
    let (one, two) = (store.checkpoint_dir(&c.id, "one"), store.checkpoint_dir(&c.id, "two"));

    let chunks = ChunkStore::open(&store.path().join(&c.id).join("chunks")).unwrap();
    let mut recipes = Vec::new();
    for dir in [&one, &two] {
        let files = page_files(dir).unwrap();
        assert!(!files.is_empty() && files.iter().all(|f| f.runs.is_some()), "{files:?}");
        let mut w = chunks.writer(WAIT).unwrap();
        let recipe = w.add_page_files(dir).unwrap();
        let stats = w.stats();
        drop(w.commit().unwrap());
        // CRIU's own pagemaps added up to every page file: cut by address.
        assert_eq!(stats.cut_by_offset, 0, "{stats:?}");
        recipes.push((recipe, stats));
    }
    let (first, second) = (recipes[0].1, recipes[1].1);
    // The 16 MiB ballast is one repeated page: stored once.
    assert!(first.new_bytes * 4 < first.bytes, "{first:?}");
    // Most of the second checkpoint was already there.
    assert!(second.new_bytes * 10 < second.bytes, "{first:?} {second:?}");
    remove_page_files(&one);
    remove_page_files(&two);

    // Remove "one" and collect against what is left: "two" alone.
    let before = chunks.reader(WAIT).unwrap().stats();
    fs::remove_dir_all(&one).unwrap();
    let two_recipe: Recipe = recipes[1].0.clone();
    let report = chunks
        .session(WAIT)
        .unwrap()
        .collect([&two_recipe], CollectPolicy::EXACT)
        .unwrap();
    let after = chunks.reader(WAIT).unwrap().stats();
    assert!(report.missing.is_empty() && report.corrupt.is_empty(), "{report:?}");
    assert_eq!(after.chunks, two_recipe.digests().len(), "{before:?} → {after:?}");

    // Reassemble into the checkpoint: ckpt's verify (the checksums of
    // ckpt.json, taken at create) finds every file as it was dumped.
    let reader = chunks.reader(WAIT).unwrap();
    for f in &two_recipe.files {
        reader.reassemble(f, &two, Reassembly::RESTORE).unwrap();
    }
    drop(reader);
    expect_code(
        &store.ckpt(["verify", &c.id, "two"]),
        0,
        "ckpt verify of the reassembled checkpoint",
    );

    // And it restores: the counter continues from checkpoint two.
    Runtime::Runc.destroy(&c.id);
    assert!(wait_until(Duration::from_secs(5), || c.status().is_none()));
    fs::write(c.rootfs.join("tmp/count"), "0\n").unwrap();
    expect_code(
        &store.ckpt(["start", "--checkpoint", "two", &c.id]),
        0,
        "ckpt start two",
    );
    let restored = c.wait_counter_above(0, WAIT).expect("restored counter ticks");
    assert!(
        restored > at_one + 4 && restored <= after_two + 3,
        "restored counter {restored} is not checkpoint two's (taken after {at_one}, before {after_two})"
    );
    thread::sleep(Duration::from_millis(300));
    assert!(c.wait_counter_above(restored, WAIT).is_some(), "restored counter stuck");
}
