//! Exit codes shared by every command (design.md): 0 success, 1 error, 2 findings or changes.

use std::process::ExitCode;

/// What a command that did not fail has to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to report: exit 0.
    Success,
    /// Deny-level findings, or pending changes under `--detailed-exitcode`: exit 2.
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
