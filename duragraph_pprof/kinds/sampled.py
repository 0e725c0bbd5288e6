"""`profile` (CPU) and `wall`: windows of the one shared stack sampler, recorded for `seconds=N`
on request and pushed every interval. Both come from one window: the sampler counts CPU and wall
time together."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.own import without_own_frames
from ..core.snapshot import Profile
from ..encode import pprof
from .kind import BINARY, ProfileKind, Push, Rendered, Timed, program_name

if TYPE_CHECKING:
    from ..core.profiling_core import ProfilingCore
    from ..core.sampler import Window

CPU, WALL = 0, 1  # where each profile is in what a window gives: (cpu, wall)


class _Recording:
    def __init__(self, core: ProfilingCore, name: str, index: int) -> None:
        self._name = name
        self._index = index
        self._window = core.sampler.open_window()
        self._profiles: tuple[Profile, Profile] | None = None

    def stop(self) -> None:
        self._profiles = self._window.close()

    def write(self, seconds: float) -> Rendered:
        assert self._profiles is not None
        profile = without_own_frames(self._profiles[self._index])
        return Rendered(BINARY, self._name, pprof.encode(profile, program_name()))


def sampler_window(core: ProfilingCore) -> Window:
    """The push's feed for both kinds: one window, taken at every interval."""
    return core.sampler.open_window()


def _kind(name: str, index: int, description: str) -> ProfileKind:
    return ProfileKind(
        name,
        description,
        timed=Timed(lambda core: _Recording(core, name, index)),
        push=Push(sampler_window, lambda profiles: without_own_frames(profiles[index])),
    )


CPU_TIME = _kind(
    "profile", CPU,
    "CPU profile (per-thread CPU time). You can specify the duration in the seconds GET "
    "parameter. After you get the profile file, use the go tool pprof command to investigate "
    "the profile.",
)
WALL_TIME = _kind(
    "wall", WALL,
    "Wall-clock profile: where every thread spends time, running or waiting. You can specify "
    "the duration in the seconds GET parameter.",
)
