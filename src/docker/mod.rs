//! Docker in experimental mode: talk to the Engine API, read what ckpt
//! needs about a container, and start one from a checkpoint so that Docker
//! keeps managing it.
//!
//! Checkpoints of Docker containers live where Docker keeps them,
//! `<DockerRootDir>/containers/<full-id>/checkpoints/<name>/`, because
//! `docker start --checkpoint` accepts no other place (moby#37344).

pub mod client;

pub use client::DockerClient;

use crate::procfs::ProcRoot;
use hyper::Method;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Errors talking to Docker.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("DOCKER_HOST={host} is not supported: {why}")]
    UnsupportedHost { host: String, why: String },
    #[error("cannot reach the Docker daemon at {host}: {reason} (is dockerd running? set DOCKER_HOST=unix:///path/to/docker.sock or tcp://HOST:PORT)")]
    Unreachable { host: String, reason: String },
    #[error("unexpected answer from the Docker daemon: {reason}")]
    Protocol { reason: String },
    #[error("Docker {action} failed: {message}")]
    Api {
        action: &'static str,
        status: u16,
        message: String,
    },
    #[error("the Docker daemon at {socket} is not in experimental mode, which checkpoint/restore needs; add \"experimental\": true to /etc/docker/daemon.json and restart dockerd")]
    NotExperimental { socket: String },
    #[error("Docker {version} cannot restore containers with their own network namespace (network mode {network_mode:?}): since 28.0 it sets up the network for pid 0 (containerd#12141). Use Docker 26.0.1 to 27.x, or a container with --network host")]
    BrokenRestore { version: String, network_mode: String },
    #[error("no Docker container {reference:?}")]
    NoSuchContainer { reference: String },
    #[error(
        "{reference:?} is the prefix of several Docker containers' ids ({message}); give more of the id, or the name"
    )]
    AmbiguousReference { reference: String, message: String },
}

/// What ckpt needs to know about the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonInfo {
    pub root_dir: PathBuf,
    pub experimental: bool,
    pub version: String,
}

/// What ckpt needs to know about one container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContainerView {
    pub id: String,
    /// Without Docker's leading `/`.
    pub name: String,
    pub running: bool,
    pub paused: bool,
    pub pid: i32,
    pub tty: bool,
    pub network_mode: String,
    /// `Config.NetworkDisabled`: Docker gives the container no network
    /// sandbox at start (set by Docker itself for `bridge` containers on a
    /// daemon started with `"bridge": "none"`).
    pub network_disabled: bool,
    /// Image id (`sha256:...`).
    pub image: String,
}

/// PURE: reads `GET /info`.
pub fn parse_info(v: &Value) -> Result<DaemonInfo, DockerError> {
    let root = v["DockerRootDir"].as_str().ok_or_else(|| DockerError::Protocol {
        reason: "/info has no DockerRootDir".into(),
    })?;
    Ok(DaemonInfo {
        root_dir: PathBuf::from(root),
        experimental: v["ExperimentalBuild"].as_bool().unwrap_or(false),
        version: v["ServerVersion"].as_str().unwrap_or("unknown").to_string(),
    })
}

