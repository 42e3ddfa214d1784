//! `ckpt inspect`: the preflight inventory and verdict, changing nothing.

use super::Context;
use crate::cli::InspectArgs;
use crate::engine::{self, Found};
use crate::error::Error;
use crate::inventory::{self, FdKind};
use crate::output::Output;
use crate::plan::{self, DumpOptions, Problem};

#[derive(Debug, serde::Serialize)]
struct Report<'a> {
    container: &'a engine::Container,
    verdict: &'static str,
    problems: Vec<Problem>,
    warnings: Vec<String>,
    estimated_image_bytes: u64,
    inventory: &'a inventory::Inventory,
}

pub fn run(ctx: &Context, args: &InspectArgs, out: &mut Output) -> Result<(), Error> {
    if let Some(name) = &args.checkpoint {
        return super::contents::run(ctx, &args.container, name, args.json, out);
    }
    crate::store::names::validate_container_id(&args.container)?;
    let Found { container, engine } = ctx.engines.running(&args.container)?;
    let spec = crate::spec::load(&container.spec_path)?;
    let inventory = inventory::collect(&ctx.proc, container.init_pid)?;
    // Free space where the checkpoint would go: Docker's directory for
    // Docker containers; the store, or the filesystem it would be made on.
    let store_root = crate::engine::existing_ancestor(&engine.home().root);
    let host = crate::facts::gather(&ctx.proc, &ctx.cgroup_root, &container, &spec.facts, &store_root)?;
    let opts = DumpOptions {
        leave_running: false,
        tcp_established: args.criu.tcp_established,
        file_locks: args.criu.file_locks,
        ext_unix_sk: args.criu.ext_unix_sk,
    };
    let problems = plan::problems(&spec.facts, &inventory, &host, &opts);
    let report = Report {
        container: &container,
        verdict: if problems.is_empty() { "ok" } else { "refused" },
        warnings: plan::warnings(&inventory),
        estimated_image_bytes: inventory.estimated_image_bytes(),
        problems,
        inventory: &inventory,
    };
    if args.json {
        out.json(&report)?;
        return refused_exit(&report.problems);
    }
    out.line(format!(
        "container {} ({}, init pid {}, bundle {})",
        container.id,
        container.runtime.name(),
        container.init_pid,
        container.bundle.display()
    ));
    for p in &inventory.processes {
        if p.zombie {
            out.line(format!(
                "  pid {} (ns pid {}) {}: zombie (exited, not reaped by its parent yet; dumped as a zombie)",
                p.pid,
                p.ns_pid.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
                p.comm
            ));
            continue;
        }
        out.line(format!(
            "  pid {} (ns pid {}) {}: {} fds, rss {}, anon {}",
            p.pid,
            p.ns_pid.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
            p.comm,
            p.fds.len(),
            plan::human_bytes(p.memory.rss),
            plan::human_bytes(p.memory.anon_rss)
        ));
        for fd in &p.fds {
            out.line(format!("    fd {:>3} {:<14} {}", fd.fd, kind_name(&fd.kind), fd.target));
        }
    }
    out.line(format!(
        "estimated image size: {}",
        plan::human_bytes(report.estimated_image_bytes)
    ));
    for w in &report.warnings {
        out.line(format!("warning: {w}"));
    }
    if report.problems.is_empty() {
        out.line("verdict: ok, can be checkpointed");
    } else {
        out.line("verdict: refused");
        for p in &report.problems {
            out.line(format!("  - {p}"));
        }
    }
    refused_exit(&report.problems)
}

fn kind_name(k: &FdKind) -> &'static str {
    match k {
        FdKind::File => "file",
        FdKind::Dir => "dir",
        FdKind::Tty => "tty",
        FdKind::Device => "device",
        FdKind::Pipe { .. } => "pipe",
        FdKind::UnixSocket { .. } => "unix",
        FdKind::TcpSocket { .. } => "tcp",
        FdKind::UdpSocket { .. } => "udp",
        FdKind::NetlinkSocket { .. } => "netlink",
        FdKind::OtherSocket { .. } => "socket",
        FdKind::EventFd => "eventfd",
        FdKind::Epoll => "epoll",
        FdKind::SignalFd => "signalfd",
        FdKind::TimerFd => "timerfd",
        FdKind::Inotify => "inotify",
        FdKind::Memfd { .. } => "memfd",
        FdKind::AnonInode { .. } => "anon_inode",
        FdKind::Unknown => "unknown",
    }
}

/// A refused verdict exits 3 like a refused `create`, so scripts can test
/// `ckpt inspect C && ckpt create C x`.
fn refused_exit(problems: &[Problem]) -> Result<(), Error> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::NotCheckpointable { count: problems.len() })
    }
}
