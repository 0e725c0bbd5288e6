"""Failures are logged once per kind on the `duragraph_pprof` logger (the first with its
traceback), counted always, and never raised into the application."""

from __future__ import annotations

import logging
import time

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from support.fakes import FakeCore

from duragraph_pprof.exporter import metrics as push_metrics
from duragraph_pprof.exporter.profiles import Attempt
from duragraph_pprof.exporter.queue import QUEUE_FULL, ExportQueue
from duragraph_pprof.failures import FailureLog


def ours(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "duragraph_pprof"]


def test_the_first_failure_of_each_kind_is_logged_with_its_traceback_the_rest_counted(caplog):
    failures = FailureLog("a part")
    for _ in range(3):
        for kind in ("ValueError", "UNAVAILABLE"):
            try:
                raise ValueError("broken")
            except ValueError as exc:
                failures.record(kind, "what it said", exc if kind == "ValueError" else None)
    records = ours(caplog)
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING]
    assert "a part failed (ValueError): what it said" in records[0].getMessage()
    assert records[0].exc_info is not None and records[1].exc_info is None
    assert failures.counts() == {"ValueError": 3, "UNAVAILABLE": 3}


def test_a_log_handler_that_raises_does_not_reach_the_caller():
    class Broken(logging.Handler):
        def emit(self, record):
            raise RuntimeError("handler down")

    logger = logging.getLogger("duragraph_pprof.test-broken")
    logger.propagate = False
    logger.addHandler(Broken())
    try:
        FailureLog("x", logger).record("kind")
    finally:
        logger.handlers.clear()
        logger.propagate = True


class ScriptedClient:
    def __init__(self, outcome) -> None:
        self.outcome = outcome
        self.sent = 0

    def send(self, body: bytes, timeout: float) -> Attempt:
        self.sent += 1
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome

    def close(self) -> None:
        raise OSError("already closed")


def drain(queue: ExportQueue, client: ScriptedClient, n: int) -> None:
    for i in range(n):
        queue.put(b"request %d" % i)
        deadline = time.monotonic() + 5
        while client.sent <= i and time.monotonic() < deadline:
            time.sleep(0.005)


@pytest.mark.parametrize(("outcome", "kind", "traceback"), [
    (RuntimeError("transport broke"), "RuntimeError", True),
    (Attempt(ok=False, error="UNAVAILABLE", detail="127.0.0.1:4317: connection refused"),
     "UNAVAILABLE", False),
])
def test_export_failures_are_logged_once_and_counted(caplog, outcome, kind, traceback):
    client = ScriptedClient(outcome)
    queue = ExportQueue(client, timeout=1.0, name="duragraph-pprof-export-test")
    try:
        drain(queue, client, 4)
    finally:
        queue.close(flush_timeout=2)  # the client's close raises: stop() must not
    records = ours(caplog)
    assert len([r for r in records if f"({kind})" in r.getMessage()]) == 1, records
    first = next(r for r in records if f"({kind})" in r.getMessage())
    assert (first.exc_info is not None) is traceback
    if not traceback:
        assert "connection refused" in first.getMessage()
    assert dict(queue.stats().failures)[kind] == 4


def test_a_full_queue_logs_its_first_drop_once(caplog):
    client = ScriptedClient(Attempt(ok=True))
    client.send = lambda body, timeout: time.sleep(0.5) or Attempt(ok=True)  # slow collector
    queue = ExportQueue(client, timeout=1.0, max_items=1, name="duragraph-pprof-export-test")
    try:
        for i in range(6):
            queue.put(b"r%d" % i)
    finally:
        queue.close(flush_timeout=0)
    drops = [r for r in ours(caplog) if QUEUE_FULL in r.getMessage()]
    assert len(drops) == 1
    assert queue.stats().dropped >= 4


def test_a_metrics_callback_that_raises_is_logged_once_and_the_others_still_report(caplog):
    class Broken(FakeCore):
        def goroutine_counts(self):
            raise RuntimeError("frames unreadable")

    reader = InMemoryMetricReader()
    provider = push_metrics.build_provider(Broken(), Resource.create({}), [reader], list)
    try:
        for _ in range(3):
            data = reader.get_metrics_data()
    finally:
        provider.shutdown()
    names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert "process.thread.count" in names
    assert "duragraph.goroutine.count" not in names
    records = [r for r in caplog.records if "frames unreadable" in str(r.exc_info)
               or "goroutine" in r.getMessage()]
    assert len(records) == 1 and records[0].name == "duragraph_pprof", records
