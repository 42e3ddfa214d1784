//! `ckpt.json`: the versioned metadata of a ckpt-made checkpoint, and its
//! seal `ckpt.json.blake3`.
//!
//! The file starts with `schema_version`. Readers accept every version up to
//! [`SCHEMA_VERSION`] and refuse newer ones by name ([`StoreError::FutureSchema`]),
//! so an old ckpt never misreads a checkpoint made by a newer one.
//!
//! `ckpt.json` holds the checksums of every other file, and what a restore
//! acts on (spec with its hooks, rootfs, bundle, runtime root), so from
//! schema 2 on it has a checksum of its own: `ckpt.json.blake3` holds the
//! BLAKE3 of its exact bytes, in `b3sum`'s format (`<hex>  ckpt.json`).
//! [`CheckpointMeta::from_sealed`] checks it before trusting any field.
//! Schema 1 had no seal; such checkpoints stay readable (see docs/format.md).

use super::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The schema version this ckpt writes for a full checkpoint (the lowest
/// that describes it, so that an older ckpt still reads it).
/// 2: `ckpt.json` is sealed by [`SEAL_FILE`]. 1: no seal.
pub const SCHEMA_VERSION: u32 = 2;

/// The schema of an incremental checkpoint (`create --incremental`): its
/// page files are in the container's chunk store, named by the recipe
/// [`IncrementalRecord`] describes. A schema-2 reader would hand CRIU a
/// directory without page files, so it must refuse the checkpoint by its
/// version instead.
pub const INCREMENTAL_SCHEMA: u32 = 3;

/// The newest schema version this ckpt reads.
pub const NEWEST_SCHEMA: u32 = INCREMENTAL_SCHEMA;

/// The first schema version whose `ckpt.json` must have a seal.
pub const SEALED_SINCE: u32 = 2;

/// The metadata file's name inside a checkpoint directory.
pub const META_FILE: &str = "ckpt.json";

/// The seal of [`META_FILE`]: its BLAKE3, as `b3sum` prints it.
pub const SEAL_FILE: &str = "ckpt.json.blake3";

/// Metadata of one checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Always first in the file; see the module docs.
    pub schema_version: u32,
    /// `ckpt <version>` that wrote it.
    pub tool: String,
    /// Full container id.
    pub container_id: String,
    /// Checkpoint name.
    pub name: String,
    /// `runc`, `crun` or `docker`.
    pub runtime: String,
    /// The runtime's state root (e.g. `/run/runc`).
    pub runtime_root: Option<PathBuf>,
    /// The OCI bundle directory the container was created from.
    pub bundle: Option<PathBuf>,
    /// The container's root filesystem on the host at dump time.
    pub rootfs: Option<PathBuf>,
    /// A copy of the OCI runtime spec (`config.json`).
    pub spec: serde_json::Value,
    /// What the preflight saw (full detail in `inventory.json`).
    pub inventory: InventorySummary,
    /// `criu --version` of the CRIU that dumped.
    pub criu_version: String,
    /// `uname -r` of the kernel it was dumped on.
    pub kernel: String,
    /// RFC 3339 UTC time the dump started.
    pub created_at: String,
    /// How long the container's processes were frozen, in milliseconds.
    pub frozen_ms: u64,
    /// How long the whole dump took, in milliseconds.
    pub dump_ms: u64,
    /// Total size of the checkpoint's files, in bytes (excluding `ckpt.json`).
    pub size_bytes: u64,
    /// The options the dump was made with.
    pub options: DumpOptionsRecord,
    /// The init process's stdio as runc records it (`descriptors.json`).
    pub descriptors: Vec<String>,
    /// Every other file of the checkpoint with its size and BLAKE3 digest.
    pub files: BTreeMap<String, FileDigest>,
    /// Set when the checkpoint came from an archive or an image (`ckpt
    /// import`, `pull`): where from, and what the import policy allowed
    /// and changed. Absent for checkpoints made on this host (and so in
    /// every file older ckpts wrote; they ignore it when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<ImportRecord>,
    /// Schema 3 only: the checkpoint's page files are kept as a recipe of
    /// chunks in the container's chunk store (docs/incremental.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<IncrementalRecord>,
}

