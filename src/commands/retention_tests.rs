//! `ckpt prune` and `ckpt create --retain` through the fake engine and the
//! fake CRIU, with a real chunk store in the temp store.

use super::*;
use crate::cli::PruneArgs;

fn prune_args(retain: Option<usize>, older_than: Option<&str>, dry_run: bool) -> PruneArgs {
    PruneArgs {
        retain,
        older_than: older_than.map(|d| crate::cli::parse_duration(d).unwrap()),
        dry_run,
        json: true,
        checkpoint_dir: None,
        container: "web".into(),
    }
}

fn prune(w: &World, args: &PruneArgs) -> (serde_json::Value, u8, String) {
    let (text, code, err) = run(|out| prune::run(&w.ctx(), args, out));
    let v = match code {
        0 => serde_json::from_str(&text).unwrap(),
        _ => serde_json::Value::Null,
    };
    (v, code, err)
}

fn incremental(w: &World, name: &str) {
    let args = CreateArgs {
        incremental: true,
        ..create_args(name, true)
    };
    let (_, code, err) = run(|out| create::run(&w.ctx(), &args, out));
    assert_eq!(code, 0, "{err}");
}

fn names(v: &serde_json::Value) -> Vec<&str> {
    v.as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect()
}

fn packs(w: &World) -> usize {
    std::fs::read_dir(w.path("store/web/chunks/packs")).unwrap().count()
}

fn exists(w: &World, name: &str) -> bool {
    w.path(&format!("store/web/checkpoints/{name}")).exists()
}

#[test]
fn prune_retain_removes_the_oldest_and_frees_the_chunks_only_they_used() {
    let w = World::new();
    incremental(&w, "inc");
    checkpoint_at(&w, "web", "old", "2000-01-01T00:00:00Z");
    checkpoint_at(&w, "web", "newest", "2099-01-01T00:00:00Z");
    assert_eq!(packs(&w), 1);
    let (v, code, err) = prune(&w, &prune_args(Some(1), None, false));
    assert_eq!(code, 0, "{err}");
    assert_eq!(names(&v["removed"]), ["inc", "old"]);
    assert_eq!(names(&v["kept"]), ["newest"]);
    assert_eq!(v["container"], "web");
    assert_eq!(v["chunk_bytes_freed"].as_u64(), Some(4096), "{v}");
    assert!(!exists(&w, "inc") && !exists(&w, "old") && exists(&w, "newest"));
    assert_eq!(packs(&w), 0, "no checkpoint uses the chunk any more");
}

