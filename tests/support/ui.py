"""What the flame-graph page's browser tests share: a profiler on port 0, the page in a fresh
browser context that must make no request past the listener, reading the drawn frames and the
top table, and `go tool pprof -top` as the reference."""

from __future__ import annotations

import os
import subprocess
import urllib.request
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from . import listener
from .browser import SCREENSHOTS, open_page, watch

UI = "/debug/pprof/ui/"
HIDE = r"^threading\.Thread\.(_bootstrap|_bootstrap_inner|run)$"  # the page's default


serving = partial(listener.serving, heap="exact")  # the page's profiler: tracemalloc's heap


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


def record(what: str, page) -> None:
    fetched = float(page.evaluate("document.body.dataset.fetchMs"))
    decoded = float(page.evaluate("document.body.dataset.decodeMs"))
    drawn = float(page.evaluate("document.body.dataset.renderMs"))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with open(SCREENSHOTS / "timings.txt", "a") as out:
        out.write(f"{what}: request until decoded {fetched:.0f} ms (of which the page's pprof "
                  f"decode {decoded:.0f} ms); tree, top table and flame graph drawn "
                  f"{drawn:.0f} ms\n")
