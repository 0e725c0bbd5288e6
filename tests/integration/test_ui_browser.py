"""The flame-graph page in a real browser (Debian's Chromium driven by Playwright): the CPU view,
zoom, search, the top table against `go tool pprof -top`, the source view, XSS, the token, and
that the page never reaches past the listener. Screenshots go to build/ui-screenshots/.

A missing Go toolchain or Chromium fails these tests; they never skip.
"""

from __future__ import annotations

import gzip
import importlib.util
import re
import sys

import pytest
from support.browser import screenshot
from support.threads import running
from support.ui import (
    HIDE,
    assert_tops_agree,
    frames,
    go_top,
    load,
    origin,
    page_on,
    raw,
    serving,
    top_table,
)
from support.workload import imported

EVIL = "<img src=x onerror=alert(1)>"
WORKLOAD = '''\
"""A busy function for the flame-graph page."""


def burn_cpu(stop):
    total = 0
    while not stop.is_set():
        for i in range(20000):
            total += i * i  # BURN
    return total


def idle(stop):
    stop.wait()
'''


@pytest.fixture
def workload(tmp_path):
    with imported(tmp_path, "ui_workload", WORKLOAD) as module:
        yield module


# -- CPU: widest frame, zoom, search, hover, top table, source -------------------------------------
def test_cpu_view_zoom_search_and_top_agree_with_go_tool_pprof(browser, go, workload, tmp_path):
    burn = f"{workload.__name__}.burn_cpu"
    with serving() as profiler, running(workload.burn_cpu, workload.idle), \
            page_on(browser, origin(profiler), "cpu") as (page, _):
        load(page, "profile", seconds=3)
        screenshot(page, "1-cpu-flame-graph")
        widest = frames(page, 1)[0]
        assert widest[0] == burn, frames(page, 1)
        page.hover(f".frame[data-depth='1'] >> text={burn}")
        tip = page.inner_text("#tip")
        assert burn in tip and f"{workload.__file__}:4" in tip and "flat" in tip and "cum" in tip
        screenshot(page, "2-cpu-hover")
        full = page.eval_on_selector("#flame", "e => e.getBoundingClientRect().width")
        page.click(f".frame[data-depth='1'] >> text={burn}")
        zoomed = frames(page, 0)
        assert zoomed[0][0] == burn and abs(zoomed[0][1] - full) <= 2, (zoomed, full)
        assert page.inner_text("#crumbs").split() == ["root", ">", burn]
        screenshot(page, "3-cpu-zoomed")
        page.click("#crumbs .crumb >> nth=0")  # back out by the breadcrumb
        assert frames(page, 0)[0][0] == "root" and frames(page, 1)[0][0] == burn
        page.fill("#search", "burn_cpu$")
        matched = [f for f in frames(page) if "match" in f[2].split()]
        assert [f[0] for f in matched] == [burn], matched
        share = float(re.search(r"\(([\d.]+)%\)", page.inner_text("#share")).group(1))
        screenshot(page, "4-cpu-search")
        rows = top_table(page)
        assert abs(share - rows[burn][1]) <= 0.01  # the share is burn_cpu's cum%
        key = page.evaluate("document.body.dataset.profileId")
        got = go_top(go, tmp_path, f"-hide={HIDE}", str(raw(profiler, key, tmp_path / "cpu.pb.gz")))
        assert_tops_agree(rows, got)
        assert next(iter(got)) == burn and got[burn][0] >= 80, got
        page.click("#top th button[data-sort='cum']")  # sortable, as -top -cum
        cums = [c for _, c in top_table(page).values()]
        assert cums == sorted(cums, reverse=True)
        page.click(f"#top tr:has-text('{burn}') button.list")
        page.wait_for_selector("#source tr.hot")
        listing = page.inner_text("#source")
        assert f"ROUTINE ======================== {burn} in {workload.__file__}" in listing
        hot = page.eval_on_selector_all("#source tr.hot td.code", "els => els.map(e => e.textContent)")
        assert any("# BURN" in line for line in hot), hot
        screenshot(page, "5-cpu-source")


