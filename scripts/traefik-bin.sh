#!/usr/bin/env bash
# Builds (once) the Traefik binary that Brain's Traefik test runs on 127.0.0.1, from Go modules only,
# and prints its path. The result is cached under ${XDG_CACHE_HOME:-$HOME/.cache}/brain/; a second run
# returns at once. Progress goes to stderr; only the binary's path goes to stdout.
#
# Traefik's own go.mod carries replace and exclude directives that Go ignores when Traefik is a
# dependency, so the throwaway module copies them before `go get -tool`. The module ships no web-UI
# assets: the dashboard pages answer 500, routing and the API work. Keep TRAEFIK_VERSION on the same
# line as the traefik image in docker-compose.yml.
set -euo pipefail

TRAEFIK_VERSION=${TRAEFIK_VERSION:-v3.6.12}
GO_VERSION=$(go env GOVERSION)
CACHE_ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/brain
OUT=$CACHE_ROOT/traefik-$TRAEFIK_VERSION-$GO_VERSION
MODULE=github.com/traefik/traefik/v3

log() { printf 'traefik-bin: %s\n' "$*" >&2; }

ready() {
  [ -x "$OUT/traefik" ] && "$OUT/traefik" version >/dev/null 2>&1
}

if ready; then echo "$OUT/traefik"; exit 0; fi
mkdir -p "$CACHE_ROOT"
# One build at a time, also across concurrent test processes.
exec 9>"$CACHE_ROOT/.traefik-bin.lock"
flock 9
if ready; then echo "$OUT/traefik"; exit 0; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT.tmp"

log "building traefik $TRAEFIK_VERSION (about 10 minutes on 2 cores, once)"
cd "$work"
gomod=$(go mod download -json "$MODULE@$TRAEFIK_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
[ -n "$gomod" ] || { log "cannot find go.mod of $MODULE@$TRAEFIK_VERSION"; exit 1; }
{
  printf 'module traefikbuild\n\ngo 1.26.0\n\n'
  # The replace block (Containous forks of go-http-auth, mux, minheap) and the tencentcloud exclude.
  sed -n '/^replace (/,/^)/p' "$gomod"
  grep -E '^replace [^(]' "$gomod" || true
  grep -E '^exclude ' "$gomod" || true
} > go.mod
grep -q 'go-http-auth =>' go.mod || { log "replace directives not found in $gomod"; exit 1; }
go get -tool "$MODULE/cmd/traefik@$TRAEFIK_VERSION" >&2
ver="-X $MODULE/pkg/version.Version=$TRAEFIK_VERSION -X $MODULE/pkg/version.Codename=brain-test"
GOBIN="$OUT.tmp" go install -trimpath -ldflags "-s -w $ver" "$MODULE/cmd/traefik" >&2
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
ready || { log "built binary does not run"; exit 1; }
log "cached in $OUT"
echo "$OUT/traefik"
