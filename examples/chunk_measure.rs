//! Measures content-addressed chunking of real CRIU page files (the numbers
//! in docs/incremental.md). Not part of ckpt; run it over a series of
//! checkpoints made by `scripts/chunk-images`:
//!
//! ```text
//! cargo run --release --example chunk_measure -- [--sizes 4096,16384] [--store WORKDIR] [--loose WORKDIR] DIR...
//! ```
//!
//! 1. Dedup sweep: for each rule (by address, by file offset) and chunk
//!    size, how many distinct chunks and bytes the series needs, what each
//!    checkpoint adds, and how fast chunking + BLAKE3 runs on data in memory.
//! 2. `--store`: the real chunk store per chunk size (address rule):
//!    create, reassemble, verify, collect, recount times and disk use.
//! 3. `--loose`: what storing chunks one file each would cost (temp file,
//!    rename, one syncfs), for the first checkpoint.
use ckpt::chunks::images::{page_files, PageFile};
use ckpt::chunks::split::{plan, plan_with_fallback, ChunkRule};
use ckpt::chunks::store::CollectPolicy;
use ckpt::chunks::{refs, ChunkStore, Digest, Reassembly, Recipe};
use std::collections::HashSet;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MIB: f64 = 1024.0 * 1024.0;
const WAIT: Duration = Duration::from_secs(5);

