"""What the server itself reads of a profile it hands the page: the source files it names, the
only ones its source view may read. The page decodes the rest (static/pprof.js)."""

from __future__ import annotations

import gzip

from .._gen.perftools.profiles import profile_pb2 as pb


def parse(body: bytes) -> pb.Profile:
    data = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
    profile = pb.Profile()
    profile.ParseFromString(data)
    return profile


def files(profile: pb.Profile) -> frozenset[str]:
    strings = profile.string_table
    return frozenset(strings[f.filename] for f in profile.function if f.filename)
