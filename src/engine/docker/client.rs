//! A small blocking client for the Docker Engine API, built on hyper
//! (HTTP/1) with hyperlocal (unix sockets) or hyper-util's plain TCP
//! connector: ckpt needs a handful of endpoints, some experimental (start
//! with a checkpoint) that typed Docker clients do not expose.
//!
//! `DOCKER_HOST` may be `unix:///path` or `tcp://host[:port]` (plain HTTP,
//! port 2375 by default). TLS (`DOCKER_TLS_VERIFY`, port 2376) and `ssh://`
//! are not supported and are refused by name.

use super::DockerError;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyperlocal::{UnixClientExt, UnixConnector};
use std::path::PathBuf;
use std::time::Duration;

/// Default `DOCKER_HOST`.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Docker's port for plain-HTTP TCP.
const DEFAULT_TCP_PORT: u16 = 2375;

/// Where a daemon listens, from `DOCKER_HOST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerHost {
    Unix(PathBuf),
    /// Plain HTTP to `host:port` (`host` may be a bracketed IPv6 address).
    Tcp {
        host: String,
        port: u16,
    },
}

impl std::fmt::Display for DockerHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DockerHost::Unix(p) => write!(f, "unix://{}", p.display()),
            DockerHost::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

/// PURE: reads a `DOCKER_HOST` value; `tls` is whether `DOCKER_TLS_VERIFY`
/// asks for TLS, which ckpt does not speak.
pub fn parse_host(value: &str, tls: bool) -> Result<DockerHost, DockerError> {
    let unsupported = |why: &str| DockerError::UnsupportedHost {
        host: value.to_string(),
        why: why.to_string(),
    };
    if let Some(p) = value.strip_prefix("unix://") {
        if p.is_empty() || !p.starts_with('/') {
            return Err(unsupported("a unix socket needs an absolute path, unix:///path"));
        }
        return Ok(DockerHost::Unix(PathBuf::from(p)));
    }
    let Some(rest) = value.strip_prefix("tcp://") else {
        return Err(unsupported(
            "ckpt speaks to Docker over unix://PATH or plain-HTTP tcp://HOST:PORT",
        ));
    };
    if tls {
        return Err(unsupported(
            "DOCKER_TLS_VERIFY is set, and ckpt does not speak TLS; use a unix socket or a plain-HTTP tcp:// host",
        ));
    }
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') || authority.contains('@') {
        return Err(unsupported("expected tcp://HOST[:PORT]"));
    }
    // `[v6]:port`, `[v6]`, `host:port` or `host`.
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && (!h.contains(':') || h.ends_with(']')) => (
            h,
            p.parse::<u16>().map_err(|_| unsupported("the port is not a number"))?,
        ),
        _ => (authority, DEFAULT_TCP_PORT),
    };
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(unsupported("write an IPv6 address in brackets, tcp://[::1]:2375"));
    }
    Ok(DockerHost::Tcp {
        host: host.to_string(),
        port,
    })
}

/// The value of `DOCKER_HOST` (or the default) and whether TLS is asked for.
pub fn host_from_env() -> Result<DockerHost, DockerError> {
    let value = std::env::var("DOCKER_HOST")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_HOST.to_string());
    let tls = std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty());
    parse_host(&value, tls)
}

enum Transport {
    Unix(Client<UnixConnector, Full<Bytes>>),
    Tcp(Client<HttpConnector, Full<Bytes>>),
}

/// A connection to one Docker daemon.
pub struct DockerClient {
    host: DockerHost,
    rt: tokio::runtime::Runtime,
    transport: Transport,
}

impl std::fmt::Debug for DockerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerClient").field("host", &self.host).finish()
    }
}

impl DockerClient {
    /// The daemon named by `DOCKER_HOST` (default [`DEFAULT_HOST`]).
    pub fn from_env() -> Result<DockerClient, DockerError> {
        DockerClient::new(host_from_env()?)
    }

