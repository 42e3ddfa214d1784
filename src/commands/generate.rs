//! `ckpt completions` and `ckpt man`: ckpt's command line in the forms
//! shells and `man` read, generated from the clap definitions in
//! [`crate::cli`] at the time they are asked for, so that no copy can
//! drift from `--help`.
//!
//! The pages come from the binary rather than from a build script so that
//! the pages installed are the ones of the binary installed (scripts/install
//! runs `ckpt man --dir`), and the build needs no second copy of the CLI
//! module. Nothing here touches a store, a container or CRIU.

use crate::cli::{Cli, CompletionsArgs, ManArgs, Shell};
use crate::error::Error;
use crate::output::Output;
use clap::CommandFactory;
use std::path::{Path, PathBuf};

/// The completion script for `shell`, as the shell sources it.
pub fn completion_script(shell: Shell) -> String {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    let name = cmd.get_name().to_string();
    match shell {
        Shell::Bash => clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, name, &mut buf),
        Shell::Zsh => clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, name, &mut buf),
        Shell::Fish => clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, name, &mut buf),
    }
    // clap_complete writes only the ASCII names and help texts we gave it.
    String::from_utf8_lossy(&buf).into_owned()
}

/// Every man page: (file name, roff text), `ckpt.1` first, then one
/// `ckpt-VERB.1` per visible verb (hidden helpers get none).
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>, std::io::Error> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Building propagates the global options into every verb and sets
    // each verb's display name (`ckpt-create`), which names its page.
    cmd.build();
    let mut pages = Vec::new();
    let top = clap_mangen::Man::new(cmd.clone());
    let mut text = Vec::new();
    top.render(&mut text)?;
    pages.push((top.get_filename(), text));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let man = clap_mangen::Man::new(sub.clone());
        let mut text = Vec::new();
        man.render(&mut text)?;
        pages.push((man.get_filename(), text));
    }
    Ok(pages)
}

pub fn completions(args: &CompletionsArgs, out: &mut Output) -> Result<(), Error> {
    out.line(completion_script(args.shell).trim_end_matches('\n'));
    Ok(())
}

pub fn man(args: &ManArgs, out: &mut Output) -> Result<(), Error> {
    let io = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { op, path, source }
    };
    std::fs::create_dir_all(&args.dir).map_err(io("create the man page directory", &args.dir))?;
    let pages = man_pages().map_err(io("render the man pages for", &args.dir))?;
    for (file, text) in pages {
        let path: PathBuf = args.dir.join(&file);
        std::fs::write(&path, text).map_err(io("write man page", &path))?;
        out.say(path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The roff text of a page with its escapes for '-' undone, so that
    /// `--leave-running` can be looked for as typed.
    fn plain(text: &[u8]) -> String {
        String::from_utf8_lossy(text).replace("\\-", "-")
    }

    #[test]
    fn every_verb_and_flag_is_in_the_man_pages() {
        let pages = man_pages().unwrap();
        let page = |file: &str| {
            plain(
                &pages
                    .iter()
                    .find(|(f, _)| f == file)
                    .unwrap_or_else(|| panic!("no page {file}"))
                    .1,
            )
        };
        let top = page("ckpt.1");
        let mut cmd = Cli::command().disable_help_subcommand(true);
        cmd.build();
        let mut verbs = 0;
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            verbs += 1;
            let name = sub.get_name();
            assert!(top.contains(&format!("ckpt-{name}(1)")), "ckpt.1 does not list {name}");
            let text = page(&format!("ckpt-{name}.1"));
            for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                let shown = match (arg.get_long(), arg.get_short()) {
                    (Some(l), _) => format!("--{l}"),
                    (None, Some(s)) => format!("-{s}"),
                    (None, None) => arg
                        .get_value_names()
                        .map_or(arg.get_id().to_string(), |v| v[0].to_string()),
                };
                assert!(text.contains(&shown), "ckpt-{name}.1 does not mention {shown}");
            }
        }
        // Hidden helpers have no page; visible verbs all do.
        assert!(verbs >= 7, "only {verbs} verbs");
        assert_eq!(pages.len(), verbs + 1);
        assert!(!pages.iter().any(|(f, _)| f.contains("__") || f == "ckpt-man.1"));
    }

    #[test]
    fn completion_scripts_name_every_verb() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let s = completion_script(shell);
            for verb in ["create", "ls", "rm", "start", "inspect", "verify", "completions"] {
                assert!(s.contains(verb), "{shell:?} script lacks {verb}");
            }
            assert!(s.contains("leave-running"), "{shell:?} script lacks --leave-running");
        }
    }
}
