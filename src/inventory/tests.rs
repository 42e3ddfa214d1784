//! Tests of [`collect`] over fixture proc trees, plus one over the real
//! `/proc` (no root needed: it inspects the test process itself).
//!
//! A fixture process is a directory with the files `collect` reads; links
//! such as `ns/pid` and `fd/N` are real symlinks to the strings the kernel
//! would show, so the same `readlink` code reads both kinds of tree.

use super::*;
use crate::procfs::{ProcError, ProcRoot};
use std::os::unix::fs::symlink;
use std::path::Path;
use tempfile::TempDir;

const CONTAINER_NS: u64 = 4026532500;
const HOST_NS: u64 = 4026531836;
/// Mount ids every fixture process has in its `mountinfo`.
const ROOT_MNT: u64 = 300;
const DEV_MNT: u64 = 301;
/// A mount id that belongs to no fixture mount namespace (the host's).
const HOST_MNT: u64 = 25;

struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A process with every file `collect` needs and no fds.
    fn process(&self, pid: i32, ppid: i32, pid_ns: u64, ns_pid: i32) -> &Self {
        let dir = self.root().join(pid.to_string());
        for sub in ["ns", "fd", "fdinfo", "net"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        symlink(format!("pid:[{pid_ns}]"), dir.join("ns/pid")).unwrap();
        let comm = format!("proc{pid}");
        self.write(
            pid,
            "stat",
            &format!("{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 0 0"),
        );
        self.write(
            pid,
            "status",
            &format!("Name:\t{comm}\nPid:\t{pid}\nNSpid:\t{pid}\t{ns_pid}\n"),
        );
        self.write(pid, "comm", &format!("{comm}\n"));
        self.write(pid, "cmdline", &format!("/bin/{comm}\0--flag\0"));
        self.write(
            pid,
            "mountinfo",
            &format!(
                "{ROOT_MNT} 200 0:50 / / rw - overlay overlay rw\n{DEV_MNT} {ROOT_MNT} 0:51 / /dev rw - tmpfs tmpfs rw\n"
            ),
        );
        self
    }

    /// ckpt's own process (`self`), in pid namespace `pid_ns`.
    fn own_pid_ns(&self, pid_ns: u64) -> &Self {
        std::fs::create_dir_all(self.root().join("self/ns")).unwrap();
        symlink(format!("pid:[{pid_ns}]"), self.root().join("self/ns/pid")).unwrap();
        self
    }

    fn write(&self, pid: i32, file: &str, text: &str) -> &Self {
        std::fs::write(self.root().join(pid.to_string()).join(file), text).unwrap();
        self
    }

    /// An fd whose link shows `target`, with `mnt_id` in its fdinfo.
    fn fd(&self, pid: i32, fd: i32, target: &str, mnt_id: u64) -> &Self {
        self.fd_with_info(pid, fd, target, &format!("pos:\t0\nflags:\t02\nmnt_id:\t{mnt_id}\n"))
    }

    fn fd_with_info(&self, pid: i32, fd: i32, target: impl AsRef<Path>, fdinfo: &str) -> &Self {
        let dir = self.root().join(pid.to_string());
        symlink(target, dir.join("fd").join(fd.to_string())).unwrap();
        std::fs::write(dir.join("fdinfo").join(fd.to_string()), fdinfo).unwrap();
        self
    }

    fn collect(&self, init: i32) -> Inventory {
        collect(&ProcRoot::new(self.root()), init).unwrap()
    }
}

fn pids(inventory: &Inventory) -> Vec<i32> {
    inventory.processes.iter().map(|p| p.pid).collect()
}

fn fd_of(inventory: &Inventory, pid: i32, fd: i32) -> &FdInfo {
    let process = inventory.processes.iter().find(|p| p.pid == pid).expect("process");
    process.fds.iter().find(|f| f.fd == fd).expect("fd")
}

#[test]
fn processes_are_selected_by_pid_namespace_init_first() {
    let fx = Fixture::new();
    fx.process(50, 1, HOST_NS, 50)
        .process(90, 100, CONTAINER_NS, 3)
        .process(100, 50, CONTAINER_NS, 1)
        .process(120, 100, CONTAINER_NS, 2)
        .process(130, 50, HOST_NS, 130);
    let inv = fx.collect(100);
    assert_eq!(pids(&inv), vec![100, 90, 120]);
    let init = inv.init().unwrap();
    assert_eq!(init.ns_pid, Some(1));
    assert_eq!(init.ppid, 50);
    assert_eq!(init.comm, "proc100");
    assert_eq!(init.cmdline, vec!["/bin/proc100", "--flag"]);
}

