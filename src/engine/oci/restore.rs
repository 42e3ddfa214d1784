//! A restore through runc or crun, step by step for [`super::OciEngine`]:
//! what the plan needs to know ([`facts`], reads only), what is put in
//! place first ([`prepare`]: the generated bundle, the removal of a stopped
//! target's leftovers, the work directory), the restore itself ([`run`]:
//! an output relay and `<runtime> restore`), and its undoing ([`undo`]).
//!
//! Never deletes through a mount, and never leaves a failed restore half
//! done: [`undo`] goes through [`super::undo::undo_restore`].

use super::runtime::{RestoreRequest, Runtime};
use super::undo::{self, RestoreSite};
use super::{lookup_all, SearchRoots};
use crate::criu::CriuVersion;
use crate::engine::{Prepared, Report, Restored, RuntimeKind, Status, Undo};
use crate::error::{Error, ResultExt as _};
use crate::interrupt::Interrupted;
use crate::plan::bundle::BundleChoice;
use crate::plan::export::{ExportFacts, ExportRootfs};
use crate::plan::restore::{self as plan, How, RestoreFacts, RestorePlan, Restorer, TargetState};
use crate::plan::stdio::StdioSource;
use crate::procfs::ProcRoot;
use crate::store::{CheckpointEntry, Log, Store, StoreError};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// What the plan of a restore of `entry` into `target` needs to know: the
/// runtime `ckpt.json` recorded (its binary must be there), the target in
/// that runtime's state root, the original bundle's spec, the paths the
/// restore needs, and whether what start writes in the store is ckpt's own.
pub fn facts(
    proc: &ProcRoot,
    store: &Store,
    entry: &CheckpointEntry,
    target: &str,
    new_id: bool,
    criu: Option<CriuVersion>,
) -> Result<RestoreFacts, Error> {
    let mut state = TargetState::Absent;
    let mut original_spec = None;
    if let Some(meta) = &entry.meta {
        if let Ok((kind, binary, root)) = plan::recorded_runtime(meta) {
            Runtime::locate(binary, &root, proc)?;
            let roots = SearchRoots {
                roots: vec![(binary, root.clone())],
            };
            state = match lookup_all(&roots, proc, target)?.pop() {
                Some(found) if found.status != Status::Stopped => {
                    warn_of_leftover_mounts(proc, &root.join(target), target, kind);
                    TargetState::Running
                }
                Some(_) => TargetState::Stopped,
                None if root.join(target).exists() => TargetState::Leftover,
                None => TargetState::Absent,
            };
        }
        if let (Some(bundle), false) = (&meta.bundle, new_id) {
            original_spec = crate::spec::read_raw(&bundle.join("config.json"))?;
        }
    }
    // What this start writes into the target's directory must be ckpt's
    // own files, not symlinks planted there.
    let unsafe_target = match store.check_restore_target(target) {
        Ok(()) => None,
        Err(StoreError::UnsafeStore { path, reason }) => Some((path, reason)),
        Err(e) => return Err(e.into()),
    };
    Ok(RestoreFacts {
        restorer: Restorer::Oci,
        criu,
        home_id: entry.container_id.clone(),
        target_name: target.to_string(),
        target: state,
        original_spec,
        present: plan::paths_to_check(entry).into_iter().filter(|p| p.exists()).collect(),
        unsafe_target,
        missing_image: None,
    })
}

/// What an export of `entry` needs: whether the container runs now in the
/// runtime root its checkpoint recorded, and the recorded root filesystem
/// if it is still there.
pub fn export_facts(proc: &ProcRoot, entry: &CheckpointEntry) -> Result<ExportFacts, Error> {
    let meta = entry.meta.as_ref();
    let mut running = false;
    if let Some(Ok((_, binary, root))) = meta.map(plan::recorded_runtime) {
        let roots = SearchRoots {
            roots: vec![(binary, root)],
        };
        running = lookup_all(&roots, proc, &entry.container_id)?
            .iter()
            .any(|found| found.status != Status::Stopped);
    }
    let rootfs = match meta.and_then(|m| m.rootfs.clone()) {
        Some(p) if p.is_dir() => ExportRootfs::Tree(p),
        Some(p) => ExportRootfs::Unknown(format!("it was at {}, which is gone", p.display())),
        None => ExportRootfs::Unknown("the checkpoint records none".into()),
    };
    Ok(ExportFacts {
        running,
        rootfs,
        container_name: None,
        created: None,
        oci_runtime: meta.map(|m| m.runtime.clone()).unwrap_or_default(),
        docker_create: None,
    })
}

