//! Pure rules for the names and links inside an archive, and the limits
//! that stop a tar bomb. Nothing here touches the filesystem.
//!
//! A name is accepted only as a clean relative path: no leading `/`, no
//! `..`, `.` or empty component (one or more leading `./` are stripped,
//! as Podman's and GNU tar's archives carry them), at most [`MAX_DEPTH`]
//! components of at most 255 bytes. Names outside a root filesystem part
//! must also be UTF-8, because they become JSON keys.

use super::Refusal;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// The deepest name accepted, in components.
pub const MAX_DEPTH: usize = 128;

/// The longest name accepted, in bytes (Linux's `PATH_MAX`).
pub const MAX_NAME: usize = 4096;

/// A validated entry name: its components, never empty, `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPath {
    components: Vec<Vec<u8>>,
}

impl EntryPath {
    /// Validates raw tar name bytes. `Ok(None)` is the archive's root
    /// itself (`.` or `./`), which carries no file.
    pub fn parse(raw: &[u8]) -> Result<Option<EntryPath>, Refusal> {
        if raw.len() > MAX_NAME {
            return Err(Refusal::BadName("longer than 4096 bytes"));
        }
        if raw.first() == Some(&b'/') {
            return Err(Refusal::Absolute);
        }
        let mut rest = raw;
        while let Some(r) = rest.strip_prefix(b"./") {
            rest = r;
        }
        if rest.is_empty() || rest == b"." {
            return Ok(None);
        }
        // A directory entry's name ends in `/`; that one is not an empty component.
        let rest = rest.strip_suffix(b"/").unwrap_or(rest);
        let mut components = Vec::new();
        for c in rest.split(|b| *b == b'/') {
            match c {
                b".." => return Err(Refusal::DotDot),
                b"." => return Err(Refusal::BadName("a `.` component")),
                b"" => return Err(Refusal::BadName("an empty component")),
                c if c.len() > 255 => return Err(Refusal::BadName("a component longer than 255 bytes")),
                c if c.contains(&0) => return Err(Refusal::BadName("a NUL byte")),
                c => components.push(c.to_vec()),
            }
        }
        if components.len() > MAX_DEPTH {
            return Err(Refusal::BadName("more than 128 components"));
        }
        Ok(Some(EntryPath { components }))
    }

    /// [`EntryPath::parse`], and the name must be UTF-8.
    pub fn parse_utf8(raw: &[u8]) -> Result<Option<EntryPath>, Refusal> {
        if std::str::from_utf8(raw).is_err() {
            return Err(Refusal::NotUtf8);
        }
        EntryPath::parse(raw)
    }

    /// The components, outermost first.
    pub fn components(&self) -> impl ExactSizeIterator<Item = &OsStr> {
        self.components.iter().map(|c| OsStr::from_bytes(c))
    }

    /// The first component.
    pub fn first(&self) -> &[u8] {
        &self.components[0]
    }

    /// The number of components.
    pub fn depth(&self) -> usize {
        self.components.len()
    }

    /// The same path without its first `n` components, or `None` if
    /// nothing is left.
    pub fn strip(&self, n: usize) -> Option<EntryPath> {
        (self.components.len() > n).then(|| EntryPath {
            components: self.components[n..].to_vec(),
        })
    }

