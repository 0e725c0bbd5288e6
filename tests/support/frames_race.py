"""A child process: goroutine dumps taken while threads start and garbage with finalizers that
let the GIL go is collected. Prints `alive N` after the given seconds, unless it hung.

Usage: python -m support.frames_race SECONDS
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time

from duragraph_pprof.core.goroutines import GoroutineIds, capture


class Finalized:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it

    def __del__(self) -> None:
        time.sleep(0)  # lets the GIL go


def leaf(n: int) -> int:
    return n + 1


def main(seconds: float) -> None:
    done = [0]
    ids = GoroutineIds()

    def dump() -> None:
        while True:
            [Finalized() for _ in range(20)]
            capture(ids)
            done[0] += 1

    def busy() -> None:
        while True:
            leaf(1)  # a fresh frame at every call: a dump makes its frame object

    def start() -> None:
        while True:
            t = threading.Thread(target=leaf, args=(1,))
            t.start()
            t.join()

    gc.set_threshold(1)  # a collection at nearly every allocation
    for target in [dump] * 2 + [busy] * 4 + [start] * 2:
        threading.Thread(target=target, daemon=True).start()
    time.sleep(seconds)
    print("alive", done[0], flush=True)
    os._exit(0)  # the threads run forever


if __name__ == "__main__":
    main(float(sys.argv[1]))
