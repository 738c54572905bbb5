//! What the executors ([`super::form`], [`super::scale`]) share: their options and errors,
//! waiting until every pod answers, and [`Exec`], which runs commands on pods by name and logs
//! the ones that changed something.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

use super::observe::{observe, observe_pod, Observation, PodState};
use super::resp::Reply;
use super::topology::Topology;
use super::transport::{cmd, show_cmd, Cmd, RedisTransport};
use super::verify::{verify, Report};
use crate::wait::{poll_last, poll_until, Poll, TimedOut};

#[derive(Debug, Clone)]
pub struct FormOptions {
    /// Overall deadline for reaching every pod and for convergence.
    pub timeout: Duration,
    /// How often to re-check while waiting.
    pub poll: Duration,
}

impl Default for FormOptions {
    fn default() -> Self {
        FormOptions {
            timeout: Duration::from_secs(120),
            poll: Duration::from_millis(50),
        }
    }
}

impl FormOptions {
    /// `timeout` from now; the timeout comes from the command line, so the sum is checked.
    pub fn deadline(&self) -> Result<Instant> {
        crate::wait::deadline_after(self.timeout)
    }
}

/// Errors the caller may want to render specially (`-o json`, exit 1).
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The pods' state makes forming unsafe; nothing was changed.
    #[error("refusing to form the Redis Cluster: {0}")]
    Refused(String),
    /// The deadline passed; the report says which node disagrees and why.
    #[error("{message}")]
    NotConverged {
        message: String,
        report: Box<Report>,
    },
}

pub(crate) fn not_converged(what: &str, waited: Duration, report: Report) -> anyhow::Error {
    let mut message = format!("{what} within {:.0?}; {}:", waited, report.headline);
    for p in &report.problems {
        message.push_str(&format!("\n  - {p}"));
    }
    ClusterError::NotConverged {
        message,
        report: Box::new(report),
    }
    .into()
}

/// Wait until every pod answers (a restarted pod may still be loading its AOF).
pub(crate) async fn observe_all(
    t: &dyn RedisTransport,
    topo: &Topology,
    deadline: Instant,
    poll: Duration,
) -> Result<Observation> {
    let waited = poll_last(
        deadline,
        poll.max(Duration::from_millis(200)),
        || async move {
            let obs = observe(t, topo).await;
            let bad: Vec<&PodState> = obs.pods.iter().filter(|p| !p.ok()).collect();
            if bad.is_empty() {
                return Ok(Poll::Ready(obs));
            }
            // Cluster mode off, a password Redis asks for: waiting will not fix them.
            if let Some(refused) = final_error(&obs) {
                bail!(refused);
            }
            let list: Vec<String> = bad
                .iter()
                .filter_map(|p| Some(format!("  - {}: {}", p.pod.name, p.error.as_ref()?)))
                .collect();
            Ok(Poll::Pending(list))
        },
    )
    .await?;
    waited.map_err(|list| {
        anyhow!(
            "pods did not answer before the deadline:\n{}",
            list.join("\n")
        )
    })
}

/// The first pod error no wait can fix, as the refusal that ends the wait.
pub(crate) fn final_error(observation: &Observation) -> Option<ClusterError> {
    observation.pods.iter().find_map(|p| {
        let error = p.error.as_ref().filter(|e| e.is_final())?;
        Some(ClusterError::Refused(format!("{}: {error}", p.pod.name)))
    })
}

/// Wait until the cluster verifies healthy; on timeout a [`ClusterError::NotConverged`] that
/// starts with `what` and carries the last report.
pub(crate) async fn wait_converged(
    t: &dyn RedisTransport,
    topo: &Topology,
    deadline: Instant,
    poll: Duration,
    what: &str,
) -> Result<Report> {
    let start = Instant::now();
    let waited = poll_last(deadline, poll, || async move {
        let observation = observe(t, topo).await;
        if let Some(refused) = final_error(&observation) {
            bail!(refused);
        }
        let report = verify(topo, &observation);
        Ok(if report.healthy {
            Poll::Ready(report)
        } else {
            Poll::Pending(report)
        })
    })
    .await?;
    waited.map_err(|report| not_converged(what, start.elapsed(), report))
}