    /// A client for the daemon at `host`.
    pub fn new(host: DockerHost) -> Result<DockerClient, DockerError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|source| DockerError::Unreachable {
                host: host.to_string(),
                reason: source.to_string(),
            })?;
        let transport = match host {
            DockerHost::Unix(_) => Transport::Unix(Client::unix()),
            DockerHost::Tcp { .. } => {
                Transport::Tcp(Client::builder(hyper_util::rt::TokioExecutor::new()).build(HttpConnector::new()))
            }
        };
        Ok(DockerClient { host, rt, transport })
    }

    /// The daemon this client talks to.
    pub fn host(&self) -> &DockerHost {
        &self.host
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
        let uri: hyper::Uri = match &self.host {
            DockerHost::Unix(socket) => hyperlocal::Uri::new(socket, path_and_query).into(),
            DockerHost::Tcp { host, port } => format!("http://{host}:{port}{path_and_query}")
                .parse()
                .map_err(|e: hyper::http::uri::InvalidUri| DockerError::Protocol { reason: e.to_string() })?,
        };
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let req = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header("Host", "docker")
            .header("Content-Type", "application/json")
            .body(Full::new(bytes))
            .map_err(|e| DockerError::Protocol { reason: e.to_string() })?;
        let unreachable = |reason: String| DockerError::Unreachable {
            host: self.host.to_string(),
            reason,
        };
        self.rt.block_on(async {
            let exchange = async {
                let resp = match &self.transport {
                    Transport::Unix(c) => c.request(req).await,
                    Transport::Tcp(c) => c.request(req).await,
                }
                .map_err(|e| unreachable(crate::error::chain(&e)))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host_parsing() {
        let tcp = |h: &str, port| {
            Ok::<_, ()>(DockerHost::Tcp {
                host: h.to_string(),
                port,
            })
        };
        // (DOCKER_HOST, DOCKER_TLS_VERIFY set) -> host, or Err(()) for refused
        let table: &[(&str, bool, Result<DockerHost, ()>)] = &[
            (
                "unix:///var/run/docker.sock",
                false,
                Ok(DockerHost::Unix("/var/run/docker.sock".into())),
            ),
            ("unix://", false, Err(())),
            ("unix://relative.sock", false, Err(())),
            ("tcp://127.0.0.1:2375", false, tcp("127.0.0.1", 2375)),
            ("tcp://localhost", false, tcp("localhost", 2375)),
            ("tcp://docker.example:12375/", false, tcp("docker.example", 12375)),
            ("tcp://[::1]:2375", false, tcp("[::1]", 2375)),
            ("tcp://[::1]", false, tcp("[::1]", 2375)),
            ("tcp://::1", false, Err(())),
            ("tcp://host:port", false, Err(())),
            ("tcp://host:2375/path", false, Err(())),
            ("tcp://", false, Err(())),
            ("tcp://127.0.0.1:2376", true, Err(())),
            ("ssh://me@host", false, Err(())),
            ("npipe:////./pipe/docker_engine", false, Err(())),
            ("/var/run/docker.sock", false, Err(())),
        ];
        for (value, tls, want) in table {
            let got = parse_host(value, *tls);
            match (&got, want) {
                (Ok(h), Ok(w)) => assert_eq!(h, w, "{value}"),
                (Err(DockerError::UnsupportedHost { host, .. }), Err(())) => assert_eq!(host, value),
                _ => panic!("{value} (tls {tls}): got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(
            parse_host("tcp://[::1]", false).unwrap().to_string(),
            "tcp://[::1]:2375"
        );
    }

    #[test]
    fn unreachable_daemon_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let c = DockerClient::new(DockerHost::Unix(dir.path().join("nope.sock"))).unwrap();
        let e = c
            .request(hyper::Method::GET, "/info", None, Duration::from_secs(2))
            .unwrap_err();
        assert!(matches!(e, DockerError::Unreachable { .. }), "{e}");
        assert!(e.to_string().contains("nope.sock"));
    }

    #[test]
    fn speaks_plain_http_over_tcp() {
        // A one-shot HTTP server on loopback stands in for dockerd's
        // answer to GET /info; the request line is what ckpt sent.
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut first = String::new();
            BufReader::new(conn.try_clone().unwrap()).read_line(&mut first).unwrap();
            let body = r#"{"DockerRootDir":"/d"}"#;
            write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            first
        });
        let c = DockerClient::new(parse_host(&format!("tcp://127.0.0.1:{port}"), false).unwrap()).unwrap();
        let (status, body) = c
            .request(hyper::Method::GET, "/info", None, Duration::from_secs(5))
            .unwrap();
        assert_eq!((status, body["DockerRootDir"].as_str()), (200, Some("/d")));
        assert_eq!(server.join().unwrap().trim(), "GET /info HTTP/1.1");
    }
}
