//! `create --incremental`, and what `start`, `verify`, `rm` and `start
//! --checkpoint latest` do with incremental checkpoints, through the fake
//! engine and the fake CRIU (whose dump writes `pages-1.img`: one page of
//! 7s) and a real chunk store in the temp store.

use super::*;

fn incremental(name: &str) -> CreateArgs {
    CreateArgs {
        incremental: true,
        json: true,
        ..create_args(name, true)
    }
}

fn created(w: &World, name: &str) -> serde_json::Value {
    let (text, code, err) = run(|out| create::run(&w.ctx(), &incremental(name), out));
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&text).unwrap()
}

/// The packs of `web`'s chunk store.
fn packs(w: &World) -> Vec<std::path::PathBuf> {
    let mut packs: Vec<_> = std::fs::read_dir(w.path("store/web/chunks/packs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    packs.sort();
    packs
}

#[test]
fn create_incremental_publishes_a_recipe_instead_of_page_files() {
    let w = World::new();
    let v = created(&w, "n1");
    assert_eq!(
        (
            v["incremental"]["logical_bytes"].as_u64(),
            v["incremental"]["new_bytes"].as_u64()
        ),
        (Some(4096), Some(4096))
    );
    let dir = w.path("store/web/checkpoints/n1");
    assert!(!dir.join("pages-1.img").exists(), "the page file is in the chunk store");
    assert!(dir.join("pages.recipe").is_file());
    let entry = w.store().load("web", "n1").unwrap();
    w.store().verify(&entry).unwrap();
    let meta = entry.meta.unwrap();
    assert_eq!(meta.schema_version, 3);
    let record = meta.incremental.unwrap();
    assert_eq!(
        record.page_files["pages-1.img"].blake3,
        blake3::hash(&[7u8; 4096]).to_hex().to_string()
    );
    assert!(meta.files.contains_key("pages.recipe") && !meta.files.contains_key("pages-1.img"));
    assert_eq!(packs(&w).len(), 1);

    // The same pages again: nothing new is stored.
    let v = created(&w, "n2");
    assert_eq!(v["incremental"]["new_bytes"].as_u64(), Some(0), "{v}");
    assert_eq!(packs(&w).len(), 1);
}

#[test]
fn create_without_incremental_is_unchanged() {
    let w = World::new();
    let (_, code, err) = run(|out| create::run(&w.ctx(), &create_args("n1", true), out));
    assert_eq!(code, 0, "{err}");
    let meta = w.store().load("web", "n1").unwrap().meta.unwrap();
    assert_eq!((meta.schema_version, meta.incremental), (2, None));
    assert!(w.path("store/web/checkpoints/n1/pages-1.img").is_file());
    assert!(
        !w.path("store/web/chunks").exists(),
        "no chunk store for a full checkpoint"
    );
}

#[test]
fn create_incremental_of_a_docker_container_is_refused_before_anything() {
    let mut w = World::new();
    w.script().container.as_mut().unwrap().runtime = crate::engine::RuntimeKind::Docker;
    let (text, code, err) = run(|out| create::run(&w.ctx(), &incremental("n1"), out));
    assert_eq!((code, text.as_str()), (2, ""), "{err}");
    assert!(
        err.contains("docker start --checkpoint` restores only whole page files"),
        "{err}"
    );
    assert!(w.criu.runs().is_empty(), "CRIU never ran");
    assert!(!w.path("store/web").exists(), "nothing was written");
    assert_eq!(w.freezer(), "THAWED\n", "never frozen");
}

#[test]
fn start_of_an_incremental_checkpoint_reassembles_into_a_work_dir() {
    let w = World::new();
    created(&w, "n1");
    let (_, code, err) = run(|out| start::run(&w.ctx(), &start_args("n1", None), out));
    assert_eq!(code, 0, "{err}");
    let (images, files) = w.engine.restored_images().unwrap();
    assert!(
        images.starts_with(w.path("store/web/.ckpt-staging")),
        "{}",
        images.display()
    );
    assert_eq!(files["pages-1.img"], vec![7u8; 4096]);
    assert_eq!(files["pstree.img"], b"tree");
    assert!(!files.contains_key("pages.recipe") && !files.contains_key("ckpt.json"));
    assert!(!images.exists(), "the work dir goes after the restore");
    let dir = w.path("store/web/checkpoints/n1");
    assert!(!dir.join("pages-1.img").exists(), "nothing written into the checkpoint");
}

/// Flips one byte of the chunk data in `web`'s only pack.
fn flip_a_chunk_byte(w: &World) {
    let pack = &packs(w)[0];
    let mut bytes = std::fs::read(pack).unwrap();
    // Chunk data starts at 4096 (packs keep chunks block-aligned).
    bytes[4096 + 100] ^= 0x01;
    std::fs::write(pack, bytes).unwrap();
}

#[test]
fn start_with_a_corrupt_chunk_is_refused_naming_it_and_starts_nothing() {
    let w = World::new();
    created(&w, "n1");
    flip_a_chunk_byte(&w);
    let before = w.engine.calls().len();
    let digest = blake3::hash(&[7u8; 4096]).to_hex().to_string();
    let (text, code, err) = run(|out| start::run(&w.ctx(), &start_args("n1", None), out));
    assert_eq!((code, text.as_str()), (7, ""), "{err}");
    assert!(err.contains("nothing was started"), "{err}");
    assert!(err.contains("cannot reassemble checkpoint n1 of web"), "{err}");
    assert!(err.contains(&digest) && err.contains("pages-1.img is corrupt"), "{err}");
    assert_eq!(
        w.engine.calls()[before..],
        ["home web", "check_restore", "restore_facts"]
    );
    let leftovers: Vec<_> = std::fs::read_dir(w.path("store/web/.ckpt-staging")).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // verify says the same, by chunk.
    let (_, code, err) = run(|out| verify::run(&w.ctx(), &verify_args("n1"), out));
    assert_eq!(code, 7, "{err}");
    assert!(err.contains(&digest) && err.contains("pages-1.img is corrupt"), "{err}");
}

#[test]
fn start_with_a_missing_chunk_is_refused_naming_it() {
    let w = World::new();
    created(&w, "n1");
    std::fs::remove_file(&packs(&w)[0]).unwrap();
    let (_, code, err) = run(|out| start::run(&w.ctx(), &start_args("n1", None), out));
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("pages-1.img is missing from the chunk store"), "{err}");
    assert!(!w.engine.calls().iter().any(|c| c.starts_with("prepare")));
}

#[test]
fn verify_of_an_intact_incremental_checkpoint_checks_its_chunks() {
    let w = World::new();
    created(&w, "n1");
    let (text, code, err) = run(|out| verify::run(&w.ctx(), &verify_args("n1"), out));
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains("every checksum matches, and every chunk of its page files"),
        "{text}"
    );
}

