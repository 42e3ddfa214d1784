//! A private Docker for the Docker end-to-end tests: one containerd and one
//! dockerd per [`DockerDaemon`], configured to keep everything (sockets,
//! roots, containerd's TMPDIR, logs) in one short tempdir, so a test can run
//! next to a system Docker or another private one without touching it.
//! `scripts/lib/docker-env.sh` sets up the same pair for the demo; keep the
//! two configurations alike.
//!
//! The image is the counter workload of [`super::rootfs`] imported with
//! `docker import`. Counters are read from the container's overlay upper
//! dir on the host, which holds `/tmp/count` whether or not the container
//! runs, and costs no `docker exec` process inside a container about to be
//! checkpointed.
//!
//! Dropping the daemon removes every container, stops both daemons and any
//! shim they left, unmounts whatever is still mounted under the tempdir and
//! removes it. Drop never panics; it reports what it could not undo.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use tempfile::TempDir;

use super::rootfs::build_rootfs;
use super::{prereqs_with, CKPT};

/// The Docker CLI that matches the daemon (Debian's). `/usr/local/bin/docker`
/// may be a newer client speaking a newer API; tests never use it.
pub const DOCKER_CLI: &str = "/usr/bin/docker";

/// The image every test container runs: busybox plus `/bin/counter`.
pub const IMAGE: &str = "ckpt-counter";

/// How long the daemons get to answer after being started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a stopping daemon gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// [`prereqs_with`] for the Docker tests: also containerd, dockerd, the
/// runc shim, tar and the Debian docker CLI.
pub fn docker_prereqs() -> bool {
    prereqs_with(&["containerd", "dockerd", "containerd-shim-runc-v2", "tar", DOCKER_CLI])
}

/// Options for [`DockerDaemon::start_with`].
#[derive(Clone, Copy, Debug)]
pub struct DaemonOpts {
    /// dockerd's `"experimental"`; checkpoint/restore needs it on.
    pub experimental: bool,
}

impl Default for DaemonOpts {
    fn default() -> Self {
        DaemonOpts { experimental: true }
    }
}

/// A running containerd + dockerd pair with the counter image imported.
pub struct DockerDaemon {
    containerd: Option<Child>,
    dockerd: Option<Child>,
    // Declared last: removed only after `drop` has stopped everything.
    dir: TempDir,
}

impl DockerDaemon {
    /// An experimental daemon, ready, with [`IMAGE`] imported.
    pub fn start() -> DockerDaemon {
        DockerDaemon::start_with(DaemonOpts::default())
    }

    /// Starts containerd, then dockerd, waits until `docker info` answers,
    /// and imports [`IMAGE`]. Panics with both daemons' logs on failure
    /// (the partly started daemon is cleaned up by drop).
    pub fn start_with(opts: DaemonOpts) -> DockerDaemon {
        // Short: dockerd's and containerd's sockets live inside it.
        let dir = tempfile::Builder::new()
            .prefix("ckd")
            .tempdir_in("/tmp")
            .expect("create the daemon tempdir");
        let mut d = DockerDaemon {
            containerd: None,
            dockerd: None,
            dir,
        };
        for sub in ["tmp", "cfg"] {
            fs::create_dir(d.path().join(sub)).expect("mkdir in the daemon tempdir");
        }
        d.write_configs(opts);

        let mut ctrd = Command::new("containerd");
        ctrd.arg("--config").arg(d.path().join("containerd.toml"));
        // containerd copies every checkpoint it restores into $TMPDIR
        // (ctrd-checkpoint*); inside the tempdir, leftovers are countable.
        ctrd.env("TMPDIR", d.containerd_tmp());
        d.containerd = Some(d.spawn_logged(ctrd, "containerd.log"));
        let sock = d.path().join("containerd.sock");
        if !wait_for(READY_TIMEOUT, || sock.exists()) {
            panic!("containerd did not create {}\n{}", sock.display(), d.logs());
        }

        let mut dockerd = Command::new("dockerd");
        dockerd.arg("--config-file").arg(d.path().join("daemon.json"));
        d.dockerd = Some(d.spawn_logged(dockerd, "dockerd.log"));
        if !wait_for(READY_TIMEOUT, || d.docker(["info"]).status.success()) {
            panic!(
                "dockerd did not answer `docker info` within {READY_TIMEOUT:?}\n{}",
                d.logs()
            );
        }
        d.import_image();
        d
    }

