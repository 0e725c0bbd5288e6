"""The profiling core: one object per profiler that owns every side effect (the sampler thread,
tracemalloc, patched locks) and hands out snapshots to HTTP, gRPC and the OTLP push alike. What
each profile is, and how it is taken from here, is its kind's (`kinds/`).
"""

from __future__ import annotations

import logging
import threading

from ..config import Config
from . import futex_hash, goroutines
from .heap import make_heap
from .locks import Contention
from .native import make_sampler
from .snapshot import GoroutineSet
from .trace import TraceRecorder

_MAX_SYMBOLS = 1_000_000
_log = logging.getLogger("duragraph_pprof")


class ProfilingCore:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.sampler = make_sampler(config.sample_hz, config.cpu_budget, config.sampler)
        self.heap = make_heap(config.heap, config.heap_depth, config.heap_rate)
        self.contention = Contention(config.mutex_fraction, config.block_fraction)
        self.ids = goroutines.GoroutineIds()
        self.long_requests = threading.BoundedSemaphore(config.max_long_requests)
        self.symbols: dict[int, str] = {}  # synthetic address -> function, for /symbol

    def start(self) -> None:
        if self.config.futex_slots is not None:  # done again in a forked worker: its own process
            why_not = futex_hash.set_slots(self.config.futex_slots)
            if why_not is not None:
                _log.warning("duragraph-pprof: DURAGRAPH_PPROF_FUTEX_SLOTS not applied: %s", why_not)
        self.heap.start()
        self.contention.start()

    def stop(self) -> None:
        self.sampler.stop()
        self.contention.stop()
        self.heap.stop()

    def goroutines(self) -> GoroutineSet:
        return goroutines.capture(self.ids)

    def goroutine_counts(self) -> tuple[int, int]:
        return goroutines.counts()

    def trace_recorder(self) -> TraceRecorder:
        return TraceRecorder(self.sampler, self.config.trace_max_events)

    def remember_symbols(self, symbols: dict[int, str]) -> None:
        if len(self.symbols) + len(symbols) > _MAX_SYMBOLS:
            self.symbols.clear()
        self.symbols.update(symbols)
