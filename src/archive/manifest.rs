//! The JSON an archive carries about itself: ckpt's manifest `ckpt.json`
//! (first in every ckpt archive), the `config.dump` other tools read, the
//! annotation ckpt adds to `spec.dump`, and how a reader tells ckpt's
//! archives from Podman's and the kubelet's. Pure: no I/O.
//!
//! The archive's `ckpt.json` is not the checkpoint's own (that one is
//! `checkpoint/ckpt.json`, sealed, unchanged from the store): it
//! describes the archive and declares, before any data, every file's size
//! and BLAKE3 and how many entries and bytes follow, so a reader can stop
//! a bomb or a swapped file at the entry where it starts.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The manifest schema this ckpt writes and the newest it reads.
pub const ARCHIVE_SCHEMA: u32 = 1;

/// The value of [`Manifest::format`]: what marks a ckpt archive.
pub const FORMAT: &str = "ckpt-archive";

/// Entry names of the layout (docs/archive-format.md).
pub const MANIFEST: &str = "ckpt.json";
pub const CONFIG_DUMP: &str = "config.dump";
pub const SPEC_DUMP: &str = "spec.dump";
pub const STATS_DUMP: &str = "stats-dump";
pub const DELETED_FILES: &str = "deleted.files";
pub const CHECKPOINT_DIR: &str = "checkpoint";
pub const ROOTFS_TAR: &str = "rootfs.tar";
pub const ROOTFS_DIFF_TAR: &str = "rootfs-diff.tar";
/// Podman: the container's `/dev/shm`, a nested tar.
pub const DEVSHM_TAR: &str = "devshm-checkpoint.tar";
/// Podman: `volumes/<name>.tar`, nested tars.
pub const VOLUMES_DIR: &str = "volumes";

/// The annotation checkpointctl reads to name the engine.
pub const MANAGER_ANNOTATION: &str = "io.container.manager";

/// Size and BLAKE3 (64 lower-case hex) of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryDigest {
    pub size: u64,
    pub blake3: String,
}

/// An image a Docker container's writable layer lies over.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageRef {
    /// As the user named it (`busybox:1.36`), or its repo digest.
    pub name: String,
    /// The image id (`sha256:…`), which must exist on the target.
    pub id: Option<String>,
}

/// Which root filesystem part an archive has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RootfsKind {
    /// None: the target has the root filesystem (`--no-rootfs`).
    None,
    /// `rootfs.tar`: the whole root filesystem of a runc/crun bundle.
    Tree,
    /// `rootfs-diff.tar` (+ `deleted.files`): a Docker container's
    /// writable layer over [`Manifest::image`].
    Diff,
}

/// The root filesystem part, declared before it is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootfsDecl {
    pub kind: RootfsKind,
    /// Entries of the nested tar (its root entry included).
    pub entries: u64,
    /// Bytes of regular-file data in the nested tar.
    pub bytes: u64,
}

impl RootfsDecl {
    /// No root filesystem part.
    pub fn none() -> RootfsDecl {
        RootfsDecl {
            kind: RootfsKind::None,
            entries: 0,
            bytes: 0,
        }
    }

    /// The archive entry that holds the part, if any.
    pub fn entry(&self) -> Option<&'static str> {
        match self.kind {
            RootfsKind::None => None,
            RootfsKind::Tree => Some(ROOTFS_TAR),
            RootfsKind::Diff => Some(ROOTFS_DIFF_TAR),
        }
    }
}

/// `ckpt.json` at the root of a ckpt archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always first; a newer one is refused by name.
    pub schema_version: u32,
    /// Always [`FORMAT`].
    pub format: String,
    /// `ckpt <version>` that wrote it.
    pub tool: String,
    /// The container's id on the source host.
    pub container_id: String,
    /// The checkpoint's name in the source store.
    pub checkpoint: String,
    /// `runc`, `crun` or `docker`.
    pub runtime: String,
    /// Docker: the image the writable layer lies over.
    pub image: Option<ImageRef>,
    /// When the checkpoint was taken (RFC 3339).
    pub checkpointed_at: String,
    pub rootfs: RootfsDecl,
    /// Entries after this one, directories included.
    pub entry_count: u64,
    /// Sum of the sizes in `entries`.
    pub total_bytes: u64,
    /// Every regular file after this one, by archive path.
    pub entries: BTreeMap<String, EntryDigest>,
}

