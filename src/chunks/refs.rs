//! Reference counts, derived from recipes. Pure.
//!
//! Like Flink's `SharedStateRegistry`, a chunk lives while a checkpoint
//! uses it. Unlike Flink, ckpt never stores the counts: they are a
//! function of the published recipes, computed when needed (recounting 10
//! recipes of 1 GiB takes ~0.1 s; docs/incremental.md). So no crash can
//! leave a count out of step with the checkpoints, and "repair" is the
//! same computation as every other collection.
use super::{Digest, Recipe};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// How many recipes use each chunk (a recipe that uses a chunk twice
/// counts once).
pub fn counts<'a>(recipes: impl IntoIterator<Item = &'a Recipe>) -> HashMap<Digest, u32> {
    // (count, index of the last recipe counted), so that a chunk a recipe
    // uses twice counts once, without sorting each recipe.
    let mut counts: HashMap<Digest, (u32, usize)> = HashMap::new();
    for (i, r) in recipes.into_iter().enumerate() {
        counts.reserve(r.files.iter().map(|f| f.chunks.len()).sum::<usize>() / 4);
        for c in r.files.iter().flat_map(|f| &f.chunks) {
            let e = counts.entry(c.digest).or_insert((0, usize::MAX));
            if e.1 != i {
                *e = (e.0 + 1, i);
            }
        }
    }
    counts.into_iter().map(|(d, (n, _))| (d, n)).collect()
}

/// Every chunk that `recipes` use, each once.
pub fn live<'a>(recipes: impl IntoIterator<Item = &'a Recipe>) -> HashSet<Digest> {
    let mut set = HashSet::new();
    for r in recipes {
        let chunks = r.files.iter().flat_map(|f| &f.chunks);
        set.reserve(r.files.iter().map(|f| f.chunks.len()).sum::<usize>() / 4);
        set.extend(chunks.map(|c| c.digest));
    }
    set
}

/// The chunks that no recipe of `remaining` uses once `removed` is gone:
/// what removing it frees.
pub fn released_by<'a>(removed: &Recipe, remaining: impl IntoIterator<Item = &'a Recipe>) -> BTreeSet<Digest> {
    let still = live(remaining);
    removed.digests().into_iter().filter(|d| !still.contains(d)).collect()
}

/// The chunks of `present` that no recipe uses.
pub fn unreferenced<'a>(
    present: impl IntoIterator<Item = Digest>,
    recipes: impl IntoIterator<Item = &'a Recipe>,
) -> BTreeSet<Digest> {
    let used = live(recipes);
    present.into_iter().filter(|d| !used.contains(d)).collect()
}

/// What `ls` shows per checkpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sizes {
    /// The size of its page files, as a full checkpoint would hold them.
    pub logical: u64,
    /// Bytes of the chunks that only this checkpoint uses: what removing
    /// it frees.
    pub only_here: u64,
    /// Bytes of its distinct chunks that other checkpoints use too.
    pub shared: u64,
}

/// [`Sizes`] of each named recipe, against all of them.
pub fn sizes<'a>(recipes: &[(&'a str, &'a Recipe)]) -> BTreeMap<&'a str, Sizes> {
    let counts = counts(recipes.iter().map(|(_, r)| *r));
    recipes
        .iter()
        .map(|&(name, r)| {
            let mut s = Sizes {
                logical: r.logical_bytes(),
                ..Sizes::default()
            };
            let mut seen = HashSet::new();
            for c in r.files.iter().flat_map(|f| &f.chunks) {
                if !seen.insert(c.digest) {
                    continue;
                }
                if counts[&c.digest] == 1 {
                    s.only_here += u64::from(c.len);
                } else {
                    s.shared += u64::from(c.len);
                }
            }
            (name, s)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunks::{ChunkRef, FileRecipe};

    /// A one-file recipe of 100-byte chunks named by the given numbers.
    fn recipe(chunks: &[u8]) -> Recipe {
        Recipe {
            files: vec![FileRecipe {
                name: "pages-1.img".into(),
                size: 100 * chunks.len() as u64,
                blake3: Digest::of(chunks),
                chunks: chunks
                    .iter()
                    .map(|&n| ChunkRef {
                        len: 100,
                        digest: Digest::of(&[n]),
                    })
                    .collect(),
            }],
        }
    }
    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[test]
    fn counts_are_per_recipe() {
        let (a, b) = (recipe(&[1, 2, 2]), recipe(&[2, 3]));
        let c = counts([&a, &b]);
        assert_eq!((c[&d(1)], c[&d(2)], c[&d(3)]), (1, 2, 1));
    }

    #[test]
    fn table_of_releases() {
        // (removed, remaining, freed)
        type Case<'a> = (&'a [u8], Vec<&'a [u8]>, Vec<u8>);
        let cases: Vec<Case> = vec![
            (&[1, 2], vec![], vec![1, 2]),
            (&[1, 2], vec![&[2, 3]], vec![1]),
            (&[1, 2], vec![&[2], &[1]], vec![]),
            (&[], vec![&[1]], vec![]),
            (&[4, 4], vec![&[1]], vec![4]),
        ];
        for (removed, remaining, freed) in cases {
            let rem: Vec<Recipe> = remaining.iter().map(|r| recipe(r)).collect();
            let got = released_by(&recipe(removed), &rem);
            let want: BTreeSet<Digest> = freed.iter().map(|&n| d(n)).collect();
            assert_eq!(got, want, "{removed:?} {remaining:?}");
        }
    }

    #[test]
    fn live_is_the_union() {
        let got = live([&recipe(&[1, 2, 2]), &recipe(&[2, 3]), &recipe(&[])]);
        assert_eq!(got, [d(1), d(2), d(3)].into_iter().collect());
    }

    #[test]
    fn unreferenced_is_present_minus_used() {
        let got = unreferenced([d(1), d(2), d(3)], [&recipe(&[2]), &recipe(&[9])]);
        assert_eq!(got, [d(1), d(3)].into_iter().collect());
    }

    #[test]
    fn sizes_split_only_here_from_shared() {
        let (a, b, c) = (recipe(&[1, 2, 3]), recipe(&[2, 3, 4, 4]), recipe(&[5]));
        let s = sizes(&[("a", &a), ("b", &b), ("c", &c)]);
        assert_eq!(
            s["a"],
            Sizes {
                logical: 300,
                only_here: 100,
                shared: 200
            }
        );
        // Chunk 4 twice in one file: the file is 400 bytes, the chunk stored once.
        assert_eq!(
            s["b"],
            Sizes {
                logical: 400,
                only_here: 100,
                shared: 200
            }
        );
        assert_eq!(
            s["c"],
            Sizes {
                logical: 100,
                only_here: 100,
                shared: 0
            }
        );
    }
}
