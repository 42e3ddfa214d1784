//! Which checkpoints a retention policy removes, and which is the latest.
//! Pure: names and times in, names out.
//!
//! Rules (`ckpt create --retain N`, `ckpt prune --retain N --older-than D`):
//! - Only checkpoints with a creation time take part. Those without one
//!   (foreign, or metadata that cannot be read) are never removed and do
//!   not count towards N: retention must not guess.
//! - Newest first by creation time, ties broken by name (the greater name
//!   is the newer), so the order is total and repeatable.
//! - The newest checkpoint is never removed, nor the protected one (the
//!   checkpoint `create` just made, even if a clock step makes it look
//!   older).
//! - A checkpoint goes when every given condition says so: beyond the
//!   newest N, and (with `--older-than`) created more than D ago. With no
//!   condition there is nothing to do, which is refused as a usage error.
use std::time::Duration;

/// A checkpoint as retention sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint<'a> {
    pub name: &'a str,
    /// Creation time in seconds since the epoch (`ckpt.json`'s
    /// `created_at`), `None` if unknown.
    pub created: Option<i64>,
}

/// A retention policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    retain: Option<usize>,
    older_than: Option<Duration>,
}

/// Why a policy is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("--retain 0 would remove every checkpoint, and the newest is always kept; use --retain 1 to keep only the newest")]
    RetainZero,
    #[error("give --retain N, --older-than DURATION, or both")]
    Empty,
}

impl Policy {
    /// Keep the newest `retain`, and/or remove only what is older than
    /// `older_than`.
    pub fn new(retain: Option<usize>, older_than: Option<Duration>) -> Result<Policy, PolicyError> {
        match (retain, older_than) {
            (Some(0), _) => Err(PolicyError::RetainZero),
            (None, None) => Err(PolicyError::Empty),
            _ => Ok(Policy { retain, older_than }),
        }
    }
}

/// What a policy does to a container's checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan<'a> {
    /// Newest first.
    pub remove: Vec<&'a str>,
    /// Newest first, then those without a time in the given order.
    pub keep: Vec<&'a str>,
}

/// Newest first; undated ones are not included.
fn by_age<'a>(checkpoints: &[Checkpoint<'a>]) -> Vec<(i64, &'a str)> {
    let mut dated: Vec<(i64, &str)> = checkpoints
        .iter()
        .filter_map(|c| c.created.map(|t| (t, c.name)))
        .collect();
    dated.sort_by(|a, b| b.cmp(a));
    dated
}

/// Applies `policy` at time `now` (seconds since the epoch); `protect`
/// is never removed.
pub fn plan<'a>(checkpoints: &[Checkpoint<'a>], policy: Policy, now: i64, protect: Option<&str>) -> Plan<'a> {
    let mut out = Plan::default();
    for (rank, (created, name)) in by_age(checkpoints).into_iter().enumerate() {
        let beyond = policy.retain.is_none_or(|n| rank >= n);
        let old = policy
            .older_than
            .is_none_or(|d| created < now.saturating_sub(d.as_secs().min(i64::MAX as u64) as i64));
        let spared = rank == 0 || protect == Some(name);
        if beyond && old && !spared {
            out.remove.push(name);
        } else {
            out.keep.push(name);
        }
    }
    out.keep
        .extend(checkpoints.iter().filter(|c| c.created.is_none()).map(|c| c.name));
    out
}

/// The newest checkpoint with a creation time (`--checkpoint latest`).
pub fn latest<'a>(checkpoints: &[Checkpoint<'a>]) -> Option<&'a str> {
    by_age(checkpoints).first().map(|&(_, name)| name)
}

/// `created_at` of `ckpt.json` (RFC 3339, UTC) in seconds since the epoch.
pub fn parse_created(created_at: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339(created_at).ok()?;
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;
    const NOW: i64 = 1_000_000;

    fn cps() -> Vec<Checkpoint<'static>> {
        vec![
            Checkpoint {
                name: "a",
                created: Some(NOW - 50 * H),
            },
            Checkpoint {
                name: "b",
                created: Some(NOW - 30 * H),
            },
            Checkpoint {
                name: "foreign",
                created: None,
            },
            Checkpoint {
                name: "c",
                created: Some(NOW - 10 * H),
            },
            Checkpoint {
                name: "d",
                created: Some(NOW - H),
            },
        ]
    }

    #[test]
    fn table_of_plans() {
        let hours = |h: u64| Some(Duration::from_secs(h * 3600));
        // (retain, older_than, protect, removed)
        type Case<'a> = (Option<usize>, Option<Duration>, Option<&'a str>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (Some(1), None, None, vec!["c", "b", "a"]),
            (Some(2), None, None, vec!["b", "a"]),
            (Some(4), None, None, vec![]),
            (Some(100), None, None, vec![]),
            // Older than 20 h: a and b, whatever N would allow.
            (None, hours(20), None, vec!["b", "a"]),
            (Some(3), hours(20), None, vec!["a"]),
            (Some(1), hours(40), None, vec!["a"]),
            // Everything is older than 0 s, yet the newest stays.
            (None, hours(0), None, vec!["c", "b", "a"]),
            // The one just made stays even when it sorts older (clock step).
            (Some(1), None, Some("b"), vec!["c", "a"]),
            (Some(1), None, Some("d"), vec!["c", "b", "a"]),
        ];
        for (retain, older, protect, removed) in cases {
            let policy = Policy::new(retain, older).unwrap();
            let cps = cps();
            let p = plan(&cps, policy, NOW, protect);
            assert_eq!(p.remove, removed, "{retain:?} {older:?} {protect:?}");
            assert!(p.keep.contains(&"foreign") && p.keep.contains(&"d"));
            assert_eq!(p.keep.len() + p.remove.len(), cps.len());
        }
    }

    #[test]
    fn ties_are_broken_by_name_and_undated_never_count() {
        let cps = [
            Checkpoint {
                name: "x1",
                created: Some(5),
            },
            Checkpoint {
                name: "x2",
                created: Some(5),
            },
            Checkpoint {
                name: "old",
                created: None,
            },
        ];
        assert_eq!(latest(&cps), Some("x2"));
        let p = plan(&cps, Policy::new(Some(1), None).unwrap(), NOW, None);
        assert_eq!(p.remove, vec!["x1"]);
        assert_eq!(p.keep, vec!["x2", "old"]);
        assert_eq!(latest(&cps[2..]), None);
        assert_eq!(latest(&[]), None);
    }

    #[test]
    fn empty_and_zero_policies_are_refused() {
        assert_eq!(Policy::new(Some(0), None), Err(PolicyError::RetainZero));
        assert_eq!(Policy::new(None, None), Err(PolicyError::Empty));
        assert!(Policy::new(None, Some(Duration::ZERO)).is_ok());
    }

    #[test]
    fn created_at_as_ckpt_json_writes_it() {
        assert_eq!(parse_created("1970-01-01T00:01:40Z"), Some(100));
        assert_eq!(parse_created("2026-11-21T22:03:39Z"), Some(1_795_298_619));
        assert_eq!(parse_created("yesterday"), None);
    }
}
