//! Apply: converge the live cluster on the plan, in dependency order, with server-side apply,
//! then wait until the volumes are bound and the StatefulSet has rolled out.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};

use crate::cli::GlobalArgs;
use crate::cluster::step::{self, ClusterTarget, Via};
use crate::error::Outcome;
use crate::kubeapi::{self, Connection, FIELD_MANAGER};
use crate::ownership;
use crate::plan::{self, Action, ObjectPlan, Plan, ShowOptions};
use crate::render::apply_rank;
use crate::style::{self, Style};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  kubectl redis apply -f specs/redis-cluster.yaml
  kubectl redis apply -f specs/redis-cluster.yaml --yes --timeout 10m
  kubectl redis plan -f specs/redis-cluster.yaml --out cluster.plan && kubectl redis apply cluster.plan")]
pub struct ApplyArgs {
    /// Spec file, directory of manifests, or `-` for stdin. May be repeated.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "SPEC",
        required_unless_present = "plan_file"
    )]
    pub files: Vec<std::path::PathBuf>,
    /// A plan saved by `plan --out`: apply exactly that, if the cluster has not changed since.
    #[arg(value_name = "PLANFILE", conflicts_with = "files")]
    pub plan_file: Option<std::path::PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Take over fields another field manager owns.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Allow deleting and re-creating objects whose immutable fields change.
    #[arg(long)]
    pub allow_replace: bool,
    /// How long to wait for volumes, pods and the Redis cluster (e.g. 90s, 5m, 1h).
    #[arg(long, default_value = "5m", value_parser = crate::cli::parse_timeout)]
    pub timeout: Duration,
    /// Stop after the Kubernetes objects are rolled out; do not form or heal the Redis cluster.
    #[arg(long)]
    pub skip_cluster_init: bool,
    /// How to reach the pods' Redis for the cluster step.
    #[arg(long, value_enum, default_value_t)]
    pub via: Via,
    /// Print secret values in the plan instead of masking them.
    #[arg(long)]
    pub show_secrets: bool,
    /// Also delete PersistentVolumes and claims the spec no longer declares (their data may go
    /// with them, depending on the reclaim policy).
    #[arg(long)]
    pub delete_volumes: bool,
    #[command(flatten)]
    pub policy: crate::check::PolicyArgs,
}

/// `kubectl redis apply`.
pub async fn run(global: &GlobalArgs, args: &ApplyArgs) -> anyhow::Result<Outcome> {
    let deadline = crate::cli::deadline_after(args.timeout)?;
    let (connection, plan) = match &args.plan_file {
        Some(path) => {
            let plan = Plan::load(path)?;
            let connection = kubeapi::connect(global).await?;
            check_fresh(&connection, &plan).await?;
            (connection, plan)
        }
        None => {
            let Some(prepared) =
                plan::prepare(global, &args.files, &args.policy, args.delete_volumes).await?
            else {
                return Ok(Outcome::Findings);
            };
            (prepared.connection, prepared.plan)
        }
    };
    let style = Style(style::stdout_color(global.color));
    print!(
        "{}",
        plan::show(
            &plan,
            &ShowOptions {
                style,
                show_secrets: args.show_secrets
            }
        )
    );
    let replacing = replacements(&plan);
    if !replacing.is_empty() && !args.allow_replace {
        bail!(
            "refusing to replace {}: read the consequences above, then re-run with --allow-replace",
            replacing.join(", ")
        );
    }
    let conflicting = conflicts(&plan);
    if !conflicting.is_empty() && !args.force_conflicts {
        bail!(
            "fields owned by other field managers would change:\n  {}\nRe-run with \
             --force-conflicts to take them over, drop them from the spec, or set them to the \
             live values. Nothing was written.",
            conflicting.join("\n  ")
        );
    }
    if plan.summary().has_changes() {
        if !confirm("Apply these changes?", args.yes)? {
            eprintln!("Apply cancelled; nothing was written.");
            return Ok(Outcome::Success);
        }
        if !args.skip_cluster_init {
            drain_departing_nodes(&connection, &plan, args.via, deadline).await?;
        }
        execute(&connection, &plan, args.force_conflicts, deadline).await?;
    }
    wait_for_rollout(&connection, &plan, deadline).await?;
    if !args.skip_cluster_init {
        form_clusters(&connection, &plan, args.via, deadline).await?;
    }
    Ok(Outcome::Success)
}

