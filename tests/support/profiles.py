"""Small helpers shared by the tests: reading served pprof bytes, running `go tool pprof` on
them, making lock contention."""

from __future__ import annotations

import gzip
import os
import subprocess
import threading
import time
from pathlib import Path

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


def pprof(go: str, tmp_path: Path, *args: str) -> str:
    """`go tool pprof ARGS`, unmodified; it must succeed."""
    env = {**os.environ, "PPROF_TMPDIR": str(tmp_path)}  # keeps HOME: go caches its tools there
    done = subprocess.run([go, "tool", "pprof", *args], capture_output=True, text=True,
                          check=False, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 0, f"go tool pprof {' '.join(args)}:\n{done.stderr}"
    return done.stdout


def top_rows(report: str) -> list[tuple[str, float, str]]:
    """The rows of `-top`: (flat, flat%, function)."""
    rows = []
    for line in report.split("flat%", 1)[1].splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 6:
            rows.append((fields[0], float(fields[1].rstrip("%")), " ".join(fields[5:])))
    return rows
