//! Real containers for the root tests: started with `runc` or `crun` from a
//! bundle built in a tempdir, observed through the runtime's own state and
//! the cgroup freezer, and always killed and deleted on drop.
//!
//! Container stdio is a pipe drained by a thread (never a host file, which
//! CRIU cannot dump) unless a test asks for a host file or a terminal on
//! purpose. Nothing here calls ckpt.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use serde_json::Value;
use tempfile::TempDir;

use super::console::ConsoleSocket;
use super::rootfs::{build_bundle, BundleOpts};
use super::unique_id;

/// Which OCI runtime runs the container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Runc,
    Crun,
}

impl Runtime {
    /// The runtime's binary name, also its `ckpt --runtime` value.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Crun => "crun",
        }
    }

    /// Where the runtime keeps per-container state by default.
    pub fn state_root(self) -> &'static Path {
        Path::new(match self {
            Runtime::Runc => "/run/runc",
            Runtime::Crun => "/run/crun",
        })
    }

    /// `<runtime> run -d --bundle B [extra] ID`. crun refuses a hybrid
    /// cgroup host whose cgroup2 mount holds a controller ("cgroups in
    /// hybrid mode not supported"), so when `/sys/fs/cgroup/unified` is a
    /// mount point it runs in a private mount namespace with that mount
    /// lazily unmounted. Only the runtime's creation needs this: `crun
    /// state`, `kill`, `pause` and `delete -f` work from the host namespace.
    fn run_command(self, bundle: &Path, id: &str, extra: &[OsString]) -> Command {
        let mut argv: Vec<OsString> = vec![self.name().into(), "run".into(), "-d".into()];
        argv.extend(["--bundle".into(), bundle.as_os_str().to_owned()]);
        argv.extend(extra.iter().cloned());
        argv.push(id.into());
        if self == Runtime::Crun && unified_is_mounted() {
            // The script text is fixed; the argv travels as "$@".
            let mut cmd = Command::new("unshare");
            cmd.args(["-m", "--propagation", "private", "sh", "-c"])
                .arg("umount -l /sys/fs/cgroup/unified && exec \"$@\"")
                .arg("sh")
                .args(&argv);
            cmd
        } else {
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            cmd
        }
    }

    /// `<runtime> state ID` parsed, or None when the runtime does not know it.
    pub fn state(self, id: &str) -> Option<Value> {
        let out = Command::new(self.name()).args(["state", id]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The status (`running`, `paused`, `stopped`, …) from `<runtime> state`.
    pub fn status(self, id: &str) -> Option<String> {
        Some(self.state(id)?["status"].as_str()?.to_owned())
    }

    /// Whether `<runtime> list --format json` lists `id` as running.
    pub fn list_shows_running(self, id: &str) -> bool {
        let Ok(out) = Command::new(self.name()).args(["list", "--format", "json"]).output() else {
            return false;
        };
        let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        list.as_array()
            .is_some_and(|a| a.iter().any(|c| c["id"] == id && c["status"] == "running"))
    }

    /// Best-effort `kill ID KILL` then `delete -f ID`; never panics.
    /// SIGKILL because the counter is PID 1 and ignores SIGTERM.
    pub fn destroy(self, id: &str) {
        let quiet = |args: &[&str]| {
            let _ = Command::new(self.name())
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        // A frozen (v1) cgroup holds SIGKILL until it is thawed: resume first,
        // so a test that failed while its container was paused leaves nothing.
        quiet(&["resume", id]);
        quiet(&["kill", id, "KILL"]);
        quiet(&["delete", "-f", id]);
    }
}

/// Whether the hybrid layout's cgroup2 mount exists on this host.
fn unified_is_mounted() -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .map(|m| m.lines().any(|l| l.split(' ').nth(4) == Some("/sys/fs/cgroup/unified")))
        .unwrap_or(false)
}

/// Where the container's stdout and stderr go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stdio3 {
    /// A pipe drained by a thread (the normal, checkpointable case).
    Pipe,
    /// A regular file on the host, outside the container (not dumpable).
    HostFile,
    /// `process.terminal: true` with a console socket (not dumpable by ckpt).
    Tty,
}

