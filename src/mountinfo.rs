//! A parser for `/proc/<pid>/mountinfo` (pure: takes the text).

use std::path::PathBuf;

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub id: u64,
    pub parent: u64,
    /// Path of the mount's root within its filesystem.
    pub root: PathBuf,
    /// Where it is mounted (as seen by the reading process).
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: String,
    /// Per-superblock options (`rw,freezer` for a cgroup v1 hierarchy).
    pub super_options: Vec<String>,
}

/// Parses every well-formed line; malformed lines are skipped because the
/// kernel's format is stable and a partial view is better than none.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let l: Vec<&str> = left.split(' ').collect();
    let r: Vec<&str> = right.split(' ').collect();
    if l.len() < 6 || r.len() < 3 {
        return None;
    }
    Some(Mount {
        id: l[0].parse().ok()?,
        parent: l[1].parse().ok()?,
        root: PathBuf::from(unescape(l[3])),
        mount_point: PathBuf::from(unescape(l[4])),
        fstype: r[0].to_string(),
        source: unescape(r[1]),
        super_options: r[2].split(',').map(str::to_string).collect(),
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "64 42 254:0 /tmp/exp/b/rootfs / rw,relatime - ext4 /dev/vda rw,discard
72 71 0:29 /exp1 /sys/fs/cgroup/cpu ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,cpu
80 71 0:37 /exp1 /sys/fs/cgroup/systemd ro,nosuid - cgroup cgroup rw,name=systemd
90 64 0:50 / /with\\040space rw shared:5 - tmpfs tmpfs rw
garbage line";

    #[test]
    fn parses_lines_and_skips_garbage() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].mount_point, PathBuf::from("/"));
        assert_eq!(m[0].root, PathBuf::from("/tmp/exp/b/rootfs"));
        assert_eq!(m[1].fstype, "cgroup");
        assert_eq!(m[1].super_options, vec!["rw", "cpu"]);
        assert_eq!(m[2].super_options[1], "name=systemd");
        assert_eq!(m[3].mount_point, PathBuf::from("/with space"));
        assert_eq!(m[3].id, 90);
        assert_eq!(m[3].parent, 64);
    }
}
