//! Command-line interface: the global kubectl-style flags and one subcommand per verb.
//!
//! Each subcommand's arguments and its `run` function live in the module of the stage it drives;
//! this file only wires them together.

use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Declarative Redis Cluster on Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "kubectl redis", bin_name = "kubectl redis", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the Kubernetes objects a spec stands for, in apply order.
    #[command(after_help = "Examples:
  kubectl redis render -f specs/redis-cluster.yaml
  kubectl redis render -f specs/redis-single/ -o json
  cat cluster.yaml | kubectl redis render -f -")]
    Render(crate::render::RenderArgs),
    /// Check a spec against the policies (built-in and --policy modules), offline.
    #[command(after_help = "Examples:
  kubectl redis check -f specs/redis-cluster.yaml
  kubectl redis check -f specs/ -o sarif > results.sarif
  kubectl redis check -f cluster.yaml --policy my-rules.wasm --policy-settings settings.yaml")]
    Check(crate::check::CheckArgs),
    /// Show what apply would change in the live cluster, computed by a server-side dry run.
    Plan(crate::plan::PlanArgs),
    /// Converge the live cluster on the spec (or a saved plan) and form the Redis cluster.
    Apply(crate::apply::ApplyArgs),
    /// Show the Redis Cluster's health: a verdict, then one row per pod.
    Status(crate::cluster::status::StatusArgs),
    /// Delete what a spec created, in reverse order; volumes and their data are kept unless asked.
    Destroy(crate::destroy::DestroyArgs),
    /// Print shell completion scripts, or the helper kubectl uses to complete plugins.
    Completion(crate::completion::CompletionArgs),
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
pub struct GlobalArgs {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// The longest `--timeout` accepted. Longer waits are typos, and a deadline is `now + timeout`,
/// which must stay representable.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// Parses `--timeout`: plain seconds, or humantime's syntax (`90s`, `5m`, `1h`, `1m30s`,
/// `1h 30m`), at most [`MAX_TIMEOUT`].
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
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

/// The instant `timeout` from now, for a timeout taken from the command line.
pub fn deadline_after(timeout: Duration) -> anyhow::Result<Instant> {
    Instant::now().checked_add(timeout).ok_or_else(|| {
        anyhow::anyhow!(
            "--timeout {} is beyond what this system's clock can count to",
            humantime::format_duration(timeout)
        )
    })
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

    #[test]
    fn deadlines_never_overflow() {
        assert!(deadline_after(MAX_TIMEOUT).is_ok());
        assert!(deadline_after(Duration::MAX).is_err());
    }
}
