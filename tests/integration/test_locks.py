"""The lock patch has one owner: originals come back when the last recorder stops, in any order;
`isinstance` against `threading.Lock` keeps working while patched; and no profile shows the lock
wrappers' (or any other of the profiler's) frames."""

from __future__ import annotations

import threading
import time

import pytest
from support.profiles import parse_pprof

import duragraph_pprof
from duragraph_pprof.core import lockpatch
from duragraph_pprof.core.frames import profiler_file
from duragraph_pprof.core.locks import BLOCK, MUTEX, Contention

ORIGINALS = (threading.Lock, threading.RLock, threading.Condition.wait)


def _now() -> tuple:
    return threading.Lock, threading.RLock, threading.Condition.wait


@pytest.mark.parametrize("order", ["first-in-first-out", "last-in-first-out"])
def test_two_profilers_stopped_in_either_order_restore_the_originals(order):
    a = duragraph_pprof.start("serve", environ={}, mutex_fraction=1, block_fraction=1)
    b = duragraph_pprof.start("serve", environ={}, mutex_fraction=1)
    try:
        assert _now() != ORIGINALS and lockpatch.active() == 2
        first, second = (a, b) if order == "first-in-first-out" else (b, a)
        first.stop()
        assert threading.Lock is not ORIGINALS[0]  # the other one still records
        lock = threading.Lock()  # made after the first stopped: feeds the second only
        _contend(lock)
        assert second.core.contention.count(MUTEX) >= 1
        assert first.core.contention.count(MUTEX) == 0
    finally:
        a.stop()
        b.stop()
    assert _now() == ORIGINALS
    assert lockpatch.active() == 0


def test_a_wrapper_outliving_the_patch_reports_to_nobody_stopped():
    old = Contention(1, 1)
    old.start()
    lock = threading.Lock()
    old.stop()
    assert _now() == ORIGINALS
    before = old.profile(MUTEX).samples
    _contend(lock)  # still a wrapper, now with nobody listening
    assert old.profile(MUTEX).samples == before
    new = Contention(1, 0)
    new.start()
    try:
        _contend(lock)  # an old wrapper feeds whoever listens now
        assert new.count(MUTEX) >= 1
    finally:
        new.stop()


def test_isinstance_against_threading_lock_holds_while_patched():
    real = ORIGINALS[0]()
    recorder = Contention(1, 1)
    recorder.start()
    try:
        made = threading.Lock()
        assert isinstance(made, threading.Lock)
        assert isinstance(real, threading.Lock)  # made before the patch
        assert not isinstance(object(), threading.Lock)
        with made:
            assert made.locked()
        cond = threading.Condition(threading.RLock())
        with cond:
            assert not cond.wait(0.01)
    finally:
        recorder.stop()
    assert _now() == ORIGINALS


def test_block_waits_are_timed_only_while_a_block_recorder_listens():
    mutex_only = Contention(1, 0)
    mutex_only.start()
    try:
        assert threading.Condition.wait is ORIGINALS[2]
        block = Contention(0, 1)
        block.start()
        assert threading.Condition.wait is not ORIGINALS[2]
        threading.Event().wait(0.01)
        assert block.count(BLOCK) >= 1
        block.stop()
        assert threading.Condition.wait is ORIGINALS[2]
    finally:
        mutex_only.stop()


def _contend(lock, hold: float = 0.05) -> None:
    lock.acquire()
    waiter = threading.Thread(target=lambda: lock.acquire() and lock.release(), name="waiter")
    waiter.start()
    time.sleep(hold)
    lock.release()
    waiter.join()


