#!/usr/bin/env bash
# Every test, with all set-up done first: the venv, the pinned OpenTelemetry Collector, grpcurl.
# Usage: scripts/test.sh [pytest args...]  (the args go to the run after the unit layer)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== pytest, $(.venv/bin/python -V): the unit layer first (no sockets, processes or threads)" >&2
started=$SECONDS
.venv/bin/python -m pytest -p no:cacheprovider -q tests/unit
if (( SECONDS - started > 20 )); then
  echo "tests/unit took $((SECONDS - started)) s: the unit layer must stay under 20 s" >&2
  exit 1
fi
echo "== building the OpenTelemetry Collector (cached after the first build)" >&2
bash scripts/build-collector.sh >/dev/null
echo "== installing Chromium for the browser tests (once)" >&2
bash scripts/install-browser.sh
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
echo "== pytest, $(.venv/bin/python -V): every other test" >&2
.venv/bin/python -m pytest -p no:cacheprovider tests/integration "$@"
echo "== soak: threads churning, asyncio, GC pressure, every profile polled" >&2
.venv/bin/python -m tests.soak "${DURAGRAPH_PPROF_SOAK_SECONDS:-120}"
# every other supported CPython: the suite without the Collector (its tests ran above)
for version in 3.10 3.12 3.13; do
  python=$(bash scripts/find-python.sh "$version")
  echo "== pytest, $("$python" -V): every test but the Collector's" >&2
  PYTHON=$python VENV=.venv-$version bash scripts/setup.sh
  ".venv-$version/bin/python" -m pytest -p no:cacheprovider -m "not collector" "$@"
done
