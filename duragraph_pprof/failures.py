"""Failures inside the profiler: logged once per kind, counted always, never raised.

A failure that repeats every push (a collector that is down, a CPython that broke something we
read) must not flood the application's log, and must not vanish into a counter either: the first
of each kind is logged on the `duragraph_pprof` logger, with its traceback when there is one; the
rest are only counted, and the counts are there to read.
"""

from __future__ import annotations

import _thread
import logging
from collections import Counter

log = logging.getLogger("duragraph_pprof")


class FailureLog:
    """Failures of one part of the profiler (`what`, e.g. "OTLP profiles export"), by kind."""

    def __init__(self, what: str, logger: logging.Logger = log) -> None:
        self._what = what
        self._logger = logger
        self._counts: Counter[str] = Counter()
        self._lock = _thread.allocate_lock()  # a real lock even while threading's are patched

    def record(self, kind: str, detail: str = "", exc: BaseException | None = None,
               times: int = 1) -> None:
        """Count `times` failures of `kind`; log the first one. Never raises."""
        try:
            with self._lock:
                first = self._counts[kind] == 0
                self._counts[kind] += times
            if first:
                self._logger.warning(
                    "duragraph-pprof: %s failed (%s)%s; further %s failures are counted, not "
                    "logged", self._what, kind, f": {detail}" if detail else "", kind,
                    exc_info=exc)
        except Exception:  # noqa: BLE001, S110 - a failing log handler must not break the caller
            pass

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