fn main() {
    let mut sizes = vec![4096u32, 16384, 65536, 262144, 1 << 20];
    let mut store_work = None;
    let mut loose_work = None;
    let mut bench_work = None;
    let mut no_sweep = false;
    let mut dirs = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sizes" => sizes = args.next().unwrap().split(',').map(|s| s.parse().unwrap()).collect(),
            "--store" => store_work = Some(PathBuf::from(args.next().unwrap())),
            "--loose" => loose_work = Some(PathBuf::from(args.next().unwrap())),
            "--bench" => bench_work = Some(PathBuf::from(args.next().unwrap())),
            "--no-sweep" => no_sweep = true,
            _ => dirs.push(PathBuf::from(a)),
        }
    }
    assert!(!dirs.is_empty(), "give checkpoint directories, oldest first");
    println!("{} checkpoints, {} cores\n", dirs.len(), cores());
    if let Some(work) = bench_work {
        bench(&dirs, &work);
    }
    if !no_sweep {
        sweep(&dirs, &sizes);
    }
    if let Some(work) = loose_work {
        loose(&dirs[0], &work, &sizes);
    }
    if let Some(work) = store_work {
        for &size in &sizes {
            store_run(&dirs, &work, size);
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn read_all(pf: &PageFile) -> Vec<u8> {
    std::fs::read(&pf.path).unwrap()
}

/// Digests of `spans` of `bytes`, on all cores (as the store hashes).
fn hash_spans(bytes: &[u8], spans: &[ckpt::chunks::split::Span]) -> Vec<(Digest, u32)> {
    let per = spans.len().div_ceil(cores()).max(1);
    let mut out = vec![(Digest([0; 32]), 0u32); spans.len()];
    std::thread::scope(|s| {
        for (outs, ins) in out.chunks_mut(per).zip(spans.chunks(per)) {
            s.spawn(move || {
                for (o, sp) in outs.iter_mut().zip(ins) {
                    let piece = &bytes[sp.offset as usize..sp.offset as usize + sp.len as usize];
                    *o = (Digest::of(piece), sp.len);
                }
            });
        }
    });
    out
}

struct Tally {
    rule: ChunkRule,
    size: u32,
    seen: HashSet<Digest>,
    unique_bytes: u64,
    logical: u64,
    added: Vec<u64>,
    chunks_per_ckpt: u64,
    hash_time: Duration,
    fell_back: usize,
}

fn sweep(dirs: &[PathBuf], sizes: &[u32]) {
    let mut tallies: Vec<Tally> = Vec::new();
    for rule in [ChunkRule::Address, ChunkRule::FileOffset] {
        for &size in sizes {
            tallies.push(Tally {
                rule,
                size,
                seen: HashSet::new(),
                unique_bytes: 0,
                logical: 0,
                added: Vec::new(),
                chunks_per_ckpt: 0,
                hash_time: Duration::ZERO,
                fell_back: 0,
            });
        }
    }
    let mut whole_time = Duration::ZERO;
    let mut whole_bytes = 0u64;
    for dir in dirs {
        let files = page_files(dir).unwrap();
        let mut added = vec![0u64; tallies.len()];
        for pf in &files {
            let bytes = read_all(pf);
            // The full checkpoint's cost for comparison: one whole-file BLAKE3
            // as ckpt's publish computes it (16 MiB at a time, all cores).
            let t = Instant::now();
            let mut h = blake3::Hasher::new();
            for piece in bytes.chunks(16 << 20) {
                h.update_rayon(piece);
            }
            std::hint::black_box(h.finalize());
            whole_time += t.elapsed();
            whole_bytes += bytes.len() as u64;
            for (i, t) in tallies.iter_mut().enumerate() {
                let start = Instant::now();
                let (spans, used) = plan_with_fallback(t.rule, t.size, pf.len, pf.runs.as_deref()).unwrap();
                let digests = hash_spans(&bytes, &spans);
                t.hash_time += start.elapsed();
                if used != t.rule {
                    t.fell_back += 1;
                }
                t.logical += pf.len;
                t.chunks_per_ckpt += spans.len() as u64;
                for (d, len) in digests {
                    if t.seen.insert(d) {
                        t.unique_bytes += u64::from(len);
                        added[i] += u64::from(len);
                    }
                }
            }
        }
        for (t, a) in tallies.iter_mut().zip(added) {
            t.added.push(a);
        }
        eprintln!("swept {}", dir.display());
    }
    let n = dirs.len() as u64;
    println!("## Dedup over the series (chunking + hashing of data in memory)\n");
    println!(
        "Whole-file BLAKE3 (what a full create hashes): {:.0} MiB/s\n",
        whole_bytes as f64 / MIB / whole_time.as_secs_f64()
    );
    println!("| rule | chunk | logical GiB | stored GiB | dedup × | first ckpt MiB | later ckpts add MiB (mean [min–max]) | distinct chunks | chunks per ckpt | chunk+hash MiB/s | fell back |");
    println!("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|");
    for t in &tallies {
        let later = &t.added[1..];
        let (mean, min, max) = if later.is_empty() {
            (0.0, 0, 0)
        } else {
            (
                later.iter().sum::<u64>() as f64 / later.len() as f64,
                *later.iter().min().unwrap(),
                *later.iter().max().unwrap(),
            )
        };
        println!(
            "| {:?} | {} KiB | {:.2} | {:.2} | {:.2} | {:.0} | {:.1} [{:.1}–{:.1}] | {} | {} | {:.0} | {} |",
            t.rule,
            t.size / 1024,
            t.logical as f64 / MIB / 1024.0,
            t.unique_bytes as f64 / MIB / 1024.0,
            t.logical as f64 / t.unique_bytes as f64,
            t.added[0] as f64 / MIB,
            mean / MIB,
            min as f64 / MIB,
            max as f64 / MIB,
            t.seen.len(),
            t.chunks_per_ckpt / n,
            t.logical as f64 / MIB / t.hash_time.as_secs_f64(),
            t.fell_back,
        );
    }
    println!();
}

fn syncfs(dir: &Path) {
    let d = std::fs::File::open(dir).unwrap();
    // SAFETY: syncfs takes an open fd and nothing else; `d` lives across the call.
    let rc = unsafe { libc::syncfs(d.as_raw_fd()) };
    assert_eq!(rc, 0, "syncfs");
}

/// One file per chunk: temp file, then one syncfs, renames, one syncfs.
fn loose(first: &Path, work: &Path, sizes: &[u32]) {
    use std::io::Write;
    println!("## One file per chunk (first checkpoint, temp + rename + 2 syncfs)\n");
    println!("| chunk | files | write s | syncfs s | rename s | total s | MiB/s | removing them s |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let files = page_files(first).unwrap();
    for &size in sizes.iter().filter(|&&s| s <= 65536) {
        let dir = work.join(format!("loose-{size}"));
        let tmp = dir.join(".tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        for i in 0..256 {
            std::fs::create_dir_all(dir.join(format!("{i:02x}"))).unwrap();
        }
        let mut names = Vec::new();
        let mut seen = HashSet::new();
        let mut bytes_total = 0u64;
        let t0 = Instant::now();
        for pf in &files {
            let bytes = read_all(pf);
            let spans = plan(ChunkRule::Address, size, pf.len, pf.runs.as_deref()).unwrap();
            for (sp, (d, _)) in spans.iter().zip(hash_spans(&bytes, &spans)) {
                if !seen.insert(d) {
                    continue;
                }
                let hex = d.to_hex();
                let path = tmp.join(&hex);
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .unwrap();
                f.write_all(&bytes[sp.offset as usize..sp.offset as usize + sp.len as usize])
                    .unwrap();
                bytes_total += u64::from(sp.len);
                names.push(hex);
            }
        }
        let t1 = Instant::now();
        syncfs(&dir);
        let t2 = Instant::now();
        for hex in &names {
            std::fs::rename(tmp.join(hex), dir.join(&hex[..2]).join(hex)).unwrap();
        }
        let t3 = Instant::now();
        syncfs(&dir);
        let t4 = Instant::now();
        let t5 = Instant::now();
        std::fs::remove_dir_all(&dir).unwrap();
        syncfs(work);
        let removed = t5.elapsed().as_secs_f64();
        println!(
            "| {} KiB | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.1} |",
            size / 1024,
            names.len(),
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t3 - t2).as_secs_f64(),
            (t4 - t0).as_secs_f64(),
            bytes_total as f64 / MIB / (t4 - t0).as_secs_f64(),
            removed
        );
    }
    println!();
}

fn du(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        total += if m.is_dir() {
            du(&e.path())
        } else {
            use std::os::unix::fs::MetadataExt;
            m.blocks() * 512
        };
    }
    total
}

/// The real chunk store at `size`: create each checkpoint, then reassemble,
/// verify, recount and collect.
fn store_run(dirs: &[PathBuf], work: &Path, size: u32) {
    let base = work.join(format!("store-{size}"));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let store = ChunkStore::open(&base.join("chunks")).unwrap();
    let mut recipes = Vec::new();
    let mut create_s = Vec::new();
    for dir in dirs {
        let t = Instant::now();
        let mut w = store.writer(WAIT).unwrap();
        let mut files = Vec::new();
        for pf in page_files(dir).unwrap() {
            files.push(w.add_page_file(&pf, ChunkRule::Address, size).unwrap());
        }
        drop(w.commit().unwrap());
        create_s.push(t.elapsed().as_secs_f64());
        recipes.push(Recipe { files });
    }
    let recipe_bytes: usize = recipes.iter().map(|r| r.to_bytes().len()).sum();
    let logical: u64 = recipes.iter().map(|r| r.logical_bytes()).sum();
    let disk = du(&base.join("chunks"));
    // Recount from the recipes as every collection does: parse them from
    // bytes and count.
    let encoded: Vec<Vec<u8>> = recipes.iter().map(|r| r.to_bytes()).collect();
    let t = Instant::now();
    let parsed: Vec<Recipe> = encoded
        .iter()
        .map(|b| Recipe::from_bytes(Path::new("r"), b).unwrap())
        .collect();
    let counts = refs::counts(&parsed);
    let recount_s = t.elapsed().as_secs_f64();
    // Reassemble each into a scratch dir (no fsync, as a restore does).
    let out = base.join("out");
    let mut reasm = Vec::new();
    for r in &recipes {
        std::fs::create_dir_all(&out).unwrap();
        let t = Instant::now();
        let reader = store.reader(WAIT).unwrap();
        for f in &r.files {
            reader.reassemble(f, &out, Reassembly::RESTORE).unwrap();
        }
        drop(reader);
        reasm.push(t.elapsed().as_secs_f64());
        std::fs::remove_dir_all(&out).unwrap();
    }
    let t = Instant::now();
    let named: Vec<(String, &Recipe)> = recipes.iter().enumerate().map(|(i, r)| (format!("d{i}"), r)).collect();
    let problems = store
        .reader(WAIT)
        .unwrap()
        .verify(named.iter().map(|(n, r)| (n.as_str(), *r)));
    let verify_s = t.elapsed().as_secs_f64();
    assert!(problems.is_empty(), "{problems:?}");
    // Remove the first checkpoint: the heaviest collection (its pack is
    // the base of all others).
    let t = Instant::now();
    let mut s = store.session(WAIT).unwrap();
    let report = s.collect(&recipes[1..], CollectPolicy::EXACT).unwrap();
    let collect_first_s = t.elapsed().as_secs_f64();
    // Then the middle one.
    let mid = recipes.len() / 2;
    let rest: Vec<&Recipe> = recipes[1..]
        .iter()
        .enumerate()
        .filter(|(i, _)| i + 1 != mid)
        .map(|(_, r)| r)
        .collect();
    let t = Instant::now();
    let report_mid = s.collect(rest, CollectPolicy::EXACT).unwrap();
    let collect_mid_s = t.elapsed().as_secs_f64();
    drop(s);
    let gib = |b: u64| b as f64 / MIB / 1024.0;
    let stats = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(|a, b| a.partial_cmp(b).unwrap());
        format!("{:.2} [{:.2}–{:.2}]", s[s.len() / 2], s[0], s[s.len() - 1])
    };
    let per_ckpt = logical as f64 / dirs.len() as f64 / MIB;
    println!("### Chunk store at {} KiB (address rule)\n", size / 1024);
    println!(
        "- creates: first {:.2} s, later median [min–max] {} s",
        create_s[0],
        stats(&create_s[1..])
    );
    println!(
        "- on disk: packs {:.2} GiB (du) for {:.2} GiB logical; recipes {:.1} MiB in all; {} distinct chunks",
        gib(disk),
        gib(logical),
        recipe_bytes as f64 / MIB,
        counts.len()
    );
    println!(
        "- reassembly, per checkpoint: median [min–max] {} s, i.e. {:.0} MiB/s at the median",
        stats(&reasm),
        per_ckpt / {
            let mut s = reasm.clone();
            s.sort_by(|a, b| a.partial_cmp(b).unwrap());
            s[s.len() / 2]
        }
    );
    println!(
        "- verify of all {} recipes (each chunk once): {:.2} s",
        recipes.len(),
        verify_s
    );
    println!(
        "- recount from {} recipes (parse + count): {:.3} s",
        recipes.len(),
        recount_s
    );
    println!(
        "- collect after removing the first: {:.2} s ({} packs rewritten, {:.1} MiB freed); then the middle one: {:.2} s ({} rewritten, {} removed, {:.1} MiB freed)\n",
        collect_first_s,
        report.packs_rewritten,
        report.bytes_freed as f64 / MIB,
        collect_mid_s,
        report_mid.packs_rewritten,
        report_mid.packs_removed,
        report_mid.bytes_freed as f64 / MIB
    );
    let t = Instant::now();
    std::fs::remove_dir_all(&base).unwrap();
    syncfs(work);
    println!("- removing the whole chunk store: {:.2} s\n", t.elapsed().as_secs_f64());
}