    /// `a/b/c`, lossily for names that are not UTF-8 (for messages and keys).
    pub fn display(&self) -> String {
        self.components
            .iter()
            .map(|c| String::from_utf8_lossy(c))
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Whether a symlink at `link` with `target` stays inside the root it is
/// unpacked under. An absolute target is resolved against that root (as
/// the container resolves it), so it always stays inside; a relative one
/// must not climb above the root through `..`. ckpt never follows a link
/// it unpacked, but other tools on the host may, and a relative escape
/// would reach the host's files from the staging directory.
pub fn symlink_stays_inside(link: &EntryPath, target: &[u8]) -> bool {
    if target.is_empty() || target.contains(&0) {
        return false;
    }
    if target.first() == Some(&b'/') {
        return true;
    }
    // The link's own directory is where a relative target starts.
    let mut depth = link.depth() as i64 - 1;
    for c in target.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

/// Bounds on what reading one archive may create. The reader refuses an
/// archive as soon as it passes one (before the disk fills), and a ckpt
/// archive also when its manifest declares more than these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the uncompressed tar stream, nested tars included.
    pub max_bytes: u64,
    /// Tar entries, nested tars included.
    pub max_entries: u64,
    /// The largest JSON file (`ckpt.json`, `spec.dump`, `config.dump`,
    /// `deleted.files`) read into memory.
    pub max_json_bytes: u64,
}

/// How many times its compressed size an input may expand to. zstd of
/// memory pages reaches 3–10×; a page of zeros is not dumped by CRIU, so
/// far larger ratios mean a bomb. Podman's export of the busybox counter
/// measured 7.5× (30 KiB for 230 KiB).
pub const EXPANSION: u64 = 64;

/// What any input may expand to beyond [`EXPANSION`] times its size, so
/// that a small archive of a small container is never refused.
pub const SLACK_BYTES: u64 = 256 << 20;

impl Limits {
    /// The limits for an input of `input_len` bytes: [`EXPANSION`] times
    /// its size plus [`SLACK_BYTES`], and 10 000 entries plus one per KiB
    /// of those bytes (a tar entry takes at least 512 bytes of the stream,
    /// so this bounds a bomb of empty files, not a real root filesystem).
    pub fn proportional(input_len: u64) -> Limits {
        let max_bytes = input_len.saturating_mul(EXPANSION).saturating_add(SLACK_BYTES);
        Limits {
            max_bytes,
            max_entries: 10_000 + max_bytes / 1024,
            max_json_bytes: 64 << 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &EntryPath) -> String {
        p.display()
    }

    #[test]
    fn clean_names_are_accepted_and_dot_slash_prefixes_stripped() {
        let cases: &[(&[u8], &str)] = &[
            (b"checkpoint/pages-1.img", "checkpoint/pages-1.img"),
            (b"./spec.dump", "spec.dump"),
            (b"././checkpoint/", "checkpoint"),
            (b"rootfs/bin/sh", "rootfs/bin/sh"),
        ];
        for (raw, want) in cases {
            let p = EntryPath::parse(raw).unwrap().unwrap();
            assert_eq!(names(&p), *want, "{raw:?}");
        }
        assert_eq!(EntryPath::parse(b"./").unwrap(), None);
        assert_eq!(EntryPath::parse(b".").unwrap(), None);
        assert_eq!(EntryPath::parse(b"").unwrap(), None);
    }

    #[test]
    fn unclean_names_are_refused() {
        let cases: &[(&[u8], Refusal)] = &[
            (b"../x", Refusal::DotDot),
            (b"checkpoint/../../etc/passwd", Refusal::DotDot),
            (b"a/..", Refusal::DotDot),
            (b"/etc/passwd", Refusal::Absolute),
            (b"a//b", Refusal::BadName("an empty component")),
            (b"a/./b", Refusal::BadName("a `.` component")),
        ];
        for (raw, want) in cases {
            assert_eq!(EntryPath::parse(raw).unwrap_err(), *want, "{raw:?}");
        }
        let deep = "a/".repeat(MAX_DEPTH + 1);
        assert!(EntryPath::parse(deep.as_bytes()).is_err());
        let long = "a".repeat(256);
        assert!(EntryPath::parse(long.as_bytes()).is_err());
        assert_eq!(EntryPath::parse_utf8(b"a/\xff").unwrap_err(), Refusal::NotUtf8);
        assert!(EntryPath::parse(b"a/\xff").is_ok());
    }

    #[test]
    fn symlinks_may_not_climb_out_of_their_root() {
        let link = |s: &str| EntryPath::parse(s.as_bytes()).unwrap().unwrap();
        let cases: &[(&str, &str, bool)] = &[
            ("bin/sh", "busybox", true),
            ("bin/sh", "/bin/busybox", true),
            ("bin/sh", "/../../../etc/shadow", true), // absolute: resolved in the container's root
            ("usr/bin/x", "../../bin/busybox", true),
            ("usr/bin/x", "../../../etc/passwd", false),
            ("x", "..", false),
            ("a/b", "./../../c", false),
            ("a/b", "c/../../d", true),
            ("a/b", "", false),
        ];
        for (at, target, ok) in cases {
            assert_eq!(
                symlink_stays_inside(&link(at), target.as_bytes()),
                *ok,
                "{at} -> {target}"
            );
        }
    }

    #[test]
    fn limits_grow_with_the_input() {
        let small = Limits::proportional(0);
        assert_eq!(small.max_bytes, SLACK_BYTES);
        let big = Limits::proportional(1 << 30);
        assert_eq!(big.max_bytes, (1u64 << 30) * EXPANSION + SLACK_BYTES);
        assert!(big.max_entries > small.max_entries);
        assert_eq!(Limits::proportional(u64::MAX).max_bytes, u64::MAX);
    }
}
