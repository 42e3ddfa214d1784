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
    start_two_and_see_it_continue(&store, &c, at_one, after_two);
}

/// Flips one byte of chunk data in the first pack of `chunks`; returns
/// the pack and the offset, to flip it back.
fn flip_a_chunk_byte(chunks: &Path) -> (std::path::PathBuf, usize) {
    let mut packs: Vec<_> = fs::read_dir(chunks.join("packs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    packs.sort();
    let pack = packs.first().expect("a pack").clone();
    let mut bytes = fs::read(&pack).unwrap();
    // Chunk data starts at 4096 (packs keep chunks block-aligned).
    let at = 4096 + 17;
    bytes[at] ^= 0x40;
    fs::write(&pack, bytes).unwrap();
    (pack, at)
}

fn new_bytes(out: &std::process::Output) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("create --json");
    v["incremental"]["new_bytes"].as_u64().expect("incremental.new_bytes")
}

/// The wired verbs on a real runc container: two `create --incremental
/// -R`, the second storing fewer new bytes; `rm` of the first; a flipped
/// byte in a chunk makes `start` exit 7 naming the chunk, nothing started;
/// mended, `start` of the second continues the counter.
#[test]
fn incremental_creates_share_chunks_and_a_corrupt_chunk_refuses_the_start() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().ballast_mb(16).start();
    c.wait_counter_above(10, WAIT).expect("counter warms up");
    let one = store.ckpt(["create", "--incremental", "-R", "--json", &c.id, "one"]);
    expect_code(&one, 0, "ckpt create --incremental one");
    let at_one = c.counter().expect("counter after one");
    c.wait_counter_above(at_one + 5, WAIT).expect("counter runs on");
    let two = store.ckpt(["create", "--incremental", "-R", "--json", &c.id, "two"]);
    expect_code(&two, 0, "ckpt create --incremental two");
    let after_two = c.counter().expect("counter after two");
    let (first, second) = (new_bytes(&one), new_bytes(&two));
    assert!(
        second < first,
        "the second stored {second} new bytes, the first {first}"
    );
    let dir = store.checkpoint_dir(&c.id, "two");
    assert!(dir.join("pages.recipe").is_file());
    assert!(!fs::read_dir(&dir)
        .unwrap()
        .any(|e| is_page_file(e.unwrap().file_name().to_str().unwrap())));

    // ls: each holds less alone than it amounts to (most chunks shared).
    for row in store.ls(Some(&c.id)) {
        let (size, logical) = (
            row["size_bytes"].as_u64().unwrap(),
            row["logical_bytes"].as_u64().unwrap(),
        );
        let exclusive = row["exclusive_bytes"].as_u64().expect("recipes readable");
        assert!(logical > size && exclusive < logical && exclusive >= size, "{row}");
    }
    // verify --all --repair: both intact, nothing to repair.
    let all = store.ckpt(["verify", "--all", "--repair", "--json", &c.id]);
    expect_code(&all, 0, "ckpt verify --all --repair");
    let v: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap();
    assert_eq!(
        (v["damaged"].as_u64(), v["checkpoints"].as_array().map(Vec::len)),
        (Some(0), Some(2)),
        "{v}"
    );
    assert_eq!(v["repaired"][0]["packs_removed"], 0, "{v}");

    expect_code(&store.ckpt(["rm", &c.id, "one"]), 0, "ckpt rm one");
    // The chunk store now holds exactly the chunks "two" uses.
    let chunks = store.path().join(&c.id).join("chunks");
    let left = ChunkStore::open(&chunks).unwrap().reader(WAIT).unwrap().stats();
    let used = Recipe::read(&dir.join("pages.recipe")).unwrap().digests().len();
    assert_eq!(left.chunks, used, "{left:?}");
    expect_code(&store.ckpt(["verify", &c.id, "two"]), 0, "ckpt verify two");

    Runtime::Runc.destroy(&c.id);
    assert!(wait_until(Duration::from_secs(5), || c.status().is_none()));
    fs::write(c.rootfs.join("tmp/count"), "0\n").unwrap();
    let (pack, at) = flip_a_chunk_byte(&chunks);
    let refused = store.ckpt(["start", "--checkpoint", "two", &c.id]);
    expect_code(&refused, 7, "ckpt start with a corrupt chunk");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("cannot reassemble checkpoint two of") && err.contains("is corrupt"),
        "{err}"
    );
    assert!(c.status().is_none(), "nothing was started: {:?}", c.status());
    assert_eq!(fs::read_to_string(c.rootfs.join("tmp/count")).unwrap(), "0\n");
    expect_code(
        &store.ckpt(["verify", &c.id, "two"]),
        7,
        "ckpt verify of the corrupt chunk",
    );
    let all = store.ckpt(["verify", "--all", &c.id]);
    expect_code(&all, 7, "ckpt verify --all of the corrupt chunk");
    assert!(String::from_utf8_lossy(&all.stdout).contains("DAMAGED"), "{all:?}");

    let mut bytes = fs::read(&pack).unwrap();
    bytes[at] ^= 0x40;
    fs::write(&pack, bytes).unwrap();
    start_two_and_see_it_continue(&store, &c, at_one, after_two);
}

/// `ckpt start --checkpoint two`, and the counter goes on from checkpoint
/// two's value (taken after `at_one`, before `after_two`).
fn start_two_and_see_it_continue(store: &Store, c: &Container, at_one: u64, after_two: u64) {
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