/// What the container's stdin (fd 0) is, the ways callers give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stdin {
    /// The host's `/dev/null` (which runc and crun reopen as the
    /// container's own `/dev/null`).
    DevNull,
    /// A pipe whose write end is closed at once, as `true | runc run -d`
    /// gives it: reads see end of file.
    Pipe,
    /// A pipe fed from a named FIFO the test holds open, as containerd's
    /// shim gives it (it copies the client's FIFO into a pipe for the
    /// runtime): reads block until the test writes or lets go.
    Fifo,
    /// fd 0 closed when the runtime starts.
    Closed,
}

impl Stdin {
    /// Every kind, for table-driven tests.
    pub const ALL: [Stdin; 4] = [Stdin::Pipe, Stdin::DevNull, Stdin::Fifo, Stdin::Closed];
}

/// Options for [`Container::start`]; obtain one with [`Container::runc`] or
/// [`Container::crun`].
pub struct Builder {
    runtime: Runtime,
    stdio: Stdio3,
    stdin: Stdin,
    ballast_mb: Option<u32>,
    zombie_child: bool,
    criu_config: Option<PathBuf>,
}

impl Builder {
    /// Give the container a terminal (received on a console socket).
    pub fn tty(mut self) -> Self {
        self.stdio = Stdio3::Tty;
        self
    }

    /// Send the container's stdout and stderr to a regular host file.
    pub fn stdout_to_host_file(mut self) -> Self {
        self.stdio = Stdio3::HostFile;
        self
    }

    /// Start it with this stdin (default: the host's `/dev/null`).
    pub fn stdin(mut self, stdin: Stdin) -> Self {
        self.stdin = stdin;
        self
    }

    /// Hold `mb` MiB in the workload's memory before it starts counting.
    pub fn ballast_mb(mut self, mb: u32) -> Self {
        self.ballast_mb = Some(mb);
        self
    }

    /// Run a second process beside the counter whose own child is a
    /// zombie that is never reaped (see `BundleOpts::zombie_child`).
    pub fn zombie_child(mut self) -> Self {
        self.zombie_child = true;
        self
    }

    /// Have runc hand its CRIU the config file `path` (the bundle's
    /// `org.criu.config` annotation), recorded at dump like any spec.
    pub fn criu_config(mut self, path: &Path) -> Self {
        self.criu_config = Some(path.to_path_buf());
        self
    }

    /// Builds the bundle, starts the container detached and waits until the
    /// counter has ticked at least once. Panics with the runtime's output
    /// when it does not start.
    pub fn start(self) -> Container {
        let dir = tempfile::Builder::new()
            .prefix("ckpt-test-")
            .tempdir()
            .expect("create bundle tempdir");
        let bundle = dir.path().join("bundle");
        fs::create_dir(&bundle).expect("mkdir bundle");
        let opts = BundleOpts {
            terminal: self.stdio == Stdio3::Tty,
            ballast_mb: self.ballast_mb,
            zombie_child: self.zombie_child,
            criu_config: self.criu_config.clone(),
        };
        let rootfs = build_bundle(&bundle, &opts);
        let id = unique_id();

        let mut extra = Vec::new();
        let mut console = None;
        let mut host_stdout = None;
        let output = Arc::new(Mutex::new(Vec::new()));
        let (out, err): (Stdio, Stdio) = match self.stdio {
            Stdio3::Pipe | Stdio3::Tty => {
                if self.stdio == Stdio3::Tty {
                    let sock = ConsoleSocket::listen(&dir.path().join("console.sock"));
                    extra.extend(["--console-socket".into(), sock.path().as_os_str().to_owned()]);
                    console = Some(sock);
                }
                let w = drained_pipe(Arc::clone(&output));
                (w.try_clone().expect("dup pipe").into(), w.into())
            }
            Stdio3::HostFile => {
                let path = dir.path().join("host-stdout.log");
                let f = File::create(&path).expect("create host stdout file");
                host_stdout = Some(path);
                (f.try_clone().expect("dup host file").into(), f.into())
            }
        };
        let (stdin, stdin_hold) = stdin_for(self.stdin, dir.path());
        // The Command owns our copies of the write ends; it must be dropped
        // before we wait for the drain thread to see anything end.
        let status = {
            let mut cmd = self.runtime.run_command(&bundle, &id, &extra);
            cmd.stdin(stdin).stdout(out).stderr(err);
            if self.stdin == Stdin::Closed {
                // SAFETY: close(2) is async-signal-safe; fd 0 is the
                // child's own copy, set up just before.
                unsafe {
                    cmd.pre_exec(|| {
                        libc::close(0);
                        Ok(())
                    });
                }
            }
            cmd.status()
        };
        let container = Container {
            id,
            runtime: self.runtime,
            rootfs,
            output,
            console,
            host_stdout,
            _stdin_hold: stdin_hold,
            _dir: Some(dir),
        };
        match status {
            Ok(s) if s.success() => {}
            other => {
                thread::sleep(Duration::from_millis(200));
                panic!(
                    "{} run {} failed ({other:?}); output:\n{}",
                    container.runtime.name(),
                    container.id,
                    container.output()
                );
            }
        }
        // Ballast is built before the first tick; 300 MiB takes a few seconds.
        if container.wait_counter_above(0, Duration::from_secs(60)).is_none() {
            panic!(
                "container {} never started counting; status {:?}; output:\n{}",
                container.id,
                container.status(),
                container.output()
            );
        }
        container
    }
}