/// The runc/crun part of a plan.
struct Oci<'a> {
    runtime: RuntimeKind,
    binary: RuntimeKind,
    root: &'a Path,
    bundle: &'a BundleChoice,
    clear_target: bool,
    stdio: [StdioSource; 3],
    tcp_close: bool,
}

fn oci(plan: &RestorePlan) -> Oci<'_> {
    match &plan.how {
        How::Oci {
            runtime,
            binary,
            root,
            bundle,
            clear_target,
            stdio,
            tcp_close,
        } => Oci {
            runtime: *runtime,
            binary: *binary,
            root,
            bundle,
            clear_target: *clear_target,
            stdio: *stdio,
            tcp_close: *tcp_close,
        },
        How::Docker { .. } => unreachable!("runc and crun execute runc/crun plans only"),
    }
}

/// Every check has passed: from here on, ckpt writes. Puts the chosen
/// bundle in place (the original as it is, or the generated spec written
/// by the store), removes what a stopped target or a killed restore left,
/// and makes the restore's work directory.
pub fn prepare(proc: &ProcRoot, store: &Store, plan: &RestorePlan) -> Result<Prepared, Error> {
    let o = oci(plan);
    let target = &plan.target;
    let runtime = Runtime::locate(o.binary, o.root, proc)?;
    let bundle = match o.bundle {
        BundleChoice::Original(dir) => dir.clone(),
        BundleChoice::Generated(spec) if o.tcp_close => {
            // The spec's own CRIU config file, if it names one, goes on
            // applying: its options come first in ckpt's.
            let existing = match crate::plan::bundle::criu_config_of(spec) {
                None => None,
                Some(path) => Some(std::fs::read_to_string(path).map_err(|source| Error::Io {
                    op: "read the CRIU config file the spec names,",
                    path: path.into(),
                    source,
                })?),
            };
            let text = crate::plan::bundle::criu_config_text(existing.as_deref());
            let config = store.write_criu_config(target, text.as_bytes())?;
            let spec = crate::plan::bundle::with_criu_config(spec.clone(), &config);
            store.write_bundle(target, &serde_json::to_vec_pretty(&spec)?)?
        }
        BundleChoice::Generated(spec) => store.write_bundle(target, &serde_json::to_vec_pretty(spec)?)?,
    };
    if o.clear_target {
        // A stopped container, or a state dir without a state file: the
        // leftover of an earlier failed or killed create or restore, which
        // may still have CRIU's and the runtime's mounts (the rootfs among
        // them) below it. The runtime refuses the id until it goes.
        log::info!(
            "removing the stopped or leftover container {target} in {}",
            o.root.display()
        );
        let site = RestoreSite {
            runtime: &runtime,
            id: target,
            bundle: &bundle,
            work_area: &store.layout().staging_root(target),
            proc,
        };
        undo::undo_restore(&site).with_context(|| {
            format!(
                "cannot remove the leftover state of {target} in {}; nothing was restored",
                o.root.display()
            )
        })?;
    }
    Ok(Prepared {
        id: target.clone(),
        name: target.clone(),
        created: false,
        bundle: Some(bundle),
        work: Some(store.restore_work_dir(target)?),
    })
}

/// Runs `<runtime> restore` with the stdio the plan chose (an output relay
/// for the recorded stdout and stderr pipes, an empty pipe for a recorded
/// stdin pipe), and keeps CRIU's log as the target's
/// `restore.log` whatever happened. Returns that log, the time from the
/// relay's start to the runtime's exit, CRIU's `stats-restore` (read from
/// the work dir before it goes), where the output goes, and the runtime as
/// the output says it.
pub fn run(
    proc: &ProcRoot,
    exe: Option<&Path>,
    store: &Store,
    plan: &RestorePlan,
    prepared: &Prepared,
) -> Result<Restored, Error> {
    let o = oci(plan);
    let target = &plan.target;
    let (work, bundle) = parts(prepared);
    let runtime = Runtime::locate(o.binary, o.root, proc)?;
    let output_log = store.layout().log(target, Log::Output);
    let started = std::time::Instant::now();
    let relay = spawn_relay(exe, &output_log)?;
    let stdio = open_stdio(o.stdio, relay)?;
    let pid_file = work.join("pid");
    let req = RestoreRequest {
        id: target,
        bundle,
        images: &plan.images,
        work_dir: work,
        pid_file: &pid_file,
        options: plan.options,
    };
    log::info!(
        "restoring {} from {} with {}",
        target,
        plan.images.display(),
        o.runtime.name()
    );
    let restored = runtime.restore(&req, stdio);
    let restore_ms = started.elapsed().as_millis() as u64;
    let restore_log = std::fs::read_to_string(work.join("restore.log")).unwrap_or_default();
    let _ = store.write_log(target, Log::Restore, restore_log.as_bytes());
    restored?;
    // CRIU writes it into its work dir (it chdirs there), which the
    // runtime's --work-path makes ours.
    let criu_stats = std::fs::read(work.join("stats-restore"))
        .ok()
        .and_then(|b| crate::criu::stats::parse_restore_stats(&b));
    Ok(Restored {
        restore_ms,
        restore_log: Some(restore_log),
        criu_stats,
        report: Report::Oci {
            runtime: o.runtime,
            output_log,
        },
    })
}

