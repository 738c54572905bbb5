#!/usr/bin/env bash
# Runs every fuzz target (or those named) for a fixed time each: `plugin/fuzz/run.sh [SECONDS]
# [TARGET...]`, 60 s by default. Needs cargo-fuzz (`cargo install cargo-fuzz`).
#
# Toolchain: cargo-fuzz wants nightly, which cannot be downloaded on the build machines. The
# usual stable toolchain works with RUSTC_BOOTSTRAP=1, which makes rustc accept the unstable
# `-Zsanitizer` flag (fine for a local fuzzing build, never for a release); it is always set, as
# cargo rebuilds everything when it changes. The targets are safe Rust, so they run without
# AddressSanitizer by default: libFuzzer itself catches what matters here (panics, aborts,
# timeouts via -timeout, memory past -rss_limit_mb). SANITIZER=address turns ASan on. The first
# build compiles wasmtime instrumented: about 50 minutes on a busy 2-core machine.
#
# The seed corpus lives in corpus/<target>/ and is not modified: new inputs go to a scratch
# directory under target/. A crash is saved under artifacts/<target>/; turn it into a
# regression test in the normal test suite, then delete it.
set -euo pipefail

cd "$(dirname "$0")"
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(spec_load resp_reply)
fi

export RUSTC_BOOTSTRAP=1
sanitizer="${SANITIZER:-none}"

for target in "${targets[@]}"; do
  scratch="target/corpus/$target"
  mkdir -p "$scratch" "artifacts/$target"
  echo "== $target: ${seconds}s"
  cargo fuzz run --sanitizer "$sanitizer" "$target" "$scratch" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="artifacts/$target/"
done