/// Regression (issue 7, defect 3): a zombie in the container made every
/// `inspect` and `create` fail with `cannot read /proc/<pid>/mountinfo:
/// Invalid argument`. A zombie has no mounts, fds or memory left (the
/// fixture gives it none of those files, as the kernel gives none of their
/// contents); it is listed as a zombie with what it still has.
#[test]
fn zombie_child_is_inventoried_as_a_zombie() {
    let fx = Fixture::new();
    fx.process(100, 1, CONTAINER_NS, 1).process(101, 100, CONTAINER_NS, 2);
    // What the kernel still shows of an unreaped child.
    let dir = fx.root().join("102");
    std::fs::create_dir_all(dir.join("ns")).unwrap();
    symlink(format!("pid:[{CONTAINER_NS}]"), dir.join("ns/pid")).unwrap();
    fx.write(102, "stat", "102 (sh) Z 101 101 101 0 -1 4227084 67 0 0")
        .write(102, "status", "Name:\tsh\nState:\tZ (zombie)\nNSpid:\t102\t3\n")
        .write(102, "comm", "sh\n")
        .write(102, "cmdline", "");
    let inv = fx.collect(100);
    assert_eq!(pids(&inv), vec![100, 101, 102]);
    let z = &inv.processes[2];
    assert!(z.zombie);
    assert_eq!((z.ns_pid, z.ppid, z.comm.as_str()), (Some(3), 101, "sh"));
    assert!(z.fds.is_empty() && z.cmdline.is_empty());
    assert_eq!(z.memory, MemorySummary::default());
    assert!(!inv.processes[0].zombie && !inv.processes[1].zombie);
    // Old inventories without the field still read; live processes do not
    // gain it in JSON.
    let json = serde_json::to_value(&inv).unwrap();
    assert_eq!(json["processes"][2]["zombie"], true);
    assert!(json["processes"][0].get("zombie").is_none());
    let back: Inventory = serde_json::from_value(json).unwrap();
    assert_eq!(back, inv);
}

#[test]
fn shared_pid_namespace_falls_back_to_descendants() {
    let fx = Fixture::new();
    fx.own_pid_ns(HOST_NS)
        .process(1, 0, HOST_NS, 1)
        .process(10, 1, HOST_NS, 10)
        .process(11, 10, HOST_NS, 11)
        .process(12, 11, HOST_NS, 12)
        .process(13, 1, HOST_NS, 13);
    assert_eq!(pids(&fx.collect(10)), vec![10, 11, 12]);
}

#[test]
fn every_fd_kind_is_classified() {
    let fx = Fixture::new();
    let data = fx.root().join("data.txt");
    std::fs::write(&data, "x").unwrap();
    fx.process(100, 1, CONTAINER_NS, 1)
        .fd(100, 0, "/dev/pts/0", DEV_MNT)
        .fd(100, 1, "/dev/null", DEV_MNT)
        .fd(100, 2, "pipe:[5000]", 12)
        .fd(100, 3, "anon_inode:[eventfd]", 14)
        .fd(100, 4, "anon_inode:[eventpoll]", 14)
        .fd(100, 5, "anon_inode:[signalfd]", 14)
        .fd(100, 6, "anon_inode:[timerfd]", 14)
        .fd(100, 7, "anon_inode:inotify", 14)
        .fd(100, 8, "anon_inode:[io_uring]", 14)
        .fd(100, 9, "/memfd:cache (deleted)", 1)
        .fd(100, 10, data.to_str().unwrap(), ROOT_MNT)
        .fd(100, 11, fx.root().to_str().unwrap(), ROOT_MNT)
        .fd(100, 12, "socket:[6000]", 8)
        .fd(100, 13, "/dev/console", DEV_MNT);
    let inv = fx.collect(100);
    let kinds: Vec<FdKind> = inv.init().unwrap().fds.iter().map(|f| f.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            FdKind::Tty,
            FdKind::Device,
            FdKind::Pipe {
                inode: 5000,
                peer_outside: false
            },
            FdKind::EventFd,
            FdKind::Epoll,
            FdKind::SignalFd,
            FdKind::TimerFd,
            FdKind::Inotify,
            FdKind::AnonInode {
                name: "io_uring".into()
            },
            FdKind::Memfd { name: "cache".into() },
            FdKind::File,
            FdKind::Dir,
            FdKind::OtherSocket { inode: 6000 },
            FdKind::Tty,
        ]
    );
    assert_eq!(fd_of(&inv, 100, 10).target, data.to_str().unwrap());
    assert_eq!(fd_of(&inv, 100, 10).mnt_id, Some(ROOT_MNT));
}

