//! Prints `apply`'s and `destroy`'s events for people: one line per step on stderr, a spinner
//! for waits on a terminal, Redis commands counted by kind (each one only with `-v`: a slot move
//! is one command per slot), and each cluster's verdict on stdout.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::ProgressBar;
use kubectl_redis::cluster::pod_names as names;
use kubectl_redis::plan::Action;
use kubectl_redis::progress::{Event, Events};

pub(crate) struct TextEvents {
    spinner: Option<Mutex<Option<ProgressBar>>>,
}

impl TextEvents {
    pub(crate) fn new() -> TextEvents {
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
                elapsed_ms,
            } => {
                log_commands(&statefulset, &commands);
                if changed {
                    eprintln!(
                        "Redis Cluster {statefulset}: {} in {}",
                        count_commands(&commands),
                        seconds(elapsed_ms)
                    );
                } else {
                    eprintln!("Redis Cluster {statefulset}: verified, nothing to do.");
                }
                println!("{verdict}");
            }
            Event::RedisDrained {
                statefulset,
                departed,
                moved_slots,
                commands,
                elapsed_ms,
            } => {
                log_commands(&statefulset, &commands);
                eprintln!(
                    "Redis Cluster {statefulset}: moved {moved_slots} slots off {} before \
                     shrinking ({}) in {}",
                    names(&departed),
                    count_commands(&commands),
                    seconds(elapsed_ms)
                );
            }
            Event::RollReplaced {
                statefulset,
                pod,
                role,
                revision,
                elapsed_ms,
            } => self.waited(format!(
                "Redis Cluster {statefulset}: replaced {pod} ({role}): back on revision \
                 {revision}, rejoined and caught up in {}",
                seconds(elapsed_ms)
            )),
            Event::RollFailedOver {
                statefulset,
                replica,
                master,
                elapsed_ms,
            } => self.waited(format!(
                "Redis Cluster {statefulset}: {replica} took over from {master} (CLUSTER \
                 FAILOVER) in {}",
                seconds(elapsed_ms)
            )),
            Event::RollFinished {
                statefulset,
                revision,
                replaced,
                failovers,
                verdict,
                elapsed_ms,
            } => {
                self.waited(format!(
                    "Redis Cluster {statefulset}: rolled {replaced} pod(s) onto revision \
                     {revision} with {failovers} failover(s) in {}",
                    seconds(elapsed_ms)
                ));
                println!("{verdict}");
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

/// Every command, one log line each, with `-v`.
fn log_commands(statefulset: &str, commands: &[String]) {
    for command in commands {
        tracing::info!("{statefulset}: {command}");
    }
}

/// `30 CLUSTER MEET, 3 CLUSTER REPLICATE`: how many commands of each kind ran, for one line.
fn count_commands(commands: &[String]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for command in commands {
        let words: Vec<&str> = command
            .split_once(": ")
            .map_or(command.as_str(), |(_, c)| c)
            .split_whitespace()
            .collect();
        let verb = match words.as_slice() {
            ["CLUSTER", sub, ..] => format!("CLUSTER {sub}"),
            [verb, ..] => verb.to_string(),
            [] => continue,
        };
        match counts.iter_mut().find(|(v, _)| *v == verb) {
            Some((_, n)) => *n += 1,
            None => counts.push((verb, 1)),
        }
    }
    if counts.is_empty() {
        return "no commands".into();
    }
    counts
        .iter()
        .map(|(verb, n)| format!("{n} {verb}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_counted_by_kind() {
        let commands = [
            "redis-cluster-0: CLUSTER ADDSLOTS 0-5460",
            "redis-cluster-0: CLUSTER MEET 10.0.0.2 6379",
            "redis-cluster-1: CLUSTER MEET 10.0.0.3 6379",
            "redis-cluster-1: MIGRATE 10.0.0.3 6379 \"\" 0 5000 KEYS a b",
        ]
        .map(String::from);
        assert_eq!(
            count_commands(&commands),
            "1 CLUSTER ADDSLOTS, 2 CLUSTER MEET, 1 MIGRATE"
        );
    }
}
