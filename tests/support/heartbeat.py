"""The application under test, as far as stalls go: a thread that beats every `interval` seconds
and records the longest gap between two beats."""

from __future__ import annotations

import threading
import time


class Heartbeat:
    def __init__(self, interval: float = 0.001) -> None:
        self.beats = 0
        self.max_gap = 0.0
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="app")

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self._interval):
            sum(i for i in range(500))  # a little work, as a request handler would do
            now = time.monotonic()
            self.max_gap = max(self.max_gap, now - last)
            last = now
            self.beats += 1

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
