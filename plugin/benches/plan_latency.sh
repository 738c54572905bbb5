#!/usr/bin/env bash
# Benchmark: how many API round trips `kubectl redis plan` of the seed spec costs, next to
# `kubectl diff --server-side` on the same rendered manifests, in the same run.
#
# Two local clusters serve the same objects, one answering at once and one with LATENCY_MS added
# to every API call; (median with latency - median without) / LATENCY_MS is the number of round
# trips a command waits for, independent of its CPU time. Also reports peak memory of plan and
# apply. Needs hyperfine (Debian package) and the binaries:
#   cargo build --release -p kubectl-redis -p localcluster      (or BIN_DIR=target/debug)
set -euo pipefail
cd "$(dirname "$0")/../.."
LATENCY_MS=${LATENCY_MS:-20}
RUNS=${RUNS:-15}
bin=${BIN_DIR:-target/release}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

start_cluster() { # name latency-ms
  "$bin/localcluster" up --kubeconfig "$work/$1.kubeconfig" --api-latency-ms "$2" 2>"$work/$1.log" &
  pids+=($!)
  for _ in $(seq 200); do [ -f "$work/$1.kubeconfig" ] && return; sleep 0.05; done
  cat "$work/$1.log"; exit 1
}
start_cluster fast 0
start_cluster slow "$LATENCY_MS"
"$bin/kubectl-redis" render -f specs/redis-cluster.yaml > "$work/rendered.yaml"

measure() { # label
  # kubectl diff exits 1 when there are differences, hence -i.
  hyperfine --warmup 2 --runs "$RUNS" -N -i --export-json "$work/$1.json" \
    -n "plan, no latency" "$bin/kubectl-redis --kubeconfig $work/fast.kubeconfig plan -f specs/redis-cluster.yaml --color never" \
    -n "plan, ${LATENCY_MS} ms" "$bin/kubectl-redis --kubeconfig $work/slow.kubeconfig plan -f specs/redis-cluster.yaml --color never" \
    -n "kubectl diff, no latency" "kubectl --kubeconfig $work/fast.kubeconfig diff --server-side -f $work/rendered.yaml" \
    -n "kubectl diff, ${LATENCY_MS} ms" "kubectl --kubeconfig $work/slow.kubeconfig diff --server-side -f $work/rendered.yaml" >/dev/null
  python3 - "$work/$1.json" "$LATENCY_MS" "$1" <<'PY'
import json, sys
results = {r["command"]: r["median"] for r in json.load(open(sys.argv[1]))["results"]}
latency = float(sys.argv[2]) / 1000
name = sys.argv[3]
plan = [v for k, v in results.items() if k.startswith("plan")]
diff = [v for k, v in results.items() if k.startswith("kubectl diff")]
plan_trips = (plan[1] - plan[0]) / latency
diff_trips = (diff[1] - diff[0]) / latency
print(f"{name}: plan {plan[0]*1000:.0f} ms / {plan[1]*1000:.0f} ms (no latency / {latency*1000:.0f} ms): "
      f"{plan_trips:.1f} round trips; kubectl diff --server-side {diff[0]*1000:.0f} ms / {diff[1]*1000:.0f} ms: "
      f"{diff_trips:.1f} round trips; at {latency*1000:.0f} ms kubectl diff takes {diff[1]/plan[1]:.1f}x plan's time")
PY
}

echo "== empty cluster (everything to add)"
measure fresh
for cluster in fast slow; do
  KUBECONFIG="$work/$cluster.kubeconfig" /usr/bin/time -f "apply peak RSS: %M KiB" \
    "$bin/kubectl-redis" apply -f specs/redis-cluster.yaml --yes --skip-cluster-init --color never >/dev/null 2>"$work/apply.err" \
    || { cat "$work/apply.err"; exit 1; }
done
tail -1 "$work/apply.err"
echo "== after apply (no changes)"
measure applied
KUBECONFIG="$work/slow.kubeconfig" /usr/bin/time -f "plan peak RSS: %M KiB" \
  "$bin/kubectl-redis" plan -f specs/redis-cluster.yaml --color never >/dev/null 2>"$work/plan.err"
tail -1 "$work/plan.err"
