"""Small helpers shared by the tests: reading served pprof bytes, making lock contention."""

from __future__ import annotations

import gzip
import threading
import time

from duragraph_pprof._gen.perftools.profiles import profile_pb2


def parse_pprof(body: bytes) -> profile_pb2.Profile:
    """The profile in a served body (gzip-compressed pprof protobuf)."""
    profile = profile_pb2.Profile()
    profile.ParseFromString(gzip.decompress(body))
    return profile


def contend(threads: int) -> None:
    """Make `threads` threads wait on one lock held for a moment."""
    lock = threading.Lock()
    lock.acquire()
    waiters = [threading.Thread(target=lambda: lock.acquire() and lock.release())
               for _ in range(threads)]
    for t in waiters:
        t.start()
    time.sleep(0.1)
    lock.release()
    for t in waiters:
        t.join()
