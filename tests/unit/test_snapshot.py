"""core/snapshot.py: `subtract`, the delta profiles' `after - before`, on hand-built profiles."""

from __future__ import annotations

from support import snapshots
from support.snapshots import FILL, HANDLE, MAIN, T0

from duragraph_pprof.core.snapshot import Profile, Sample, subtract

HEAP_TYPES = snapshots.exact_heap().sample_types


def heap(time_nanos: int, *samples: Sample) -> Profile:
    return Profile(HEAP_TYPES, snapshots.SPACE, 1, samples, time_nanos, 0, "inuse_space",
                   ("exact",))


GROWN = (FILL, HANDLE, MAIN)
SHRUNK = (HANDLE, MAIN)
GONE = (MAIN,)


def test_subtract_by_stack_keeps_negatives_drops_zeros():
    before = heap(T0, Sample(GROWN, (1, 100)), Sample(SHRUNK, (5, 500)), Sample(GONE, (2, 20)))
    after = heap(T0 + 30 * snapshots.SECOND, Sample(SHRUNK, (2, 200)), Sample(GROWN, (4, 400)),
                 Sample(GONE, (2, 20)), Sample((FILL,), (1, 8)))
    assert subtract(after, before) == Profile(
        HEAP_TYPES, snapshots.SPACE, 1,
        (Sample(SHRUNK, (-3, -300)), Sample(GROWN, (3, 300)), Sample((FILL,), (1, 8))),
        T0 + 30 * snapshots.SECOND, 30 * snapshots.SECOND, "inuse_space", ("exact",),
    )


def test_a_stack_only_before_comes_back_negated():
    before = heap(T0, Sample(GONE, (2, 20)))
    assert subtract(heap(T0 + 1), before).samples == (Sample(GONE, (-2, -20)),)


def test_labels_are_part_of_the_key():
    a = Sample(GROWN, (1, 10), (("thread.name", "a"),))
    b = Sample(GROWN, (1, 10), (("thread.name", "b"),))
    n = Sample(GROWN, (1, 10), num_labels=(("bytes", 10, "bytes"),))
    assert subtract(heap(T0 + 1, a, n), heap(T0, b)).samples == (
        a, n, Sample(GROWN, (-1, -10), (("thread.name", "b"),)))


def test_a_profile_minus_itself_is_empty():
    cpu = snapshots.cpu()
    delta = subtract(cpu, cpu)
    assert delta.samples == () and delta.duration_nanos == 0
    assert (delta.sample_types, delta.period, delta.comments) == (
        cpu.sample_types, cpu.period, cpu.comments)
