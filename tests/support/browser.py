"""Debian's Chromium driven by Playwright (never Playwright's own browser download): headless,
a fresh profile directory, no background traffic. Every request the page makes is recorded,
and any that leaves the listener is refused and recorded as such."""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "ui-screenshots"


@dataclass
class Traffic:
    origin: str
    requests: list = field(default_factory=list)  # (url, headers)
    outside: list = field(default_factory=list)
    dialogs: list = field(default_factory=list)
    violations: list = field(default_factory=list)
    errors: list = field(default_factory=list)


@contextmanager
def chromium():
    """A Playwright instance and a launcher of fresh, isolated browser contexts."""
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as home:
        def launch(name: str):
            return playwright.chromium.launch_persistent_context(
                str(Path(home) / name), executable_path=CHROMIUM, headless=True, args=ARGS,
                viewport={"width": 1500, "height": 900})
        yield launch


def watch(context, origin: str) -> Traffic:
    traffic = Traffic(origin)

    def on_route(route):
        url = route.request.url
        traffic.requests.append((url, route.request.headers))
        if url.startswith(origin + "/"):
            route.continue_()
        else:
            traffic.outside.append(url)
            route.abort()

    context.route("**/*", on_route)
    return traffic


def open_page(context, url: str, traffic: Traffic):
    page = context.new_page()
    page.on("dialog", lambda dialog: (traffic.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: traffic.errors.append(str(error)))
    page.on("console", lambda m: m.type == "error" and traffic.errors.append(m.text))
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => "
                         "(window.__violations = window.__violations || []).push("
                         "e.violatedDirective + ' ' + e.blockedURI))")
    page.goto(url)
    return page


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
