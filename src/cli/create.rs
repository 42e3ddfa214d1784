//! `ckpt create`'s arguments.

use super::CriuFlags;
use clap::Args;

/// `ckpt create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Keep the container running after the checkpoint.
    #[arg(long, short = 'R')]
    pub leave_running: bool,
    /// Store the page files as content-addressed chunks shared with the
    /// container's other incremental checkpoints (only new chunks take
    /// space). Not for Docker containers.
    #[arg(long)]
    pub incremental: bool,
    /// After the checkpoint is published, keep only the newest N
    /// checkpoints of the container (as `ckpt prune --retain N`; the one
    /// just made is always kept).
    #[arg(long, value_name = "N")]
    pub retain: Option<usize>,
    #[command(flatten)]
    pub criu: CriuFlags,
    /// Also write the checkpoint as an archive to FILE (as `ckpt export`).
    #[arg(long, value_name = "FILE")]
    pub export: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub archive: super::ArchiveFlags,
    /// Print the result as JSON.
    /// Docker's `--checkpoint-dir`: write the checkpoint into
    /// `DIR/<id>/checkpoints/NAME` (DIR a store root) instead of --store.
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<std::path::PathBuf>,
    #[arg(long)]
    pub json: bool,
    /// When the dump fails, keep its whole directory (CRIU's log, work
    /// files and partial images) in <store>/<id>/dump-failed/ for
    /// debugging, instead of only the log (dump-failed.log). A successful
    /// checkpoint always keeps CRIU's dump.log and stats-dump.
    #[arg(long)]
    pub keep: bool,
    /// Also print CRIU's dump statistics and ckpt's phases, in
    /// microseconds (Podman's --print-stats; with --json under "stats").
    #[arg(long)]
    pub print_stats: bool,
    /// Checkpoint every running container of the runtimes ckpt searches
    /// (as Podman's --all), each into checkpoint NAME; give NAME only.
    #[arg(long, short = 'a', conflicts_with = "latest")]
    pub all: bool,
    /// Checkpoint the newest running container (by the runtime's created
    /// time; Podman's --latest) into checkpoint NAME; give NAME only.
    #[arg(long, short = 'l')]
    pub latest: bool,
    /// Container id (not with --all or --latest).
    #[arg(value_name = "CONTAINER", required_unless_present_any = ["all", "latest"])]
    pub container: Option<String>,
    /// Checkpoint name: [a-zA-Z0-9][a-zA-Z0-9_.-]*, not ending in '.'.
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
}

/// Which containers a create takes, once its arguments are sorted out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// `CONTAINER NAME`.
    One { container: String, name: String },
    /// `--all NAME` or `--latest NAME`.
    Many {
        which: crate::plan::select::Which,
        name: String,
    },
}

impl CreateArgs {
    /// PURE: the containers and the checkpoint name the command line asks
    /// for. clap fills CONTAINER first, so `--all NAME` arrives as a
    /// container; a usage error (exit 2) says what is wrong.
    pub fn targets(&self) -> Result<Targets, String> {
        use crate::plan::select::Which;
        let which = match (self.all, self.latest) {
            (true, _) => Some(Which::All),
            (_, true) => Some(Which::Latest),
            _ => None,
        };
        let flag = if self.all { "--all" } else { "--latest" };
        match (which, self.container.clone(), self.name.clone()) {
            (None, Some(container), Some(name)) => Ok(Targets::One { container, name }),
            (None, _, None) => Err("give CONTAINER and a checkpoint NAME".into()),
            (Some(which), Some(name), None) => Ok(Targets::Many { which, name }),
            (Some(_), Some(container), Some(_)) => Err(format!(
                "{flag} takes the checkpoint NAME only: it chooses the containers itself, so CONTAINER ({container}) cannot be given too"
            )),
            (Some(_), None, _) => Err(format!("give {flag} a checkpoint NAME")),
            (None, None, Some(_)) => unreachable!("clap fills CONTAINER before NAME"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::plan::select::Which;
    use clap::Parser;

    fn parsed(argv: &[&str]) -> Result<Targets, String> {
        let mut full = vec!["ckpt", "create"];
        full.extend(argv);
        match Cli::try_parse_from(full) {
            Ok(Cli {
                command: Command::Create(a),
                ..
            }) => a.targets(),
            Ok(_) => unreachable!(),
            Err(e) => Err(format!("clap: {}", e.kind())),
        }
    }

    #[test]
    fn all_and_latest_take_a_name_only() {
        let one = |c: &str, n: &str| {
            Ok(Targets::One {
                container: c.into(),
                name: n.into(),
            })
        };
        let many = |which, n: &str| Ok(Targets::Many { which, name: n.into() });
        #[rustfmt::skip]
        let table: Vec<(&[&str], Result<Targets, &str>)> = vec![
            (&["web", "n1"], one("web", "n1")),
            (&["--all", "n1"], many(Which::All, "n1")),
            (&["-a", "n1"], many(Which::All, "n1")),
            (&["--latest", "n1"], many(Which::Latest, "n1")),
            (&["-l", "-R", "n1"], many(Which::Latest, "n1")),
            (&["--all", "web", "n1"], Err("--all takes the checkpoint NAME only")),
            (&["--latest", "web", "n1"], Err("--latest takes the checkpoint NAME only")),
            (&["--all"], Err("give --all a checkpoint NAME")),
            (&["web"], Err("give CONTAINER and a checkpoint NAME")),
            (&[], Err("clap: ")),
            (&["--all", "--latest", "n1"], Err("clap: ")),
        ];
        for (argv, want) in table {
            match (parsed(argv), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{argv:?}"),
                (Err(got), Err(want)) => assert!(got.starts_with(want), "{argv:?}: {got}"),
                (got, want) => panic!("{argv:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
