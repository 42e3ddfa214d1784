//! Error → exit code, for every code docs/usage.md documents (EXIT STATUS)
//! and every variant that decides one. A row per documented case: when a
//! case moves to another code, this table and the docs change together.

use super::*;
use crate::criu::CriuVersion;
use crate::plan::bundle::BundleRefusal;
use crate::plan::export::ExportProblem;
use crate::plan::import::{ImportProblem, ImportRefusal};
use crate::plan::restore::RestoreProblem;
use crate::plan::{Problem, Refusal};
use std::io;

fn import(p: ImportProblem) -> Error {
    Error::ImportRefused(ImportRefusal {
        from: "a.tar".into(),
        problems: vec![p],
    })
}

fn io_err() -> io::Error {
    io::Error::from(io::ErrorKind::PermissionDenied)
}

fn store(e: StoreError) -> Error {
    Error::Store(e)
}

fn chunks(source: ChunkError) -> Error {
    Error::Chunks {
        step: "reassemble",
        container: "c".into(),
        checkpoint: "n".into(),
        source: Box::new(source),
    }
}

fn docker(e: DockerError) -> Error {
    Error::Docker(e)
}

fn criu_failed() -> CriuError {
    CriuError::Failed {
        action: "dump",
        status: "exit status 1".into(),
        log_path: "/s/dump.log".into(),
        errors: vec![],
        hint: None,
    }
}

fn refused(problem: RestoreProblem) -> Error {
    Error::RestoreRefused(RestoreRefusal {
        checkpoint: "n".into(),
        target: "c".into(),
        problems: vec![problem],
    })
}

fn v(major: u32, minor: u32) -> CriuVersion {
    CriuVersion {
        major,
        minor,
        sublevel: 0,
    }
}

fn runtime_failed() -> RuntimeError {
    RuntimeError::Failed {
        runtime: "runc",
        action: "restore",
        id: "c1".into(),
        message: "criu failed".into(),
    }
}

