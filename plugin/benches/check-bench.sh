#!/usr/bin/env bash
# Benchmark of `kubectl redis check`: cold and warm whole-process medians on
# specs/redis-cluster.yaml, per-policy evaluation time, throughput on a synthetic bundle of 10,000
# objects, and checkov on the same rendered manifests in the same run, as a ratio.
#
# Needs: hyperfine (apt-get install hyperfine), checkov (pip install checkov), python3.
# Usage: plugin/benches/check-bench.sh [RUNS]     (RUNS: warm runs, default 30)
# Targets (issue 3): warm check < 30 ms, >= 20x faster than checkov.
set -euo pipefail

cd "$(dirname "$0")/../.."
RUNS=${1:-30}
for tool in hyperfine checkov python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is not installed (hyperfine: apt-get install hyperfine; checkov: pip install checkov)" >&2; exit 1; }
done

# KR_BIN: a kubectl-redis binary to measure instead of building this tree's release binary.
if [ -z "${KR_BIN:-}" ]; then
    cargo build --release -p kubectl-redis >&2
fi
BIN="${KR_BIN:-${CARGO_TARGET_DIR:-target}/release/kubectl-redis}"
SPEC=specs/redis-cluster.yaml
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export KUBECTL_REDIS_CACHE_DIR="$WORK/cache"

"$BIN" render -f "$SPEC" > "$WORK/rendered.yaml"
python3 plugin/benches/check-synthetic.py 10000 > "$WORK/synthetic.yaml"

# check exits 0 or 2 (findings); hyperfine must not treat 2 as a failure.
hyperfine --style basic -N -i --export-json "$WORK/cold.json" --runs 10 \
    --prepare "rm -rf $WORK/cache" "$BIN check -f $SPEC" >&2
hyperfine --style basic -N -i --export-json "$WORK/warm.json" --warmup 3 --runs "$RUNS" \
    "$BIN check -f $SPEC" >&2
hyperfine --style basic -N -i --export-json "$WORK/synthetic.json" --warmup 1 --runs 5 \
    "$BIN check -f $WORK/synthetic.yaml -o json" >&2
hyperfine --style basic -i --export-json "$WORK/checkov.json" --warmup 1 --runs 5 \
    "checkov -f $WORK/rendered.yaml --framework kubernetes --quiet --compact --skip-download" >&2

for i in $(seq 1 20); do "$BIN" check -f "$SPEC" -o json > "$WORK/report-$i.json" || true; done
"$BIN" check -f "$WORK/synthetic.yaml" -o json > "$WORK/synthetic-report.json" || echo "bench: check of the synthetic bundle exited $?" >&2

python3 - "$WORK" <<'PY'
import json, statistics, sys, glob
work = sys.argv[1]
def median(name):
    return statistics.median(json.load(open(f"{work}/{name}.json"))["results"][0]["times"]) * 1000
cold, warm, synth, checkov = (median(n) for n in ("cold", "warm", "synthetic", "checkov"))
per = {}
for path in glob.glob(f"{work}/report-*.json"):
    for p in json.load(open(path))["policies"]:
        per.setdefault(p["policy"], []).append(p["duration"])
try:
    synth_report = json.load(open(f"{work}/synthetic-report.json"))
    synth_eval = max(p["duration"] for p in synth_report["policies"]) / 1000
except ValueError:
    synth_eval = float("nan")  # check failed on the synthetic bundle (see its stderr above)
print("kubectl redis check benchmark (medians)")
print(f"  cold check  {cold:8.1f} ms   (cache emptied before each run: JIT-compiles the modules)")
print(f"  warm check  {warm:8.1f} ms   target < 30 ms: {'OK' if warm < 30 else 'MISSED'}")
print(f"  checkov     {checkov:8.1f} ms   on the same rendered manifests")
print(f"  ratio       {checkov / warm:8.1f} x   checkov / warm check, target >= 20x: {'OK' if checkov / warm >= 20 else 'MISSED'}")
print(f"  synthetic   {synth:8.1f} ms   whole process, 10,000 objects: {10000 / synth * 1000:,.0f} objects/s")
print(f"              {synth_eval:8.1f} ms   policy evaluation alone (slowest policy; they run in parallel)")
print("  per-policy evaluation, warm (median µs, incl. instantiation and JSON):")
for name, ds in sorted(per.items(), key=lambda kv: -statistics.median(kv[1])):
    print(f"    {name:<14} {statistics.median(ds):8.0f} µs")
PY
