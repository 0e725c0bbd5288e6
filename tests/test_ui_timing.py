"""How long the page takes on a heap of over 100,000 distinct stacks (recorded in
build/ui-screenshots/timings.txt, not asserted), and that it still draws it correctly."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading

import pytest
from support.browser import CHROMIUM, chromium, screenshot
from support.ui import frames, load, origin, page_on, record, serving

DEPTH = 17  # 2 ** 17 = 131,072 leaves, each one stack
TREE = '''\
"""Allocations at 2 ** DEPTH distinct stacks: each leaf is reached by its own path through
left() and right()."""


def left(depth, leaf, keep):
    return step(depth, leaf, keep)


def right(depth, leaf, keep):
    return step(depth, leaf, keep)


def step(depth, leaf, keep):
    if depth == 0:
        keep.append(bytearray(8))
        return
    (left if leaf >> (depth - 1) & 1 else right)(depth - 1, leaf, keep)


def grow(depth, keep):
    for leaf in range(2 ** depth):
        step(depth, leaf, keep)
'''


@pytest.fixture(scope="module")
def browser():
    assert os.path.exists(CHROMIUM), "run scripts/install-browser.sh first"
    with chromium() as launch:
        yield launch


def test_a_heap_of_many_stacks_is_drawn(browser, tmp_path):
    name = f"ui_tree_{os.getpid()}"
    path = tmp_path / f"{name}.py"
    path.write_text(TREE)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    keep: list = []
    try:
        with serving(heap_depth=2 * DEPTH + 12) as profiler, \
                page_on(browser, origin(profiler), "many-stacks") as (page, _):
            worker = threading.Thread(target=module.grow, args=(DEPTH, keep), name="grow")
            worker.start()
            worker.join()
            load(page, "heap", timeout=240_000)
            stacks = int(page.inner_text("#status").split(": ", 1)[1].split(" stacks")[0])
            assert stacks >= 2 ** DEPTH, page.inner_text("#status")
            record(f"heap of {stacks:,} stacks", page)
            screenshot(page, "11-heap-many-stacks")
            assert frames(page, 1)[0][0] == f"{name}.grow", frames(page, 1)[:3]
            drawn = len(frames(page))
            assert drawn < 20_000  # frames under half a pixel are not drawn
    finally:
        keep.clear()
        sys.modules.pop(name, None)