/// The runtime's stdin for `kind`, and what the test must hold while the
/// container runs (the FIFO's writer).
fn stdin_for(kind: Stdin, dir: &Path) -> (Stdio, Option<File>) {
    match kind {
        Stdin::DevNull | Stdin::Closed => (Stdio::null(), None),
        Stdin::Pipe => {
            let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe2");
            drop(w);
            (r.into(), None)
        }
        Stdin::Fifo => {
            let fifo = dir.join("stdin.fifo");
            nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
            // The client's end: held open (read-write, so the open does not
            // block) until the container is dropped.
            let client = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&fifo)
                .expect("open the FIFO");
            let mut from_fifo = File::open(&fifo).expect("open the FIFO to read");
            let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe2");
            // The shim's copy: FIFO → pipe, until the client lets go.
            thread::spawn(move || {
                let mut to_pipe = File::from(w);
                let _ = std::io::copy(&mut from_fifo, &mut to_pipe);
            });
            (r.into(), Some(client))
        }
    }
}

/// A pipe whose read end a thread drains into `sink`; returns the write end
/// (close-on-exec, so only the child it is handed to inherits it).
fn drained_pipe(sink: Arc<Mutex<Vec<u8>>>) -> OwnedFd {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe2");
    thread::spawn(move || {
        let mut r = File::from(r);
        let mut buf = [0u8; 8192];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    w
}

/// A container known to a runtime, killed and deleted on drop.
pub struct Container {
    /// The runtime's container id (unique per test).
    pub id: String,
    /// The runtime that runs it.
    pub runtime: Runtime,
    /// Host path of the container's root filesystem.
    pub rootfs: PathBuf,
    output: Arc<Mutex<Vec<u8>>>,
    console: Option<ConsoleSocket>,
    host_stdout: Option<PathBuf>,
    /// The FIFO's client end of [`Stdin::Fifo`], closed on drop.
    _stdin_hold: Option<File>,
    // Declared last: removed only after `drop` has killed the container.
    _dir: Option<TempDir>,
}

impl Container {
    /// A runc container with a piped stdout.
    pub fn runc() -> Builder {
        Builder {
            runtime: Runtime::Runc,
            stdio: Stdio3::Pipe,
            stdin: Stdin::DevNull,
            ballast_mb: None,
            zombie_child: false,
            criu_config: None,
        }
    }

    /// A crun container with a piped stdout.
    pub fn crun() -> Builder {
        Builder {
            runtime: Runtime::Crun,
            stdio: Stdio3::Pipe,
            stdin: Stdin::DevNull,
            ballast_mb: None,
            zombie_child: false,
            criu_config: None,
        }
    }

    /// Takes charge of a container someone else started (e.g. `ckpt start
    /// --name`) over `rootfs`, so that it too is destroyed on drop.
    pub fn adopt(runtime: Runtime, id: &str, rootfs: &Path) -> Container {
        Container {
            id: id.to_owned(),
            runtime,
            rootfs: rootfs.to_path_buf(),
            output: Arc::default(),
            console: None,
            host_stdout: None,
            _stdin_hold: None,
            _dir: None,
        }
    }

    /// The counter's last value written to `/tmp/count`, if readable. The
    /// file is rewritten each tick, so a read can briefly see it empty.
    pub fn counter(&self) -> Option<u64> {
        fs::read_to_string(self.rootfs.join("tmp/count"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Polls until the counter exceeds `n`; returns the value seen, or None
    /// after `timeout`.
    pub fn wait_counter_above(&self, n: u64, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.counter().filter(|&v| v > n) {
                return Some(v);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls until the counter differs from `v` (which a restarted or
    /// restored process must do); None after `timeout`.
    pub fn wait_counter_change(&self, v: u64, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(c) = self.counter().filter(|&c| c != v) {
                return Some(c);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The status reported by `<runtime> state`, None if unknown to it.
    pub fn status(&self) -> Option<String> {
        self.runtime.status(&self.id)
    }

    /// Whether the runtime reports the container as running.
    pub fn is_running(&self) -> bool {
        self.status().as_deref() == Some("running")
    }

    /// The init's host pid, from `<runtime> state`.
    pub fn pid(&self) -> Option<i32> {
        let pid = self.runtime.state(&self.id)?["pid"].as_i64()?;
        (pid > 0).then_some(pid as i32)
    }

    /// The freezer state: `THAWED`, `FREEZING` or `FROZEN` (cgroup v1
    /// `freezer.state`; on a v2-only container `cgroup.freeze` 0/1 maps to
    /// THAWED/FROZEN). None when the cgroup cannot be found.
    pub fn freezer_state(&self) -> Option<String> {
        let (v1, v2) = match self.runtime {
            Runtime::Runc => self.runc_cgroup_dirs()?,
            Runtime::Crun => self.proc_cgroup_dirs()?,
        };
        if let Some(dir) = v1 {
            return Some(fs::read_to_string(dir.join("freezer.state")).ok()?.trim().to_owned());
        }
        let frozen = fs::read_to_string(v2?.join("cgroup.freeze")).ok()?;
        Some(if frozen.trim() == "1" { "FROZEN" } else { "THAWED" }.to_owned())
    }

    /// (v1 freezer dir, v2 unified dir) from runc's `state.json`
    /// `cgroup_paths` (`freezer`, and `""` for the unified hierarchy).
    fn runc_cgroup_dirs(&self) -> Option<(Option<PathBuf>, Option<PathBuf>)> {
        let path = self.runtime.state_root().join(&self.id).join("state.json");
        let state: Value = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
        let paths = &state["cgroup_paths"];
        let get = |k: &str| paths[k].as_str().map(PathBuf::from);
        Some((get("freezer"), get("")))
    }

    /// (v1 freezer dir, v2 dir) from `/proc/<pid>/cgroup`; crun's status
    /// file only records a relative cgroup path.
    fn proc_cgroup_dirs(&self) -> Option<(Option<PathBuf>, Option<PathBuf>)> {
        let text = fs::read_to_string(format!("/proc/{}/cgroup", self.pid()?)).ok()?;
        let mut v1 = None;
        let mut v2 = None;
        // What is mounted at /sys/fs/cgroup decides, as for crun itself: in
        // scripts/in-cgroup2 the kernel still lists the v1 lines.
        let pure_v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            let rel = path.trim_start_matches('/');
            if ctrls.split(',').any(|c| c == "freezer") && !pure_v2 {
                v1 = Some(Path::new("/sys/fs/cgroup/freezer").join(rel));
            } else if ctrls.is_empty() && !unified_is_mounted() {
                v2 = Some(Path::new("/sys/fs/cgroup").join(rel));
            }
        }
        Some((v1, v2))
    }

    /// Everything the container (or, on a tty, its terminal) wrote that the
    /// drain threads collected, plus the runtime's own messages.
    pub fn output(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned();
        if let Some(c) = &self.console {
            s.push_str(&c.output());
        }
        if let Some(p) = &self.host_stdout {
            s.push_str(&fs::read_to_string(p).unwrap_or_default());
        }
        s
    }

    /// The host file that stdout and stderr point to, for the host-file
    /// variant.
    pub fn host_stdout_path(&self) -> Option<&Path> {
        self.host_stdout.as_deref()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.runtime.destroy(&self.id);
    }
}
