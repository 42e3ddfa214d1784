//! PURE: which containers `create --all` and `create --latest` checkpoint,
//! from what the runtimes' state roots list, and the exit code of a create
//! of several containers.
//!
//! Podman's meaning: `--all` is every running container, `--latest` the
//! newest one by the runtime's created time. Nothing here reads a state
//! root (the engines list them, `engine::Engines::running_all`).

use crate::engine::RuntimeKind;
use crate::error::{FAILURE, SUCCESS};
use std::time::SystemTime;

/// A running (or paused) container as a runtime's state root lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The id in its state root (a Docker container's full id).
    pub id: String,
    pub runtime: RuntimeKind,
    /// The runtime's `created`; `None` when it is missing or unreadable.
    pub created: Option<SystemTime>,
}

/// `--all` or `--latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    All,
    Latest,
}

/// The runtime's `created` (RFC 3339, as runc and crun write it, with or
/// without fractions of a second); `None` when it is not one.
pub fn created_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text.trim()).ok()
}

/// The ids to checkpoint, oldest first (by created time, then id; an
/// unknown time counts as the oldest), each once: one id in two roots is
/// still one reference, which resolving then finds ambiguous or not.
/// `Latest` keeps only the newest.
pub fn select(listed: &[Listed], which: Which) -> Vec<String> {
    let mut order: Vec<&Listed> = listed.iter().collect();
    order.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
    let mut ids: Vec<String> = Vec::new();
    for l in order {
        // The newest sighting of an id decides its place.
        ids.retain(|id| id != &l.id);
        ids.push(l.id.clone());
    }
    match which {
        Which::All => ids,
        Which::Latest => ids.pop().into_iter().collect(),
    }
}

/// The exit code of a create of several containers, from each one's code:
/// 0 when all succeeded (or there were none), the failures' code when they
/// all failed the same way, [`FAILURE`] (1) when they differ.
pub fn many_code(codes: &[u8]) -> u8 {
    let mut failed = codes.iter().copied().filter(|c| *c != SUCCESS);
    match failed.next() {
        None => SUCCESS,
        Some(first) if failed.all(|c| c == first) => first,
        Some(_) => FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> Option<SystemTime> {
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
    }

    fn l(id: &str, created: Option<SystemTime>) -> Listed {
        Listed {
            id: id.into(),
            runtime: RuntimeKind::Runc,
            created,
        }
    }

    #[test]
    fn all_is_oldest_first_latest_is_the_newest() {
        // (listed, --all, --latest)
        #[rustfmt::skip]
        let table: Vec<(Vec<Listed>, &[&str], &[&str])> = vec![
            (vec![], &[], &[]),
            (vec![l("a", at(5))], &["a"], &["a"]),
            (vec![l("new", at(9)), l("old", at(1))], &["old", "new"], &["new"]),
            // A tie in time: by id, so the choice never depends on the listing order.
            (vec![l("b", at(3)), l("a", at(3))], &["a", "b"], &["b"]),
            // An unknown time is the oldest: never the "latest" by accident.
            (vec![l("x", None), l("y", at(1))], &["x", "y"], &["y"]),
            // One id in two roots is one reference.
            (vec![l("a", at(1)), l("b", at(2)), l("a", at(3))], &["b", "a"], &["a"]),
        ];
        for (listed, all, latest) in table {
            assert_eq!(select(&listed, Which::All), all, "{listed:?}");
            assert_eq!(select(&listed, Which::Latest), latest, "{listed:?}");
        }
    }

    #[test]
    fn created_times_as_runc_and_crun_write_them() {
        let runc = created_time("2026-11-21T21:42:43.123456789Z").unwrap();
        let crun = created_time("2026-11-21T21:44:34.727456Z").unwrap();
        let plain = created_time("2026-11-21T21:42:43Z").unwrap();
        assert!(plain < runc && runc < crun);
        assert_eq!(created_time("yesterday"), None);
        assert_eq!(created_time(""), None);
    }

    #[test]
    fn the_code_of_several_creates() {
        #[rustfmt::skip]
        let table: &[(&[u8], u8)] = &[
            (&[], 0), (&[0, 0], 0), (&[0, 3], 3), (&[3, 0, 3], 3), (&[4], 4),
            (&[0, 3, 6], 1), (&[130, 0], 130),
        ];
        for (codes, want) in table {
            assert_eq!(many_code(codes), *want, "{codes:?}");
        }
    }
}
