"""Turning live Python frames into snapshot `Frame`s, with caches so the sampler stays cheap.

A code object always names the same function, so its name, file and first line are computed once;
a (code, line) pair always gives the same `Frame`, so those are interned too.
"""

from __future__ import annotations

import os
from types import CodeType, FrameType

from .snapshot import Frame, Stack

MAX_DEPTH = 128  # deeper stacks keep the innermost frames, like Go's traceback limit
_MAX_CACHED = 200_000  # bounds the caches when code objects are created dynamically

_code_info: dict[CodeType, tuple[str, str, int]] = {}
_frames: dict[tuple[CodeType, int], Frame] = {}


def function_name(module: str, qualname: str) -> str:
    return f"{module}.{qualname}" if module else qualname


def absolute(filename: str) -> str:
    # "<frozen ...>", "<string>" and friends have no file to show
    if not filename or filename.startswith("<"):
        return filename
    return os.path.abspath(filename)


def _info(code: CodeType, module: str) -> tuple[str, str, int]:
    info = _code_info.get(code)
    if info is None:
        if len(_code_info) >= _MAX_CACHED:
            _code_info.clear()
        qualname = getattr(code, "co_qualname", code.co_name)
        info = (function_name(module, qualname), absolute(code.co_filename), code.co_firstlineno)
        _code_info[code] = info
    return info


def frame_of(frame: FrameType) -> Frame:
    code = frame.f_code
    line = frame.f_lineno or 0
    key = (code, line)
    cached = _frames.get(key)
    if cached is None:
        if len(_frames) >= _MAX_CACHED:
            _frames.clear()
        module = frame.f_globals.get("__name__", "") if frame.f_globals else ""
        name, filename, start = _info(code, module if isinstance(module, str) else "")
        cached = _frames[key] = Frame(name, filename, line, start)
    return cached


def stack_of(frame: FrameType | None, limit: int = MAX_DEPTH) -> Stack:
    """The stack from `frame` outwards, leaf first."""
    out = []
    while frame is not None and len(out) < limit:
        out.append(frame_of(frame))
        frame = frame.f_back
    return tuple(out)


def clear_caches() -> None:
    _code_info.clear()
    _frames.clear()
