"""Target 3: our sampler side by side with the pure-Python peer
`opentelemetry-sdk-extension-profiling`, same workload, same nominal rate (100 Hz).

The peer pins opentelemetry-exporter-otlp to a release that clashes with ours, so it lives in its
own virtual environment under the git-ignored `.build/`, created here on first use. Each side runs
in a child process (peer_child.py) that measures its own with/without pairs; the children of the
two sides alternate, in a fresh random order per repetition. If the peer cannot be installed or
started, its rows say why and the run goes on.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

from .report import Row, fmt, summarize

PEER = "opentelemetry-sdk-extension-profiling"
PEER_VERSION = "0.63b4"  # the release whose source the child's start-up was written against
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".build", "bench-peer-venv")
CHILD = os.path.join(ROOT, "bench", "peer_child.py")
INSTALL_TIMEOUT = 600.0


def ensure_peer() -> tuple[str | None, str]:
    """(python of the peer's environment, its version) or (None, why not)."""
    return ensure_venv(VENV, f"{PEER}=={PEER_VERSION}", CHILD)


def ensure_venv(venv: str, requirement: str, child: str) -> tuple[str | None, str]:
    """A virtual environment under .build/ with `requirement` installed, created on first use:
    (its python, the version `child probe` reports) or (None, why not)."""
    python = os.path.join(venv, "bin", "python")
    probe = _probe(python, child)
    if probe is not None:
        return python, probe
    try:
        if not os.path.exists(python):
            base = getattr(sys, "_base_executable", None) or sys.executable
            _run([base, "-m", "venv", venv], 120)
        _run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", requirement],
             INSTALL_TIMEOUT)
    except _Failed as exc:
        return None, str(exc)
    probe = _probe(python, child)
    if probe is None:
        name = requirement.split("=")[0]
        return None, f"{name} installed but does not import in {os.path.relpath(venv, ROOT)}"
    return python, probe


class _Failed(Exception):
    pass


def _named(cmd: list[str]) -> str:
    """The child's script and first arguments, the script as the repository names it."""
    script = os.path.relpath(cmd[1], ROOT) if os.path.isabs(cmd[1]) else cmd[1]
    return " ".join([script, *cmd[2:4]])


def _run(cmd: list[str], timeout: float) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise _Failed(f"`{_named(cmd)}` took over {timeout:g} s") from None
    except OSError as exc:
        raise _Failed(f"`{cmd[0]}` could not run: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise _Failed(f"`{_named(cmd)}` exited {done.returncode}: {last[:300]}")
    return done.stdout


def _probe(python: str, child: str) -> str | None:
    if not os.path.exists(python):
        return None
    try:
        out = _run([python, child, "probe"], 60)
        return json.loads(out.strip().splitlines()[-1])["version"]
    except (_Failed, ValueError, KeyError, IndexError):
        return None


def rows(thread_counts: tuple[int, ...], reps: int, pairs: int, block_s: float) -> list[Row]:
    names = {n: f"vs {PEER}, {n} busy thread{'s' if n > 1 else ''}, 100 Hz" for n in thread_counts}
    python, version = ensure_peer()
    if python is None:
        return [Row(f"{names[n]}: overhead ours/theirs", "not measured", "<= 0.5x", None,
                    f"the peer could not be set up: {version}") for n in thread_counts]
    sides = {"ours": sys.executable, "theirs": python}
    data: dict[str, dict[str, dict[str, list[float]]]] = {side: {} for side in sides}
    failures: dict[str, str] = {}
    rng = random.Random(3)
    counts = ",".join(map(str, thread_counts))
    for rep in range(reps):
        order = list(sides)
        rng.shuffle(order)
        for side in order:
            if side in failures:
                continue
            try:
                out = _run([sides[side], CHILD, side, counts, str(pairs), str(block_s),
                            str(rep * 100)], 60 + 4 * pairs * block_s * len(thread_counts))
                result = json.loads(out.strip().splitlines()[-1])["results"]
            except (_Failed, ValueError, KeyError, IndexError) as exc:
                failures[side] = str(exc)
                continue
            for n, figures in result.items():
                bucket = data[side].setdefault(n, {})
                for key, values in figures.items():
                    bucket.setdefault(key, []).extend(values)
    if failures:
        why = "; ".join(f"{side}: {msg}" for side, msg in failures.items())
        return [Row(f"{names[n]}: overhead ours/theirs", "not measured", "<= 0.5x", None,
                    f"a side could not run: {why}") for n in thread_counts]
    out: list[Row] = []
    for n in thread_counts:
        ours, theirs = data["ours"][str(n)], data["theirs"][str(n)]
        loss_o, loss_t = _losses(ours), _losses(theirs)
        so, st = summarize(loss_o), summarize(loss_t)
        cpu_o, cpu_t = summarize(ours["cpu_pct"]), summarize(theirs["cpu_pct"])
        hz_o, hz_t = summarize(ours["hz"]), summarize(theirs["hz"])
        cpu_ratio = cpu_o.median / cpu_t.median if cpu_t.median > 0 else float("nan")
        tick_o = 1e4 * cpu_o.median / hz_o.median if hz_o.median > 0 else float("nan")
        tick_t = 1e4 * cpu_t.median / hz_t.median if hz_t.median > 0 else float("nan")
        if st.median <= 0:  # the peer's own loss is lost in the noise: no ratio to speak of
            figure, met = (f"not resolved: theirs {st.median:.2f} %, ours {so.median:.2f} % "
                           "(both within the noise)"), None
        elif so.median <= 0:
            figure, met = f"<= 0x: ours {so.median:.2f} % vs theirs {st.median:.2f} %", True
        else:
            ratio = so.median / st.median
            figure, met = f"{ratio:.2f}x (medians of throughput lost)", ratio <= 0.5
        out += [
            Row(f"{names[n]}: overhead ours/theirs", figure, "<= 0.5x", met,
                f"ours {fmt(so, ' %')}, theirs {fmt(st, ' %')} throughput lost; each a "
                f"with/without pair inside its own child, the two sides' children alternating; "
                f"{PEER} {version} in its own venv, exporter none; effective rate ours "
                f"{fmt(hz_o, ' Hz', digits=0)}, theirs {fmt(hz_t, ' Hz', digits=0)}"),
            Row(f"{names[n]}: profiler thread CPU ours/theirs",
                f"{cpu_ratio:.2f}x ({cpu_o.median:.2f} % vs {cpu_t.median:.2f} % of a core)",
                "context (<= 0.5x)", None,
                f"per tick {tick_o:.0f} us vs {tick_t:.0f} us ({tick_o / tick_t:.2f}x); "
                f"kernel CPU clock of each profiler's own thread over the block; ours "
                f"{fmt(cpu_o, ' %')}, theirs {fmt(cpu_t, ' %')}, wake-ups and GIL waits "
                f"included; ours budgets its tick work at 1 % of a core, theirs has no budget"),
        ]
    return out


def _losses(figures: dict[str, list[float]]) -> list[float]:
    return [100.0 * (1.0 - on / off) for on, off in zip(figures["on"], figures["off"])]