#[test]
fn fd_on_a_host_mount_is_outside_the_mount_namespace() {
    let fx = Fixture::new();
    fx.process(100, 1, CONTAINER_NS, 1)
        .fd(100, 1, "/var/log/host.log", HOST_MNT)
        .fd(100, 2, "/app/inside.log", ROOT_MNT)
        .fd(100, 3, "/dev/pts/5", HOST_MNT)
        // Non-path kinds never count as outside, whatever their mount.
        .fd(100, 4, "/memfd:x (deleted)", HOST_MNT)
        .fd(100, 5, "pipe:[1]", HOST_MNT);
    let inv = fx.collect(100);
    let outside: Vec<bool> = inv.init().unwrap().fds.iter().map(|f| f.outside_mount_ns).collect();
    assert_eq!(outside, vec![true, false, true, false, false]);
}

#[test]
fn fd_locks_are_reported() {
    let fx = Fixture::new();
    fx.process(100, 1, CONTAINER_NS, 1).fd_with_info(
        100,
        3,
        "/data/db.lock",
        "pos:\t0\nmnt_id:\t300\nlock:\t1: POSIX  ADVISORY  WRITE 100 00:32:77 0 EOF\n",
    );
    let inv = fx.collect(100);
    assert_eq!(
        fd_of(&inv, 100, 3).locks,
        vec!["1: POSIX  ADVISORY  WRITE 100 00:32:77 0 EOF"]
    );
}

#[test]
fn pipe_held_by_a_process_outside_has_its_peer_outside() {
    let fx = Fixture::new();
    fx.process(100, 40, CONTAINER_NS, 1)
        .process(101, 100, CONTAINER_NS, 2)
        .process(40, 1, HOST_NS, 40)
        .fd(100, 1, "pipe:[7001]", 12) // other end held by the shim (40)
        .fd(100, 2, "pipe:[7002]", 12) // other end held by 101, inside
        .fd(101, 0, "pipe:[7002]", 12)
        .fd(40, 5, "pipe:[7001]", 12);
    let inv = fx.collect(100);
    assert_eq!(
        fd_of(&inv, 100, 1).kind,
        FdKind::Pipe {
            inode: 7001,
            peer_outside: true
        }
    );
    assert_eq!(
        fd_of(&inv, 100, 2).kind,
        FdKind::Pipe {
            inode: 7002,
            peer_outside: false
        }
    );
    assert_eq!(
        fd_of(&inv, 101, 0).kind,
        FdKind::Pipe {
            inode: 7002,
            peer_outside: false
        }
    );
}

#[cfg(target_endian = "little")]
#[test]
fn sockets_are_resolved_through_the_process_net_tables() {
    let fx = Fixture::new();
    fx.process(100, 1, CONTAINER_NS, 1)
        .write(
            100,
            "net/tcp",
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             0: 0100007F:1F90 0200A8C0:D431 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1\n",
        )
        .write(
            100,
            "net/tcp6",
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  0  0 4243 1\n",
        )
        .write(
            100,
            "net/unix",
            "Num       RefCount Protocol Flags    Type St Inode Path\n\
             0000000000000000: 00000003 00000000 00000000 0001 03 4300 /run/app.sock\n\
             0000000000000000: 00000002 00000000 00010000 0001 01 4301 /run/listen.sock\n",
        )
        .fd(100, 3, "socket:[4242]", 8)
        .fd(100, 4, "socket:[4243]", 8)
        .fd(100, 5, "socket:[4300]", 8)
        .fd(100, 6, "socket:[4301]", 8);
    let inv = fx.collect(100);
    assert_eq!(
        fd_of(&inv, 100, 3).kind,
        FdKind::TcpSocket {
            inode: 4242,
            state: "ESTABLISHED".into(),
            local: "127.0.0.1:8080".into(),
            remote: "192.168.0.2:54321".into(),
        }
    );
    assert!(matches!(
        &fd_of(&inv, 100, 4).kind,
        FdKind::TcpSocket { state, local, .. } if state == "LISTEN" && local == "[::1]:80"
    ));
    // Connected, but a fixture tree has no netns to ask the kernel about.
    assert_eq!(
        fd_of(&inv, 100, 5).kind,
        FdKind::UnixSocket {
            inode: 4300,
            path: Some("/run/app.sock".into()),
            connected: true,
            peer_outside: None
        }
    );
    assert_eq!(
        fd_of(&inv, 100, 6).kind,
        FdKind::UnixSocket {
            inode: 4301,
            path: Some("/run/listen.sock".into()),
            connected: false,
            peer_outside: Some(false)
        }
    );
}

