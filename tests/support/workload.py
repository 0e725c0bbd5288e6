"""Test workloads written to a real file and imported, so that `go tool pprof -list` can read
their source and every frame names a file of the test's own."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType


@contextmanager
def imported(directory: Path, prefix: str, source: str) -> Iterator[ModuleType]:
    """`source` as a module under `directory`, importable by name while the block runs; its
    RETAINED list, if any, is emptied afterwards."""
    name = f"{prefix}_{os.getpid()}_{id(directory):x}"
    path = directory / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    try:
        yield module
    finally:
        getattr(module, "RETAINED", []).clear()
        del sys.modules[name]
