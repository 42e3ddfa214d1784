//! Command-line types (clap). Only what the user typed, validated for form;
//! deciding what to do with it is `commands::*`'s job. This file holds the
//! command line as a whole (`Cli`, the global options, the verbs); each
//! verb's arguments have a file of their own.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

mod create;
mod export;
mod generate;
mod import;
mod inspect;
mod internal;
mod ls;
mod prune;
mod rm;
mod start;
mod verify;

pub use create::{CreateArgs, Targets};
pub use export::{ArchiveFlags, CompressArg, ExportArgs};
pub use generate::{CompletionsArgs, ManArgs, Shell};
pub use import::{ImportArgs, ImportFlags};
pub use inspect::InspectArgs;
pub use internal::{RelayArgs, WatchdogArgs};
pub use ls::{LsArgs, LsFormat};
pub use prune::{parse_duration, PruneArgs};
pub use rm::RmArgs;
pub use start::StartArgs;
pub use verify::VerifyArgs;

/// Checkpoint and restore Linux containers with CRIU.
///
/// ckpt freezes a running container, checks every process's open files,
/// sockets and terminals for things CRIU cannot save, dumps the processes
/// with CRIU into <store>/<container-id>/checkpoints/<name>/ (the layout
/// Docker uses) and restores them later into the same container or a new one.
///
/// Containers are found by id in the state directories of runc (/run/runc,
/// Docker's and containerd's runc roots) and crun (/run/crun), and by name,
/// id or unique id prefix through Docker's Engine API (DOCKER_HOST: unix:///path
/// or plain-HTTP tcp://host:port, default unix:///var/run/docker.sock). Docker containers' checkpoints live where
/// Docker keeps them (<docker-root>/containers/<id>/checkpoints/), so
/// `docker start --checkpoint` and `docker checkpoint ls` see them.
///
/// Exit codes: 0 ok, 1 failure, 2 usage or invalid name, 3 refused by the
/// preflight (container untouched) or by start (target running, bundle
/// changed since the dump), 4 container or checkpoint not found,
/// 5 prerequisite missing (root, criu, runtime, an unsafe store), 6 CRIU
/// failed or made no progress for 60 s (container left running, or paused
/// if the user paused it), 7 corrupt checkpoint, 8 busy (another ckpt
/// holds the container's lock), 128+N when a signal interrupts create or
/// start.
#[derive(Debug, Parser)]
#[command(name = "ckpt", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options that apply to every command.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Where checkpoints are kept.
    #[arg(
        long,
        global = true,
        env = "CKPT_STORE",
        default_value = "/var/lib/ckpt",
        value_name = "DIR"
    )]
    pub store: PathBuf,

    /// Which runtime manages the container; `auto` looks in every known
    /// state root and asks Docker (DOCKER_HOST), and fails if two different
    /// containers answer to the name.
    #[arg(long, global = true, value_enum, default_value_t = RuntimeChoice::Auto)]
    pub runtime: RuntimeChoice,

    /// A runtime state root to search (like `runc --root`); repeat for more.
    /// Replaces the default roots.
    #[arg(long = "runtime-root", global = true, value_name = "DIR")]
    pub runtime_roots: Vec<PathBuf>,

    /// Say more about each phase (repeat for debug output).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Print only errors (and `ls`: names only).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// `--runtime` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeChoice {
    /// Search every known runtime.
    Auto,
    /// runc (and Docker's/containerd's runc roots).
    Runc,
    /// crun.
    Crun,
    /// Docker, through the Engine API on DOCKER_HOST.
    Docker,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Checkpoint a running container into a named checkpoint.
    ///
    /// Runs the preflight first (see `ckpt inspect`); a container that cannot
    /// be checkpointed is refused before anything is frozen. The container is
    /// frozen only while CRIU dumps it, and thawed on every failure. Without
    /// --leave-running the container is stopped after the dump, like
    /// `docker checkpoint create`.
    ///
    /// Example: ckpt create web before-upgrade
    Create(CreateArgs),
    /// List checkpoints, of one container or of all, oldest first.
    ///
    /// With -q only their names, one a line (`CONTAINER NAME` without a
    /// container).
    ///
    /// Example: ckpt ls web --format json
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Remove a checkpoint.
    ///
    /// Example: ckpt rm web before-upgrade
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove a container's older checkpoints, keeping the newest N.
    ///
    /// Checkpoints are ordered by the creation time their ckpt.json
    /// records (ties by name). The newest is always kept; a checkpoint
    /// whose metadata cannot be read is never removed and does not count
    /// towards N. The chunks of removed incremental checkpoints that no
    /// remaining checkpoint uses are freed. `ckpt create --retain N` does
    /// the same after each successful create.
    ///
    /// Example: ckpt prune web --retain 3 --older-than 7d --dry-run
    Prune(PruneArgs),
    /// Restore a container from a checkpoint.
    ///
    /// Restores into the same (stopped) container, or with --name into a new
    /// container created from the checkpoint's saved spec. The restore goes
    /// through the container's runtime (`runc restore`), so the runtime keeps
    /// managing the container afterwards. The restored container's stdout and
    /// stderr are appended to <store>/<container-id>/output.log.
    ///
    /// Example: ckpt start --checkpoint before-upgrade web
    #[command(visible_alias = "restore")]
    Start(StartArgs),
    /// Show the preflight inventory of a running container and whether it
    /// can be checkpointed, or with CHECKPOINT what a checkpoint holds,
    /// without changing anything.
    ///
    /// A checkpoint's contents: its processes with their commands, fds and
    /// memory, the CRIU and kernel it was made with, its options, its size
    /// per image kind, and whether it is incremental. ckpt's checkpoints
    /// are described from what create recorded; others' (docker checkpoint
    /// create) from CRIU's images, read with crit (python3-pycriu).
    ///
    /// Example: ckpt inspect web --json; ckpt inspect web before-upgrade
    Inspect(InspectArgs),
    /// Check a checkpoint's files against its checksums without restoring.
    ///
    /// Every file recorded in ckpt.json must be present with the same size
    /// and SHA-256, and no unexpected file may be there. For checkpoints made
    /// by other tools only the presence of CRIU's core images is checked.
    ///
    /// Example: ckpt verify web before-upgrade
    Verify(VerifyArgs),
    /// Write a checkpoint as one archive file that can leave the machine.
    ///
    /// The archive is a tar (zstd by default) in Podman's layout, which
    /// checkpointctl reads: checkpoint/ (the checkpoint as stored, sealed),
    /// spec.dump, config.dump, stats-dump, ckpt.json (every size and
    /// checksum) and, for runc and crun, the root filesystem as rootfs.tar
    /// (--no-rootfs leaves it out). A running container's root filesystem is
    /// not the checkpoint's: export a checkpoint of a stopped container.
    ///
    /// Example: ckpt export web before-upgrade -o web.tar.zst
    Export(ExportArgs),
    /// Read an archive (ckpt's or Podman's export) into the store.
    ///
    /// The archive is hostile until proven otherwise: every entry is checked
    /// (names, links, sizes, checksums, limits) and nothing is written
    /// outside the store's staging directory; the checkpoint appears whole
    /// or not at all. Its spec gets only what this host's policy allows:
    /// hooks are dropped, the engine's own bind files replaced by private
    /// ones, host binds, host namespaces and privileges refused unless
    /// allowed. Restore it with `ckpt start`.
    ///
    /// Example: ckpt import web.tar.zst --name web2
    Import(ImportArgs),
    /// Print a shell completion script (bash, zsh or fish) on stdout.
    ///
    /// bash: ckpt completions bash > /etc/bash_completion.d/ckpt (or source it
    /// from ~/.bashrc); zsh: write it as _ckpt into a directory on $fpath;
    /// fish: ckpt completions fish > ~/.config/fish/completions/ckpt.fish.
    /// scripts/install puts all three where the shells look.
    ///
    /// Example: source <(ckpt completions bash)
    Completions(CompletionsArgs),
    /// Maintenance: write the man pages (ckpt.1, ckpt-VERB.1) into a directory.
    ///
    /// The pages are generated from the same definitions as --help, so they
    /// cannot drift from it; scripts/install calls this.
    #[command(hide = true)]
    Man(ManArgs),
    /// Internal: copy stdin to a file until EOF (keeps restored stdio a pipe).
    #[command(name = "__relay", hide = true)]
    Relay(RelayArgs),
    /// Internal: thaw a container if the ckpt that froze it dies.
    #[command(name = "__watchdog", hide = true)]
    Watchdog(WatchdogArgs),
}