/// The final step: form (or verify, resume, heal, grow) each Redis Cluster of the plan.
async fn form_clusters(
    connection: &Connection,
    plan: &Plan,
    via: Via,
    deadline: Instant,
) -> anyhow::Result<()> {
    for object in plan.objects.iter().filter(|o| o.kind() == "StatefulSet") {
        let Some(target) = ClusterTarget::of(&object.desired) else {
            continue;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let outcome = step::converge(&connection.client, &target, via, left).await?;
        show_actions(&target.statefulset, &outcome.actions);
        if outcome.already_healthy {
            eprintln!(
                "Redis Cluster {}: verified, nothing to do.",
                target.statefulset
            );
        }
        println!("{}", outcome.report.headline);
    }
    Ok(())
}

/// The Redis commands that changed something: all of them with `-v`, else the first few and a
/// count, since a slot move is one command per slot.
fn show_actions(statefulset: &str, actions: &[String]) {
    const SHOWN: usize = 12;
    for action in actions {
        tracing::info!("{statefulset}: {action}");
    }
    if tracing::enabled!(tracing::Level::INFO) {
        return;
    }
    for action in actions.iter().take(SHOWN) {
        eprintln!("  {action}");
    }
    if actions.len() > SHOWN {
        eprintln!(
            "  ... and {} more Redis commands (-v lists them all)",
            actions.len() - SHOWN
        );
    }
}

/// Masters that a smaller StatefulSet would drop hand their slots and keys to the pods that stay
/// before the StatefulSet shrinks; shrinking first would lose those slots.
async fn drain_departing_nodes(
    connection: &Connection,
    plan: &Plan,
    via: Via,
    deadline: Instant,
) -> anyhow::Result<()> {
    for object in plan.objects.iter().filter(|o| o.kind() == "StatefulSet") {
        let (Some(live), Some(wanted)) = (&object.live, ClusterTarget::of(&object.desired)) else {
            continue;
        };
        let replicas = |o: &serde_json::Value| o["spec"]["replicas"].as_u64().unwrap_or(0) as usize;
        let keep = replicas(&object.desired);
        let Some(current) = ClusterTarget::of(live) else {
            continue;
        };
        if replicas(live) <= keep {
            continue;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let outcome = step::drain_before_shrink(
            &connection.client,
            &current,
            keep,
            wanted.masters,
            via,
            left,
        )
        .await?;
        eprintln!(
            "Redis Cluster {}: moved the slots off the departing pods before shrinking ({outcome:?})",
            current.statefulset
        );
    }
    Ok(())
}

/// How often rollout state is polled while waiting.
const POLL: Duration = Duration::from_millis(300);

/// Applies every object of the plan that changes, grouped by kind in apply order (volumes,
/// config, Service, StatefulSet); objects of one group go out concurrently, a bounded number
/// at a time.
pub async fn execute(
    connection: &Connection,
    plan: &Plan,
    force_conflicts: bool,
    deadline: Instant,
) -> anyhow::Result<usize> {
    let mut groups: BTreeMap<u8, Vec<&ObjectPlan>> = BTreeMap::new();
    for object in &plan.objects {
        if matches!(
            object.action,
            Action::Add | Action::Change | Action::Replace
        ) {
            groups
                .entry(apply_rank(object.kind()))
                .or_default()
                .push(object);
        }
    }
    let mut writes = usize::from(ownership::ensure_parent(connection, plan).await?);
    for objects in groups.values() {
        crate::fanout::try_all(
            objects
                .iter()
                .map(|object| apply_object(connection, object, force_conflicts, deadline)),
        )
        .await?;
        writes += objects.len();
        for object in objects {
            eprintln!("{} {}", verb(object.action), object.describe());
        }
    }
    // Prune last, in reverse dependency order (the plan lists them that way).
    for object in plan.objects.iter().filter(|o| o.action == Action::Destroy) {
        delete_object(connection, object, deadline).await?;
        eprintln!("destroyed {}", object.describe());
        writes += 1;
    }
    Ok(writes)
}

/// Deletes an object and waits until the server no longer has it.
pub async fn delete_object(
    connection: &Connection,
    object: &ObjectPlan,
    deadline: Instant,
) -> anyhow::Result<()> {
    let api = kubeapi::api_for(&connection.client, &object.desired)?;
    let name = object.desired["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let params = if object.kind() == "StatefulSet" {
        // Foreground: the StatefulSet is gone only once its pods are.
        DeleteParams::foreground()
    } else {
        DeleteParams::background()
    };
    match kubeapi::with_retries(|| api.delete(&name, &params)).await {
        Ok(_) => {}
        Err(e) if kubeapi::status_code(&e) == Some(404) => return Ok(()),
        Err(e) => {
            return Err(kubeapi::explain(
                e,
                "delete",
                &object.desired,
                &connection.source,
            ))
        }
    }
    wait_until(
        deadline,
        &format!("{} to be deleted", object.describe()),
        || async { Ok(api.get_opt(&name).await?.is_none()) },
    )
    .await
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

async fn apply_object(
    connection: &Connection,
    object: &ObjectPlan,
    force_conflicts: bool,
    deadline: Instant,
) -> anyhow::Result<()> {
    let desired = &object.desired;
    let api = kubeapi::api_for(&connection.client, desired)?;
    let name = desired["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let explain = |error, verb| kubeapi::explain(error, verb, desired, &connection.source);
    if object.action == Action::Replace {
        // A StatefulSet is deleted with its pods orphaned: they keep serving and the new
        // StatefulSet adopts them. Nothing else the plugin manages has dependents to keep.
        let params = if object.kind() == "StatefulSet" {
            DeleteParams::orphan()
        } else {
            DeleteParams::background()
        };
        kubeapi::with_retries(|| api.delete(&name, &params))
            .await
            .map_err(|e| explain(e, "delete"))?;
        wait_until(
            deadline,
            &format!("{} to be deleted", object.describe()),
            || async { Ok(api.get_opt(&name).await?.is_none()) },
        )
        .await?;
    }
    let mut params = PatchParams::apply(FIELD_MANAGER);
    if force_conflicts {
        params = params.force();
    }
    let patch = Patch::Apply(desired);
    kubeapi::with_retries(|| api.patch(&name, &params, &patch))
        .await
        .map_err(|e| explain(e, "patch"))?;
    Ok(())
}

/// Polls `done` until it answers true or the deadline passes.
async fn wait_until<F, Fut>(deadline: Instant, what: &str, mut done: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    loop {
        if done().await? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Progress while waiting: a spinner on a terminal, plain lines (one per change) otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last: String,
}

impl Progress {
    fn new() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            last: String::new(),
        }
    }

    fn set(&mut self, message: String) {
        if message == self.last {
            return;
        }
        match &self.bar {
            Some(bar) => bar.set_message(message.clone()),
            None => eprintln!("{message}"),
        }
        self.last = message;
    }

    fn finish(self, message: &str) {
        match self.bar {
            Some(bar) => bar.finish_with_message(message.to_string()),
            None => eprintln!("{message}"),
        }
    }
}

/// Waits for every StatefulSet of the plan: its claims Bound, then all pods Running and Ready on
/// the current revision. On timeout the error says which pods are not there yet and why.
pub async fn wait_for_rollout(
    connection: &Connection,
    plan: &Plan,
    deadline: Instant,
) -> anyhow::Result<()> {
    for object in plan.objects.iter().filter(|o| o.kind() == "StatefulSet") {
        let namespace = object.desired["metadata"]["namespace"]
            .as_str()
            .unwrap_or(&plan.namespace);
        let name = object.desired["metadata"]["name"]
            .as_str()
            .unwrap_or_default();
        wait_for_statefulset(connection, namespace, name, deadline).await?;
    }
    Ok(())
}

async fn wait_for_statefulset(
    connection: &Connection,
    namespace: &str,
    name: &str,
    deadline: Instant,
) -> anyhow::Result<()> {
    let statefulsets: Api<StatefulSet> = Api::namespaced(connection.client.clone(), namespace);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(connection.client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(connection.client.clone(), namespace);
    let mut progress = Progress::new();
    loop {
        let statefulset = kubeapi::with_retries(|| statefulsets.get(name))
            .await
            .with_context(|| format!("cannot read StatefulSet {namespace}/{name}"))?;
        let state = RolloutState::of(&statefulset, &claims).await?;
        if state.done() {
            progress.finish(&format!(
                "StatefulSet {namespace}/{name}: {} claims bound, {}/{} pods ready on revision {}",
                state.bound, state.ready, state.replicas, state.revision
            ));
            return Ok(());
        }
        progress.set(format!(
            "waiting for StatefulSet {namespace}/{name}: {}/{} claims bound, {}/{} pods ready, {}/{} updated",
            state.bound, state.claims, state.ready, state.replicas, state.updated, state.replicas
        ));
        if Instant::now() >= deadline {
            let detail = pod_problems(&pods, &statefulset).await;
            bail!(
                "timed out waiting for StatefulSet {namespace}/{name} to roll out: {}/{} claims \
                 bound, {}/{} pods ready, {}/{} on the new revision.{detail} Raise --timeout, or \
                 look at `kubectl -n {namespace} describe pods`",
                state.bound,
                state.claims,
                state.ready,
                state.replicas,
                state.updated,
                state.replicas
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

struct RolloutState {
    replicas: i32,
    ready: i32,
    updated: i32,
    claims: usize,
    bound: usize,
    revision: String,
    settled: bool,
}

impl RolloutState {
    async fn of(
        statefulset: &StatefulSet,
        claims: &Api<PersistentVolumeClaim>,
    ) -> anyhow::Result<RolloutState> {
        let name = statefulset.metadata.name.clone().unwrap_or_default();
        let spec = statefulset.spec.clone().unwrap_or_default();
        let status = statefulset.status.clone().unwrap_or_default();
        let replicas = spec.replicas.unwrap_or(1);
        let templates: Vec<String> = spec
            .volume_claim_templates
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t.metadata.name.clone())
            .collect();
        let wanted: Vec<String> = templates
            .iter()
            .flat_map(|t| {
                let name = &name;
                (0..replicas).map(move |i| format!("{t}-{name}-{i}"))
            })
            .collect();
        let all = ListParams::default();
        let listed = kubeapi::with_retries(|| claims.list(&all)).await?;
        let bound = listed
            .items
            .iter()
            .filter(|c| wanted.contains(&c.metadata.name.clone().unwrap_or_default()))
            .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
            .count();
        let generation = statefulset.metadata.generation.unwrap_or(0);
        let settled = status.observed_generation.unwrap_or(0) >= generation
            && status.current_revision.is_some()
            && status.current_revision == status.update_revision;
        Ok(RolloutState {
            replicas,
            ready: status.ready_replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            claims: wanted.len(),
            bound,
            revision: status.update_revision.unwrap_or_default(),
            settled,
        })
    }

    fn done(&self) -> bool {
        self.settled
            && self.bound == self.claims
            && self.ready == self.replicas
            && self.updated == self.replicas
    }
}

/// One line per pod that is not Running and Ready, with the reason the kubelet gives.
async fn pod_problems(pods: &Api<Pod>, statefulset: &StatefulSet) -> String {
    let selector = statefulset
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let Ok(list) = pods.list(&ListParams::default().labels(&selector)).await else {
        return String::new();
    };
    let mut lines = String::new();
    for pod in list.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.unwrap_or_default();
        let ready = status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if !ready {
            let waiting = status
                .container_statuses
                .unwrap_or_default()
                .iter()
                .filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
                .collect::<Vec<_>>()
                .join(", ");
            lines.push_str(&format!(
                " Pod {name}: {}{}.",
                status.phase.unwrap_or_else(|| "Pending".into()),
                if waiting.is_empty() {
                    String::new()
                } else {
                    format!(" ({waiting})")
                }
            ));
        }
    }
    lines
}

/// Refuses a saved plan when any object changed since it was made: applying it would overwrite
/// changes the plan never showed (Terraform's saved plans miss this).
pub async fn check_fresh(connection: &Connection, plan: &Plan) -> anyhow::Result<()> {
    let stale = crate::fanout::try_all(plan.objects.iter().map(|object| async move {
        let api = kubeapi::api_for(&connection.client, &object.desired)?;
        let name = object.desired["metadata"]["name"]
            .as_str()
            .unwrap_or_default();
        let live = kubeapi::with_retries(|| api.get_opt(name))
            .await
            .map_err(|e| kubeapi::explain(e, "get", &object.desired, &connection.source))?;
        let now = live.and_then(|l| l.metadata.resource_version);
        anyhow::Ok((now != object.live_resource_version).then(|| {
            format!(
                "{} (resourceVersion {} at plan time, {} now)",
                object.describe(),
                object.live_resource_version.as_deref().unwrap_or("absent"),
                now.as_deref().unwrap_or("absent")
            )
        }))
    }))
    .await?;
    let stale: Vec<String> = stale.into_iter().flatten().collect();
    if !stale.is_empty() {
        bail!(
            "the saved plan is stale: the live cluster changed since it was made:\n  {}\nRun \
             `kubectl redis plan --out PLANFILE` again and review the new plan",
            stale.join("\n  ")
        );
    }
    Ok(())
}

/// Asks `[y/N]` on a terminal; elsewhere, `--yes` is required so that a pipeline never applies
/// by accident.
pub fn confirm(question: &str, yes: bool) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!("{question} Standard input is not a terminal, so pass --yes to confirm");
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Objects the plan wants to replace, for the refusal message.
pub fn replacements(plan: &Plan) -> Vec<String> {
    plan.objects
        .iter()
        .filter(|o| o.action == Action::Replace)
        .map(ObjectPlan::describe)
        .collect()
}

/// Conflicts the plan found, as `Kind ns/name: field (manager)`.
pub fn conflicts(plan: &Plan) -> Vec<String> {
    plan.objects
        .iter()
        .flat_map(|o| {
            o.conflicts
                .iter()
                .map(move |c| format!("{}: {} (owned by \"{}\")", o.describe(), c.field, c.manager))
        })
        .collect()
}