/// How an incremental checkpoint keeps its page files: the recipe file
/// (one of `files`, so sealed like every other) and the page files it
/// stands for, as a full checkpoint would have listed them in `files`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncrementalRecord {
    /// The recipe's file name in the checkpoint directory (`pages.recipe`).
    pub recipe: String,
    /// Bytes per chunk (4096).
    pub chunk_size: u32,
    /// Where chunks were cut: `address` (virtual-address multiples).
    pub chunk_rule: String,
    /// Every page file the recipe reassembles, with its size and BLAKE3.
    pub page_files: BTreeMap<String, FileDigest>,
}

/// Where an imported checkpoint came from and what its import changed
/// (docs/archive-format.md, "What an imported spec may not get").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRecord {
    /// The archive file or image reference it was read from.
    pub from: String,
    /// Who made the archive: `ckpt`, `podman`, `kubeletcrio`, ...
    pub made_by: String,
    /// The container and checkpoint it was on the source host.
    pub source_container: String,
    pub source_checkpoint: String,
    /// RFC 3339 UTC time of the import.
    pub imported_at: String,
    /// What the target's policy allowed beyond the default, as given to
    /// the import; a restore re-checks the spec with exactly this.
    pub allowed_bind_sources: Vec<PathBuf>,
    pub allow_host_namespaces: bool,
    pub allow_privileges: bool,
    /// What the import removed or replaced in the spec, in the user's
    /// terms (`dropped prestart hook /usr/bin/x (runs on the host as root)`).
    pub changes: Vec<String>,
}

/// The user-visible options of `ckpt create`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpOptionsRecord {
    pub leave_running: bool,
    pub tcp_established: bool,
    pub file_locks: bool,
    pub ext_unix_sk: bool,
}

/// The part of the inventory kept in `ckpt.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InventorySummary {
    /// Number of processes dumped.
    pub process_count: usize,
    /// Number of open fds over all processes.
    pub fd_count: usize,
    /// Resident anonymous memory over all processes, in bytes.
    pub anon_rss_bytes: u64,
    /// `(pid inside the container, comm)` of every process, init first:
    /// used after a restore to confirm that the saved processes came back.
    pub processes: Vec<(i32, String)>,
}

/// Size and BLAKE3 digest (lower-case hex) of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub size: u64,
    pub blake3: String,
}

/// The seal of `ckpt.json` bytes: the line `b3sum` prints for the file.
pub fn seal_of(json: &[u8]) -> String {
    format!("{}  {META_FILE}\n", blake3::hash(json).to_hex())
}

/// `schema_version` of `ckpt.json` text, if it has a readable one.
fn schema_version_of(text: &str) -> Result<u32, serde_json::Error> {
    #[derive(Deserialize)]
    struct VersionOnly {
        schema_version: u32,
    }
    serde_json::from_str::<VersionOnly>(text).map(|v| v.schema_version)
}

