//! Tests of the store through its public API, each in its own temp store.
//! None needs root.
use super::metadata::{DumpOptionsRecord, META_FILE, SEAL_FILE};
use super::*;
use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::time::Duration;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A plausible `CheckpointMeta`; `files` and `size_bytes` are left for
/// `publish` to fill in.
fn meta(container_id: &str, name: &str, created_at: &str) -> CheckpointMeta {
    CheckpointMeta {
        schema_version: SCHEMA_VERSION,
        tool: "ckpt 0.1.0".into(),
        container_id: container_id.into(),
        name: name.into(),
        runtime: "runc".into(),
        runtime_root: Some("/run/runc".into()),
        bundle: Some("/srv/bundles/web".into()),
        rootfs: Some("/srv/bundles/web/rootfs".into()),
        spec: serde_json::json!({"ociVersion": "1.0.2"}),
        inventory: InventorySummary {
            process_count: 1,
            fd_count: 3,
            anon_rss_bytes: 4096,
            processes: vec![(1, "sleep".into())],
        },
        criu_version: "3.19".into(),
        kernel: "6.1.0".into(),
        created_at: created_at.into(),
        frozen_ms: 12,
        dump_ms: 80,
        size_bytes: 0,
        options: DumpOptionsRecord::default(),
        descriptors: vec!["/dev/null".into(), "pipe:[1]".into(), "pipe:[2]".into()],
        files: Default::default(),
        imported: None,
        incremental: None,
    }
}

fn new_store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    (tmp, store)
}

