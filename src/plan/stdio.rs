//! PURE: the stdio a runc or crun restore hands the restored container, so
//! that the container can be checkpointed again.
//!
//! runc and crun give CRIU their own fds 0–2 and ask it to put each in
//! place of the recorded stdio *pipe* of the same number
//! (`--inherit-fd fd[i]:pipe:[ino]`, from `descriptors.json`); every other
//! recorded descriptor (the container's `/dev/null`, a file in its mounts)
//! CRIU reopens from the images. Afterwards the runtime records what it
//! handed over as the container's stdio (runc: its own fds; crun: the
//! restored init's), and the next checkpoint's `descriptors.json` repeats
//! that. So whatever ckpt hands for a recorded pipe becomes the container's
//! stdio and must be dumpable: a pipe, never the host's `/dev/null`, which
//! is a file outside the container's mounts (the next `create` refused it,
//! issue 9).
//!
//! Nothing here touches the system.

/// What the runtime gets as one of its fds 0–2 for a restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdioSource {
    /// A recorded stdin pipe: a new pipe whose write end ckpt closes at
    /// once. Reads see end of file, as from `/dev/null`, and the next dump
    /// saves a pipe again.
    EmptyPipe,
    /// A recorded stdout or stderr pipe: the output relay's pipe
    /// (`<store>/<id>/output.log`).
    Relay,
    /// Not a pipe: CRIU reopens the recorded file itself and the runtime's
    /// fd goes unused; `/dev/null`, so that what the runtime records
    /// (`/dev/null`) names no pipe the next restore would re-attach.
    Null,
}

/// The source of each of fds 0–2 for a checkpoint whose init's stdio was
/// recorded as `descriptors` (`readlink /proc/<pid>/fd/{0,1,2}`; a missing
/// entry is not a pipe).
pub fn restored_stdio(descriptors: &[String]) -> [StdioSource; 3] {
    std::array::from_fn(|fd| {
        let pipe = descriptors.get(fd).is_some_and(|d| d.starts_with("pipe:"));
        match (pipe, fd) {
            (false, _) => StdioSource::Null,
            (true, 0) => StdioSource::EmptyPipe,
            (true, _) => StdioSource::Relay,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::StdioSource::{EmptyPipe, Null, Relay};
    use super::*;

    #[test]
    fn each_recorded_pipe_gets_a_pipe_and_nothing_else_does() {
        #[rustfmt::skip]
        let table: &[(&[&str], [StdioSource; 3])] = &[
            // `true | runc run`, or a pipe a harness or containerd's shim holds
            (&["pipe:[7]", "pipe:[8]", "pipe:[8]"], [EmptyPipe, Relay, Relay]),
            // `</dev/null`, reopened by the runtime as the container's own
            (&["/dev/null", "pipe:[8]", "pipe:[9]"], [Null, Relay, Relay]),
            // files inside the container's mounts, reopened by CRIU
            (&["/dev/null", "/var/log/app.log", "pipe:[9]"], [Null, Null, Relay]),
            (&["pipe:[7]", "/dev/null", "/dev/null"], [EmptyPipe, Null, Null]),
            // nothing recorded (a closed fd reads as /dev/null at the dump)
            (&[], [Null, Null, Null]),
            (&["pipe:[7]"], [EmptyPipe, Null, Null]),
            // a socket or anything else is not a pipe runc would map
            (&["socket:[5]", "anon_inode:[eventfd]", "pipe"], [Null, Null, Null]),
        ];
        for (recorded, want) in table {
            let recorded: Vec<String> = recorded.iter().map(|s| s.to_string()).collect();
            assert_eq!(restored_stdio(&recorded), *want, "{recorded:?}");
        }
    }
}
