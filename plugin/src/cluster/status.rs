//! Text rendering of a [`Report`] for `kubectl redis status` (JSON is `serde_json` of the report).

use super::verify::Report;

/// The verdict first, then one row per pod, then problems and warnings.
pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    out.push_str(&r.headline);
    out.push_str("\n\n");
    let header = [
        "NAME", "IP", "NODE", "ROLE", "MASTER", "SLOTS", "KEYS", "LINK", "PVC",
    ];
    let rows: Vec<[String; 9]> = r
        .pods
        .iter()
        .map(|p| {
            [
                p.name.clone(),
                p.ip.clone().unwrap_or_else(|| "-".into()),
                p.node.clone().unwrap_or_else(|| "-".into()),
                p.role.clone(),
                p.master.clone().unwrap_or_else(|| "-".into()),
                if p.slots == 0 {
                    "-".into()
                } else {
                    format!("{} ({})", p.slots, p.slot_ranges)
                },
                p.keys.map(|k| k.to_string()).unwrap_or_else(|| "-".into()),
                p.link.clone(),
                p.pvc.clone(),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    out.push_str(&line(header.to_vec()));
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    if !r.problems.is_empty() {
        out.push_str("\nProblems:\n");
        for p in &r.problems {
            out.push_str(&format!("  - {p}\n"));
        }
    }
    if !r.warnings.is_empty() {
        out.push_str("\nWarnings:\n");
        for w in &r.warnings {
            out.push_str(&format!("  - {w}\n"));
        }
    }
    out
}

/// `kubectl redis status [NAME]`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  kubectl redis status
  kubectl redis status redis-cluster -o json
  kubectl redis status --via exec     # through redis-cli in the pods, like the seed's command")]
pub struct StatusArgs {
    /// The cluster's StatefulSet; default: every Redis Cluster kubectl-redis manages in the namespace.
    pub name: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = StatusFormat::Text)]
    pub output: StatusFormat,
    /// How to reach the pods' Redis.
    #[arg(long, value_enum, default_value_t)]
    pub via: super::step::Via,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    Text,
    Json,
}

pub async fn run(
    global: &crate::cli::GlobalArgs,
    args: &StatusArgs,
) -> anyhow::Result<crate::error::Outcome> {
    let connection = crate::kubeapi::connect(global).await?;
    let namespace = global
        .namespace
        .clone()
        .unwrap_or_else(|| connection.default_namespace.clone());
    let targets =
        super::step::find_targets(&connection.client, &namespace, args.name.as_deref()).await?;
    anyhow::ensure!(
        !targets.is_empty(),
        "no Redis Cluster managed by kubectl-redis in namespace `{namespace}` ({})",
        connection.source
    );
    let mut reports = Vec::new();
    for target in &targets {
        reports.push((
            target,
            super::step::verify(&connection.client, target, args.via).await?,
        ));
    }
    match args.output {
        StatusFormat::Text => {
            for (target, report) in &reports {
                if targets.len() > 1 {
                    println!("== StatefulSet {}/{}", target.namespace, target.statefulset);
                }
                print!("{}", render_text(report));
            }
        }
        StatusFormat::Json => {
            let json: Vec<serde_json::Value> = reports
                .iter()
                .map(|(target, report)| {
                    serde_json::json!({
                        "namespace": target.namespace,
                        "statefulSet": target.statefulset,
                        "report": report,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
    }
    let unhealthy: Vec<String> = reports
        .iter()
        .filter(|(_, report)| !report.healthy)
        .map(|(target, _)| format!("{}/{}", target.namespace, target.statefulset))
        .collect();
    anyhow::ensure!(
        unhealthy.is_empty(),
        "Redis Cluster {} is not healthy (see the problems above)",
        unhealthy.join(", ")
    );
    Ok(crate::error::Outcome::Success)
}