/// Stages and publishes a checkpoint with two images and a descriptors file.
fn publish(store: &Store, id: &str, name: &str, created_at: &str) -> PathBuf {
    let staging = store.begin(id, name).unwrap();
    staging.write_file("core-1.img", b"core image bytes").unwrap();
    staging.write_file("pages-1.img", &vec![7u8; 3000]).unwrap();
    staging.write_file("descriptors.json", b"[\"/dev/null\"]").unwrap();
    staging.publish(meta(id, name, created_at)).unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn corrupt_reason(store: &Store, name: &str) -> String {
    let entry = store.load(ID, name).unwrap();
    match store.verify(&entry) {
        Err(StoreError::Corrupt { reason, .. }) => reason,
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn layout_paths() {
    let l = Layout::new(Path::new("/var/lib/ckpt"));
    assert_eq!(l.root(), Path::new("/var/lib/ckpt"));
    assert_eq!(l.container_dir("web"), Path::new("/var/lib/ckpt/web"));
    assert_eq!(l.checkpoints_dir("web"), Path::new("/var/lib/ckpt/web/checkpoints"));
    assert_eq!(
        l.checkpoint_dir("web", "cp1"),
        Path::new("/var/lib/ckpt/web/checkpoints/cp1")
    );
    assert_eq!(l.staging_root("web"), Path::new("/var/lib/ckpt/web/.ckpt-staging"));
    assert_eq!(l.lock_path("web"), Path::new("/var/lib/ckpt/web/.ckpt.lock"));
}

#[test]
fn publish_list_load_verify_round_trip() {
    let (_tmp, store) = new_store();
    let dir = publish(&store, ID, "cp1", "2024-05-01T10:00:00Z");
    assert_eq!(dir, store.layout().checkpoint_dir(ID, "cp1"));

    let listed = store.list(None).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "cp1");
    assert_eq!(listed[0].container_id, ID);
    let m = listed[0].meta.as_ref().expect("ckpt-made checkpoint has meta");
    assert_eq!(m.size_bytes, 16 + 3000 + 13);
    assert_eq!(
        m.files.keys().collect::<Vec<_>>(),
        ["core-1.img", "descriptors.json", "pages-1.img"]
    );
    assert_eq!(m.files["core-1.img"].size, 16);
    // blake3("core image bytes"), lower-case hex.
    assert_eq!(m.files["core-1.img"].blake3.len(), 64);
    assert!(m.files["core-1.img"]
        .blake3
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    let json_len = fs::metadata(dir.join(META_FILE)).unwrap().len();
    let seal_len = fs::metadata(dir.join(SEAL_FILE)).unwrap().len();
    assert_eq!(listed[0].size_bytes, m.size_bytes + json_len + seal_len);

    let loaded = store.load(ID, "cp1").unwrap();
    assert_eq!(loaded.meta, listed[0].meta);
    store.verify(&loaded).unwrap();
    assert_eq!(store.list(Some(ID)).unwrap().len(), 1);
    // Nothing is left in staging.
    assert_eq!(fs::read_dir(store.layout().staging_root(ID)).unwrap().count(), 0);
}

#[test]
fn blake3_is_the_known_digest() {
    let (_tmp, store) = new_store();
    let staging = store.begin(ID, "abc").unwrap();
    staging.write_file("x.img", b"abc").unwrap();
    staging.publish(meta(ID, "abc", "2024-01-01T00:00:00Z")).unwrap();
    let m = store.load(ID, "abc").unwrap().meta.unwrap();
    assert_eq!(
        m.files["x.img"].blake3,
        // The BLAKE3 test vector for "abc".
        "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
    );
}

#[test]
fn published_dirs_are_0700_and_files_0600_even_if_criu_wrote_0644() {
    let (_tmp, store) = new_store();
    let staging = store.begin(ID, "cp1").unwrap();
    // CRIU creates its images itself, with its own modes.
    let img = staging.dir().join("pages-1.img");
    fs::write(&img, b"memory").unwrap();
    fs::set_permissions(&img, fs::Permissions::from_mode(0o644)).unwrap();
    fs::create_dir(staging.dir().join("sub")).unwrap();
    fs::set_permissions(staging.dir().join("sub"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(staging.dir().join("sub/extra.img"), b"x").unwrap();
    staging.write_file("descriptors.json", b"[]").unwrap();
    let dir = staging.publish(meta(ID, "cp1", "2024-01-01T00:00:00Z")).unwrap();

    let l = store.layout();
    for d in [
        l.root(),
        &l.container_dir(ID),
        &l.checkpoints_dir(ID),
        &l.staging_root(ID),
        &dir,
        &dir.join("sub"),
    ] {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }
    for f in ["pages-1.img", "descriptors.json", META_FILE, SEAL_FILE, "sub/extra.img"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    let m = store.load(ID, "cp1").unwrap().meta.unwrap();
    assert!(m.files.contains_key("sub/extra.img"), "{:?}", m.files.keys());
    store.verify(&store.load(ID, "cp1").unwrap()).unwrap();
}

#[test]
fn verify_names_a_flipped_byte() {
    let (_tmp, store) = new_store();
    let dir = publish(&store, ID, "cp1", "2024-01-01T00:00:00Z");
    let mut bytes = fs::read(dir.join("pages-1.img")).unwrap();
    bytes[1234] ^= 0x01;
    fs::write(dir.join("pages-1.img"), bytes).unwrap();
    assert_eq!(corrupt_reason(&store, "cp1"), "pages-1.img: checksum mismatch");
}

#[test]
fn verify_names_a_truncated_file() {
    let (_tmp, store) = new_store();
    let dir = publish(&store, ID, "cp1", "2024-01-01T00:00:00Z");
    fs::write(dir.join("pages-1.img"), vec![7u8; 10]).unwrap();
    assert_eq!(corrupt_reason(&store, "cp1"), "pages-1.img: size 10, expected 3000");
}

#[test]
fn verify_names_a_missing_file() {
    let (_tmp, store) = new_store();
    let dir = publish(&store, ID, "cp1", "2024-01-01T00:00:00Z");
    fs::remove_file(dir.join("core-1.img")).unwrap();
    assert_eq!(corrupt_reason(&store, "cp1"), "core-1.img: missing");
}

#[test]
fn verify_names_an_extra_file_but_allows_restore_logs() {
    let (_tmp, store) = new_store();
    let dir = publish(&store, ID, "cp1", "2024-01-01T00:00:00Z");
    fs::write(dir.join("restore.log"), b"log").unwrap();
    fs::write(dir.join("restore-2024.log"), b"log").unwrap();
    store.verify(&store.load(ID, "cp1").unwrap()).unwrap();
    fs::write(dir.join("evil.img"), b"x").unwrap();
    assert_eq!(corrupt_reason(&store, "cp1"), "unexpected file evil.img");
}

#[test]
fn verify_reports_every_problem() {
    let (_tmp, store) = new_store();
    let dir = publish(&store, ID, "cp1", "2024-01-01T00:00:00Z");
    fs::remove_file(dir.join("core-1.img")).unwrap();
    fs::write(dir.join("descriptors.json"), b"[\"/dev/nul!\"]").unwrap();
    let reason = corrupt_reason(&store, "cp1");
    assert!(reason.contains("core-1.img: missing"), "{reason}");
    assert!(reason.contains("descriptors.json: checksum mismatch"), "{reason}");
}

#[test]
fn future_schema_is_refused_by_load_and_foreign_in_list() {
    let (_tmp, store) = new_store();
    let dir = publish(&store, ID, "cp1", "2024-01-01T00:00:00Z");
    let path = dir.join(META_FILE);
    let mut json: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    json["schema_version"] = (NEWEST_SCHEMA + 1).into();
    fs::write(&path, json.to_string()).unwrap();
    match store.load(ID, "cp1") {
        Err(StoreError::FutureSchema { found, supported, .. }) => {
            assert_eq!((found, supported), (NEWEST_SCHEMA + 1, NEWEST_SCHEMA));
        }
        other => panic!("expected FutureSchema, got {other:?}"),
    }
    let listed = store.list(Some(ID)).unwrap();
    assert!(listed[0].meta.is_none());
}

#[test]
fn malformed_metadata_is_corrupt() {
    let (_tmp, store) = new_store();
    let dir = publish(&store, ID, "cp1", "2024-01-01T00:00:00Z");
    fs::write(dir.join(META_FILE), b"{\"schema_version\": 1, \"tool\": ").unwrap();
    match store.load(ID, "cp1") {
        Err(StoreError::Corrupt { reason, .. }) => assert!(reason.contains(META_FILE), "{reason}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn foreign_checkpoint_is_listed_without_meta_and_verifies_trivially() {
    let (_tmp, store) = new_store();
    // What `docker checkpoint create` leaves: images and descriptors only.
    let dir = store.layout().checkpoint_dir(ID, "docker-cp");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("core-1.img"), vec![0u8; 100]).unwrap();
    fs::write(dir.join("pages-1.img"), vec![0u8; 400]).unwrap();
    fs::write(dir.join("descriptors.json"), b"[]").unwrap();
    let listed = store.list(None).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].meta.is_none());
    assert_eq!(listed[0].size_bytes, 502);
    let loaded = store.load(ID, "docker-cp").unwrap();
    assert!(loaded.meta.is_none());
    store.verify(&loaded).unwrap();
}

#[test]
fn list_skips_dot_dirs_invalid_names_and_plain_files() {
    let (_tmp, store) = new_store();
    publish(&store, ID, "cp1", "2024-01-01T00:00:00Z");
    let cps = store.layout().checkpoints_dir(ID);
    fs::create_dir(cps.join(".hidden")).unwrap();
    fs::create_dir(cps.join("-bad")).unwrap();
    fs::write(cps.join("file"), b"").unwrap();
    fs::create_dir(store.root().join(".not-a-container")).unwrap();
    let names: Vec<_> = store.list(None).unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["cp1"]);
}

#[test]
fn list_sorts_by_container_then_time_then_name() {
    let (_tmp, store) = new_store();
    publish(&store, "b-ctr", "late", "2024-03-01T00:00:00Z");
    publish(&store, "b-ctr", "early", "2024-01-01T00:00:00Z");
    publish(&store, "b-ctr", "same-b", "2024-02-01T00:00:00Z");
    publish(&store, "b-ctr", "same-a", "2024-02-01T00:00:00Z");
    publish(&store, "a-ctr", "zzz", "2025-01-01T00:00:00Z");
    // A foreign one made now sorts after everything dated in the past.
    let foreign = store.layout().checkpoint_dir("b-ctr", "foreign");
    fs::create_dir_all(&foreign).unwrap();
    fs::write(foreign.join("core-1.img"), b"x").unwrap();
    let rows: Vec<_> = store
        .list(None)
        .unwrap()
        .into_iter()
        .map(|e| format!("{}/{}", e.container_id, e.name))
        .collect();
    assert_eq!(
        rows,
        [
            "a-ctr/zzz",
            "b-ctr/early",
            "b-ctr/same-a",
            "b-ctr/same-b",
            "b-ctr/late",
            "b-ctr/foreign"
        ]
    );
    assert_eq!(store.list(Some("a-ctr")).unwrap().len(), 1);
}

#[test]
fn missing_store_or_container_lists_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::new(&tmp.path().join("never-created"));
    assert!(listing::list(&layout, None).unwrap().is_empty());
    assert!(listing::list(&layout, Some("web")).unwrap().is_empty());
    let (_tmp, store) = new_store();
    assert!(store.list(Some("nobody")).unwrap().is_empty());
    assert!(matches!(
        store.list(Some("../x")),
        Err(StoreError::InvalidContainerId { .. })
    ));
}

#[test]
fn load_of_a_missing_checkpoint_is_not_found() {
    let (_tmp, store) = new_store();
    assert!(matches!(store.load(ID, "nope"), Err(StoreError::NotFound { .. })));
    assert!(matches!(store.load(ID, "../etc"), Err(StoreError::InvalidName { .. })));
}

#[test]
fn begin_refuses_an_existing_name() {
    let (_tmp, store) = new_store();
    publish(&store, ID, "cp1", "2024-01-01T00:00:00Z");
    assert!(matches!(store.begin(ID, "cp1"), Err(StoreError::AlreadyExists { .. })));
}

#[test]
fn publish_refuses_a_name_published_meanwhile() {
    let (_tmp, store) = new_store();
    let staging = store.begin(ID, "cp1").unwrap();
    let staging_dir = staging.dir().to_path_buf();
    publish(&store, ID, "cp1", "2024-01-01T00:00:00Z");
    staging.write_file("core-1.img", b"other").unwrap();
    let err = staging.publish(meta(ID, "cp1", "2024-01-02T00:00:00Z")).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err:?}");
    assert!(!staging_dir.exists(), "failed publish leaves no staging dir");
    store.verify(&store.load(ID, "cp1").unwrap()).unwrap();
}

#[test]
fn staging_dir_is_named_after_checkpoint_and_pid() {
    let (_tmp, store) = new_store();
    let staging = store.begin(ID, "cp.1").unwrap();
    let name = staging.dir().file_name().unwrap().to_str().unwrap().to_string();
    let prefix = format!("cp.1.{}.", std::process::id());
    assert!(name.starts_with(&prefix), "{name}");
    assert!(!name[prefix.len()..].contains('.'), "{name}");
    assert_eq!(mode(staging.dir()), 0o700);
}

#[test]
fn write_file_refuses_paths_and_existing_files() {
    let (_tmp, store) = new_store();
    let staging = store.begin(ID, "cp1").unwrap();
    for bad in ["../x", "/etc/passwd", "a/b", "", ".."] {
        assert!(staging.write_file(bad, b"x").is_err(), "{bad:?}");
    }
    staging.write_file("x", b"1").unwrap();
    assert!(matches!(
        staging.write_file("x", b"2"),
        Err(StoreError::Io { op: "create", .. })
    ));
}

#[test]
fn dropping_an_unpublished_staging_removes_it() {
    let (_tmp, store) = new_store();
    let staging = store.begin(ID, "cp1").unwrap();
    staging.write_file("core-1.img", b"x").unwrap();
    let dir = staging.dir().to_path_buf();
    assert!(dir.exists());
    drop(staging);
    assert!(!dir.exists());
    assert!(store.list(None).unwrap().is_empty());
}

#[test]
fn stale_staging_of_a_dead_pid_is_cleaned_and_a_live_one_kept() {
    let (_tmp, store) = new_store();
    let staging_root = store.layout().staging_root(ID);
    fs::create_dir_all(&staging_root).unwrap();
    let dead = staging_root.join("cp1.999999999.abc123");
    let dead_rm = staging_root.join("old.rm.999999999.def456");
    let live = staging_root.join(format!("cp2.{}.abc123", std::process::id()));
    let unknown = staging_root.join("not-ours");
    for d in [&dead, &dead_rm, &live, &unknown] {
        fs::create_dir(d).unwrap();
        fs::write(d.join("pages-1.img"), b"x").unwrap();
    }
    let staging = store.begin(ID, "cp3").unwrap();
    assert!(!dead.exists());
    assert!(!dead_rm.exists());
    assert!(live.exists());
    assert!(unknown.exists());
    assert!(staging.dir().exists());
}

#[test]
fn lock_through_the_store_is_busy_then_free() {
    let (_tmp, store) = new_store();
    let held = store.lock(ID, Duration::ZERO).unwrap();
    assert_eq!(mode(&store.layout().lock_path(ID)), 0o600);
    assert!(matches!(
        store.lock(ID, Duration::from_millis(60)),
        Err(StoreError::Busy { .. })
    ));
    drop(held);
    store.lock(ID, Duration::ZERO).unwrap();
    assert!(matches!(
        store.lock("..", Duration::ZERO),
        Err(StoreError::InvalidContainerId { .. })
    ));
}

#[test]
fn remove_deletes_the_whole_checkpoint() {
    let (_tmp, store) = new_store();
    publish(&store, ID, "cp1", "2024-01-01T00:00:00Z");
    publish(&store, ID, "cp2", "2024-01-02T00:00:00Z");
    store.remove(ID, "cp1").unwrap();
    let names: Vec<_> = store.list(Some(ID)).unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["cp2"]);
    assert!(!store.layout().checkpoint_dir(ID, "cp1").exists());
    assert_eq!(fs::read_dir(store.layout().staging_root(ID)).unwrap().count(), 0);
    assert!(matches!(store.remove(ID, "cp1"), Err(StoreError::NotFound { .. })));
    // The name is free again.
    publish(&store, ID, "cp1", "2024-01-03T00:00:00Z");
}

#[test]
fn store_root_that_is_a_symlink_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    fs::create_dir(&real).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    match Store::open(&link) {
        Err(StoreError::UnsafeStore { path, reason }) => {
            assert_eq!(path, link);
            assert_eq!(reason, "it is a symlink");
        }
        other => panic!("expected UnsafeStore, got {other:?}"),
    }
}