/// CRIU options a user may need for containers with open connections.
#[derive(Debug, Clone, Default, Args)]
pub struct CriuFlags {
    /// Checkpoint established TCP connections (CRIU --tcp-established);
    /// the peer must tolerate the pause, and restore needs the same addresses.
    #[arg(long)]
    pub tcp_established: bool,
    /// Checkpoint file locks (CRIU --file-locks).
    #[arg(long)]
    pub file_locks: bool,
    /// Allow unix sockets connected to peers outside the container
    /// (CRIU --ext-unix-sk).
    #[arg(long)]
    pub ext_unix_sk: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// clap checks argument definitions only when a command is parsed;
    /// this checks every subcommand, hidden ones included.
    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn hidden_helpers_parse() {
        let c =
            Cli::try_parse_from(["ckpt", "__watchdog", "/sys/fs/cgroup/freezer/x", "v1", "--leave-frozen"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Watchdog(WatchdogArgs { leave_frozen: true, .. })
        ));
        let c = Cli::try_parse_from(["ckpt", "__relay", "/tmp/out.log"]).unwrap();
        assert!(matches!(c.command, Command::Relay(_)));
    }

    #[test]
    fn start_takes_a_checkpoint_or_an_import_never_both() {
        let c = Cli::try_parse_from(["ckpt", "start", "--import", "a.tar.zst", "--name", "b"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Start(StartArgs {
                import: Some(_),
                container: None,
                ..
            })
        ));
        assert!(Cli::try_parse_from(["ckpt", "start", "--checkpoint", "n", "web"]).is_ok());
        assert!(Cli::try_parse_from(["ckpt", "start", "web"]).is_err(), "no checkpoint");
        assert!(Cli::try_parse_from(["ckpt", "start", "--import", "a", "--checkpoint", "n", "web"]).is_err());
        let c = Cli::try_parse_from(["ckpt", "export", "web", "n", "-o", "x.tar", "--compress", "none"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Export(ExportArgs {
                archive: ArchiveFlags {
                    compress: CompressArg::None,
                    no_rootfs: false
                },
                ..
            })
        ));
        let c = Cli::try_parse_from(["ckpt", "create", "web", "n", "--export", "x.tar.zst", "--no-rootfs"]).unwrap();
        assert!(matches!(c.command, Command::Create(CreateArgs { export: Some(_), .. })));
        // Podman's name for --no-rootfs, on export and on create --export.
        for argv in [
            &["ckpt", "export", "web", "n", "-o", "x.tar", "--ignore-rootfs"][..],
            &["ckpt", "create", "web", "n", "--export", "x.tar", "--ignore-rootfs"][..],
        ] {
            let archive = match Cli::try_parse_from(argv).unwrap().command {
                Command::Export(a) => a.archive,
                Command::Create(a) => a.archive,
                other => panic!("{other:?}"),
            };
            assert!(archive.no_rootfs, "{argv:?}");
        }
        assert!(Cli::try_parse_from(["ckpt", "export", "web", "n", "-o", "x", "--ignore-volumes"]).is_err());
    }