fn rm_args(name: &str) -> RmArgs {
    RmArgs {
        checkpoint_dir: None,
        container: "web".into(),
        name: name.into(),
    }
}

#[test]
fn rm_collects_the_chunks_nothing_uses_any_more() {
    let w = World::new();
    created(&w, "n1");
    created(&w, "n2");
    // Only n2 remains: its chunk stays.
    let (_, code, err) = run(|out| rm::run(&w.ctx(), &rm_args("n1"), out));
    assert_eq!(code, 0, "{err}");
    assert_eq!(packs(&w).len(), 1);
    let (_, code, err) = run(|out| start::run(&w.ctx(), &start_args("n2", None), out));
    assert_eq!(code, 0, "{err}");
    // Nothing uses it now.
    let (_, code, err) = run(|out| rm::run(&w.ctx(), &rm_args("n2"), out));
    assert_eq!(code, 0, "{err}");
    assert!(packs(&w).is_empty(), "{:?}", packs(&w));
}

#[test]
fn rm_keeps_chunks_a_full_checkpoint_never_had() {
    let w = World::new();
    created(&w, "inc");
    w.checkpoint("full");
    let (_, code, err) = run(|out| rm::run(&w.ctx(), &rm_args("full"), out));
    assert_eq!(code, 0, "{err}");
    assert_eq!(packs(&w).len(), 1);
}

