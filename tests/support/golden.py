"""Golden files: an encoder's exact output, committed under tests/unit/golden/.

A test passes only when the output equals its golden file byte for byte. After a deliberate
change to an encoder, rewrite the files and review the diff before committing it::

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest -p no:cacheprovider tests/unit
    git diff tests/unit/golden/
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent.parent / "unit" / "golden"
UPDATE = "UPDATE_GOLDEN"


def assert_golden(name: str, actual: str | bytes) -> None:
    """`actual` must be the contents of golden/`name` (text is compared as UTF-8 bytes)."""
    data = actual.encode() if isinstance(actual, str) else actual
    path = GOLDEN / name
    if os.environ.get(UPDATE) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    if not path.exists():
        pytest.fail(f"no golden file {path.name}: run with {UPDATE}=1 to write it, then review it")
    expected = path.read_bytes()
    if data != expected:
        pytest.fail(f"output differs from golden/{name} (run with {UPDATE}=1 to accept it):\n"
                    + _diff(expected, data, name), pytrace=False)


def _diff(expected: bytes, actual: bytes, name: str) -> str:
    at = next((i for i, (a, b) in enumerate(zip(expected, actual)) if a != b),
              min(len(expected), len(actual)))
    lines = difflib.unified_diff(
        expected.decode(errors="backslashreplace").splitlines(keepends=True),
        actual.decode(errors="backslashreplace").splitlines(keepends=True),
        f"golden/{name}", "actual", n=2,
    )
    # repr each line so that a TAB, a trailing space or a lost newline is visible
    shown = "".join(line if line.startswith(("---", "+++", "@@")) else repr(line) + "\n"
                    for line in lines)
    return (f"first difference at byte {at} (golden {len(expected)} bytes, actual "
            f"{len(actual)} bytes)\n{shown}")
