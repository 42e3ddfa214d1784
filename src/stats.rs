//! What `--print-stats` prints: the shapes `podman container checkpoint
//! --print-stats` and `podman container restore --print-stats` print
//! (durations in microseconds, CRIU's statistics under `criu_statistics`
//! with CRIU's own field names), with ckpt's own phases added under
//! `phases`.
//!
//! PURE. The text form is made from the JSON form ([`text_lines`] walks
//! the serialized value), so the two cannot disagree. CRIU's numbers come
//! from its `stats-dump` and `stats-restore` images
//! ([`crate::criu::stats`]); nothing here reads a file.

use crate::criu::stats::{DumpStats, RestoreStats};
use serde::Serialize;
use std::time::Duration;

/// `create --print-stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointStats {
    /// The whole `ckpt create`, from finding the container to the end.
    pub ckpt_checkpoint_duration: u64,
    /// One entry (ckpt checkpoints one container per create), as Podman
    /// lists one per container.
    pub container_statistics: Vec<ContainerCheckpointStats>,
}

/// One container's checkpoint statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerCheckpointStats {
    pub id: String,
    /// The `criu dump` run (Podman's "runtime" is the OCI runtime running
    /// CRIU; ckpt runs CRIU itself).
    pub runtime_checkpoint_duration: u64,
    /// From CRIU's stats-dump; `null` when CRIU wrote none.
    pub criu_statistics: Option<CriuDumpStatistics>,
    pub phases: CheckpointPhases,
}

/// CRIU's dump statistics, named as CRIU and Podman name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CriuDumpStatistics {
    pub freezing_time: u64,
    pub frozen_time: u64,
    pub memdump_time: u64,
    pub memwrite_time: u64,
    pub pages_scanned: u64,
    pub pages_written: u64,
}

impl From<DumpStats> for CriuDumpStatistics {
    fn from(s: DumpStats) -> Self {
        CriuDumpStatistics {
            freezing_time: s.freezing_us,
            frozen_time: s.frozen_us,
            memdump_time: s.memdump_us,
            memwrite_time: s.memwrite_us,
            pages_scanned: s.pages_scanned,
            pages_written: s.pages_written,
        }
    }
}

/// ckpt's own phases of a create, in microseconds, in the order they run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CheckpointPhases {
    /// Inventory of the container's processes, host facts, the dump plan.
    pub preflight: u64,
    /// ckpt freezing the container (0 when the user had paused it).
    pub freeze: u64,
    /// CRIU's dump, as ckpt waited for it.
    pub dump: u64,
    /// Checksumming, sealing and publishing the checkpoint.
    pub publish: u64,
    /// Stopping the container after the dump (0 with --leave-running).
    pub stop: u64,
}

/// `start --print-stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StartStats {
    /// The whole `ckpt start`, from finding the checkpoint to the end
    /// (Podman: `podman_restore_duration`).
    pub ckpt_restore_duration: u64,
    /// One entry: the container restored.
    pub container_statistics: Vec<ContainerRestoreStats>,
}

/// One container's restore statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerRestoreStats {
    /// The container restored into (`--name`'s id, or the original).
    pub id: String,
    /// The engine's restore: `runc|crun restore` as ckpt waited for it, or
    /// Docker's start-with-checkpoint call.
    pub runtime_restore_duration: u64,
    /// From CRIU's stats-restore; `null` when ckpt has none (Docker's, or
    /// one CRIU did not write).
    pub criu_statistics: Option<CriuRestoreStatistics>,
    pub phases: RestorePhases,
}

/// CRIU's restore statistics, named as CRIU and Podman name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CriuRestoreStatistics {
    pub pages_compared: u64,
    pub pages_skipped_cow: u64,
    pub forking_time: u64,
    pub restore_time: u64,
    pub pages_restored: u64,
}

impl From<RestoreStats> for CriuRestoreStatistics {
    fn from(s: RestoreStats) -> Self {
        CriuRestoreStatistics {
            pages_compared: s.pages_compared,
            pages_skipped_cow: s.pages_skipped_cow,
            forking_time: s.forking_us,
            restore_time: s.restore_us,
            pages_restored: s.pages_restored,
        }
    }
}

/// ckpt's own phases of a start, in microseconds, in the order they run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RestorePhases {
    /// `--import`: reading the archive into the store (0 without).
    pub import: u64,
    /// Loading the checkpoint and checking its checksums.
    pub verify: u64,
    /// What the engine reads of the target and the host, and the plan.
    pub plan: u64,
    /// The bundle, the removal of a stopped target, the work dir (Docker:
    /// the copy of the container with --name).
    pub prepare: u64,
    /// The engine's restore (the same as `runtime_restore_duration`).
    pub restore: u64,
    /// Checking that the restored init is the checkpointed one.
    pub confirm: u64,
}

/// Microseconds, saturating (no create lasts 584 000 years).
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The statistics as text: one `path: value` line per number, the path as
/// in the JSON (`container_statistics[0].criu_statistics.frozen_time`).
pub fn text_lines(stats: &impl Serialize) -> Vec<String> {
    let mut lines = Vec::new();
    match serde_json::to_value(stats) {
        Ok(v) => flatten("", &v, &mut lines),
        Err(e) => lines.push(format!("(statistics could not be formatted: {e})")),
    }
    lines
}

