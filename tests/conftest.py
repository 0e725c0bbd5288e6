"""Shared test set-up: every test starts from a clean environment and must leave no profiler
state behind (threads, patched locks, tracemalloc it started, gc callbacks)."""

from __future__ import annotations

import gc
import os
import shutil
import threading
import time
import tracemalloc

import pytest
from hypothesis.internal.conjecture.junkdrawer import gc_cumulative_time

# hypothesis adds its own gc timing callback, once per process, on its first run; adding it now
# keeps the check below (no gc callback left behind) about the profiler.
gc_cumulative_time()
_OURS = ("DURAGRAPH_PPROF_", "OTEL_")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch):
    for key in list(os.environ):
        if key.startswith(_OURS):
            monkeypatch.delenv(key)


@pytest.fixture(autouse=True)
def no_leaked_profiler_state():
    lock, rlock, wait = threading.Lock, threading.RLock, threading.Condition.wait
    tracing = tracemalloc.is_tracing()
    callbacks = list(gc.callbacks)
    yield
    leaked = []
    deadline = time.monotonic() + 5
    while True:
        leaked = [t.name for t in threading.enumerate() if t.name.startswith("duragraph-pprof")]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leaked, f"profiler threads outlived the test: {leaked}"
    assert (threading.Lock, threading.RLock, threading.Condition.wait) == (lock, rlock, wait), \
        "threading locks are still patched"
    assert tracemalloc.is_tracing() == tracing, "tracemalloc state leaked"
    assert gc.callbacks == callbacks, "gc callbacks leaked"


@pytest.fixture(scope="session")
def go() -> str:
    """The Go toolchain: `go tool pprof` is the client under test, never skipped."""
    path = shutil.which("go")
    if path is None:
        pytest.fail("the Go toolchain is required: `go tool pprof` is the client under test")
    return path


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium under Playwright, for the flame-graph page's tests."""
    from support.browser import CHROMIUM, chromium

    assert os.path.exists(CHROMIUM), "run scripts/install-browser.sh first"
    with chromium() as launch:
        yield launch
