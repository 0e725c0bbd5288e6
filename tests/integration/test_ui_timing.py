"""How long the page takes on a heap of over 100,000 distinct stacks (recorded in
build/ui-screenshots/timings.txt, not asserted), and that it still draws it correctly.

The heap lives in a child process, so tracemalloc traces its allocations and not the browser
driver's; its stacks are short (seven callers a level), which keeps tracemalloc's own cost down.
"""

from __future__ import annotations

import os
import subprocess
import sys

from support.browser import screenshot
from support.ui import frames, load, page_on, record

BRANCHES, LEVELS = 7, 6  # 7 ** 6 = 117,649 leaves, each one stack
TREE = '''\
"""Allocations at BRANCHES ** LEVELS distinct stacks: each leaf by its own path of callers."""
import sys

import duragraph_pprof

BRANCHES, LEVELS = {branches}, {levels}
KEEP = []


def step(level, leaf):
    if level == 0:
        KEEP.append(bytearray(8))
        return
    CALLERS[leaf // BRANCHES ** (level - 1) % BRANCHES](level - 1, leaf)


{callers}
CALLERS = [{names}]

if __name__ == "__main__":
    profiler = duragraph_pprof.start("serve", environ={{}}, http_addr="127.0.0.1:0",
                                     grpc_addr=None, heap="exact", heap_depth=2 * LEVELS + 8)
    for leaf in range(BRANCHES ** LEVELS):
        step(LEVELS, leaf)
    host, port = profiler.http_address[:2]
    print(f"http://{{host}}:{{port}}", flush=True)
    sys.stdin.read()
    profiler.stop()
'''


def tree_source() -> str:
    names = [f"branch_{n}" for n in range(BRANCHES)]
    callers = "".join(f"def {name}(level, leaf):\n    step(level, leaf)\n\n\n" for name in names)
    return TREE.format(branches=BRANCHES, levels=LEVELS, callers=callers,
                       names=", ".join(names))


def test_a_heap_of_many_stacks_is_drawn(browser, tmp_path):
    script = tmp_path / "many_stacks.py"
    script.write_text(tree_source())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DURAGRAPH_", "OTEL_"))}
    child = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        origin = child.stdout.readline().strip()
        assert origin.startswith("http://127.0.0.1:"), origin
        with page_on(browser, origin, "many-stacks") as (page, _):
            load(page, "heap", timeout=280_000)
            stacks = int(page.inner_text("#status").split(": ", 1)[1].split(" stacks")[0])
            assert stacks >= BRANCHES ** LEVELS, page.inner_text("#status")
            record(f"heap of {stacks:,} stacks", page)
            screenshot(page, "11-heap-many-stacks")
            assert frames(page, 1)[0][0] == "__main__.<module>", frames(page, 1)[:3]
            assert len(frames(page)) < 20_000  # frames under half a pixel are not drawn
    finally:
        child.stdin.close()
        child.wait(timeout=60)
        child.stdout.close()
