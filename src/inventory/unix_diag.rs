//! Unix socket peers, asked of the kernel through `NETLINK_SOCK_DIAG`.
//!
//! `/proc/net/unix` says whether a socket is connected but not to what.
//! The kernel's unix_diag dump does: with `UDIAG_SHOW_PEER` each socket
//! comes with the inode of its peer. A dump covers the network namespace
//! the netlink socket was created in, so the dump runs on a short-lived
//! thread that first joins the container's network namespace (setns with
//! `CLONE_NEWNET` is allowed for one thread of a multi-threaded process).
//! The thread exits afterwards, so ckpt's own threads never change
//! namespace.
//!
//! Wire format (all integers in host byte order):
//!
//! ```text
//! request:  nlmsghdr{len, type=SOCK_DIAG_BY_FAMILY, flags=REQUEST|DUMP, seq, pid}
//!           unix_diag_req{family u8, protocol u8, pad u16, states u32,
//!                         ino u32, show u32, cookie [u32; 2]}
//! replies:  nlmsghdr + unix_diag_msg{family u8, type u8, state u8, pad u8,
//!                                    ino u32, cookie [u32; 2]}
//!           + rtattr{len u16, type u16, data}...  (UNIX_DIAG_PEER: u32)
//!           ... until NLMSG_DONE (or NLMSG_ERROR)
//! ```
//!
//! Promises only to read: it never changes a socket. Fails (and the caller
//! reports peers as unknown) without `CAP_SYS_ADMIN` for a foreign
//! namespace, or where the proc root is not a real procfs.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// `SOCK_DIAG_BY_FAMILY` from `linux/sock_diag.h`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `UDIAG_SHOW_PEER` from `linux/unix_diag.h`.
const UDIAG_SHOW_PEER: u32 = 0x0000_0004;
/// `UNIX_DIAG_PEER` attribute type from `linux/unix_diag.h`.
const UNIX_DIAG_PEER: u16 = 2;
/// Size of `struct nlmsghdr`.
const NLMSG_HDRLEN: usize = 16;
/// Size of `struct unix_diag_req`.
const UNIX_DIAG_REQ_LEN: usize = 24;
/// Size of `struct unix_diag_msg`.
const UNIX_DIAG_MSG_LEN: usize = 16;
/// Large enough for any dump message the kernel builds (iproute2 uses 32 KiB).
const RECV_BUFFER: usize = 64 * 1024;
/// A dump answers at once; the timeout only guards against a stuck read.
const RECV_TIMEOUT_SECS: libc::time_t = 5;

/// Returns socket inode → peer inode for every unix socket that has a peer
/// in the network namespace `ns_net` (a `<proc_root>/<pid>/ns/net` link).
/// `own_ns_net` is the link of the calling thread's own namespace
/// (`<proc_root>/thread-self/ns/net`); when both name the same namespace no
/// setns is needed, which lets an unprivileged caller inspect itself.
pub(super) fn unix_peers(ns_net: &Path, own_ns_net: &Path) -> io::Result<HashMap<u64, u64>> {
    let target = std::fs::read_link(ns_net)?;
    let enter = std::fs::read_link(own_ns_net).ok().as_ref() != Some(&target);
    let ns_net: PathBuf = ns_net.to_path_buf();
    std::thread::Builder::new()
        .name("ckpt-sock-diag".into())
        .spawn(move || {
            if enter {
                enter_net_ns(&ns_net)?;
            }
            dump_unix_peers()
        })?
        .join()
        .map_err(|_| io::Error::other("sock_diag thread panicked"))?
}

