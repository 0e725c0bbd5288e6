#!/usr/bin/env bash
# Installs the pinned Go tools the tests drive (a real gRPC client) into a cache outside the
# repository, so no binary is ever committed. Idempotent; prints the path of each binary.
set -euo pipefail
GRPCURL_VERSION=v1.9.4
bin="${DURAGRAPH_PPROF_CACHE:-$HOME/.cache/duragraph-pprof}/bin"
mkdir -p "$bin"
stamp="$bin/.grpcurl-$GRPCURL_VERSION"
if [[ ! -x "$bin/grpcurl" || ! -e "$stamp" ]]; then
  # GOBIN puts the binary in the cache; -trimpath keeps this machine's paths out of it.
  GOBIN="$bin" GOFLAGS="${GOFLAGS:-} -trimpath" \
    go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION" >&2
  rm -f "$bin"/.grpcurl-*
  touch "$stamp"
fi
echo "$bin/grpcurl"
