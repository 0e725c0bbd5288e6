"""The unit layer itself: conftest.py refuses sockets, processes and threads, every pure encoder
has its own unit test file here, and what tests share comes from tests/support/ alone."""

from __future__ import annotations

import ast
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import duragraph_pprof.encode

REFUSED = pytest.fail.Exception
HERE = Path(__file__).resolve().parent
TESTS = HERE.parent


@pytest.mark.parametrize("start", [
    lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM),
    lambda: socket.create_connection(("127.0.0.1", 9)),
    lambda: socket.getaddrinfo("localhost", 80),
    lambda: subprocess.run([sys.executable, "-c", "pass"], check=False),
    lambda: os.system("true"),
    lambda: threading.Thread(target=lambda: None).start(),
], ids=["socket", "connect", "resolve", "subprocess", "system", "thread"])
def test_a_unit_test_may_not_reach_out(start):
    with pytest.raises(REFUSED, match="a unit test started"):
        start()


def test_every_encoder_module_has_a_unit_test_file():
    encoders = sorted(p.stem for p in Path(duragraph_pprof.encode.__file__).parent.glob("*.py")
                      if not p.name.startswith("_"))
    missing = [name for name in encoders if not (HERE / f"test_encode_{name}.py").exists()]
    assert encoders and not missing, f"encoders without tests/unit/test_encode_<name>.py: {missing}"


def test_tests_share_code_only_through_support():
    wrong = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            wrong += [f"{path.relative_to(TESTS)}: {name}" for name in names
                      if name.split(".")[0] in ("bench", "conftest")
                      or name.split(".")[-1].startswith("test_")]
    assert not wrong, f"import shared helpers and fakes from tests/support/, not from: {wrong}"
