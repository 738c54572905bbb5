#!/bin/sh
# Formation time (plugin vs `redis-cli --cluster create --cluster-replicas 1 --cluster-yes` of the
# same Redis version, on the same six pods in each run) and heal time after all pods restart, on
# Redis 5.0 (tests/redis5/build.sh) and Debian's 7.x: six redis-server processes, each in its own
# network namespace (needs root).
# Usage: plugin/benches/formation.sh            (cluster-node-timeout 15000, the seed's)
#        BENCH_NODE_TIMEOUT=2000 plugin/benches/formation.sh
set -eu
cd "$(dirname "$0")/../.."
bash tests/redis5/build.sh
exec cargo test --release -p kubectl-redis --test it cluster_bench:: -- --ignored --nocapture --test-threads 1