#[test]
fn prune_keeps_the_chunks_a_remaining_checkpoint_uses() {
    let w = World::new();
    // Made in the same second: the greater name is the newer.
    incremental(&w, "n1");
    incremental(&w, "n2");
    let (v, code, err) = prune(&w, &prune_args(Some(1), None, false));
    assert_eq!(code, 0, "{err}");
    assert_eq!(names(&v["removed"]), ["n1"]);
    assert_eq!(packs(&w), 1);
    let (_, code, err) = run(|out| start::run(&w.ctx(), &start_args("n2", None), out));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn prune_that_removes_nothing_still_frees_chunks_nothing_uses() {
    let w = World::new();
    incremental(&w, "gone");
    checkpoint_at(&w, "web", "newest", "2099-01-01T00:00:00Z");
    // What a crash between a removal and its collection leaves.
    std::fs::remove_dir_all(w.path("store/web/checkpoints/gone")).unwrap();
    assert_eq!(packs(&w), 1);
    let (v, code, err) = prune(&w, &prune_args(Some(5), None, false));
    assert_eq!(code, 0, "{err}");
    assert!(names(&v["removed"]).is_empty());
    assert_eq!((v["chunk_bytes_freed"].as_u64(), packs(&w)), (Some(4096), 0), "{v}");
}

#[test]
fn prune_dry_run_says_what_would_go_and_changes_nothing() {
    let w = World::new();
    incremental(&w, "n1");
    checkpoint_at(&w, "web", "newest", "2099-01-01T00:00:00Z");
    let mut args = prune_args(Some(1), None, true);
    let (v, code, err) = prune(&w, &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!((names(&v["removed"]), v["dry_run"].as_bool()), (vec!["n1"], Some(true)));
    assert!(exists(&w, "n1") && exists(&w, "newest"));
    assert_eq!(packs(&w), 1);
    args.json = false;
    let (text, code, err) = run(|out| prune::run(&w.ctx(), &args, out));
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("would remove checkpoint n1 of web"), "{text}");
    assert!(exists(&w, "n1"));
}

#[test]
fn prune_older_than_and_retain_must_both_agree() {
    let w = World::new();
    checkpoint_at(&w, "web", "a", "2000-01-01T00:00:00Z");
    checkpoint_at(&w, "web", "b", "2000-01-02T00:00:00Z");
    checkpoint_at(&w, "web", "recent", "2099-01-01T00:00:00Z");
    // Only "a" is both beyond the newest 2 and older than a day.
    let (v, code, err) = prune(&w, &prune_args(Some(2), Some("1d"), true));
    assert_eq!(code, 0, "{err}");
    assert_eq!(names(&v["removed"]), ["a"]);
    // Older than a day alone: a and b; the newest is never removed.
    let (v, code, err) = prune(&w, &prune_args(None, Some("1d"), false));
    assert_eq!(code, 0, "{err}");
    assert_eq!(names(&v["removed"]), ["b", "a"]);
    assert!(exists(&w, "recent") && !exists(&w, "a") && !exists(&w, "b"));
}

#[test]
fn prune_never_removes_a_checkpoint_whose_metadata_cannot_be_read() {
    let w = World::new();
    checkpoint_at(&w, "web", "a", "2000-01-01T00:00:00Z");
    checkpoint_at(&w, "web", "b", "2000-01-02T00:00:00Z");
    // Foreign (no ckpt.json), unreadable ckpt.json, unreadable time.
    std::fs::create_dir_all(w.path("store/web/checkpoints/foreign")).unwrap();
    checkpoint_at(&w, "web", "garbled", "2000-01-01T00:00:00Z");
    std::fs::write(w.path("store/web/checkpoints/garbled/ckpt.json"), "{").unwrap();
    checkpoint_at(&w, "web", "undated", "some day");
    let (v, code, err) = prune(&w, &prune_args(Some(1), None, false));
    assert_eq!(code, 0, "{err}");
    assert_eq!(names(&v["removed"]), ["a"]);
    for name in ["b", "foreign", "garbled", "undated"] {
        assert!(exists(&w, name), "{name}");
        assert!(names(&v["kept"]).contains(&name), "{name}: {v}");
    }
}

#[test]
fn prune_without_a_policy_or_with_retain_0_is_a_usage_error_and_removes_nothing() {
    let w = World::new();
    checkpoint_at(&w, "web", "a", "2000-01-01T00:00:00Z");
    checkpoint_at(&w, "web", "b", "2000-01-02T00:00:00Z");
    for (args, says) in [
        (
            prune_args(None, None, false),
            "give --retain N, --older-than DURATION, or both",
        ),
        (
            prune_args(Some(0), None, false),
            "--retain 0 would remove every checkpoint",
        ),
    ] {
        let (_, code, err) = prune(&w, &args);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(says), "{err}");
    }
    assert!(exists(&w, "a") && exists(&w, "b"));
}

#[test]
fn prune_of_a_container_without_checkpoints_does_nothing() {
    let w = World::new();
    let (v, code, err) = prune(&w, &prune_args(Some(1), None, false));
    assert_eq!(code, 0, "{err}");
    assert!(names(&v["removed"]).is_empty());
    assert!(!w.path("store/web").exists(), "nothing made for nothing");
}

#[test]
fn create_retain_keeps_the_newest_n_and_never_the_one_just_made_goes() {
    let w = World::new();
    checkpoint_at(&w, "web", "old", "2000-01-01T00:00:00Z");
    checkpoint_at(&w, "web", "older", "1999-01-01T00:00:00Z");
    // A clock step: this one looks newer than the one about to be made.
    checkpoint_at(&w, "web", "future", "2099-01-01T00:00:00Z");
    let args = CreateArgs {
        incremental: true,
        retain: Some(1),
        json: true,
        ..create_args("n1", true)
    };
    let (text, code, err) = run(|out| create::run(&w.ctx(), &args, out));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(names(&v["retention"]["removed"]), ["old", "older"], "{v}");
    assert!(exists(&w, "n1") && exists(&w, "future"));
    assert!(!exists(&w, "old") && !exists(&w, "older"));
    assert_eq!(packs(&w), 1, "n1's chunk stays");
    let (_, code, err) = run(|out| start::run(&w.ctx(), &start_args("n1", None), out));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn create_retain_0_is_refused_before_anything() {
    let w = World::new();
    checkpoint_at(&w, "web", "old", "2000-01-01T00:00:00Z");
    let args = CreateArgs {
        retain: Some(0),
        ..create_args("n1", true)
    };
    let (text, code, err) = run(|out| create::run(&w.ctx(), &args, out));
    assert_eq!((code, text.as_str()), (2, ""), "{err}");
    assert!(w.criu.runs().is_empty(), "CRIU never ran");
    assert_eq!(w.freezer(), "THAWED\n", "never frozen");
    assert!(exists(&w, "old") && !exists(&w, "n1"));
}
