#!/usr/bin/env bash
# Creates .venv with the package (editable) and its pinned dev tools. Fast when nothing changed.
# PYTHON=... VENV=... make another interpreter's environment (scripts/test.sh does, per CPython).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
venv=${VENV:-.venv}
# the C extension is built by the install: a change to its sources reinstalls too
stamp=$venv/.installed-$(cat pyproject.toml setup.py native/* | sha256sum | cut -c1-12)
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
if [ ! -f "$stamp" ]; then
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  DURAGRAPH_PPROF_NATIVE_REQUIRED=${DURAGRAPH_PPROF_NATIVE_REQUIRED:-1} \
    "$venv/bin/python" -m pip install -q -e '.[dev]' >&2
  rm -f "$venv"/.installed-*
  touch "$stamp"
fi
