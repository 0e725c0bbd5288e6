"""The unit layer: pure code on hand-built data. A unit test that opens a socket, starts a
process or starts a thread fails on the spot; such a test belongs in the integration layer."""

from __future__ import annotations

import os
import socket
import subprocess
import threading

import pytest

# (owner, attribute, what it is): every way in that a unit test might take by mistake
_FORBIDDEN = [
    (socket.socket, "__init__", "a socket"),
    (socket.socket, "connect", "a socket connection"),
    (socket.socket, "connect_ex", "a socket connection"),
    (socket.socket, "bind", "a socket bind"),
    (socket, "create_connection", "a socket connection"),
    (socket, "getaddrinfo", "a name look-up"),
    (subprocess.Popen, "_execute_child", "a subprocess"),
    (os, "system", "a subprocess"),
    (os, "fork", "a forked process"),
    (os, "posix_spawn", "a subprocess"),
    (os, "posix_spawnp", "a subprocess"),
    (threading.Thread, "start", "a thread"),
]


def _refuse(what: str, name: str):
    def refused(*args, **kwargs):
        pytest.fail(f"a unit test started {what} ({name}); move the test to the integration "
                    "layer or give the code under test a fake", pytrace=True)

    return refused


@pytest.fixture(autouse=True)
def no_network_processes_or_threads(monkeypatch):
    for owner, attribute, what in _FORBIDDEN:
        if hasattr(owner, attribute):
            name = f"{getattr(owner, '__name__', owner)}.{attribute}"
            monkeypatch.setattr(owner, attribute, _refuse(what, name))
    yield
