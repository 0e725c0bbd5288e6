"""A profiler started for one test, and requests to its HTTP listener.

Each test module binds its own defaults once, e.g.
``serving = partial(listener.serving, heap=True)``; a keyword given at the call overrides it."""

from __future__ import annotations

import http.client
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import duragraph_pprof


@contextmanager
def started(environ: dict[str, str] | None = None, mode: str = "serve",
            **settings: Any) -> Iterator[Any]:
    """`duragraph_pprof.start(mode, environ, **settings)`, stopped when the block ends however it
    ends. The environment is empty unless given, so the test's own variables never leak in."""
    profiler = duragraph_pprof.start(mode, environ={} if environ is None else environ, **settings)
    try:
        yield profiler
    finally:
        profiler.stop()


def serving(**settings: Any) -> AbstractContextManager[Any]:
    """A profiler with its HTTP listener on an OS-chosen loopback port and no gRPC listener."""
    return started(**{"http_addr": "127.0.0.1:0", "grpc_addr": None, **settings})


def fetch(profiler: Any, path: str, headers: dict[str, str] | None = None, method: str = "GET",
          body: bytes | None = None, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: (status, lower-cased headers, body), any status."""
    host, port = profiler.http_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def get(target: Any, path: str, timeout: float = 60) -> bytes:
    """The body of `GET /debug/pprof/<path>`, as `curl -sf` gives it: a status other than 2xx
    raises. `target` is a profiler or the (host, port) of a listener."""
    host, port = getattr(target, "http_address", target)[:2]
    with urllib.request.urlopen(f"http://{host}:{port}/debug/pprof/{path}",
                                timeout=timeout) as response:
        return response.read()
