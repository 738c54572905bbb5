#!/usr/bin/env bash
# Builds the real Kubernetes control plane the test cluster runs (kube-apiserver,
# kube-controller-manager, kube-scheduler, etcd, kubectl and the kubelet streaming shim) from the
# Go module proxy into <cargo target dir>/k8s/bin. A no-op when nothing Go-related changed since the
# last build (the stamp holds a hash of this module's inputs). Module and build caches live under
# the target directory too, so `cargo clean` removes everything this script made.
#
#   bash tests/k8s/build.sh            # build if needed, print the bin directory
#   K8S_BUILD_FORCE=1 bash tests/k8s/build.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
out="$target/k8s"
bin="$out/bin"
mkdir -p "$bin"

# The release the module pins; the version stamp below must agree with go.mod.
version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' "$here/go.mod")"
[ -n "$version" ] || { echo "tests/k8s/build.sh: no k8s.io/kubernetes version in go.mod" >&2; exit 1; }
minor="$(echo "$version" | cut -d. -f2)"

inputs="$( (cd "$here" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' -o -name 'build.sh' \) | LC_ALL=C sort | xargs sha256sum; go version) | sha256sum | cut -d' ' -f1)"
stamp="$out/stamp"
tools=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kubelet-streaming)
have_all=1
for t in "${tools[@]}"; do [ -x "$bin/$t" ] || have_all=0; done
if [ "${K8S_BUILD_FORCE:-0}" != 1 ] && [ "$have_all" = 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]; then
  echo "$bin"
  exit 0
fi

# One build at a time: parallel test binaries may all ask for it.
exec 9>"$out/build.lock"
flock 9
if [ "${K8S_BUILD_FORCE:-0}" != 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]; then
  echo "$bin"
  exit 0
fi

export GOMODCACHE="${K8S_GOMODCACHE:-$out/gomod}"
export GOCACHE="${K8S_GOCACHE:-$out/gocache}"
export GOFLAGS="-mod=readonly -trimpath"
export CGO_ENABLED=0
# Kubernetes pins its toolchain in go.mod; never let the go command fetch another one.
export GOTOOLCHAIN=local

ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$version -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"

echo "building the Kubernetes $version control plane into $bin (a cold build takes 10-25 minutes on 2 cores)" >&2
start=$(date +%s)
cd "$here"
go build -ldflags "$ldflags" -o "$bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl \
  ./kubelet-streaming
go build -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3
echo "$inputs" > "$stamp"
echo "built in $(( $(date +%s) - start )) s" >&2
echo "$bin"
