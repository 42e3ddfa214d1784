//! `ckpt import`: read the archive into the store's staging (hostile
//! reader) → check the checkpoint's own seal → plan (target, policy, root
//! filesystem) → lay the root filesystem and private bind files down in
//! staging → publish by one rename.
//!
//! Promises: nothing is written outside the store's staging entry until
//! the publish, which is one rename; on any failure (exit 7 for an archive
//! that does not match itself, 3 for a policy refusal) the staging entry is
//! removed and the store is as it was. Never runs anything from the archive.

use super::{now_rfc3339, Context, LOCK_WAIT};
use crate::archive::manifest::{ArchiveKind, CHECKPOINT_DIR, DEVSHM_TAR, ROOTFS_DIFF_TAR};
use crate::archive::policy::PolicyOptions;
use crate::archive::{apply, read_archive, ReadOptions};
use crate::cli::{ImportArgs, ImportFlags};
use crate::error::Error;
use crate::output::Output;
use crate::plan::import::{
    finish_spec, import_plan, ImportHow, ImportOptions, ImportProblem, ImportRefusal, RootfsLanding,
};
use crate::store::import::CHECKPOINT_PART;
use crate::store::layout::{IMPORTED_BINDS, IMPORTED_ROOTFS};
use crate::store::metadata::{seal_of, META_FILE, SEAL_FILE};
use crate::store::{CheckpointMeta, StoreError};
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// What an import published, printed as text or JSON.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Imported {
    pub container: String,
    pub checkpoint: String,
    pub dir: PathBuf,
    /// Who made the archive: `ckpt`, `podman`, ...
    pub made_by: &'static str,
    pub runtime: String,
    /// The root filesystem its restores use.
    pub rootfs: PathBuf,
    /// What the policy dropped or replaced.
    pub changes: Vec<String>,
}

pub fn run(ctx: &Context, args: &ImportArgs, out: &mut Output) -> Result<(), Error> {
    let imported = import_file(ctx, &args.file, args.name.as_deref(), &args.import)?;
    if args.json {
        out.json(&imported)?;
    } else {
        for c in &imported.changes {
            out.say(format!("import: {c}"));
        }
        out.say(format!(
            "imported checkpoint {} of {} from {} ({} archive, runtime {}) into {}; restore it with: ckpt start --checkpoint {} {}",
            imported.checkpoint,
            imported.container,
            args.file.display(),
            imported.made_by,
            imported.runtime,
            imported.dir.display(),
            imported.checkpoint,
            imported.container
        ));
    }
    Ok(())
}

