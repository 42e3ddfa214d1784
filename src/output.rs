//! Writing results to stdout. A reader that goes away (`ckpt ls | head`)
//! ends ckpt quietly instead of a panic: results are printed last, after
//! all work is done, so nothing is left half-finished.

use std::fmt;
use std::io::Write;

/// Writes one line to stdout; exits quietly if stdout is a closed pipe.
pub fn write_line(args: fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
    {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("ckpt: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// `println!` for results: see [`write_line`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => { $crate::output::write_line(format_args!($($arg)*)) };
}
