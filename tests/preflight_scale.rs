//! ckpt's own preflight at scale (issue 12): `inventory::collect` and
//! `plan::dump_plan` over a fixture /proc tree of 1000 processes holding
//! 10 000 fds, built by a generator here. No root needed.
//!
//! The test asserts what the preflight found (every process, every fd,
//! each kind classified, the pipes' peers inside the container) and prints
//! how long each phase took. It does not assert a time: timings on a
//! shared machine are for the benchmark (docs/perf-design.md), and a
//! fixture on tmpfs or ext4 reads differently from the kernel's /proc.
//!
//!     cargo test --release --test preflight_scale -- --nocapture

use ckpt::inventory::{self, FdKind};
use ckpt::plan::{self, DumpOptions, ExternalNaming, HostFacts};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// CPU time of this thread: on a loaded 2-core machine the wall time of
/// `collect` is mostly waiting for a core.
fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime only writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

const PROCESSES: i32 = 1000;
const FDS_PER_PROCESS: i32 = 10;
const INIT: i32 = 5000;
const PID_NS: u64 = 4026532500;
const NET_NS: u64 = 4026532600;
const ROOT_MNT: u64 = 300;

/// Mount lines like a runc container's (overlay root, /proc, /dev, the
/// v1 cgroup hierarchies, masked files): 30 mounts.
fn mountinfo() -> String {
    let mut m = format!("{ROOT_MNT} 200 0:50 / / rw,relatime - overlay overlay rw\n");
    m += "301 300 0:51 / /proc rw,nosuid,nodev,noexec - proc proc rw\n";
    m += "302 300 0:52 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755\n";
    m += "303 302 0:53 / /dev/pts rw,nosuid,noexec - devpts devpts rw,gid=5,mode=620,ptmxmode=666\n";
    m += "304 302 0:54 / /dev/shm rw,nosuid,nodev,noexec - tmpfs shm rw,size=65536k\n";
    m += "305 302 0:55 / /dev/mqueue rw,nosuid,nodev,noexec - mqueue mqueue rw\n";
    m += "306 300 0:56 / /sys ro,nosuid,nodev,noexec - sysfs sysfs ro\n";
    m += "307 306 0:57 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n";
    for (i, h) in [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd",
    ]
    .iter()
    .enumerate()
    {
        m += &format!(
            "{} 307 0:{} /ctr /sys/fs/cgroup/{h} ro - cgroup cgroup ro,{h}\n",
            310 + i,
            60 + i
        );
    }
    for (i, p) in ["/proc/keys", "/proc/timer_list", "/proc/kcore", "/proc/sched_debug"]
        .iter()
        .enumerate()
    {
        m += &format!("{} 301 0:5 /null {p} rw,nosuid - devtmpfs udev rw\n", 330 + i);
    }
    for (i, p) in ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        .iter()
        .enumerate()
    {
        m += &format!("{} 301 0:51 {p} {p} ro,relatime - proc proc rw\n", 340 + i);
    }
    m += "350 300 8:1 /srv/data /data rw,relatime - ext4 /dev/vda rw\n";
    m += "351 300 8:1 /etc/hosts /etc/hosts rw,relatime - ext4 /dev/vda rw\n";
    m += "352 300 8:1 /etc/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda rw\n";
    m
}

