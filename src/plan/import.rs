//! PURE: what an import of a checked archive does. From what
//! [`crate::archive::read_archive`] found (the report, every staged file
//! with its digest), the checkpoint's own `ckpt.json` when it has one, and
//! what the user asked, decide the target container and checkpoint name,
//! which engine restores it, where its root filesystem comes from, what the
//! spec becomes under the target's policy (hooks dropped, the engine's
//! bind files replaced by private ones), and the `ckpt.json` the store
//! publishes, or refuse listing every problem.
//!
//! The spec a runc/crun import records is the one its restores run with,
//! and nothing else: `plan::restore` checks it against the same policy
//! again before each restore.

use crate::archive::manifest::{ArchiveKind, RootfsKind};
use crate::archive::policy::{self, Action, Finding, PolicyOptions};
use crate::archive::Report;
use crate::engine::RuntimeKind;
use crate::error::{CORRUPT, NOT_FOUND, REFUSED, USAGE};
use crate::store::metadata::{META_FILE, SEAL_FILE};
use crate::store::{names, CheckpointMeta, ImportRecord, InventorySummary, SCHEMA_VERSION};
use serde_json::Value;
use std::fmt;
use std::path::PathBuf;

/// What the user asked of the import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `--name NEW_ID`.
    pub new_name: Option<String>,
    /// `--checkpoint NAME`: the checkpoint's name in the store.
    pub checkpoint: Option<String>,
    /// `--rootfs DIR`.
    pub rootfs_dir: Option<PathBuf>,
    /// The runtime state root the target restores into (`--runtime-root`).
    pub runtime_root: Option<PathBuf>,
    pub policy: PolicyOptions,
    /// Where the archive came from, for the record.
    pub from: String,
    /// RFC 3339 now.
    pub now: String,
}

/// Where an imported runc/crun checkpoint's root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootfsLanding {
    /// The archive's `rootfs.tar`, unpacked into the staging `rootfs/`.
    Unpacked,
    /// A copy of `--rootfs DIR` (an image's contents), with the staged
    /// `rootfs-diff.tar` laid over it and `deleted.files` removed.
    CopyAndDiff(PathBuf),
    /// The archive has none: this directory (given, or recorded), used in
    /// place as a bundle's rootfs is.
    InPlace(PathBuf),
}

/// A private file or directory that replaces an engine's bind source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    /// The index in `spec.mounts`.
    pub mount: usize,
    pub destination: String,
    /// The name under `binds/`.
    pub file: String,
    /// `None`: a directory (`/dev/shm`); else the file's contents.
    pub contents: Option<Vec<u8>>,
}

/// A runc/crun import.
#[derive(Debug, Clone, PartialEq)]
pub struct OciImport {
    pub rootfs: RootfsLanding,
    /// The bind files to make; the command sets each mount's source to
    /// the published path.
    pub replacements: Vec<Replacement>,
    /// `ckpt.json` to publish, `rootfs` and the replaced sources still to
    /// be filled in by the command from the store's layout.
    pub meta: CheckpointMeta,
    /// Podman's `/dev/shm` contents to unpack into the replaced `/dev/shm`.
    pub devshm: bool,
}

/// A Docker import: a container made again from the image and its create
/// body, the writable layer laid into it.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerImport {
    pub image_name: String,
    pub image_id: Option<String>,
    pub create_body: Value,
    pub deleted: Vec<String>,
}

/// What an import does.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportPlan {
    pub target: String,
    pub checkpoint: String,
    pub kind: ArchiveKind,
    pub how: ImportHow,
    /// What the policy changed, in the user's terms.
    pub changes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImportHow {
    Oci(Box<OciImport>),
    Docker(Box<DockerImport>),
}

/// One reason an archive cannot be imported as asked.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportProblem {
    /// The checkpoint inside does not match its own `ckpt.json`, or is not
    /// a CRIU checkpoint.
    Corrupt(String),
    /// The policy refuses what the spec or the container's config asks for.
    Policy(Finding),
    /// The archive names a runtime ckpt cannot restore.
    UnknownRuntime(String),
    /// Its root filesystem needs something from the user.
    NeedsRootfs(String),
    /// A flag that does not apply to this archive.
    Usage(String),
    /// The id or name it would be imported as is invalid.
    BadName(String),
}