    fn write_configs(&self, opts: DaemonOpts) {
        let p = self.path().display();
        // The CRI plugin serves Kubernetes, not Docker; without it containerd
        // starts faster and touches no CNI directories. containerd 2.x split
        // it into three plugins (1.7 ignores the ids it does not know).
        // Config version 2 is the newest 1.7 reads; 2.x migrates it.
        let containerd = format!(
            "version = 2\nroot = \"{p}/ctrd-root\"\nstate = \"{p}/ctrd-state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.cri.v1.images\", \
             \"io.containerd.cri.v1.runtime\"]\n\
             [grpc]\n  address = \"{p}/containerd.sock\"\n"
        );
        fs::write(self.path().join("containerd.toml"), containerd).expect("write containerd.toml");
        let daemon = serde_json::json!({
            "experimental": opts.experimental,
            "iptables": false,
            "ip6tables": false,
            "bridge": "none",
            "data-root": self.data_root(),
            "exec-root": self.path().join("exec"),
            "pidfile": self.path().join("docker.pid"),
            "hosts": [self.host()],
            "containerd": self.path().join("containerd.sock"),
            // Docker's default on a systemd host with cgroup v2 is the
            // systemd driver; these daemons use cgroupfs everywhere
            // (also inside scripts/in-cgroup2, where no systemd manages
            // the mounted hierarchy).
            "exec-opts": ["native.cgroupdriver=cgroupfs"],
        });
        fs::write(
            self.path().join("daemon.json"),
            serde_json::to_vec_pretty(&daemon).unwrap(),
        )
        .expect("write daemon.json");
    }

