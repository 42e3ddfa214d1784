//! Reading CRIU's logs: the `Error (...)` lines worth showing, and a hint
//! for the failures users meet most.

/// Error lines CRIU prints on every run on some hosts and that do not
/// explain a failure (no CAP_SYS_RESOURCE, for example).
const BENIGN: &[&str] = &["Can't setup RLIMIT_NOFILE for self"];

/// At most this many error lines are shown.
const MAX_LINES: usize = 8;

/// The `Error (...)` lines of a CRIU log, benign ones removed, last
/// [`MAX_LINES`] kept (the last errors are the ones that stopped CRIU).
pub fn error_lines(log: &str) -> Vec<String> {
    let lines: Vec<String> = log
        .lines()
        .filter(|l| l.contains("Error (") && !BENIGN.iter().any(|b| l.contains(b)))
        .map(|l| l.trim().to_string())
        .collect();
    let skip = lines.len().saturating_sub(MAX_LINES);
    lines.into_iter().skip(skip).collect()
}

/// A hint for a known failure, from the log text.
pub fn hint(log: &str) -> Option<&'static str> {
    const HINTS: &[(&str, &str)] = &[
        ("Can't lookup mount", "a process holds a file outside the container's mounts; give the container stdio pipes or bind-mount the file (see `ckpt inspect`)"),
        ("Connected TCP socket", "the container has established TCP connections; retry with --tcp-established"),
        ("unix socket", "a unix socket is connected outside the container; retry with --ext-unix-sk"),
        ("Unable to find a master", "the container has a terminal; containers with a TTY cannot be checkpointed"),
        ("file lock", "a process holds a file lock; retry with --file-locks"),
        // Said in words: the tar CRIU runs for tmpfs contents reports ENOSPC
        // on a line of its own, not on an `Error (` line (seen with 4.2.1).
        ("No space left on device", "no space left on the store's filesystem; free space or use --store elsewhere"),
        ("Unexpected rt vDSO area bounds", "this CRIU is too old for the kernel; install CRIU >= 4.0 (scripts/setup)"),
        ("No mapping for", "a mount of the container has no mapping at restore; check that bind-mount sources exist"),
    ];
    HINTS.iter().find(|(needle, _)| log.contains(needle)).map(|(_, h)| *h)
}

/// True when a restore log reports that the tasks were resumed.
pub fn restore_finished(log: &str) -> bool {
    log.contains("Restore finished successfully")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str =
        "(00.03) Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted
(00.05) fdinfo: ...
(00.06) Error (criu/files-reg.c:1710): Can't lookup mount=42 for fd=1 path=/tmp/out.log
(00.06) Error (criu/cr-dump.c:1681): Dump files (pid: 5) failed with -1
";

    #[test]
    fn keeps_meaningful_errors() {
        let e = error_lines(LOG);
        assert_eq!(e.len(), 2);
        assert!(e[0].contains("Can't lookup mount"));
    }

    #[test]
    fn keeps_the_last_lines() {
        let many: String = (0..20).map(|i| format!("Error (x): {i}\n")).collect();
        let e = error_lines(&many);
        assert_eq!(e.len(), MAX_LINES);
        assert!(e.last().unwrap().ends_with("19"));
    }

    #[test]
    fn hints_known_failures() {
        assert!(hint(LOG).unwrap().contains("stdio pipes"));
        assert!(hint("Error: Connected TCP socket, consider using --tcp-established")
            .unwrap()
            .contains("--tcp-established"));
        assert_eq!(hint("all fine"), None);
        // CRIU 4.2.1's tmpfs archive failing: the only Error line is the
        // tar's exit status, so the hint has to say what happened.
        let tar_enospc = "tar: ./blob: Cannot write: No space left on device
(01.13) Error (criu/util.c:657): exited, status=2";
        assert!(error_lines(tar_enospc).iter().all(|l| !l.contains("No space")));
        assert!(hint(tar_enospc).unwrap().contains("no space left"));
    }

    #[test]
    fn detects_finished_restore() {
        assert!(restore_finished("(00.2) Restore finished successfully. Tasks resumed."));
        assert!(!restore_finished("(00.2) Error"));
    }
}
