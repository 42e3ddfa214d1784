//! `ckpt __relay FILE`: copies stdin to FILE until EOF.
//!
//! A restored container's stdout/stderr must stay a pipe (a host file
//! would make the next checkpoint fail with "Can't lookup mount"), and
//! something has to read that pipe after ckpt exits. This tiny process,
//! started in its own session by `ckpt start`, is that reader.
//!
//! FILE is opened like every file in the store: never through a symlink,
//! and only if it is a regular file (made 0600). If it cannot be, or a
//! write fails, the relay still reads to EOF, discarding: exiting early
//! would kill the container's next write with SIGPIPE. It then exits with
//! the error.

use crate::cli::RelayArgs;
use crate::error::Error;
use std::io::{Read, Write};
use std::path::Path;

pub fn run(args: &RelayArgs) -> Result<(), Error> {
    relay(std::io::stdin().lock(), &args.output)
}

/// Copies `input` to the end of `output` until `input` ends.
pub(super) fn relay(mut input: impl Read, output: &Path) -> Result<(), Error> {
    let (mut sink, mut failed) = match crate::store::open_append_private(output) {
        Ok(file) => (Some(file), None),
        Err(e) => (None, Some(Error::from(e))),
    };
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(Error::Io {
                    op: "read",
                    path: "(stdin)".into(),
                    source,
                })
            }
        };
        if let Some(Err(e)) = sink.as_mut().map(|f| f.write_all(&buf[..n])) {
            sink = None;
            failed = Some(
                Error::Io {
                    op: "append to",
                    path: output.to_path_buf(),
                    source: e,
                }
                .context("the rest of the output was discarded"),
            );
        }
    }
    failed.map_or(Ok(()), Err)
}