#[test]
fn world_writable_or_non_dir_root_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let open_dir = tmp.path().join("open");
    fs::create_dir(&open_dir).unwrap();
    fs::set_permissions(&open_dir, fs::Permissions::from_mode(0o777)).unwrap();
    assert!(matches!(Store::open(&open_dir), Err(StoreError::UnsafeStore { .. })));
    let file = tmp.path().join("file");
    fs::write(&file, b"").unwrap();
    assert!(matches!(Store::open(&file), Err(StoreError::UnsafeStore { .. })));
}

#[test]
fn open_creates_missing_parents_private() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("a/b/store");
    Store::open(&root).unwrap();
    for d in [tmp.path().join("a"), tmp.path().join("a/b"), root] {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }
}

#[test]
fn enospc_becomes_no_space_naming_the_store_root() {
    let map = write::write_err(Path::new("/store"), "write", Path::new("/store/x/pages-1.img"));
    match map(std::io::Error::from_raw_os_error(libc::ENOSPC)) {
        StoreError::NoSpace { root, op, path } => {
            assert_eq!(root, Path::new("/store"));
            assert_eq!(op, "write");
            assert_eq!(path, Path::new("/store/x/pages-1.img"));
        }
        other => panic!("{other:?}"),
    }
    let map = write::write_err(Path::new("/store"), "write", Path::new("/store/x"));
    assert!(matches!(
        map(std::io::Error::from_raw_os_error(libc::EIO)),
        StoreError::Io { op: "write", .. }
    ));
}

