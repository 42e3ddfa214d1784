//! One Docker daemon: the few Engine API calls ckpt makes (over
//! [`DockerClient`]), and which daemon a command asks ([`daemon`]).
//!
//! Checkpoints of Docker containers live where Docker keeps them,
//! `<DockerRootDir>/containers/<full-id>/checkpoints/<name>/`, because
//! `docker start --checkpoint` accepts no other place (moby#37344).

use super::api::message_of;
use super::api::{create_body_from, encode, is_ambiguous_prefix, is_stale_content_error, parse_container, parse_info};
use super::api::{ContainerView, DaemonInfo};
use super::client::DockerClient;
use super::DockerError;
use crate::engine::DockerMode;
use hyper::Method;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// The socket's daemon with its info read.
#[derive(Debug)]
pub struct Daemon {
    pub client: DockerClient,
    pub info: DaemonInfo,
}

const SHORT: Duration = Duration::from_secs(30);
/// How long to keep retrying Docker's stale-content error.
const STALE_CONTENT_PATIENCE: Duration = Duration::from_secs(30);
/// Docker streams a checkpoint through containerd's content store at about
/// 60 MiB/s here, so a large restore takes minutes.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(1800);

impl Daemon {
    /// Connects to `DOCKER_HOST` and reads `/info`.
    pub fn connect() -> Result<Daemon, DockerError> {
        let client = DockerClient::from_env()?;
        let (status, body) = client.request(Method::GET, "/info", None, SHORT)?;
        if status != 200 {
            return Err(api_error("info", status, &body));
        }
        let info = parse_info(&body)?;
        Ok(Daemon { client, info })
    }

    /// Fails unless the daemon runs in experimental mode.
    pub fn require_experimental(&self) -> Result<(), DockerError> {
        if self.info.experimental {
            Ok(())
        } else {
            Err(DockerError::NotExperimental {
                socket: self.client.host().to_string(),
            })
        }
    }

    /// Inspects a container by name, full id or unique id prefix; `None`
    /// when Docker knows no such container.
    pub fn inspect(&self, reference: &str) -> Result<Option<(ContainerView, Value)>, DockerError> {
        let path = format!("/containers/{}/json", encode(reference));
        let (status, body) = self.client.request(Method::GET, &path, None, SHORT)?;
        match status {
            200 => Ok(Some((parse_container(&body)?, body))),
            404 => Ok(None),
            _ if is_ambiguous_prefix(status, &message_of(&body)) => Err(DockerError::AmbiguousReference {
                reference: reference.to_string(),
                message: message_of(&body),
            }),
            _ => Err(api_error("inspect", status, &body)),
        }
    }

    /// `POST /containers/{id}/start?checkpoint=NAME`, retried on the
    /// stale-content error. Returns how many retries were needed.
    ///
    /// The error is not random: containerd keeps a checkpoint's blobs until
    /// its garbage collector runs, and a start packs the same checkpoint
    /// into the very same blob (right after `docker checkpoint create`
    /// almost always). The collector's next run is not brought forward by
    /// anything ckpt can do through Docker, so retry with backoff for as
    /// long as it typically takes.
    pub fn start_from_checkpoint(&self, id: &str, checkpoint: &str) -> Result<u32, DockerError> {
        let path = format!("/containers/{}/start?checkpoint={}", encode(id), encode(checkpoint));
        let mut retries = 0;
        let mut delay = Duration::from_millis(250);
        let give_up = std::time::Instant::now() + STALE_CONTENT_PATIENCE;
        loop {
            let (status, body) = self.client.request(Method::POST, &path, None, RESTORE_TIMEOUT)?;
            if status == 204 || status == 304 {
                return Ok(retries);
            }
            let err = api_error("start --checkpoint", status, &body);
            if is_stale_content_error(&message_of(&body)) && std::time::Instant::now() + delay < give_up {
                retries += 1;
                log::warn!("Docker reported a stale content blob (moby#42900); retry {retries} in {delay:?}");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(4));
                continue;
            }
            return Err(err);
        }
    }

    /// Creates a container named `name` with the config of `source`.
    pub fn create_like(&self, source: &Value, name: &str) -> Result<String, DockerError> {
        let path = format!("/containers/create?name={}", encode(name));
        let (status, body) = self
            .client
            .request(Method::POST, &path, Some(&create_body_from(source)), SHORT)?;
        if status != 201 {
            return Err(api_error("create", status, &body));
        }
        body["Id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| DockerError::Protocol {
                reason: "create returned no Id".into(),
            })
    }

    /// Removes a container (forcefully).
    pub fn remove(&self, id: &str) -> Result<(), DockerError> {
        let path = format!("/containers/{}?force=1", encode(id));
        let (status, body) = self.client.request(Method::DELETE, &path, None, SHORT)?;
        match status {
            204 | 404 => Ok(()),
            _ => Err(api_error("rm", status, &body)),
        }
    }

    /// Waits until Docker reports the container stopped.
    pub fn wait_stopped(&self, id: &str, timeout: Duration) -> Result<(), DockerError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match self.inspect(id)? {
                Some((c, _)) if c.running && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => return Ok(()),
            }
        }
    }

    /// `<DockerRootDir>/containers`: the store root of Docker checkpoints.
    pub fn store_root(&self) -> PathBuf {
        self.info.root_dir.join("containers")
    }
}

fn api_error(action: &'static str, status: u16, body: &Value) -> DockerError {
    DockerError::Api {
        action,
        status,
        message: message_of(body),
    }
}

/// The daemon of `DOCKER_HOST` when `mode` searches Docker. The one place
/// that decides what an unusable daemon means: an error when Docker was
/// asked for (`--runtime docker`); in auto mode, no Docker containers, the
/// other runtimes are searched, and the reason is kept for the "no
/// container" message ([`skipped`]). A `DOCKER_HOST` the user set that is
/// unsupported or unreachable is also said once, as a warning.
pub fn daemon(mode: DockerMode) -> Result<Option<Daemon>, DockerError> {
    match mode {
        DockerMode::Off => Ok(None),
        DockerMode::Only => Daemon::connect().map(Some),
        DockerMode::Auto => match Daemon::connect() {
            Err(e @ (DockerError::Unreachable { .. } | DockerError::UnsupportedHost { .. })) => {
                note_skipped(&e);
                Ok(None)
            }
            other => other.map(Some),
        },
    }
}

static SKIPPED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn note_skipped(e: &DockerError) {
    let first = SKIPPED.get().is_none();
    let _ = SKIPPED.set(e.to_string());
    if !first {
        return;
    }
    // A DOCKER_HOST the user set is worth a warning; the default socket
    // missing is the normal state of a host without Docker.
    if matches!(e, DockerError::UnsupportedHost { .. }) || std::env::var_os("DOCKER_HOST").is_some() {
        log::warn!("{e}; Docker containers are not searched");
    } else {
        log::info!("{e}; Docker containers are not searched");
    }
}

/// Why Docker was not searched in auto mode during this command, if it was
/// not (for "no container" messages).
pub fn skipped() -> Option<&'static str> {
    SKIPPED.get().map(String::as_str)
}
