//! `ckpt __relay FILE`: copies stdin to FILE until EOF.
//!
//! A restored container's stdout/stderr must stay a pipe (a host file
//! would make the next checkpoint fail with "Can't lookup mount"), and
//! something has to read that pipe after ckpt exits. This tiny process,
//! started in its own session by `ckpt start`, is that reader.

use crate::cli::RelayArgs;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;

pub fn run(args: &RelayArgs) -> anyhow::Result<()> {
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&args.output)?;
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => out.write_all(&buf[..n])?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
