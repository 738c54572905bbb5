use std::process::ExitCode;

use clap::Parser;
use kubectl_redis::cli::{Cli, Command};
use kubectl_redis::render;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Render(args) => render::run(&cli.global, args),
    };
    match result {
        Ok(outcome) => outcome.into(),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
