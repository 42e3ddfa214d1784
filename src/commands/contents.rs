//! `ckpt inspect CONTAINER CHECKPOINT`: what a checkpoint holds, without
//! restoring it: its processes with their commands, fds and memory, the
//! CRIU and kernel it was made with, its options, its size per image kind,
//! and whether it is incremental.
//!
//! For a checkpoint ckpt made, everything comes from what `create` recorded
//! at dump time (`ckpt.json`, `inventory.json`); for one another tool made
//! (`docker checkpoint create`), the processes come from CRIU's images read
//! by `crit` ([`crate::criu::crit`]), and what no image records (CRIU and
//! kernel versions, options) is `null`. The view is built by pure functions
//! ([`image_kind`], [`images`], [`recorded_processes`],
//! [`crit_processes`], [`text`]); `run` only gathers. Changes nothing.

use super::Context;
use crate::criu::crit::{self, CritProcess};
use crate::error::Error;
use crate::inventory::Inventory;
use crate::output::Output;
use crate::plan::human_bytes;
use crate::store::metadata::DumpOptionsRecord;
use crate::store::{names, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The checkpoint's contents, as `--json` prints them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contents {
    pub container: String,
    pub name: String,
    pub dir: PathBuf,
    /// `ckpt` or `other`.
    pub made_by: &'static str,
    /// `recorded` (ckpt's dump-time record) or `crit` (CRIU's images).
    pub source: &'static str,
    pub tool: Option<String>,
    pub created: Option<String>,
    pub runtime: Option<String>,
    pub criu_version: Option<String>,
    pub kernel: Option<String>,
    pub options: Option<DumpOptionsRecord>,
    /// Made against a parent checkpoint (CRIU's `parent` link).
    pub incremental: bool,
    pub parent: Option<String>,
    pub size_bytes: u64,
    pub images: Vec<ImageKind>,
    pub processes: Vec<Process>,
}

/// The files of one kind (`pages`, `core`, `mm`, …) and their total size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageKind {
    pub kind: String,
    pub files: usize,
    pub bytes: u64,
}

/// One checkpointed process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Process {
    /// Pid inside the container.
    pub pid: i32,
    /// Parent's pid inside the container; `null` for the init (or unknown).
    pub ppid: Option<i32>,
    pub comm: String,
    /// The full command line (recorded checkpoints only; else empty).
    pub cmdline: Vec<String>,
    pub fds: Vec<Fd>,
    pub memory: Memory,
}

/// An fd (`0`, `1`, …, or `cwd`/`root` from crit) and what it pointed at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fd {
    pub fd: String,
    pub target: String,
}

/// Memory sizes in bytes; the ones a source does not know are `null`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Memory {
    pub rss: Option<u64>,
    pub anon_rss: Option<u64>,
    pub anon_mapped: Option<u64>,
    pub file_mapped: Option<u64>,
    /// Pages in the checkpoint's images (crit's pagemap).
    pub dumped: Option<u64>,
}

/// The kind of a checkpoint file by its name (pure): CRIU's `core-7.img`
/// is `core`, `pages-1.img` `pages`, `tmpfs-dev-5.tar.gz.img` `tmpfs`;
/// ckpt's own records are `ckpt`, runc's and ckpt's stdio record
/// `descriptors`, CRIU's logs `log`, its statistics `stats`.
pub fn image_kind(name: &str) -> String {
    const CKPT: [&str; 3] = ["ckpt.json", "ckpt.json.blake3", "inventory.json"];
    if CKPT.contains(&name) {
        return "ckpt".into();
    }
    // The stdio record runc writes and ckpt writes the same way.
    if name == "descriptors.json" {
        return "descriptors".into();
    }
    if name.ends_with(".log") {
        return "log".into();
    }
    if name.starts_with("stats-") {
        return "stats".into();
    }
    let Some(stem) = name.strip_suffix(".img") else {
        return "other".into();
    };
    if stem.starts_with("tmpfs-") {
        return "tmpfs".into();
    }
    match stem.rsplit_once('-') {
        Some((kind, n)) if !kind.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() => kind.into(),
        _ => stem.into(),
    }
}

