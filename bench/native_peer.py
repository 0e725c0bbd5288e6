"""The native sampler side by side with pyroscope-io 1.4.0's stack backend, at a fixed 100 Hz.

pyroscope-io lives in its own virtual environment under the git-ignored `.build/`, created on
first use. Each side runs in a child process (native_child.py) that measures with/without pairs
on the same workload; the two sides' children alternate, in a fresh random order per repetition.
A pair's figure is the extra process CPU (every thread's, the profiler's native ones included) per
unit of work with the profiler, as a share of the workers' own CPU per unit without it: CPU time,
not wall rates, so a neighbour taking the cores away does not count. If the peer cannot be
installed or started, its rows say why and the run goes on.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys

from .peer import ROOT, _Failed, _run, ensure_venv
from .report import Row, bootstrap, fmt, summarize

PEER, PEER_VERSION = "pyroscope-io", "1.4.0"
VENV = os.path.join(ROOT, ".build", "bench-pyroscope-venv")
CHILD = os.path.join(ROOT, "bench", "native_child.py")
SERVE_BUDGET = 0.01
# a crowd child (1,000 threads started and joined around its blocks) took 90-107 s on a slow VM:
# the cap is wide, and still cuts off a hung child
CHILD_CAP_S = 150
# scenario -> (title, our budget, ratio target)
SCENARIOS = {
    "busy1": ("1 busy thread", 1.0, 0.5),
    "busy10": ("10 busy threads", 1.0, 1.0),
    "crowd": ("1 busy thread + 1,000 idle threads + 10,000 idle tasks", SERVE_BUDGET, None),
}


def rows(scenarios: dict[str, tuple[int, int, float]]) -> list[Row]:
    """scenarios: name -> (repetitions, pairs per child, block seconds)."""
    python, version = ensure_venv(VENV, f"{PEER}=={PEER_VERSION}", CHILD)
    sides = {"ours": sys.executable, "theirs": python}
    out: list[Row] = []
    for name, (reps, pairs, block_s) in scenarios.items():
        names = ["ours", "theirs"] if python is not None else ["ours"]
        data, failures = _collect(sides, names, name, reps, pairs, block_s)
        if python is None:
            failures["theirs"] = f"{PEER} could not be set up: {version}"
        out += _rows(name, data, failures, version)
    return out


def _collect(sides: dict, names: list[str], scenario: str, reps: int, pairs: int,
             block_s: float) -> tuple[dict, dict]:
    data: dict[str, dict[str, list]] = {side: {} for side in names}
    failures: dict[str, str] = {}
    rng = random.Random(sum(map(ord, scenario)))
    budget = SCENARIOS[scenario][1]
    for rep in range(reps):
        rng.shuffle(names)
        for side in names:
            if side in failures:
                continue
            try:
                text = _run([sides[side], CHILD, side, scenario, str(pairs), str(block_s),
                             str(rep * 100), str(budget)], CHILD_CAP_S + 10 * pairs * block_s)
                result = json.loads(text.strip().splitlines()[-1])["results"]
            except (_Failed, ValueError, KeyError, IndexError) as exc:
                failures[side] = str(exc)
                continue
            for key, values in result.items():
                data[side].setdefault(key, []).extend(values)
    return data, failures


def _figures(data: dict) -> dict[str, list[float]]:
    """Per pair: `share`, the extra process CPU per unit of work with the profiler, as % of the
    workers' CPU per unit without it; `core`, the same extra over wall time, % of a core; split
    into `rest`, the CPU outside the workers (the profiler's threads and whatever they wake), % of
    a core, and `slow`, the change in the workers' own CPU per unit of work, %."""
    out: dict[str, list[float]] = {"share": [], "core": [], "rest": [], "slow": []}
    for (p_on, b_on, w_on, t_on), (p_off, b_off, w_off, t_off) in zip(data["on"], data["off"]):
        if w_on <= 0 or w_off <= 0 or b_off <= 0:
            continue
        out["share"].append(100.0 * (p_on / w_on - p_off / w_off) / (b_off / w_off))
        out["core"].append(100.0 * (p_on - p_off * w_on / w_off) / t_on)
        out["rest"].append(100.0 * ((p_on - b_on) / t_on - (p_off - b_off) / t_off))
        out["slow"].append(100.0 * ((b_on / w_on) / (b_off / w_off) - 1.0))
    return out


def _median_ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(a) / statistics.median(b)


def _rows(scenario: str, data: dict, failures: dict, version: str) -> list[Row]:
    title, budget, target = SCENARIOS[scenario]
    head = f"vs {PEER} {PEER_VERSION} stack backend, {title}"
    if "ours" in failures or not data.get("ours", {}).get("on"):
        why = failures.get("ours", "no data")
        return [Row(f"{head}: extra process CPU", "not measured", "see issue 10", None, why)]
    ours = _figures(data["ours"])
    so, co, hz_o = summarize(ours["share"]), summarize(ours["core"]), summarize(data["ours"]["hz"])
    own_o = summarize(data["ours"]["own_pct"])
    ours_note = (f"ours {fmt(so, ' %')} of the workload's CPU, {fmt(co, ' %')} of a core, at "
                 f"{fmt(hz_o, ' Hz', digits=0)} (budget {budget:g}): outside the workers "
                 f"{fmt(summarize(ours['rest']), ' %')} of a core (our sampler thread's own "
                 f"{fmt(own_o, ' %')}), the workers' CPU per unit of work "
                 f"{fmt(summarize(ours['slow']), ' %')}")
    theirs_data = data.get("theirs", {})
    theirs = _figures(theirs_data) if theirs_data.get("on") and "theirs" not in failures else None
    if theirs is None:
        peer_note = f"theirs not measured: {failures.get('theirs', 'no data')}"
        st = None
    else:
        st = summarize(theirs["share"])
        peer_note = (f"theirs {fmt(st, ' %')} of the workload's CPU, "
                     f"{fmt(summarize(theirs['core']), ' %')} of a core: outside the workers "
                     f"{fmt(summarize(theirs['rest']), ' %')} of a core (its threads' own "
                     f"{fmt(summarize(theirs_data['threads_pct']), ' %')}), the workers' CPU per "
                     f"unit of work {fmt(summarize(theirs['slow']), ' %')} ({PEER} {version}, "
                     "ProfilerImplementation.Stack, configure_experimental_stack_profiler("
                     "adaptive_sampling=False), 100 Hz, at most 25 threads a cycle (its default), "
                     "uploading to a closed port)")
    how = (f"; {so.n} with/without pairs of {_block(data):g} s blocks, each pair inside one child, "
           "the two sides' children alternating; process CPU from CLOCK_PROCESS_CPUTIME_ID, the "
           "workers' from their thread clocks, work from their counters; each profiler is "
           "stopped after the measured block (our window's stacks are resolved then)")
    if target is None:  # the crowd: an absolute cap for ours, theirs for context
        low, high = bootstrap([ours["core"]], statistics.median)
        met = co.median <= 1.0 and hz_o.median >= 50
        return [Row(f"{head}: our extra process CPU (serve budget)",
                    f"{co.median:.2f} % of a core (95 % CI {low:.2f}..{high:.2f}) at "
                    f"{hz_o.median:.0f} Hz", "<= 1 % of a core at >= 50 Hz", met,
                    f"{ours_note}; every thread read each tick; {peer_note}{how}")]
    if st is None or st.median <= 0:
        figure, met = (f"not resolved: ours {so.median:.2f} %, theirs "
                       f"{'n/a' if st is None else f'{st.median:.2f} %'} of the workload's CPU"), None
    else:
        ratio = so.median / st.median
        low, high = bootstrap([ours["share"], theirs["share"]], _median_ratio)
        figure = (f"{ratio:.2f}x (95 % CI {low:.2f}..{high:.2f}; {so.median:.2f} % vs "
                  f"{st.median:.2f} % of the workload's CPU)")
        met = ratio <= target and hz_o.median >= 90
    rows = [Row(f"{head}, 100 Hz: extra process CPU ours/theirs", figure,
                f"<= {target:g}x at >= 90 Hz", met, f"{ours_note}; {peer_note}{how}")]
    if theirs is not None:
        ro, rt = summarize(ours["rest"]), summarize(theirs["rest"])
        rows.append(Row(f"{head}, 100 Hz: CPU outside the workers ours/theirs",
                        f"{ro.median / rt.median:.2f}x ({ro.median:.2f} % vs {rt.median:.2f} % "
                        "of a core)" if rt.median > 0 else
                        f"ours {ro.median:.2f} %, theirs {rt.median:.2f} % of a core",
                        "context (the low-noise part)", None,
                        "process CPU less the workers' own, with minus without the profiler, "
                        "per pair; what it leaves out is the workers' CPU per unit of work, "
                        "which the row above includes"))
    return rows
def _block(data: dict) -> float:
    on = data["ours"]["on"]
    return round(sum(t for *_, t in on) / len(on) / 1e9, 1) if on else 0.0
