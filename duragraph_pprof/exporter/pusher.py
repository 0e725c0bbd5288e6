"""The periodic push: every interval, take the shared sampler's window (CPU and wall) and the heap
profile, encode them, and hand the bytes to the export queue. Metrics go through their own reader.

The push thread only takes windows and encodes; sending happens on the queue's thread, so a slow
or absent collector delays nothing but its own requests. Neither thread is the sampling thread.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from opentelemetry.sdk.metrics import MeterProvider

from ..core.own import without_own_frames
from ..core.snapshot import Profile
from ..encode.otlp import AttrValue, Scope, encode_profiles
from ..failures import FailureLog
from .queue import ExportQueue

THREAD_NAME = "duragraph-pprof-push"  # the sampler leaves "duragraph-pprof*" threads out


class PushSource(Protocol):
    """What the push reads from the profiling core (a fake in unit tests)."""

    @property
    def sampler(self) -> Any: ...

    @property
    def heap(self) -> Any: ...


class Pusher:
    """Owns the push thread, the profiles queue and the metrics provider. `stop()` is idempotent
    and flushes: the last window is taken, queued and sent (within the export timeout)."""

    def __init__(
        self,
        source: PushSource,
        interval: float,
        resource: Mapping[str, AttrValue],
        scope: Scope,
        queue: ExportQueue | None,
        meter_provider: MeterProvider | None,
        flush_timeout: float = 10.0,
    ) -> None:
        self.source = source
        self.interval = interval
        self.resource = dict(resource)
        self.scope = scope
        self.flush_timeout = flush_timeout
        self.queue = queue
        self.meter_provider = meter_provider
        self._window = source.sampler.open_window() if queue is not None else None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._stopped = False
        self._pushes = 0
        self._failures = FailureLog("OTLP profiles push")
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)

    def start(self) -> Pusher:
        if self._window is not None:
            self._thread.start()
        atexit.register(self.stop)  # normal interpreter exit flushes too
        return self

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        atexit.unregister(self.stop)
        self._stopping.set()
        timeout = self.flush_timeout
        if self._thread.ident is not None:
            self._thread.join()  # it takes and queues the last window before it ends
        elif self._window is not None:
            self._window.close()  # never started: just leave the sampler
        # both signals flush at once, so a collector that is down costs one timeout, not two
        flush_metrics = None
        if self.meter_provider is not None:
            flush_metrics = threading.Thread(
                target=self.meter_provider.shutdown,
                kwargs={"timeout_millis": timeout * 1000},
                name=f"{THREAD_NAME}-flush",
                daemon=True,
            )
            flush_metrics.start()
        if self.queue is not None:
            self.queue.close(flush_timeout=timeout)
        if flush_metrics is not None:
            flush_metrics.join()

    def forget_in_child(self) -> None:
        """After fork: this push belongs to the parent; the child neither runs nor flushes it."""
        self._lock = threading.Lock()
        self._stopped = True
        atexit.unregister(self.stop)

    def push_once(self, profiles: list[Profile]) -> bool:
        """Encode and queue one request; False when there was nothing to send."""
        profiles = [p for p in profiles if p.samples]
        if not profiles or self.queue is None:
            return False
        self._pushes += 1
        seed = f"{self.resource.get('process.pid', os.getpid())}:{self._pushes}".encode()
        request = encode_profiles(profiles, self.resource, self.scope, id_seed=seed)
        self.queue.put(request.SerializeToString())
        return True

    def _collect(self, last: bool) -> list[Profile]:
        assert self._window is not None
        sampled = self._window.close() if last else self._window.take()
        heap = self.source.heap.profile()
        return [without_own_frames(p) for p in sampled] + ([heap] if heap is not None else [])

    def _run(self) -> None:
        last = False
        while not last:
            last = self._stopping.wait(self.interval)
            try:
                self.push_once(self._collect(last))
            except Exception as exc:  # noqa: BLE001 - the push must never take the app down
                self._failures.record(type(exc).__name__, "taking or encoding profiles", exc)
