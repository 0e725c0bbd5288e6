"""Profile snapshot -> gzipped pprof protobuf, as `go tool pprof` reads it.

Every location carries its line, so pprof never asks /symbol; there is one mapping flagged
has_functions/filenames/line_numbers for the same reason, and its file name (the program) is what
pprof shows as `File:`. Locations and functions are numbered in first-use order, like Go.
"""

from __future__ import annotations

import gzip

from .._gen.perftools.profiles import profile_pb2 as pb
from ..core.snapshot import Frame, Profile


class _Strings:
    def __init__(self) -> None:
        self.table = [""]
        self._index = {"": 0}

    def __call__(self, text: str) -> int:
        index = self._index.get(text)
        if index is None:
            index = self._index[text] = len(self.table)
            self.table.append(text)
        return index


def encode(profile: Profile, program: str = "python") -> bytes:
    """The profile as gzip-compressed pprof protobuf (a fixed gzip mtime: same input, same bytes)."""
    return gzip.compress(to_message(profile, program).SerializeToString(), 1, mtime=0)


def to_message(profile: Profile, program: str = "python") -> pb.Profile:
    s = _Strings()
    out = pb.Profile()
    for vt in profile.sample_types:
        out.sample_type.add(type=s(vt.type), unit=s(vt.unit))
    out.mapping.add(id=1, filename=s(program), has_functions=True, has_filenames=True,
                    has_line_numbers=True)
    functions: dict[tuple[str, str, int], int] = {}
    locations: dict[Frame, int] = {}

    def location_id(frame: Frame) -> int:
        loc = locations.get(frame)
        if loc is None:
            key = (frame.function, frame.filename, frame.start_line)
            fid = functions.get(key)
            if fid is None:
                fid = functions[key] = len(functions) + 1
                name = s(frame.function)
                out.function.add(id=fid, name=name, system_name=name, filename=s(frame.filename),
                                 start_line=frame.start_line)
            loc = locations[frame] = len(locations) + 1
            out.location.add(id=loc, mapping_id=1).line.add(function_id=fid, line=frame.line)
        return loc

    for sample in profile.samples:
        message = out.sample.add(location_id=[location_id(f) for f in sample.stack],
                                 value=sample.values)
        for key, value in sample.labels:
            message.label.add(key=s(key), str=s(value))
        for key, num, unit in sample.num_labels:
            message.label.add(key=s(key), num=num, num_unit=s(unit))
    out.time_nanos = profile.time_nanos
    out.duration_nanos = profile.duration_nanos
    out.period_type.type = s(profile.period_type.type)
    out.period_type.unit = s(profile.period_type.unit)
    out.period = profile.period
    out.comment.extend(s(c) for c in profile.comments)
    if profile.default_sample_type:
        out.default_sample_type = s(profile.default_sample_type)
    out.string_table.extend(s.table)
    return out