#[test]
fn memory_comes_from_smaps_rollup_and_maps() {
    let fx = Fixture::new();
    fx.process(100, 1, CONTAINER_NS, 1)
        .write(
            100,
            "smaps_rollup",
            "00-ff ---p 0 00:00 0 [rollup]\nRss:  400 kB\nAnonymous:  100 kB\n",
        )
        .write(
            100,
            "maps",
            "00400000-00401000 r-xp 00000000 08:01 12 /bin/app\n00600000-00700000 rw-p 00000000 00:00 0 [heap]\n",
        );
    let inv = fx.collect(100);
    assert_eq!(
        inv.init().unwrap().memory,
        MemorySummary {
            rss: 400 * 1024,
            anon_rss: 100 * 1024,
            anon_mapped: 0x100000,
            file_mapped: 0x1000,
            map_count: 2
        }
    );
    assert_eq!(inv.estimated_image_bytes(), 100 * 1024 + 256 * 1024);
}

#[test]
fn a_process_that_vanishes_mid_scan_is_skipped() {
    let fx = Fixture::new();
    fx.process(100, 1, CONTAINER_NS, 1).process(101, 100, CONTAINER_NS, 2);
    // 101 exited after its ns link was read: its other files are gone.
    std::fs::remove_file(fx.root().join("101/stat")).unwrap();
    assert_eq!(pids(&fx.collect(100)), vec![100]);
}

#[test]
fn an_fd_closed_mid_scan_is_skipped() {
    let fx = Fixture::new();
    fx.process(100, 1, CONTAINER_NS, 1)
        .fd(100, 1, "/dev/null", DEV_MNT)
        .fd(100, 2, "/dev/null", DEV_MNT);
    std::fs::remove_file(fx.root().join("100/fdinfo/2")).unwrap();
    let fds: Vec<i32> = fx.collect(100).init().unwrap().fds.iter().map(|f| f.fd).collect();
    assert_eq!(fds, vec![1]);
}

#[test]
fn missing_init_is_no_such_process() {
    let fx = Fixture::new();
    fx.process(100, 1, CONTAINER_NS, 1);
    let err = collect(&ProcRoot::new(fx.root()), 999).unwrap_err();
    assert!(matches!(err, InventoryError::NoSuchProcess { pid: 999, .. }), "{err:?}");
}

#[test]
fn init_vanishing_mid_scan_is_no_such_process() {
    let fx = Fixture::new();
    fx.process(100, 1, CONTAINER_NS, 1);
    std::fs::remove_file(fx.root().join("100/status")).unwrap();
    let err = collect(&ProcRoot::new(fx.root()), 100).unwrap_err();
    assert!(matches!(err, InventoryError::NoSuchProcess { pid: 100, .. }), "{err:?}");
}

#[test]
fn malformed_stat_is_a_parse_error_naming_the_file() {
    let fx = Fixture::new();
    fx.process(100, 1, CONTAINER_NS, 1).write(100, "stat", "nonsense");
    let err = collect(&ProcRoot::new(fx.root()), 100).unwrap_err();
    assert!(
        matches!(&err, InventoryError::Proc(ProcError::Parse { path, .. }) if path.ends_with("100/stat")),
        "{err:?}"
    );
}

