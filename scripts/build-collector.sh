#!/usr/bin/env bash
# Builds the OpenTelemetry Collector used by the test suite from scripts/otelcol/manifest.yaml
# with the Collector Builder, and caches the binary outside the repository.
#
# Output contract: the ONLY line on stdout is the absolute path of the collector binary,
#   ${DURAGRAPH_PPROF_CACHE:-$HOME/.cache/duragraph-pprof}/otelcol-<manifest sha256, 12 hex>/otelcol-test
# Everything else (go, builder) goes to stderr. Callers take the last stdout line.
#
# Idempotent: when the cached binary for this manifest exists it is printed at once, without
# touching Go or the network, so a fresh clone on the same machine does not rebuild. Any edit
# of the manifest changes the cache key. Needs only Go (and network access to the Go module
# proxy) for a cold build. Concurrent runs are serialised with flock when it is available.
#
# Environment:
#   DURAGRAPH_PPROF_CACHE   cache root (default: $HOME/.cache/duragraph-pprof)
#   GO                      go command to use (default: go)
set -euo pipefail

# Must equal the core version pinned in the manifest.
builder_version=v0.159.0

repo_root=$(cd "$(dirname "$0")/.." && pwd)
manifest="$repo_root/scripts/otelcol/manifest.yaml"
go_cmd=${GO:-go}

cache_root=${DURAGRAPH_PPROF_CACHE:-${HOME:?HOME is not set}/.cache/duragraph-pprof}
if command -v sha256sum >/dev/null 2>&1; then
    manifest_sha=$(sha256sum "$manifest" | cut -c1-12)
else
    manifest_sha=$(shasum -a 256 "$manifest" | cut -c1-12)
fi
cache_dir="$cache_root/otelcol-$manifest_sha"
binary="$cache_dir/otelcol-test"

if [[ -x "$binary" ]]; then
    echo "$binary"
    exit 0
fi

mkdir -p "$cache_root"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$cache_root/build.lock"
    flock 9
    # Another run may have finished the build while this one waited for the lock.
    if [[ -x "$binary" ]]; then
        echo "$binary"
        exit 0
    fi
fi

if ! command -v "$go_cmd" >/dev/null 2>&1; then
    echo "build-collector: '$go_cmd' not found on PATH; install Go to build the test collector" >&2
    exit 1
fi

# The generated module lives inside the git work tree (.build/ is git-ignored); VCS stamping
# is useless there and fails when git is absent or the tree is owned by another user.
case " ${GOFLAGS:-} " in
    *" -buildvcs="*) ;;
    *) export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false" ;;
esac

builder_dir="$cache_root/builder-$builder_version"
builder="$builder_dir/builder"
if [[ ! -x "$builder" ]]; then
    echo "build-collector: installing the Collector Builder $builder_version into $builder_dir" >&2
    GOBIN="$builder_dir" "$go_cmd" install "go.opentelemetry.io/collector/cmd/builder@$builder_version" >&2
fi

echo "build-collector: building the collector from $manifest" >&2
start=$SECONDS
# dist.output_path in the manifest is relative to the working directory (the repository root);
# the builder creates only its last path element.
mkdir -p "$repo_root/.build"
(cd "$repo_root" && "$builder" --config="$manifest" >&2)
built="$repo_root/.build/otelcol/otelcol-test"
if [[ ! -x "$built" ]]; then
    echo "build-collector: the builder finished but $built is missing" >&2
    exit 1
fi
echo "build-collector: built in $((SECONDS - start)) s" >&2

mkdir -p "$cache_dir"
tmp="$cache_dir/.otelcol-test.$$"
cp "$built" "$tmp"
chmod 755 "$tmp"
mv -f "$tmp" "$binary"
echo "$binary"
