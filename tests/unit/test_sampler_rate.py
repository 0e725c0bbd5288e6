"""The pure-Python sampler's reported rate, fed ticks' spacings directly (no thread runs)."""

import pytest

from duragraph_pprof.core.sampler import Sampler


def _rate_after(spacings: list[float]) -> float:
    sampler = Sampler(100, 0.002)
    for spacing in spacings:
        sampler._account(0, spacing)
    return sampler._rate_ticks / sampler._rate_s


def test_one_dear_ticks_wait_does_not_halve_a_budget_bound_rate():
    # seven budget-bound ticks 0.4 s apart, then one that waited 1.5 s: 1.86 Hz over the eight;
    # a one-second window alone read 1.13 Hz
    spacings = [0.4] * 7 + [1.5]
    measured = len(spacings) / sum(spacings)
    assert _rate_after(spacings) == pytest.approx(measured, rel=0.2)


def test_the_rate_follows_a_change_within_seconds():
    # the price of the window's floor in ticks: at 1 Hz it spans about 8 s
    assert _rate_after([0.01] * 200 + [1.0] * 12) < 4  # from 100 Hz to 1 Hz in 12 s
    assert _rate_after([1.0] * 20 + [0.01] * 300) > 60  # and back to most of 100 Hz in 3 s


def test_the_first_tick_outweighs_the_nominal_rate():
    assert _rate_after([0.5]) == pytest.approx(2.0, rel=0.01)