#[test]
fn start_latest_restores_the_newest_complete_checkpoint() {
    let w = World::new();
    checkpoint_at(&w, "web", "old", "2026-01-01T00:00:00Z");
    checkpoint_at(&w, "web", "new", "2026-01-02T00:00:00Z");
    // Not a ckpt checkpoint: never "latest".
    std::fs::create_dir_all(w.path("store/web/checkpoints/zzz")).unwrap();
    let mut args = start_args("latest", None);
    args.json = true;
    let (text, code, err) = run(|out| start::run(&w.ctx(), &args, out));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["checkpoint"], "new");
}

#[test]
fn start_latest_without_a_checkpoint_is_not_found() {
    let w = World::new();
    let (_, code, err) = run(|out| start::run(&w.ctx(), &start_args("latest", None), out));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("no checkpoint named \"latest\""), "{err}");
    assert!(!w.path("store/web").exists());
}

#[test]
fn create_incremental_into_a_symlinked_chunk_store_is_refused_and_the_container_kept() {
    let w = World::new();
    // A first checkpoint makes the container's directory.
    w.checkpoint("n0");
    std::fs::create_dir_all(w.path("elsewhere")).unwrap();
    symlink(w.path("elsewhere"), w.path("store/web/chunks")).unwrap();
    let args = CreateArgs {
        incremental: true,
        ..create_args("n1", false)
    };
    let (_, code, err) = run(|out| create::run(&w.ctx(), &args, out));
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("store/web/chunks") && err.contains("symlink"), "{err}");
    assert!(!w.path("store/web/checkpoints/n1").exists(), "nothing published");
    assert_eq!(
        std::fs::read_dir(w.path("elsewhere")).unwrap().count(),
        0,
        "nothing written through it"
    );
    assert!(
        !w.engine.calls().iter().any(|c| c.starts_with("stop_after_dump")),
        "the container is not stopped: {:?}",
        w.engine.calls()
    );
    assert_eq!(w.freezer(), "THAWED", "thawed again");
}

/// `ls --json` rows of web, by name: (size, logical, exclusive).
fn ls_sizes(w: &World) -> BTreeMap<String, (u64, u64, Option<u64>)> {
    let args = LsArgs {
        checkpoint_dir: None,
        json: true,
        format: None,
        container: Some("web".into()),
    };
    let (text, code, err) = run(|out| ls::run(&w.ctx(), &args, out));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                (
                    r["size_bytes"].as_u64().unwrap(),
                    r["logical_bytes"].as_u64().unwrap(),
                    r["exclusive_bytes"].as_u64(),
                ),
            )
        })
        .collect()
}

