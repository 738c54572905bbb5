#!/usr/bin/env bash
# A newcomer's first run, with no Kubernetes at hand: start the local test cluster (the real
# Kubernetes control plane, built from source, with a node agent that runs the pods as real
# Redis 5.0 processes), then plan, policy-check and apply the seed's Redis Cluster with
# kubectl-redis through kubectl's plugin mechanism, and show it.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked -p kubectl-redis -p localcluster
target="${CARGO_TARGET_DIR:-$PWD/target}"
bin="$target/debug"
# kubectl of the cluster's release (built with its control plane by tests/k8s/build.sh).
export PATH="$bin:$target/k8s/bin:$PATH"
work=$(mktemp -d)
trap 'kill "$cluster_pid" 2>/dev/null; wait "$cluster_pid" 2>/dev/null; rm -rf "$work"' EXIT

localcluster up --kubeconfig "$work/kubeconfig" --nodes 3 2>"$work/localcluster.log" &
cluster_pid=$!
# The control plane is built first if needed (minutes the first time), then starts (seconds).
until [ -f "$work/kubeconfig" ]; do
  kill -0 "$cluster_pid" 2>/dev/null || { cat "$work/localcluster.log"; exit 1; }
  sleep 0.1
done
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
ready_pods() { kubectl get pods -l app=redis-cluster -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True || true; }
printf '\n\033[1m$ (wait until the 6 recreated pods are Ready)\033[0m\n'
for _ in $(seq 600); do [ "$(ready_pods)" = 6 ] && break; sleep 0.2; done
step kubectl get pods -o wide
step kubectl redis status || true
step kubectl redis apply -f specs/redis-cluster.yaml --yes
step redis-cli -c -h "$(pod_ip redis-cluster-0)" get greeting
printf '\nThe local cluster stops when this script exits. Run it yourself with:\n  %s\n' \
  "cargo run -p localcluster -- up --kubeconfig /tmp/kubeconfig"