/// (what the case is, the error, the exit code)
#[rustfmt::skip]
fn table() -> Vec<(&'static str, Error, u8)> {
    let p = PathBuf::from;
    vec![
        // 1: anything not listed below.
        ("checkpoint name exists", store(StoreError::AlreadyExists { container: "c".into(), name: "n".into() }), 1),
        ("store filled up", store(StoreError::NoSpace { root: p("/s"), op: "write", path: p("/s/x") }), 1),
        ("store I/O", store(StoreError::Io { op: "fsync", path: p("/s/x"), source: io_err() }), 1),
        ("runtime restore failed", Error::Runtime(runtime_failed()), 1),
        ("runtime delete refused: mounts below", Error::Runtime(RuntimeError::MountsBelow { runtime: "runc", id: "c1".into(), source: MountError::MountsRemain { dir: p("/run/runc/c1"), mounts: vec![p("/run/runc/c1/criu-root")] } }), 1),
        ("runtime could not be run", Error::Runtime(RuntimeError::Spawn { runtime: "runc", source: io_err() }), 1),
        ("Docker is not a runtime ckpt runs", Error::Runtime(RuntimeError::NotDriven { runtime: "docker" }), 1),
        ("did not resume", Error::NotResumed { id: "c1".into(), reason: "afresh".into() }, 1),
        ("could not be stopped after a saved checkpoint", Error::from(FreezerError::StillFrozen { dir: p("/cg"), waited: std::time::Duration::from_secs(10) }).context("checkpoint n is saved in /s, but container c could not be stopped"), 1),
        ("init did not exit", Error::StillRunning { pid: 7 }, 1),
        ("Docker API error", docker(DockerError::Api { action: "create", status: 500, message: "boom".into() }), 1),
        ("Docker protocol", docker(DockerError::Protocol { reason: "no Id".into() }), 1),
        ("Docker container vanished", Error::Vanished { name: "web".into() }, 1),
        ("Docker checkpoint of another container", refused(RestoreProblem::WrongContainer { name: "n".into(), made_from: "a".into(), target: "b".into() }), 1),
        ("unknown runtime in ckpt.json", refused(RestoreProblem::UnknownRuntime { name: "n".into(), runtime: "kata".into() }), 1),
        ("state file unreadable", Error::Discovery(EngineError::ReadState { path: p("/run/runc/c/state.json"), source: io_err() }), 1),
        ("state file malformed", Error::Discovery(EngineError::ParseState { path: p("/x"), reason: "{".into() }), 1),
        ("spec unreadable", Error::Spec(SpecError::Parse { path: p("/b/config.json"), reason: "{".into() }), 1),
        ("proc unreadable", Error::Proc(ProcError::Read { path: p("/proc/1/stat"), source: io_err() }), 1),
        ("inventory", Error::Inventory(InventoryError::NoSuchProcess { pid: 1, proc_root: p("/proc") }), 1),
        ("facts", Error::Facts(FactsError::NoFreezer { pid: 1, path: p("/proc/1/cgroup"), root: p("/sys/fs/cgroup") }), 1),
        ("freezer", Error::Freezer(FreezerError::NotFrozen { dir: p("/cg"), waited: std::time::Duration::ZERO }), 1),
        ("mounts", Error::Mount(MountError::MountInTheWay { dir: p("/w"), path: p("/w/m") }), 1),
        ("cleanup left mounts", Error::Cleanup(CleanupError::Mounts(MountError::MountInTheWay { dir: p("/w"), path: p("/w/m") })), 1),
        ("cleanup lost rootfs entries", Error::Cleanup(CleanupError::RootfsChanged { rootfs: p("/r"), lost: vec![] }), 1),
        ("cleanup: runtime delete failed", Error::Cleanup(CleanupError::Delete(runtime_failed())), 1),
        ("helper did not start", Error::Spawn { what: "the watchdog", source: io_err() }, 1),
        ("ckpt's own I/O", Error::Io { op: "read", path: p("/x"), source: io_err() }, 1),
        ("archive I/O", Error::Archive(crate::archive::ArchiveError::Io { op: "read", path: "a.tar".into(), source: io_err() }), 1),
        ("undone without a cause", Error::RestoreUndone { detail: String::new() }, 1),
        ("JSON of a non-UTF-8 path", Error::Json(serde_json::from_str::<u8>("x").unwrap_err()), 1),
        ("export of a Docker container", Error::Export(ExportProblem::Unsupported { id: "web".into(), what: "Docker containers".into() }), 1),
        ("import of an unknown runtime", import(ImportProblem::UnknownRuntime("kata".into())), 1),
        // 2: usage.
        ("flags that do not go together", Error::Usage { message: "--export with --leave-running needs --no-rootfs".into() }, 2),
        ("--retain 0", Error::Retention(crate::chunks::retention::PolicyError::RetainZero), 2),
        ("prune without a policy", Error::Retention(crate::chunks::retention::PolicyError::Empty), 2),
        ("import as an invalid id", import(ImportProblem::BadName("bad id".into())), 2),
        ("invalid checkpoint name", store(StoreError::InvalidName { name: "..".into(), reason: "dots" }), 2),
        ("invalid container id", store(StoreError::InvalidContainerId { id: "a/b".into(), reason: "slash" }), 2),
        ("two containers answer (--runtime auto)", Error::Discovery(EngineError::Ambiguous { id: "c".into(), candidates: "x, y".into() }), 2),
        ("Docker id prefix of several", docker(DockerError::AmbiguousReference { reference: "a".into(), message: "m".into() }), 2),
        ("Docker prefix, through discovery", Error::Discovery(EngineError::Docker(DockerError::AmbiguousReference { reference: "a".into(), message: "m".into() })), 2),
        ("--checkpoint-dir hostile", Error::CheckpointDir(crate::store::checkpoint_dir::CheckpointDirError::Hostile { dir: p("x"), why: "is not an absolute path" }), 2),
        ("--checkpoint-dir for Docker", Error::CheckpointDir(crate::store::checkpoint_dir::CheckpointDirError::Docker { name: "web".into() }), 2),
        // 3: refused.
        ("export of a running container's rootfs", Error::Export(ExportProblem::Running { id: "c".into(), checkpoint: "n".into() }), 3),
        ("import refused by policy", import(ImportProblem::Policy(crate::archive::policy::Finding { what: "bind", detail: "host path /etc".into(), action: crate::archive::policy::Action::Refuse })), 3),
        ("imported spec beyond its import's policy", refused(RestoreProblem::ImportPolicy { name: "n".into(), detail: "a hook".into() }), 3),
        ("preflight refused", Error::Refused { id: "c".into(), refusal: Refusal { problems: vec![Problem::TerminalInSpec] } }, 3),
        ("inspect verdict refused", Error::NotCheckpointable { count: 2 }, 3),
        ("restore target running", refused(RestoreProblem::TargetRunning { id: "c".into() }), 3),
        ("original bundle changed", refused(RestoreProblem::Bundle(BundleRefusal::Changed { config: p("/b/config.json"), name: "n".into(), differences: vec![] })), 3),
        ("Docker >= 28 network mode", docker(DockerError::BrokenRestore { version: "28.0".into(), network_mode: "bridge".into() }), 3),
        ("create refuses to stop what Docker cannot restore", docker(DockerError::BrokenRestore { version: "28.0".into(), network_mode: "bridge".into() }).context("refusing to stop web for a checkpoint it could not be restored from"), 3),
        // 4: not found.
        ("export: the recorded rootfs is gone", Error::Export(ExportProblem::NoRootfs { id: "c".into(), reason: "gone".into() }), 4),
        ("import needs --rootfs", import(ImportProblem::NeedsRootfs("pass --rootfs DIR".into())), 4),
        ("no such container", Error::Discovery(EngineError::NotFound { id: "c".into(), searched: "/run/runc".into() }), 4),
        ("container not running", Error::Discovery(EngineError::NotRunning { id: "c".into(), status: "stopped".into() }), 4),
        ("init pid reused", Error::Discovery(EngineError::PidReused { id: "c".into(), pid: 1, expected: 1, found: 2 }), 4),
        ("no such checkpoint", store(StoreError::NotFound { container: "c".into(), name: "n".into() }), 4),
        ("no such Docker container", docker(DockerError::NoSuchContainer { reference: "web".into() }), 4),
        ("rootfs or bind source missing", refused(RestoreProblem::MissingPath { what: "bind-mount source", path: p("/src") }), 4),
        ("no rootfs recorded", refused(RestoreProblem::Bundle(BundleRefusal::NoRootfs)), 4),
        ("ls of an id nobody knows", Error::UnknownContainer { id: "x".into(), store: p("/s") }, 4),
        // 5: prerequisite.
        ("not root", Error::NotRoot { verb: "create" }, 5),
        ("create --all: some refused alike", Error::SomeFailed { failed: 2, total: 3, code: 3 }, 3),
        ("create --all: failures that differ", Error::SomeFailed { failed: 2, total: 3, code: 1 }, 1),
        ("criu missing", Error::Criu(CriuError::NotInstalled), 5),
        ("crit missing (inspect of a foreign checkpoint)", Error::Crit(crate::criu::crit::CritError::NotInstalled), 5),
        ("crit failed", Error::Crit(crate::criu::crit::CritError::Failed { args: "x d ps".into(), dir: "/d".into(), message: "bad".into() }), 1),
        ("criu too old", Error::Criu(CriuError::TooOld { found: CriuVersion { major: 3, minor: 1, sublevel: 0 }, path: p("/criu") }), 5),
        ("criu version unparseable", Error::Criu(CriuError::UnknownVersion { path: p("/criu"), output: "?".into() }), 5),
        ("criu not executable", Error::Criu(CriuError::Spawn { path: p("/criu"), source: io_err() }), 5),
        ("CRIU older than the checkpoint's", refused(RestoreProblem::CriuTooOld { name: "n".into(), made: v(4, 2), installed: v(4, 1) }), 5),
        ("start would write through a symlink", refused(RestoreProblem::Unsafe { path: p("/s/c/output.log"), reason: "it is a symlink" }), 5),
        ("runc or crun missing", Error::Runtime(RuntimeError::NotInstalled { runtime: "crun" }), 5),
        ("cleanup: runtime missing", Error::Cleanup(CleanupError::Delete(RuntimeError::NotInstalled { runtime: "runc" })), 5),
        ("DOCKER_HOST unsupported", docker(DockerError::UnsupportedHost { host: "ssh://x".into(), why: "ssh".into() }), 5),
        ("Docker unreachable", docker(DockerError::Unreachable { host: "unix:///x".into(), reason: "gone".into() }), 5),
        ("Docker not experimental", docker(DockerError::NotExperimental { socket: "unix:///x".into() }), 5),
        ("Docker unreachable, through discovery", Error::Discovery(EngineError::Docker(DockerError::Unreachable { host: "h".into(), reason: "r".into() })), 5),
        ("unsafe store path", store(StoreError::UnsafeStore { path: p("/s"), reason: "it is a symlink" }), 5),
        // 6: CRIU failed.
        ("criu dump failed", Error::Criu(criu_failed()), 6),
        ("criu made no progress", Error::Criu(CriuError::Stalled { reason: "stuck".into(), log_path: p("/l") }), 6),
        ("criu failed, said with context", Error::Criu(criu_failed()).context("container c was not changed and keeps running"), 6),
        // 7: corrupt.
        ("verify --all found damage", Error::Damaged { damaged: 1, total: 3 }, 7),
        ("imported checkpoint does not match its ckpt.json", import(ImportProblem::Corrupt("checkpoint/x: missing".into())), 7),
        ("checksum mismatch", store(StoreError::Corrupt { dir: p("/s/c/checkpoints/n"), reason: "x: checksum mismatch".into() }), 7),
        ("newer schema", store(StoreError::FutureSchema { dir: p("/d"), found: 9, supported: 2 }), 7),
        ("a hostile archive", Error::Archive(crate::archive::ArchiveError::Refused { entry: Some("../etc".into()), reason: crate::archive::Refusal::DotDot }), 7),
        ("an export's source changed", Error::Archive(crate::archive::ArchiveError::Source { path: "pages-1.img".into(), reason: "changed".into() }), 7),
        ("rootfs not the spec's root", refused(RestoreProblem::Corrupt { dir: p("/d"), reason: "ckpt.json: rootfs".into() }), 7),
        ("a foreign checkpoint without CRIU's images", refused(RestoreProblem::Corrupt { dir: p("/d"), reason: "pstree.img: missing".into() }), 7),
        ("several problems: the first decides", Error::RestoreRefused(RestoreRefusal { checkpoint: "n".into(), target: "c".into(), problems: vec![
            RestoreProblem::Corrupt { dir: p("/d"), reason: "x".into() }, RestoreProblem::TargetRunning { id: "c".into() }] }), 7),
        ("a missing chunk", chunks(ChunkError::MissingChunk { file: "pages-1.img".into(), digest: crate::chunks::Digest::of(b"x") }), 7),
        ("a corrupt chunk", chunks(ChunkError::CorruptChunk { file: "pages-1.img".into(), digest: crate::chunks::Digest::of(b"x"), pack: p("/s/c/chunks/packs/a.pack") }), 7),
        ("a corrupt recipe", chunks(ChunkError::BadRecipe { path: p("/d/pages.recipe"), reason: "short".into() }), 7),
        // 8: busy.
        ("lock held", store(StoreError::Busy { container: "c".into(), path: p("/s/c/.ckpt.lock") }), 8),
        ("chunk lock held", chunks(ChunkError::Busy { path: p("/s/c/chunks/.lock") }), 8),
        ("chunk store unsafe", chunks(ChunkError::Unsafe { path: p("/s/c/chunks/packs"), reason: "it is a symlink" }), 5),
        ("chunk store I/O", chunks(ChunkError::Io { op: "write", path: p("/s/c/chunks/.tmp/x"), source: io_err() }), 1),
        // 128+N: interrupted.
        ("SIGHUP", Error::Interrupted(Interrupted(1)), 129),
        ("SIGINT", Error::Interrupted(Interrupted(2)), 130),
        ("SIGTERM", Error::Interrupted(Interrupted(15)), 143),
        ("signal, said with context", Error::Interrupted(Interrupted(15)).context("the restore was undone"), 143),
        ("context over context", Error::Interrupted(Interrupted(2)).context("a").context("b"), 130),
    ]
}

