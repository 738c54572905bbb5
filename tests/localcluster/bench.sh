#!/usr/bin/env bash
# Figures for the local cluster (a bench script, not a test: nothing here asserts a time).
#   bash tests/localcluster/bench.sh [--cold]
# - control-plane build: no-op (stamp current), warm relink (K8S_BUILD_FORCE=1), and with --cold a
#   build from an empty Go build cache (10-25 minutes on 2 cores; the module cache is kept);
# - `localcluster up`: until the kubeconfig exists (API server ready, nodes schedulable);
# - the seed's StatefulSet applied with kubectl: until 6 pods are Running and Ready;
# - resident memory of each component and of the pods.
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

t=$(now); bash tests/k8s/build.sh >/dev/null; echo "control plane build, nothing changed: $(secs "$t" "$(now)") s"
t=$(now); K8S_BUILD_FORCE=1 bash tests/k8s/build.sh >/dev/null 2>&1; echo "control plane build, warm (relink only): $(secs "$t" "$(now)") s"
if [ "${1:-}" = "--cold" ]; then
  cold=$(mktemp -d)
  t=$(now); K8S_BUILD_FORCE=1 K8S_GOCACHE="$cold" bash tests/k8s/build.sh >/dev/null 2>&1
  echo "control plane build, cold (empty build cache): $(secs "$t" "$(now)") s"
  rm -rf "$cold"
fi

cargo build -q -p localcluster
dir=$(mktemp -d)
kc="$dir/kubeconfig"
kubectl="$target/k8s/bin/kubectl --kubeconfig $kc"
t=$(now)
"$target/debug/localcluster" up --kubeconfig "$kc" --nodes 3 --state-dir "$dir/state" 2>"$dir/up.log" &
up=$!
trap 'kill -TERM $up 2>/dev/null; wait $up 2>/dev/null; rm -rf "$dir"' EXIT
while [ ! -f "$kc" ]; do
  kill -0 $up 2>/dev/null || { cat "$dir/up.log"; exit 1; }
  sleep 0.05
done
echo "localcluster up until the kubeconfig exists: $(secs "$t" "$(now)") s ($(head -c 300 "$dir/up.log"))"
t=$(now)
$kubectl apply --server-side -f tests/localcluster/tests/fixtures/redis-cluster.yaml >/dev/null
until [ "$($kubectl get pods -l app=redis-cluster -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)" = 6 ]; do sleep 0.1; done
echo "6 seed pods Running and Ready after kubectl apply: $(secs "$t" "$(now)") s"
echo "resident memory (MiB):"
for c in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet-streaming; do
  pid=$(pgrep -f "$target/k8s/bin/$c " | head -1 || true)
  [ -n "$pid" ] && awk -v c="$c" '/VmRSS/ { printf "  %-24s %6.0f\n", c, $2 / 1024 }' "/proc/$pid/status"
done
awk '/VmRSS/ { printf "  %-24s %6.0f\n", "localcluster (agent)", $2 / 1024 }' "/proc/$up/status"
# Everything below the node agent: bwrap, redis-server and the pods' pause processes.
ps -e -o pid=,ppid=,rss=,comm= | awk -v root="$up" '
  { parent[$1] = $2; rss[$1] = $3; comm[$1] = $4 }
  END {
    for (p in parent) { q = p; while (q in parent && q != root && q > 1) q = parent[q]; if (q == root && p != root) { total += rss[p]; if (comm[p] == "redis-server") { n++; redis += rss[p] } } }
    printf "  %-24s %6.0f (%d redis-server: %.0f)\n", "pods (all processes)", total / 1024, n, redis / 1024
  }'
