//! THE reader of `/proc`. Every read of a process's files, of ckpt's own
//! (`self`, `thread-self`) and of the process list goes through a
//! [`ProcRoot`], which is passed in: the host's `/proc` is set in exactly
//! one place ([`ProcRoot::host`]), and tests use fixture trees.
//!
//! Promises: each read names the path it failed on ([`ProcError`]), and
//! says whether the thing read went away meanwhile
//! ([`ProcError::is_vanished`]), which is normal for a running container.
//! Text is decoded lossily: `cmdline`, `environ` and fd targets may hold
//! any bytes, and ckpt only reports them. The parsers ([`parse_stat`],
//! [`parse_ns_pid`], [`parse_cmdline`], [`env_value`]) are pure.
//!
//! Never writes, never signals: acting on what is read is the caller's.

use std::io;
use std::path::{Path, PathBuf};

/// The host's proc filesystem: the one place the default is set.
const HOST: &str = "/proc";

/// Errors reading under a proc root.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// A file, link or directory could not be read.
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file did not have the format the kernel gives it.
    #[error("cannot parse {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
}

impl ProcError {
    /// True when the thing read has disappeared while we were looking: the
    /// kernel removed the entry (ENOENT), or its task is gone (ESRCH).
    pub fn is_vanished(&self) -> bool {
        matches!(self, ProcError::Read { source, .. } if is_gone(source))
    }
}

/// True for the errors a process (or one of its fds) gives once it has
/// exited or closed.
pub fn is_gone(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound || err.raw_os_error() == Some(libc::ESRCH)
}

/// A proc filesystem: the host's, or a fixture tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcRoot(PathBuf);

impl Default for ProcRoot {
    fn default() -> ProcRoot {
        ProcRoot::host()
    }
}

impl ProcRoot {
    /// The host's `/proc`.
    pub fn host() -> ProcRoot {
        ProcRoot(PathBuf::from(HOST))
    }

    /// A proc tree at `path` (a fixture in tests).
    pub fn new(path: impl Into<PathBuf>) -> ProcRoot {
        ProcRoot(path.into())
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The process `pid` (its directory need not exist).
    pub fn process(&self, pid: i32) -> Process {
        Process(self.0.join(pid.to_string()))
    }

    /// ckpt's own process, `<root>/self` (absent in fixture trees).
    pub fn own(&self) -> Process {
        Process(self.0.join("self"))
    }

    /// ckpt's calling thread, `<root>/thread-self`: namespaces are per
    /// thread, so a `setns` decision compares against this one.
    pub fn own_thread(&self) -> Process {
        Process(self.0.join("thread-self"))
    }

    /// Whether `<root>/<pid>` exists: the process has not been reaped.
    pub fn exists(&self, pid: i32) -> bool {
        self.process(pid).0.exists()
    }

    /// Every pid under the root, ascending.
    pub fn pids(&self) -> Result<Vec<i32>, ProcError> {
        numeric_entries(&self.0)
    }

    /// `<root>/self/mountinfo`: the mounts ckpt itself sees (read again and
    /// again while mounts are removed, so callers get the path).
    pub fn own_mountinfo(&self) -> PathBuf {
        self.own().0.join("mountinfo")
    }
}

/// One process directory under a proc root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process(PathBuf);

impl Process {
    /// `<root>/<pid>`.
    pub fn dir(&self) -> &Path {
        &self.0
    }

    /// A file of the process as text (`stat`, `maps`, `net/tcp`, ...).
    pub fn read(&self, file: &str) -> Result<String, ProcError> {
        read_text(&self.0.join(file))
    }

    /// A file of the process as text, or `None` when it does not exist (a
    /// kernel without it, a fixture without it, or the process gone).
    pub fn read_optional(&self, file: &str) -> Result<Option<String>, ProcError> {
        read_optional_text(&self.0.join(file))
    }

    /// `stat`, parsed.
    pub fn stat(&self) -> Result<Stat, ProcError> {
        let path = self.0.join("stat");
        parse_stat(&read_text(&path)?).ok_or_else(|| ProcError::Parse {
            path,
            reason: "no `(comm) state ppid` fields".into(),
        })
    }

    /// `status` text (`NSpid:` and friends).
    pub fn status(&self) -> Result<String, ProcError> {
        self.read("status")
    }

    /// The pid inside the process's innermost pid namespace (`NSpid:`).
    pub fn ns_pid(&self) -> Result<Option<i32>, ProcError> {
        Ok(parse_ns_pid(&self.status()?))
    }

    /// `comm`, without its newline; `None` when the file is absent.
    pub fn comm(&self) -> Result<Option<String>, ProcError> {
        Ok(self
            .read_optional("comm")?
            .map(|c| c.trim_end_matches('\n').to_string()))
    }