/// The restored init's host pid, from the runtime's pid file.
pub fn pid_of(plan: &RestorePlan, prepared: &Prepared) -> Result<i32, Error> {
    let (work, _) = parts(prepared);
    std::fs::read_to_string(work.join("pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| Error::NotResumed {
            id: prepared.id.clone(),
            reason: format!("{} wrote no pid file", oci(plan).runtime.name()),
        })
}

/// Undoes the restore whole ([`undo::undo_restore`]) and says why and in
/// which state it left things.
pub fn undo(proc: &ProcRoot, store: &Store, plan: &RestorePlan, prepared: &Prepared, why: Undo) -> Error {
    let o = oci(plan);
    let (work, bundle) = parts(prepared);
    let undone = Runtime::locate(o.binary, o.root, proc)
        .map_err(undo::CleanupError::Delete)
        .and_then(|runtime| {
            undo::undo_restore(&RestoreSite {
                runtime: &runtime,
                id: &plan.target,
                bundle,
                work_area: work,
                proc,
            })
        });
    explain_undo(
        why,
        undone,
        &plan.target,
        &plan.checkpoint,
        &store.layout().log(&plan.target, Log::Restore),
    )
}

fn parts(prepared: &Prepared) -> (&Path, &Path) {
    let work = prepared
        .work
        .as_ref()
        .expect("a prepared runc/crun restore has a work dir");
    let bundle = prepared
        .bundle
        .as_deref()
        .expect("a prepared runc/crun restore has a bundle");
    (work.path(), bundle)
}

/// Starts `ckpt __relay <output_log>` in its own session reading a new
/// pipe; returns the pipe's write end for the restored container.
fn spawn_relay(exe: Option<&Path>, output_log: &Path) -> Result<OwnedFd, Error> {
    let spawn_err = |source| Error::Spawn {
        what: "the output relay",
        source,
    };
    let exe = exe.ok_or_else(|| spawn_err(std::io::ErrorKind::NotFound.into()))?;
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| spawn_err(e.into()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("__relay")
        .arg(output_log)
        .stdin(Stdio::from(read))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe; the relay must not die with
    // ckpt's terminal session.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()?;
            Ok(())
        });
    }
    cmd.spawn().map_err(spawn_err)?;
    Ok(write)
}

/// The runtime's fds 0–2 as `sources` say: `relay` (the output relay's
/// pipe) for each `Relay`, a pipe whose write end is closed here for an
/// `EmptyPipe`, `/dev/null` for the rest. The relay's pipe is dropped when
/// nothing uses it, and the relay then ends with an empty log.
fn open_stdio(sources: [StdioSource; 3], relay: OwnedFd) -> Result<[Stdio; 3], Error> {
    let spawn_err = |source: std::io::Error| Error::Spawn {
        what: "the restored container's stdio",
        source,
    };
    let open = |source| -> Result<Stdio, Error> {
        Ok(match source {
            StdioSource::Relay => Stdio::from(relay.try_clone().map_err(spawn_err)?),
            StdioSource::EmptyPipe => {
                // The write end goes at once: the container reads end of
                // file, and nothing of ckpt's stays behind.
                let (read, _write) =
                    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| spawn_err(e.into()))?;
                Stdio::from(read)
            }
            StdioSource::Null => Stdio::null(),
        })
    };
    let [stdin, stdout, stderr] = sources;
    Ok([open(stdin)?, open(stdout)?, open(stderr)?])
}