/// PURE: reads `GET /containers/{id}/json`.
pub fn parse_container(v: &Value) -> Result<ContainerView, DockerError> {
    let id = v["Id"].as_str().ok_or_else(|| DockerError::Protocol {
        reason: "container inspect has no Id".into(),
    })?;
    Ok(ContainerView {
        id: id.to_string(),
        name: v["Name"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        running: v["State"]["Running"].as_bool().unwrap_or(false),
        paused: v["State"]["Paused"].as_bool().unwrap_or(false),
        pid: v["State"]["Pid"].as_i64().unwrap_or(0) as i32,
        tty: v["Config"]["Tty"].as_bool().unwrap_or(false),
        network_mode: v["HostConfig"]["NetworkMode"].as_str().unwrap_or("default").to_string(),
        network_disabled: v["Config"]["NetworkDisabled"].as_bool().unwrap_or(false),
        image: v["Image"].as_str().unwrap_or_default().to_string(),
    })
}

/// PURE: why this Docker cannot restore a container with this network
/// mode, if it cannot. Docker 28.0 removed the prestart hook that set up
/// the restored task's network (moby 933fcc9814); containers that share
/// the host's or another container's namespace are not affected, nor are
/// containers with `network_disabled` (`Config.NetworkDisabled`), for which
/// Docker sets up no network at all (daemon/start_linux.go returns before
/// the SetKey that fails).
pub fn restore_blocker(version: &str, network_mode: &str, network_disabled: bool) -> Option<DockerError> {
    let major: u32 = version.split(['.', '+', '-']).next()?.parse().ok()?;
    let own_netns = !(network_mode == "host" || network_mode.starts_with("container:"));
    (major >= 28 && own_netns && !network_disabled).then(|| DockerError::BrokenRestore {
        version: version.to_string(),
        network_mode: network_mode.to_string(),
    })
}

/// PURE: whether an inspect failed because the reference is the prefix of
/// several ids (moby answers 400, "multiple IDs found with provided
/// prefix: X"; older releases capitalise "Multiple").
pub fn is_ambiguous_prefix(status: u16, message: &str) -> bool {
    status == 400
        && message
            .to_lowercase()
            .contains("multiple ids found with provided prefix")
}

/// PURE: whether a failed start is Docker's intermittent "content
/// sha256:... already exists" (moby#42900), which a retry gets past.
pub fn is_stale_content_error(message: &str) -> bool {
    message.contains("already exists") && message.contains("content")
}

/// PURE: the body of `POST /containers/create` for a copy of a container:
/// its config, host config and the networks it is attached to, as
/// `docker create` would send them. Without the networks Docker makes no
/// network sandbox, and runc's restore hook that sets one up fails
/// ("criu failed: type NOTIFY").
pub fn create_body_from(inspect: &Value) -> Value {
    let mut body = inspect["Config"].clone();
    if let Some(obj) = body.as_object_mut() {
        // A fresh container gets its own hostname from the new id.
        obj.remove("Hostname");
        // Docker reports NetworkDisabled=true for containers whose network
        // it set up itself; sent back, it stops Docker from creating the
        // /etc/hosts and /etc/resolv.conf binds the checkpoint expects.
        obj.remove("NetworkDisabled");
        obj.insert("HostConfig".into(), inspect["HostConfig"].clone());
        // Same networks, fresh endpoints: copying addresses would collide.
        let endpoints: serde_json::Map<String, Value> = inspect["NetworkSettings"]["Networks"]
            .as_object()
            .map(|nets| {
                nets.keys()
                    .map(|k| (k.clone(), Value::Object(Default::default())))
                    .collect()
            })
            .unwrap_or_default();
        obj.insert(
            "NetworkingConfig".into(),
            serde_json::json!({ "EndpointsConfig": endpoints }),
        );
    }
    body
}

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
            _ if is_ambiguous_prefix(status, &client::message_of(&body)) => Err(DockerError::AmbiguousReference {
                reference: reference.to_string(),
                message: client::message_of(&body),
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
            if is_stale_content_error(&client::message_of(&body)) && std::time::Instant::now() + delay < give_up {
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
        message: client::message_of(body),
    }
}

/// Percent-encodes a path segment or query value. Container names and
/// checkpoint names are validated first; this only guards the URL.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The runc state root of a Docker (containerd) container, found through
/// its shim: the init's parent is `containerd-shim-runc-v2 -namespace NS`,
/// whose working directory is the bundle, whose `options.json` names the
/// runc root. Nothing about Docker's exec-root is assumed.
pub fn runc_root_of(proc: &ProcRoot, init_pid: i32) -> Option<PathBuf> {
    let ppid = proc.process(init_pid).stat().ok()?.ppid;
    let shim = proc.process(ppid);
    let namespace = shim_namespace(&shim.cmdline().ok()?)?;
    let bundle = shim.cwd().ok()?;
    let options: Value = serde_json::from_slice(&std::fs::read(bundle.join("options.json")).ok()?).ok()?;
    let root = options["root"].as_str().unwrap_or("/run/containerd/runc");
    Some(Path::new(root).join(namespace))
}

/// PURE: the `-namespace` of a containerd shim command line.
pub fn shim_namespace(args: &[String]) -> Option<String> {
    if !args.first()?.contains("containerd-shim") {
        return None;
    }
    args.windows(2)
        .find(|w| w[0] == "-namespace" || w[0] == "--namespace")
        .map(|w| w[1].clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_info_and_container() {
        let info = parse_info(
            &json!({"DockerRootDir": "/var/lib/docker", "ExperimentalBuild": true, "ServerVersion": "26.1.5+dfsg1"}),
        )
        .unwrap();
        assert_eq!(info.root_dir, PathBuf::from("/var/lib/docker"));
        assert!(info.experimental);
        let c = parse_container(&json!({"Id": "abc", "Name": "/web", "Image": "sha256:1",
            "State": {"Running": true, "Paused": false, "Pid": 42},
            "Config": {"Tty": true}, "HostConfig": {"NetworkMode": "none"}}))
        .unwrap();
        assert_eq!(
            (
                c.name.as_str(),
                c.pid,
                c.tty,
                c.network_mode.as_str(),
                c.network_disabled
            ),
            ("web", 42, true, "none", false)
        );
        let c = parse_container(&json!({"Id": "abc", "Config": {"NetworkDisabled": true}})).unwrap();
        assert!(c.network_disabled);
        assert!(parse_container(&json!({})).is_err());
    }

    #[test]
    fn docker_28_cannot_restore_private_netns() {
        // (version, network mode, NetworkDisabled) → blocked?
        let table = [
            ("26.1.5+dfsg1", "none", false, false),
            ("27.5.1", "bridge", false, false),
            ("28.0.0", "bridge", false, true),
            ("29.1", "none", false, true),
            ("28.2.2", "host", false, false),
            ("28.2.2", "container:abc", false, false),
            ("garbage", "none", false, false),
            // A bridge container on a daemon with "bridge": "none": Docker
            // 28.5.2 restores it (it never calls SetKey).
            ("28.5.2+dfsg4", "bridge", true, false),
            ("28.5.2+dfsg4", "none", true, false),
        ];
        for (version, mode, disabled, blocked) in table {
            assert_eq!(
                restore_blocker(version, mode, disabled).is_some(),
                blocked,
                "{version} {mode} disabled={disabled}"
            );
        }
    }

    #[test]
    fn ambiguous_prefix_is_recognised() {
        assert!(is_ambiguous_prefix(400, "multiple IDs found with provided prefix: a"));
        assert!(is_ambiguous_prefix(400, "Multiple IDs found with provided prefix: a"));
        assert!(!is_ambiguous_prefix(404, "No such container: a"));
        assert!(!is_ambiguous_prefix(500, "multiple IDs found with provided prefix: a"));
    }

    #[test]
    fn stale_content_error_is_recognised() {
        assert!(is_stale_content_error(
            "failed to upload checkpoint to containerd: commit failed: content sha256:ab12: already exists"
        ));
        assert!(!is_stale_content_error("container already exists"));
    }

    #[test]
    fn create_body_copies_config_and_host_config() {
        let b = create_body_from(
            &json!({"Config": {"Image": "x", "Hostname": "abc", "NetworkDisabled": true, "Cmd": ["/bin/counter"]},
            "HostConfig": {"NetworkMode": "bridge"},
            "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2", "MacAddress": "02:42"}}}}),
        );
        assert_eq!(b["Image"], "x");
        assert!(b.get("Hostname").is_none());
        assert!(b.get("NetworkDisabled").is_none());
        assert_eq!(b["HostConfig"]["NetworkMode"], "bridge");
        assert_eq!(
            b["NetworkingConfig"]["EndpointsConfig"],
            json!({"bridge": {}}),
            "networks kept, addresses not"
        );
    }

    #[test]
    fn shim_namespace_parsing() {
        let a: Vec<String> = ["/usr/bin/containerd-shim-runc-v2", "-namespace", "moby", "-id", "x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(shim_namespace(&a).as_deref(), Some("moby"));
        assert_eq!(shim_namespace(&["/bin/sh".to_string()]), None);
    }

    #[test]
    fn encoding_guards_the_url() {
        assert_eq!(encode("web-1.a_b"), "web-1.a_b");
        assert_eq!(encode("a/b?c"), "a%2Fb%3Fc");
    }
}