/// Imports `file` into the store; `start --import` uses it too.
pub fn import_file(ctx: &Context, file: &Path, new_name: Option<&str>, flags: &ImportFlags) -> Result<Imported, Error> {
    let io = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { op, path, source }
    };
    let input = fs::File::open(file).map_err(io("open", file))?;
    let len = input.metadata().map_err(io("inspect", file))?.len();
    let store = ctx.open_store(&ctx.store_root)?;
    let staging = store.begin_import()?;
    let mut read = ReadOptions::for_input(len);
    read.allow_setuid = flags.allow_setuid;
    // A ckpt archive declares its sizes: it may fill the store's free
    // space, whatever it compressed to (checkpoint memory compresses far).
    read.declared_max_bytes = free_bytes(&ctx.store_root);
    let report = read_archive(BufReader::with_capacity(1 << 16, input), staging.dir(), &read)?;
    let from = file.display().to_string();
    let refuse = |p: ImportProblem| ImportRefusal {
        from: from.clone(),
        problems: vec![p],
    };

    let ck = staging.dir().join(CHECKPOINT_PART);
    let sealed = match report.kind {
        ArchiveKind::Ckpt => Some(sealed_meta(&ck).map_err(|reason| refuse(ImportProblem::Corrupt(reason)))?),
        _ => None,
    };
    let descriptors = match fs::read(ck.join("descriptors.json")) {
        Ok(bytes) => Some(serde_json::from_slice::<Vec<String>>(&bytes).map_err(|e| {
            refuse(ImportProblem::Corrupt(format!(
                "{CHECKPOINT_DIR}/descriptors.json is not a list of strings: {e}"
            )))
        })?),
        Err(_) => None,
    };
    let opts = ImportOptions {
        new_name: new_name.map(str::to_string),
        checkpoint: flags.as_checkpoint.clone(),
        rootfs_dir: flags.rootfs.clone(),
        runtime_root: ctx.runtime_roots.first().cloned(),
        policy: PolicyOptions {
            allowed_bind_sources: flags.allow_bind_sources.clone(),
            allow_host_namespaces: flags.allow_host_namespaces,
            allow_privileges: flags.allow_privileges,
        },
        from: from.clone(),
        now: now_rfc3339(),
    };
    let plan = import_plan(&report, sealed.as_ref(), descriptors, &opts)?;
    let ImportHow::Oci(oci) = plan.how else {
        return Err(refuse(ImportProblem::Usage(
            "it is a Docker archive; ckpt does not import Docker containers yet".into(),
        ))
        .into());
    };
    let (target, name) = (plan.target.clone(), plan.checkpoint.clone());
    let _lock = store.lock(&target, LOCK_WAIT)?;
    let layout = store.layout();
    if layout.checkpoint_dir(&target, &name).exists() {
        return Err(StoreError::AlreadyExists {
            container: target,
            name,
        }
        .into());
    }

    // The root filesystem, in staging.
    let staged_rootfs = staging.dir().join(IMPORTED_ROOTFS);
    let (rootfs_part, rootfs) = match &oci.rootfs {
        RootfsLanding::Unpacked => (Some(IMPORTED_ROOTFS), layout.imported_rootfs(&target, &name)),
        RootfsLanding::CopyAndDiff(dir) => {
            fs::create_dir(&staged_rootfs).map_err(io("create", &staged_rootfs))?;
            apply::copy_tree(dir, &staged_rootfs)?;
            apply::overlay_diff(&staging.dir().join(ROOTFS_DIFF_TAR), &staged_rootfs, flags.allow_setuid)?;
            apply::delete_paths(&staged_rootfs, report.deleted_files.as_deref().unwrap_or_default())?;
            (Some(IMPORTED_ROOTFS), layout.imported_rootfs(&target, &name))
        }
        RootfsLanding::InPlace(dir) => (None, dir.clone()),
    };
    // The engine's own files, private to this checkpoint.
    let mut sources = Vec::new();
    for r in &oci.replacements {
        let published = match &r.contents {
            Some(bytes) => staging.write_bind_file(layout, &target, &name, &r.file, bytes)?,
            None => staging.make_bind_dir(layout, &target, &name, &r.file)?,
        };
        if oci.devshm && r.destination == "/dev/shm" {
            let into = staging.dir().join(IMPORTED_BINDS).join(&r.file);
            apply::unpack_diff(&staging.dir().join(DEVSHM_TAR), &into, false)?;
        }
        sources.push((r.mount, published));
    }
    let mut meta = oci.meta.clone();
    finish_spec(&mut meta.spec, &rootfs, &sources);
    meta.rootfs = Some(rootfs.clone());
    let runtime = meta.runtime.clone();
    let dir = staging.publish(layout, meta, rootfs_part)?;
    Ok(Imported {
        container: target,
        checkpoint: name,
        dir,
        made_by: report.kind.name(),
        runtime,
        rootfs,
        changes: plan.changes,
    })
}

/// The staged `checkpoint/ckpt.json`, its seal checked, parsed.
fn sealed_meta(ck: &Path) -> Result<CheckpointMeta, String> {
    let json = fs::read(ck.join(META_FILE)).map_err(|e| format!("{CHECKPOINT_DIR}/{META_FILE}: {e}"))?;
    let seal = fs::read(ck.join(SEAL_FILE)).map_err(|e| format!("{CHECKPOINT_DIR}/{SEAL_FILE}: {e}"))?;
    if seal != seal_of(&json).as_bytes() {
        return Err(format!(
            "{CHECKPOINT_DIR}/{META_FILE} does not match its seal {SEAL_FILE}"
        ));
    }
    let text = String::from_utf8(json).map_err(|_| format!("{CHECKPOINT_DIR}/{META_FILE} is not UTF-8"))?;
    CheckpointMeta::from_json(ck, &text).map_err(|e| crate::error::chain(&e))
}

/// Bytes available to ckpt on the store's filesystem, if it can say.
fn free_bytes(store_root: &Path) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(store_root).ok()?;
    Some((st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64))
}
