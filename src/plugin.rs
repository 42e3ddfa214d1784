//! Running as a Docker CLI plugin (`docker ckpt ...`), installed as
//! `docker-ckpt` in a cli-plugins directory.
//!
//! Docker runs `docker-ckpt docker-cli-plugin-metadata` to discover the
//! plugin, then execs it with the original argv minus argv[0], Docker's
//! global flags included (`--log-level warn ckpt create c1 x`). PURE.

use std::ffi::OsString;

/// The binary name that makes ckpt a plugin.
pub const PLUGIN_BINARY: &str = "docker-ckpt";

/// What a plugin invocation asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Not invoked as a plugin: parse argv as is.
    Direct(Vec<OsString>),
    /// Print the plugin metadata.
    Metadata,
    /// Run ckpt with this argv; `docker_host` from Docker's `-H/--host`.
    Plugin {
        argv: Vec<OsString>,
        docker_host: Option<String>,
    },
}

/// The metadata JSON Docker reads.
pub fn metadata() -> String {
    serde_json::json!({
        "SchemaVersion": "0.1.0",
        "Vendor": "ckpt",
        "Version": env!("CARGO_PKG_VERSION"),
        "ShortDescription": "Checkpoint and restore containers with CRIU",
    })
    .to_string()
}

/// Classifies argv (argv[0] included).
pub fn classify(argv: Vec<OsString>) -> Invocation {
    let is_plugin = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|n| n == PLUGIN_BINARY);
    if argv.get(1).is_some_and(|a| a == "docker-cli-plugin-metadata") {
        return Invocation::Metadata;
    }
    if !is_plugin {
        return Invocation::Direct(argv);
    }
    let rest = &argv[1..];
    let Some(pos) = rest.iter().position(|a| a == "ckpt") else {
        // Run directly as docker-ckpt, not through docker.
        return Invocation::Direct(argv);
    };
    let globals = &rest[..pos];
    let mut docker_host = None;
    for (i, g) in globals.iter().enumerate() {
        let g = g.to_string_lossy();
        if g == "-H" || g == "--host" {
            docker_host = globals.get(i + 1).map(|v| v.to_string_lossy().into_owned());
        } else if let Some(v) = g.strip_prefix("--host=").or_else(|| g.strip_prefix("-H=")) {
            docker_host = Some(v.to_string());
        }
    }
    let mut out = vec![OsString::from("docker ckpt")];
    out.extend(rest[pos + 1..].iter().cloned());
    Invocation::Plugin { argv: out, docker_host }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn metadata_call() {
        assert_eq!(
            classify(v(&[
                "/usr/lib/docker/cli-plugins/docker-ckpt",
                "docker-cli-plugin-metadata"
            ])),
            Invocation::Metadata
        );
        let m: serde_json::Value = serde_json::from_str(&metadata()).unwrap();
        assert_eq!(m["SchemaVersion"], "0.1.0");
        assert!(!m["Vendor"].as_str().unwrap().is_empty());
    }

    #[test]
    fn strips_globals_up_to_ckpt() {
        let i = classify(v(&["docker-ckpt", "--log-level", "warn", "ckpt", "create", "c1", "x"]));
        assert_eq!(
            i,
            Invocation::Plugin {
                argv: v(&["docker ckpt", "create", "c1", "x"]),
                docker_host: None
            }
        );
    }

    #[test]
    fn docker_host_flag_is_kept() {
        let i = classify(v(&["/x/docker-ckpt", "-H", "unix:///tmp/d.sock", "ckpt", "ls"]));
        assert_eq!(
            i,
            Invocation::Plugin {
                argv: v(&["docker ckpt", "ls"]),
                docker_host: Some("unix:///tmp/d.sock".into())
            }
        );
        let i = classify(v(&["docker-ckpt", "--host=unix:///y", "ckpt", "ls"]));
        assert!(matches!(i, Invocation::Plugin { docker_host: Some(h), .. } if h == "unix:///y"));
    }

    #[test]
    fn plain_ckpt_is_direct() {
        assert_eq!(classify(v(&["ckpt", "ls"])), Invocation::Direct(v(&["ckpt", "ls"])));
        assert_eq!(
            classify(v(&["docker-ckpt", "ls"])),
            Invocation::Direct(v(&["docker-ckpt", "ls"]))
        );
    }
}