impl CheckpointMeta {
    /// Parses `ckpt.json` text. Checks `schema_version` before anything else
    /// so that a future file is refused as such, not as malformed. Checks no
    /// seal: see [`CheckpointMeta::from_sealed`].
    pub fn from_json(dir: &Path, text: &str) -> Result<CheckpointMeta, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            dir: dir.to_path_buf(),
            reason,
        };
        let version =
            schema_version_of(text).map_err(|e| corrupt(format!("{META_FILE} is not valid metadata: {e}")))?;
        if version > NEWEST_SCHEMA {
            return Err(StoreError::FutureSchema {
                dir: dir.to_path_buf(),
                found: version,
                supported: NEWEST_SCHEMA,
            });
        }
        if version == 0 {
            return Err(corrupt(format!("{META_FILE} has schema_version 0")));
        }
        let meta: CheckpointMeta =
            serde_json::from_str(text).map_err(|e| corrupt(format!("{META_FILE} is not valid metadata: {e}")))?;
        schema_matches(version, meta.incremental.is_some()).map_err(|r| corrupt(format!("{META_FILE}: {r}")))?;
        Ok(meta)
    }

    /// Parses `ckpt.json` bytes after checking them against `seal` (the
    /// contents of [`SEAL_FILE`], `None` if it is absent). The rules, in
    /// order: a newer schema is [`StoreError::FutureSchema`] (its seal may
    /// be of a kind this ckpt does not know); a seal that is present must
    /// match, whatever the schema; from [`SEALED_SINCE`] on a missing seal
    /// is corrupt; then [`CheckpointMeta::from_json`].
    pub fn from_sealed(dir: &Path, json: &[u8], seal: Option<&[u8]>) -> Result<CheckpointMeta, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            dir: dir.to_path_buf(),
            reason,
        };
        let text = std::str::from_utf8(json);
        let version = text.ok().and_then(|t| schema_version_of(t).ok());
        if let Some(found) = version.filter(|&v| v > NEWEST_SCHEMA) {
            return Err(StoreError::FutureSchema {
                dir: dir.to_path_buf(),
                found,
                supported: NEWEST_SCHEMA,
            });
        }
        match seal {
            Some(seal) if seal != seal_of(json).as_bytes() => {
                return Err(corrupt(format!("{META_FILE}: checksum mismatch")));
            }
            Some(_) => {}
            None if version.is_some_and(|v| v >= SEALED_SINCE) => {
                return Err(corrupt(format!("{SEAL_FILE}: missing")));
            }
            None => {}
        }
        let text = text.map_err(|_| corrupt(format!("{META_FILE} is not valid metadata: not UTF-8")))?;
        CheckpointMeta::from_json(dir, text)
    }

    /// Serialises as pretty JSON (schema_version first: struct field order).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("metadata always serialises")
    }

    /// Whether the checkpoint's page files are in the chunk store.
    pub fn is_incremental(&self) -> bool {
        self.incremental.is_some()
    }

    /// Whether this metadata was covered by a seal when read: true from
    /// [`SEALED_SINCE`] on (reading refuses an unsealed one).
    pub fn is_sealed(&self) -> bool {
        self.schema_version >= SEALED_SINCE
    }
}

/// PURE: a schema-3 `ckpt.json` is exactly one with an `incremental`
/// record. One without it would send CRIU a directory without page files;
/// a lower schema with one would be read by an older ckpt that ignores it.
fn schema_matches(version: u32, incremental: bool) -> Result<(), &'static str> {
    match (version >= INCREMENTAL_SCHEMA, incremental) {
        (true, false) => Err("schema version 3 without its incremental record"),
        (false, true) => Err("an incremental record needs schema version 3"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_and_incremental_record_go_together() {
        #[rustfmt::skip]
        let table: &[(u32, bool, bool)] = &[
            // version, has the record, accepted
            (1, false, true),
            (2, false, true),
            (3, true, true),
            (3, false, false),
            (2, true, false),
            (1, true, false),
        ];
        for &(version, incremental, ok) in table {
            assert_eq!(
                schema_matches(version, incremental).is_ok(),
                ok,
                "{version} {incremental}"
            );
        }
    }

    /// Regression (fuzz seed crash-float-drift-in-spec): a float kept in the
    /// spec copy must survive a rewrite unchanged, as it does with
    /// serde_json's `float_roundtrip`.
    #[test]
    fn float_drift_in_spec_round_trip() {
        let text = include_str!("../../fuzz/seeds/ckpt_json/crash-float-drift-in-spec");
        let meta = CheckpointMeta::from_json(Path::new("x"), text).unwrap();
        let again = CheckpointMeta::from_json(Path::new("x"), &meta.to_json()).unwrap();
        assert_eq!(meta, again);
    }

    #[test]
    fn schema_version_zero_is_corrupt() {
        let e = CheckpointMeta::from_json(Path::new("/d"), r#"{"schema_version": 0}"#).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
    }
}
