"""The unit layer itself: conftest.py refuses sockets, processes and threads, and every pure
encoder has its own unit test file here."""

from __future__ import annotations

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
