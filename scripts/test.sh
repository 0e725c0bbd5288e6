#!/usr/bin/env bash
# Every test, with all set-up done first: the venv, the pinned OpenTelemetry Collector, grpcurl.
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== building the OpenTelemetry Collector (cached after the first build)" >&2
bash scripts/build-collector.sh >/dev/null
echo "== installing grpcurl (cached)" >&2
bash scripts/install-go-tools.sh >/dev/null
echo "== generated code is up to date" >&2
bash scripts/generate.sh
if [ -n "$(git status --porcelain -- duragraph_pprof/_gen 2>/dev/null)" ]; then
  git status --porcelain -- duragraph_pprof/_gen >&2
  echo "generated code is stale: run scripts/generate.sh and commit the result" >&2
  exit 1
fi
echo "== buf lint and format" >&2
.venv/bin/buf lint
.venv/bin/buf format -d --exit-code
echo "== ruff" >&2
.venv/bin/ruff check duragraph_pprof tests bench
echo "== pytest" >&2
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