class _Contenders:
    """Application threads that keep waiting on a lock and on a condition."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._hold, name="app-holder"),
                        threading.Thread(target=self._wait_lock, name="app-locker"),
                        threading.Thread(target=self._wait_event, name="app-waiter")]

    def _hold(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                time.sleep(0.02)
            time.sleep(0.001)

    def _wait_lock(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                sum(range(1000))

    def _wait_event(self) -> None:
        while not self.stop.is_set():
            threading.Event().wait(0.01)

    def __enter__(self) -> _Contenders:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


def _samples(body: bytes) -> list[tuple[set[str], set[str], dict[str, str]]]:
    """Each sample's (function names, file names, string labels) in a served pprof body."""
    p = parse_pprof(body)
    functions = {f.id: (p.string_table[f.name], p.string_table[f.filename]) for f in p.function}
    locations = {loc.id: [functions[line.function_id] for line in loc.line] for loc in p.location}
    out = []
    for s in p.sample:
        named = [fn for loc in s.location_id for fn in locations[loc]]
        labels = {p.string_table[lb.key]: p.string_table[lb.str] for lb in s.label}
        out.append(({n for n, _ in named}, {f for _, f in named}, labels))
    return out


def test_no_profile_shows_the_profilers_frames_or_threads_with_every_kind_on():
    from urllib.request import urlopen

    profiler = duragraph_pprof.start("serve", environ={}, http_addr="127.0.0.1:0",
                                     grpc_addr="127.0.0.1:0", mutex_fraction=1,
                                     block_fraction=1, heap=True, sample_hz=200, cpu_budget=0.2)
    base = profiler.http_address
    url = f"http://{base[0]}:{base[1]}/debug/pprof/"
    try:
        with _Contenders() as app:
            app.lock = threading.Lock()  # made while patched: a wrapper
            results: dict[str, bytes] = {}

            def fetch(name: str) -> None:
                with urlopen(url + name, timeout=30) as response:
                    results[name] = response.read()

            pulls = [threading.Thread(target=fetch, args=(n,))
                     for n in ("profile?seconds=2", "wall?seconds=2", "trace?seconds=2")]
            for t in pulls:
                t.start()
            for t in pulls:
                t.join()
            for name in ("mutex", "block"):
                fetch(name)
    finally:
        profiler.stop()
    for name in ("profile?seconds=2", "wall?seconds=2", "mutex", "block"):
        samples = _samples(results[name])
        assert samples, name
        ours = {f for _, files, _ in samples for f in files if profiler_file(f)}
        assert not ours, (name, ours)
        threads = {labels.get("thread.name", "") for _, _, labels in samples}
        assert not any(t.startswith("duragraph-pprof") for t in threads), (name, threads)
        assert not any("_serve" in t for t in threads), (name, threads)  # grpc's, once
    wall = _samples(results["wall?seconds=2"])
    # the waiter's time sits at its own `with self.lock:`, not under a wrapper frame
    assert any(any(f.endswith("test_locks._Contenders._wait_lock") for f in functions) and
               labels["thread.name"] == "app-locker" for functions, _, labels in wall), wall
    trace = results["trace?seconds=2"].decode()
    assert "duragraph_pprof." not in trace, trace[:2000]
    assert "app-locker" in trace


def test_cutting_own_frames_merges_the_samples_that_become_equal():
    from duragraph_pprof.core.own import without_own_frames
    from duragraph_pprof.core.snapshot import Frame, Profile, Sample, ValueType

    app = Frame("app.work", "/srv/app.py", 10, 8)
    wrapper = Frame("duragraph_pprof.core.lockpatch._ProfiledLock.acquire", lockpatch.__file__,
                    50, 45)
    labels = (("thread.name", "worker"),)
    kind = ValueType("wall", "nanoseconds")
    profile = Profile((kind,), kind, 10, (Sample((wrapper, app), (3,), labels),
                                          Sample((app,), (4,), labels),
                                          Sample((wrapper,), (5,), labels)), 1)
    cut = without_own_frames(profile)
    assert cut.samples == (Sample((app,), (7,), labels),)  # the caller carries the wait
    plain = Profile((kind,), kind, 10, (Sample((app,), (4,), labels),), 1)
    assert without_own_frames(plain) is plain
