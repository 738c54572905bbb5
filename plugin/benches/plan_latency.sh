#!/usr/bin/env bash
# Benchmark: `kubectl redis plan` of the seed spec against the local cluster with 20 ms added to
# every API call, next to `kubectl diff --server-side` on the same rendered manifests in the same
# run. Reports medians, the plan's wall time in round trips, and peak memory of plan and apply.
# Needs hyperfine (Debian package) and a release build: cargo build --release -p kubectl-redis -p localcluster
set -euo pipefail
cd "$(dirname "$0")/../.."
LATENCY_MS=${LATENCY_MS:-20}
RUNS=${RUNS:-15}
bin=target/release
work=$(mktemp -d)
trap 'kill $cluster_pid 2>/dev/null; wait $cluster_pid 2>/dev/null; rm -rf "$work"' EXIT

"$bin/localcluster" up --kubeconfig "$work/kubeconfig" --api-latency-ms "$LATENCY_MS" 2>"$work/cluster.log" &
cluster_pid=$!
for _ in $(seq 100); do [ -f "$work/kubeconfig" ] && break; sleep 0.05; done
export KUBECONFIG="$work/kubeconfig"
"$bin/kubectl-redis" render -f specs/redis-cluster.yaml > "$work/rendered.yaml"

echo "== plan vs kubectl diff --server-side, ${LATENCY_MS} ms per API call, empty cluster"
hyperfine --warmup 2 --runs "$RUNS" -N --export-json "$work/fresh.json" \
  -i "$bin/kubectl-redis plan -f specs/redis-cluster.yaml --color never" \
  -i "kubectl diff --server-side -f $work/rendered.yaml"

/usr/bin/time -f "apply peak RSS: %M KiB, wall %e s" \
  "$bin/kubectl-redis" apply -f specs/redis-cluster.yaml --yes --skip-cluster-init --color never >/dev/null 2>"$work/apply.err" || cat "$work/apply.err"
tail -1 "$work/apply.err"

echo "== plan vs kubectl diff --server-side, ${LATENCY_MS} ms per API call, after apply (no changes)"
hyperfine --warmup 2 --runs "$RUNS" -N --export-json "$work/applied.json" \
  -i "$bin/kubectl-redis plan -f specs/redis-cluster.yaml --color never" \
  -i "kubectl diff --server-side -f $work/rendered.yaml"
/usr/bin/time -f "plan peak RSS: %M KiB" "$bin/kubectl-redis" plan -f specs/redis-cluster.yaml --color never >/dev/null

python3 - "$work" "$LATENCY_MS" <<'PY'
import json, sys
work, latency = sys.argv[1], float(sys.argv[2]) / 1000
for name in ("fresh", "applied"):
    results = json.load(open(f"{work}/{name}.json"))["results"]
    plan, diff = results[0]["median"], results[1]["median"]
    print(f"{name}: plan median {plan*1000:.0f} ms = {plan/latency:.1f} round trips; "
          f"kubectl diff --server-side {diff*1000:.0f} ms; kubectl diff / plan = {diff/plan:.1f}x")
PY
