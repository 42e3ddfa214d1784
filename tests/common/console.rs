//! A minimal `--console-socket` receiver, so tests can run a detached
//! `process.terminal: true` container like a shim does: runc connects to the
//! socket and sends the pty master with SCM_RIGHTS; we keep the master open
//! and drain it (a pty whose master nobody reads eventually blocks the
//! writer). Nothing here interprets the output beyond collecting it.

use std::fs::File;
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// A listening console socket. The receiving thread owns the pty master and
/// reads it until the container's side closes (EIO), then drops it.
pub struct ConsoleSocket {
    path: PathBuf,
    output: Arc<Mutex<Vec<u8>>>,
}

impl ConsoleSocket {
    /// Binds `path` and starts the thread that accepts one connection.
    pub fn listen(path: &Path) -> ConsoleSocket {
        let listener =
            UnixListener::bind(path).unwrap_or_else(|e| panic!("bind console socket {}: {e}", path.display()));
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&output);
        thread::spawn(move || {
            let (conn, _) = match listener.accept() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("console socket: accept failed: {e}");
                    return;
                }
            };
            let master = match receive_fd(conn.as_raw_fd()) {
                Ok(fd) => fd,
                Err(e) => {
                    eprintln!("console socket: no pty master received: {e}");
                    return;
                }
            };
            drop(conn);
            let mut master = File::from(master);
            let mut buf = [0u8; 4096];
            // EIO once the last slave fd closes, i.e. the container died.
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        ConsoleSocket {
            path: path.to_path_buf(),
            output,
        }
    }

    /// Where runc should connect (`--console-socket`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Everything the container wrote to its terminal so far.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }
}

/// Receives one file descriptor sent with SCM_RIGHTS on `sock`.
fn receive_fd(sock: RawFd) -> Result<OwnedFd, String> {
    // runc sends the pty's name as the payload; we only need the fd.
    let mut payload = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut payload)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(|e| format!("recvmsg: {e}"))?;
    for c in msg.cmsgs().map_err(|e| format!("control message: {e}"))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed `fd` in this process for
                // us (SCM_RIGHTS); nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err("message carried no file descriptor".into())
}
