"""The periodic push: every interval, take a profile of every kind the registry says is pushed
(CPU and wall from one window of the shared sampler, the heap when it is on), encode them, and
hand the bytes to the export queue. Metrics go through their own reader.

The push thread only takes windows and encodes; sending happens on the queue's thread, so a slow
or absent collector delays nothing but its own requests. Neither thread is the sampling thread.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from opentelemetry.sdk.metrics import MeterProvider

from ..core.snapshot import Profile
from ..encode.otlp import AttrValue, Scope, encode_profiles
from ..failures import FailureLog
from ..kinds import REGISTRY, ProfileKind
from ..kinds.kind import Feed
from .queue import ExportQueue

if TYPE_CHECKING:
    from ..core.profiling_core import ProfilingCore

THREAD_NAME = "duragraph-pprof-push"  # the sampler leaves "duragraph-pprof*" threads out


class Pusher:
    """Owns the push thread, the profiles queue and the metrics provider. `stop()` is idempotent
    and flushes: the last window is taken, queued and sent (within the export timeout). It pushes
    the kinds registered when it is made; `source` is the profiling core (a fake in unit tests)."""

    def __init__(
        self,
        source: ProfilingCore,
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
        self._kinds = REGISTRY.pushed() if queue is not None else []
        self._feeds = _open_feeds(source, self._kinds)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._stopped = False
        self._pushes = 0
        self._failures = FailureLog("OTLP profiles push")
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)

    def start(self) -> Pusher:
        if self.queue is not None:
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
        else:
            for feed in self._feeds.values():
                feed.close()  # never started: just leave the sampler
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
        taken = {key: feed.close() if last else feed.take() for key, feed in self._feeds.items()}
        picked = (kind.push.pick(taken[kind.push.feed]) for kind in self._kinds if kind.push)
        return [profile for profile in picked if profile is not None]

    def _run(self) -> None:
        last = False
        while not last:
            last = self._stopping.wait(self.interval)
            try:
                self.push_once(self._collect(last))
            except Exception as exc:  # noqa: BLE001 - the push must never take the app down
                self._failures.record(type(exc).__name__, "taking or encoding profiles", exc)


def _open_feeds(source: ProfilingCore, kinds: list[ProfileKind]) -> dict[Callable, Feed]:
    """One feed per distinct `push.feed`: the kinds that name the same one share it."""
    feeds: dict[Callable, Feed] = {}
    for kind in kinds:
        if kind.push is not None and kind.push.feed not in feeds:
            feeds[kind.push.feed] = kind.push.feed(source)
    return feeds
