#!/usr/bin/env bash
# Builds (once) the local control plane that Brain's Kubernetes tests and `make run` start on
# 127.0.0.1 — etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (simulated nodes
# and pods) — from Go modules only, and prints the directory that holds them (KUBEBUILDER_ASSETS).
# The three Kubernetes binaries come from one throwaway module in a single `go build`, so they share
# their compilation; kwok is built from its own module (it pins other k8s.io versions).
# The result is cached under ${XDG_CACHE_HOME:-$HOME/.cache}/brain/; a second run returns at once.
# Progress goes to stderr; only the directory goes to stdout.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
GO_VERSION=$(go env GOVERSION)
CACHE_ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/brain
OUT=$CACHE_ROOT/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-$GO_VERSION

log() { printf 'kube-test-bins: %s\n' "$*" >&2; }

BINS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

ready() {
  local b
  for b in "${BINS[@]}"; do
    [ -x "$OUT/$b" ] && "$OUT/$b" --version >/dev/null 2>&1 || return 1
  done
}

if ready; then echo "$OUT"; exit 0; fi
mkdir -p "$CACHE_ROOT"
# One build at a time, also across concurrent test processes.
exec 9>"$CACHE_ROOT/.kube-test-bins.lock"
flock 9
if ready; then echo "$OUT"; exit 0; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT.tmp"

build_etcd() {
  log "building etcd $ETCD_VERSION (about 1 minute on 2 cores, once)"
  mkdir -p "$work/etcd" && cd "$work/etcd"
  cat > go.mod <<MOD
module etcdbuild

go 1.26.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
  go mod tidy >&2
  go build -trimpath -ldflags "-s -w" -o "$OUT.tmp/etcd" go.etcd.io/etcd/server/v3 >&2
}

build_kube() {
  log "building kube-apiserver, kube-controller-manager and kube-scheduler $K8S_VERSION (one go build; about 8 minutes and 3 GB of memory on 2 cores, once)"
  mkdir -p "$work/kas" && cd "$work/kas"
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -n "$gomod" ] || { log "cannot find go.mod of k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
  staging=${K8S_VERSION/v1./v0.}
  {
    printf 'module kasbuild\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$K8S_VERSION"
    sed -n 's#^[[:space:]]*\(k8s.io/[^[:space:]]*\) => \./staging/.*#\t\1 => \1 '"$staging"'#p' "$gomod"
    printf ')\n'
  } > go.mod
  printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kube-controller-manager"\n\t_ "k8s.io/kubernetes/cmd/kube-scheduler"\n)\n' > tools.go
  go mod tidy >&2
  major=${K8S_VERSION#v}; major=${major%%.*}
  minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
  ver="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor"
  ver="$ver -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=$major -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  go build -trimpath -ldflags "-s -w $ver" -o "$OUT.tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler >&2
}

build_kwok() {
  log "building kwok $KWOK_VERSION (about 5 minutes on 2 cores, once)"
  GOBIN="$OUT.tmp" GOFLAGS=-trimpath go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
}

build_etcd
build_kube
build_kwok
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
ready || { log "built binaries do not run"; exit 1; }
log "cached in $OUT"
echo "$OUT"
