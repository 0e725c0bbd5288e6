"""Target 7: one OTLP push of a window's CPU and wall profiles for 10 busy threads: gzip size
and encode time (encode_profiles + SerializeToString + gzip, as the pusher does)."""

from __future__ import annotations

import gzip
import time

from duragraph_pprof.core.sampler import Sampler

from .report import Row, fmt, summarize
from .workloads import VariedThreads


def _encoder():
    try:
        from duragraph_pprof.encode.otlp import Scope, encode_profiles
    except ImportError as exc:  # another part of the project may not have landed yet
        return None, str(exc)
    return (lambda profiles: gzip.compress(
        encode_profiles(profiles, {"service.name": "bench"}, Scope("duragraph-pprof"))
        .SerializeToString(), mtime=0)), ""


def rows(seconds: float, reps: int) -> list[Row]:
    encode, why = _encoder()
    name = f"OTLP push, {seconds:g} s CPU + wall, 10 threads"
    if encode is None:
        return [Row(name, "skipped", "<= 100 KB gzip, <= 50 ms", None,
                    f"encode/otlp.py is not usable yet: {why}")]
    sampler = Sampler(100)
    with VariedThreads(10):
        window = sampler.open_window()
        time.sleep(seconds)
        profiles = window.close()
    sampler.stop()
    body = encode(profiles)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        encode(profiles)
        times.append(time.perf_counter() - start)
    t = summarize(times)
    samples = sum(len(p.samples) for p in profiles)
    return [
        Row(f"{name}: gzip size", f"{len(body) / 1000:.1f} KB (one body, deterministic)",
            "<= 100 KB", len(body) <= 100_000,
            f"{samples:,} samples in the two profiles, distinct stacks x threads"),
        Row(f"{name}: encode time", fmt(t, " ms", 1e3, 1), "<= 50 ms", t.median <= 0.050),
    ]
