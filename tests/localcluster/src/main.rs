//! `localcluster up --kubeconfig PATH [--nodes N] [--state-dir DIR]`: runs a local stand-in
//! cluster in the foreground until SIGINT or SIGTERM.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "localcluster",
    about = "A local stand-in for a Kubernetes cluster (see README.md)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the cluster; write the kubeconfig once the endpoint is ready; run until SIGINT/SIGTERM.
    Up {
        /// Where to write the kubeconfig (removed again on shutdown).
        #[arg(long)]
        kubeconfig: PathBuf,
        /// Number of fake nodes pods are spread over.
        #[arg(long, default_value_t = 1)]
        nodes: usize,
        /// Keep pod and volume directories here (default: a temporary directory, removed on exit).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Delay every API request by this many milliseconds (to measure round trips).
        #[arg(long, default_value_t = 0)]
        api_latency_ms: u64,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let Cmd::Up {
        kubeconfig,
        nodes,
        state_dir,
        api_latency_ms,
    } = Cli::parse().cmd;
    let cluster = localcluster::LocalCluster::start(localcluster::Options {
        nodes,
        state_dir,
        kubeconfig: Some(kubeconfig.clone()),
    })?;
    cluster.set_api_latency(std::time::Duration::from_millis(api_latency_ms));
    eprintln!(
        "localcluster: serving {} (ready in {:?}); kubeconfig {}; state {}; Ctrl-C to stop",
        cluster.url(),
        cluster.startup,
        kubeconfig.display(),
        cluster.state_dir().display()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        anyhow::Ok(())
    })?;
    eprintln!("localcluster: stopping");
    cluster.shutdown();
    Ok(())
}
