#!/usr/bin/env bash
# Benchmark of `kubectl redis check`, everything in one run and reported as ratios:
#   - warm and cold check of specs/redis-cluster.yaml (cold: an empty module cache before each
#     run), against kubernetes-validate, checkov and kubeconform on the same rendered manifests;
#   - synthetic bundles of 1,000 / 10,000 / 20,000 / 100,000 objects (plain manifests, files of at
#     most 10,000 objects so that none reaches the spec size limit): check and render time, their
#     growth from one size to the next, and peak memory (/usr/bin/time -v);
#   - per-policy evaluation time, from the JSON report.
# With KR_BASELINE_BIN (e.g. a build of main), that binary is measured in the same run and every
# row gets a before/after ratio.
#
# Needs: hyperfine (apt-get install hyperfine), python3, /usr/bin/time (apt-get install time).
# Installs what is missing under <target>/bench-tools/ when it can, and says so when it cannot:
# kubernetes-validate and checkov (pip, in a venv) and kubeconform (Go module proxy). kubeconform
# gets its schemas offline from the ones kubernetes-validate ships (their $refs rewritten).
#
# Usage: plugin/benches/check-bench.sh [RUNS]     (RUNS: warm runs, default 30)
# Env:   KR_BIN            the binary to measure (default: build this tree's release binary)
#        KR_BASELINE_BIN   a second binary to compare with, in the same run
#        BENCH_SIZES       synthetic bundle sizes (default "1000 10000 20000 100000")
#        BASELINE_MAX      largest size the baseline is run at (default 20000)
#        KV_MAX            largest size kubernetes-validate is run at (default 1000: it is slow)
# Targets (issue 15): warm check <= 15 ms, cold <= 40 ms; 10,000 objects <= 300 ms and 64 MiB;
# 20,000 objects <= 2.2x the 10,000; render of 10,000 objects <= 150 ms.
set -euo pipefail

cd "$(dirname "$0")/../.."
RUNS=${1:-30}
SIZES=${BENCH_SIZES:-1000 10000 20000 100000}
BASELINE_MAX=${BASELINE_MAX:-20000}
KV_MAX=${KV_MAX:-1000}
for tool in hyperfine python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is not installed (apt-get install hyperfine time python3)" >&2; exit 1; }
done

TARGET_DIR=${CARGO_TARGET_DIR:-target}
TOOLS="$TARGET_DIR/bench-tools"
mkdir -p "$TOOLS"
TOOLS=$(cd "$TOOLS" && pwd)
if [ -z "${KR_BIN:-}" ]; then
    cargo build --release --locked -p kubectl-redis >&2
fi
BIN=$(realpath "${KR_BIN:-$TARGET_DIR/release/kubectl-redis}")
BASE=${KR_BASELINE_BIN:+$(realpath "$KR_BASELINE_BIN")}
SPEC=specs/redis-cluster.yaml
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
NOTES="$WORK/notes.txt"
: > "$NOTES"
note() { echo "$*" >> "$NOTES"; echo "bench: $*" >&2; }

# ---- The anchors: found on PATH, else installed under $TOOLS, else reported missing. ----
pip_tool() { # name → path of its executable, or nothing
    local name=$1
    if command -v "$name" >/dev/null; then command -v "$name"; return; fi
    if [ ! -x "$TOOLS/venv/bin/$name" ]; then
        { [ -x "$TOOLS/venv/bin/pip" ] || python3 -m venv "$TOOLS/venv"; } >&2 &&
            "$TOOLS/venv/bin/pip" install -q "$name" >&2 || true
    fi
    if [ -x "$TOOLS/venv/bin/$name" ]; then echo "$TOOLS/venv/bin/$name"; fi
}
KV=$(pip_tool kubernetes-validate)
CHECKOV=$(pip_tool checkov)
[ -n "$KV" ] || note "kubernetes-validate could not be installed (pip); its column is empty"
[ -n "$CHECKOV" ] || note "checkov could not be installed (pip); its column is empty"
KUBECONFORM=$(command -v kubeconform || true)
if [ -z "$KUBECONFORM" ] && command -v go >/dev/null; then
    [ -x "$TOOLS/bin/kubeconform" ] ||
        GOBIN="$TOOLS/bin" go install github.com/yannh/kubeconform/cmd/kubeconform@latest >&2 || true
    [ -x "$TOOLS/bin/kubeconform" ] && KUBECONFORM="$TOOLS/bin/kubeconform"
