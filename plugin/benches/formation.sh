#!/bin/sh
# Formation time (plugin vs `redis-cli --cluster create --cluster-replicas 1 --cluster-yes`) and
# heal time after all pods restart, on six local redis-server processes (127.79.x.y).
# Usage: plugin/benches/formation.sh            (cluster-node-timeout 15000, the seed's)
#        BENCH_NODE_TIMEOUT=2000 plugin/benches/formation.sh
set -eu
cd "$(dirname "$0")/../.."
exec cargo test --release -p kubectl-redis --test cluster_bench -- --ignored --nocapture --test-threads 1
