"""The profiler's own frames are cut from sampled stacks, generated code of its modules too."""

from __future__ import annotations

from duragraph_pprof.core.frames import _OWN_DIR
from duragraph_pprof.core.own import StackCutter
from duragraph_pprof.core.snapshot import Frame

APP = Frame("shop.checkout", "/srv/shop/checkout.py", 12, 10)
APP_EXEC = Frame("shop.<module>", "<string>", 1, 1)  # the application's own exec'd code
WRAPPER = Frame("duragraph_pprof.core.lockpatch.PatchedLock.acquire",
                _OWN_DIR + "core/lockpatch.py", 80, 70)
HASH = Frame("duragraph_pprof.core.snapshot.__create_fn__.<locals>.__hash__", "<string>", 3, 1)


def test_generated_code_of_the_profiler_is_cut_with_its_files():
    assert StackCutter()((HASH, WRAPPER, APP)) == (APP,)


def test_the_applications_generated_code_stays():
    assert StackCutter()((APP_EXEC, WRAPPER, APP)) == (APP_EXEC, APP)
