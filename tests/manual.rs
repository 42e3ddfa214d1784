//! Unprivileged tests of what ckpt generates from its command line for
//! shells and `man`: the real binary's bash completion script, sourced in a
//! real bash, completes verbs and flags; its man pages render with `man -l`.
//! Needs bash and man-db (scripts/setup installs man-db and groff-base);
//! neither root, CRIU nor a container runtime.

use std::path::Path;
use std::process::{Command, Output};

fn ckpt(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ckpt"))
        .env_remove("CKPT_STORE")
        .args(args)
        .output()
        .expect("run the ckpt binary");
    assert!(
        out.status.success(),
        "ckpt {args:?} failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What bash's completion function offers for the words `line` (the last
/// word is the one being completed), after sourcing ckpt's script the way
/// /etc/bash_completion.d does.
fn complete(script: &Path, line: &[&str]) -> Vec<String> {
    let words: Vec<String> = line.iter().map(|w| format!("'{w}'")).collect();
    let cword = line.len() - 1;
    let prev = if cword > 0 { line[cword - 1] } else { "" };
    let prog = format!(
        "source '{}' || exit 9\n\
         spec=$(complete -p ckpt) || exit 8\n\
         fn=$(sed -n 's/.* -F \\([^ ]*\\) ckpt$/\\1/p' <<<\"$spec\")\n\
         [ -n \"$fn\" ] || exit 7\n\
         COMP_WORDS=({})\n\
         COMP_CWORD={cword}\n\
         COMP_LINE=\"${{COMP_WORDS[*]}}\"\n\
         COMP_POINT=${{#COMP_LINE}}\n\
         \"$fn\" ckpt '{}' '{prev}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        words.join(" "),
        line[cword],
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &prog])
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "bash failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completion_completes_verbs_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("ckpt.bash");
    std::fs::write(&script, ckpt(&["completions", "bash"]).stdout).unwrap();

    let verbs = complete(&script, &["ckpt", ""]);
    for verb in ["create", "ls", "rm", "start", "inspect", "verify", "completions"] {
        assert!(
            verbs.iter().any(|v| v == verb),
            "`ckpt <TAB>` offers no {verb}: {verbs:?}"
        );
    }
    assert_eq!(complete(&script, &["ckpt", "cr"]), ["create"]);
    let flags = complete(&script, &["ckpt", "create", "--l"]);
    assert_eq!(flags, ["--leave-running", "--latest"], "`ckpt create --l<TAB>`");
    let flags = complete(&script, &["ckpt", "start", "--"]);
    for flag in ["--checkpoint", "--name", "--json", "--store"] {
        assert!(
            flags.iter().any(|f| f == flag),
            "`ckpt start --<TAB>` offers no {flag}: {flags:?}"
        );
    }
    // A flag's values: --runtime takes one of four.
    let values = complete(&script, &["ckpt", "ls", "--runtime", ""]);
    for v in ["auto", "runc", "crun", "docker"] {
        assert!(
            values.iter().any(|x| x == v),
            "--runtime <TAB> offers no {v}: {values:?}"
        );
    }
    assert_eq!(complete(&script, &["ckpt", "completions", "f"]), ["fish"]);
}

#[test]
fn man_pages_render_with_man() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    ckpt(&["man", "--dir", pages.to_str().unwrap()]);
    let mut names: Vec<String> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.contains(&"ckpt.1".to_string()), "{names:?}");
    for verb in ["create", "ls", "rm", "start", "inspect", "verify", "completions"] {
        assert!(
            names.contains(&format!("ckpt-{verb}.1")),
            "no page for {verb}: {names:?}"
        );
    }
    for name in &names {
        let out = Command::new("man")
            .arg("-l")
            .arg(pages.join(name))
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .output()
            .expect("run man (install man-db: scripts/setup)");
        let text = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "man -l {name}: {:?} {stderr}", out.status);
        // groff complains on stderr about roff it cannot parse.
        assert!(!stderr.contains("warning"), "man -l {name} warns: {stderr}");
        let title = name.trim_end_matches(".1");
        assert!(
            text.contains("NAME") && text.contains("SYNOPSIS"),
            "{name} rendered as:\n{text}"
        );
        assert!(text.contains(title), "{name} does not name {title}:\n{text}");
    }
    let top = Command::new("man")
        .args(["-l", pages.join("ckpt.1").to_str().unwrap()])
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&top.stdout);
    assert!(text.contains("Exit codes"), "ckpt.1 lacks the exit codes:\n{text}");
}

#[test]
fn install_puts_binary_pages_and_completions_where_the_system_looks() {
    let dest = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install"))
        .args(["--prefix", "/usr", "--bin", env!("CARGO_BIN_EXE_ckpt")])
        .env("DESTDIR", dest.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/install failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = dest.path().join("usr");
    for path in [
        "bin/ckpt",
        "share/man/man1/ckpt.1",
        "share/man/man1/ckpt-create.1",
        "share/man/man1/ckpt-start.1",
        "share/bash-completion/completions/ckpt",
        "share/zsh/site-functions/_ckpt",
        "share/fish/vendor_completions.d/ckpt.fish",
    ] {
        let p = root.join(path);
        assert!(
            p.metadata().is_ok_and(|m| m.len() > 0),
            "{} missing or empty",
            p.display()
        );
    }
    // Nothing outside DESTDIR/usr.
    let top: Vec<_> = std::fs::read_dir(dest.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(top, ["usr"]);
    // The installed binary and script are the ones just built.
    assert_eq!(
        std::fs::read(root.join("bin/ckpt")).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_ckpt")).unwrap()
    );
    let installed = root.join("share/bash-completion/completions/ckpt");
    assert_eq!(complete(&installed, &["ckpt", "verify", "--j"]), ["--json"]);
}