    /// Spawns `cmd` with stdout and stderr appended to `<dir>/<log>`, in its
    /// own process group (a ^C to the test must not skip our cleanup).
    fn spawn_logged(&self, mut cmd: Command, log: &str) -> Child {
        use std::os::unix::process::CommandExt;
        let f = File::create(self.path().join(log)).expect("create daemon log");
        cmd.stdin(Stdio::null())
            .stdout(f.try_clone().expect("dup log"))
            .stderr(f)
            .process_group(0);
        cmd.spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()))
    }

    /// Builds the counter rootfs and `docker import`s it as [`IMAGE`].
    fn import_image(&self) {
        let rootfs = self.path().join("rootfs");
        build_rootfs(&rootfs);
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn tar");
        let out = self
            .docker_command(["import", "-", IMAGE])
            .stdin(tar.stdout.take().unwrap())
            .output()
            .expect("run docker import");
        let tar_ok = tar.wait().is_ok_and(|s| s.success());
        assert!(tar_ok && out.status.success(), "docker import failed: {}", text(&out));
        let _ = fs::remove_dir_all(&rootfs);
    }

    /// The tempdir holding everything.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `unix://<dir>/docker.sock`, the value of DOCKER_HOST for this daemon.
    pub fn host(&self) -> String {
        format!("unix://{}/docker.sock", self.path().display())
    }

    /// dockerd's data-root (`DockerRootDir`).
    pub fn data_root(&self) -> PathBuf {
        self.path().join("data")
    }

    /// containerd's TMPDIR, where it leaves `ctrd-checkpoint*` copies.
    pub fn containerd_tmp(&self) -> PathBuf {
        self.path().join("tmp")
    }

    /// The Docker CLI's config dir (DOCKER_CONFIG): private, empty but for
    /// plugins a test installs into `<it>/cli-plugins`.
    pub fn docker_config(&self) -> PathBuf {
        self.path().join("cfg")
    }

    /// `ctrd-checkpoint*` entries in containerd's TMPDIR.
    pub fn containerd_checkpoint_copies(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = super::dir_entries(&self.containerd_tmp())
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("ctrd-checkpoint"))
            })
            .collect();
        v.sort();
        v
    }

    /// `/usr/bin/docker ARGS…` against this daemon, ready to run.
    pub fn docker_command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(DOCKER_CLI);
        cmd.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.docker_config())
            .env_remove("DOCKER_CONTEXT")
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the Docker CLI to completion (never panics on failure).
    pub fn docker<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.docker_command(args).output().expect("run the docker CLI")
    }

    /// Runs the Docker CLI and returns its trimmed stdout; panics with both
    /// streams unless it succeeds.
    pub fn docker_ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.docker(&args);
        assert!(out.status.success(), "docker {args:?} failed:\n{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `ckpt --store <dir>/store -v ARGS…` with DOCKER_HOST set to this
    /// daemon, ready to run. The store is private and should stay empty:
    /// Docker containers' checkpoints live in Docker's directory.
    pub fn ckpt_command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(CKPT);
        cmd.env_remove("CKPT_STORE")
            .env("DOCKER_HOST", self.host())
            .arg("--store")
            .arg(self.path().join("store"))
            .arg("-v")
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs ckpt to completion (never panics on a non-zero exit).
    pub fn ckpt<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.ckpt_command(args).output().expect("run the ckpt binary")
    }

    /// `ckpt ls --json CONTAINER`, parsed; panics unless it exits 0.
    pub fn ckpt_ls(&self, container: &str) -> Vec<Value> {
        let out = self.ckpt(["ls", "--json", container]);
        super::expect_code(&out, 0, &format!("ckpt ls --json {container}"));
        super::parse_json_array(&out.stdout)
    }

    /// `docker run -d [-t] --name NAME IMAGE /bin/counter`; waits until the
    /// counter has ticked and returns the full id.
    pub fn run_counter(&self, name: &str, tty: bool) -> String {
        self.run_counter_with(name, if tty { &["-t"] } else { &[] })
    }

    /// `docker run -d EXTRA… --name NAME IMAGE /bin/counter` (e.g. `-i`:
    /// stdin a pipe from containerd's shim, fed by dockerd's FIFO); waits
    /// until the counter has ticked and returns the full id.
    pub fn run_counter_with(&self, name: &str, extra: &[&str]) -> String {
        let mut args = vec!["run", "-d"];
        args.extend(extra);
        args.extend(["--name", name, IMAGE, "/bin/counter"]);
        let id = self.docker_ok(&args);
        if self.wait_counter_above(name, 0, Duration::from_secs(20)).is_none() {
            panic!(
                "container {name} never started counting; inspect:\n{}\nlogs:\n{}",
                self.docker_ok(["inspect", "-f", "{{json .State}}", name]),
                text(&self.docker(["logs", name]))
            );
        }
        id
    }

    /// The daemon's major version (`28` for `28.5.2+dfsg4`).
    pub fn server_major(&self) -> u32 {
        let v = self.docker_ok(["version", "--format", "{{.Server.Version}}"]);
        v.split(['.', '+', '-'])
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("unparsable Docker server version {v:?}"))
    }

    /// `docker inspect NAME`, the one object; None when Docker does not know it.
    pub fn inspect(&self, name: &str) -> Option<Value> {
        let out = self.docker(["inspect", "--type", "container", name]);
        if !out.status.success() {
            return None;
        }
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        v.as_array()?.first().cloned()
    }

    /// The container's full id.
    pub fn id_of(&self, name: &str) -> String {
        let v = self.inspect(name).unwrap_or_else(|| panic!("no container {name}"));
        v["Id"].as_str().expect("inspect has an Id").to_owned()
    }

    /// Whether Docker reports the container running.
    pub fn is_running(&self, name: &str) -> bool {
        self.inspect(name).is_some_and(|v| v["State"]["Running"] == true)
    }

    /// The container's overlay upper dir (its writable layer on the host).
    pub fn upper_dir(&self, name: &str) -> PathBuf {
        let v = self.inspect(name).unwrap_or_else(|| panic!("no container {name}"));
        let upper = v["GraphDriver"]["Data"]["UpperDir"]
            .as_str()
            .unwrap_or_else(|| panic!("container {name} has no overlay UpperDir: {}", v["GraphDriver"]));
        PathBuf::from(upper)
    }

    /// The counter's last value in the container's `/tmp/count`, read on
    /// the host from the upper dir; None while unreadable (the file is
    /// rewritten each tick, so a read can briefly see it empty).
    pub fn counter(&self, name: &str) -> Option<u64> {
        read_count(&self.upper_dir(name))
    }

    /// The counter of a running container, waiting out the moments when
    /// the file is being rewritten; panics if it stays unreadable for 5 s.
    pub fn counter_now(&self, name: &str) -> u64 {
        let upper = self.upper_dir(name);
        poll(Duration::from_secs(5), || read_count(&upper))
            .unwrap_or_else(|| panic!("{name}'s /tmp/count unreadable for 5 s"))
    }

    /// Polls until the counter exceeds `n`; the value seen, or None.
    pub fn wait_counter_above(&self, name: &str, n: u64, timeout: Duration) -> Option<u64> {
        let upper = self.upper_dir(name);
        poll(timeout, || read_count(&upper).filter(|&v| v > n))
    }

    /// Polls until the counter differs from `v`; the value seen, or None.
    pub fn wait_counter_change(&self, name: &str, v: u64, timeout: Duration) -> Option<u64> {
        let upper = self.upper_dir(name);
        poll(timeout, || read_count(&upper).filter(|&c| c != v))
    }

    /// Docker's checkpoint directory of a container:
    /// `<data-root>/containers/<full-id>/checkpoints`.
    pub fn checkpoints_dir(&self, full_id: &str) -> PathBuf {
        self.data_root().join("containers").join(full_id).join("checkpoints")
    }

    /// The tails of both daemon logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for log in ["containerd.log", "dockerd.log"] {
            let t = fs::read_to_string(self.path().join(log)).unwrap_or_default();
            let lines: Vec<&str> = t.lines().collect();
            let tail = &lines[lines.len().saturating_sub(30)..];
            s.push_str(&format!(
                "--- {log} (last {} lines):\n{}\n",
                tail.len(),
                tail.join("\n")
            ));
        }
        s
    }

    /// Everything drop does, in order; each step is best effort.
    fn teardown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.dockerd.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None))) {
            let ps = bounded(self.docker_command(["ps", "-aq"]), Duration::from_secs(20));
            let ids: Vec<String> = ps
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if !ids.is_empty() {
                let mut rm = self.docker_command(["rm", "-f"]);
                rm.args(&ids);
                if bounded(rm, Duration::from_secs(30)).is_none_or(|o| !o.status.success()) {
                    problems.push(format!("docker rm -f {ids:?} failed"));
                }
            }
        }
        for (child, name) in [(self.dockerd.take(), "dockerd"), (self.containerd.take(), "containerd")] {
            if let Some(mut c) = child {
                if let Err(e) = stop(&mut c) {
                    problems.push(format!("{name}: {e}"));
                }
            }
        }
        kill_leftover_shims(&self.path().join("containerd.sock"));
        problems.extend(unmount_under(self.path()));
        problems
    }
}

