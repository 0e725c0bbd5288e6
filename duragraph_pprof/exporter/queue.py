"""A bounded export queue with its own sender thread.

`put` never blocks: when the queue is full (by count or bytes) the oldest request is dropped and
counted, so a collector that is down or slow costs bounded memory and never stalls the caller.
Each request is one `Client.send` (the SDK's retries happen inside it, within `timeout`). Every
failure is counted by kind for the self-metrics; the first of each kind is also logged.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass

from ..failures import FailureLog
from .profiles import Client

QUEUE_FULL = "queue_full"
ABORTED = "aborted"


@dataclass(frozen=True, slots=True)
class QueueStats:
    sent: int
    dropped: int
    failures: tuple[tuple[str, int], ...]  # (error type, count), sorted; drops included


class ExportQueue:
    def __init__(
        self,
        client: Client,
        timeout: float,
        max_items: int = 8,
        max_bytes: int = 32 << 20,
        name: str = "duragraph-pprof-export",
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._items: collections.deque[bytes] = collections.deque()
        self._bytes = 0
        self._cond = threading.Condition()
        self._closing = False
        self._busy = False
        self._abort = threading.Event()
        self._sent = 0
        self._failures = FailureLog(f"OTLP export ({name})")
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, body: bytes) -> None:
        dropped = 0
        with self._cond:
            if self._closing:
                return
            self._items.append(body)
            self._bytes += len(body)
            while len(self._items) > 1 and (
                len(self._items) > self._max_items or self._bytes > self._max_bytes
            ):
                self._bytes -= len(self._items.popleft())
                dropped += 1
            self._cond.notify()
        if dropped:
            self._failures.record(QUEUE_FULL, "the collector takes requests slower than they "
                                  "come; the oldest queued request was dropped", times=dropped)

    def stats(self) -> QueueStats:
        with self._cond:
            sent = self._sent
        failures = self._failures.counts()
        return QueueStats(sent=sent, dropped=failures.get(QUEUE_FULL, 0),
                          failures=tuple(sorted(failures.items())))

    def pending(self) -> tuple[int, int]:
        """(requests, bytes) waiting to be sent."""
        with self._cond:
            return len(self._items), self._bytes

    def idle(self) -> bool:
        with self._cond:
            return not self._items and not self._busy

    def close(self, flush_timeout: float) -> None:
        """Send what is queued for up to `flush_timeout` seconds, then give up and close."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(flush_timeout)
        self._abort.set()  # what is still queued is dropped
        try:
            self._client.close()  # stops a retry wait and cancels a call in flight
        except Exception as exc:  # noqa: BLE001 - stop() must not raise into the application
            self._failures.record(type(exc).__name__, "closing the exporter", exc)
        self._thread.join(1.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._closing:
                    self._cond.wait()
                if not self._items:
                    return
                body = self._items.popleft()
                self._bytes -= len(body)
                self._busy = True
            try:
                attempt = self._client.send(body, self._timeout)
                if not attempt.ok:
                    self._failures.record(attempt.error or "error", attempt.detail)
            except Exception as exc:  # noqa: BLE001 - a broken transport must not kill the sender
                self._failures.record(type(exc).__name__, "sending", exc)
                attempt = None
            with self._cond:
                self._busy = False
                if attempt is not None and attempt.ok:
                    self._sent += 1
                left = len(self._items) if self._abort.is_set() else -1
                if left >= 0:
                    self._items.clear()
            if left > 0:
                self._failures.record(ABORTED, f"{left} queued requests unsent when the flush "
                                      "timed out at stop", times=left)
            if left >= 0:
                return
