//! What a command prints on stdout. Commands write their result into an
//! [`Output`] as they finish; `main` prints it once the command is done
//! ([`print`]), then its error, then exits with the command's own code. A
//! reader that went away (`ckpt ls | head`) is not an error of the
//! command's: [`print`] says so as a `BrokenPipe` error, and `main` exits
//! quietly with the code the command decided (`ckpt inspect C | head` still
//! exits 3 for a refused container). Nothing here exits the process.

use crate::error::{exit_status, Error, FAILURE};
use serde::Serialize;
use std::fmt::Write as _;
use std::io::{self, Write};

/// A command's stdout, collected.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    text: String,
    quiet: bool,
}

impl Output {
    /// Output for a command; `quiet` (`-q`) drops what [`Output::say`] says.
    pub fn new(quiet: bool) -> Output {
        Output {
            text: String::new(),
            quiet,
        }
    }

    /// One line of the result (tables, reports): printed even with `-q`.
    pub fn line(&mut self, line: impl std::fmt::Display) {
        let _ = writeln!(self.text, "{line}");
    }

    /// One line of news ("checkpoint … created"): dropped with `-q`.
    pub fn say(&mut self, line: impl std::fmt::Display) {
        if !self.quiet {
            self.line(line);
        }
    }

    /// `value` as pretty JSON, on lines of its own.
    pub fn json(&mut self, value: &impl Serialize) -> Result<(), serde_json::Error> {
        let json = serde_json::to_string_pretty(value)?;
        self.line(json);
        Ok(())
    }

    /// Everything collected.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Writes `out` to `to` and flushes it. A closed reader comes back as an
/// error of kind `BrokenPipe`.
pub fn print(out: &Output, mut to: impl Write) -> io::Result<()> {
    to.write_all(out.text.as_bytes())?;
    to.flush()
}

/// Whether a failed [`print`] only means that the reader went away.
pub fn reader_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

/// The end of every command (`main`'s): prints `out` to `stdout`, then
/// `error`'s chain once to `stderr` (`ckpt: error: …` / `  caused by: …`),
/// and returns the exit code. The code is the command's own whatever
/// became of its reader: a reader that went away is not reported, and
/// stdout failing otherwise is reported, and fails (1) a command that had
/// not failed.
pub fn finish(out: &Output, error: Option<&Error>, stdout: impl Write, mut stderr: impl Write) -> u8 {
    let mut code = exit_status(error);
    if let Err(e) = print(out, stdout) {
        if !reader_gone(&e) {
            let _ = writeln!(stderr, "ckpt: cannot write to stdout: {e}");
            if error.is_none() {
                code = FAILURE;
            }
        }
    }
    if let Some(err) = error {
        let _ = writeln!(stderr, "ckpt: error: {err}");
        let mut cause = std::error::Error::source(err);
        while let Some(c) = cause {
            let _ = writeln!(stderr, "  caused by: {c}");
            cause = c.source();
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader went away after `room` bytes.
    struct ClosedAfter {
        room: usize,
    }

    impl Write for ClosedAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_say_and_json() {
        let mut out = Output::new(false);
        out.line("a table row");
        out.say("news");
        out.json(&serde_json::json!({"k": 1})).unwrap();
        assert_eq!(out.text(), "a table row\nnews\n{\n  \"k\": 1\n}\n");
        let mut quiet = Output::new(true);
        quiet.say("news");
        quiet.line("result");
        assert_eq!(quiet.text(), "result\n");
    }

    #[test]
    fn a_reader_that_went_away_is_said_not_hidden() {
        let mut out = Output::new(false);
        for i in 0..100 {
            out.line(format!("row {i}"));
        }
        let e = print(&out, ClosedAfter { room: 10 }).unwrap_err();
        assert!(reader_gone(&e), "{e}");
        let mut sink = Vec::new();
        print(&out, &mut sink).unwrap();
        assert_eq!(sink, out.text().as_bytes());
        assert!(!reader_gone(&io::Error::from(io::ErrorKind::PermissionDenied)));
    }

    /// (stdout, the command's error, exit code, what stderr says)
    type Case = (Box<dyn Write>, Option<Error>, u8, &'static str);

    fn refused() -> Error {
        Error::NotCheckpointable { count: 2 }
    }

    #[test]
    fn the_code_is_the_commands_whatever_became_of_its_reader() {
        let mut out = Output::new(false);
        out.line("verdict: refused");
        #[rustfmt::skip]
        let table: Vec<Case> = vec![
            (Box::new(Vec::new()), None, 0, ""),
            (Box::new(Vec::new()), Some(refused()), 3, "ckpt: error: the container cannot be checkpointed as is (2 problem(s) above)\n"),
            // `ckpt inspect C | head`: still 3, nothing about the pipe.
            (Box::new(ClosedAfter { room: 3 }), Some(refused()), 3, "ckpt: error: the container cannot be checkpointed as is (2 problem(s) above)\n"),
            // `ckpt ls | head`: a quiet success.
            (Box::new(ClosedAfter { room: 0 }), None, 0, ""),
            (Box::new(Broken), None, 1, "ckpt: cannot write to stdout: permission denied\n"),
            (Box::new(Broken), Some(refused()), 3, "ckpt: cannot write to stdout: permission denied\nckpt: error: the container cannot be checkpointed as is (2 problem(s) above)\n"),
        ];
        for (stdout, error, code, said) in table {
            let mut stderr = Vec::new();
            assert_eq!(finish(&out, error.as_ref(), stdout, &mut stderr), code, "{error:?}");
            assert_eq!(String::from_utf8(stderr).unwrap(), said);
        }
    }

    #[test]
    fn the_error_chain_is_printed_once() {
        let e = Error::from(crate::interrupt::Interrupted(15)).context("nothing was started");
        let mut stderr = Vec::new();
        assert_eq!(finish(&Output::new(false), Some(&e), Vec::new(), &mut stderr), 143);
        assert_eq!(
            String::from_utf8(stderr).unwrap(),
            "ckpt: error: nothing was started\n  caused by: interrupted by signal 15; the container was left as it was before ckpt started\n"
        );
    }

    /// A stdout that fails for another reason than a gone reader.
    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::PermissionDenied.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}
