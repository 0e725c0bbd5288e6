"""The profiler's own frames cut out of sampled stacks: a thread blocked in a lock wrapper (or
waiting in the timed `Condition.wait`) is the application's call, so the sample goes to the
application frame that made it, never to `duragraph_pprof.core.lockpatch`."""

from __future__ import annotations

from dataclasses import replace

from .frames import own_frame
from .snapshot import Profile, Sample, Stack


class StackCutter:
    """Cuts stacks, remembering each distinct stack it saw (the sampler interns them)."""

    def __init__(self) -> None:
        self._seen: dict[Stack, Stack] = {}

    def __call__(self, stack: Stack) -> Stack:
        cut = self._seen.get(stack)
        if cut is None:
            if any(own_frame(f) for f in stack):
                cut = tuple(f for f in stack if not own_frame(f))
            else:
                cut = stack
            self._seen[stack] = cut
        return cut


def without_own_frames(profile: Profile) -> Profile:
    """`profile` with our frames cut; samples that end up with equal stacks and labels merge, and
    a sample left with no frame at all is dropped."""
    cut = StackCutter()
    merged: dict[tuple, list[int]] = {}
    order: list[tuple] = []
    changed = False
    for s in profile.samples:
        stack = cut(s.stack)
        changed = changed or stack is not s.stack
        if not stack:
            continue
        key = (stack, s.labels, s.num_labels)
        total = merged.get(key)
        if total is None:
            merged[key] = list(s.values)
            order.append(key)
        else:
            for i, v in enumerate(s.values):
                total[i] += v
    if not changed:
        return profile
    samples = tuple(Sample(stack, tuple(merged[(stack, labels, nums)]), labels, nums)
                    for stack, labels, nums in order)
    return replace(profile, samples=samples)