    #[test]
    fn prune_parses_durations_and_create_takes_retain() {
        let c = Cli::try_parse_from([
            "ckpt",
            "prune",
            "web",
            "--retain",
            "3",
            "--older-than",
            "7d",
            "--dry-run",
        ])
        .unwrap();
        match c.command {
            Command::Prune(a) => {
                assert_eq!(a.retain, Some(3));
                assert_eq!(a.older_than, Some(std::time::Duration::from_secs(7 * 86400)));
                assert!(a.dry_run && !a.json);
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["ckpt", "prune", "web", "--older-than", "soon"]).is_err());
        assert!(Cli::try_parse_from(["ckpt", "verify", "--all"]).is_ok());
        assert!(Cli::try_parse_from(["ckpt", "verify", "--all", "--repair", "web"]).is_ok());
        assert!(
            Cli::try_parse_from(["ckpt", "verify", "--all", "web", "n"]).is_err(),
            "--all takes no NAME"
        );
        assert!(
            Cli::try_parse_from(["ckpt", "verify", "web"]).is_err(),
            "NAME without --all"
        );
        let c = Cli::try_parse_from(["ckpt", "create", "web", "n", "--retain", "2"]).unwrap();
        assert!(matches!(c.command, Command::Create(CreateArgs { retain: Some(2), .. })));
    }

    #[test]
    fn global_options_go_anywhere() {
        let c = Cli::try_parse_from(["ckpt", "ls", "--store", "/s", "--json"]).unwrap();
        assert_eq!(c.global.store, PathBuf::from("/s"));
    }
}
