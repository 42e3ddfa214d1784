//! A small blocking client for the Docker Engine API over its unix socket,
//! built on hyper (HTTP) and hyperlocal (the unix-socket connector): ckpt
//! needs a handful of endpoints, some experimental (start with a
//! checkpoint) that typed Docker clients do not expose.

use super::DockerError;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyperlocal::{UnixClientExt, UnixConnector};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default `DOCKER_HOST`.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// A connection to one Docker daemon.
pub struct DockerClient {
    socket: PathBuf,
    rt: tokio::runtime::Runtime,
    client: Client<UnixConnector, Full<Bytes>>,
}

impl std::fmt::Debug for DockerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerClient").field("socket", &self.socket).finish()
    }
}

/// PURE: the socket path of a `DOCKER_HOST` value.
pub fn socket_of(host: &str) -> Result<PathBuf, DockerError> {
    match host.strip_prefix("unix://") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => Err(DockerError::UnsupportedHost { host: host.to_string() }),
    }
}

impl DockerClient {
    /// The daemon named by `DOCKER_HOST` (default [`DEFAULT_HOST`]).
    pub fn from_env() -> Result<DockerClient, DockerError> {
        let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| DEFAULT_HOST.to_string());
        DockerClient::new(&socket_of(&host)?)
    }

    /// A client for the daemon listening on `socket`.
    pub fn new(socket: &Path) -> Result<DockerClient, DockerError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|source| DockerError::Unreachable {
                socket: socket.to_path_buf(),
                reason: source.to_string(),
            })?;
        Ok(DockerClient {
            socket: socket.to_path_buf(),
            rt,
            client: Client::unix(),
        })
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends a request; returns the status and the body parsed as JSON
    /// (`Null` when empty). `timeout` bounds the whole exchange.
    pub fn request(
        &self,
        method: hyper::Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
        timeout: Duration,
    ) -> Result<(u16, serde_json::Value), DockerError> {
        let uri: hyper::Uri = hyperlocal::Uri::new(&self.socket, path_and_query).into();
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let req = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header("Host", "docker")
            .header("Content-Type", "application/json")
            .body(Full::new(bytes))
            .map_err(|e| DockerError::Protocol { reason: e.to_string() })?;
        let unreachable = |reason: String| DockerError::Unreachable {
            socket: self.socket.clone(),
            reason,
        };
        self.rt.block_on(async {
            let exchange = async {
                let resp = self
                    .client
                    .request(req)
                    .await
                    .map_err(|e| unreachable(error_chain(&e)))?;
                let status = resp.status().as_u16();
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| unreachable(e.to_string()))?
                    .to_bytes();
                let value = if body.is_empty() {
                    serde_json::Value::Null
                } else {
                    serde_json::from_slice(&body).unwrap_or_else(|_| {
                        serde_json::Value::String(String::from_utf8_lossy(&body).trim().to_string())
                    })
                };
                Ok((status, value))
            };
            tokio::time::timeout(timeout, exchange)
                .await
                .map_err(|_| unreachable(format!("no answer within {timeout:?}")))?
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
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

    #[test]
    fn docker_host_parsing() {
        assert_eq!(
            socket_of("unix:///var/run/docker.sock").unwrap(),
            PathBuf::from("/var/run/docker.sock")
        );
        assert!(matches!(
            socket_of("tcp://1.2.3.4:2375"),
            Err(DockerError::UnsupportedHost { .. })
        ));
        assert!(socket_of("unix://").is_err());
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            message_of(&serde_json::json!({"message": "No such container: x"})),
            "No such container: x"
        );
        assert_eq!(message_of(&serde_json::json!("plain")), "plain");
    }

    #[test]
    fn unreachable_daemon_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let c = DockerClient::new(&dir.path().join("nope.sock")).unwrap();
        let e = c
            .request(hyper::Method::GET, "/info", None, Duration::from_secs(2))
            .unwrap_err();
        assert!(matches!(e, DockerError::Unreachable { .. }), "{e}");
        assert!(e.to_string().contains("nope.sock"));
    }
}