/// Writes the tree: `PROCESSES` processes (init first) in one pid and one
/// network namespace, each with `FDS_PER_PROCESS` fds: /dev/null, the
/// stdio pipe init shares with every child, a pipe of its own (both ends),
/// a connected unix socket, a TCP socket, a UDP socket, and two files on
/// the /data bind.
fn build(root: &Path) {
    let mountinfo = mountinfo();
    let mut unix = String::from("Num       RefCount Protocol Flags    Type St Inode Path\n");
    let mut tcp = String::from(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
    );
    let mut udp = tcp.clone();
    for k in 0..PROCESSES {
        let pid = INIT + k;
        let ppid = if k == 0 { 1 } else { INIT };
        let dir = root.join(pid.to_string());
        for sub in ["ns", "fd", "fdinfo"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        // One network namespace: every process shows init's tables (the
        // kernel's per-pid `net` is a view of the namespace's).
        if k == 0 {
            std::fs::create_dir(dir.join("net")).unwrap();
        } else {
            symlink(format!("../{INIT}/net"), dir.join("net")).unwrap();
        }
        symlink(format!("pid:[{PID_NS}]"), dir.join("ns/pid")).unwrap();
        symlink(format!("net:[{NET_NS}]"), dir.join("ns/net")).unwrap();
        let comm = if k == 0 { "sh".to_string() } else { "sleep".to_string() };
        let w = |f: &str, t: &str| std::fs::write(dir.join(f), t).unwrap();
        w("stat", &format!("{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 0 0"));
        w(
            "status",
            &format!(
                "Name:\t{comm}\nState:\tS (sleeping)\nPid:\t{pid}\nNSpid:\t{pid}\t{}\n",
                k + 1
            ),
        );
        w("comm", &format!("{comm}\n"));
        w("cmdline", &format!("/bin/{comm}\01000\0"));
        w("mountinfo", &mountinfo);
        w(
            "smaps_rollup",
            "00400000-7ffd0000 ---p 00000000 00:00 0 [rollup]\nRss:  120 kB\nAnonymous:  40 kB\n",
        );
        w(
            "maps",
            "00400000-00500000 r-xp 00000000 00:50 12 /bin/busybox\n7ffc0000-7ffd0000 rw-p 00000000 00:00 0 [stack]\n",
        );
        let base = 1_000_000 + u64::try_from(k).unwrap() * 10;
        let fds: [(String, u64); FDS_PER_PROCESS as usize] = [
            ("/dev/null".into(), 302),
            ("pipe:[900000]".into(), 0),
            (format!("pipe:[{}]", base), 0),
            (format!("pipe:[{}]", base), 0),
            (format!("socket:[{}]", base + 1), 0),
            (format!("socket:[{}]", base + 2), 0),
            (format!("socket:[{}]", base + 3), 0),
            (format!("/data/log-{k}.txt"), 350),
            ("/data/shared.db".into(), 350),
            ("/bin/busybox".into(), ROOT_MNT),
        ];
        for (fd, (target, mnt)) in fds.iter().enumerate() {
            symlink(target, dir.join("fd").join(fd.to_string())).unwrap();
            let flags = if fd == 0 { "0100000" } else { "02" };
            std::fs::write(
                dir.join("fdinfo").join(fd.to_string()),
                format!("pos:\t0\nflags:\t{flags}\nmnt_id:\t{mnt}\n"),
            )
            .unwrap();
        }
        unix += &format!(
            "0000000000000000: 00000003 00000000 00000000 0001 03 {} /run/app-{k}.sock\n",
            base + 1
        );
        tcp += &format!(
            "{k:4}: 0100007F:{:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 {}\n",
            8000 + k,
            base + 2
        );
        udp += &format!(
            "{k:4}: 0100007F:{:04X} 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 {}\n",
            20000 + k,
            base + 3
        );
    }
    let net = root.join(INIT.to_string()).join("net");
    std::fs::write(net.join("unix"), &unix).unwrap();
    std::fs::write(net.join("tcp"), &tcp).unwrap();
    std::fs::write(net.join("udp"), &udp).unwrap();
}

fn host_facts(root: &Path) -> HostFacts {
    HostFacts {
        init_pid: INIT,
        rootfs: PathBuf::from("/srv/ctr/rootfs"),
        container_mounts: ckpt::mountinfo::parse(&mountinfo()),
        masked_files: vec!["/proc/keys".into(), "/proc/timer_list".into()],
        runtime_root: PathBuf::from("/run/runc"),
        joined_netns_inode: None,
        joined_pidns_inode: None,
        freezer: Some(ckpt::cgroups::FreezerDir {
            dir: PathBuf::from("/sys/fs/cgroup/freezer/ctr"),
            version: ckpt::cgroups::CgroupVersion::V1,
        }),
        cgroup_dump: ckpt::cgroups::CgroupDump::All,
        recorded_stdio: vec![],
        live_stdio: vec![],
        store_free_bytes: Some(1 << 40),
        store_root: root.to_path_buf(),
        naming: ExternalNaming::Runc,
    }
}

const SPEC: &str = r#"{
  "ociVersion": "1.0.2",
  "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["/bin/sh", "-c", "spawn"], "cwd": "/"},
  "root": {"path": "rootfs"},
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"},
    {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind"]},
    {"destination": "/etc/hosts", "type": "bind", "source": "/etc/hosts", "options": ["rbind"]},
    {"destination": "/etc/resolv.conf", "type": "bind", "source": "/etc/resolv.conf", "options": ["rbind"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
    "maskedPaths": ["/proc/keys", "/proc/timer_list", "/proc/kcore", "/proc/sched_debug"]
  }
}"#;

#[test]
fn preflight_of_1000_processes_and_10000_fds() {
    // In memory when possible, like the kernel's /proc (and 30 000 small
    // files are slow to create and remove on a busy disk).
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let t = Instant::now();
    build(dir.path());
    let built = t.elapsed();

    let (t, cpu) = (Instant::now(), thread_cpu());
    let inv = inventory::collect(&ckpt::procfs::ProcRoot::new(dir.path()), INIT).unwrap();
    let (collected, collected_cpu) = (t.elapsed(), thread_cpu() - cpu);
    let spec = ckpt::spec::parse(Path::new("config.json"), SPEC).unwrap();
    let host = host_facts(dir.path());
    let t = Instant::now();
    let verdict = plan::dump_plan(&spec.facts, &inv, &host, &DumpOptions::default());
    let planned = t.elapsed();
    let t = Instant::now();
    let json = serde_json::to_string_pretty(&inv).unwrap();
    let serialised = t.elapsed();

    assert_eq!(inv.processes.len(), PROCESSES as usize);
    assert_eq!(inv.processes[0].pid, INIT);
    let fds: Vec<_> = inv.processes.iter().flat_map(|p| &p.fds).collect();
    assert_eq!(fds.len(), (PROCESSES * FDS_PER_PROCESS) as usize);
    let count = |f: fn(&FdKind) -> bool| fds.iter().filter(|fd| f(&fd.kind)).count();
    let per = PROCESSES as usize;
    assert_eq!(
        count(|k| matches!(
            k,
            FdKind::Pipe {
                peer_outside: false,
                ..
            }
        )),
        3 * per
    );
    assert_eq!(count(|k| matches!(k, FdKind::UnixSocket { .. })), per);
    assert_eq!(count(|k| matches!(k, FdKind::TcpSocket { .. })), per);
    assert_eq!(count(|k| matches!(k, FdKind::UdpSocket { .. })), per);
    // Established TCP and listening unix sockets are what CRIU needs
    // options for; the plan must decide, not fail, on this many.
    match &verdict {
        Ok(p) => assert_eq!(p.pid, INIT),
        Err(refusal) => assert!(!refusal.to_string().is_empty()),
    }
    println!(
        "fixture of {PROCESSES} processes, {} fds: built in {:.3} s; collect {:.1} ms ({:.1} ms CPU), dump_plan {:.1} ms \
         ({}), inventory.json {:.1} ms ({} KiB)",
        fds.len(),
        built.as_secs_f64(),
        collected.as_secs_f64() * 1e3,
        collected_cpu.as_secs_f64() * 1e3,
        planned.as_secs_f64() * 1e3,
        if verdict.is_ok() { "a plan" } else { "a refusal" },
        serialised.as_secs_f64() * 1e3,
        json.len() >> 10
    );
}
