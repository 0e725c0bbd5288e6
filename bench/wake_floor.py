"""A bare C thread waking at the sampler's rate (wake_floor.c), as the per-tick rows' control:
what waking up alone costs a thread on this machine, measured beside the samplers' ticks."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sysconfig
import tempfile

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wake_floor.c")


class WakeFloor:
    """start(), then read() -> (wakes, CPU nanoseconds) so far, then stop()."""

    def __init__(self, hz: float) -> None:
        self._hz = hz
        self._lib = _build()

    def start(self) -> None:
        if self._lib.wake_floor_start(ctypes.c_double(self._hz)) != 0:
            raise OSError("pthread_create failed for the wake-floor thread")

    def read(self) -> tuple[int, int]:
        wakes, cpu = ctypes.c_uint64(), ctypes.c_uint64()
        self._lib.wake_floor_read(ctypes.byref(wakes), ctypes.byref(cpu))
        return wakes.value, cpu.value

    def stop(self) -> None:
        self._lib.wake_floor_stop()


def _build() -> ctypes.CDLL:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        cc = "cc"
    with tempfile.TemporaryDirectory(prefix="wake-floor-") as where:
        out = os.path.join(where, "wake_floor.so")
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-pthread", "-o", out, SOURCE], check=True)
        return ctypes.CDLL(out)  # mapped now: the file can go
