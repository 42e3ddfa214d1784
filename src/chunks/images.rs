//! Finding the page files of a CRIU image directory and the pagemap runs
//! that say where to cut them.
//!
//! Reads only: `pages-*.img` are stat-ed, `pagemap*.img` (per process and
//! per shmem segment) are read and parsed. A pagemap that cannot be parsed,
//! or two that claim the same pages file, leave that file without runs: it
//! is then cut by file offset (still correct, only less shared).
use super::fsutil::{open_read, read_small_file};
use super::pagemap::{Pagemap, Run};
use super::{io_err, ChunkError};
use std::collections::btree_map::{BTreeMap, Entry};
use std::fs;
use std::path::{Path, PathBuf};

/// A page file of an image directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageFile {
    /// `pages-<n>.img`
    pub name: String,
    pub path: PathBuf,
    pub len: u64,
    /// The present runs its pagemap describes, in file order.
    pub runs: Option<Vec<Run>>,
}

/// Whether `name` is a CRIU page file, `pages-<n>.img`.
pub fn is_page_file(name: &str) -> bool {
    pages_id(name).is_some()
}

fn pages_id(name: &str) -> Option<u32> {
    name.strip_prefix("pages-")?.strip_suffix(".img")?.parse().ok()
}

/// The page files of `dir`, sorted by name, each with its runs if a
/// pagemap describes it.
pub fn page_files(dir: &Path) -> Result<Vec<PageFile>, ChunkError> {
    let mut pages = BTreeMap::new();
    let mut pagemaps = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("read", dir))? {
        let entry = entry.map_err(io_err("read", dir))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if let Some(id) = pages_id(&name) {
            pages.insert(id, name);
        } else if name.starts_with("pagemap") && name.ends_with(".img") {
            pagemaps.push(entry.path());
        }
    }
    // pages_id → runs; a second pagemap for the same id poisons it (None).
    let mut runs: BTreeMap<u32, Option<Vec<Run>>> = BTreeMap::new();
    for path in pagemaps {
        let parsed = read_small_file(&path).map(|b| Pagemap::parse(&b));
        match parsed {
            Ok(Ok(pm)) => match runs.entry(pm.pages_id) {
                Entry::Vacant(slot) => {
                    slot.insert(Some(pm.present_runs()));
                }
                Entry::Occupied(mut slot) => {
                    log::debug!("two pagemaps name pages-{}.img; cutting it by offset", pm.pages_id);
                    *slot.get_mut() = None;
                }
            },
            Ok(Err(e)) => log::debug!("cannot parse {}: {e}; its pages are cut by offset", path.display()),
            Err(e) => return Err(e),
        }
    }
    let mut out = Vec::new();
    for (id, name) in pages {
        let path = dir.join(&name);
        let len = open_read(&path)?.metadata().map_err(io_err("inspect", &path))?.len();
        out.push(PageFile {
            name,
            path,
            len,
            runs: runs.remove(&id).flatten(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::pagemap::tests::image;
    use super::*;

    #[test]
    fn finds_page_files_and_their_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        fs::write(d.join("pages-1.img"), vec![1u8; 3 * 4096]).unwrap();
        fs::write(d.join("pages-2.img"), vec![2u8; 4096]).unwrap();
        fs::write(d.join("pages-3.img"), vec![3u8; 4096]).unwrap();
        fs::write(d.join("pagemap-1.img"), image(1, &[(0x10000, 3, Some(4))])).unwrap();
        fs::write(d.join("pagemap-shmem-9.img"), image(2, &[(0x0, 1, Some(4))])).unwrap();
        fs::write(d.join("pagemap-7.img"), b"garbage").unwrap();
        // Three pagemaps claim pages-3.img: none of them is believed.
        for pid in [31, 32, 33] {
            fs::write(d.join(format!("pagemap-{pid}.img")), image(3, &[(0x0, 1, Some(4))])).unwrap();
        }
        fs::write(d.join("core-1.img"), b"x").unwrap();
        fs::write(d.join("pages-x.img"), b"not a page file name").unwrap();
        let files = page_files(d).unwrap();
        let summary: Vec<_> = files.iter().map(|f| (f.name.as_str(), f.len, f.runs.clone())).collect();
        assert_eq!(
            summary,
            vec![
                (
                    "pages-1.img",
                    3 * 4096,
                    Some(vec![Run {
                        vaddr: 0x10000,
                        len: 3 * 4096
                    }])
                ),
                ("pages-2.img", 4096, Some(vec![Run { vaddr: 0, len: 4096 }])),
                ("pages-3.img", 4096, None),
            ]
        );
    }

    #[test]
    fn a_symlinked_page_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("elsewhere"), b"x").unwrap();
        std::os::unix::fs::symlink("elsewhere", tmp.path().join("pages-1.img")).unwrap();
        let e = page_files(tmp.path()).unwrap_err();
        assert!(matches!(e, ChunkError::Unsafe { .. }), "{e}");
    }
}