impl ImportProblem {
    pub fn exit_code(&self) -> u8 {
        match self {
            ImportProblem::Corrupt(_) => CORRUPT,
            ImportProblem::Policy(_) => REFUSED,
            ImportProblem::UnknownRuntime(_) => crate::error::FAILURE,
            ImportProblem::NeedsRootfs(_) => NOT_FOUND,
            ImportProblem::Usage(_) | ImportProblem::BadName(_) => USAGE,
        }
    }
}

impl fmt::Display for ImportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportProblem::Corrupt(r) => write!(f, "the checkpoint in the archive is corrupt: {r}"),
            ImportProblem::Policy(finding) => write!(
                f,
                "it asks for {}, which this host's policy refuses ({})",
                finding.detail,
                allow_hint(finding.what)
            ),
            ImportProblem::UnknownRuntime(r) => write!(f, "it was made for runtime {r:?}, which ckpt cannot restore"),
            ImportProblem::NeedsRootfs(r) | ImportProblem::Usage(r) | ImportProblem::BadName(r) => write!(f, "{r}"),
        }
    }
}

fn allow_hint(what: &str) -> &'static str {
    match what {
        "bind" => "pass --allow-bind-source PREFIX to keep binds from under PREFIX",
        "namespace" => "pass --allow-host-namespaces to allow it",
        _ => "pass --allow-privileges to allow it",
    }
}

/// Every reason an archive cannot be imported.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRefusal {
    pub from: String,
    pub problems: Vec<ImportProblem>,
}

impl ImportRefusal {
    pub fn exit_code(&self) -> u8 {
        self.problems
            .first()
            .map_or(crate::error::FAILURE, ImportProblem::exit_code)
    }
}

impl std::error::Error for ImportRefusal {}

impl fmt::Display for ImportRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot import {} (nothing was imported):", self.from)?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

/// The staged checkpoint files (`checkpoint/<name>` of the report), by name.
fn checkpoint_files(report: &Report) -> Vec<(&str, &crate::archive::FoundFile)> {
    report
        .files
        .iter()
        .filter_map(|(k, f)| k.strip_prefix("checkpoint/").map(|n| (n, f)))
        .collect()
}

