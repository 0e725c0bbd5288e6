"""DURAGRAPH_PPROF_FUTEX_SLOTS: the process's private futex hash is resized only when asked, in
the process that starts the profiler (a child here: the test runner's own hash stays as it is)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from duragraph_pprof.config import load_config
from duragraph_pprof.core import futex_hash

_CHILD = r"""
import ctypes, json, logging, sys, threading
import duragraph_pprof
from duragraph_pprof.core import futex_hash
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
release = threading.Event()
parked = [threading.Thread(target=release.wait) for _ in range(4)]
for t in parked:
    t.start()
if sys.argv[1:] == ["shared"]:  # PR_FUTEX_HASH, SET_SLOTS 0: onto the shared hash, for good
    assert ctypes.CDLL(None).prctl(78, 1, 0, 0, 0) == 0
before = futex_hash.slots()
profiler = duragraph_pprof.start(mode="serve")
during = futex_hash.slots()
profiler.stop()
release.set()
print(json.dumps({"before": before, "during": during}))
"""


def _run(env_value: str | None, *args: str) -> tuple[dict, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURAGRAPH_PPROF_")}
    if env_value is not None:
        env["DURAGRAPH_PPROF_FUTEX_SLOTS"] = env_value
    done = subprocess.run([sys.executable, "-c", _CHILD, *args], env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_the_variable_is_parsed():
    assert load_config({}).futex_slots is None
    assert load_config({"DURAGRAPH_PPROF_FUTEX_SLOTS": "4096"}).futex_slots == 4096
    assert load_config({"DURAGRAPH_PPROF_FUTEX_SLOTS": "off"}).futex_slots is None


@pytest.mark.skipif(futex_hash.slots() is None, reason="this kernel has no private futex hash")
def test_start_resizes_only_when_asked():
    untouched, _ = _run(None)
    assert untouched["during"] == untouched["before"] > 0
    resized, log = _run("4096")
    assert resized["before"] != 4096 and resized["during"] == 4096
    assert f"now has 4096 slots (it had {resized['before']})" in log


@pytest.mark.skipif(futex_hash.slots() is None, reason="this kernel has no private futex hash")
def test_a_refusal_is_a_warning_and_start_goes_on():
    result, log = _run("4096", "shared")
    assert result["before"] == result["during"] == 0
    assert "DURAGRAPH_PPROF_FUTEX_SLOTS not applied: the process uses the kernel's shared" in log
