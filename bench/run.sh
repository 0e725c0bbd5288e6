#!/usr/bin/env bash
# Every benchmark, one table of ratios: bench/run.sh [--quick] [--only NAME ...]
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m bench "$@"