fi
[ -n "$KUBECONFORM" ] || note "kubeconform could not be built (Go module proxy); its column is empty"
SCHEMAS=""
if [ -n "$KUBECONFORM" ]; then
    # kubeconform downloads its schemas from GitHub by default; offline it reads a local copy of
    # kubernetes-validate's, whose "/api/_definitions.json" references are made file:// paths.
    KV_PY=python3
    for py in "$TOOLS/venv/bin/python" python3; do
        if "$py" -c "import kubernetes_validate" 2>/dev/null; then KV_PY=$py; break; fi
    done
    SCHEMAS="$TOOLS/kubeconform-schemas"
    "$KV_PY" - "$SCHEMAS" <<'PY' >&2 || SCHEMAS=""
import os, re, sys
import kubernetes_validate
root = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
versions = sorted(d for d in os.listdir(root) if d.endswith("-local-strict"))
src = os.path.join(root, next((v for v in versions if v.startswith("v1.32.")), versions[-1]))
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name in os.listdir(src):
    if name == "_definitions.json" or re.fullmatch(r"(namespace|persistentvolume|persistentvolumeclaim|configmap|secret|service)-v1\.json|statefulset-apps-v1\.json", name):
        text = open(os.path.join(src, name)).read()
        open(os.path.join(out, name), "w").write(text.replace('"/api/_definitions.json', f'"file://{out}/_definitions.json'))
print(f"kubeconform schemas from {src}")
PY
    if [ -z "$SCHEMAS" ]; then
        note "kubeconform has no schemas offline (kubernetes-validate's could not be converted); its column is empty"
        KUBECONFORM=""
    fi
fi
# An array, not a string: the schema template has spaces, and word-splitting it broke the
# template (kubeconform then failed every run with "unexpected "/" in command").
KC=("$KUBECONFORM" -strict -summary -schema-location "file://$SCHEMAS/{{ .ResourceKind }}{{ .KindSuffix }}.json")

# ---- Measurements. Every result is a hyperfine JSON file named after its row and column. ----
measure() { # name runs prepare command...
    local name=$1 runs=$2 prepare=$3; shift 3
    local args=(--style basic -N -i --export-json "$WORK/$name.json" --runs "$runs")
    if [ -n "$prepare" ]; then args+=(--prepare "$prepare"); else args+=(--warmup 1); fi
    # Quoted word by word: hyperfine -N splits the command line as a shell would.
    hyperfine "${args[@]}" "$(printf '%q ' "$@")" >&2 || note "$name: hyperfine failed"
}
# An anchor is timed only when it accepts the input: a run that fails (a crash, a missing schema,
# a rejection of valid manifests) has no time worth comparing, and says why instead.
measure_anchor() { # name runs command...
    local name=$1 runs=$2 status=0; shift 2
    "$@" > "$WORK/$name.out" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        echo "$status" > "$WORK/$name.failed"
        note "$name: exit $status, not timed: $(head -c 300 "$WORK/$name.out" | tr '\n' ' ')"
        return
    fi
    measure "$name" "$runs" "" "$@"
}
peak() { # name command...: peak RSS (KiB) of one run
    local name=$1; shift
    /usr/bin/time -v "$@" > /dev/null 2> "$WORK/$name.time" || true
    sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/$name.time" > "$WORK/$name.rss"
}
bins() { echo "after:$BIN"; [ -z "$BASE" ] || echo "before:$BASE"; }

