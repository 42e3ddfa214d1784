//! The per-container lock: one ckpt command at a time per container.
//!
//! `create`, `rm` and `start` hold an exclusive `flock(2)` on
//! `<root>/<id>/.ckpt.lock` for as long as they work on the container.
//! The kernel drops a flock when the last fd of its open file closes,
//! including when the process dies, so a crashed ckpt never leaves a stale
//! lock behind and there is no stale-lock cleanup to do.
//!
//! The lock file exists only while a command holds the lock (or waits for
//! it): the holder unlinks it before it lets go, and also removes the
//! container's directory if it created that directory for the lock and
//! left nothing in it. So a refused command leaves nothing behind, not
//! even the lock of a container the store did not know. That is safe
//! because every acquirer, once it holds the flock, checks that the file
//! it locked is still the one at the path, and starts over if not
//! ([`Acquired::Gone`]).
use super::{io_err, StoreError};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a waiting [`ContainerLock::acquire`] retries.
const RETRY_EVERY: Duration = Duration::from_millis(50);

/// Held while a command works on a container; released on drop: the lock
/// file is unlinked, then the fd closes and the kernel releases the flock
/// with it. A lock taken with [`ContainerLock::removing_dir_if_unused`]
/// also removes its directory, if empty, in between.
#[derive(Debug)]
pub struct ContainerLock {
    flock: Option<Flock<File>>,
    path: PathBuf,
    remove_dir_if_unused: bool,
}

/// The outcome of one attempt of [`ContainerLock::try_acquire`].
#[derive(Debug)]
pub enum Acquired {
    Locked(ContainerLock),
    /// The lock file (or its directory) was removed by its last holder
    /// while this attempt waited: create the directory again and retry.
    Gone,
}

impl ContainerLock {
    /// Opens (creating with mode 0600) the lock file at `path` and takes an
    /// exclusive flock on it, retrying every 50 ms for up to `wait`. Gives
    /// [`StoreError::Busy`] if another holder keeps it that long. The
    /// lock file's directory must exist.
    pub fn acquire(path: &Path, container_id: &str, wait: Duration) -> Result<ContainerLock, StoreError> {
        let deadline = Instant::now() + wait;
        loop {
            match ContainerLock::try_acquire(path, container_id, deadline)? {
                Acquired::Locked(lock) => return Ok(lock),
                // Only the file went: open (create) it again.
                Acquired::Gone if path.parent().is_some_and(Path::is_dir) => continue,
                Acquired::Gone => {
                    return Err(StoreError::Io {
                        op: "open lock file",
                        path: path.to_path_buf(),
                        source: io::ErrorKind::NotFound.into(),
                    })
                }
            }
        }
    }

    /// One attempt: open the lock file, wait for the flock until
    /// `deadline`, then check that the locked file is still the one at
    /// `path` (a holder may have removed it, see the type's docs).
    pub fn try_acquire(path: &Path, container_id: &str, deadline: Instant) -> Result<Acquired, StoreError> {
        let mut file = match open_lock_file(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Acquired::Gone),
            Err(e) => return Err(super::files::open_err("open lock file", path)(e)),
        };
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(flock) => {
                    if !still_at_path(&flock, path)? {
                        return Ok(Acquired::Gone);
                    }
                    return Ok(Acquired::Locked(ContainerLock {
                        flock: Some(flock),
                        path: path.to_path_buf(),
                        remove_dir_if_unused: false,
                    }));
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

    /// Makes the drop also remove the lock file's directory when nothing
    /// else is in it (for a directory created to take this lock).
    pub fn removing_dir_if_unused(mut self) -> ContainerLock {
        self.remove_dir_if_unused = true;
        self
    }

    /// The lock file this lock is held on.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ContainerLock {
    fn drop(&mut self) {
        // Never fails the command: at worst the lock file (or an empty
        // directory) stays, which is harmless.
        if let Err(e) = std::fs::remove_file(&self.path) {
            log::debug!("cannot remove the lock file {}: {e}", self.path.display());
        } else if self.remove_dir_if_unused {
            if let Some(dir) = self.path.parent() {
                // Fails, as it should, when the command wrote anything there.
                if std::fs::remove_dir(dir).is_ok() {
                    log::debug!("removed {}, which this command created and left empty", dir.display());
                }
            }
        }
        // The flock is released only now, after the removal: a waiter then
        // finds its file gone and starts over (`Acquired::Gone`).
        drop(self.flock.take());
    }
}

/// Whether the file behind `flock` is still linked at `path`.
fn still_at_path(flock: &Flock<File>, path: &Path) -> Result<bool, StoreError> {
    let held = flock.metadata().map_err(io_err("inspect", path))?;
    match std::fs::symlink_metadata(path) {
        Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("inspect", path)(e)),
    }
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
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
