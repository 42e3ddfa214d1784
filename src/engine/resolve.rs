//! Which engine a reference names: the one rule ([`choose`], pure) and the
//! real [`Engines`] that asks each source (the runtimes' state roots,
//! Docker, ckpt's store) and applies it.

use super::docker::{self, DockerEngine, DockerError};
use super::oci::{self, OciEngine, SearchRoots};
use super::{DockerMode, Engine, EngineError, Engines, Found, Listing};
use crate::error::Error;
use crate::procfs::ProcRoot;
use std::path::PathBuf;

/// Where a candidate of a reference was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A runc or crun state root.
    Runtime,
    /// The Docker daemon.
    Docker,
    /// Checkpoints in ckpt's store.
    Store,
}

/// One thing a reference names, as one source sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub source: Source,
    /// The id the source knows it by (Docker's full id).
    pub id: String,
    /// How the ambiguity message names it.
    pub describe: String,
}

/// PURE: THE ambiguity rule. `candidates` are what each source says
/// `reference` names. One container may be seen by two sources: a Docker
/// container is also in Docker's runc root, and ckpt's store holds
/// checkpoints of a Docker container under its full id; a candidate of
/// Docker's and one of another source with Docker's full id are that one
/// container. Any two other candidates are different containers, and the
/// reference is ambiguous (two runtimes' roots knowing one id are two
/// containers). Returns the candidate to use (Docker's when it is there),
/// or `None` when nothing answered.
pub fn choose(reference: &str, candidates: &[Candidate]) -> Result<Option<usize>, EngineError> {
    let same =
        |a: &Candidate, b: &Candidate| (a.source == Source::Docker || b.source == Source::Docker) && a.id == b.id;
    for (i, a) in candidates.iter().enumerate() {
        if candidates[i + 1..].iter().any(|b| !same(a, b)) {
            return Err(EngineError::Ambiguous {
                id: reference.to_string(),
                candidates: candidates
                    .iter()
                    .map(|c| c.describe.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(candidates
        .iter()
        .position(|c| c.source == Source::Docker)
        .or((!candidates.is_empty()).then_some(0)))
}

/// The first 12 characters of an id, as Docker shows it.
pub fn short_id(id: &str) -> &str {
    &id[..12.min(id.len())]
}

/// The real [`Engines`]: the state roots of `--runtime`/`--runtime-root`,
/// the Docker daemon of `DOCKER_HOST` as `--runtime` says, and ckpt's store.
#[derive(Debug, Clone)]
pub struct Resolver {
    pub roots: SearchRoots,
    pub docker: DockerMode,
    pub store_root: PathBuf,
    pub proc: ProcRoot,
    /// ckpt's own binary, for the helpers engines start (`__relay`).
    pub exe: Option<PathBuf>,
}

impl Resolver {
    fn oci(&self) -> OciEngine {
        OciEngine::new(&self.proc, &self.store_root, self.exe.clone())
    }
}

impl Engines for Resolver {
    fn running(&self, reference: &str) -> Result<Found, Error> {
        let oci_found = if self.docker == DockerMode::Only {
            Vec::new()
        } else {
            oci::lookup_all(&self.roots, &self.proc, reference)?
        };
        let docker = docker::find(self.docker, reference)?;
        let mut candidates: Vec<Candidate> = oci_found
            .iter()
            .map(|f| Candidate {
                source: Source::Runtime,
                id: f.container.id.clone(),
                describe: format!(
                    "{} container {} in {}",
                    f.container.runtime.name(),
                    f.container.id,
                    f.container.runtime_root.display()
                ),
            })
            .collect();
        if let Some(t) = &docker {
            candidates.push(Candidate {
                source: Source::Docker,
                id: t.view.id.clone(),
                describe: format!("Docker container {} ({})", t.view.name, short_id(&t.view.id)),
            });
        }
        match (choose(reference, &candidates)?, docker) {
            (None, _) => Err(EngineError::NotFound {
                id: reference.to_string(),
                searched: oci::describe(&self.roots, self.docker),
            }
            .into()),
            (Some(i), Some(t)) if candidates[i].source == Source::Docker => {
                log::info!("{reference} is Docker container {} ({})", t.view.name, t.view.id);
                let engine = DockerEngine::new(&self.proc, t);
                let container = engine.running_container()?;
                Ok(Found {
                    container,
                    engine: Box::new(engine),
                })
            }
            (Some(i), _) => {
                let found = oci_found.into_iter().nth(i).expect("a chosen runtime candidate");
                let container = oci::require_running(found, &self.proc)?;
                Ok(Found {
                    engine: Box::new(self.oci().running(&container)),
                    container,
                })
            }
        }
    }

    fn home(&self, reference: &str) -> Result<Box<dyn Engine>, Error> {
        let docker = docker::find(self.docker, reference)?;
        if docker.is_none() && self.docker == DockerMode::Only {
            return Err(DockerError::NoSuchContainer {
                reference: reference.to_string(),
            }
            .into());
        }
        let mut candidates = Vec::new();
        if let Some(t) = &docker {
            candidates.push(Candidate {
                source: Source::Docker,
                id: t.view.id.clone(),
                describe: format!("Docker container {} ({})", t.view.name, short_id(&t.view.id)),
            });
        }
        // In auto mode, checkpoints of the reference in ckpt's store are a
        // candidate too (--runtime picks one).
        let in_store = crate::store::Layout::new(&self.store_root).checkpoints_dir(reference);
        if self.docker == DockerMode::Auto && in_store.is_dir() {
            candidates.push(Candidate {
                source: Source::Store,
                id: reference.to_string(),
                describe: format!("checkpoints in {}", in_store.display()),
            });
        }
        match (choose(reference, &candidates)?, docker) {
            (Some(i), Some(t)) if candidates[i].source == Source::Docker => {
                Ok(Box::new(DockerEngine::new(&self.proc, t)))
            }
            _ => Ok(Box::new(self.oci().store_home(reference))),
        }
    }

    fn listings(&self) -> Result<Vec<Listing>, Error> {
        let mut out = vec![Listing {
            root: self.store_root.clone(),
            runtime: None,
            required: true,
        }];
        // Every checkpoint the operator has: Docker's too, when Docker is
        // searched and answers.
        if let Some(daemon) = docker::daemon::daemon(self.docker)? {
            out.push(Listing {
                root: daemon.store_root(),
                runtime: Some("docker"),
                required: self.docker != DockerMode::Auto,
            });
        }
        Ok(out)
    }

    fn running_all(&self) -> Result<Vec<crate::plan::select::Listed>, Error> {
        let mut roots = match self.docker {
            DockerMode::Only => SearchRoots { roots: Vec::new() },
            _ => self.roots.clone(),
        };
        if self.docker == DockerMode::Only {
            // Docker's containers, where Docker runs them; each is then
            // found through the daemon.
            let docker_root = PathBuf::from("/run/docker/runtime-runc/moby");
            roots.roots.push((super::RuntimeKind::Runc, docker_root));
        }
        Ok(oci::list_running(&roots, &self.proc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(source: Source, id: &str, describe: &str) -> Candidate {
        Candidate {
            source,
            id: id.into(),
            describe: describe.into(),
        }
    }

    /// (candidates, the one chosen, or the ambiguity's list)
    type Case = (Vec<Candidate>, Result<Option<usize>, &'static str>);

    const FULL: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn one_container_seen_twice_is_not_an_ambiguity_two_are() {
        let runc_web = c(Source::Runtime, "web", "runc container web in /run/runc");
        let crun_web = c(Source::Runtime, "web", "crun container web in /run/crun");
        let docker_web = c(Source::Docker, FULL, "Docker container web (0123456789ab)");
        let runc_full = c(
            Source::Runtime,
            FULL,
            "runc container 0123... in /run/docker/runtime-runc/moby",
        );
        let store_web = c(Source::Store, "web", "checkpoints in /s/web/checkpoints");
        let store_full = c(Source::Store, FULL, "checkpoints in /s/0123.../checkpoints");
        // (candidates, chosen, or the ambiguity's list)
        #[rustfmt::skip]
        let table: Vec<Case> = vec![
            (vec![], Ok(None)),
            (vec![runc_web.clone()], Ok(Some(0))),
            (vec![docker_web.clone()], Ok(Some(0))),
            (vec![store_web.clone()], Ok(Some(0))),
            // Docker's own container in Docker's runc root: Docker's engine.
            (vec![runc_full.clone(), docker_web.clone()], Ok(Some(1))),
            // Docker's container's checkpoints in ckpt's store by full id.
            (vec![docker_web.clone(), store_full.clone()], Ok(Some(0))),
            (vec![runc_web.clone(), docker_web.clone()],
             Err("runc container web in /run/runc, Docker container web (0123456789ab)")),
            (vec![runc_web.clone(), crun_web.clone()],
             Err("runc container web in /run/runc, crun container web in /run/crun")),
            (vec![docker_web.clone(), store_web.clone()],
             Err("Docker container web (0123456789ab), checkpoints in /s/web/checkpoints")),
            (vec![runc_full.clone(), runc_web.clone(), docker_web.clone()],
             Err("runc container 0123... in /run/docker/runtime-runc/moby, runc container web in /run/runc, Docker container web (0123456789ab)")),
        ];
        for (candidates, want) in table {
            match (choose("web", &candidates), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{candidates:?}"),
                (Err(EngineError::Ambiguous { id, candidates: list }), Err(want)) => {
                    assert_eq!((id.as_str(), list.as_str()), ("web", want));
                }
                (got, want) => panic!("{candidates:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn ids_are_shortened_as_docker_shows_them() {
        assert_eq!(short_id(FULL), "0123456789ab");
        assert_eq!(short_id("abc"), "abc");
    }
}
