use std::process::ExitCode;

use clap::Parser;
use kubectl_redis::cli::{Cli, Command};
use kubectl_redis::error::Outcome;
use kubectl_redis::{apply, check, cluster, completion, destroy, plan, render};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout with 0; a bad flag is bad input: exit 1, as everywhere.
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging(cli.global.verbose);
    let result = match &cli.command {
        Command::Render(args) => render::run(&cli.global, args),
        Command::Check(args) => check::run(&cli.global, args),
        Command::Plan(args) => block_on(plan::run(&cli.global, args)),
        Command::Apply(args) => block_on(apply::run(&cli.global, args)),
        Command::Destroy(args) => block_on(destroy::run(&cli.global, args)),
        Command::Status(args) => block_on(cluster::status::run(&cli.global, args)),
        Command::Completion(args) => completion::run(args),
        Command::Version => {
            println!("kubectl-redis v{}", env!("CARGO_PKG_VERSION"));
            Ok(Outcome::Success)
        }
        Command::Complete { words } => {
            print!("{}", completion::complete(words));
            Ok(Outcome::Success)
        }
    };
    match result {
        Ok(outcome) => outcome.into(),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Commands that talk to the cluster run on a Tokio runtime; the offline ones never start it.
fn block_on<F: std::future::Future<Output = anyhow::Result<Outcome>>>(
    future: F,
) -> anyhow::Result<Outcome> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(future)
}

/// `-v` info, `-vv` debug, `-vvv` trace, on stderr; `RUST_LOG` overrides.
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("kubectl_redis={level},kube={level}"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