/// How long one `CLUSTER FAILOVER` may take before it is asked again (Redis gives a manual
/// failover 5 s before it gives up on its own).
const FAILOVER_WAIT: Duration = Duration::from_secs(12);
/// How many times a failover is asked before giving up.
const FAILOVER_ATTEMPTS: usize = 3;
/// How often the two pods are looked at while a failover settles.
const FAILOVER_POLL: Duration = Duration::from_millis(250);

/// `CLUSTER FAILOVER` on `replica` (the Redis 5.0 manual failover: its master stops taking
/// writes until the replica has them all, then the replica takes over), then waits until both
/// report the swap; asked again when Redis gave up on it. The command goes into `ex`'s log.
pub(crate) async fn failover(
    ex: &Exec<'_>,
    replica: &str,
    master: &str,
    deadline: Instant,
) -> anyhow::Result<()> {
    let (t, topo) = (ex.t, ex.topo);
    let (Some(r), Some(m)) = (topo.pod(replica), topo.pod(master)) else {
        bail!("internal error: {replica} or {master} is not a pod of the StatefulSet");
    };
    let what = format!("{replica} to take over from {master} (CLUSTER FAILOVER)");
    for attempt in 1..=FAILOVER_ATTEMPTS {
        ex.run(replica, vec![cmd(["CLUSTER", "FAILOVER"])]).await?;
        let until = deadline.min(Instant::now() + FAILOVER_WAIT);
        let swapped = poll_until(until, FAILOVER_POLL, &what, move || async move {
            let (new, old) = tokio::join!(observe_pod(t, topo, r), observe_pod(t, topo, m));
            Ok(if swapped(&new, &old) {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{replica} is not master of {master}'s slots yet"))
            })
        })
        .await;
        match swapped {
            Ok(()) => return Ok(()),
            Err(e)
                if e.is::<TimedOut>()
                    && attempt < FAILOVER_ATTEMPTS
                    && Instant::now() < deadline =>
            {
                tracing::info!("{e}; asking {replica} again");
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the last attempt returns")
}

/// The role swap, as both report it: `new` is a master with slots, `old` replicates it.
fn swapped(new: &PodState, old: &PodState) -> bool {
    let (Some(n), Some(o)) = (new.myself(), old.myself()) else {
        return false;
    };
    n.is_master() && !n.slots.is_empty() && o.is_replica() && o.master_id.as_ref() == Some(&n.id)
}

/// Runs commands on pods by name and logs what it changed.
pub(crate) struct Exec<'a> {
    pub(crate) t: &'a dyn RedisTransport,
    pub(crate) topo: &'a Topology,
    pub(crate) actions: std::sync::Mutex<Vec<String>>,
}

impl<'a> Exec<'a> {
    pub(crate) fn new(t: &'a dyn RedisTransport, topo: &'a Topology) -> Self {
        Exec {
            t,
            topo,
            actions: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn log(&self, line: String) {
        self.actions.lock().expect("action log poisoned").push(line);
    }

    pub(crate) fn take_actions(&self) -> Vec<String> {
        std::mem::take(&mut *self.actions.lock().expect("action log poisoned"))
    }

    /// Run `cmds` on `pod` without judging the replies (the caller handles expected errors).
    pub(crate) async fn raw(&self, pod: &str, cmds: &[Cmd]) -> Result<Vec<Reply>> {
        let info = self
            .topo
            .pod(pod)
            .ok_or_else(|| anyhow::anyhow!("unknown pod {pod}"))?;
        let addr = self.topo.addr(info)?;
        self.t.pipeline(&addr, cmds).await
    }

    /// Run `cmds` on `pod`; every error reply fails with the pod and the command named.
    pub(crate) async fn run(&self, pod: &str, cmds: Vec<Cmd>) -> Result<Vec<Reply>> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let info = self
            .topo
            .pod(pod)
            .ok_or_else(|| anyhow::anyhow!("unknown pod {pod}"))?;
        let addr = self.topo.addr(info)?;
        let replies = self.t.pipeline(&addr, &cmds).await?;
        for (c, r) in cmds.iter().zip(&replies) {
            if let Reply::Error(e) = r {
                bail!("{pod}: {} failed: {e}", show_cmd(c));
            }
        }
        let mut log = self.actions.lock().expect("action log poisoned");
        for c in &cmds {
            log.push(format!("{pod}: {}", show_cmd(c)));
        }
        Ok(replies)
    }
}