impl Manifest {
    /// Parses and checks a manifest: the schema first (a newer one is
    /// refused as such), then the format marker, then that the totals add up.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, String> {
        #[derive(Deserialize)]
        struct Version {
            schema_version: u32,
        }
        let v: Version = serde_json::from_slice(bytes).map_err(|e| format!("ckpt.json is not a manifest: {e}"))?;
        if v.schema_version == 0 || v.schema_version > ARCHIVE_SCHEMA {
            return Err(format!(
                "ckpt.json has archive schema {}, this ckpt reads 1 to {ARCHIVE_SCHEMA}; upgrade ckpt",
                v.schema_version
            ));
        }
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| format!("ckpt.json is not a manifest: {e}"))?;
        if m.format != FORMAT {
            return Err(format!("ckpt.json has format {:?}, not {FORMAT:?}", m.format));
        }
        let sum = m.entries.values().try_fold(0u64, |a, e| a.checked_add(e.size));
        if sum != Some(m.total_bytes) {
            return Err("ckpt.json: total_bytes is not the sum of its entries".into());
        }
        if (m.entries.len() as u64) > m.entry_count {
            return Err("ckpt.json: entry_count is smaller than its list of entries".into());
        }
        if let Some(e) = m.rootfs.entry() {
            if !m.entries.contains_key(e) {
                return Err(format!(
                    "ckpt.json declares a {:?} root filesystem but no {e}",
                    m.rootfs.kind
                ));
            }
        }
        Ok(m)
    }

    /// Pretty JSON, `schema_version` first.
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a manifest always serializes");
        v.push(b'\n');
        v
    }
}

/// The fields of `config.dump` that ckpt writes: the reduced schema that
/// CRI-O and containerd write and checkpointctl reads (`id`, `name`,
/// `rootfsImage*`, `runtime`, `createdTime`, `checkpointedTime`), Podman's
/// `rootfsImageID`, and ckpt's own under `ckpt`. Go ignores unknown
/// keys, so all three readers accept it; Podman's import needs its full
/// libpod config and does not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigDump {
    pub id: String,
    pub name: String,
    pub image: Option<ImageRef>,
    /// The OCI runtime (`runc`, `crun`; Docker's is runc).
    pub oci_runtime: String,
    /// The engine ckpt found the container in (`runc`, `crun`, `docker`).
    pub engine: String,
    pub checkpoint: String,
    pub tool: String,
    /// RFC 3339; omitted when unknown (Go's time parser rejects "").
    pub created: Option<String>,
    pub checkpointed: String,
    /// Docker: the body of `POST /containers/create` that makes the
    /// container again on the target (its config, host config and
    /// networks), under `ckpt.docker_create`.
    pub docker_create: Option<Value>,
}

impl ConfigDump {
    /// The JSON text.
    pub fn to_json(&self) -> Vec<u8> {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        if let Some(img) = &self.image {
            m.insert("rootfsImageName".into(), json!(img.name));
            m.insert("rootfsImage".into(), json!(img.name));
            if let Some(id) = &img.id {
                m.insert("rootfsImageRef".into(), json!(id));
                m.insert("rootfsImageID".into(), json!(id.trim_start_matches("sha256:")));
            }
        }
        m.insert("runtime".into(), json!(self.oci_runtime));
        if let Some(c) = &self.created {
            m.insert("createdTime".into(), json!(c));
        }
        m.insert("checkpointedTime".into(), json!(self.checkpointed));
        let mut ckpt = json!({"engine": self.engine, "checkpoint": self.checkpoint, "tool": self.tool});
        if let Some(body) = &self.docker_create {
            ckpt["docker_create"] = body.clone();
        }
        m.insert("ckpt".into(), ckpt);
        let mut v = serde_json::to_vec_pretty(&Value::Object(m)).expect("JSON serializes");
        v.push(b'\n');
        v
    }
}