#[test]
fn every_documented_exit_code() {
    let rows = table();
    for (case, err, code) in &rows {
        assert_eq!(err.exit_code(), *code, "{case}: {}", chain(err));
        assert_eq!(exit_status(Some(err)), *code, "{case}");
    }
    assert_eq!(exit_status(None), SUCCESS, "success");
    // Every documented code has a row (0 above, 128+N as three signals).
    let mut codes: Vec<u8> = rows.iter().map(|(_, _, c)| *c).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes, vec![1, 2, 3, 4, 5, 6, 7, 8, 129, 130, 143]);
    assert_eq!(
        [
            FAILURE,
            USAGE,
            REFUSED,
            NOT_FOUND,
            PREREQUISITE,
            CRIU_FAILED,
            CORRUPT,
            BUSY
        ],
        [1, 2, 3, 4, 5, 6, 7, 8]
    );
}

#[test]
fn context_keeps_the_code_and_the_chain() {
    let e = Error::Criu(criu_failed()).context("container c was not changed and keeps running");
    assert_eq!(e.to_string(), "container c was not changed and keeps running");
    let causes = chain(&e);
    assert!(causes.contains("criu dump failed (exit status 1)"), "{causes}");
    // `?` on a module error and `.context()` on a result go the same way.
    let r: Result<(), StoreError> = Err(StoreError::Busy {
        container: "c".into(),
        path: "/l".into(),
    });
    let e = r.context("waiting for c").unwrap_err();
    assert_eq!((e.exit_code(), e.to_string()), (BUSY, "waiting for c".to_string()));
}

#[test]
fn transparent_variants_print_like_their_module_error() {
    let inner = StoreError::NotFound {
        container: "web".into(),
        name: "n1".into(),
    };
    let text = inner.to_string();
    assert_eq!(Error::from(inner).to_string(), text);
}

#[test]
fn signal_codes_saturate() {
    assert_eq!(interrupted_code(2), 130);
    assert_eq!(interrupted_code(1000), u8::MAX);
    assert_eq!(interrupted_code(-1), u8::MAX);
}
