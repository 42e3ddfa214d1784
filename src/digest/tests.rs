//! The follower against writer threads that append, truncate, reopen,
//! replace and delete files while it hashes; every result is compared with
//! a hash of the final file. Plus one ignored measurement of what
//! following costs against hashing after the writer is done.

use super::*;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Deterministic incompressible bytes.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn truth(path: &Path) -> Digest {
    let data = fs::read(path).unwrap();
    Digest {
        size: data.len() as u64,
        blake3: blake3::hash(&data).to_hex().to_string(),
    }
}

fn assert_matches_final_files(dir: &Path, got: &Followed) {
    let mut want = std::collections::BTreeMap::new();
    let mut stack = vec![(String::new(), dir.to_path_buf())];
    while let Some((prefix, d)) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let key = format!("{prefix}{}", e.file_name().to_str().unwrap());
            if e.file_type().unwrap().is_dir() {
                stack.push((format!("{key}/"), e.path()));
            } else {
                want.insert(key, truth(&e.path()));
            }
        }
    }
    assert_eq!(got.digests, want);
}

/// Waits (up to 20 s, a loaded machine) until the follower has hashed at
/// least `n` bytes: proof that it hashed while the writer was still busy.
fn wait_followed(f: &Follower, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while f.followed_bytes() < n {
        assert!(
            Instant::now() < deadline,
            "follower hashed only {} of {n} bytes",
            f.followed_bytes()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn append(path: &Path, data: &[u8]) {
    let mut f = OpenOptions::new().append(true).create(true).open(path).unwrap();
    f.write_all(data).unwrap();
}

#[test]
fn appending_writer_gives_the_hash_of_the_final_files() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("before.json"), b"[\"/dev/null\"]").unwrap();
    let follower = Follower::spawn(dir.path(), FollowOptions::default()).unwrap();
    let d = dir.path().to_path_buf();
    let writer = std::thread::spawn(move || {
        // Like CRIU: several files open at once, appended in chunks of
        // uneven sizes, one large one, one left empty.
        let mut files: Vec<File> = ["pages-1.img", "pagemap-1.img", "core-1.img", "empty.img"]
            .iter()
            .map(|n| File::create(d.join(n)).unwrap())
            .collect();
        for i in 0..60u64 {
            let len = if i % 3 == 0 { 300_000 } else { 4096 + (i as usize * 77) };
            files[0].write_all(&bytes(i, len)).unwrap();
            files[(i % 2 + 1) as usize].write_all(&bytes(1000 + i, 513)).unwrap();
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    writer.join().unwrap();
    let got = follower.finish(true).unwrap();
    assert_matches_final_files(dir.path(), &got);
    assert_eq!(got.stats.files, 5);
    assert_eq!(got.stats.rehashed_files, 0, "{:?}", got.stats);
}

#[test]
fn hashing_overlaps_the_writes() {
    let dir = tempfile::tempdir().unwrap();
    let follower = Follower::spawn(dir.path(), FollowOptions::default()).unwrap();
    let path = dir.path().join("pages-1.img");
    let mut f = File::create(&path).unwrap();
    let mut written = 0u64;
    for i in 0..8 {
        let chunk = bytes(i, 1 << 20);
        f.write_all(&chunk).unwrap();
        written += chunk.len() as u64;
        // Each chunk is hashed before the next is written, so all but the
        // last one were hashed while the file was still being written.
        wait_followed(&follower, written);
    }
    drop(f);
    let got = follower.finish(false).unwrap();
    assert_matches_final_files(dir.path(), &got);
    assert_eq!(got.stats.followed_bytes, written);
    assert_eq!(got.stats.tail_bytes, 0);
}

#[test]
fn truncated_file_is_rehashed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.img");
    let follower = Follower::spawn(dir.path(), FollowOptions::default()).unwrap();
    let mut f = File::create(&path).unwrap();
    f.write_all(&bytes(1, 100_000)).unwrap();
    wait_followed(&follower, 100_000);
    f.set_len(10).unwrap();
    drop(f);
    append(&path, b"after");
    let got = follower.finish(false).unwrap();
    assert_matches_final_files(dir.path(), &got);
    assert_eq!(got.digests["inventory.img"].size, 15);
    assert_eq!(got.stats.rehashed_files, 1);
}

#[test]
fn reopened_with_o_trunc_and_regrown_is_rehashed() {
    // The follower may never see the file shorter (it grows back past
    // what was hashed before the next round): the second close after a
    // write tells it the file was reopened.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stats-dump");
    let follower = Follower::spawn(dir.path(), FollowOptions::default()).unwrap();
    fs::write(&path, bytes(1, 50_000)).unwrap();
    wait_followed(&follower, 50_000);
    fs::write(&path, bytes(2, 120_000)).unwrap();
    let got = follower.finish(false).unwrap();
    assert_matches_final_files(dir.path(), &got);
    assert_eq!(got.stats.rehashed_files, 1);
}

#[test]
fn a_replaced_file_is_hashed_as_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("descriptors.json");
    let follower = Follower::spawn(dir.path(), FollowOptions::default()).unwrap();
    fs::write(&path, bytes(1, 40_000)).unwrap();
    wait_followed(&follower, 40_000);
    let tmp = dir.path().join("descriptors.json.tmp");
    fs::write(&tmp, b"[\"/dev/null\",\"pipe:[1]\",\"pipe:[1]\"]").unwrap();
    fs::rename(&tmp, &path).unwrap();
    let got = follower.finish(false).unwrap();
    assert_matches_final_files(dir.path(), &got);
    assert_eq!(got.digests.len(), 1);
}

#[test]
fn deleted_files_are_left_out_and_late_ones_included() {
    let dir = tempfile::tempdir().unwrap();
    let follower = Follower::spawn(dir.path(), FollowOptions::default()).unwrap();
    fs::write(dir.path().join("gone.img"), bytes(1, 10_000)).unwrap();
    wait_followed(&follower, 10_000);
    fs::remove_file(dir.path().join("gone.img")).unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::write(dir.path().join("sub/nested.img"), bytes(2, 3000)).unwrap();
    fs::write(dir.path().join("late.img"), bytes(3, 5000)).unwrap();
    let got = follower.finish(false).unwrap();
    assert_matches_final_files(dir.path(), &got);
    assert_eq!(got.digests.keys().collect::<Vec<_>>(), ["late.img", "sub/nested.img"]);
}

#[test]
fn a_symlink_in_the_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let follower = Follower::spawn(dir.path(), FollowOptions::default()).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("core-1.img")).unwrap();
    let err = follower.finish(false).unwrap_err();
    assert!(matches!(err, DigestError::NotRegular { .. }), "{err}");
}

