//! `--checkpoint-dir DIR` (Docker's flag): which store root a directory the
//! user typed names, for one container. PURE: the caller says whether the
//! other reading exists on disk.
//!
//! A checkpoint made with `--checkpoint-dir=/x` lives in
//! `/x/<full-id>/checkpoints/<name>` (ckpt's store layout, and Docker's
//! before it dropped the id), and Docker users know to restore it with
//! `--checkpoint-dir=/x/<full-id>/checkpoints`. So at every verb `DIR` is
//! either the base (`/x`, a store root) or that container's own
//! `<base>/<id>/checkpoints`; both name the same checkpoints. This module
//! never touches the disk and never accepts a path whose meaning depends on
//! where ckpt runs or that climbs out of itself (relative, `.`, `..`).

use std::path::{Component, Path, PathBuf};

/// A `--checkpoint-dir` ckpt refuses (a usage error).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointDirError {
    #[error("--checkpoint-dir {dir:?} {why}")]
    Hostile { dir: PathBuf, why: &'static str },
    #[error("--checkpoint-dir {dir:?} is ambiguous: it is container {id}'s checkpoints directory, and as a base it holds {id}/checkpoints too; pass the base directory {base:?}")]
    Ambiguous { dir: PathBuf, id: String, base: PathBuf },
    #[error("--checkpoint-dir is not supported for Docker container {name}: Docker itself refuses to start from a custom checkpoint directory (moby#37344); its checkpoints live in Docker's own directory")]
    Docker { name: String },
}

/// How `DIR` was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `DIR` is a store root: the checkpoints are in `DIR/<id>/checkpoints`.
    Base,
    /// `DIR` is `<base>/<id>/checkpoints` itself.
    Container,
}

/// PURE: the store root `dir` names for container `id` (none: `ls`
/// without a container, where `dir` can only be a base), and how it was
/// read. `base_reading_exists`: whether `dir/<id>/checkpoints` exists,
/// which makes a `<base>/<id>/checkpoints` path ambiguous.
pub fn resolve(dir: &Path, id: Option<&str>, base_reading_exists: bool) -> Result<(PathBuf, Form), CheckpointDirError> {
    let hostile = |why| CheckpointDirError::Hostile {
        dir: dir.to_path_buf(),
        why,
    };
    if !dir.is_absolute() {
        return Err(hostile("is not an absolute path"));
    }
    // Path::components hides inner `.`; the text does not.
    let text = dir.as_os_str().as_encoded_bytes();
    if text.split(|&b| b == b'/').any(|c| c == b"." || c == b"..") {
        return Err(hostile("contains `.` or `..`"));
    }
    if !dir.components().any(|c| matches!(c, Component::Normal(_))) {
        return Err(hostile("is the root directory"));
    }
    let per_container = id.and_then(|id| {
        let base = dir.parent()?.parent()?;
        let is_it = dir.file_name()? == "checkpoints" && dir.parent()?.file_name()? == id;
        is_it.then(|| base.to_path_buf())
    });
    match per_container {
        // `/` as the base of `/<id>/checkpoints` would be a store at the root.
        Some(base) if base == Path::new("/") => Err(hostile("puts the store at the root directory")),
        Some(base) if base_reading_exists => Err(CheckpointDirError::Ambiguous {
            dir: dir.to_path_buf(),
            id: id.unwrap_or_default().to_string(),
            base,
        }),
        Some(base) => Ok((base, Form::Container)),
        None => Ok((dir.to_path_buf(), Form::Base)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1c0a9e2b7d4c3a8e6f5d2c1b0a9e8f7d6c5b4a3928170615243342516a7b8c";

    #[test]
    fn both_forms_name_the_same_store_and_hostile_ones_are_refused() {
        let per = format!("/x/{ID}/checkpoints");
        let nested = format!("/srv/ck/{ID}/checkpoints");
        let other = "/x/another-container/checkpoints".to_string();
        // (dir, id, dir/<id>/checkpoints exists, expected root and form, or the refusal's words)
        #[rustfmt::skip]
        type Case<'a> = (&'a str, Option<&'a str>, bool, Result<(&'a str, Form), &'a str>);
        let cases: Vec<Case> = vec![
            ("/x", Some(ID), false, Ok(("/x", Form::Base))),
            ("/x/", Some(ID), false, Ok(("/x/", Form::Base))),
            (&per, Some(ID), false, Ok(("/x", Form::Container))),
            (&nested, Some(ID), false, Ok(("/srv/ck", Form::Container))),
            (
                "/var/lib/checkpoints",
                Some(ID),
                false,
                Ok(("/var/lib/checkpoints", Form::Base)),
            ),
            // Another container's directory is a base like any other: its
            // own id does not match, so it is not read as this one's.
            (&other, Some(ID), false, Ok((other.as_str(), Form::Base))),
            (&per, None, false, Ok((per.as_str(), Form::Base))),
            (&per, Some(ID), true, Err("ambiguous")),
            ("x", Some(ID), false, Err("not an absolute path")),
            ("./x", Some(ID), false, Err("not an absolute path")),
            ("/x/../etc", Some(ID), false, Err("`.` or `..`")),
            ("/x/./y", Some(ID), false, Err("`.` or `..`")),
            ("/x/..", None, false, Err("`.` or `..`")),
            ("/", Some(ID), false, Err("root directory")),
            ("//", None, false, Err("root directory")),
            ("/c1/checkpoints", Some("c1"), false, Err("root directory")),
        ];
        for (dir, id, exists, want) in cases {
            let got = resolve(Path::new(dir), id, exists);
            match (got, want) {
                (Ok((root, form)), Ok((want_root, want_form))) => {
                    assert_eq!((root.as_path(), form), (Path::new(want_root), want_form), "{dir}")
                }
                (Err(e), Err(words)) => assert!(e.to_string().contains(words), "{dir}: {e}"),
                (got, want) => panic!("{dir}: got {got:?}, want {want:?}"),
            }
        }
    }
}
