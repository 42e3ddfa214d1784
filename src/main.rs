//! `ckpt`: parse → run → print the error chain once → exit code.

use ckpt::cli::{Cli, Command};
use ckpt::commands::{self, Context};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv = match ckpt::plugin::classify(std::env::args_os().collect()) {
        ckpt::plugin::Invocation::Metadata => {
            ckpt::outln!("{}", ckpt::plugin::metadata());
            return ExitCode::SUCCESS;
        }
        ckpt::plugin::Invocation::Direct(argv) => argv,
        ckpt::plugin::Invocation::Plugin { argv, docker_host } => {
            if let Some(host) = docker_host {
                // Before any thread starts: setting the environment is sound here.
                std::env::set_var("DOCKER_HOST", host);
            }
            argv
        }
    };
    let cli = Cli::parse_from(argv);
    let level = match (cli.global.quiet, cli.global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    env_logger::Builder::from_env(env_logger::Env::default().filter_or("CKPT_LOG", level))
        .format_timestamp(None)
        .format_target(false)
        .init();
    let ctx = Context::new(&cli.global);
    let result = match &cli.command {
        Command::Create(a) => commands::create::run(&ctx, a),
        Command::Ls(a) => commands::ls::run(&ctx, a),
        Command::Rm(a) => commands::rm::run(&ctx, a),
        Command::Start(a) => commands::start::run(&ctx, a),
        Command::Inspect(a) => commands::inspect::run(&ctx, a),
        Command::Verify(a) => commands::verify::run(&ctx, a),
        Command::Relay(a) => commands::relay::run(a),
        Command::Watchdog(a) => {
            ckpt::watchdog::run(&ctx.proc, a.dir.clone(), &a.cgroup_version, a.leave_frozen).map_err(Into::into)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ckpt: error: {err}");
            let mut cause = std::error::Error::source(&err);
            while let Some(c) = cause {
                eprintln!("  caused by: {c}");
                cause = c.source();
            }
            ExitCode::from(err.exit_code())
        }
    }
}