#[test]
fn a_fifo_does_not_block_the_follower() {
    let dir = tempfile::tempdir().unwrap();
    let follower = Follower::spawn(dir.path(), FollowOptions::default()).unwrap();
    nix::unistd::mkfifo(&dir.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    fs::write(dir.path().join("after.img"), bytes(1, 1000)).unwrap();
    wait_followed(&follower, 1000);
    let err = follower.finish(false).unwrap_err();
    assert!(matches!(err, DigestError::NotRegular { .. }), "{err}");
}

#[test]
fn a_missing_directory_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = Follower::spawn(&missing, FollowOptions::default()).err().unwrap();
    assert!(err.to_string().contains("nope"), "{err}");
}

/// What following costs against hashing after the writer is done, with a
/// synthetic writer at about 2 GB/s (`CKPT_DIGEST_BENCH_MIB`, default
/// 1024). Prints the numbers for docs/perf-design.md:
/// `cargo test --release --lib digest::tests::overlap -- --ignored --nocapture`
#[test]
#[ignore]
fn overlap_cost_against_hashing_after_the_dump() {
    let mib: usize = std::env::var("CKPT_DIGEST_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let base = std::env::var_os("CKPT_DIGEST_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let data = bytes(7, 4 << 20);
    // Writes `mib` MiB into pages-1.img and 30 small images, paced at
    // 2 GB/s, like CRIU's local page transfer; returns the writer's time.
    let write = |dir: &Path| -> Duration {
        let t0 = Instant::now();
        for i in 0..30 {
            fs::write(dir.join(format!("core-{i}.img")), &data[..2000 + i * 100]).unwrap();
        }
        let mut f = File::create(dir.join("pages-1.img")).unwrap();
        let per_chunk = Duration::from_secs_f64(data.len() as f64 / 2.0e9);
        for i in 0..(mib / 4) {
            f.write_all(&data).unwrap();
            let due = per_chunk * (i as u32 + 1);
            if let Some(wait) = due.checked_sub(t0.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        t0.elapsed()
    };
    let fsync_all = |dir: &Path| -> Duration {
        let t = Instant::now();
        for e in fs::read_dir(dir).unwrap() {
            File::open(e.unwrap().path()).unwrap().sync_all().unwrap();
        }
        t.elapsed()
    };
    let secs = |d: Duration| d.as_secs_f64();
    for round in 0..3 {
        // After: the writer, then hash every file (all cores), then fsync.
        let d = tempfile::tempdir_in(&base).unwrap();
        let w = write(d.path());
        let t = Instant::now();
        for e in fs::read_dir(d.path()).unwrap() {
            hash_file(&e.unwrap().path()).unwrap();
        }
        let (hash, sync) = (t.elapsed(), fsync_all(d.path()));
        println!(
            "round {round} {mib} MiB after:  writer {:.3} s, then hash {:.3} s + fsync {:.3} s = {:.3} s after the writer",
            secs(w),
            secs(hash),
            secs(sync),
            secs(hash + sync)
        );
        drop(d);
        // Follow: the follower hashes while the writer writes.
        for writeback in [false, true] {
            let d = tempfile::tempdir_in(&base).unwrap();
            let opts = FollowOptions {
                writeback,
                ..Default::default()
            };
            let follower = Follower::spawn(d.path(), opts).unwrap();
            let wf = write(d.path());
            let t = Instant::now();
            let got = follower.finish(false).unwrap();
            let (tail, sync) = (t.elapsed(), fsync_all(d.path()));
            assert_eq!(got.stats.rehashed_files, 0);
            println!(
                "round {round} {mib} MiB follow{}: writer {:.3} s, then tail hash {:.3} s ({} KiB) + fsync {:.3} s = {:.3} s after the writer",
                if writeback { "+sync_file_range" } else { "" },
                secs(wf),
                secs(tail),
                got.stats.tail_bytes >> 10,
                secs(sync),
                secs(tail + sync)
            );
        }
    }
}
