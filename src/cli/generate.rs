//! The arguments of the verbs that print ckpt's own command line in other
//! forms: `ckpt completions` (a shell's completion script) and the hidden
//! maintenance verb `ckpt man` (the man pages).

use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// `ckpt completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print a completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The shells `ckpt completions` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// `ckpt man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write ckpt.1 and one ckpt-VERB.1 per verb into
    /// (created if missing; existing pages there are replaced).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}
