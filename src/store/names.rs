//! Validation of checkpoint names and container ids.
//!
//! Both become single path components under the store root, so the rules
//! are strict and ASCII-only: a name that passes can never be empty, `.`,
//! `..`, contain `/` or NUL, or look like another name through a Unicode
//! look-alike. Pure functions; this module never touches the filesystem.
use super::StoreError;

/// Longest accepted checkpoint name or container id, in bytes.
pub const MAX_LEN: usize = 128;

/// Why `s` breaks the rule `[a-zA-Z0-9][a-zA-Z0-9_.-]*` (at most
/// [`MAX_LEN`] bytes), or `None` if it follows it.
fn component_problem(s: &str) -> Option<&'static str> {
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return Some("it is empty");
    };
    if bytes.len() > MAX_LEN {
        return Some("it is longer than 128 bytes");
    }
    if !bytes.is_ascii() {
        return Some("only ASCII letters, digits, '_', '.' and '-' are allowed");
    }
    if !first.is_ascii_alphanumeric() {
        return Some("it must start with an ASCII letter or digit");
    }
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    if !bytes.iter().all(allowed) {
        return Some("only ASCII letters, digits, '_', '.' and '-' are allowed");
    }
    None
}

/// Checks a checkpoint name against Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`,
/// not ending in `.`, 1 to 128 bytes.
pub fn validate_checkpoint_name(name: &str) -> Result<(), StoreError> {
    let reason = component_problem(name).or_else(|| name.ends_with('.').then_some("it must not end with '.'"));
    match reason {
        None => Ok(()),
        Some(reason) => Err(StoreError::InvalidName {
            name: name.to_string(),
            reason,
        }),
    }
}

/// Checks a checkpoint name for a Docker container: the general rule plus
/// Docker's own minimum of 2 characters (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`), or
/// `docker start --checkpoint` would refuse the checkpoint.
pub fn validate_docker_checkpoint_name(name: &str) -> Result<(), StoreError> {
    validate_checkpoint_name(name)?;
    if name.len() < 2 {
        return Err(StoreError::InvalidName {
            name: name.to_string(),
            reason: "Docker requires checkpoint names of at least 2 characters",
        });
    }
    Ok(())
}

/// Checks a container id against runc's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`,
/// 1 to 128 bytes. (The rule already excludes `.` and `..`, which could
/// otherwise name a directory outside the container's own.)
pub fn validate_container_id(id: &str) -> Result<(), StoreError> {
    match component_problem(id) {
        None => Ok(()),
        Some(reason) => Err(StoreError::InvalidContainerId {
            id: id.to_string(),
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_names() {
        let long_ok = "a".repeat(128);
        let too_long = "a".repeat(129);
        let cases: &[(&str, bool)] = &[
            ("cp1", true),
            ("A", true),
            ("9lives", true),
            ("before-upgrade_2024.01.02", true),
            ("a..b", true),
            (&long_ok, true),
            ("", false),
            (".", false),
            ("..", false),
            ("a/b", false),
            ("/abs", false),
            ("a\0b", false),
            ("cp.", false),
            (&too_long, false),
            ("ch\u{0435}ckpoint", false), // Cyrillic е
            ("-rf", false),
            ("_x", false),
            (".hidden", false),
            ("a b", false),
        ];
        for (name, ok) in cases {
            let got = validate_checkpoint_name(name);
            assert_eq!(got.is_ok(), *ok, "{name:?}: {got:?}");
            if let Err(e) = got {
                assert!(matches!(e, StoreError::InvalidName { .. }), "{e:?}");
            }
        }
    }

    #[test]
    fn rejection_reasons_are_specific() {
        let reason = |n: &str| match validate_checkpoint_name(n) {
            Err(StoreError::InvalidName { reason, .. }) => reason,
            other => panic!("{n:?}: {other:?}"),
        };
        assert_eq!(reason(""), "it is empty");
        assert_eq!(reason("x."), "it must not end with '.'");
        assert_eq!(reason("-x"), "it must start with an ASCII letter or digit");
        assert!(reason("ch\u{0435}ckpoint").contains("ASCII"));
        assert!(reason(&"b".repeat(129)).contains("128"));
    }

    #[test]
    fn container_ids() {
        let full = "4f6a1c0e9b7d".repeat(5) + "abcd";
        let cases: &[(&str, bool)] = &[
            ("web", true),
            (&full, true),
            ("my_ctr.v2-1", true),
            ("ends.", true), // runc allows it; only names have the trailing-dot rule
            ("", false),
            (".", false),
            ("..", false),
            ("../etc", false),
            ("a/b", false),
            ("/abs", false),
            ("a\0", false),
            (&"c".repeat(129), false),
            ("w\u{0435}b", false),
        ];
        for (id, ok) in cases {
            let got = validate_container_id(id);
            assert_eq!(got.is_ok(), *ok, "{id:?}: {got:?}");
            if let Err(e) = got {
                assert!(matches!(e, StoreError::InvalidContainerId { .. }), "{e:?}");
            }
        }
    }

    #[test]
    fn docker_names_need_two_characters() {
        assert!(validate_docker_checkpoint_name("ab").is_ok());
        assert!(validate_docker_checkpoint_name("a").is_err());
        assert!(validate_docker_checkpoint_name("a.").is_err());
        assert!(
            validate_checkpoint_name("a").is_ok(),
            "runc and crun allow one character"
        );
    }
}
