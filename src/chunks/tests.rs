//! Tests of the chunk store through its public API, and the harness the
//! crash tests share: a miniature of how `create`, `rm` and `prune` will
//! drive the chunk store (stage, commit chunks, publish the recipe by
//! rename; unpublish by rename, collect). None needs root.
use super::faults::{Faults, NoFaults};
use super::fsutil::fsync_dir;
use super::pagemap::tests::image;
use super::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// A page of pseudo-random bytes named by `tag`.
pub(crate) fn page(tag: u64) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    blake3::Hasher::new()
        .update(&tag.to_le_bytes())
        .finalize_xof()
        .fill(&mut buf);
    buf
}

/// A container directory with a chunk store and published checkpoints
/// `checkpoints/<name>/pages.recipe`, driven as the wiring will drive it.
pub(crate) struct Harness {
    _tmp: Option<tempfile::TempDir>,
    root: PathBuf,
    pub chunks: ChunkStore,
    pub faults: Arc<dyn Faults>,
}

impl Harness {
    pub fn new() -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("checkpoints")).unwrap();
        fs::create_dir_all(tmp.path().join("staging")).unwrap();
        let chunks = ChunkStore::open(&tmp.path().join("chunks")).unwrap();
        Harness {
            root: tmp.path().to_path_buf(),
            _tmp: Some(tmp),
            chunks,
            faults: Arc::new(NoFaults),
        }
    }

    /// The same directories, with `faults` injected in every step (of the
    /// chunk store and of the harness's own publish and unpublish).
    pub fn with_faults(&self, faults: Arc<dyn Faults>) -> Harness {
        Harness {
            _tmp: None,
            root: self.root.clone(),
            chunks: self.chunks.clone().with_faults(faults.clone()),
            faults,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// An image directory holding `pages-1.img` made of `pages` (tags) at
    /// one run starting at `vaddr`, with its pagemap.
    pub fn images(&self, name: &str, vaddr: u64, pages: &[u64]) -> PathBuf {
        let dir = self.root().join("images").join(name);
        fs::create_dir_all(&dir).unwrap();
        let bytes: Vec<u8> = pages.iter().flat_map(|&t| page(t)).collect();
        fs::write(dir.join("pages-1.img"), bytes).unwrap();
        fs::write(
            dir.join("pagemap-1.img"),
            image(1, &[(vaddr, pages.len() as u32, Some(4))]),
        )
        .unwrap();
        fs::write(dir.join("core-1.img"), b"not page data").unwrap();
        dir
    }

    /// `create --incremental`: chunk the images, commit, publish the recipe
    /// by rename, all under one exclusive session. Returns what was written.
    pub fn create(&self, name: &str, images: &Path) -> Result<WriteStats, ChunkError> {
        let mut w = self.chunks.writer(WAIT)?;
        let recipe = w.add_page_files(images)?;
        let stats = w.stats();
        let session = w.commit()?;
        let staging = self.root().join("staging").join(name);
        self.faults.step("create staging")?;
        fs::create_dir(&staging).unwrap();
        self.faults.step("write recipe")?;
        fs::write(staging.join(RECIPE_FILE), recipe.to_bytes()).unwrap();
        self.faults.step("publish")?;
        fs::rename(&staging, self.root().join("checkpoints").join(name)).unwrap();
        fsync_dir(&self.root().join("checkpoints"))?;
        drop(session);
        Ok(stats)
    }

    /// `rm`: unpublish by rename, then collect against what is left.
    pub fn remove(&self, name: &str) -> Result<CollectReport, ChunkError> {
        let mut session = self.chunks.session(WAIT)?;
        let trash = self.root().join("staging").join(format!("{name}.rm"));
        self.faults.step("unpublish")?;
        fs::rename(self.root().join("checkpoints").join(name), &trash).unwrap();
        fsync_dir(&self.root().join("checkpoints"))?;
        let roots = self.published();
        let report = session.collect(roots.iter().map(|(_, r)| r), CollectPolicy::EXACT)?;
        self.faults.step("delete trash")?;
        fs::remove_dir_all(&trash).unwrap();
        Ok(report)
    }

    /// The next command's repair: collect against the published recipes.
    pub fn repair(&self) -> Result<CollectReport, ChunkError> {
        let mut session = self.chunks.session(WAIT)?;
        let roots = self.published();
        session.repair(roots.iter().map(|(_, r)| r))
    }

    /// Every published checkpoint's recipe, by name.
    pub fn published(&self) -> Vec<(String, Recipe)> {
        let mut out: Vec<_> = fs::read_dir(self.root().join("checkpoints"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().into_string().unwrap();
                (name, Recipe::read(&e.path().join(RECIPE_FILE)).unwrap())
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Every chunk digest in the store's packs.
    pub fn stored(&self) -> std::collections::BTreeSet<Digest> {
        let r = self.chunks.reader(WAIT).unwrap();
        r.index.keys().copied().collect()
    }

    /// Reassembles every file of checkpoint `name` into a fresh directory.
    pub fn restore(&self, name: &str) -> Result<PathBuf, ChunkError> {
        let recipe = Recipe::read(&self.root().join("checkpoints").join(name).join(RECIPE_FILE))?;
        let out = tempfile::TempDir::new_in(self.root()).unwrap().keep();
        let r = self.chunks.reader(WAIT)?;
        for f in &recipe.files {
            r.reassemble(f, &out, Reassembly::RESTORE)?;
        }
        Ok(out)
    }

    /// The path of pack data: the first pack file.
    pub fn a_pack(&self) -> PathBuf {
        let r = self.chunks.reader(WAIT).unwrap();
        r.packs[0].index.path.clone()
    }
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn second_checkpoint_stores_only_changed_pages_and_both_reassemble() {
    let h = Harness::new();
    let first: Vec<u64> = (0..64).collect();
    let mut second = first.clone();
    second[10] = 1000;
    second[40] = 1001;
    let s1 = h.create("c1", &h.images("c1", 0x7f00_0000_0000, &first)).unwrap();
    let s2 = h.create("c2", &h.images("c2", 0x7f00_0000_0000, &second)).unwrap();
    assert_eq!((s1.chunks, s1.new_chunks), (64, 64));
    assert_eq!((s2.chunks, s2.new_chunks, s2.new_bytes), (64, 2, 8192));
    for name in ["c1", "c2"] {
        let out = h.restore(name).unwrap();
        let want = fs::read(h.root().join("images").join(name).join("pages-1.img")).unwrap();
        assert_eq!(fs::read(out.join("pages-1.img")).unwrap(), want, "{name}");
        assert_eq!(mode(&out.join("pages-1.img")), 0o600);
    }
    // Only page files are chunked.
    assert_eq!(h.published()[0].1.files.len(), 1);
    let stats = h.chunks.reader(WAIT).unwrap().stats();
    assert_eq!((stats.packs, stats.chunks, stats.chunk_bytes), (2, 66, 66 * 4096));
    for p in [h.chunks.dir().to_path_buf(), h.chunks.dir().join("packs"), h.a_pack()] {
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&p), want, "{}", p.display());
    }
}

/// Pages that CRIU moves to another file offset (a mapping grew in front
/// of them) keep their chunks.
#[test]
fn pages_moved_in_the_file_are_still_shared() {
    let h = Harness::new();
    let dir = h.images("a", 0x10000, &(0..32).collect::<Vec<_>>());
    h.create("a", &dir).unwrap();
    // The same 32 pages, now after 3 new pages of another mapping.
    let dir = h.root().join("images/b");
    fs::create_dir_all(&dir).unwrap();
    let bytes: Vec<u8> = [500, 501, 502].into_iter().chain(0..32).flat_map(page).collect();
    fs::write(dir.join("pages-1.img"), bytes).unwrap();
    fs::write(
        dir.join("pagemap-1.img"),
        image(1, &[(0x1000, 3, Some(4)), (0x10000, 32, Some(4))]),
    )
    .unwrap();
    let s = h.create("b", &dir).unwrap();
    assert_eq!((s.new_chunks, s.cut_by_offset), (3, 0));
    let out = h.restore("b").unwrap();
    assert_eq!(
        fs::read(out.join("pages-1.img")).unwrap(),
        fs::read(dir.join("pages-1.img")).unwrap()
    );
}

#[test]
fn a_missing_chunk_refuses_reassembly_naming_it_and_leaves_no_partial_file() {
    let h = Harness::new();
    h.create("c1", &h.images("c1", 0, &[1, 2, 3])).unwrap();
    let recipe = h.published()[0].1.clone();
    let mut broken = recipe.files[0].clone();
    broken.chunks[1].digest = Digest::of(b"never stored");
    let out = tempfile::tempdir().unwrap();
    let r = h.chunks.reader(WAIT).unwrap();
    match r.reassemble(&broken, out.path(), Reassembly::RESTORE).unwrap_err() {
        ChunkError::MissingChunk { file, digest } => {
            assert_eq!((file.as_str(), digest), ("pages-1.img", Digest::of(b"never stored")));
        }
        other => panic!("{other}"),
    }
    assert!(!out.path().join("pages-1.img").exists());
    // A recipe whose whole-file digest is wrong is caught at the end.
    let mut wrong = recipe.files[0].clone();
    wrong.blake3 = Digest::of(b"other");
    let e = r.reassemble(&wrong, out.path(), Reassembly::RESTORE).unwrap_err();
    assert!(matches!(e, ChunkError::FileMismatch { .. }), "{e}");
    assert!(!out.path().join("pages-1.img").exists());
}

/// The fault: a flipped byte in a shared chunk is reported for
/// every checkpoint that uses it, and refuses their restores.
#[test]
fn a_flipped_byte_in_a_shared_chunk_is_reported_for_every_checkpoint_using_it() {
    let h = Harness::new();
    h.create("c1", &h.images("c1", 0, &[1, 2, 3, 4])).unwrap();
    h.create("c2", &h.images("c2", 0, &[1, 2, 3, 5])).unwrap();
    h.create("c3", &h.images("c3", 0, &[6, 7])).unwrap();
    // Chunk of page 2 lies second in the first pack (written in file order).
    let pack = h
        .chunks
        .reader(WAIT)
        .unwrap()
        .packs
        .iter()
        .find(|p| p.index.entries.len() == 4)
        .unwrap()
        .index
        .path
        .clone();
    let mut bytes = fs::read(&pack).unwrap();
    bytes[pack::HEADER_LEN as usize + 4096 + 17] ^= 0x01;
    fs::write(&pack, bytes).unwrap();
    let published = h.published();
    let r = h.chunks.reader(WAIT).unwrap();
    let problems = r.verify(published.iter().map(|(n, r)| (n.as_str(), r)));
    let who: Vec<_> = problems.iter().map(|p| (p.checkpoint.as_str(), p.digest)).collect();
    assert_eq!(who, vec![("c1", Digest::of(&page(2))), ("c2", Digest::of(&page(2)))]);
    assert!(problems
        .iter()
        .all(|p| p.problem == ChunkProblem::Corrupt(pack.clone()) && p.file == "pages-1.img"));
    drop(r);
    for name in ["c1", "c2"] {
        let e = h.restore(name).unwrap_err();
        assert!(
            matches!(e, ChunkError::CorruptChunk { digest, .. } if digest == Digest::of(&page(2))),
            "{e}"
        );
        assert!(e.is_corruption());
    }
    h.restore("c3").unwrap();
}

#[test]
fn removing_checkpoints_keeps_exactly_the_referenced_chunks() {
    let h = Harness::new();
    h.create("c1", &h.images("c1", 0, &[1, 2, 3, 4])).unwrap();
    h.create("c2", &h.images("c2", 0, &[1, 2, 3, 5])).unwrap();
    h.create("c3", &h.images("c3", 0, &[1, 6, 3, 5])).unwrap();
    let used = |h: &Harness| -> std::collections::BTreeSet<Digest> {
        h.published().iter().flat_map(|(_, r)| r.digests()).collect()
    };
    // The first checkpoint: its pack is rewritten without page 4.
    let report = h.remove("c1").unwrap();
    assert_eq!((report.packs_rewritten, report.bytes_freed), (1, 4096));
    assert_eq!(h.stored(), used(&h));
    for name in ["c2", "c3"] {
        h.restore(name).unwrap();
    }
    let report = h.remove("c3").unwrap();
    assert_eq!(report.bytes_freed, 4096, "page 6 alone");
    assert_eq!(h.stored(), used(&h));
    h.restore("c2").unwrap();
    h.remove("c2").unwrap();
    assert!(h.stored().is_empty());
    assert_eq!(fs::read_dir(h.chunks.dir().join("packs")).unwrap().count(), 0);
}

#[test]
fn a_lenient_policy_leaves_dead_bytes_in_packs() {
    let h = Harness::new();
    h.create("c1", &h.images("c1", 0, &[1, 2, 3, 4])).unwrap();
    let keep = Recipe::read(&h.root().join("checkpoints/c1").join(RECIPE_FILE)).unwrap();
    let mut only_three = keep.clone();
    only_three.files[0].chunks.truncate(3);
    only_three.files[0].size = 3 * 4096;
    let mut s = h.chunks.session(WAIT).unwrap();
    let report = s
        .collect([&only_three], CollectPolicy { max_dead_fraction: 0.5 })
        .unwrap();
    assert_eq!((report.packs_rewritten, report.dead_bytes_kept), (0, 4096));
    let report = s.collect([&only_three], CollectPolicy::EXACT).unwrap();
    assert_eq!((report.packs_rewritten, report.bytes_freed), (1, 4096));
}

#[test]
fn readers_share_and_writers_exclude() {
    let h = Harness::new();
    let r1 = h.chunks.reader(Duration::ZERO).unwrap();
    let r2 = h.chunks.reader(Duration::ZERO).unwrap();
    assert!(matches!(h.chunks.session(Duration::ZERO), Err(ChunkError::Busy { .. })));
    drop((r1, r2));
    let w = h.chunks.writer(Duration::ZERO).unwrap();
    assert!(matches!(
        h.chunks.reader(Duration::from_millis(60)),
        Err(ChunkError::Busy { .. })
    ));
    assert!(matches!(h.chunks.session(Duration::ZERO), Err(ChunkError::Busy { .. })));
    drop(w);
    h.chunks.session(Duration::ZERO).unwrap();
}

/// A collection that starts while a create is between "chunk present?"
/// and its publish waits for the create, then keeps what it published.
#[test]
fn collection_during_a_create_waits_and_keeps_the_new_checkpoint() {
    let h = Harness::new();
    h.create("c1", &h.images("c1", 0, &[1, 2, 3])).unwrap();
    let images = h.images("c2", 0, &[1, 2, 9]);
    let root = h.root().to_path_buf();
    let mut w = h.chunks.writer(WAIT).unwrap();
    let recipe = w.add_page_files(&images).unwrap();
    let session = w.commit().unwrap();
    // c1 is removed by another command, which wants to collect.
    fs::rename(root.join("checkpoints/c1"), root.join("staging/c1.rm")).unwrap();
    let chunks = h.chunks.clone();
    let collector = std::thread::spawn(move || {
        let mut s = chunks.session(WAIT).unwrap();
        let roots: Vec<Recipe> = fs::read_dir(root.join("checkpoints"))
            .unwrap()
            .map(|e| Recipe::read(&e.unwrap().path().join(RECIPE_FILE)).unwrap())
            .collect();
        s.collect(&roots, CollectPolicy::EXACT).unwrap()
    });
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !collector.is_finished(),
        "collection must wait for the create's session"
    );
    fs::create_dir(h.root().join("staging/c2")).unwrap();
    fs::write(h.root().join("staging/c2").join(RECIPE_FILE), recipe.to_bytes()).unwrap();
    fs::rename(h.root().join("staging/c2"), h.root().join("checkpoints/c2")).unwrap();
    drop(session);
    let report = collector.join().unwrap();
    assert_eq!(report.bytes_freed, 4096, "only page 3, which c2 does not use");
    h.restore("c2").unwrap();
}

#[test]
fn a_symlinked_chunk_store_or_pack_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("real")).unwrap();
    std::os::unix::fs::symlink("real", tmp.path().join("chunks")).unwrap();
    let e = ChunkStore::open(&tmp.path().join("chunks")).unwrap_err();
    assert!(matches!(e, ChunkError::Unsafe { .. }), "{e}");

    let h = Harness::new();
    h.create("c1", &h.images("c1", 0, &[1])).unwrap();
    let pack = h.a_pack();
    let moved = h.root().join("moved.pack");
    fs::rename(&pack, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &pack).unwrap();
    let r = h.chunks.reader(WAIT).unwrap();
    assert!(matches!(r.bad_packs(), [ChunkError::Unsafe { .. }]));
    assert!(!r.contains(&Digest::of(&page(1))));
}