/// A named step of [`bench`].
type Step<'a> = (&'static str, Box<dyn FnMut() + 'a>);

/// Best and median of each step, running the steps round-robin `reps`
/// times so that they share the machine's ups and downs.
fn timed_rounds(reps: usize, steps: &mut [Step]) -> Vec<(f64, f64)> {
    let mut times = vec![Vec::new(); steps.len()];
    for _ in 0..reps {
        for (i, (_, f)) in steps.iter_mut().enumerate() {
            let t = Instant::now();
            f();
            times[i].push(t.elapsed().as_secs_f64());
        }
    }
    times
        .into_iter()
        .map(|mut v| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            (v[0], v[v.len() / 2])
        })
        .collect()
}

/// Warm-cache comparison, for the last of `dirs`, of what a full checkpoint
/// costs (hash every byte; copy) and what an incremental one costs (chunk,
/// hash and look up every page; reassemble with and without the whole-file
/// check).
fn bench(dirs: &[PathBuf], work: &Path) {
    let base = work.join("bench");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let store = ChunkStore::open(&base.join("chunks")).unwrap();
    let mut recipe = Recipe::default();
    for dir in dirs {
        let mut w = store.writer(WAIT).unwrap();
        recipe = w.add_page_files(dir).unwrap();
        drop(w.commit().unwrap());
    }
    let last = dirs.last().unwrap();
    let files = page_files(last).unwrap();
    let bytes: u64 = files.iter().map(|f| f.len).sum();
    for f in &files {
        std::hint::black_box(read_all(f));
    }
    let out = base.join("out");
    let reps = 7;
    let one = [recipe.clone()];
    let restore = |how: Reassembly| {
        std::fs::create_dir_all(&out).unwrap();
        let r = store.reader(WAIT).unwrap();
        for f in &recipe.files {
            r.reassemble(f, &out, how).unwrap();
        }
        drop(r);
        std::fs::remove_dir_all(&out).unwrap();
    };
    let mut steps: Vec<Step> = vec![
        (
            "full: BLAKE3 of the page files (as publish and verify hash)",
            Box::new(|| {
                for f in &files {
                    use std::io::Read;
                    let mut file = std::fs::File::open(&f.path).unwrap();
                    let mut buf = vec![0u8; 16 << 20];
                    let mut h = blake3::Hasher::new();
                    loop {
                        let n = file.read(&mut buf).unwrap();
                        if n == 0 {
                            break;
                        }
                        h.update_rayon(&buf[..n]);
                    }
                    std::hint::black_box(h.finalize());
                }
            }),
        ),
        (
            "full: copy of the page files (the write a reassembly adds)",
            Box::new(|| {
                std::fs::create_dir_all(&out).unwrap();
                for f in &files {
                    std::fs::copy(&f.path, out.join(&f.name)).unwrap();
                }
                std::fs::remove_dir_all(&out).unwrap();
            }),
        ),
        (
            "incremental create: chunk, hash, look up (all chunks present)",
            Box::new(|| {
                let mut w = store.writer(WAIT).unwrap();
                std::hint::black_box(w.add_page_files(last).unwrap());
                assert_eq!(w.stats().new_chunks, 0);
            }),
        ),
        (
            "incremental restore: reassemble, chunk checks only",
            Box::new(|| {
                restore(Reassembly {
                    check_file: false,
                    durable: false,
                })
            }),
        ),
        (
            "incremental restore: reassemble, chunk and whole-file checks",
            Box::new(|| restore(Reassembly::RESTORE)),
        ),
        (
            "recount: parse the recipe and count",
            Box::new(|| {
                let b = one[0].to_bytes();
                let parsed = Recipe::from_bytes(Path::new("r"), &b).unwrap();
                std::hint::black_box(refs::counts([&parsed]));
            }),
        ),
    ];
    let results = timed_rounds(reps, &mut steps);
    let rows: Vec<(&str, (f64, f64))> = steps.iter().map(|(l, _)| *l).zip(results).collect();
    println!(
        "## Warm-cache costs for {} ({:.0} MiB of page files), best and median of {reps}\n",
        last.display(),
        bytes as f64 / MIB
    );
    println!("| step | best s | median s | MiB/s at best |");
    println!("|---|---:|---:|---:|");
    for (label, (best, median)) in rows {
        println!(
            "| {label} | {best:.3} | {median:.3} | {:.0} |",
            bytes as f64 / MIB / best
        );
    }
    println!();
    std::fs::remove_dir_all(&base).unwrap();
}