/// Plans the import of the archive `report` describes. `sealed` is the
/// staged `checkpoint/ckpt.json`, already parsed and its seal checked (ckpt
/// archives), `descriptors` the staged `checkpoint/descriptors.json`.
pub fn import_plan(
    report: &Report,
    sealed: Option<&CheckpointMeta>,
    descriptors: Option<Vec<String>>,
    opts: &ImportOptions,
) -> Result<ImportPlan, ImportRefusal> {
    let mut problems = Vec::new();
    let files = checkpoint_files(report);
    for (name, _) in &files {
        if name.contains('/') {
            problems.push(ImportProblem::Corrupt(format!(
                "checkpoint/{name}: CRIU's images are never in subdirectories"
            )));
        }
    }
    if let Some(meta) = sealed {
        for (name, found) in &files {
            if *name == META_FILE || *name == SEAL_FILE {
                continue;
            }
            match meta.files.get(*name) {
                None => problems.push(ImportProblem::Corrupt(format!(
                    "checkpoint/{name}: not in its ckpt.json"
                ))),
                Some(d) if d.size != found.size || d.blake3 != found.blake3 => problems.push(ImportProblem::Corrupt(
                    format!("checkpoint/{name}: does not match its ckpt.json"),
                )),
                Some(_) => {}
            }
        }
        for name in meta.files.keys() {
            if !files.iter().any(|(n, _)| n == name) {
                problems.push(ImportProblem::Corrupt(format!("checkpoint/{name}: missing")));
            }
        }
    } else if report.kind == ArchiveKind::Ckpt {
        problems.push(ImportProblem::Corrupt("checkpoint/ckpt.json: missing".into()));
    }
    for core in crate::store::listing::CORE_IMAGES {
        if !files.iter().any(|(n, _)| n == core) {
            problems.push(ImportProblem::Corrupt(format!(
                "checkpoint/{core}: missing (not a CRIU checkpoint)"
            )));
        }
    }

    let config = report.config.as_ref();
    let config_str = |k: &str| config.and_then(|c| c.get(k)).and_then(Value::as_str);
    let manifest = report.manifest.as_ref();
    let source_container = manifest
        .map(|m| m.container_id.clone())
        .or_else(|| config_str("name").map(str::to_owned))
        .or_else(|| config_str("id").map(str::to_owned))
        .unwrap_or_default();
    let source_checkpoint = manifest.map(|m| m.checkpoint.clone()).unwrap_or_default();
    let target = opts.new_name.clone().unwrap_or_else(|| source_container.clone());
    if let Err(e) = names::validate_container_id(&target) {
        problems.push(ImportProblem::BadName(format!(
            "{e}; give the container an id with --name NEW_ID"
        )));
    }
    let checkpoint = opts
        .checkpoint
        .clone()
        .or_else(|| (!source_checkpoint.is_empty()).then(|| source_checkpoint.clone()))
        .unwrap_or_else(|| "imported".into());
    if let Err(e) = names::validate_checkpoint_name(&checkpoint) {
        problems.push(ImportProblem::BadName(format!("{e}; name it with --checkpoint NAME")));
    }
    let runtime = manifest
        .map(|m| m.runtime.clone())
        .or_else(|| config_str("runtime").map(str::to_owned))
        .unwrap_or_default();
    let changes_of = |findings: &[Finding]| -> Vec<String> {
        findings
            .iter()
            .filter(|f| f.action != Action::Refuse)
            .map(|f| match f.action {
                Action::Drop => format!("dropped {}", f.detail),
                _ => format!(
                    "replaced {} with a private {}",
                    f.detail,
                    if f.detail.ends_with("/dev/shm") {
                        "directory"
                    } else {
                        "file"
                    }
                ),
            })
            .collect()
    };

    let how = match RuntimeKind::from_name(&runtime) {
        Some(RuntimeKind::Docker) => {
            let body = config
                .and_then(|c| c.get("ckpt"))
                .and_then(|c| c.get("docker_create"))
                .cloned();
            let image = manifest.and_then(|m| m.image.clone());
            match (body, image) {
                (Some(body), Some(image)) => {
                    for f in policy::check_docker_create(&body, &opts.policy) {
                        if f.action == Action::Refuse {
                            problems.push(ImportProblem::Policy(f));
                        }
                    }
                    if opts.rootfs_dir.is_some() {
                        problems.push(ImportProblem::Usage(
                            "--rootfs is for runc and crun archives; a Docker container's writable layer goes over its image".into(),
                        ));
                    }
                    Some(ImportHow::Docker(Box::new(DockerImport {
                        image_name: image.name,
                        image_id: image.id,
                        create_body: body,
                        deleted: report.deleted_files.clone().unwrap_or_default(),
                    })))
                }
                _ => {
                    problems.push(ImportProblem::Corrupt(
                        "a Docker archive without its image or its container's config (config.dump ckpt.docker_create)"
                            .into(),
                    ));
                    None
                }
            }
        }
        Some(kind) => {
            let spec = sealed
                .map(|m| m.spec.clone())
                .or_else(|| report.spec.clone())
                .unwrap_or(Value::Null);
            let findings = policy::check_spec(&spec, &opts.policy);
            for f in &findings {
                if f.action == Action::Refuse {
                    problems.push(ImportProblem::Policy(f.clone()));
                }
            }
            let rootfs = landing(report, sealed, opts, &mut problems);
            let (spec, replacements) = rewrite_spec(spec, &findings, &target);
            let record = ImportRecord {
                from: opts.from.clone(),
                made_by: report.kind.name().into(),
                source_container: source_container.clone(),
                source_checkpoint: source_checkpoint.clone(),
                imported_at: opts.now.clone(),
                allowed_bind_sources: opts.policy.allowed_bind_sources.clone(),
                allow_host_namespaces: opts.policy.allow_host_namespaces,
                allow_privileges: opts.policy.allow_privileges,
                changes: changes_of(&findings),
            };
            let meta = imported_meta(
                sealed,
                report,
                kind,
                &target,
                &checkpoint,
                spec,
                descriptors,
                opts,
                record,
            );
            let devshm = report.files.contains_key(crate::archive::manifest::DEVSHM_TAR)
                && replacements.iter().any(|r| r.destination == "/dev/shm");
            rootfs.map(|rootfs| {
                ImportHow::Oci(Box::new(OciImport {
                    rootfs,
                    replacements,
                    meta,
                    devshm,
                }))
            })
        }
        None => {
            problems.push(ImportProblem::UnknownRuntime(runtime.clone()));
            None
        }
    };
    match how {
        Some(how) if problems.is_empty() => {
            let changes = match &how {
                ImportHow::Oci(o) => o.meta.imported.as_ref().map(|r| r.changes.clone()).unwrap_or_default(),
                ImportHow::Docker(_) => Vec::new(),
            };
            Ok(ImportPlan {
                target,
                checkpoint,
                kind: report.kind,
                how,
                changes,
            })
        }
        _ => Err(ImportRefusal {
            from: opts.from.clone(),
            problems,
        }),
    }
}

