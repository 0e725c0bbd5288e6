"""Served pprof bytes -> the plain JSON the page draws. Pure: the page sees exactly what
`go tool pprof` sees, because it reads the same bytes.

Frames are (function, line) pairs; a location with inlined lines becomes several frames, the
inlined callee first, as pprof lists them. Stacks are leaf first, as in the profile.
"""

from __future__ import annotations

import gzip
from typing import Any

from .._gen.perftools.profiles import profile_pb2 as pb


def parse(body: bytes) -> pb.Profile:
    data = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
    profile = pb.Profile()
    profile.ParseFromString(data)
    return profile


def to_json(profile: pb.Profile) -> dict[str, Any]:
    strings = list(profile.string_table)
    text = lambda i: strings[i] if 0 <= i < len(strings) else ""
    functions, function_index = [], {}
    for f in profile.function:
        function_index[f.id] = len(functions)
        functions.append([text(f.name), text(f.filename), f.start_line])
    frames, frame_index, location_frames = [], {}, {}
    for loc in profile.location:
        ids = []
        for line in loc.line:
            key = (function_index.get(line.function_id, -1), line.line)
            if key[0] < 0:
                continue
            if key not in frame_index:
                frame_index[key] = len(frames)
                frames.append(list(key))
            ids.append(frame_index[key])
        location_frames[loc.id] = ids
    return {
        "sample_types": [[text(v.type), text(v.unit)] for v in profile.sample_type],
        "default_type": _default_type(profile, text),
        "period": [text(profile.period_type.type), text(profile.period_type.unit), profile.period],
        "time_nanos": profile.time_nanos,
        "duration_nanos": profile.duration_nanos,
        "comments": [text(c) for c in profile.comment],
        "functions": functions,
        "frames": frames,
        **_samples(profile, location_frames, text),
    }


def _default_type(profile: pb.Profile, text) -> int:
    """pprof's choice: the named default sample type, else the last one."""
    wanted = text(profile.default_sample_type)
    types = [text(v.type) for v in profile.sample_type]
    return types.index(wanted) if wanted in types else max(len(types) - 1, 0)


def _samples(profile: pb.Profile, location_frames: dict[int, list[int]], text) -> dict[str, Any]:
    single = all(len(ids) == 1 for ids in location_frames.values())
    flat = {loc: ids[0] for loc, ids in location_frames.items()} if single else {}
    stacks, values, labels = [], [], []
    label_sets: dict[str, int] = {"": 0}
    for sample in profile.sample:
        if single:  # the common case, kept to one C-level map per sample
            stacks.append(list(map(flat.__getitem__, sample.location_id)))
        else:
            stacks.append([f for loc in sample.location_id for f in location_frames[loc]])
        values.append(list(sample.value))
        key = ",".join(sorted(_label(label, text) for label in sample.label))
        labels.append(label_sets.setdefault(key, len(label_sets)))
    return {"stacks": stacks, "values": values, "labels": labels, "label_sets": list(label_sets)}


def _label(label: pb.Label, text) -> str:
    if label.str:
        return f"{text(label.key)}={text(label.str)}"
    return f"{text(label.key)}={label.num}{text(label.num_unit)}"


def files(profile: pb.Profile) -> frozenset[str]:
    """The source files a profile names: the only ones its source view may read."""
    strings = profile.string_table
    return frozenset(strings[f.filename] for f in profile.function if f.filename)
