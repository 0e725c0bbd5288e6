"""start()/stop(): wires the listeners and the OTLP push to one profiling core.

Every listen address goes through the bind guard before anything starts, so a refused address
leaves nothing half-running.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections.abc import Mapping
from typing import Any

from .config import SERVE, Config, load_config, variable_of
from .core.profiling_core import ProfilingCore
from .errors import ConfigError
from .guard import BindTarget, check_bind


class Profiler:
    """A running profiler. `http_address` / `grpc_address` are what was really bound."""

    def __init__(self, config: Config, environ: Mapping[str, str]) -> None:
        self.config = config
        targets = {field: _guard(config, field) for field in ("http_addr", "grpc_addr")}
        from .exporter import check_push_settings, start_push

        check_push_settings(environ)
        self.core = ProfilingCore(config)
        self.http = self.grpc = self.push = None
        self._lock = threading.Lock()
        self._stopped = False
        _running.add(self)
        self.core.start()
        try:
            if targets["http_addr"] is not None:
                from .server.http import HttpListener

                self.http = _listen(config, "http_addr",
                                    lambda: HttpListener(self.core, targets["http_addr"]))
            if targets["grpc_addr"] is not None:
                from .server.grpc import start_grpc_server

                self.grpc = _listen(config, "grpc_addr", lambda: start_grpc_server(
                    self.core, targets["grpc_addr"], config))
            self.push = start_push(self.core, config, environ)
        except BaseException:
            self.stop()
            raise

    @property
    def http_address(self) -> Any:
        return self.http.address if self.http else None

    @property
    def grpc_address(self) -> Any:
        return self.grpc.address if self.grpc else None

    def stop(self) -> None:
        """Stop everything; idempotent. The OTLP push flushes its last window first."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        _running.discard(self)
        for part in (self.push, self.grpc, self.http):
            if part is not None:
                part.stop()
        self.core.stop()

    def _forget_in_child(self) -> None:
        """After fork, in the child: nothing of ours is served or pushed from here (a worker
        that wants its own profiler calls start() again, e.g. in gunicorn's post_fork)."""
        self._lock = threading.Lock()
        self._stopped = True
        for part in (self.http, self.push):
            if part is not None:
                part.forget_in_child()
        self.http = self.grpc = self.push = None
        self.core.sampler.forget_in_child()

    def __enter__(self) -> Profiler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_running: weakref.WeakSet[Profiler] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for profiler in list(_running):
        profiler._forget_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def start(mode: str = SERVE, *, environ: Mapping[str, str] | None = None,
          **overrides: Any) -> Profiler:
    """Start profiling this process. Settings: keyword overrides > environment > mode defaults.

    Raises ConfigError (BindRefused for a refused listen address) before anything starts.
    """
    environ = os.environ if environ is None else environ
    return Profiler(load_config(environ, mode, **overrides), environ)


def _guard(config: Config, field: str) -> BindTarget | None:
    address = getattr(config, field)
    if address is None:
        return None
    target = check_bind(address, variable=variable_of(field), allow_public=config.allow_public)
    if target.public:
        sys.stderr.write(
            f"duragraph-pprof: WARNING: {variable_of(field)}={address} listens beyond loopback "
            f"because DURAGRAPH_PPROF_ALLOW_PUBLIC=true. Anyone who can reach it can read heap "
            f"contents and tie up the process."
            + ("" if config.token else " No DURAGRAPH_PPROF_TOKEN is set: it is unauthenticated.")
            + "\n"
        )
    return target


def _listen(config: Config, field: str, open_listener):
    try:
        return open_listener()
    except OSError as exc:
        raise ConfigError(variable_of(field), str(getattr(config, field)),
                          f"cannot listen: {exc.strerror or exc}",
                          "choose another port, or stop what is using it") from None