/// Where the root filesystem of a runc/crun import comes from.
fn landing(
    report: &Report,
    sealed: Option<&CheckpointMeta>,
    opts: &ImportOptions,
    problems: &mut Vec<ImportProblem>,
) -> Option<RootfsLanding> {
    let kind = match (&report.manifest, &report.rootfs) {
        (Some(m), _) => m.rootfs.kind,
        (None, Some(r)) if r.entry == crate::archive::manifest::ROOTFS_DIFF_TAR => RootfsKind::Diff,
        (None, _) => RootfsKind::None,
    };
    match (kind, &opts.rootfs_dir) {
        (RootfsKind::Tree, None) if report.rootfs.as_ref().is_some_and(|r| r.unpacked_to.is_some()) => {
            Some(RootfsLanding::Unpacked)
        }
        (RootfsKind::Tree, None) => {
            problems.push(ImportProblem::Corrupt("its rootfs.tar was not unpacked".into()));
            None
        }
        (RootfsKind::Tree, Some(_)) => {
            problems.push(ImportProblem::Usage(
                "the archive carries its whole root filesystem; --rootfs is for archives without one or with a diff"
                    .into(),
            ));
            None
        }
        (RootfsKind::Diff, Some(dir)) => Some(RootfsLanding::CopyAndDiff(dir.clone())),
        (RootfsKind::Diff, None) => {
            let image = report
                .config
                .as_ref()
                .and_then(|c| c.get("rootfsImageName"))
                .and_then(Value::as_str)
                .unwrap_or("(not named)");
            problems.push(ImportProblem::NeedsRootfs(format!(
                "its root filesystem is a diff over image {image}, which runc and crun do not have; pass --rootfs DIR with that image's contents (a copy is made)"
            )));
            None
        }
        (RootfsKind::None, Some(dir)) => Some(RootfsLanding::InPlace(dir.clone())),
        (RootfsKind::None, None) => match sealed.and_then(|m| m.rootfs.clone()) {
            Some(recorded) => Some(RootfsLanding::InPlace(recorded)),
            None => {
                problems.push(ImportProblem::NeedsRootfs(
                    "the archive has no root filesystem and records none; pass --rootfs DIR".into(),
                ));
                None
            }
        },
    }
}

/// The name under `binds/` of the private file for an engine bind at `dest`.
fn bind_file(dest: &str) -> String {
    dest.trim_start_matches('/').replace('/', "-")
}