fn flatten(path: &str, v: &serde_json::Value, lines: &mut Vec<String>) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                flatten(&p, v, lines);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{path}[{i}]"), v, lines);
            }
        }
        Value::String(s) => lines.push(format!("{path}: {s}")),
        other => lines.push(format!("{path}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(criu: Option<CriuDumpStatistics>) -> CheckpointStats {
        CheckpointStats {
            ckpt_checkpoint_duration: 360_749,
            container_statistics: vec![ContainerCheckpointStats {
                id: "web".into(),
                runtime_checkpoint_duration: 177_222,
                criu_statistics: criu,
                phases: CheckpointPhases {
                    preflight: 1,
                    freeze: 2,
                    dump: 3,
                    publish: 4,
                    stop: 5,
                },
            }],
        }
    }

    /// Parses `path: value` lines back into (path, value) pairs.
    fn pairs(lines: &[String]) -> Vec<(String, String)> {
        lines
            .iter()
            .map(|l| {
                let (k, v) = l.split_once(": ").unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    #[test]
    fn the_podman_shape_and_names() {
        let criu = CriuDumpStatistics::from(DumpStats {
            freezing_us: 10,
            frozen_us: 20,
            memdump_us: 30,
            memwrite_us: 40,
            pages_scanned: 50,
            pages_written: 60,
        });
        let v = serde_json::to_value(sample(Some(criu))).unwrap();
        let c = &v["container_statistics"][0];
        assert_eq!(v["ckpt_checkpoint_duration"], 360_749);
        assert_eq!(c["runtime_checkpoint_duration"], 177_222);
        #[rustfmt::skip]
        let want = [("freezing_time", 10), ("frozen_time", 20), ("memdump_time", 30),
                    ("memwrite_time", 40), ("pages_scanned", 50), ("pages_written", 60)];
        for (k, n) in want {
            assert_eq!(c["criu_statistics"][k], n, "{k}");
        }
        assert_eq!(c["phases"]["stop"], 5);
    }

    #[test]
    fn text_and_json_carry_the_same_numbers() {
        let criu = CriuDumpStatistics::from(DumpStats {
            frozen_us: 7,
            ..Default::default()
        });
        for stats in [sample(Some(criu)), sample(None)] {
            let lines = text_lines(&stats);
            let v = serde_json::to_value(&stats).unwrap();
            let mut leaves = 0;
            for (path, value) in pairs(&lines) {
                // Walk the JSON along the text's path.
                let mut cur = &v;
                for part in path.split('.') {
                    cur = match part.split_once('[') {
                        Some((k, i)) => &cur[k][i.trim_end_matches(']').parse::<usize>().unwrap()],
                        None => &cur[part],
                    };
                }
                let json = match cur {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                assert_eq!(json, value, "{path}");
                leaves += 1;
            }
            let want = if stats.container_statistics[0].criu_statistics.is_some() {
                14
            } else {
                9
            };
            assert_eq!(leaves, want, "{lines:?}");
        }
        let lines = text_lines(&sample(None));
        assert!(lines.contains(&"container_statistics[0].criu_statistics: null".to_string()));
        assert!(lines.contains(&"container_statistics[0].phases.dump: 3".to_string()));
    }

    #[test]
    fn the_podman_restore_shape_text_and_json_agree() {
        let criu = CriuRestoreStatistics::from(RestoreStats {
            pages_compared: 1,
            pages_skipped_cow: 2,
            forking_us: 3,
            restore_us: 4,
            pages_restored: 5,
        });
        let stats = |criu| StartStats {
            ckpt_restore_duration: 900,
            container_statistics: vec![ContainerRestoreStats {
                id: "web".into(),
                runtime_restore_duration: 600,
                criu_statistics: criu,
                phases: RestorePhases {
                    restore: 600,
                    confirm: 9,
                    ..Default::default()
                },
            }],
        };
        let v = serde_json::to_value(stats(Some(criu))).unwrap();
        let c = &v["container_statistics"][0];
        assert_eq!(v["ckpt_restore_duration"], 900);
        assert_eq!(c["runtime_restore_duration"], 600);
        #[rustfmt::skip]
        let want = [("pages_compared", 1), ("pages_skipped_cow", 2), ("forking_time", 3),
                    ("restore_time", 4), ("pages_restored", 5)];
        for (k, n) in want {
            assert_eq!(c["criu_statistics"][k], n, "{k}");
        }
        let lines = text_lines(&stats(Some(criu)));
        for want in [
            "ckpt_restore_duration: 900",
            "container_statistics[0].criu_statistics.restore_time: 4",
            "container_statistics[0].phases.confirm: 9",
            "container_statistics[0].phases.import: 0",
            "container_statistics[0].runtime_restore_duration: 600",
        ] {
            assert!(lines.iter().any(|l| l == want), "{want:?} not in {lines:?}");
        }
        // 1 + id + runtime + 5 CRIU numbers + 6 phases.
        assert_eq!(lines.len(), 14, "{lines:?}");
        let lines = text_lines(&stats(None));
        assert!(lines.contains(&"container_statistics[0].criu_statistics: null".to_string()));
    }

    #[test]
    fn micros_saturates() {
        assert_eq!(micros(Duration::from_millis(3)), 3000);
        assert_eq!(micros(Duration::MAX), u64::MAX);
    }
}
