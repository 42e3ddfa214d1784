//! What an imported spec asks for that an imported checkpoint must not
//! get without the target's consent. Pure: it reads the spec (as JSON, so
//! that no field it does not know can make it fail) and returns findings;
//! the import command acts on them and prints each.
//!
//! Why each is a finding:
//! - **hooks** run on the host, as root, before and after the container
//!   (`prestart`, `createRuntime`, `poststop`, …): an archive's hook is a
//!   host command line. Dropped.
//! - **bind mounts** name host paths: the archive cannot know what they are
//!   on the target, and a bind of `/` or `/etc` hands the host to the
//!   container. The engine's own files (`/etc/hosts`, `/etc/hostname`,
//!   `/etc/resolv.conf`, `/run/.containerenv`, `/dev/shm`) are replaced by
//!   fresh private copies; any other bind is refused unless its source is
//!   under a prefix the target allows.
//! - **host namespaces**: a namespace given by `path` joins an existing one
//!   (on the source host's terms), and a missing pid, network, ipc, uts or
//!   mount namespace means the host's own. Refused unless allowed.
//! - **privileges**: capabilities beyond Docker's default set, a device
//!   cgroup rule that allows every device, and host devices beyond the
//!   standard ones. Refused unless allowed: CRIU restores each process's
//!   capabilities from the images, so removing them from the spec would
//!   not take them away from the restored processes.

use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// What the import does about a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Removed from the spec; the restore goes on without it.
    Drop,
    /// Replaced by a private file or directory the import creates.
    Replace,
    /// The import refuses unless the target's policy allows it.
    Refuse,
}

/// One thing the spec asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `hook`, `bind`, `namespace`, `capability`, `devices` or `device`.
    pub what: &'static str,
    /// What exactly, in the user's terms (`prestart hook /usr/bin/x`).
    pub detail: String,
    pub action: Action,
}

/// What the target allows beyond the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyOptions {
    /// Bind sources under these prefixes are kept.
    pub allowed_bind_sources: Vec<PathBuf>,
    pub allow_host_namespaces: bool,
    pub allow_privileges: bool,
}

/// The OCI hook lists, in the order the runtime runs them.
const HOOKS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Bind destinations an engine fills with files of its own.
const ENGINE_FILES: &[&str] = &[
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/run/.containerenv",
    "/dev/shm",
];

/// Namespaces whose absence means the host's.
const ISOLATING: &[&str] = &["pid", "network", "ipc", "uts", "mount"];

/// Docker's default capabilities (moby `oci/caps/defaults.go`); runc's
/// `runc spec` default is a subset.
const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Device nodes every runtime creates in a container.
const STANDARD_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/console",
    "/dev/ptmx",
    "/dev/fuse",
];

