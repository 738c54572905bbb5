//! `kubectl redis status`.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use kubectl_redis::cluster::status::{render_text, to_json, TextOptions};
use kubectl_redis::cluster::target;
use kubectl_redis::k8s;

use super::{GlobalArgs, Outcome, ViaArg};

/// `kubectl redis status [NAME]`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  kubectl redis status
  kubectl redis status -v                 # every problem, under its cause
  kubectl redis status redis-cluster -o json
  kubectl redis status --via exec         # through redis-cli in the pods, like the seed's command")]
pub(crate) struct StatusArgs {
    /// The cluster's StatefulSet; default: every Redis Cluster kubectl-redis manages in the namespace.
    pub name: Option<String>,
    /// Output format: text leads with the verdict and the causes with their remedies (-v lists
    /// every problem); json is described by plugin/schemas/status.schema.json.
    #[arg(short = 'o', long, value_enum, default_value_t = StatusFormat::Text)]
    pub output: StatusFormat,
    /// How to reach the pods' Redis.
    #[arg(long, value_enum, default_value_t)]
    pub via: ViaArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StatusFormat {
    Text,
    Json,
}

pub(crate) async fn run(global: &GlobalArgs, args: &StatusArgs) -> anyhow::Result<Outcome> {
    let connection = k8s::connect(&global.connect_options()).await?;
    let namespace = global
        .namespace
        .clone()
        .unwrap_or_else(|| connection.default_namespace.clone());
    let reports = target::verify_all(
        &connection.client,
        &namespace,
        args.name.as_deref(),
        args.via.into(),
    )
    .await?;
    anyhow::ensure!(
        !reports.is_empty(),
        "no Redis Cluster managed by kubectl-redis in namespace `{namespace}` ({})",
        connection.source
    );
    match args.output {
        StatusFormat::Text => {
            let options = TextOptions {
                width: terminal_width(),
                verbose: global.verbose > 0,
                style: global.style(true),
            };
            for (target, report) in &reports {
                if reports.len() > 1 {
                    println!("== StatefulSet {}/{}", target.namespace, target.statefulset);
                }
                print!("{}", render_text(report, &options));
            }
        }
        StatusFormat::Json => println!("{}", serde_json::to_string_pretty(&to_json(&reports))?),
    }
    let unhealthy: Vec<String> = reports
        .iter()
        .filter(|(_, report)| !report.healthy)
        .map(|(target, _)| format!("{}/{}", target.namespace, target.statefulset))
        .collect();
    anyhow::ensure!(
        unhealthy.is_empty(),
        "Redis Cluster {} is not healthy (see the causes above)",
        unhealthy.join(", ")
    );
    Ok(Outcome::Success)
}

/// The terminal's width when stdout is one; pipes and files get whole lines.
fn terminal_width() -> Option<usize> {
    let stdout = std::io::stdout();
    if !stdout.is_terminal() {
        return None;
    }
    terminal_size::terminal_size_of(&stdout).map(|(width, _)| usize::from(width.0))
}
