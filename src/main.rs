//! `ckpt`: parse → run → print the output, then the error chain once →
//! exit with the command's code.

use ckpt::cli::{Cli, Command};
use ckpt::commands::{self, Context};
use ckpt::error::Error;
use ckpt::output::{self, Output};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv = match ckpt::plugin::classify(std::env::args_os().collect()) {
        ckpt::plugin::Invocation::Metadata => {
            let mut out = Output::new(false);
            out.line(ckpt::plugin::metadata());
            return finish(&out, None);
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
    let mut out = Output::new(cli.global.quiet);
    let result = match &cli.command {
        Command::Create(a) => commands::create::run(&ctx, a, &mut out),
        Command::Ls(a) => commands::ls::run(&ctx, a, &mut out),
        Command::Rm(a) => commands::rm::run(&ctx, a, &mut out),
        Command::Prune(a) => commands::prune::run(&ctx, a, &mut out),
        Command::Start(a) => commands::start::run(&ctx, a, &mut out),
        Command::Export(a) => commands::export::run(&ctx, a, &mut out),
        Command::Import(a) => commands::import::run(&ctx, a, &mut out),
        Command::Inspect(a) => commands::inspect::run(&ctx, a, &mut out),
        Command::Verify(a) => commands::verify::run(&ctx, a, &mut out),
        Command::Completions(a) => commands::generate::completions(a, &mut out),
        Command::Man(a) => commands::generate::man(a, &mut out),
        Command::Relay(a) => commands::relay::run(a),
        Command::Watchdog(a) => {
            ckpt::watchdog::run(&ctx.proc, a.dir.clone(), &a.cgroup_version, a.leave_frozen).map_err(Into::into)
        }
    };
    finish(&out, result.err())
}

fn finish(out: &Output, error: Option<Error>) -> ExitCode {
    ExitCode::from(output::finish(
        out,
        error.as_ref(),
        std::io::stdout().lock(),
        std::io::stderr().lock(),
    ))
}