/// Totals per kind of `(name, size)` files, by kind (pure). The `parent`
/// link is not a file of this checkpoint.
pub fn images(files: &[(String, u64)]) -> Vec<ImageKind> {
    let mut by: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for (name, size) in files.iter().filter(|(n, _)| n != "parent") {
        let e = by.entry(image_kind(name)).or_default();
        e.0 += 1;
        e.1 += size;
    }
    by.into_iter()
        .map(|(kind, (files, bytes))| ImageKind { kind, files, bytes })
        .collect()
}

/// Processes from ckpt's dump-time inventory, pids as the container saw
/// them (pure).
pub fn recorded_processes(inv: &Inventory) -> Vec<Process> {
    let ns: BTreeMap<i32, i32> = inv
        .processes
        .iter()
        .map(|p| (p.pid, p.ns_pid.unwrap_or(p.pid)))
        .collect();
    inv.processes
        .iter()
        .map(|p| Process {
            pid: ns[&p.pid],
            ppid: ns.get(&p.ppid).copied(),
            comm: p.comm.clone(),
            cmdline: p.cmdline.clone(),
            fds: p
                .fds
                .iter()
                .map(|f| Fd {
                    fd: f.fd.to_string(),
                    target: f.target.clone(),
                })
                .collect(),
            memory: Memory {
                rss: Some(p.memory.rss),
                anon_rss: Some(p.memory.anon_rss),
                anon_mapped: Some(p.memory.anon_mapped),
                file_mapped: Some(p.memory.file_mapped),
                dumped: None,
            },
        })
        .collect()
}

/// Processes as crit read them (pure). crit's `ps` has no parent pid:
/// `ppid` is `null`.
pub fn crit_processes(procs: &[CritProcess]) -> Vec<Process> {
    procs
        .iter()
        .map(|p| Process {
            pid: p.pid,
            ppid: None,
            comm: p.comm.clone(),
            cmdline: Vec::new(),
            fds: p
                .fds
                .iter()
                .map(|(fd, target)| Fd {
                    fd: fd.clone(),
                    target: target.clone(),
                })
                .collect(),
            memory: Memory {
                dumped: Some(p.dumped_bytes),
                ..Default::default()
            },
        })
        .collect()
}

/// The text form (pure).
pub fn text(c: &Contents) -> Vec<String> {
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut l = vec![format!(
        "checkpoint {} of {} (made by {}, {})",
        c.name,
        c.container,
        c.tool.clone().unwrap_or_else(|| "another tool".into()),
        c.created.clone().unwrap_or_else(|| "creation time unknown".into())
    )];
    l.push(format!("  dir: {}", c.dir.display()));
    l.push(format!(
        "  criu {}, kernel {}, runtime {}",
        or(&c.criu_version),
        or(&c.kernel),
        or(&c.runtime)
    ));
    l.push(match &c.options {
        Some(o) => format!(
            "  options: leave-running {}, tcp-established {}, file-locks {}, ext-unix-sk {}",
            yes(o.leave_running),
            yes(o.tcp_established),
            yes(o.file_locks),
            yes(o.ext_unix_sk)
        ),
        None => "  options: unknown (not recorded by the tool that made it)".into(),
    });
    l.push(match &c.parent {
        Some(p) => format!("  incremental: yes (parent {p})"),
        None => "  incremental: no".into(),
    });
    l.push(format!(
        "  size: {} ({} bytes)",
        human_bytes(c.size_bytes),
        c.size_bytes
    ));
    l.push("images:".into());
    for i in &c.images {
        l.push(format!(
            "  {:<14} {:>4} file(s) {:>12}",
            i.kind,
            i.files,
            human_bytes(i.bytes)
        ));
    }
    l.push(format!("processes ({}, from {}):", c.processes.len(), c.source));
    for p in &c.processes {
        let cmd = if p.cmdline.is_empty() {
            p.comm.clone()
        } else {
            p.cmdline.join(" ")
        };
        let ppid = p.ppid.map_or("-".to_string(), |x| x.to_string());
        l.push(format!("  pid {} (ppid {ppid}) {}: {cmd}", p.pid, p.comm));
        let m = &p.memory;
        let mut mem = Vec::new();
        for (what, v) in [
            ("rss", m.rss),
            ("anon rss", m.anon_rss),
            ("anon mapped", m.anon_mapped),
            ("file mapped", m.file_mapped),
            ("dumped pages", m.dumped),
        ] {
            if let Some(v) = v {
                mem.push(format!("{what} {}", human_bytes(v)));
            }
        }
        l.push(format!("    memory: {}", mem.join(", ")));
        for f in &p.fds {
            l.push(format!("    fd {}: {}", f.fd, f.target));
        }
    }
    l
}

