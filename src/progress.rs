//! Progress on long work, on stderr, only when stderr is a terminal (so
//! scripts and `--json` consumers never see it).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Shows how much of an expected total a directory has grown to.
pub struct DirProgress {
    bar: Option<ProgressBar>,
    dir: PathBuf,
    last: Instant,
}

impl DirProgress {
    /// A bar for `dir` filling towards `expected` bytes; hidden unless
    /// stderr is a terminal and `enabled`.
    pub fn new(message: &str, dir: &Path, expected: u64, enabled: bool) -> DirProgress {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::with_draw_target(Some(expected.max(1)), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{msg} [{elapsed_precise}] {bar:30} {bytes}/~{total_bytes} ({bytes_per_sec})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.set_message(message.to_string());
            b
        });
        DirProgress {
            bar,
            dir: dir.to_path_buf(),
            last: Instant::now(),
        }
    }

    /// Refreshes from the directory's size, at most 10 times a second.
    pub fn tick(&mut self) {
        let Some(bar) = &self.bar else { return };
        if self.last.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last = Instant::now();
        let size: u64 = std::fs::read_dir(&self.dir)
            .map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0);
        if size > bar.length().unwrap_or(0) {
            bar.set_length(size);
        }
        bar.set_position(size);
    }

    /// Removes the bar.
    pub fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}

/// Shows bytes done of a known total (an archive being written).
pub struct ByteProgress {
    bar: Option<ProgressBar>,
}

impl ByteProgress {
    /// Hidden unless stderr is a terminal and `enabled`.
    pub fn new(message: &str, enabled: bool) -> ByteProgress {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{msg} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} ({bytes_per_sec})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.set_message(message.to_string());
            b
        });
        ByteProgress { bar }
    }

    /// `done` of `total` bytes.
    pub fn set(&self, done: u64, total: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total.max(1));
            b.set_position(done);
        }
    }

    /// Removes the bar.
    pub fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}