#[test]
fn a_truncated_pack_is_reported_and_its_chunks_are_missing() {
    let h = Harness::new();
    h.create("c1", &h.images("c1", 0, &[1, 2])).unwrap();
    let pack = h.a_pack();
    let len = fs::metadata(&pack).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&pack)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let report = h.repair().unwrap();
    assert_eq!(report.bad_packs.len(), 1, "{report:?}");
    assert!(report.bad_packs[0].contains("cut short"), "{}", report.bad_packs[0]);
    assert_eq!(report.missing.len(), 2);
    assert!(pack.exists(), "repair keeps what it cannot read");
    let e = h.restore("c1").unwrap_err();
    assert!(matches!(e, ChunkError::MissingChunk { .. }), "{e}");
}

#[test]
fn identical_memory_writes_no_pack_and_an_empty_page_file_round_trips() {
    let h = Harness::new();
    h.create("c1", &h.images("c1", 0, &[1, 2])).unwrap();
    let s = h.create("c2", &h.images("c2", 0, &[1, 2])).unwrap();
    assert_eq!(s.new_chunks, 0);
    assert_eq!(h.chunks.reader(WAIT).unwrap().stats().packs, 1);
    let dir = h.root().join("images/empty");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("pages-1.img"), b"").unwrap();
    h.create("empty", &dir).unwrap();
    let out = h.restore("empty").unwrap();
    assert_eq!(fs::read(out.join("pages-1.img")).unwrap(), b"");
}