pub fn run(ctx: &Context, container: &str, name: &str, json: bool, out: &mut Output) -> Result<(), Error> {
    names::validate_container_id(container)?;
    names::validate_checkpoint_name(name)?;
    // Checkpoint files are root's (0600).
    ctx.require_root("inspect")?;
    let home = ctx.engines.home(container)?.home();
    if !crate::store::Layout::new(&home.root).container_dir(&home.id).is_dir() {
        return Err(StoreError::NotFound {
            container: container.to_string(),
            name: name.to_string(),
        }
        .into());
    }
    let store = ctx.open_store(&home.root)?;
    let entry = store.load(&home.id, name)?;
    let files = list_files(&entry.dir)?;
    let parent = std::fs::read_link(entry.dir.join("parent"))
        .ok()
        .map(|p| p.display().to_string());
    let (source, processes) = match &entry.meta {
        Some(_) => {
            let raw = crate::store::listing::read_file(&entry, "inventory.json")?;
            let inv: Inventory = serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt {
                dir: entry.dir.clone(),
                reason: format!("inventory.json: {e}"),
            })?;
            ("recorded", recorded_processes(&inv))
        }
        None => {
            let crit_bin = std::env::var_os("CKPT_CRIT").map_or_else(|| PathBuf::from("crit"), PathBuf::from);
            ("crit", crit_processes(&crit::read(&crit_bin, &entry.dir)?))
        }
    };
    let m = entry.meta.as_ref();
    let contents = Contents {
        container: entry.container_id.clone(),
        name: entry.name.clone(),
        dir: entry.dir.clone(),
        made_by: if m.is_some() { "ckpt" } else { "other" },
        source,
        tool: m.map(|m| m.tool.clone()),
        created: m.map(|m| m.created_at.clone()),
        runtime: m
            .map(|m| m.runtime.clone())
            .or_else(|| home.foreign.then(|| "docker".into())),
        criu_version: m.map(|m| m.criu_version.clone()),
        kernel: m.map(|m| m.kernel.clone()),
        options: m.map(|m| m.options.clone()),
        incremental: parent.is_some(),
        parent,
        size_bytes: entry.size_bytes,
        images: images(&files),
        processes,
    };
    if json {
        out.json(&contents)?;
    } else {
        for l in text(&contents) {
            out.line(l);
        }
    }
    Ok(())
}

