//! Table tests of the planner: each refusal rule with its option set/unset,
//! and the external-mount naming rules.
use super::*;
use crate::inventory::{FdInfo, MemorySummary};
use crate::mountinfo;
use crate::spec::{SpecMount, SpecNamespace};

fn fd(n: i32, target: &str, kind: FdKind) -> FdInfo {
    FdInfo {
        fd: n,
        target: target.into(),
        kind,
        mnt_id: None,
        outside_mount_ns: false,
        locks: vec![],
    }
}

fn inv(fds: Vec<FdInfo>) -> Inventory {
    Inventory {
        processes: vec![ProcessInfo {
            pid: 100,
            ns_pid: Some(1),
            ppid: 1,
            comm: "app".into(),
            cmdline: vec!["app".into()],
            fds,
            memory: MemorySummary {
                anon_rss: 10 << 20,
                ..Default::default()
            },
            zombie: false,
        }],
    }
}

fn host() -> HostFacts {
    HostFacts {
        init_pid: 100,
        rootfs: "/b/rootfs".into(),
        freezer: Some(FreezerDir {
            dir: "/sys/fs/cgroup/freezer/c".into(),
            version: crate::cgroups::CgroupVersion::V1,
        }),
        store_root: "/var/lib/ckpt".into(),
        // crun naming adds no default devices, keeping the lists short.
        naming: ExternalNaming::Crun,
        ..Default::default()
    }
}

fn tcp(state: &str) -> FdKind {
    FdKind::TcpSocket {
        inode: 7,
        state: state.into(),
        local: "10.0.0.2:5000".into(),
        remote: "10.0.0.1:40000".into(),
    }
}

fn unix(peer_outside: Option<bool>) -> FdKind {
    FdKind::UnixSocket {
        inode: 8,
        path: None,
        connected: true,
        peer_outside,
    }
}

