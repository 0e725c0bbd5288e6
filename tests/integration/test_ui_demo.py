"""The flame-graph page on the demo that `duragraph-pprof dev` runs: its printed URL, a 30 s
CPU profile whose widest frame is the demo's busy function (the top table as `go tool pprof
-top` says), and the leak runbook in the page (baseline, wait, compare) against `-base`.
Render times are recorded in build/ui-screenshots/timings.txt, not asserted."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time

import pytest
from support.browser import screenshot
from support.ui import (
    HIDE,
    assert_tops_agree,
    frames,
    go_top,
    load,
    page_on,
    raw,
    record,
    top_table,
    wait_shown,
)

BURN = "duragraph_pprof.demo.burn_cpu"
LEAK = "duragraph_pprof.demo.leak_memory"


class Demo:
    def __init__(self, url: str) -> None:
        self.ui = url
        self.origin = url.split("/debug/pprof/")[0]
        host, port = self.origin.removeprefix("http://").rsplit(":", 1)
        self.http_address = (host, int(port))


@pytest.fixture(scope="module")
def demo():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DURAGRAPH_", "OTEL_"))}
    env.update(DURAGRAPH_PPROF_ADDR="127.0.0.1:0", DURAGRAPH_PPROF_GRPC_ADDR="off",
               DURAGRAPH_PPROF_HEAP="exact")
    child = subprocess.Popen([sys.executable, "-m", "duragraph_pprof.cli", "dev"], env=env,
                             stdout=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in child.stdout],
                              daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            if "flame graphs (browser):" in line:
                yield Demo(line.split(": ", 1)[1].strip())
                break
    finally:
        child.terminate()
        child.wait(timeout=30)
        reader.join(timeout=5)
        child.stdout.close()


def test_demo_prints_the_page_and_its_30s_cpu_view_shows_the_busy_function(browser, go,
                                                                         demo, tmp_path):
    assert demo.ui.endswith("/debug/pprof/ui/")
    with page_on(browser, demo.origin, "demo-cpu") as (page, _):
        load(page, "profile", seconds=30)
        record("demo CPU profile, 30 s", page)
        screenshot(page, "8-demo-cpu-30s")
        assert frames(page, 1)[0][0] == BURN, frames(page, 1)
        key = page.evaluate("document.body.dataset.profileId")
        got = go_top(go, tmp_path, f"-hide={HIDE}", str(raw(demo, key, tmp_path / "cpu.pb.gz")))
        assert_tops_agree(top_table(page), got)
        assert next(iter(got)) == BURN


def test_leak_runbook_in_the_page_matches_go_tool_pprof_base(browser, go, demo, tmp_path):
    with page_on(browser, demo.origin, "demo-leak") as (page, _):
        page.wait_for_selector("#profile option", state="attached")
        page.select_option("#profile", "heap")
        page.click("#baseline")
        wait_shown(page, "")
        screenshot(page, "9-leak-baseline")
        base = page.evaluate("document.body.dataset.profileId")
        time.sleep(5)  # the demo keeps 64 KiB more every 0.1 s
        page.click("#compare")
        wait_shown(page, base)
        assert page.evaluate("document.body.dataset.view") == "diff"
        assert page.evaluate("document.body.dataset.baseId") == base
        record("demo heap diff", page)
        screenshot(page, "10-leak-compare")
        widest = frames(page, 1)[0]
        assert widest[0] == LEAK and "growth" in widest[2].split(), frames(page, 1)
        after = page.evaluate("document.body.dataset.profileId")
        before_file = raw(demo, base, tmp_path / "before.pb.gz")
        after_file = raw(demo, after, tmp_path / "after.pb.gz")
        got = go_top(go, tmp_path, f"-hide={HIDE}", "-base", str(before_file), str(after_file))
        rows = top_table(page)
        assert next(iter(got)) == LEAK == next(iter(rows)), (got, rows)
        assert_tops_agree(rows, got)