    /// `cmdline`, split at NULs.
    pub fn cmdline(&self) -> Result<Vec<String>, ProcError> {
        Ok(parse_cmdline(&self.read("cmdline")?))
    }

    /// The raw `environ` bytes.
    pub fn environ(&self) -> Result<Vec<u8>, ProcError> {
        let path = self.0.join("environ");
        std::fs::read(&path).map_err(|source| ProcError::Read { path, source })
    }

    /// `cgroup` text (parsed by `cgroups::parse_proc_cgroup`).
    pub fn cgroup(&self) -> Result<String, ProcError> {
        self.read("cgroup")
    }

    /// `mountinfo` text (parsed by [`crate::mountinfo::parse`]).
    pub fn mountinfo(&self) -> Result<String, ProcError> {
        self.read("mountinfo")
    }

    /// The open fd numbers, ascending.
    pub fn fds(&self) -> Result<Vec<i32>, ProcError> {
        numeric_entries(&self.0.join("fd"))
    }

    /// `fd/<fd>`: the magic link itself, for an `O_PATH` open of the file.
    pub fn fd_path(&self, fd: i32) -> PathBuf {
        self.0.join("fd").join(fd.to_string())
    }

    /// The target of `fd/<fd>` (`/dev/null`, `pipe:[1234]`, ...).
    pub fn fd_target(&self, fd: i32) -> Result<String, ProcError> {
        read_link_text(&self.fd_path(fd))
    }

    /// `fdinfo/<fd>` text, `None` when the fd was closed meanwhile.
    pub fn fdinfo(&self, fd: i32) -> Result<Option<String>, ProcError> {
        read_optional_text(&self.0.join("fdinfo").join(fd.to_string()))
    }

    /// `ns/<kind>`: the link, for opening it (`setns`) or comparing.
    pub fn ns_path(&self, kind: &str) -> PathBuf {
        self.0.join("ns").join(kind)
    }

    /// The target of `ns/<kind>` (`pid:[4026531836]`).
    pub fn ns(&self, kind: &str) -> Result<String, ProcError> {
        read_link_text(&self.ns_path(kind))
    }

    /// The working directory (`cwd` link).
    pub fn cwd(&self) -> Result<PathBuf, ProcError> {
        let path = self.0.join("cwd");
        std::fs::read_link(&path).map_err(|source| ProcError::Read { path, source })
    }

    /// `root/<path>`: a path as the process sees it, through its root.
    pub fn in_root(&self, path: &str) -> PathBuf {
        self.0.join("root").join(path.trim_start_matches('/'))
    }
}

/// The init of a restored container as `/proc` shows it: what tells the
/// checkpointed processes from a fresh start (see `plan::confirm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveInit {
    /// Pid inside the container's pid namespace (-1 if unreadable).
    pub ns_pid: i32,
    pub comm: String,
    /// Whether it runs in a time namespace other than ckpt's (the host's);
    /// `None` when the kernel has no time namespaces.
    pub own_time_namespace: Option<bool>,
}

impl ProcRoot {
    /// What a restore's confirmation reads about process `pid`.
    pub fn live_init(&self, pid: i32) -> LiveInit {
        let init = self.process(pid);
        let host_timens = self.own().ns("time").ok();
        let init_timens = init.ns("time").ok();
        LiveInit {
            ns_pid: init.ns_pid().ok().flatten().unwrap_or(-1),
            comm: init.comm().ok().flatten().unwrap_or_default().trim().to_string(),
            own_time_namespace: match (host_timens, init_timens) {
                (Some(h), Some(i)) => Some(h != i),
                _ => None,
            },
        }
    }
}

/// The fields of `/proc/<pid>/stat` ckpt uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Field 2, without its parentheses.
    pub comm: String,
    /// Field 3 (`R`, `S`, `Z`, ...).
    pub state: char,
    /// Field 4.
    pub ppid: i32,
    /// Field 22, clock ticks since boot; `None` on a short line.
    pub start_time: Option<u64>,
}

impl Stat {
    /// `Z` (zombie) or `X` (dead, being reaped): exited, nothing left to read.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// PURE: parses a `stat` line, `pid (comm) state ppid ...`. The comm may
/// itself hold spaces and parentheses, so it ends at the last `)` and the
/// fields are counted after it.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // `rest` starts at field 3 (state); field 22 is index 19.
    Some(Stat {
        comm,
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        start_time: rest.get(19).and_then(|s| s.parse().ok()),
    })
}

