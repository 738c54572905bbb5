//! The command line: clap's types, prompts, printing and exit codes. One module per command
//! turns its flags into the library's options, calls the stages and prints what they return;
//! this file holds what they share.

pub(crate) mod apply;
pub(crate) mod check;
pub(crate) mod completion;
pub(crate) mod destroy;
pub(crate) mod events;
pub(crate) mod json_events;
pub(crate) mod plan;
pub(crate) mod progress;
pub(crate) mod render;
pub(crate) mod status;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Parser, Subcommand, ValueEnum};
use kubectl_redis::k8s::ConnectOptions;
use kubectl_redis::policy::PolicyOptions;
use kubectl_redis::report::Style;

/// Declarative Redis Cluster on Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "kubectl redis", bin_name = "kubectl redis", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the Kubernetes objects a spec stands for, in apply order.
    #[command(after_help = "Examples:
  kubectl redis render -f specs/redis-cluster.yaml
  kubectl redis render -f specs/redis-single/ -o json
  cat cluster.yaml | kubectl redis render -f -")]
    Render(render::RenderArgs),
    /// Check a spec against the policies (built-in and --policy modules), offline.
    #[command(after_help = "Examples:
  kubectl redis check -f specs/redis-cluster.yaml
  kubectl redis check -f specs/ -o sarif > results.sarif
  kubectl redis check -f cluster.yaml --policy my-rules.wasm --policy-settings settings.yaml")]
    Check(check::CheckArgs),
    /// Show what apply would change in the live cluster, computed by a server-side dry run.
    Plan(plan::PlanArgs),
    /// Converge the live cluster on the spec (or a saved plan) and form the Redis cluster.
    Apply(apply::ApplyArgs),
    /// Show the Redis Cluster's health: a verdict, the causes with their remedies, one row per pod.
    Status(status::StatusArgs),
    /// Delete what a spec created, in reverse order; volumes and their data are kept unless asked.
    Destroy(destroy::DestroyArgs),
    /// Print shell completion scripts, or the helper kubectl uses to complete plugins.
    Completion(completion::CompletionArgs),
    /// Print the version.
    #[command(after_help = "Example:\n  kubectl redis version")]
    Version,
    /// Answers kubectl's plugin completion requests (used by kubectl_complete-redis).
    #[command(name = "__complete", hide = true)]
    Complete {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
}

/// Flags every subcommand accepts, with kubectl's names and meanings.
#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The kubeconfig cluster to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The kubeconfig user to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// Namespace for namespaced objects that do not name one.
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// When to colour output: auto colours on a terminal unless NO_COLOR is set.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Log to stderr: -v for info, -vv for debug, -vvv for trace.
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl GlobalArgs {
    pub(crate) fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
        }
    }

    /// Styling for text written to stdout (`stdout: true`) or stderr under `--color`.
    pub(crate) fn style(&self, stdout: bool) -> Style {
        let is_terminal = if stdout {
            std::io::stdout().is_terminal()
        } else {
            std::io::stderr().is_terminal()
        };
        Style(use_color(self.color, is_terminal))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// `--color`: auto colours only a terminal, and never when NO_COLOR is set (no-color.org).
pub(crate) fn use_color(choice: ColorChoice, is_terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// The policy flags, shared by every command that evaluates policies.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct PolicyArgs {
    /// An extra policy module (wasm32, see policies/README.md). May be repeated.
    #[arg(long = "policy", value_name = "FILE.wasm")]
    pub policies: Vec<PathBuf>,
    /// YAML or JSON mapping each policy name to its settings.
    #[arg(long, value_name = "FILE")]
    pub policy_settings: Option<PathBuf>,
    /// Run only the --policy modules, not the built-in ones.
    #[arg(long)]
    pub no_builtin_policies: bool,
}

impl PolicyArgs {
    pub(crate) fn options(&self) -> PolicyOptions {
        PolicyOptions {
            modules: self.policies.clone(),
            settings: self.policy_settings.clone(),
            no_builtins: self.no_builtin_policies,
        }
    }
}

/// How the Redis step reaches the pods' Redis (`--via`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ViaArg {
    /// Port-forward through the API server: works from a laptop.
    #[default]
    PortForward,
    /// Connect to pod IPs directly: for running inside the cluster.
    Direct,
    /// Run redis-cli in each pod, as the seed's own command does.
    Exec,
}

impl From<ViaArg> for kubectl_redis::cluster::target::Via {
    fn from(via: ViaArg) -> Self {
        use kubectl_redis::cluster::target::Via;
        match via {
            ViaArg::PortForward => Via::PortForward,
            ViaArg::Direct => Via::Direct,
            ViaArg::Exec => Via::Exec,
        }
    }
}

/// What a command that did not fail has to report (design.md): exit 0, or 2 for deny-level
/// findings and, under `--detailed-exitcode`, pending changes. Errors exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Findings,
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Findings => ExitCode::from(2),
        }
    }
}

/// Asks `[y/N]` on a terminal; elsewhere, `--yes` is required so that a pipeline never applies
/// by accident.
pub(crate) fn confirm(question: &str, yes: bool) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!("{question} Standard input is not a terminal, so pass --yes to confirm");
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Runs the command the user asked for.
pub(crate) fn run(cli: &Cli) -> anyhow::Result<Outcome> {
    match &cli.command {
        Command::Render(args) => render::run(&cli.global, args),
        Command::Check(args) => check::run(&cli.global, args),
        Command::Plan(args) => block_on(plan::run(&cli.global, args)),
        Command::Apply(args) => block_on(apply::run(&cli.global, args)),
        Command::Destroy(args) => block_on(destroy::run(&cli.global, args)),
        Command::Status(args) => block_on(status::run(&cli.global, args)),
        Command::Completion(args) => completion::run(args),
        Command::Version => {
            println!("kubectl-redis v{}", env!("CARGO_PKG_VERSION"));
            Ok(Outcome::Success)
        }
        Command::Complete { words } => {
            print!("{}", completion::complete(words));
            Ok(Outcome::Success)
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

/// The longest `--timeout` accepted. Longer waits are typos, and a deadline is `now + timeout`,
/// which must stay representable.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// Parses `--timeout`: plain seconds, or humantime's syntax (`90s`, `5m`, `1h`, `1m30s`,
/// `1h 30m`), at most [`MAX_TIMEOUT`].
pub(crate) fn parse_timeout(text: &str) -> Result<Duration, String> {
    let duration = match text.trim().parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => humantime::parse_duration(text).map_err(|error| {
            format!("`{text}` is not a duration ({error}): write e.g. 90s, 5m, 1h or 1m30s")
        })?,
    };
    if duration > MAX_TIMEOUT {
        return Err(format!("--timeout is at most 24h, got `{text}`"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_timeout("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_timeout("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_timeout("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_timeout("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_timeout("24h"), Ok(MAX_TIMEOUT));
        for bad in ["", "5x", "m", "5m3", "-1s"] {
            let error = parse_timeout(bad).unwrap_err();
            assert!(error.contains("is not a duration"), "{bad}: {error}");
        }
        for huge in [
            "24h 1s",
            "86401",
            "18446744073709551615s",
            "18446744073709551615",
        ] {
            let error = parse_timeout(huge).unwrap_err();
            assert!(
                error.starts_with("--timeout is at most 24h"),
                "{huge}: {error}"
            );
        }
        // Past u64 seconds: humantime's own overflow error, still no panic.
        assert!(parse_timeout("99999999999999999999999s").is_err());
    }
}
