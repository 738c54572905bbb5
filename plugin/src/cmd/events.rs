//! Prints `apply`'s and `destroy`'s events for people: one line per step on stderr, a spinner
//! for waits on a terminal, Redis commands in full only with `-v` (a slot move is one command
//! per slot), and each cluster's verdict on stdout.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::ProgressBar;
use kubectl_redis::plan::Action;
use kubectl_redis::progress::{Event, Events};

/// How many Redis commands are listed without `-v`.
const COMMANDS_SHOWN: usize = 12;

pub struct TextEvents {
    spinner: Option<Mutex<Option<ProgressBar>>>,
}

impl TextEvents {
    pub fn new() -> TextEvents {
        TextEvents {
            spinner: std::io::stderr().is_terminal().then(|| Mutex::new(None)),
        }
    }

    fn waiting(&self, line: String) {
        let Some(spinner) = &self.spinner else {
            eprintln!("{line}");
            return;
        };
        let mut spinner = spinner.lock().unwrap_or_else(|p| p.into_inner());
        spinner
            .get_or_insert_with(|| {
                let bar = ProgressBar::new_spinner();
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            })
            .set_message(line);
    }

    fn waited(&self, line: String) {
        let bar = self
            .spinner
            .as_ref()
            .and_then(|s| s.lock().unwrap_or_else(|p| p.into_inner()).take());
        match bar {
            Some(bar) => bar.finish_with_message(line),
            None => eprintln!("{line}"),
        }
    }
}

impl Events for TextEvents {
    fn emit(&self, event: Event) {
        match event {
            Event::Wrote { action, object } => eprintln!("{} {object}", verb(action)),
            Event::Waiting { object, state } => {
                self.waiting(format!("waiting for {object}: {state}"))
            }
            Event::Waited { object, state } => self.waited(format!("{object}: {state}")),
            Event::RedisConverged {
                statefulset,
                changed,
                commands,
                verdict,
            } => {
                show_commands(&statefulset, &commands);
                if !changed {
                    eprintln!("Redis Cluster {statefulset}: verified, nothing to do.");
                }
                println!("{verdict}");
            }
            Event::RedisDrained {
                statefulset,
                departed,
                moved_slots,
                commands,
            } => {
                show_commands(&statefulset, &commands);
                eprintln!(
                    "Redis Cluster {statefulset}: moved {moved_slots} slots off {} before \
                     shrinking; the remaining nodes forgot them",
                    departed.join(", ")
                );
            }
        }
    }
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Add => "created",
        Action::Change => "updated",
        Action::Replace => "replaced",
        Action::Unchanged | Action::Keep => "unchanged",
        Action::Destroy => "destroyed",
    }
}

/// All commands with `-v` (as log lines), else the first few and a count.
fn show_commands(statefulset: &str, commands: &[String]) {
    for command in commands {
        tracing::info!("{statefulset}: {command}");
    }
    if tracing::enabled!(tracing::Level::INFO) {
        return;
    }
    for command in commands.iter().take(COMMANDS_SHOWN) {
        eprintln!("  {command}");
    }
    if commands.len() > COMMANDS_SHOWN {
        eprintln!(
            "  ... and {} more Redis commands (-v lists them all)",
            commands.len() - COMMANDS_SHOWN
        );
    }
}