/// PURE: the innermost pid of `NSpid:` in `status` text (the pid as the
/// container sees it); `None` on kernels before 4.1, which lack the line.
pub fn parse_ns_pid(status: &str) -> Option<i32> {
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

/// PURE: `cmdline` is NUL-separated, usually with a trailing NUL.
pub fn parse_cmdline(text: &str) -> Vec<String> {
    let text = text.strip_suffix('\0').unwrap_or(text);
    if text.is_empty() {
        return Vec::new();
    }
    text.split('\0').map(str::to_string).collect()
}

/// PURE: the value of `key` in `environ` bytes (`KEY=VALUE\0...`).
pub fn env_value<'a>(environ: &'a [u8], key: &str) -> Option<&'a [u8]> {
    environ
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(key.as_bytes())?.strip_prefix(b"="))
}

/// Reads a whole file as text.
fn read_text(path: &Path) -> Result<String, ProcError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(source) => Err(ProcError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads a whole file as text, or `None` when it does not exist.
fn read_optional_text(path: &Path) -> Result<Option<String>, ProcError> {
    match read_text(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.is_vanished() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads the target of a symbolic link (or of a `/proc` magic link).
fn read_link_text(path: &Path) -> Result<String, ProcError> {
    match std::fs::read_link(path) {
        Ok(target) => Ok(target.to_string_lossy().into_owned()),
        Err(source) => Err(ProcError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The entries of `dir` whose names are decimal numbers (pids under the
/// root, fd numbers under `fd/`), in ascending order.
fn numeric_entries(dir: &Path) -> Result<Vec<i32>, ProcError> {
    let read_err = |source| ProcError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut numbers = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        if let Some(n) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_parsed_after_the_last_paren() {
        // (line, comm, state, ppid, start time)
        #[rustfmt::skip]
        let table: &[(&str, &str, char, i32, Option<u64>)] = &[
            ("4871 (we ird) name)) S 4850 4871 4871 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 12636 1000 100 1",
             "we ird) name)", 'S', 4850, Some(12636)),
            ("1234 (my (weird) app) S 99 1234 1234 0 -1 4194560 100 0 0 0", "my (weird) app", 'S', 99, None),
            ("7 (sh) Z 6 7", "sh", 'Z', 6, None),
        ];
        for (line, comm, state, ppid, start) in table {
            let s = parse_stat(line).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(
                (s.comm.as_str(), s.state, s.ppid, s.start_time),
                (*comm, *state, *ppid, *start),
                "{line}"
            );
        }
        assert!(parse_stat("7 (sh) Z 6 7").unwrap().is_dead());
        assert!(parse_stat("7 (sh) X 6 7").unwrap().is_dead());
        assert!(!parse_stat("7 (sh) t 6 7").unwrap().is_dead());
    }

    #[test]
    fn stat_garbage_is_none() {
        for line in ["garbage", "no paren here", "1 (x) S", "1 (x) S notapid", ""] {
            assert_eq!(parse_stat(line), None, "{line:?}");
        }
    }

    #[test]
    fn ns_pid_is_the_innermost() {
        assert_eq!(parse_ns_pid("Name:\tsh\nNSpid:\t4321\t7\t1\n"), Some(1));
        assert_eq!(parse_ns_pid("Name:\tsh\nNSpid:\t5130\t1\n"), Some(1));
        assert_eq!(parse_ns_pid("Name:\tsh\n"), None);
    }

    #[test]
    fn cmdline_is_nul_split() {
        assert_eq!(parse_cmdline("sh\0-c\0echo hi\0"), vec!["sh", "-c", "echo hi"]);
        assert!(parse_cmdline("").is_empty());
    }

    #[test]
    fn environ_values() {
        let env = b"PATH=/bin\0TMPDIR=/var/tmp\0TMPDIRX=no\0";
        assert_eq!(env_value(env, "TMPDIR"), Some(&b"/var/tmp"[..]));
        assert_eq!(env_value(env, "HOME"), None);
        assert_eq!(env_value(b"", "TMPDIR"), None);
    }

    #[test]
    fn reads_name_their_path_and_know_a_vanished_process() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["10", "2", "self", "33x", "1"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        let proc = ProcRoot::new(dir.path());
        assert_eq!(proc.pids().unwrap(), vec![1, 2, 10]);
        let gone = proc.process(99);
        let e = gone.stat().unwrap_err();
        assert!(e.is_vanished(), "{e}");
        assert!(e.to_string().contains("99/stat"), "{e}");
        assert_eq!(gone.comm().unwrap(), None);
        std::fs::write(dir.path().join("2/stat"), "nonsense").unwrap();
        assert!(matches!(proc.process(2).stat(), Err(ProcError::Parse { .. })));
        assert!(proc.exists(10) && !proc.exists(11));
    }

    #[test]
    fn the_host_root_is_proc() {
        assert_eq!(ProcRoot::host().path(), Path::new(HOST));
        assert_eq!(ProcRoot::default(), ProcRoot::host());
        assert_eq!(ProcRoot::host().own_mountinfo(), Path::new(HOST).join("self/mountinfo"));
    }
}