"$BIN" render -f "$SPEC" > "$WORK/rendered.yaml"
for entry in $(bins); do
    col=${entry%%:*} bin=${entry#*:}
    export KUBECTL_REDIS_CACHE_DIR="$WORK/cache-$col"
    measure "cold.$col" 10 "rm -rf $KUBECTL_REDIS_CACHE_DIR" "$bin" check -f "$SPEC"
    peak "cold.$col" "$bin" check -f "$SPEC"   # the cache is warm after this one
    measure "warm.$col" "$RUNS" "" "$bin" check -f "$SPEC"
    peak "warm.$col" "$bin" check -f "$SPEC"
done
[ -z "$KV" ] || measure_anchor "warm.kubernetes-validate" 5 "$KV" --strict --quiet "$WORK/rendered.yaml"
[ -z "$CHECKOV" ] || measure_anchor "warm.checkov" 3 "$CHECKOV" -f "$WORK/rendered.yaml" --framework kubernetes --quiet --compact --skip-download --soft-fail
[ -z "$KUBECONFORM" ] || measure_anchor "warm.kubeconform" 10 "${KC[@]}" "$WORK/rendered.yaml"

for n in $SIZES; do
    python3 plugin/benches/check-synthetic.py "$n" "$WORK/synthetic-$n"
    runs=5; [ "$n" -le 20000 ] || runs=3
    for entry in $(bins); do
        col=${entry%%:*} bin=${entry#*:}
        if [ "$col" = before ] && [ "$n" -gt "$BASELINE_MAX" ]; then continue; fi
        export KUBECTL_REDIS_CACHE_DIR="$WORK/cache-$col"
        r=$runs; [ "$col" = after ] || r=1
        measure "check$n.$col" "$r" "" "$bin" check -f "$WORK/synthetic-$n" -o json
        peak "check$n.$col" "$bin" check -f "$WORK/synthetic-$n" -o json
        measure "render$n.$col" "$r" "" "$bin" render -f "$WORK/synthetic-$n"
        peak "render$n.$col" "$bin" render -f "$WORK/synthetic-$n"
    done
    if [ -n "$KV" ] && [ "$n" -le "$KV_MAX" ]; then
        measure_anchor "check$n.kubernetes-validate" 1 "$KV" --strict --quiet "$WORK/synthetic-$n"/*.yaml
    fi
    [ -z "$KUBECONFORM" ] || measure_anchor "check$n.kubeconform" 3 "${KC[@]}" "$WORK/synthetic-$n"
done

for i in $(seq 1 20); do "$BIN" check -f "$SPEC" -o json > "$WORK/report-$i.json" || true; done

python3 - "$WORK" "$SIZES" "$([ -n "$BASE" ] && echo 1)" <<'PY'
import glob, json, os, statistics, sys
work, sizes, with_base = sys.argv[1], [int(n) for n in sys.argv[2].split()], sys.argv[3] == "1"

def median(name):
    try:
        return statistics.median(json.load(open(f"{work}/{name}.json"))["results"][0]["times"])
    except (OSError, ValueError, KeyError, IndexError):
        return None

def failed(name):
    try:
        return int(open(f"{work}/{name}.failed").read())
    except (OSError, ValueError):
        return None

def rss(name):
    try:
        return int(open(f"{work}/{name}.rss").read()) / 1024
    except (OSError, ValueError):
        return None

def t(s):
    return "—" if s is None else f"{s * 1000:.1f} ms" if s < 10 else f"{s:.1f} s"

def mib(m):
    return "" if m is None else f", {m:.0f} MiB"

def ratio(a, b):
    return "—" if a is None or b is None or b == 0 else f"{a / b:.1f}x"

print("kubectl redis check benchmark (whole process, medians)")
anchors = ["kubernetes-validate", "checkov", "kubeconform"]
head = f"  {'case':<28} {'after':>18}"
if with_base:
    head += f" {'before':>18} {'before/after':>13}"
print(head + "   anchors (anchor time / after)")
def row(label, name, anchors_for=()):
    after, before = median(f"{name}.after"), median(f"{name}.before")
    line = f"  {label:<28} {t(after) + mib(rss(name + '.after')):>18}"
    if with_base:
        line += f" {t(before) + mib(rss(name + '.before')):>18} {ratio(before, after):>13}"
    parts = []
    for a in anchors_for:
        m, status = median(f"{name}.{a}"), failed(f"{name}.{a}")
        if m is not None:
            parts.append(f"{a} {t(m)} ({ratio(m, after)})")
        elif status is not None:
            parts.append(f"{a} failed (exit {status}, see notes)")
        else:
            parts.append(f"{a} —")
    print(line + ("   " + "; ".join(parts) if parts else ""))
    return after

row("cold check redis-cluster", "cold", anchors)
row("warm check redis-cluster", "warm", anchors)
check_times, render_times = {}, {}
for n in sizes:
    check_times[n] = row(f"check {n:,} objects", f"check{n}", [a for a in ("kubernetes-validate", "kubeconform") if median(f"check{n}.{a}") is not None or failed(f"check{n}.{a}") is not None])
for n in sizes:
    render_times[n] = row(f"render {n:,} objects", f"render{n}")

print("  growth (time ratio / size ratio; 1.0 is linear):")
for kind, times in (("check", check_times), ("render", render_times)):
    parts = []
    for a, b in zip(sizes, sizes[1:]):
        if times.get(a) and times.get(b):
            parts.append(f"{a:,}→{b:,}: {times[b] / times[a]:.2f}x for {b / a:.0f}x ({times[b] / times[a] / (b / a):.2f})")
    print(f"    {kind:<7} " + "; ".join(parts))

per = {}
for path in glob.glob(f"{work}/report-*.json"):
    for p in json.load(open(path))["policies"]:
        per.setdefault(p["policy"], []).append(p["duration"])
print("  per-policy evaluation, warm redis-cluster (median µs, incl. instantiation and JSON):")
for name, ds in sorted(per.items(), key=lambda kv: -statistics.median(kv[1])):
    print(f"    {name:<14} {statistics.median(ds):8.0f} µs")
notes = open(f"{work}/notes.txt").read().strip()
if notes:
    print("  notes:\n" + "\n".join(f"    {l}" for l in notes.splitlines()))
PY
