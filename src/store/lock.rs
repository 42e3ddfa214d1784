//! The per-container lock: one ckpt command at a time per container.
//!
//! `create`, `rm` and `start` hold an exclusive `flock(2)` on
//! `<root>/<id>/.ckpt.lock` for as long as they work on the container.
//! The kernel drops a flock when the last fd of its open file closes,
//! including when the process dies, so a crashed ckpt never leaves a stale
//! lock behind and there is no stale-lock cleanup to do. The lock file
//! itself is left in place (deleting it would race with a waiter that
//! already opened it).
use super::{io_err, StoreError};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a waiting [`ContainerLock::acquire`] retries.
const RETRY_EVERY: Duration = Duration::from_millis(50);

/// Held while a command works on a container; released on drop (the fd
/// closes, and the kernel releases the flock with it).
#[derive(Debug)]
pub struct ContainerLock {
    _flock: Flock<File>,
    path: PathBuf,
}

impl ContainerLock {
    /// Opens (creating with mode 0600) the lock file at `path` and takes an
    /// exclusive flock on it, retrying every 50 ms for up to `wait`. Gives
    /// [`StoreError::Busy`] if another holder keeps it that long.
    pub fn acquire(path: &Path, container_id: &str, wait: Duration) -> Result<ContainerLock, StoreError> {
        let deadline = Instant::now() + wait;
        let mut file = open_lock_file(path)?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(flock) => {
                    return Ok(ContainerLock {
                        _flock: flock,
                        path: path.to_path_buf(),
                    })
                }
                Err((f, Errno::EWOULDBLOCK)) => file = f,
                Err((_, errno)) => return Err(lock_failed(path, errno)),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::Busy {
                    container: container_id.to_string(),
                    path: path.to_path_buf(),
                });
            }
            std::thread::sleep(RETRY_EVERY.min(deadline - now));
        }
    }

    /// The lock file this lock is held on.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn open_lock_file(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_err("open lock file", path))
}

fn lock_failed(path: &Path, errno: Errno) -> StoreError {
    StoreError::Io {
        op: "flock",
        path: path.to_path_buf(),
        source: std::io::Error::from(errno),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn second_acquire_is_busy_until_the_first_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(".ckpt.lock");
        let first = ContainerLock::acquire(&path, "web", Duration::ZERO).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let started = Instant::now();
        let err = ContainerLock::acquire(&path, "web", Duration::from_millis(120)).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(120));
        match err {
            StoreError::Busy { container, path: p } => {
                assert_eq!(container, "web");
                assert_eq!(p, path);
            }
            other => panic!("expected Busy, got {other:?}"),
        }

        drop(first);
        let again = ContainerLock::acquire(&path, "web", Duration::ZERO).unwrap();
        assert_eq!(again.path(), path);
    }

    #[test]
    fn waiter_gets_the_lock_when_the_holder_lets_go() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(".ckpt.lock");
        let first = ContainerLock::acquire(&path, "web", Duration::ZERO).unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(first);
        });
        ContainerLock::acquire(&path, "web", Duration::from_secs(5)).unwrap();
        releaser.join().unwrap();
    }

    #[test]
    fn missing_parent_dir_names_the_step() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("no-such-dir/.ckpt.lock");
        match ContainerLock::acquire(&path, "web", Duration::ZERO).unwrap_err() {
            StoreError::Io { op, path: p, .. } => {
                assert_eq!(op, "open lock file");
                assert_eq!(p, path);
            }
            other => panic!("{other:?}"),
        }
    }
}
