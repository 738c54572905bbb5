//! What `apply` and `destroy` show: for people, the plan and then a line per step (see
//! `events`); for programs (`-o json`), JSON lines (see `json_events`). Either way the exit
//! code is the same.

use std::future::Future;
use std::io::Stdout;

use clap::ValueEnum;
use kubectl_redis::plan::{self, Plan, ShowOptions};
use kubectl_redis::progress::Events;

use super::events::TextEvents;
use super::json_events::JsonEvents;
use super::Outcome;

/// `-o` of `apply` and `destroy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProgressFormat {
    Text,
    Json,
}

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Succeeded,
    /// The user said no: nothing was written.
    Cancelled,
    /// Deny-level policy findings: nothing was planned or written (exit 2).
    Blocked,
}

impl Ending {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Ending::Succeeded => "succeeded",
            Ending::Cancelled => "cancelled",
            Ending::Blocked => "blocked",
        }
    }

    fn outcome(self) -> Outcome {
        match self {
            Ending::Succeeded | Ending::Cancelled => Outcome::Success,
            Ending::Blocked => Outcome::Findings,
        }
    }
}

pub(crate) enum Progress {
    Text(TextEvents),
    Json(JsonEvents<Stdout>),
}

impl Progress {
    pub(crate) fn new(format: ProgressFormat, command: &'static str) -> Progress {
        match format {
            ProgressFormat::Text => Progress::Text(TextEvents::new()),
            ProgressFormat::Json => Progress::Json(JsonEvents::new(command, std::io::stdout())),
        }
    }

    pub(crate) fn events(&self) -> &dyn Events {
        match self {
            Progress::Text(text) => text,
            Progress::Json(json) => json,
        }
    }

    /// Shows the plan before anything is written, after the objects left alone (a name the
    /// spec declares, without its ownership labels).
    pub(crate) fn plan(&self, plan: &Plan, left_alone: &[String], options: &ShowOptions) {
        match self {
            Progress::Text(_) => {
                for object in left_alone {
                    println!(
                        "{} {object} is not managed by kubectl-redis for `{}` (ownership labels \
                         missing): left alone",
                        options.style.dim("·"),
                        plan.spec_name
                    );
                }
                print!("{}", plan::show(plan, options));
            }
            Progress::Json(json) => json.plan(plan, options.show_secrets, left_alone),
        }
    }

    /// After a destroy: which volumes were kept and how to get the cluster back (the JSON
    /// summary lists them).
    pub(crate) fn kept_volumes(&self, plan: &Plan) {
        let kept = plan.kept_volumes();
        if kept.is_empty() || matches!(self, Progress::Json(_)) {
            return;
        }
        println!("Kept {} volume object(s); the data remains:", kept.len());
        for fate in kept {
            println!("  {fate}");
        }
        println!(
            "Apply the same spec to bring the cluster back on this data, or destroy again with \
             --delete-volumes."
        );
    }

    /// Runs the command's body; with `-o json` the summary line follows, whatever happened.
    pub(crate) async fn around(
        &self,
        body: impl Future<Output = anyhow::Result<Ending>>,
    ) -> anyhow::Result<Outcome> {
        let ended = body.await;
        if let Progress::Json(json) = self {
            json.finish(&ended);
        }
        ended.map(Ending::outcome)
    }
}