/// Every finding for `spec`, in spec order: hooks, mounts, namespaces,
/// capabilities, devices.
pub fn check_spec(spec: &Value, opts: &PolicyOptions) -> Vec<Finding> {
    let mut out = Vec::new();
    let list = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    for phase in HOOKS {
        for hook in list(spec.get("hooks").and_then(|h| h.get(phase))) {
            let path = hook.get("path").and_then(Value::as_str).unwrap_or("?");
            out.push(Finding {
                what: "hook",
                detail: format!("{phase} hook {path} (runs on the host as root)"),
                action: Action::Drop,
            });
        }
    }
    for m in list(spec.get("mounts")) {
        let Some(source) = bind_source(&m) else { continue };
        let dest = m.get("destination").and_then(Value::as_str).unwrap_or("?");
        let action = if ENGINE_FILES.contains(&dest) {
            Action::Replace
        } else if opts.allowed_bind_sources.iter().any(|p| clean(&source).starts_with(p)) {
            continue;
        } else {
            Action::Refuse
        };
        out.push(Finding {
            what: "bind",
            detail: format!("host path {} bound at {dest}", source.display()),
            action,
        });
    }
    let namespaces = list(spec.get("linux").and_then(|l| l.get("namespaces")));
    let ns_refuse = if opts.allow_host_namespaces {
        None
    } else {
        Some(Action::Refuse)
    };
    for ns in ISOLATING {
        let entry = namespaces
            .iter()
            .find(|n| n.get("type").and_then(Value::as_str) == Some(ns));
        let detail = match entry {
            None => format!("the host's {ns} namespace (the spec has none of its own)"),
            Some(n) => match n.get("path").and_then(Value::as_str) {
                Some(p) => format!("the {ns} namespace at {p} (joins an existing one)"),
                None => continue,
            },
        };
        if let Some(action) = ns_refuse {
            out.push(Finding {
                what: "namespace",
                detail,
                action,
            });
        }
    }
    if opts.allow_privileges {
        return out;
    }
    let caps = spec.get("process").and_then(|p| p.get("capabilities"));
    let mut extra: Vec<String> = ["bounding", "effective", "permitted", "inheritable", "ambient"]
        .iter()
        .flat_map(|set| list(caps.and_then(|c| c.get(set))))
        .filter_map(|c| c.as_str().map(str::to_owned))
        .filter(|c| !DEFAULT_CAPS.contains(&c.as_str()))
        .collect();
    extra.sort();
    extra.dedup();
    out.extend(extra.into_iter().map(|c| Finding {
        what: "capability",
        detail: format!("{c} (beyond Docker's default set)"),
        action: Action::Refuse,
    }));
    let linux = spec.get("linux");
    let rules = list(linux.and_then(|l| l.get("resources")).and_then(|r| r.get("devices")));
    if rules.iter().any(allows_every_device) {
        out.push(Finding {
            what: "devices",
            detail: "a device cgroup rule that allows every device".into(),
            action: Action::Refuse,
        });
    }
    for d in list(linux.and_then(|l| l.get("devices"))) {
        let path = d.get("path").and_then(Value::as_str).unwrap_or("?");
        if !STANDARD_DEVICES.contains(&path) && !path.starts_with("/dev/pts/") {
            out.push(Finding {
                what: "device",
                detail: format!("host device {path}"),
                action: Action::Refuse,
            });
        }
    }
    out
}

/// Every finding for the body of Docker's `POST /containers/create` that
/// an import of a Docker archive would send (its `HostConfig` is where
/// Docker keeps what reaches the host): privileged mode, the host's or
/// another container's namespaces, bind mounts, added capabilities and
/// devices. Docker writes the OCI spec itself, so hooks cannot come from
/// the archive.
pub fn check_docker_create(body: &Value, opts: &PolicyOptions) -> Vec<Finding> {
    let mut out = Vec::new();
    let hc = body.get("HostConfig").cloned().unwrap_or(Value::Null);
    let s = |k: &str| hc.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let list = |k: &str| hc.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
    let refuse = |what: &'static str, detail: String| Finding {
        what,
        detail,
        action: Action::Refuse,
    };
    if !opts.allow_privileges && hc.get("Privileged").and_then(Value::as_bool) == Some(true) {
        out.push(refuse(
            "privileges",
            "privileged mode (every device and capability)".into(),
        ));
    }
    if !opts.allow_host_namespaces {
        for (key, ns) in [
            ("NetworkMode", "network"),
            ("PidMode", "pid"),
            ("IpcMode", "ipc"),
            ("UTSMode", "uts"),
        ] {
            let mode = s(key);
            if mode == "host" || mode.starts_with("container:") {
                out.push(refuse("namespace", format!("the {ns} namespace of {mode:?} ({key})")));
            }
        }
    }
    let allowed = |src: &str| {
        opts.allowed_bind_sources
            .iter()
            .any(|p| clean(Path::new(src)).starts_with(p))
    };
    for b in list("Binds") {
        let b = b.as_str().unwrap_or_default();
        let src = b.split(':').next().unwrap_or_default();
        // A bare name is a Docker volume, not a host path.
        if src.starts_with('/') && !allowed(src) {
            out.push(refuse("bind", format!("host path {src} bound by {b:?}")));
        }
    }
    for m in list("Mounts") {
        if m.get("Type").and_then(Value::as_str) == Some("bind") {
            let src = m.get("Source").and_then(Value::as_str).unwrap_or_default();
            if !allowed(src) {
                out.push(refuse(
                    "bind",
                    format!(
                        "host path {src} bound at {}",
                        m.get("Target").and_then(Value::as_str).unwrap_or("?")
                    ),
                ));
            }
        }
    }
    if !opts.allow_privileges {
        for c in list("CapAdd") {
            let c = c.as_str().unwrap_or_default();
            let full = if c.starts_with("CAP_") {
                c.to_string()
            } else {
                format!("CAP_{c}")
            };
            if !DEFAULT_CAPS.contains(&full.as_str()) {
                out.push(refuse("capability", format!("{full} (beyond Docker's default set)")));
            }
        }
        for d in list("Devices") {
            let path = d.get("PathOnHost").and_then(Value::as_str).unwrap_or("?");
            out.push(refuse("device", format!("host device {path}")));
        }
    }
    out
}