/// `spec.dump`: the spec as recorded, with `io.container.manager: ckpt`
/// added when the spec names no manager (checkpointctl 1.3 shows such an
/// archive's engine as "containerd", its fallback).
pub fn spec_dump(spec: &Value) -> Vec<u8> {
    let mut spec = spec.clone();
    if let Some(obj) = spec.as_object_mut() {
        let ann = obj.entry("annotations").or_insert_with(|| Value::Object(Map::new()));
        if let Some(ann) = ann.as_object_mut() {
            ann.entry(MANAGER_ANNOTATION).or_insert_with(|| json!("ckpt"));
        }
    }
    let mut v = serde_json::to_vec_pretty(&spec).expect("JSON serializes");
    v.push(b'\n');
    v
}

/// Who made an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveKind {
    /// ckpt's own: the first entry is a valid manifest.
    Ckpt,
    /// `podman container checkpoint --export`.
    Podman,
    /// The kubelet's checkpoint API through CRI-O.
    KubeletCrio,
    /// The kubelet's checkpoint API through containerd.
    KubeletContainerd,
    /// A `checkpoint/` and a `spec.dump`, but no engine named.
    Unknown,
}

impl ArchiveKind {
    /// The name recorded as an import's maker and shown in reports.
    pub fn name(self) -> &'static str {
        match self {
            ArchiveKind::Ckpt => "ckpt",
            ArchiveKind::Podman => "podman",
            ArchiveKind::KubeletCrio => "kubeletcrio",
            ArchiveKind::KubeletContainerd => "kubeletcontainerd",
            ArchiveKind::Unknown => "unknown",
        }
    }
}