/// The checkpoint directory's entries and sizes, links not followed.
fn list_files(dir: &std::path::Path) -> Result<Vec<(String, u64)>, Error> {
    let io = |source| Error::Io {
        op: "list",
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io)? {
        let e = e.map_err(io)?;
        let size = e.metadata().map_err(io)?.len();
        files.push((e.file_name().to_string_lossy().into_owned(), size));
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{FdInfo, FdKind, MemorySummary, ProcessInfo};

    #[test]
    fn kinds_of_files() {
        #[rustfmt::skip]
        let cases = [
            ("core-7.img", "core"), ("pages-1.img", "pages"), ("pagemap-11499.img", "pagemap"),
            ("mm-1.img", "mm"), ("inventory.img", "inventory"), ("pstree.img", "pstree"),
            ("fdinfo-2.img", "fdinfo"), ("tmpfs-dev-55.tar.gz.img", "tmpfs"), ("timens-0.img", "timens"),
            ("ckpt.json", "ckpt"), ("ckpt.json.blake3", "ckpt"), ("inventory.json", "ckpt"),
            ("descriptors.json", "descriptors"), ("dump.log", "log"), ("restore.log", "log"),
            ("stats-dump", "stats"), ("stats-restore", "stats"), ("-1.img", "-1"),
            ("ip6tables-9.img", "ip6tables"), ("core-x.img", "core-x"), ("README", "other"),
        ];
        for (name, kind) in cases {
            assert_eq!(image_kind(name), kind, "{name}");
        }
    }

    #[test]
    fn totals_per_kind_skip_the_parent_link() {
        let files: Vec<(String, u64)> = [
            ("pages-1.img", 4096),
            ("pages-2.img", 8192),
            ("core-1.img", 10),
            ("parent", 9),
        ]
        .iter()
        .map(|(n, s)| (n.to_string(), *s))
        .collect();
        assert_eq!(
            images(&files),
            [
                ImageKind {
                    kind: "core".into(),
                    files: 1,
                    bytes: 10
                },
                ImageKind {
                    kind: "pages".into(),
                    files: 2,
                    bytes: 12288
                },
            ]
        );
    }

    fn process(pid: i32, ns_pid: i32, ppid: i32, comm: &str) -> ProcessInfo {
        ProcessInfo {
            pid,
            ns_pid: Some(ns_pid),
            ppid,
            comm: comm.into(),
            cmdline: vec![comm.into(), "-c".into()],
            fds: vec![FdInfo {
                fd: 0,
                target: "/dev/null".into(),
                kind: FdKind::File,
                mnt_id: None,
                outside_mount_ns: false,
                locks: vec![],
            }],
            memory: MemorySummary {
                rss: 8192,
                anon_rss: 4096,
                anon_mapped: 1,
                file_mapped: 2,
                map_count: 3,
            },
            ..Default::default()
        }
    }

    #[test]
    fn recorded_processes_use_the_containers_pids() {
        let inv = Inventory {
            processes: vec![process(4000, 1, 3990, "sh"), process(4001, 7, 4000, "sleep")],
        };
        let p = recorded_processes(&inv);
        assert_eq!((p[0].pid, p[0].ppid), (1, None), "the init's parent is outside");
        assert_eq!((p[1].pid, p[1].ppid), (7, Some(1)));
        assert_eq!(p[1].cmdline, ["sleep", "-c"]);
        assert_eq!(
            p[1].fds,
            [Fd {
                fd: "0".into(),
                target: "/dev/null".into()
            }]
        );
        assert_eq!(
            (p[1].memory.rss, p[1].memory.anon_rss, p[1].memory.dumped),
            (Some(8192), Some(4096), None)
        );
    }

    #[test]
    fn text_names_everything_the_json_has() {
        let crit = [CritProcess {
            pid: 1,
            pgid: 1,
            sid: 1,
            comm: "sh".into(),
            fds: vec![("0".into(), "/dev/null".into()), ("cwd".into(), "/".into())],
            dumped_bytes: 8192,
        }];
        let c = Contents {
            container: "web".into(),
            name: "n1".into(),
            dir: "/s/web/checkpoints/n1".into(),
            made_by: "other",
            source: "crit",
            tool: None,
            created: None,
            runtime: Some("docker".into()),
            criu_version: None,
            kernel: None,
            options: None,
            incremental: true,
            parent: Some("../n0".into()),
            size_bytes: 12288,
            images: images(&[("pages-1.img".into(), 8192), ("core-1.img".into(), 4096)]),
            processes: crit_processes(&crit),
        };
        let t = text(&c).join("\n");
        for want in [
            "checkpoint n1 of web (made by another tool, creation time unknown)",
            "criu unknown, kernel unknown, runtime docker",
            "options: unknown",
            "incremental: yes (parent ../n0)",
            "pages",
            "processes (1, from crit):",
            "pid 1 (ppid -) sh: sh",
            "memory: dumped pages 8.0 KiB",
            "fd 0: /dev/null",
            "fd cwd: /",
        ] {
            assert!(t.contains(want), "no {want:?} in:\n{t}");
        }
    }
}
