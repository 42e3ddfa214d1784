//! `criu --version` parsing and the minimum version ckpt needs.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A CRIU version `major.minor.sublevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CriuVersion {
    pub major: u32,
    pub minor: u32,
    pub sublevel: u32,
}

/// The oldest CRIU ckpt drives: 3.15 has `--freeze-cgroup` for cgroup v2
/// and the external-mount syntax runc uses; older ones also fail on recent
/// kernels.
pub const MINIMUM: CriuVersion = CriuVersion {
    major: 3,
    minor: 15,
    sublevel: 0,
};

impl fmt::Display for CriuVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.sublevel)
    }
}

impl CriuVersion {
    /// Parses the `Version: X.Y[.Z]` line of `criu --version`.
    pub fn parse(output: &str) -> Option<CriuVersion> {
        let line = output.lines().find_map(|l| l.trim().strip_prefix("Version:"))?;
        let mut nums = line.trim().split('.').map(|n| n.trim().parse::<u32>());
        let major = nums.next()?.ok()?;
        let minor = nums.next()?.ok()?;
        let sublevel = match nums.next() {
            Some(n) => n.ok()?,
            None => 0,
        };
        Some(CriuVersion { major, minor, sublevel })
    }

    /// Parses `X.Y.Z` as stored in metadata.
    pub fn parse_plain(s: &str) -> Option<CriuVersion> {
        CriuVersion::parse(&format!("Version: {s}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(
            CriuVersion::parse("Version: 4.1.1\nGitID: v4.1.1\n"),
            Some(CriuVersion {
                major: 4,
                minor: 1,
                sublevel: 1
            })
        );
        assert_eq!(CriuVersion::parse("Version: 3.17\n").unwrap().to_string(), "3.17.0");
        assert_eq!(CriuVersion::parse("nonsense"), None);
        assert_eq!(CriuVersion::parse("Version: x.1"), None);
        assert_eq!(CriuVersion::parse_plain("4.1.1").unwrap().minor, 1);
    }

    #[test]
    fn ordering_matches_releases() {
        let v = |s| CriuVersion::parse_plain(s).unwrap();
        assert!(v("3.14.9") < MINIMUM);
        assert!(v("3.15") >= MINIMUM);
        assert!(v("4.0") > v("3.19.5"));
    }
}