/// Tells a foreign archive's maker from its `spec.dump` annotations, its
/// `config.dump` and its top-level names, as checkpointctl does (the
/// `io.container.manager` annotation first).
pub fn classify_foreign(spec: Option<&Value>, config: Option<&Value>, has_entry: impl Fn(&str) -> bool) -> ArchiveKind {
    let ann = |k: &str| spec.and_then(|s| s.get("annotations")?.get(k)?.as_str().map(str::to_owned));
    match ann(MANAGER_ANNOTATION).as_deref() {
        Some("libpod") => return ArchiveKind::Podman,
        Some("cri-o") => return ArchiveKind::KubeletCrio,
        _ => {}
    }
    if ann("io.kubernetes.cri.container-name").is_some() || has_entry("status.dump") || has_entry("status") {
        return ArchiveKind::KubeletContainerd;
    }
    // libpod's full config has keys the reduced one never has.
    if config.is_some_and(|c| c.get("rootfsImageID").is_some() && c.get("CreateCommand").is_some()) {
        return ArchiveKind::Podman;
    }
    ArchiveKind::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        let mut entries = BTreeMap::new();
        entries.insert(
            "spec.dump".into(),
            EntryDigest {
                size: 10,
                blake3: "0".repeat(64),
            },
        );
        Manifest {
            schema_version: ARCHIVE_SCHEMA,
            format: FORMAT.into(),
            tool: "ckpt 0.1.0".into(),
            container_id: "web".into(),
            checkpoint: "one".into(),
            runtime: "runc".into(),
            image: None,
            checkpointed_at: "2026-12-01T00:00:00Z".into(),
            rootfs: RootfsDecl::none(),
            entry_count: 2,
            total_bytes: 10,
            entries,
        }
    }

    #[test]
    fn manifest_round_trips_and_starts_with_the_schema() {
        let m = manifest();
        let text = m.to_json();
        assert!(String::from_utf8_lossy(&text)
            .trim_start_matches("{\n")
            .trim_start()
            .starts_with("\"schema_version\""));
        assert_eq!(Manifest::from_json(&text).unwrap(), m);
    }

    #[test]
    fn manifest_rules_refuse_by_name() {
        let mut future = serde_json::to_value(manifest()).unwrap();
        future["schema_version"] = json!(2);
        let e = Manifest::from_json(&serde_json::to_vec(&future).unwrap()).unwrap_err();
        assert!(e.contains("archive schema 2") && e.contains("upgrade"), "{e}");

        let mut m = manifest();
        m.format = "other".into();
        assert!(Manifest::from_json(&m.to_json()).unwrap_err().contains("format"));

        let mut m = manifest();
        m.total_bytes = 11;
        assert!(Manifest::from_json(&m.to_json()).unwrap_err().contains("total_bytes"));

        let mut m = manifest();
        m.entry_count = 0;
        assert!(Manifest::from_json(&m.to_json()).unwrap_err().contains("entry_count"));

        let mut m = manifest();
        m.rootfs.kind = RootfsKind::Tree;
        assert!(Manifest::from_json(&m.to_json()).unwrap_err().contains("rootfs.tar"));

        assert!(Manifest::from_json(b"[]").is_err());
    }

    #[test]
    fn config_dump_has_the_reduced_schema_and_ckpt_fields() {
        let c = ConfigDump {
            id: "abc".into(),
            name: "web".into(),
            image: Some(ImageRef {
                name: "busybox:1".into(),
                id: Some("sha256:1234".into()),
            }),
            oci_runtime: "runc".into(),
            engine: "docker".into(),
            checkpoint: "one".into(),
            tool: "ckpt 0.1.0".into(),
            created: None,
            checkpointed: "2026-12-01T00:00:00Z".into(),
            docker_create: Some(json!({"Image": "busybox:1"})),
        };
        let v: Value = serde_json::from_slice(&c.to_json()).unwrap();
        assert_eq!(v["id"], "abc");
        assert_eq!(v["rootfsImageName"], "busybox:1");
        assert_eq!(v["rootfsImageRef"], "sha256:1234");
        assert_eq!(v["rootfsImageID"], "1234");
        assert_eq!(v["runtime"], "runc");
        assert!(
            v.get("createdTime").is_none(),
            "an unknown time must be absent, not empty"
        );
        assert_eq!(v["checkpointedTime"], "2026-12-01T00:00:00Z");
        assert_eq!(v["ckpt"]["engine"], "docker");
        assert_eq!(v["ckpt"]["docker_create"]["Image"], "busybox:1");
    }

    #[test]
    fn spec_dump_names_ckpt_only_when_no_manager_is_named() {
        let v: Value = serde_json::from_slice(&spec_dump(&json!({"ociVersion": "1.2.0"}))).unwrap();
        assert_eq!(v["annotations"][MANAGER_ANNOTATION], "ckpt");
        let v: Value =
            serde_json::from_slice(&spec_dump(&json!({"annotations": {MANAGER_ANNOTATION: "libpod"}}))).unwrap();
        assert_eq!(v["annotations"][MANAGER_ANNOTATION], "libpod");
    }

    #[test]
    fn foreign_archives_are_told_apart() {
        let spec = |m: &str| json!({"annotations": {MANAGER_ANNOTATION: m}});
        let none = |_: &str| false;
        assert_eq!(classify_foreign(Some(&spec("libpod")), None, none), ArchiveKind::Podman);
        assert_eq!(
            classify_foreign(Some(&spec("cri-o")), None, none),
            ArchiveKind::KubeletCrio
        );
        assert_eq!(
            classify_foreign(Some(&json!({})), None, |n| n == "status.dump"),
            ArchiveKind::KubeletContainerd
        );
        let libpod_config = json!({"rootfsImageID": "x", "CreateCommand": []});
        assert_eq!(
            classify_foreign(Some(&json!({})), Some(&libpod_config), none),
            ArchiveKind::Podman
        );
        assert_eq!(
            classify_foreign(Some(&json!({})), Some(&json!({})), none),
            ArchiveKind::Unknown
        );
    }
}
