//! `localcluster up --kubeconfig PATH [--nodes N] [--state-dir DIR]`: runs a local cluster (the
//! real control plane and our node agent) in the foreground until SIGINT or SIGTERM.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "localcluster",
    about = "A local Kubernetes cluster: the real control plane built from source, and a node agent that runs pods as processes (see README.md)"
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
        /// Number of Nodes the node agent registers.
        #[arg(long, default_value_t = 1)]
        nodes: usize,
        /// Keep etcd's data, logs, pod and volume directories here (default: a temporary
        /// directory, removed on exit).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Delay every client request by this many milliseconds (to measure round trips).
        #[arg(long, default_value_t = 0)]
        api_latency_ms: u64,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        // kube's client logs every refused request at error level, which start-up polling
        // makes on purpose; RUST_LOG overrides.
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,kube_client=off")),
        )
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
        "localcluster: Kubernetes {} serving {} (API server ready in {:.1?}, nodes schedulable in {:.1?}); kubeconfig {}; logs {}; Ctrl-C to stop",
        localcluster::controlplane::KUBERNETES_VERSION,
        cluster.url(),
        cluster.startup.apiserver_ready,
        cluster.startup.cluster_ready,
        kubeconfig.display(),
        cluster.log_dir().display()
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
