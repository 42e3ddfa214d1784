//! PURE: what ckpt reads from the Docker Engine API and the rules it
//! applies to it: `/info` and container `inspect` parsing, the version rule
//! of restores ([`restore_blocker`]), the body that copies a container
//! ([`create_body_from`]), and the errors Docker answers with. Nothing here
//! talks to a daemon.

use super::DockerError;
use serde_json::Value;
use std::path::PathBuf;

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

/// Percent-encodes a path segment or query value. Container names and
/// checkpoint names are validated first; this only guards the URL.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `message` of a Docker error body.
pub fn message_of(body: &serde_json::Value) -> String {
    body.get("message")
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .or_else(|| body.as_str().map(str::to_string))
        .unwrap_or_else(|| body.to_string())
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
    fn encoding_guards_the_url() {
        assert_eq!(encode("web-1.a_b"), "web-1.a_b");
        assert_eq!(encode("a/b?c"), "a%2Fb%3Fc");
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            message_of(&serde_json::json!({"message": "No such container: x"})),
            "No such container: x"
        );
        assert_eq!(message_of(&serde_json::json!("plain")), "plain");
    }
}
