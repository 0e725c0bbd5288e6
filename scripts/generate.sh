#!/usr/bin/env bash
# Regenerates duragraph_pprof/_gen from proto/ with the pinned grpcio-tools (see pyproject.toml).
# CI runs this and fails if the committed files change.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
out=duragraph_pprof/_gen
protos=$(cd proto && find . -name '*.proto' | sed 's|^\./||' | LC_ALL=C sort)
# Only files that declare a service get *_pb2_grpc.py; for the others it would be an empty stub.
services=$(cd proto && grep -l -E '^service ' $protos || true)
find "$out" -name '*_pb2*.py*' -delete
# shellcheck disable=SC2086
"$py" -m grpc_tools.protoc -Iproto --python_out="$out" --pyi_out="$out" $protos
if [[ -n "$services" ]]; then
  # shellcheck disable=SC2086
  "$py" -m grpc_tools.protoc -Iproto --grpc_python_out="$out" $services
fi
# grpc_tools writes absolute imports of sibling modules; make them package-relative.
find "$out" -name '*_pb2*.py' -print0 | xargs -0 sed -i -E \
  's/^from (perftools|duragraph)(\.[a-z0-9_.]+)? import ([a-z0-9_]+_pb2)/from duragraph_pprof._gen.\1\2 import \3/'
find "$out" -type d -exec touch {}/__init__.py \;
