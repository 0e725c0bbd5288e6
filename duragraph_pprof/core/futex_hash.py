"""The process's private futex hash (Linux 6.16 and later), resized on request.

Those kernels give each process its own futex hash of 4 slots a CPU, at least 16, however many
threads wait in it, and every futex wake walks the whole chain of its slot. On a 2-CPU machine
with 1,000 parked threads a chain holds about 60 waiters: the sampler's one wake a tick (the GIL
holder it stopped) cost 36-44 us instead of 16-20 us, and every wake the application makes pays
the same. Resizing changes the whole process, so it is only done when configured
(DURAGRAPH_PPROF_FUTEX_SLOTS); it never switches to the kernel's shared hash, which no process
can leave again.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

_log = logging.getLogger("duragraph_pprof")

_PR_FUTEX_HASH = 78  # <linux/prctl.h>
_SET_SLOTS, _GET_SLOTS = 1, 2


def _prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return fn


def slots() -> int | None:
    """The slots of the process's private futex hash: 0 on the shared hash (or before a second
    thread gave it one), None where the kernel has no such hash."""
    prctl = _prctl()
    if prctl is None:
        return None
    n = prctl(_PR_FUTEX_HASH, _GET_SLOTS, 0, 0, 0)
    return None if n < 0 else n


def set_slots(n: int) -> str | None:
    """Give the process a private futex hash of `n` slots (a power of two); None once done, else
    why not, in words for a log line. Nothing is raised: the profiler must not fail the host."""
    prctl = _prctl()
    if prctl is None:
        return "this platform has no private futex hash"
    before = prctl(_PR_FUTEX_HASH, _GET_SLOTS, 0, 0, 0)
    if before < 0:
        return "this kernel has no private futex hash (Linux 6.16 and later have)"
    if prctl(_PR_FUTEX_HASH, _SET_SLOTS, n, 0, 0) < 0:
        err = ctypes.get_errno()
        if before == 0:  # the shared hash (a process with threads has a private one otherwise)
            return "the process uses the kernel's shared futex hash, which it cannot leave"
        return f"the kernel refused {n} slots: {os.strerror(err)}"
    _log.info("duragraph-pprof: the process's futex hash now has %d slots (it had %d)", n, before)
    return None
