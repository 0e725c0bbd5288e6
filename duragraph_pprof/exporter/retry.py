"""Retry one export within one time budget, the way the OpenTelemetry SDK exporters do: up to
six attempts, exponential backoff with +-20% jitter, the server's retry hint instead when it gives
one, and no wait that would end past the budget."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from .profiles import Attempt, Client

MAX_ATTEMPTS = 6


def send_with_retry(
    client: Client,
    body: bytes,
    budget: float,
    abort: threading.Event,
    clock: Callable[[], float] = time.monotonic,
    jitter: Callable[[], float] = lambda: random.uniform(0.8, 1.2),
) -> Attempt:
    """Send `body`, retrying retryable failures until `budget` seconds pass or `abort` is set."""
    deadline = clock() + budget
    attempt = Attempt(ok=False, error="timeout")
    for number in range(MAX_ATTEMPTS):
        remaining = deadline - clock()
        if remaining <= 0:
            break
        attempt = client.send(body, remaining)
        if attempt.ok or not attempt.retryable or number + 1 == MAX_ATTEMPTS:
            return attempt
        backoff = attempt.retry_after if attempt.retry_after is not None else 2**number * jitter()
        if backoff > deadline - clock() or abort.wait(backoff):
            break
    return attempt
