#!/usr/bin/env bash
# A newcomer's first run, with no Kubernetes at hand: start the local test cluster (real
# redis-server processes behind an emulated API server), then plan, policy-check and apply the
# seed's Redis Cluster with kubectl-redis through kubectl's plugin mechanism, and show it.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked -p kubectl-redis -p localcluster
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug"
export PATH="$bin:$PATH"
work=$(mktemp -d)
trap 'kill "$cluster_pid" 2>/dev/null; wait "$cluster_pid" 2>/dev/null; rm -rf "$work"' EXIT

localcluster up --kubeconfig "$work/kubeconfig" --nodes 3 2>"$work/localcluster.log" &
cluster_pid=$!
for _ in $(seq 200); do [ -f "$work/kubeconfig" ] && break; sleep 0.05; done
[ -f "$work/kubeconfig" ] || { cat "$work/localcluster.log"; exit 1; }
export KUBECONFIG="$work/kubeconfig"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
step kubectl redis check -f specs/redis-cluster.yaml
step kubectl redis plan -f specs/redis-cluster.yaml
step kubectl redis apply -f specs/redis-cluster.yaml --yes
step kubectl redis status redis-cluster
step kubectl get pods -o wide

pod_ip() { kubectl get pod "$1" -o jsonpath='{.status.podIP}'; }
step redis-cli -c -h "$(pod_ip redis-cluster-0)" set greeting "hello from before the restart"
sleep 2 # appendfsync everysec: give Redis a moment to put the write in its AOF
printf '\nEvery pod restarts at once and comes back with a new IP: every nodes.conf is stale.\n'
step kubectl delete pods -l app=redis-cluster
step kubectl wait --for=condition=Ready pods -l app=redis-cluster --timeout=60s
step kubectl redis status || true
step kubectl redis apply -f specs/redis-cluster.yaml --yes
step redis-cli -c -h "$(pod_ip redis-cluster-0)" get greeting
printf '\nThe local cluster stops when this script exits. Run it yourself with:\n  %s\n' \
  "cargo run -p localcluster -- up --kubeconfig /tmp/kubeconfig"
