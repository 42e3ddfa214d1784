//! Reading CRIU's images of a checkpoint ckpt did not make (`docker
//! checkpoint create`, `runc checkpoint`), with CRIU's own maintained
//! reader, `crit` (Debian's python3-pycriu, shipped with criu): never with
//! a copy of CRIU's protobuf definitions here.
//!
//! [`read`] runs `crit` (thin); the parsers of its output are pure and
//! table-tested against output of crit 4.1.1. Nothing here writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `crit` tells of a checkpoint's processes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CritProcess {
    pub pid: i32,
    pub pgid: i32,
    pub sid: i32,
    pub comm: String,
    /// `(fd, what it points at)`, as `crit x fds` prints them (`0`,
    /// `/dev/null`; `cwd`, `/`).
    pub fds: Vec<(String, String)>,
    /// Bytes of memory pages in the checkpoint (pagemap's `nr_pages` × 4 KiB).
    pub dumped_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CritError {
    #[error("crit is not installed (Debian: apt-get install python3-pycriu); it reads checkpoints ckpt did not make")]
    NotInstalled,
    #[error("crit {args} failed on {}: {message}", dir.display())]
    Failed {
        args: String,
        dir: PathBuf,
        message: String,
    },
}

const PAGE: u64 = 4096;

/// The processes of the checkpoint in `dir`: `crit x DIR ps`, `crit x DIR
/// fds`, and each process's pagemap (`crit show`).
pub fn read(crit: &Path, dir: &Path) -> Result<Vec<CritProcess>, CritError> {
    let mut procs = parse_ps(&run(crit, dir, &["x", &dir.to_string_lossy(), "ps"])?);
    let fds = parse_fds(&run(crit, dir, &["x", &dir.to_string_lossy(), "fds"])?);
    for p in &mut procs {
        p.fds = fds.get(&p.pid).cloned().unwrap_or_default();
        let pagemap = dir.join(format!("pagemap-{}.img", p.pid));
        if pagemap.exists() {
            p.dumped_bytes = pagemap_pages(&run(crit, dir, &["show", &pagemap.to_string_lossy()])?) * PAGE;
        }
    }
    Ok(procs)
}

fn run(crit: &Path, dir: &Path, args: &[&str]) -> Result<String, CritError> {
    let out = Command::new(crit).args(args).output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => CritError::NotInstalled,
        _ => CritError::Failed {
            args: args.join(" "),
            dir: dir.to_path_buf(),
            message: e.to_string(),
        },
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(CritError::Failed {
            args: args.join(" "),
            dir: dir.to_path_buf(),
            message: stderr.lines().last().unwrap_or("no message").to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `crit x DIR ps`: a header, then `PID PGID SID COMM` rows (pure).
pub fn parse_ps(text: &str) -> Vec<CritProcess> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let pid = w.next()?.parse().ok()?;
            let pgid = w.next()?.parse().ok()?;
            let sid = w.next()?.parse().ok()?;
            let comm = w.collect::<Vec<_>>().join(" ");
            Some(CritProcess {
                pid,
                pgid,
                sid,
                comm,
                ..Default::default()
            })
        })
        .collect()
}

/// `crit x DIR fds`: a pid line, then tab-indented `fd: target` lines (pure).
pub fn parse_fds(text: &str) -> BTreeMap<i32, Vec<(String, String)>> {
    let mut out: BTreeMap<i32, Vec<(String, String)>> = BTreeMap::new();
    let mut cur = None;
    for l in text.lines() {
        if !l.starts_with(char::is_whitespace) {
            cur = l.trim().parse::<i32>().ok();
            if let Some(pid) = cur {
                out.entry(pid).or_default();
            }
        } else if let (Some(pid), Some((fd, target))) = (cur, l.trim().split_once(": ")) {
            out.entry(pid)
                .or_default()
                .push((fd.trim().to_string(), target.to_string()));
        }
    }
    out
}

/// The pages a `crit show pagemap-N.img` lists (pure; 0 for other JSON).
pub fn pagemap_pages(json: &str) -> u64 {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return 0;
    };
    v["entries"]
        .as_array()
        .map(|e| e.iter().filter_map(|x| x["nr_pages"].as_u64()).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Output of crit 4.1.1 on a dump of `sleep 1000`.
    const PS: &str = "    PID   PGID    SID   COMM\n  11499  11499  11499   sleep\n      7      1      1   sh -c\n";
    const FDS: &str = "11499\n\t      0: /dev/null\n\t    251: pipe[2898211]\n\t    cwd: /work/main\n\t   root: /\n7\n\t      1: /dev/null\n";

    #[test]
    fn ps_rows() {
        let p = parse_ps(PS);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].pid, p[0].pgid, p[0].sid, p[0].comm.as_str()),
            (11499, 11499, 11499, "sleep")
        );
        assert_eq!((p[1].pid, p[1].comm.as_str()), (7, "sh -c"));
        assert!(parse_ps("").is_empty());
        assert!(parse_ps("    PID   PGID    SID   COMM\n").is_empty());
    }

    #[test]
    fn fds_by_pid() {
        let f = parse_fds(FDS);
        #[rustfmt::skip]
        assert_eq!(f[&11499], [("0".into(), "/dev/null".into()), ("251".into(), "pipe[2898211]".into()),
                               ("cwd".into(), "/work/main".into()), ("root".into(), "/".into())]);
        assert_eq!(f[&7], [("1".to_string(), "/dev/null".to_string())]);
        assert!(parse_fds("").is_empty());
    }

    #[test]
    fn pagemap_counts_pages() {
        let json = r#"{"magic": "PAGEMAP", "entries": [{"pages_id": 1}, {"vaddr": "0x1", "nr_pages": 1},
                       {"vaddr": "0x2", "nr_pages": 6, "flags": "PE_PRESENT"}]}"#;
        assert_eq!(pagemap_pages(json), 7);
        assert_eq!(pagemap_pages("not json"), 0);
        assert_eq!(pagemap_pages(r#"{"magic": "PAGEMAP"}"#), 0);
    }
}