fn enter_net_ns(ns_net: &Path) -> io::Result<()> {
    let ns = File::open(ns_net)?;
    // SAFETY: `ns` is an open fd for the whole call; setns(2) reads no
    // memory of ours and, with CLONE_NEWNET, changes only the namespace of
    // the calling thread, which is the dedicated thread that exits after
    // the dump.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn dump_unix_peers() -> io::Result<HashMap<u64, u64>> {
    // SAFETY: socket(2) takes no pointers; the result is checked below.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a freshly created fd that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    set_recv_timeout(&sock)?;

    let request = build_request();
    // SAFETY: pointer and length describe `request`, alive for the call; the
    // kernel only reads from it. An unconnected netlink socket sends to the
    // kernel (port id 0).
    let sent = unsafe { libc::send(sock.as_raw_fd(), request.as_ptr().cast(), request.len(), 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    if sent as usize != request.len() {
        return Err(io::Error::other("short send of sock_diag request"));
    }

    let mut buf = vec![0u8; RECV_BUFFER];
    let mut peers = HashMap::new();
    loop {
        // SAFETY: pointer and length describe `buf`, which the kernel may
        // fill up to its length; `buf` outlives the call.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if n == 0 || parse_messages(&buf[..n as usize], &mut peers)? {
            return Ok(peers);
        }
    }
}

fn set_recv_timeout(sock: &OwnedFd) -> io::Result<()> {
    let timeout = libc::timeval {
        tv_sec: RECV_TIMEOUT_SECS,
        tv_usec: 0,
    };
    // SAFETY: pointer and length describe `timeout`, a valid timeval alive
    // for the call; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An `nlmsghdr` + `unix_diag_req` asking for every unix socket with its peer.
fn build_request() -> Vec<u8> {
    let len = (NLMSG_HDRLEN + UNIX_DIAG_REQ_LEN) as u32;
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    let mut req = Vec::with_capacity(len as usize);
    req.extend_from_slice(&len.to_ne_bytes());
    req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend_from_slice(&flags.to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // seq
    req.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel fills it in
    req.push(libc::AF_UNIX as u8); // sdiag_family
    req.push(0); // sdiag_protocol
    req.extend_from_slice(&0u16.to_ne_bytes()); // pad
    req.extend_from_slice(&u32::MAX.to_ne_bytes()); // udiag_states: all
    req.extend_from_slice(&0u32.to_ne_bytes()); // udiag_ino: ignored by dumps
    req.extend_from_slice(&UDIAG_SHOW_PEER.to_ne_bytes());
    req.extend_from_slice(&u32::MAX.to_ne_bytes()); // cookie: none
    req.extend_from_slice(&u32::MAX.to_ne_bytes());
    req
}

/// Parses one datagram of netlink messages into `peers`. Returns true once
/// the dump is complete (`NLMSG_DONE`).
fn parse_messages(bytes: &[u8], peers: &mut HashMap<u64, u64>) -> io::Result<bool> {
    let mut off = 0;
    while off + NLMSG_HDRLEN <= bytes.len() {
        let len = u32_at(bytes, off) as usize;
        let kind = u16_at(bytes, off + 4);
        if len < NLMSG_HDRLEN || off + len > bytes.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "truncated netlink message"));
        }
        let payload = &bytes[off + NLMSG_HDRLEN..off + len];
        match i32::from(kind) {
            libc::NLMSG_DONE => return Ok(true),
            libc::NLMSG_ERROR => {
                // nlmsgerr starts with a negative errno; 0 is an ack.
                let code = if payload.len() >= 4 {
                    u32_at(payload, 0) as i32
                } else {
                    -libc::EIO
                };
                if code != 0 {
                    return Err(io::Error::from_raw_os_error(-code));
                }
            }
            _ if kind == SOCK_DIAG_BY_FAMILY => parse_unix_diag_msg(payload, peers),
            _ => {}
        }
        off += align4(len);
    }
    Ok(false)
}

fn parse_unix_diag_msg(payload: &[u8], peers: &mut HashMap<u64, u64>) {
    if payload.len() < UNIX_DIAG_MSG_LEN {
        return;
    }
    let inode = u64::from(u32_at(payload, 4));
    let mut off = UNIX_DIAG_MSG_LEN;
    while off + 4 <= payload.len() {
        let len = usize::from(u16_at(payload, off));
        let kind = u16_at(payload, off + 2);
        if len < 4 || off + len > payload.len() {
            return;
        }
        if kind == UNIX_DIAG_PEER && len >= 8 {
            let peer = u64::from(u32_at(payload, off + 4));
            if peer != 0 {
                peers.insert(inode, peer);
            }
        }
        off += align4(len);
    }
}

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

fn u16_at(bytes: &[u8], off: usize) -> u16 {
    u16::from_ne_bytes([bytes[off], bytes[off + 1]])
}

fn u32_at(bytes: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([bytes[off], bytes[off + 1], bytes[off + 2], bytes[off + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, payload: &[u8]) -> Vec<u8> {
        let len = (NLMSG_HDRLEN + payload.len()) as u32;
        let mut msg = Vec::new();
        msg.extend_from_slice(&len.to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&[0; 10]);
        msg.extend_from_slice(payload);
        msg.resize(align4(msg.len()), 0);
        msg
    }

    fn diag_msg(inode: u32, peer: Option<u32>) -> Vec<u8> {
        let mut p = vec![1, 1, 1, 0];
        p.extend_from_slice(&inode.to_ne_bytes());
        p.extend_from_slice(&[0; 8]);
        // An unrelated attribute first (UNIX_DIAG_NAME, 5 bytes → padded).
        p.extend_from_slice(&5u16.to_ne_bytes());
        p.extend_from_slice(&0u16.to_ne_bytes());
        p.extend_from_slice(&[b'x', 0, 0, 0]);
        if let Some(peer) = peer {
            p.extend_from_slice(&8u16.to_ne_bytes());
            p.extend_from_slice(&UNIX_DIAG_PEER.to_ne_bytes());
            p.extend_from_slice(&peer.to_ne_bytes());
        }
        p
    }

    #[test]
    fn request_has_the_kernel_layout() {
        let req = build_request();
        assert_eq!(req.len(), 40);
        assert_eq!(u32_at(&req, 0), 40);
        assert_eq!(u16_at(&req, 4), SOCK_DIAG_BY_FAMILY);
        assert_eq!(req[16], libc::AF_UNIX as u8);
        assert_eq!(u32_at(&req, 28), UDIAG_SHOW_PEER);
    }

    #[test]
    fn dump_messages_give_peers_until_done() {
        let mut bytes = message(SOCK_DIAG_BY_FAMILY, &diag_msg(10, Some(11)));
        bytes.extend(message(SOCK_DIAG_BY_FAMILY, &diag_msg(12, None)));
        let mut peers = HashMap::new();
        assert!(!parse_messages(&bytes, &mut peers).unwrap());
        assert_eq!(peers, HashMap::from([(10, 11)]));

        let done = message(libc::NLMSG_DONE as u16, &[0; 4]);
        assert!(parse_messages(&done, &mut peers).unwrap());
    }

    #[test]
    fn netlink_error_becomes_io_error() {
        let bytes = message(libc::NLMSG_ERROR as u16, &(-libc::EPERM).to_ne_bytes());
        let err = parse_messages(&bytes, &mut HashMap::new()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    }
}