#[test]
fn clean_container_is_planned() {
    let i = inv(vec![
        fd(0, "/dev/null", FdKind::Device),
        fd(
            1,
            "pipe:[5]",
            FdKind::Pipe {
                inode: 5,
                peer_outside: true,
            },
        ),
    ]);
    let plan = dump_plan(&SpecFacts::default(), &i, &host(), &DumpOptions::default()).unwrap();
    assert_eq!(plan.pid, 100);
    assert_eq!(plan.root, PathBuf::from("/b/rootfs"));
    assert_eq!(plan.freezer.dir, PathBuf::from("/sys/fs/cgroup/freezer/c"));
    // init's stdio pipe is handled by descriptors.json: no warning.
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn terminal_in_spec_is_refused() {
    let spec = SpecFacts {
        terminal: true,
        ..Default::default()
    };
    let r = dump_plan(&spec, &inv(vec![]), &host(), &DumpOptions::default()).unwrap_err();
    assert_eq!(r.problems, vec![Problem::TerminalInSpec]);
    assert!(r.to_string().contains("without a terminal"));
}

#[test]
fn tty_fd_is_refused_and_named() {
    let r = dump_plan(
        &SpecFacts::default(),
        &inv(vec![fd(0, "/dev/pts/0", FdKind::Tty)]),
        &host(),
        &DumpOptions::default(),
    )
    .unwrap_err();
    let msg = r.to_string();
    assert!(msg.contains("process 100 (app) fd 0 → /dev/pts/0"), "{msg}");
    assert!(msg.contains("TTY"), "{msg}");
}

#[test]
fn host_file_outside_mounts_is_refused() {
    let mut f = fd(1, "/tmp/host.log", FdKind::File);
    f.outside_mount_ns = true;
    let r = dump_plan(&SpecFacts::default(), &inv(vec![f]), &host(), &DumpOptions::default()).unwrap_err();
    let msg = r.to_string();
    assert!(msg.contains("fd 1 → /tmp/host.log"), "{msg}");
    assert!(msg.contains("Can't lookup mount"), "{msg}");
}

#[test]
fn file_inside_container_is_fine() {
    let i = inv(vec![fd(3, "/data/x", FdKind::File)]);
    assert!(dump_plan(&SpecFacts::default(), &i, &host(), &DumpOptions::default()).is_ok());
}

#[test]
fn established_tcp_needs_the_option() {
    let i = inv(vec![fd(4, "socket:[7]", tcp("ESTABLISHED"))]);
    let r = dump_plan(&SpecFacts::default(), &i, &host(), &DumpOptions::default()).unwrap_err();
    assert!(r.to_string().contains("--tcp-established"));
    let opts = DumpOptions {
        tcp_established: true,
        ..Default::default()
    };
    assert!(dump_plan(&SpecFacts::default(), &i, &host(), &opts).is_ok());
}

#[test]
fn listening_tcp_is_fine() {
    let i = inv(vec![fd(4, "socket:[7]", tcp("LISTEN"))]);
    assert!(dump_plan(&SpecFacts::default(), &i, &host(), &DumpOptions::default()).is_ok());
}

#[test]
fn outside_unix_peer_needs_the_option() {
    let i = inv(vec![fd(5, "socket:[8]", unix(Some(true)))]);
    let r = dump_plan(&SpecFacts::default(), &i, &host(), &DumpOptions::default()).unwrap_err();
    assert!(r.to_string().contains("--ext-unix-sk"));
    let opts = DumpOptions {
        ext_unix_sk: true,
        ..Default::default()
    };
    assert!(dump_plan(&SpecFacts::default(), &i, &host(), &opts).is_ok());
}

#[test]
fn inside_or_unknown_unix_peer_is_not_refused() {
    let i = inv(vec![
        fd(5, "socket:[8]", unix(Some(false))),
        fd(6, "socket:[9]", unix(None)),
    ]);
    let plan = dump_plan(&SpecFacts::default(), &i, &host(), &DumpOptions::default()).unwrap();
    assert_eq!(plan.warnings.len(), 1, "unknown peer warns: {:?}", plan.warnings);
}

#[test]
fn file_locks_need_the_option() {
    let mut f = fd(3, "/data/db.lock", FdKind::File);
    f.locks = vec!["1: POSIX  ADVISORY  WRITE 100 fd:00:12 0 EOF".into()];
    let i = inv(vec![f]);
    let r = dump_plan(&SpecFacts::default(), &i, &host(), &DumpOptions::default()).unwrap_err();
    assert!(r.to_string().contains("--file-locks"));
    let opts = DumpOptions {
        file_locks: true,
        ..Default::default()
    };
    assert!(dump_plan(&SpecFacts::default(), &i, &host(), &opts).is_ok());
}

#[test]
fn too_little_space_is_refused() {
    let mut h = host();
    h.store_free_bytes = Some(1 << 20);
    let r = dump_plan(&SpecFacts::default(), &inv(vec![]), &h, &DumpOptions::default()).unwrap_err();
    assert!(matches!(r.problems[0], Problem::NoSpace { .. }));
    assert!(r.to_string().contains("/var/lib/ckpt"));
    h.store_free_bytes = Some(1 << 40);
    assert!(dump_plan(&SpecFacts::default(), &inv(vec![]), &h, &DumpOptions::default()).is_ok());
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let spec = SpecFacts {
        terminal: true,
        ..Default::default()
    };
    let i = inv(vec![
        fd(0, "/dev/pts/0", FdKind::Tty),
        fd(4, "socket:[7]", tcp("ESTABLISHED")),
    ]);
    let r = dump_plan(&spec, &i, &host(), &DumpOptions::default()).unwrap_err();
    assert_eq!(r.problems.len(), 3);
}

#[test]
fn missing_freezer_is_refused() {
    let mut h = host();
    h.freezer = None;
    let r = dump_plan(&SpecFacts::default(), &inv(vec![]), &h, &DumpOptions::default()).unwrap_err();
    assert_eq!(r.problems, vec![Problem::NoFreezer]);
}

fn mount(dest: &str, typ: &str, opts: &[&str]) -> SpecMount {
    SpecMount {
        destination: dest.into(),
        typ: typ.into(),
        source: Some("/src".into()),
        options: opts.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn bind_mounts_are_external_by_destination() {
    let spec = SpecFacts {
        mounts: vec![
            mount("/etc/hosts", "bind", &["rbind"]),
            mount("/data/../srv/./x", "none", &["rbind", "rw"]),
            mount("/dev", "tmpfs", &[]),
        ],
        ..Default::default()
    };
    let ext = externals(&spec, &host());
    assert_eq!(ext, vec!["mnt[/etc/hosts]:/etc/hosts", "mnt[/srv/x]:/srv/x"]);
}

#[test]
fn cgroup_v1_hierarchies_are_external_without_cgroupns() {
    let mi = "72 71 0:29 /c /sys/fs/cgroup/cpu ro - cgroup cgroup rw,cpu
77 71 0:34 /c /sys/fs/cgroup/freezer ro - cgroup cgroup rw,freezer
71 70 0:45 / /sys/fs/cgroup rw - tmpfs tmpfs rw";
    let mut h = host();
    h.container_mounts = mountinfo::parse(mi);
    let mut spec = SpecFacts {
        mounts: vec![mount("/sys/fs/cgroup", "cgroup", &["ro"])],
        ..Default::default()
    };
    assert_eq!(
        externals(&spec, &h),
        vec![
            "mnt[/sys/fs/cgroup/cpu]:/sys/fs/cgroup/cpu",
            "mnt[/sys/fs/cgroup/freezer]:/sys/fs/cgroup/freezer"
        ]
    );
    spec.namespaces.push(SpecNamespace {
        typ: "cgroup".into(),
        path: None,
    });
    assert!(
        externals(&spec, &h).is_empty(),
        "a cgroupns makes the cgroup mount a real mount"
    );
}

#[test]
fn crun_masked_directories_bound_to_the_shared_empty_dir_are_external() {
    // crun 1.28: /sys/firmware is a bind of <root>/.empty-directory;
    // crun 1.21: /proc/acpi is a tmpfs of its own, which CRIU dumps.
    let mi = "114 100 0:41 /crun/.empty-directory /sys/firmware ro - tmpfs tmpfs rw
115 95 0:50 / /proc/acpi ro - tmpfs tmpfs ro";
    let mut h = host();
    h.container_mounts = mountinfo::parse(mi);
    h.runtime_root = "/run/crun".into();
    let spec = SpecFacts {
        masked_paths: vec!["/sys/firmware".into(), "/proc/acpi".into(), "/proc/kcore".into()],
        ..Default::default()
    };
    assert_eq!(
        externals(&spec, &h),
        vec!["mnt[/sys/firmware]:/run/crun/.empty-directory"]
    );
    h.naming = ExternalNaming::Runc;
    assert!(
        !externals(&spec, &h).iter().any(|e| e.starts_with("mnt[/sys/firmware]")),
        "runc masks directories with tmpfs"
    );
}

#[test]
fn masked_files_devices_and_joined_namespaces() {
    let mut h = host();
    h.masked_files = vec!["/proc/keys".into()];
    h.joined_netns_inode = Some(4026532000);
    h.joined_pidns_inode = Some(4026532001);
    h.naming = ExternalNaming::Runc;
    let spec = SpecFacts {
        device_paths: vec!["/dev/fuse".into(), "/dev/null".into()],
        ..Default::default()
    };
    let ext = externals(&spec, &h);
    assert!(ext.contains(&"mnt[/proc/keys]:/dev/null".to_string()));
    assert!(ext.contains(&"mnt[/dev/fuse]:/dev/fuse".to_string()));
    assert_eq!(
        ext.iter().filter(|e| e.starts_with("mnt[/dev/null]")).count(),
        1,
        "no duplicates"
    );
    assert!(ext.contains(&"mnt[/dev/urandom]:/dev/urandom".to_string()));
    assert!(ext.contains(&"net[4026532000]:extRootNetNS".to_string()));
    assert!(ext.contains(&"pid[4026532001]:extRootPidNS".to_string()));
    h.naming = ExternalNaming::Crun;
    let ext = externals(&spec, &h);
    assert!(
        !ext.contains(&"mnt[/dev/urandom]:/dev/urandom".to_string()),
        "crun adds no default devices"
    );
    assert!(
        ext.contains(&"mnt[/proc/keys]:/proc/keys".to_string()),
        "crun names masked files by path"
    );
}

#[test]
fn clean_never_escapes_root() {
    assert_eq!(clean(Path::new("/../../etc")), PathBuf::from("/etc"));
    assert_eq!(clean(Path::new("/a/./b/../c/")), PathBuf::from("/a/c"));
}

#[test]
fn human_bytes_is_readable() {
    assert_eq!(human_bytes(512), "512 B");
    assert_eq!(human_bytes(1536 * 1024 * 1024), "1.5 GiB");
}

#[test]
fn children_sharing_init_stdio_pipes_do_not_warn_but_other_outside_pipes_do() {
    let mut i = inv(vec![fd(
        1,
        "pipe:[5]",
        FdKind::Pipe {
            inode: 5,
            peer_outside: true,
        },
    )]);
    let mut child = i.processes[0].clone();
    child.pid = 101;
    child.fds = vec![
        fd(
            1,
            "pipe:[5]",
            FdKind::Pipe {
                inode: 5,
                peer_outside: true,
            },
        ),
        fd(
            7,
            "pipe:[6]",
            FdKind::Pipe {
                inode: 6,
                peer_outside: true,
            },
        ),
    ];
    i.processes.push(child);
    let w = warnings(&i);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("pipe:[6]"));
}

#[test]
fn criu_always_leaves_running_and_the_plan_says_what_ckpt_does_after() {
    // (--leave-running, what becomes of the container)
    for (leave_running, after) in [(true, AfterDump::Resume), (false, AfterDump::Stop)] {
        let opts = DumpOptions {
            leave_running,
            file_locks: true,
            ..Default::default()
        };
        let plan = dump_plan(&SpecFacts::default(), &inv(vec![]), &host(), &opts).unwrap();
        assert_eq!(plan.after, after, "leave_running={leave_running}");
        assert_eq!(plan.options, opts, "ckpt.json records what the user asked");
        assert!(plan.criu.leave_running, "CRIU never kills the tree itself");
        assert!(plan.criu.file_locks, "the other options go to CRIU as asked");
    }
}

#[test]
fn recorded_stdio_is_what_the_runtime_kept_else_what_the_fds_show() {
    let live = vec!["/dev/null".to_string(), "pipe:[9]".into(), "pipe:[9]".into()];
    let recorded = vec!["/dev/null".to_string(), "pipe:[5]".into(), "pipe:[6]".into()];
    // (recorded by the runtime, read from /proc, what descriptors.json gets)
    let table = [
        (vec![], live.clone(), live.clone()),
        (recorded.clone(), live.clone(), recorded.clone()),
        (recorded.clone(), vec![], recorded.clone()),
    ];
    for (recorded_stdio, live_stdio, want) in table {
        let h = HostFacts {
            recorded_stdio,
            live_stdio,
            ..host()
        };
        let plan = dump_plan(&SpecFacts::default(), &inv(vec![]), &h, &DumpOptions::default()).unwrap();
        assert_eq!(plan.descriptors, want);
    }
}

#[test]
fn the_plan_hands_criu_the_hosts_cgroup_selection() {
    let selections = [
        CgroupDump::All,
        CgroupDump::Only(vec!["unified".into()]),
        CgroupDump::Nothing,
    ];
    for cgroup_dump in selections {
        let h = HostFacts {
            cgroup_dump: cgroup_dump.clone(),
            ..host()
        };
        let plan = dump_plan(&SpecFacts::default(), &inv(vec![]), &h, &DumpOptions::default()).unwrap();
        assert_eq!(plan.cgroup_dump, cgroup_dump);
    }
}
