//! Table tests of the incremental decisions.

use super::*;
use crate::chunks::{ChunkProblem, ChunkRef, Digest, FileRecipe, Problem};
use crate::store::{CheckpointMeta, FileDigest};

fn recipe(files: &[(&str, u8)]) -> Recipe {
    Recipe {
        files: files
            .iter()
            .map(|&(name, byte)| FileRecipe {
                name: name.into(),
                size: 4096,
                blake3: Digest::of(&[byte; 4096]),
                chunks: vec![ChunkRef {
                    len: 4096,
                    digest: Digest::of(&[byte; 4096]),
                }],
            })
            .collect(),
    }
}

#[test]
fn a_recipe_matches_only_the_record_made_of_it() {
    let made = record_of(&recipe(&[("pages-1.img", 1), ("pages-2.img", 2)]));
    assert_eq!(made.recipe, "pages.recipe");
    assert_eq!((made.chunk_size, made.chunk_rule.as_str()), (4096, "address"));
    assert_eq!(made.page_files["pages-1.img"].blake3, Digest::of(&[1; 4096]).to_hex());
    let mut renamed = made.clone();
    renamed.recipe = "other.recipe".into();
    #[rustfmt::skip]
    let table: &[(&str, IncrementalRecord, Recipe, Option<&str>)] = &[
        ("the same", made.clone(), recipe(&[("pages-1.img", 1), ("pages-2.img", 2)]), None),
        ("a file missing", made.clone(), recipe(&[("pages-1.img", 1)]), Some("does not rebuild pages-2.img")),
        ("other bytes", made.clone(), recipe(&[("pages-1.img", 1), ("pages-2.img", 3)]), Some("rebuilds pages-2.img other than")),
        ("a file more", made.clone(), recipe(&[("pages-1.img", 1), ("pages-2.img", 2), ("pages-3.img", 3)]), Some("rebuilds pages-3.img, which")),
        ("another recipe file", renamed, recipe(&[("pages-1.img", 1), ("pages-2.img", 2)]), Some("reads only pages.recipe")),
    ];
    for (what, record, recipe, want) in table {
        match (recipe_matches(record, recipe), want) {
            (Ok(()), None) => {}
            (Err(e), Some(w)) => assert!(e.contains(w), "{what}: {e}"),
            (got, _) => panic!("{what}: {got:?}"),
        }
    }
}

#[test]
fn damaged_chunks_are_named_with_their_file() {
    let d = Digest::of(b"x");
    let problems = [
        Problem {
            checkpoint: "n".into(),
            file: "pages-1.img".into(),
            digest: d,
            problem: ChunkProblem::Missing,
        },
        Problem {
            checkpoint: "n".into(),
            file: "pages-2.img".into(),
            digest: d,
            problem: ChunkProblem::Corrupt("/s/c/chunks/packs/a.pack".into()),
        },
    ];
    assert_eq!(
        describe_problems(&problems),
        format!("chunk {d} of pages-1.img is missing from the chunk store; chunk {d} of pages-2.img is corrupt (in /s/c/chunks/packs/a.pack)")
    );
}

#[test]
fn only_docker_containers_are_refused_incremental() {
    assert_eq!(incremental_refusal("web", false), None);
    let why = incremental_refusal("web", true).unwrap();
    assert!(
        why.contains("docker start --checkpoint") && why.contains("without --incremental"),
        "{why}"
    );
}

fn entry(name: &str, created_at: Option<&str>) -> CheckpointEntry {
    let meta = created_at.map(|t| {
        let mut m: CheckpointMeta = serde_json::from_value(serde_json::json!({
            "schema_version": 2, "tool": "t", "container_id": "c", "name": name, "runtime": "runc",
            "runtime_root": null, "bundle": null, "rootfs": null, "spec": {},
            "inventory": {"process_count": 1, "fd_count": 0, "anon_rss_bytes": 0, "processes": []},
            "criu_version": "4.1.1", "kernel": "6", "created_at": "", "frozen_ms": 0, "dump_ms": 0,
            "size_bytes": 0, "options": {"leave_running": false, "tcp_established": false,
            "file_locks": false, "ext_unix_sk": false}, "descriptors": [], "files": {}
        }))
        .unwrap();
        m.created_at = t.into();
        m
    });
    CheckpointEntry {
        container_id: "c".into(),
        name: name.into(),
        dir: format!("/s/c/checkpoints/{name}").into(),
        meta,
        size_bytes: 0,
    }
}

#[test]
fn latest_is_the_newest_complete_checkpoint() {
    let t1 = Some("2026-01-01T00:00:01Z");
    let t2 = Some("2026-01-01T00:00:02Z");
    #[rustfmt::skip]
    let table: &[(&str, &str, Vec<CheckpointEntry>, Choice)] = &[
        ("a plain name is itself", "n1", vec![entry("n1", t1), entry("n2", t2)], Choice::Named("n1".into())),
        ("newest by time, whatever the names", "latest", vec![entry("b", t1), entry("a", t2)], Choice::Latest("a".into())),
        ("a tie goes to the greater name", "latest", vec![entry("a", t2), entry("b", t2)], Choice::Latest("b".into())),
        ("foreign or unreadable ones never are", "latest", vec![entry("a", t1), entry("z", None)], Choice::Latest("a".into())),
        ("an unparsable time is never latest", "latest", vec![entry("a", t1), entry("z", Some("yesterday"))], Choice::Latest("a".into())),
        ("nothing complete", "latest", vec![entry("z", None)], Choice::NoneComplete),
        ("no checkpoints", "latest", vec![], Choice::NoneComplete),
        ("one literally named latest is that one", "latest", vec![entry("latest", t1), entry("b", t2)], Choice::Named("latest".into())),
    ];
    for (what, arg, entries, want) in table {
        assert_eq!(&choose(arg, entries), want, "{what}");
    }
}

#[test]
fn the_full_form_lists_the_page_files_instead_of_the_recipe() {
    let mut inc = entry("n", Some("2026-01-01T00:00:01Z")).meta.unwrap();
    let d = |size: u64, b: &str| FileDigest { size, blake3: b.into() };
    inc.schema_version = 3;
    inc.files.insert("pstree.img".into(), d(4, "p"));
    inc.files.insert("pages.recipe".into(), d(100, "r"));
    inc.size_bytes = 104;
    let mut record = record_of(&recipe(&[("pages-1.img", 1)]));
    record.page_files.insert("pages-2.img".into(), d(8192, "q"));
    inc.incremental = Some(record);
    let full = full_meta(&inc);
    assert_eq!((full.schema_version, full.incremental.as_ref()), (2, None));
    let names: Vec<&str> = full.files.keys().map(String::as_str).collect();
    assert_eq!(names, ["pages-1.img", "pages-2.img", "pstree.img"]);
    assert_eq!(full.files["pages-2.img"], d(8192, "q"));
    assert_eq!(full.size_bytes, 4 + 4096 + 8192);
    // A full checkpoint is its own full form.
    let plain = entry("n", Some("2026-01-01T00:00:01Z")).meta.unwrap();
    assert_eq!(full_meta(&plain), plain);
}
