"""Polling for a condition that another thread or process makes true."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    description: str | None = None,
) -> T:
    """Call ``predicate`` until it returns something truthy and return that; TimeoutError if not."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            what = description or getattr(predicate, "__name__", repr(predicate))
            raise TimeoutError(f"condition {what!r} not met within {timeout} s")
        time.sleep(interval)
