//! Sockets of one network namespace, from `/proc/<pid>/net/*`.
//!
//! An fd only says `socket:[INODE]`; the family and details come from the
//! tables the kernel prints for the namespace the process lives in:
//!
//! ```text
//! net/tcp, tcp6, udp, udp6   sl local rem st tx:rx tr:when retr uid timeout INODE ...
//!                            0: 0100007F:0050 00000000:0000 0A ...         12345
//! net/unix                   Num RefCount Protocol Flags Type St INODE [PATH]
//! net/netlink                sk Eth Pid Groups Rmem Wmem Dump Locks Drops INODE
//! ```
//!
//! Addresses in the inet tables are the kernel's in-memory words printed in
//! hex, so decoding them depends on this machine's byte order.
//! Never fails on a missing table (no IPv6, fixture trees): the table is
//! then empty and its sockets become [`FdKind::OtherSocket`].

use super::{FdKind, InventoryError};
use crate::procfs::Process;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// `St` of a unix socket that is connected to a peer (`SS_CONNECTED`).
const UNIX_SS_CONNECTED: &str = "03";

/// Socket kinds by inode, for one network namespace.
#[derive(Debug, Default)]
pub(super) struct SocketTable {
    by_inode: HashMap<u64, FdKind>,
}

impl SocketTable {
    /// Reads every table of the network namespace `process` lives in.
    pub(super) fn read(process: &Process) -> Result<SocketTable, InventoryError> {
        let mut table = SocketTable::default();
        for (file, parse) in [
            ("tcp", parse_tcp as fn(&str, bool, &mut SocketTable)),
            ("tcp6", parse_tcp),
            ("udp", parse_udp),
            ("udp6", parse_udp),
        ] {
            if let Some(text) = process.read_optional(&format!("net/{file}"))? {
                parse(&text, file.ends_with('6'), &mut table);
            }
        }
        if let Some(text) = process.read_optional("net/unix")? {
            parse_unix(&text, &mut table);
        }
        if let Some(text) = process.read_optional("net/netlink")? {
            parse_netlink(&text, &mut table);
        }
        Ok(table)
    }

    /// The kind of socket `inode`; [`FdKind::OtherSocket`] when no table
    /// lists it (packet, vsock, or a socket of another namespace).
    pub(super) fn kind_of(&self, inode: u64) -> FdKind {
        self.by_inode
            .get(&inode)
            .cloned()
            .unwrap_or(FdKind::OtherSocket { inode })
    }

    fn insert(&mut self, inode: u64, kind: FdKind) {
        // Inode 0 marks sockets that have no file (e.g. TIME_WAIT entries,
        // connections not yet accepted): no fd can refer to them.
        if inode != 0 {
            self.by_inode.insert(inode, kind);
        }
    }
}

/// One row of a tcp/udp table, split into what ckpt uses.
struct InetRow<'a> {
    local: &'a str,
    remote: &'a str,
    state: &'a str,
    inode: u64,
}

fn inet_rows(text: &str) -> impl Iterator<Item = InetRow<'_>> {
    // The first line is a header; rows that do not parse are skipped so a
    // kernel that adds columns at the end does not break us.
    text.lines().skip(1).filter_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        Some(InetRow {
            local: fields.get(1)?,
            remote: fields.get(2)?,
            state: fields.get(3)?,
            inode: fields.get(9)?.parse().ok()?,
        })
    })
}

fn parse_tcp(text: &str, v6: bool, table: &mut SocketTable) {
    for row in inet_rows(text) {
        let (Some(local), Some(remote)) = (format_endpoint(row.local, v6), format_endpoint(row.remote, v6)) else {
            continue;
        };
        let state = tcp_state_name(row.state);
        table.insert(
            row.inode,
            FdKind::TcpSocket {
                inode: row.inode,
                state,
                local,
                remote,
            },
        );
    }
}

fn parse_udp(text: &str, v6: bool, table: &mut SocketTable) {
    for row in inet_rows(text) {
        let Some(local) = format_endpoint(row.local, v6) else {
            continue;
        };
        table.insert(
            row.inode,
            FdKind::UdpSocket {
                inode: row.inode,
                local,
            },
        );
    }
}

/// `0100007F:1F90` → `127.0.0.1:8080`; with `v6`, 32 hex digits → `[::1]:8080`.
fn format_endpoint(field: &str, v6: bool) -> Option<String> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    if v6 {
        if addr.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (i, chunk) in bytes.chunks_mut(4).enumerate() {
            // The kernel prints each of the four 32-bit words with %08X, so
            // each word's digits are in this machine's byte order.
            let word = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        Some(format!("[{}]:{port}", Ipv6Addr::from(bytes)))
    } else {
        let word = u32::from_str_radix(addr, 16).ok()?;
        Some(format!("{}:{port}", Ipv4Addr::from(word.to_ne_bytes())))
    }
}

/// The name of a TCP state number (`include/net/tcp_states.h`).
fn tcp_state_name(hex: &str) -> String {
    let name = match u8::from_str_radix(hex, 16) {
        Ok(0x01) => "ESTABLISHED",
        Ok(0x02) => "SYN_SENT",
        Ok(0x03) => "SYN_RECV",
        Ok(0x04) => "FIN_WAIT1",
        Ok(0x05) => "FIN_WAIT2",
        Ok(0x06) => "TIME_WAIT",
        Ok(0x07) => "CLOSE",
        Ok(0x08) => "CLOSE_WAIT",
        Ok(0x09) => "LAST_ACK",
        Ok(0x0A) => "LISTEN",
        Ok(0x0B) => "CLOSING",
        Ok(0x0C) => "NEW_SYN_RECV",
        _ => return format!("UNKNOWN({hex})"),
    };
    name.to_string()
}