#[test]
fn ls_shows_the_logical_size_and_the_bytes_only_each_checkpoint_holds() {
    let w = World::new();
    created(&w, "n1");
    created(&w, "n2");
    w.checkpoint("full");
    let sizes = ls_sizes(&w);
    // A full checkpoint: both are its size.
    let (size, logical, exclusive) = sizes["full"];
    assert_eq!((logical, exclusive), (size, Some(size)));
    // n1 and n2 share their one chunk: neither holds it alone.
    for name in ["n1", "n2"] {
        let (size, logical, exclusive) = sizes[name];
        assert_eq!((logical, exclusive), (size + 4096, Some(size)), "{name}");
    }
    let (_, code, err) = run(|out| rm::run(&w.ctx(), &rm_args("n1"), out));
    assert_eq!(code, 0, "{err}");
    let (size, logical, exclusive) = ls_sizes(&w)["n2"];
    assert_eq!(
        (logical, exclusive),
        (size + 4096, Some(size + 4096)),
        "n2 alone holds it now"
    );

    // A recipe that cannot be read: what each holds alone is unknown.
    created(&w, "n3");
    std::fs::write(w.path("store/web/checkpoints/n3/pages.recipe"), b"garbage").unwrap();
    let sizes = ls_sizes(&w);
    assert_eq!(sizes["n2"].2, None, "{sizes:?}");
    assert_eq!(sizes["full"].2, Some(sizes["full"].0));
    let args = LsArgs {
        checkpoint_dir: None,
        json: false,
        format: None,
        container: Some("web".into()),
    };
    let (text, _, _) = run(|out| ls::run(&w.ctx(), &args, out));
    assert!(
        text.lines()
            .any(|l| l.starts_with("web ") && l.contains("n2") && l.contains(" - ")),
        "{text}"
    );
}

fn verify_all(container: Option<&str>, repair: bool) -> VerifyArgs {
    VerifyArgs {
        json: true,
        all: true,
        repair,
        container: container.map(str::to_string),
        name: None,
    }
}

#[test]
fn verify_all_reports_a_bad_shared_chunk_for_every_checkpoint_using_it() {
    let w = World::new();
    created(&w, "n1");
    created(&w, "n2");
    w.checkpoint("full");
    let (text, code, err) = run(|out| verify::run(&w.ctx(), &verify_all(Some("web"), false), out));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["damaged"], 0);
    assert_eq!(v["checkpoints"].as_array().unwrap().len(), 3, "{v}");

    flip_a_chunk_byte(&w);
    let digest = blake3::hash(&[7u8; 4096]).to_hex().to_string();
    for container in [Some("web"), None] {
        let (text, code, err) = run(|out| verify::run(&w.ctx(), &verify_all(container, false), out));
        assert_eq!(code, 7, "{err}");
        assert!(err.contains("2 of 3 checkpoint(s) are damaged"), "{err}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        for c in v["checkpoints"].as_array().unwrap() {
            let bad = c["name"] != "full";
            assert_eq!(c["intact"], !bad, "{c}");
            if bad {
                let p = c["problem"].as_str().unwrap();
                assert!(p.contains(&digest) && p.contains("is corrupt"), "{p}");
            }
        }
    }
}

#[test]
fn verify_all_repair_collects_what_nothing_uses_and_never_a_used_chunk() {
    let w = World::new();
    created(&w, "gone");
    created(&w, "kept");
    // As a crashed rm leaves it: "gone" removed, its chunks not collected.
    std::fs::remove_dir_all(w.path("store/web/checkpoints/gone")).unwrap();
    assert_eq!(packs(&w).len(), 1);
    // The pack is used by "kept": repair keeps it, even corrupt.
    flip_a_chunk_byte(&w);
    let (text, code, _) = run(|out| verify::run(&w.ctx(), &verify_all(Some("web"), true), out));
    assert_eq!(code, 7);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["repaired"][0]["packs_removed"], 0, "{v}");
    assert_eq!(packs(&w).len(), 1, "a used chunk is never removed");
    // Nothing uses it any more: repair removes it.
    std::fs::remove_dir_all(w.path("store/web/checkpoints/kept")).unwrap();
    w.checkpoint("full");
    let (text, code, err) = run(|out| verify::run(&w.ctx(), &verify_all(Some("web"), true), out));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["repaired"][0]["packs_removed"], 1, "{v}");
    assert!(packs(&w).is_empty());
}

#[test]
fn verify_repair_without_all_is_a_usage_error() {
    let w = World::new();
    created(&w, "n1");
    let mut args = verify_args("n1");
    args.repair = true;
    let (_, code, err) = run(|out| verify::run(&w.ctx(), &args, out));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--repair goes with --all"), "{err}");
}