/// The spec with the policy's drops and replacements applied (hooks gone,
/// engine binds' sources left for the command to point at the private
/// files), and those replacements.
fn rewrite_spec(mut spec: Value, findings: &[Finding], target: &str) -> (Value, Vec<Replacement>) {
    if findings.iter().any(|f| f.what == "hook") {
        if let Some(obj) = spec.as_object_mut() {
            obj.remove("hooks");
        }
    }
    let hostname = spec
        .get("hostname")
        .and_then(Value::as_str)
        .unwrap_or(target)
        .to_string();
    let mut replacements = Vec::new();
    if let Some(mounts) = spec.get("mounts").and_then(Value::as_array) {
        for (i, m) in mounts.iter().enumerate() {
            let dest = m.get("destination").and_then(Value::as_str).unwrap_or_default();
            let replaced = findings.iter().any(|f| {
                f.what == "bind" && f.action == Action::Replace && f.detail.ends_with(&format!(" bound at {dest}"))
            });
            if !replaced {
                continue;
            }
            let contents = match dest {
                "/dev/shm" => None,
                "/etc/hosts" => {
                    Some(format!("127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t{hostname}\n").into_bytes())
                }
                "/etc/hostname" => Some(format!("{hostname}\n").into_bytes()),
                _ => Some(Vec::new()),
            };
            replacements.push(Replacement {
                mount: i,
                destination: dest.to_string(),
                file: bind_file(dest),
                contents,
            });
        }
    }
    (spec, replacements)
}

#[allow(clippy::too_many_arguments)]
fn imported_meta(
    sealed: Option<&CheckpointMeta>,
    report: &Report,
    kind: RuntimeKind,
    target: &str,
    checkpoint: &str,
    spec: Value,
    descriptors: Option<Vec<String>>,
    opts: &ImportOptions,
    record: ImportRecord,
) -> CheckpointMeta {
    let config = report.config.as_ref();
    let runtime_root = opts
        .runtime_root
        .clone()
        .or_else(|| kind.default_roots().first().cloned());
    match sealed {
        Some(m) => CheckpointMeta {
            schema_version: SCHEMA_VERSION,
            container_id: target.to_string(),
            name: checkpoint.to_string(),
            runtime_root,
            bundle: None,
            rootfs: None,
            spec,
            imported: Some(record),
            // An archive holds whole page files (export reassembles them).
            incremental: None,
            ..m.clone()
        },
        None => CheckpointMeta {
            schema_version: SCHEMA_VERSION,
            tool: format!("ckpt {} (import)", env!("CARGO_PKG_VERSION")),
            container_id: target.to_string(),
            name: checkpoint.to_string(),
            runtime: kind.name().into(),
            runtime_root,
            bundle: None,
            rootfs: None,
            spec,
            inventory: InventorySummary::default(),
            criu_version: String::new(),
            kernel: String::new(),
            created_at: config
                .and_then(|c| c.get("checkpointedTime"))
                .and_then(Value::as_str)
                .unwrap_or(&opts.now)
                .to_string(),
            frozen_ms: 0,
            dump_ms: 0,
            size_bytes: 0,
            options: Default::default(),
            descriptors: descriptors.unwrap_or_default(),
            files: Default::default(),
            imported: Some(record),
            incremental: None,
        },
    }
}

/// Points the spec at where the import put things: `root.path` at the
/// root filesystem, each replaced bind at its private file.
pub fn finish_spec(spec: &mut Value, rootfs: &std::path::Path, sources: &[(usize, PathBuf)]) {
    if let Some(root) = spec.get_mut("root").and_then(Value::as_object_mut) {
        root.insert("path".into(), Value::String(rootfs.display().to_string()));
    } else if let Some(obj) = spec.as_object_mut() {
        obj.insert("root".into(), serde_json::json!({"path": rootfs.display().to_string()}));
    }
    if let Some(mounts) = spec.get_mut("mounts").and_then(Value::as_array_mut) {
        for (i, source) in sources {
            if let Some(m) = mounts.get_mut(*i).and_then(Value::as_object_mut) {
                m.insert("source".into(), Value::String(source.display().to_string()));
            }
        }
    }
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