// ------------------------------------------------- ckpt.json's seal --

/// Rewrites `ckpt.json` of `cp1` through `edit` (leaving the seal as is).
fn edit_meta(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(META_FILE);
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    edit(&mut v);
    fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

#[test]
fn seal_is_the_b3sum_line_of_ckpt_json() {
    let (_tmp, store) = new_store();
    let dir = publish(&store, ID, "cp1", "2024-01-01T00:00:00Z");
    let json = fs::read(dir.join(META_FILE)).unwrap();
    let seal = fs::read_to_string(dir.join(SEAL_FILE)).unwrap();
    assert_eq!(seal, format!("{}  ckpt.json\n", blake3::hash(&json).to_hex()));
    assert!(store.load(ID, "cp1").unwrap().meta.unwrap().is_sealed());
}

#[test]
fn schema_2_without_seal_is_corrupt() {
    let (_tmp, store) = new_store();
    let dir = publish(&store, ID, "cp1", "2024-01-01T00:00:00Z");
    fs::remove_file(dir.join(SEAL_FILE)).unwrap();
    assert_eq!(load_corrupt_reason(&store), "ckpt.json.blake3: missing");
}

#[test]
fn seal_that_does_not_match_is_corrupt() {
    let (_tmp, store) = new_store();
    let dir = publish(&store, ID, "cp1", "2024-01-01T00:00:00Z");
    fs::write(dir.join(SEAL_FILE), format!("{}  ckpt.json\n", "0".repeat(64))).unwrap();
    assert_eq!(load_corrupt_reason(&store), "ckpt.json: checksum mismatch");
    // An edit of ckpt.json with the seal left as it was.
    let dir = publish(&store, ID, "cp2", "2024-01-01T00:00:00Z");
    edit_meta(&dir, |v| v["rootfs"] = "/".into());
    match store.load(ID, "cp2") {
        Err(StoreError::Corrupt { reason, .. }) => assert_eq!(reason, "ckpt.json: checksum mismatch"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn schema_1_without_seal_stays_readable_and_verifiable() {
    let (_tmp, store) = new_store();
    let dir = publish(&store, ID, "cp1", "2024-01-01T00:00:00Z");
    fs::remove_file(dir.join(SEAL_FILE)).unwrap();
    edit_meta(&dir, |v| v["schema_version"] = 1.into());
    let entry = store.load(ID, "cp1").unwrap();
    let meta = entry.meta.as_ref().unwrap();
    assert_eq!(meta.schema_version, 1);
    assert!(!meta.is_sealed());
    store.verify(&entry).unwrap();
}

#[test]
fn seal_of_a_schema_1_file_is_checked_when_present() {
    let (_tmp, store) = new_store();
    let dir = publish(&store, ID, "cp1", "2024-01-01T00:00:00Z");
    edit_meta(&dir, |v| v["schema_version"] = 1.into());
    assert_eq!(load_corrupt_reason(&store), "ckpt.json: checksum mismatch");
}

#[test]
fn ckpt_json_must_name_its_own_directory() {
    let (_tmp, store) = new_store();
    let dir = publish(&store, ID, "cp1", "2024-01-01T00:00:00Z");
    for (field, reason) in [
        (
            "container_id",
            format!("ckpt.json: container_id \"other\" does not match the directory's \"{ID}\""),
        ),
        (
            "name",
            "ckpt.json: name \"other\" does not match the directory's \"cp1\"".to_string(),
        ),
    ] {
        let original = fs::read(dir.join(META_FILE)).unwrap();
        edit_meta(&dir, |v| v[field] = "other".into());
        let json = fs::read(dir.join(META_FILE)).unwrap();
        let seal = fs::read(dir.join(SEAL_FILE)).unwrap();
        fs::write(dir.join(SEAL_FILE), metadata::seal_of(&json)).unwrap();
        assert_eq!(load_corrupt_reason(&store), reason);
        // ls lists it, as for any unreadable ckpt.json, as not ckpt's.
        assert!(store.list(Some(ID)).unwrap()[0].meta.is_none());
        fs::write(dir.join(META_FILE), original).unwrap();
        fs::write(dir.join(SEAL_FILE), seal).unwrap();
    }
    store.load(ID, "cp1").unwrap();
}

#[test]
fn publish_refuses_a_seal_written_by_the_caller() {
    let (_tmp, store) = new_store();
    let staging = store.begin(ID, "cp1").unwrap();
    staging.write_file(SEAL_FILE, b"x").unwrap();
    assert!(matches!(
        staging.publish(meta(ID, "cp1", "2024-01-01T00:00:00Z")),
        Err(StoreError::Io { op: "publish", .. })
    ));
}

#[test]
fn a_schema_1_copy_is_published_unsealed() {
    let (_tmp, store) = new_store();
    let staging = store.begin(ID, "cp1").unwrap();
    staging.write_file("core-1.img", b"x").unwrap();
    let mut m = meta(ID, "cp1", "2024-01-01T00:00:00Z");
    m.schema_version = 1;
    let dir = staging.publish(m).unwrap();
    assert!(!dir.join(SEAL_FILE).exists());
    assert!(!store.load(ID, "cp1").unwrap().meta.unwrap().is_sealed());
}

fn load_corrupt_reason(store: &Store) -> String {
    match store.load(ID, "cp1") {
        Err(StoreError::Corrupt { reason, .. }) => reason,
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

// ------------------------------------------- symlinks inside the store --

#[test]
fn symlinked_checkpoint_dir_or_container_dir_is_refused_by_name() {
    let (tmp, store) = new_store();
    publish(&store, ID, "cp1", "2024-01-01T00:00:00Z");
    let cps = store.layout().checkpoints_dir(ID);
    let outside = tmp.path().join("outside-cp");
    fs::rename(cps.join("cp1"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, cps.join("cp1")).unwrap();
    for result in [store.load(ID, "cp1").map(drop), store.remove(ID, "cp1")] {
        match result {
            Err(StoreError::UnsafeStore { path, reason }) => {
                assert_eq!((path, reason), (cps.join("cp1"), "it is a symlink"))
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(outside.join(META_FILE).exists());
    // The container dir itself.
    let other = store.root().join("linked");
    std::os::unix::fs::symlink(store.layout().container_dir(ID), &other).unwrap();
    match store.list(Some("linked")) {
        Err(StoreError::UnsafeStore { path, .. }) => assert_eq!(path, other),
        other => panic!("{other:?}"),
    }
    assert!(store.lock("linked", Duration::ZERO).is_err());
}

#[test]
fn replace_file_writes_0600_and_never_through_a_symlink() {
    let (tmp, store) = new_store();
    let outside = tmp.path().join("outside");
    fs::write(&outside, b"not ckpt's").unwrap();
    let dir = store.layout().container_dir(ID);
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    let log = dir.join("restore.log");
    fs::write(&log, b"old").unwrap();
    fs::set_permissions(&log, fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(store.replace_file(ID, "restore.log", b"new").unwrap(), log);
    assert_eq!((fs::read(&log).unwrap(), mode(&log)), (b"new".to_vec(), 0o600));
    // A link there is replaced by the file, its target left alone...
    std::os::unix::fs::symlink(&outside, dir.join("dump-failed.log")).unwrap();
    store.replace_file(ID, "dump-failed.log", b"log").unwrap();
    assert_eq!(fs::read(&outside).unwrap(), b"not ckpt's");
    assert!(fs::symlink_metadata(dir.join("dump-failed.log")).unwrap().is_file());
    // ...and a missing dir on the way is created 0700; a linked one refused.
    store.replace_file(ID, "bundle/config.json", b"{}").unwrap();
    assert_eq!(mode(&dir.join("bundle")), 0o700);
    assert_eq!(mode(&dir.join("bundle/config.json")), 0o600);
    fs::remove_dir_all(dir.join("bundle")).unwrap();
    std::os::unix::fs::symlink(tmp.path(), dir.join("bundle")).unwrap();
    assert!(matches!(
        store.replace_file(ID, "bundle/config.json", b"{}"),
        Err(StoreError::UnsafeStore { .. })
    ));
    assert!(!tmp.path().join("config.json").exists());
    // No temp file is left in staging.
    assert_eq!(fs::read_dir(store.layout().staging_root(ID)).unwrap().count(), 0);
}

#[test]
fn check_no_symlinks_names_the_first_link() {
    let (tmp, store) = new_store();
    let rels = ["output.log", "bundle/config.json"];
    store.check_no_symlinks(ID, &rels).unwrap(); // nothing there yet
    store.check_restore_target(ID).unwrap();
    let dir = store.layout().container_dir(ID);
    fs::create_dir_all(dir.join("bundle")).unwrap();
    store.check_no_symlinks(ID, &rels).unwrap();
    std::os::unix::fs::symlink(tmp.path(), dir.join("bundle/config.json")).unwrap();
    match store.check_no_symlinks(ID, &rels) {
        Err(StoreError::UnsafeStore { path, .. }) => assert_eq!(path, dir.join("bundle/config.json")),
        other => panic!("{other:?}"),
    }
    fs::remove_file(dir.join("bundle/config.json")).unwrap();
    nix::unistd::mkfifo(&dir.join("output.log"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert!(matches!(
        store.check_no_symlinks(ID, &rels),
        Err(StoreError::UnsafeStore { .. })
    ));
}

#[test]
fn append_private_refuses_links_and_fifos_and_fixes_the_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("output.log");
    fs::write(&file, b"a").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    use std::io::Write;
    open_append_private(&file).unwrap().write_all(b"b").unwrap();
    assert_eq!((fs::read(&file).unwrap(), mode(&file)), (b"ab".to_vec(), 0o600));
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    assert!(matches!(
        open_append_private(&link),
        Err(StoreError::UnsafeStore {
            reason: "it is a symlink",
            ..
        })
    ));
    // A fifo would block a plain open until a reader came.
    let fifo = tmp.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let _reader = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    assert!(matches!(
        open_append_private(&fifo),
        Err(StoreError::UnsafeStore {
            reason: "it is not a regular file",
            ..
        })
    ));
}

// ------------------------------------------------ locks of new dirs --

#[test]
fn lock_of_a_container_the_store_did_not_know_leaves_nothing_when_unused() {
    let (_tmp, store) = new_store();
    let dir = store.layout().container_dir("new");
    let lock = store.lock("new", Duration::ZERO).unwrap();
    assert!(store.layout().lock_path("new").exists());
    drop(lock);
    assert!(!dir.exists(), "left {:?}", fs::read_dir(&dir).map(|d| d.count()));
    // Written into: the dir is kept, the lock file goes.
    let lock = store.lock("new", Duration::ZERO).unwrap();
    store.replace_file("new", "restore.log", b"log").unwrap();
    drop(lock);
    assert!(dir.join("restore.log").exists());
    assert!(!store.layout().lock_path("new").exists());
    // Known before: kept even when the command wrote nothing.
    fs::remove_file(dir.join("restore.log")).unwrap();
    fs::remove_dir(store.layout().staging_root("new")).unwrap();
    drop(store.lock("new", Duration::ZERO).unwrap());
    assert!(dir.is_dir());
}

#[test]
fn waiter_whose_lock_file_was_removed_starts_over() {
    let (_tmp, store) = new_store();
    let first = store.lock("new", Duration::ZERO).unwrap();
    let store2 = store.clone();
    let waiter = std::thread::spawn(move || {
        let lock = store2.lock("new", Duration::from_secs(5)).unwrap();
        // It holds the lock of the file now at the path, not of the
        // removed one: a third acquirer is busy.
        assert!(matches!(
            store2.lock("new", Duration::from_millis(100)),
            Err(StoreError::Busy { .. })
        ));
        drop(lock);
    });
    std::thread::sleep(Duration::from_millis(200));
    drop(first); // removes the dir and lock file it created
    waiter.join().unwrap();
}

// ------------------------------------------------ copies and work dirs --

#[test]
fn a_copy_names_its_new_container_keeps_its_seal_and_verifies() {
    let (_tmp, store) = new_store();
    publish(&store, ID, "cp1", "2026-01-01T00:00:00Z");
    let source = store.load(ID, "cp1").unwrap();
    let dir = store.copy_checkpoint(&source, "copy").unwrap();
    assert_eq!(dir, store.layout().checkpoint_dir("copy", "cp1"));
    let copy = store.load("copy", "cp1").unwrap();
    let meta = copy.meta.clone().expect("the copy has its metadata");
    assert_eq!((meta.container_id.as_str(), meta.name.as_str()), ("copy", "cp1"));
    assert_eq!(
        meta.files,
        source.meta.as_ref().unwrap().files,
        "the checksums travel unchanged"
    );
    assert!(dir.join(SEAL_FILE).is_file());
    store.verify(&copy).unwrap();
    for f in ["core-1.img", "pages-1.img", META_FILE, SEAL_FILE] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    assert_eq!(fs::read_dir(store.layout().staging_root("copy")).unwrap().count(), 0);
    // A second copy of that name is refused, the first left whole.
    assert!(matches!(
        store.copy_checkpoint(&source, "copy"),
        Err(StoreError::AlreadyExists { .. })
    ));
    store.verify(&store.load("copy", "cp1").unwrap()).unwrap();
}

#[test]
fn a_foreign_checkpoint_is_copied_as_it_is() {
    let (_tmp, store) = new_store();
    let foreign = store.layout().checkpoint_dir(ID, "theirs");
    fs::create_dir_all(&foreign).unwrap();
    fs::write(foreign.join("inventory.img"), b"inv").unwrap();
    fs::write(foreign.join("pstree.img"), b"tree").unwrap();
    let entry = store.load(ID, "theirs").unwrap();
    assert!(entry.meta.is_none());
    let dir = store.copy_checkpoint(&entry, "copy").unwrap();
    let mut names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["inventory.img", "pstree.img"]);
    assert!(store.load("copy", "theirs").unwrap().meta.is_none());
}

#[test]
fn a_restore_work_dir_is_a_staging_entry_removed_on_drop() {
    let (_tmp, store) = new_store();
    let work = store.restore_work_dir(ID).unwrap();
    let path = work.path().to_path_buf();
    assert!(path.starts_with(store.layout().staging_root(ID)));
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.starts_with(&format!("restore.{}.", std::process::id())), "{name}");
    assert_eq!(mode(&path), 0o700);
    fs::write(path.join("restore.log"), b"log").unwrap();
    drop(work);
    assert!(!path.exists());
}

#[test]
fn logs_and_the_generated_bundle_are_written_where_the_layout_says() {
    let (_tmp, store) = new_store();
    for log in [Log::Output, Log::Restore, Log::DumpFailed] {
        let path = store.write_log(ID, log, b"text").unwrap();
        assert_eq!(path, store.layout().log(ID, log));
        assert_eq!((fs::read(&path).unwrap(), mode(&path)), (b"text".to_vec(), 0o600));
    }
    let bundle = store.write_bundle(ID, b"{}").unwrap();
    assert_eq!(bundle, store.layout().bundle_dir(ID));
    assert_eq!(fs::read(store.layout().bundle_config(ID)).unwrap(), b"{}");
}
