#!/usr/bin/env bash
# The interpreter of CPython VERSION (e.g. 3.12): on PATH, else pyenv's. A missing one is a
# failure, not a skip: every supported CPython is tested.
set -euo pipefail
version=$1
for candidate in "python$version" \
    "$(pyenv prefix "$version" 2>/dev/null)/bin/python" \
    "$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".* 2>/dev/null | sort -V | tail -n 1)/bin/python"; do
  if command -v "$candidate" >/dev/null 2>&1 \
      && "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$version'.split('.'))))" 2>/dev/null; then
    command -v "$candidate"
    exit 0
  fi
done
echo "CPython $version not found (looked on PATH and under pyenv): install it, e.g. pyenv install $version" >&2
exit 1