/// Whether any finding makes the import refuse.
pub fn refuses(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.action == Action::Refuse)
}

/// Every bind mount of `spec` whose destination is an engine's own file
/// (`/etc/hosts`, ...), with its source: what an import replaces.
pub fn engine_binds(spec: &Value) -> Vec<(String, PathBuf)> {
    spec.get("mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let dest = m.get("destination").and_then(Value::as_str)?;
            let source = bind_source(m)?;
            ENGINE_FILES.contains(&dest).then(|| (dest.to_string(), source))
        })
        .collect()
}

/// The host source of a bind mount, `None` for other mounts.
fn bind_source(m: &Value) -> Option<PathBuf> {
    let opts: Vec<&str> = m
        .get("options")
        .and_then(Value::as_array)
        .map(|o| o.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let is_bind =
        m.get("type").and_then(Value::as_str) == Some("bind") || opts.iter().any(|o| *o == "bind" || *o == "rbind");
    is_bind.then(|| PathBuf::from(m.get("source").and_then(Value::as_str).unwrap_or("")))
}

/// A path cleaned lexically, so `/srv/../etc` is not taken for `/srv`.
fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// `{"allow": true, "access": "rwm"}` with no type or numbers, or type `a`.
fn allows_every_device(rule: &Value) -> bool {
    let allow = rule.get("allow").and_then(Value::as_bool) == Some(true);
    let ty = rule.get("type").and_then(Value::as_str).unwrap_or("a");
    let any_number = rule.get("major").is_none_or(Value::is_null) && rule.get("minor").is_none_or(Value::is_null);
    allow && ty == "a" && any_number
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A spec like `runc spec` makes: own namespaces, default caps, no binds.
    fn base() -> Value {
        json!({
            "process": {"capabilities": {"bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]}},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
                "resources": {"devices": [{"allow": false, "access": "rwm"}]}
            }
        })
    }

    fn with(mut spec: Value, path: &[&str], v: Value) -> Value {
        let mut at = &mut spec;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = v;
        spec
    }

    #[test]
    fn a_runc_spec_default_asks_for_nothing() {
        assert_eq!(check_spec(&base(), &PolicyOptions::default()), vec![]);
    }

    #[test]
    fn each_host_privilege_is_found_with_its_action() {
        let bind =
            |src: &str, dst: &str| json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind"]});
        let ns = |v: Value| with(base(), &["linux", "namespaces"], v);
        let cases: Vec<(&str, Value, &str, Action)> = vec![
            (
                "a hook",
                with(base(), &["hooks"], json!({"prestart": [{"path": "/usr/bin/evil"}]})),
                "prestart hook /usr/bin/evil",
                Action::Drop,
            ),
            (
                "a host bind",
                with(base(), &["mounts"], json!([bind("/", "/host")])),
                "host path / bound at /host",
                Action::Refuse,
            ),
            (
                "a bind by option only",
                with(
                    base(),
                    &["mounts"],
                    json!([{"destination": "/x", "source": "/etc", "options": ["bind"]}]),
                ),
                "host path /etc bound at /x",
                Action::Refuse,
            ),
            (
                "an engine's hosts file",
                with(
                    base(),
                    &["mounts"],
                    json!([bind("/var/lib/containers/x/hosts", "/etc/hosts")]),
                ),
                "bound at /etc/hosts",
                Action::Replace,
            ),
            (
                "no network namespace",
                ns(json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}])),
                "the host's network namespace",
                Action::Refuse,
            ),
            (
                "a joined namespace",
                ns(
                    json!([{"type": "pid", "path": "/proc/1/ns/pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]),
                ),
                "pid namespace at /proc/1/ns/pid",
                Action::Refuse,
            ),
            (
                "an extra capability",
                with(
                    base(),
                    &["process", "capabilities", "effective"],
                    json!(["CAP_SYS_ADMIN"]),
                ),
                "CAP_SYS_ADMIN",
                Action::Refuse,
            ),
            (
                "every device allowed",
                with(
                    base(),
                    &["linux", "resources", "devices"],
                    json!([{"allow": true, "access": "rwm"}]),
                ),
                "allows every device",
                Action::Refuse,
            ),
            (
                "a host disk",
                with(
                    base(),
                    &["linux", "devices"],
                    json!([{"path": "/dev/sda", "type": "b", "major": 8, "minor": 0}]),
                ),
                "host device /dev/sda",
                Action::Refuse,
            ),
        ];
        for (what, spec, detail, action) in cases {
            let f = check_spec(&spec, &PolicyOptions::default());
            assert_eq!(f.len(), 1, "{what}: {f:?}");
            assert!(f[0].detail.contains(detail), "{what}: {:?}", f[0].detail);
            assert_eq!(f[0].action, action, "{what}");
        }
    }

    #[test]
    fn the_target_can_allow_each_kind() {
        let spec = with(
            with(
                base(),
                &["mounts"],
                json!([{"destination": "/data", "type": "bind", "source": "/srv/data"}]),
            ),
            &["process", "capabilities", "effective"],
            json!(["CAP_SYS_ADMIN"]),
        );
        let spec = with(spec, &["linux", "namespaces"], json!([]));
        let allow = PolicyOptions {
            allowed_bind_sources: vec![PathBuf::from("/srv")],
            allow_host_namespaces: true,
            allow_privileges: true,
        };
        assert_eq!(check_spec(&spec, &allow), vec![]);
        let f = check_spec(&spec, &PolicyOptions::default());
        assert!(refuses(&f));
        assert_eq!(f.iter().filter(|f| f.what == "namespace").count(), 5);
    }

    #[test]
    fn each_docker_host_privilege_is_refused_unless_allowed() {
        let body = |hc: Value| json!({"Image": "x", "HostConfig": hc});
        let cases: Vec<(&str, Value, &str)> = vec![
            ("privileged", json!({"Privileged": true}), "privileged mode"),
            ("host network", json!({"NetworkMode": "host"}), "network namespace"),
            ("another's pid ns", json!({"PidMode": "container:abc"}), "pid namespace"),
            ("a host bind", json!({"Binds": ["/etc:/host-etc:ro"]}), "host path /etc"),
            (
                "a bind mount",
                json!({"Mounts": [{"Type": "bind", "Source": "/", "Target": "/h"}]}),
                "host path /",
            ),
            ("an added cap", json!({"CapAdd": ["SYS_ADMIN"]}), "CAP_SYS_ADMIN"),
            ("a device", json!({"Devices": [{"PathOnHost": "/dev/sda"}]}), "/dev/sda"),
        ];
        for (what, hc, detail) in cases {
            let f = check_docker_create(&body(hc.clone()), &PolicyOptions::default());
            assert_eq!(f.len(), 1, "{what}: {f:?}");
            assert!(f[0].detail.contains(detail), "{what}: {}", f[0].detail);
            assert_eq!(f[0].action, Action::Refuse);
            let all = PolicyOptions {
                allowed_bind_sources: vec![PathBuf::from("/")],
                allow_host_namespaces: true,
                allow_privileges: true,
            };
            assert_eq!(check_docker_create(&body(hc), &all), vec![], "{what} allowed");
        }
        let plain = body(json!({"NetworkMode": "none", "Binds": ["vol:/data"], "CapAdd": ["CHOWN"]}));
        assert_eq!(check_docker_create(&plain, &PolicyOptions::default()), vec![]);
    }

    #[test]
    fn an_allowed_prefix_is_compared_after_cleaning() {
        let spec = with(
            base(),
            &["mounts"],
            json!([{"destination": "/x", "type": "bind", "source": "/srv/../etc"}]),
        );
        let allow = PolicyOptions {
            allowed_bind_sources: vec![PathBuf::from("/srv")],
            ..PolicyOptions::default()
        };
        let f = check_spec(&spec, &allow);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].action, Action::Refuse);
    }
}