impl Drop for DockerDaemon {
    fn drop(&mut self) {
        let problems = self.teardown();
        if !problems.is_empty() {
            let _ = writeln!(
                std::io::stderr(),
                "DockerDaemon cleanup of {}: {}",
                self.path().display(),
                problems.join("; ")
            );
        }
        // TempDir's own drop removes the directory, ignoring errors.
    }
}

/// `/tmp/count` under `root`, parsed.
fn read_count(root: &Path) -> Option<u64> {
    fs::read_to_string(root.join("tmp/count")).ok()?.trim().parse().ok()
}

/// Calls `f` every 50 ms until it returns Some; None after `timeout`.
fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    poll(timeout, || f().then_some(())).is_some()
}

/// Both streams of a finished command, for failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd` to completion with piped output, killing it after `timeout`
/// (None then, or when it cannot be spawned). For cleanup, where a hung
/// daemon must not hang the test run. The output must be small: the pipes
/// are read only after exit.
fn bounded(mut cmd: Command, timeout: Duration) -> Option<Output> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().ok()?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().ok(),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// SIGTERM, then SIGKILL after [`STOP_GRACE`]; reaps the child.
fn stop(child: &mut Child) -> Result<(), String> {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return Ok(());
    }
    let pid = Pid::from_raw(child.id() as i32);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait().map_err(|e| format!("wait after SIGKILL: {e}"))?;
    Err(format!("ignored SIGTERM for {STOP_GRACE:?}; killed"))
}

/// Kills the containerd shims whose `-address` is `sock`, and the container
/// processes they still parent. Shims outlive containerd by design; after a
/// clean `docker rm -f` there are none.
fn kill_leftover_shims(sock: &Path) {
    let Ok(dir) = fs::read_dir("/proc") else { return };
    let sock = sock.as_os_str().as_encoded_bytes();
    let shims: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.first().is_some_and(|a| a.ends_with(b"containerd-shim-runc-v2"))
                && args.windows(2).any(|w| w[0] == b"-address" && w[1] == sock)
        })
        .collect();
    for shim in shims {
        for child in children_of(shim) {
            let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
        }
        let _ = kill(Pid::from_raw(shim), Signal::SIGKILL);
    }
}

/// Pids whose parent is `parent` (the ppid is the second field after the
/// parenthesised command name in `/proc/<pid>/stat`).
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().nth(1)?.parse::<i32>().ok());
            ppid == Some(parent)
        })
        .collect()
}

/// Lazily unmounts every mount point under `dir` (deepest first), as read
/// from /proc/self/mountinfo; returns the ones that would not go.
fn unmount_under(dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut points = mounts_under(dir);
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        let ok = Command::new("umount")
            .arg("-l")
            .arg(&p)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            problems.push(format!("umount -l {} failed", p.display()));
        }
    }
    let left = mounts_under(dir);
    if !left.is_empty() {
        problems.push(format!("still mounted: {left:?}"));
    }
    problems
}

/// Mount points at or below `dir` (field 5 of mountinfo; our paths contain
/// no characters that mountinfo escapes).
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect()
}
