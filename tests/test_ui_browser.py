"""The flame-graph page in a real browser (Debian's Chromium driven by Playwright): the CPU view,
zoom, search, the top table against `go tool pprof -top`, the source view, XSS, the token, and
that the page never reaches past the listener. Screenshots go to build/ui-screenshots/.

A missing Go toolchain or Chromium fails these tests; they never skip.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.browser import CHROMIUM, chromium, open_page, screenshot, watch

import duragraph_pprof

UI = "/debug/pprof/ui/"
HIDE = r"^threading\.Thread\.(_bootstrap|_bootstrap_inner|run)$"  # the page's default
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


@pytest.fixture(scope="module")
def go() -> str:
    path = shutil.which("go")
    if path is None:
        pytest.fail("the Go toolchain is required: `go tool pprof` is the reference")
    return path


@pytest.fixture(scope="module")
def browser():
    assert os.path.exists(CHROMIUM), "run scripts/install-browser.sh first"
    with chromium() as launch:
        yield launch


@pytest.fixture
def workload(tmp_path):
    name = f"ui_workload_{os.getpid()}"
    path = tmp_path / f"{name}.py"
    path.write_text(WORKLOAD)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    try:
        yield module
    finally:
        del sys.modules[name]


@contextmanager
def serving(**overrides):
    settings = {"http_addr": "127.0.0.1:0", "grpc_addr": None, "heap": "exact", **overrides}
    profiler = duragraph_pprof.start("serve", environ={}, **settings)
    try:
        yield profiler
    finally:
        profiler.stop()


@contextmanager
def running(*targets):
    stop = threading.Event()
    threads = [threading.Thread(target=t, args=(stop,), name=t.__name__) for t in targets]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join()


def origin(profiler) -> str:
    host, port = profiler.http_address[:2]
    return f"http://{host}:{port}"


@contextmanager
def page_on(browser, base: str, name: str):
    """A fresh browser context on the page; on exit, nothing left the listener, no dialog
    opened, no policy was violated and the script raised nothing."""
    context = browser(name)
    traffic = watch(context, base)
    try:
        page = open_page(context, base + UI, traffic)
        yield page, traffic
        assert traffic.outside == [], traffic.outside
        assert traffic.dialogs == [], traffic.dialogs
        assert page.evaluate("window.__violations || []") == []
        refused = "the server responded with a status of 401"  # the token test's own asks
        assert [e for e in traffic.errors if refused not in e] == [], traffic.errors
        assert all(url.startswith(base + "/") for url, _ in traffic.requests)
    finally:
        context.close()


def load(page, name: str, seconds: int | None = None, timeout: float = 120_000) -> None:
    page.wait_for_selector("#profile option", state="attached")
    page.select_option("#profile", name)
    if seconds is not None:
        page.fill("#seconds", str(seconds))
    before = page.evaluate("document.body.dataset.profileId || ''")
    page.click("#load")
    wait_shown(page, before, timeout)


def wait_shown(page, before: str, timeout: float = 120_000) -> None:
    page.wait_for_function("before => (document.body.dataset.profileId || '') !== before",
                           arg=before, timeout=timeout)


def frames(page, depth: int | None = None) -> list[tuple[str, float, str]]:
    """(name, width in px, classes) of the drawn frames, widest first."""
    selector = ".frame" if depth is None else f".frame[data-depth='{depth}']"
    found = page.eval_on_selector_all(
        selector, "els => els.map(e => [e.textContent, e.getBoundingClientRect().width, "
        "e.className])")
    return sorted((tuple(f) for f in found), key=lambda f: -f[1])


def top_table(page) -> dict[str, tuple[float, float]]:
    """The page's top table: name -> (flat%, cum%)."""
    rows = page.eval_on_selector_all(
        "#top tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText))")
    return {row[5].removeprefix("list").strip(): (float(row[1][:-1]), float(row[4][:-1]))
            for row in rows}


def raw(profiler, key: str, out: Path, token: str | None = None) -> Path:
    """The bytes the page drew, as its download button fetches them."""
    request = urllib.request.Request(origin(profiler) + UI + "api/raw?id=" + key)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        out.write_bytes(response.read())
    return out


def go_top(go: str, tmp_path: Path, *args: str) -> dict[str, tuple[float, float]]:
    """`go tool pprof -top ARGS`: name -> (flat%, cum%)."""
    env = {**os.environ, "PPROF_TMPDIR": str(tmp_path)}
    done = subprocess.run([go, "tool", "pprof", "-top", "-nodefraction=0", *args],
                          capture_output=True, text=True, check=False, timeout=120, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = {}
    for line in done.stdout.split("flat%", 1)[1].splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 6:
            rows[" ".join(fields[5:])] = (float(fields[1][:-1]), float(fields[4][:-1]))
    return rows


def assert_tops_agree(page_rows, go_rows) -> None:
    assert go_rows, "go tool pprof printed no rows"
    for name, (flat, cum) in go_rows.items():
        assert name in page_rows, (name, sorted(page_rows))
        mine = page_rows[name]
        assert abs(mine[0] - flat) <= 1 and abs(mine[1] - cum) <= 1, (name, mine, (flat, cum))


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
    module.parked.__code__ = module.parked.__code__.replace(co_qualname=EVIL, co_name=EVIL)
    with serving() as profiler, running(module.parked), \
            page_on(browser, origin(profiler), "xss") as (page, traffic):
        load(page, "goroutine")
        shown = [f for f in frames(page) if EVIL in f[0]]
        assert shown and shown[0][0] == f"xss.{EVIL}", frames(page)
        assert page.evaluate("document.querySelectorAll('img, svg, script:not([src])').length") == 0
        page.fill("#search", "onerror")
        page.hover(".frame.match")
        assert f"xss.{EVIL}" in page.inner_text("#tip")
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