/// A restore whose ckpt and runtime were killed together just after CRIU
/// resumed the tasks runs on, but the runtime never unmounted the rootfs
/// from below its state dir; a `runc delete --force` of the container
/// would then delete the rootfs through that mount. A refused start
/// changes nothing, so it only says so (ckpt's own deletes unmount first).
fn warn_of_leftover_mounts(proc: &ProcRoot, state_dir: &Path, id: &str, kind: RuntimeKind) {
    let mounts = crate::mountinfo::parse(&proc.own().mountinfo().unwrap_or_default());
    let Ok(dir) = std::fs::canonicalize(state_dir) else {
        return;
    };
    if let Err(left) = crate::mounts::delete_verdict(&mounts, &dir) {
        let first = left[0].display();
        log::warn!(
            "{id} runs, but an interrupted restore left {} mounted below {}: `{} delete --force {id}` would \
             delete the files it shows (the container's root filesystem); unmount it first (umount -l {first})",
            left.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            dir.display(),
            kind.name(),
        );
    }
}

/// The error of a start whose restore failed or was interrupted and has
/// been undone (or failed to be): why, and in which state it left things.
fn explain_undo(
    why: Undo,
    undone: Result<(), undo::CleanupError>,
    target: &str,
    checkpoint: &str,
    kept_log: &Path,
) -> Error {
    // The cleanup's failure is told in the same sentence: it says what is
    // left behind, which matters more than why the restore failed.
    let failed_cleanup = undone.err().map(|e| crate::error::chain(&e));
    let cleanup = failed_cleanup
        .as_ref()
        .map(|e| format!(", but cleaning up after it failed: {e}"))
        .unwrap_or_default();
    let log = kept_log.display();
    match (why.signal, why.failure) {
        (Some(sig), _) if failed_cleanup.is_none() => Error::from(Interrupted(sig)).context(format!(
            "the restore was undone: container {target} is stopped, and checkpoint {checkpoint} is unchanged \
             and can be restored again; restore log kept at {log}"
        )),
        (Some(sig), _) => Error::from(Interrupted(sig)).context(format!(
            "the restore was interrupted{cleanup}; restore log kept at {log}"
        )),
        (None, Some(e)) => e.context(format!("nothing was started{cleanup}; restore log kept at {log}")),
        (None, None) => Error::RestoreUndone {
            detail: format!("{cleanup}; restore log kept at {log}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explained(restore_failed: bool, signal: Option<i32>, cleanup_failed: bool) -> (u8, String) {
        let failure = restore_failed.then(|| {
            Error::from(super::super::runtime::RuntimeError::Failed {
                runtime: "runc",
                action: "restore",
                id: "c1".into(),
                message: "runc restore failed".into(),
            })
        });
        let undone = if cleanup_failed {
            Err(undo::CleanupError::RootfsChanged {
                rootfs: "/b/rootfs".into(),
                lost: vec!["bin".into()],
            })
        } else {
            Ok(())
        };
        let e = explain_undo(
            Undo { failure, signal },
            undone,
            "c1",
            "s1",
            Path::new("/s/c1/restore.log"),
        );
        (e.exit_code(), crate::error::chain(&e))
    }

    /// (restore failed, signal, cleanup failed, exit code, phrases in the message)
    type Case = (bool, Option<i32>, bool, u8, &'static [&'static str]);

    #[test]
    fn undo_is_explained_with_the_right_exit_code() {
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (true, None, false, 1, &["nothing was started; restore log kept at /s/c1/restore.log", "runc restore failed"]),
            (true, None, true, 1, &["nothing was started, but cleaning up after it failed", "/b/rootfs", "runc restore failed"]),
            (false, Some(15), false, 143, &["the restore was undone: container c1 is stopped", "checkpoint s1 is unchanged", "interrupted by signal 15"]),
            (true, Some(2), false, 130, &["the restore was undone", "interrupted by signal 2"]),
            (false, Some(1), true, 129, &["the restore was interrupted, but cleaning up after it failed", "/b/rootfs"]),
        ];
        for (failed, sig, cleanup_failed, code, phrases) in cases {
            let (got, text) = explained(*failed, *sig, *cleanup_failed);
            assert_eq!(got, *code, "{text}");
            for p in *phrases {
                assert!(text.contains(p), "{p:?} not in {text:?}");
            }
        }
        let (_, text) = explained(false, Some(15), true);
        assert!(!text.contains("undone"), "a failed cleanup is not an undo: {text}");
    }
}