# -- safety: names are text; the token --------------------------------------------------------------
def test_a_function_named_like_markup_is_shown_as_text(browser, tmp_path):
    path = tmp_path / "evil.py"
    path.write_text("def parked(stop):\n    stop.wait()\n")
    spec = importlib.util.spec_from_file_location("xss", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shown_as = f"xss.{EVIL}"
    if sys.version_info >= (3, 11):  # the function's own name is the markup
        module.parked.__code__ = module.parked.__code__.replace(co_qualname=EVIL, co_name=EVIL)
    else:  # 3.10 names functions from their source: the markup is the module's name instead
        module.__name__ = EVIL
        shown_as = f"{EVIL}.parked"
    with serving() as profiler, running(module.parked), \
            page_on(browser, origin(profiler), "xss") as (page, traffic):
        load(page, "goroutine")
        shown = [f for f in frames(page) if EVIL in f[0]]
        assert shown and shown[0][0] == shown_as, frames(page)
        assert page.evaluate("document.querySelectorAll('img, svg, script:not([src])').length") == 0
        page.fill("#search", "onerror")
        page.hover(".frame.match")
        assert shown_as in page.inner_text("#tip")
        assert EVIL in page.inner_text("#top")
        screenshot(page, "6-xss-as-text")
        page.wait_for_timeout(300)  # an onerror would have fired by now
        assert traffic.dialogs == []


def test_with_a_token_the_page_asks_once_and_sends_it_as_a_header(browser):
    token = "s3cret-token"
    with serving(token=token) as profiler, \
            page_on(browser, origin(profiler), "token") as (page, traffic):
        page.wait_for_selector("#token-form:not([hidden])")
        screenshot(page, "7-token-asked")
        page.fill("#token", "wrong")
        page.click("#token-form button")
        page.wait_for_function("() => document.getElementById('token-error').textContent !== ''")
        assert "refused" in page.inner_text("#token-error")
        page.fill("#token", token)
        page.click("#token-form button")
        load(page, "goroutine")
        assert frames(page, 0)[0][0] == "root"
        page.reload()  # asked once: the tab keeps it
        load(page, "heap")
        assert page.is_hidden("#token-form")
        api = [(url, headers) for url, headers in traffic.requests if "/api/" in url]
        sent = [headers.get("authorization") for _, headers in api]
        assert sent.count(None) == 1 and sent[0] is None  # only the very first asked
        assert set(sent[1:]) == {f"Bearer {token}", "Bearer wrong"} and \
            sent[-3:] == [f"Bearer {token}"] * 3, sent
        assert token not in page.content()


# -- the page's own pprof decoder -------------------------------------------------------------------
def test_the_page_decodes_pprof_as_go_does(browser):
    from duragraph_pprof._gen.perftools.profiles import profile_pb2 as pb

    message = pb.Profile(string_table=["", "space", "bytes", "inner", "outer", "a.py",
                                       "thread.name", "main"], default_sample_type=1,
                         time_nanos=1_700_000_000_123_456_789)
    message.sample_type.add(type=1, unit=2)
    message.sample_type.add(type=1, unit=2)
    message.function.add(id=1, name=3, filename=5, start_line=10)
    message.function.add(id=2, name=4, filename=5, start_line=1)
    location = message.location.add(id=7)
    location.line.add(function_id=1, line=12)  # inlined into the next line's function
    location.line.add(function_id=2, line=3)
    sample = message.sample.add(location_id=[7], value=[-5, 1 << 40])  # a shrink; a big value
    sample.label.add(key=6, str=7)
    body = list(gzip.compress(message.SerializeToString()))
    with serving() as profiler, page_on(browser, origin(profiler), "decode") as (page, _):
        page.wait_for_selector("#profile option", state="attached")
        got = page.evaluate("""async bytes => {
            const pprof = await import("./pprof.js");
            return pprof.decode(await pprof.gunzip(new Uint8Array(bytes).buffer));
        }""", body)
    stack = [got["functions"][got["frames"][f][0]][0] for f in got["stacks"][0]]
    assert stack == ["inner", "outer"]  # leaf first, the inlined callee before its caller
    assert [got["frames"][f][1] for f in got["stacks"][0]] == [12, 3]
    assert got["values"] == [[-5, 1 << 40]]
    assert got["label_sets"][got["labels"][0]] == "thread.name=main"
    assert got["default_type"] == 0 and got["functions"][0] == ["inner", "a.py", 10]
    assert abs(got["time_nanos"] - message.time_nanos) < 1e3