fn parse_unix(text: &str, table: &mut SocketTable) {
    for line in text.lines().skip(1) {
        let (fields, rest) = split_fields(line, 7);
        let (Some(state), Some(Ok(inode))) = (fields.get(5), fields.get(6).map(|f| f.parse::<u64>())) else {
            continue;
        };
        // The path is the rest of the line, verbatim: a bound path may
        // contain spaces. Abstract names start with '@'.
        let path = (!rest.is_empty()).then(|| rest.to_string());
        let connected = *state == UNIX_SS_CONNECTED;
        // peer_outside is filled in later by the caller, which knows the
        // whole container; until then it is unknown.
        table.insert(
            inode,
            FdKind::UnixSocket {
                inode,
                path,
                connected,
                peer_outside: None,
            },
        );
    }
}

fn parse_netlink(text: &str, table: &mut SocketTable) {
    for line in text.lines().skip(1) {
        // Inode is the last column on every kernel that prints one.
        if let Some(Ok(inode)) = line.split_whitespace().last().map(str::parse::<u64>) {
            table.insert(inode, FdKind::NetlinkSocket { inode });
        }
    }
}

/// Splits the first `n` whitespace-separated fields off `line` and returns
/// them with the rest of the line (leading whitespace removed, trailing
/// newline-free, otherwise untouched).
fn split_fields(line: &str, n: usize) -> (Vec<&str>, &str) {
    let mut fields = Vec::with_capacity(n);
    let mut rest = line;
    while fields.len() < n {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        fields.push(&rest[..end]);
        rest = &rest[end..];
    }
    (fields, rest.trim_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP_HEADER: &str =
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    #[cfg(target_endian = "little")]
    #[test]
    fn tcp_v4_established_is_decoded() {
        let text = format!(
            "{TCP_HEADER}   0: 0100007F:1F90 0200A8C0:D431 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0 20 4 30 10 -1\n\
                          1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4243 1 0 100 0 0 10 0\n\
                          2: 0100007F:1F90 0100007F:AAAA 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0\n"
        );
        let mut table = SocketTable::default();
        parse_tcp(&text, false, &mut table);
        assert_eq!(
            table.kind_of(4242),
            FdKind::TcpSocket {
                inode: 4242,
                state: "ESTABLISHED".into(),
                local: "127.0.0.1:8080".into(),
                remote: "192.168.0.2:54321".into(),
            }
        );
        assert!(matches!(table.kind_of(4243), FdKind::TcpSocket { ref state, .. } if state == "LISTEN"));
        // The TIME_WAIT row has inode 0 and must not be recorded.
        assert_eq!(table.by_inode.len(), 2);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn tcp_v6_addresses_are_bracketed() {
        let text = format!(
            "{TCP_HEADER}   0: 00000000000000000000000001000000:0050 0000000000000000FFFF00000100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0\n"
        );
        let mut table = SocketTable::default();
        parse_tcp(&text, true, &mut table);
        assert_eq!(
            table.kind_of(777),
            FdKind::TcpSocket {
                inode: 777,
                state: "ESTABLISHED".into(),
                local: "[::1]:80".into(),
                remote: "[::ffff:127.0.0.1]:50000".into(),
            }
        );
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn udp_keeps_local_address_only() {
        let text = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                      12: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 555 2 0000000000000000 0\n";
        let mut table = SocketTable::default();
        parse_udp(text, false, &mut table);
        assert_eq!(
            table.kind_of(555),
            FdKind::UdpSocket {
                inode: 555,
                local: "0.0.0.0:68".into()
            }
        );
    }

    #[test]
    fn unix_rows_give_path_and_connected_state() {
        let text = "Num       RefCount Protocol Flags    Type St Inode Path\n\
                    0000000000000000: 00000002 00000000 00010000 0001 01 100 /run/my app.sock\n\
                    0000000000000000: 00000003 00000000 00000000 0001 03 101\n\
                    0000000000000000: 00000002 00000000 00000000 0002 01 102 @abstract\n";
        let mut table = SocketTable::default();
        parse_unix(text, &mut table);
        assert_eq!(
            table.kind_of(100),
            FdKind::UnixSocket {
                inode: 100,
                path: Some("/run/my app.sock".into()),
                connected: false,
                peer_outside: None
            }
        );
        assert_eq!(
            table.kind_of(101),
            FdKind::UnixSocket {
                inode: 101,
                path: None,
                connected: true,
                peer_outside: None
            }
        );
        assert!(matches!(table.kind_of(102), FdKind::UnixSocket { path: Some(ref p), .. } if p == "@abstract"));
    }

    #[test]
    fn netlink_and_unknown_inodes() {
        let text = "sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n\
                    ffff888100a4b000 0   812        00000000 0        0        0     2        0        9001\n";
        let mut table = SocketTable::default();
        parse_netlink(text, &mut table);
        assert_eq!(table.kind_of(9001), FdKind::NetlinkSocket { inode: 9001 });
        assert_eq!(table.kind_of(9002), FdKind::OtherSocket { inode: 9002 });
    }

    #[test]
    fn unknown_tcp_state_keeps_its_number() {
        assert_eq!(tcp_state_name("1F"), "UNKNOWN(1F)");
        assert_eq!(tcp_state_name("08"), "CLOSE_WAIT");
    }

    #[test]
    fn missing_tables_give_an_empty_table() {
        let dir = tempfile::tempdir().unwrap();
        let table = SocketTable::read(&crate::procfs::ProcRoot::new(dir.path()).process(1)).unwrap();
        assert!(table.by_inode.is_empty());
    }
}