/// The real `/proc`: this test process shares ckpt's pid namespace, so the
/// descendants rule applies and the process itself comes first.
#[test]
fn real_proc_lists_this_process_and_its_fds() {
    use std::os::fd::AsRawFd;
    let file = tempfile::tempfile().unwrap();
    let (left, right) = std::os::unix::net::UnixStream::pair().unwrap();
    let me = std::process::id() as i32;

    let inv = collect(&ProcRoot::host(), me).unwrap();

    let init = inv.init().unwrap();
    assert_eq!(init.pid, me);
    assert!(init.memory.rss > 0 && init.memory.map_count > 0, "{:?}", init.memory);
    let fd = |n: i32| {
        init.fds
            .iter()
            .find(|f| f.fd == n)
            .unwrap_or_else(|| panic!("fd {n} missing"))
    };

    let file_fd = fd(file.as_raw_fd());
    assert_eq!(file_fd.kind, FdKind::File);
    assert!(file_fd.mnt_id.is_some());
    assert!(!file_fd.outside_mount_ns, "{file_fd:?}");

    // Both ends are ours, so neither peer is outside. sock_diag in one's
    // own network namespace needs no privilege, so the answer is known.
    for sock in [&left, &right] {
        match &fd(sock.as_raw_fd()).kind {
            FdKind::UnixSocket {
                connected,
                peer_outside,
                ..
            } => {
                assert!(*connected);
                assert_eq!(*peer_outside, Some(false));
            }
            other => panic!("expected a unix socket, got {other:?}"),
        }
    }
}

/// The real `/proc` again, with a child as the "container": its stdout is
/// a pipe and its stdin a unix socket whose other ends this test process
/// (outside the child's process tree) holds.
#[test]
fn real_proc_sees_peers_held_outside_the_process_tree() {
    use std::os::fd::OwnedFd;
    use std::process::{Command, Stdio};
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut child = Command::new("sleep")
        .arg("30")
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // `spawn` returns once the child has exec'ed, so its fds are in place.
    let result = collect(&ProcRoot::host(), child.id() as i32);
    child.kill().unwrap();
    child.wait().unwrap();
    drop(ours);

    let inv = result.unwrap();
    assert_eq!(pids(&inv), vec![child.id() as i32]);
    let init = inv.init().unwrap();
    let stdin = &init.fds.iter().find(|f| f.fd == 0).unwrap().kind;
    let stdout = &init.fds.iter().find(|f| f.fd == 1).unwrap().kind;
    assert!(matches!(stdout, FdKind::Pipe { peer_outside: true, .. }), "{stdout:?}");
    // sock_diag in one's own network namespace needs no privilege.
    assert!(
        matches!(
            stdin,
            FdKind::UnixSocket {
                connected: true,
                peer_outside: Some(true),
                ..
            }
        ),
        "{stdin:?}"
    );
}

/// Regression: an fd that a shell rebinds while the inventory reads it
/// (`echo $n >/tmp/count` points fd 1 at the file, then back at the pipe)
/// was reported as the file with the pipe's `mnt_id`, and so as "a file
/// outside the container's mounts", refusing a container that CRIU dumps
/// fine. A thread here flips one fd between a file and a pipe as fast as
/// it can while the fds of this process are read over and over: every time
/// the fd reads as the file, its `mnt_id` must be the file's.
#[test]
fn fd_rebound_mid_read_is_not_paired_with_another_files_mount() {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    const FLIPPED: i32 = 900;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("count");
    let file = std::fs::File::create(&path).unwrap();
    let (pipe_read, _pipe_write) = nix::unistd::pipe().unwrap();
    let me = ProcRoot::host().own();
    let file_mnt = fds::parse_fdinfo_mnt_id(&me.fdinfo(file.as_raw_fd()).unwrap().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let stop = Arc::clone(&stop);
        let (f, p) = (file.as_raw_fd(), pipe_read.as_raw_fd());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: dup2 onto a number this test owns; both sources
                // stay open until the thread is joined.
                unsafe {
                    libc::dup2(f, FLIPPED);
                    libc::dup2(p, FLIPPED);
                }
            }
            // SAFETY: as above; the fd is this test's own.
            unsafe { libc::close(FLIPPED) };
        })
    };
    let mount_ids = std::collections::HashSet::new();
    let (mut as_file, mut mismatched) = (0, Vec::new());
    for _ in 0..3000 {
        let fds = fds::read_fds(&me, &mount_ids, &me).unwrap();
        if let Some(f) = fds.iter().find(|f| f.fd == FLIPPED && f.kind == FdKind::File) {
            as_file += 1;
            if f.mnt_id != file_mnt {
                mismatched.push(f.mnt_id);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
    assert!(as_file > 0, "test bug: the flipped fd never read as the file");
    assert!(
        mismatched.is_empty(),
        "{} of {as_file} reads paired the file with another mount: {:?}",
        mismatched.len(),
        &mismatched[..mismatched.len().min(5)]
    );
}
