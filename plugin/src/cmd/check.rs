//! `kubectl redis check`: render the spec and run the policies over it, offline.
//!
//! Exit codes: 0 no deny-level finding (warnings and waived findings allowed), 2 deny-level
//! findings, 1 errors (bad spec, a module that fails to load or run, a waiver without a reason).
//! The output format never changes them.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use kubectl_redis::report::{self, ReportFormat};
use kubectl_redis::{policy, render, spec};

use super::{GlobalArgs, Outcome, PolicyArgs};

#[derive(Debug, Clone, Args)]
pub(crate) struct CheckArgs {
    /// Spec file, directory of manifests, or `-` for stdin. May be repeated.
    #[arg(short = 'f', long = "filename", value_name = "SPEC", required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = ReportFormatArg::Text)]
    pub output: ReportFormatArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormatArg {
    /// Findings grouped by object, coloured on a terminal.
    Text,
    /// The report as JSON.
    Json,
    /// SARIF 2.1.0, for code-scanning uploads.
    Sarif,
    /// GitHub Actions workflow annotations.
    Github,
}

impl From<ReportFormatArg> for ReportFormat {
    fn from(format: ReportFormatArg) -> Self {
        match format {
            ReportFormatArg::Text => ReportFormat::Text,
            ReportFormatArg::Json => ReportFormat::Json,
            ReportFormatArg::Sarif => ReportFormat::Sarif,
            ReportFormatArg::Github => ReportFormat::Github,
        }
    }
}

pub(crate) fn run(global: &GlobalArgs, args: &CheckArgs) -> anyhow::Result<Outcome> {
    let spec = spec::load(&args.files)?;
    let bundle = render::render(spec, global.namespace.as_deref(), "default")?;
    let report = policy::run(&bundle, &args.policy.options())?;
    let color = args.output == ReportFormatArg::Text && global.style(true).0;
    let text = report::render(&report, args.output.into(), color)?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write the report")?;
    Ok(if report.blocking() > 0 {
        Outcome::Findings
    } else {
        Outcome::Success
    })
}
