"""Snapshot profiles -> one OTLP `ExportProfilesServiceRequest` (profiles v1development).

Pure: data in, message out. No clock, environment or globals; the same arguments give the same
bytes. The layout is that of opentelemetry-proto 1.45.2 (upstream proto v1.10.0, where
`Sample.values` is field 4), which Collector >= v0.148 and Pyroscope 2.x decode.

OTLP gives each profile exactly one sample type, so a snapshot with several sample types (CPU:
samples/count and cpu/nanoseconds) becomes one OTLP profile per type, sharing the snapshot's
period type and period. Pyroscope names `samples/count` + `cpu/nanoseconds` period `process_cpu`
and every other profile after its period type, so the period type is always set, with a non-zero
period.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opentelemetry.proto.collector.profiles.v1development.profiles_service_pb2 import (
    ExportProfilesServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.profiles.v1development import profiles_pb2 as pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from ..core.snapshot import Frame, Profile, Sample, ValueType

AttrValue = str | bool | int | float

FRAME_TYPE_KEY = "profile.frame.type"
FRAME_TYPE_CPYTHON = "cpython"
# snapshot label keys whose values semconv defines as integers
_INT_LABELS = frozenset({"thread.id"})


@dataclass(frozen=True, slots=True)
class Scope:
    name: str
    version: str = ""


def encode_profiles(
    profiles: Sequence[Profile],
    resource: Mapping[str, AttrValue],
    scope: Scope,
    id_seed: bytes = b"",
) -> ExportProfilesServiceRequest:
    """Encode snapshots into one request with one shared dictionary.

    `resource` becomes the OTLP resource (it must hold `service.name` for Pyroscope). With a
    non-empty `id_seed` every OTLP profile gets a 16-byte `profile_id` derived from the seed and
    its position; with an empty seed the ids stay empty, as the spec allows.
    """
    tables = _Tables()
    out: list[pb.Profile] = []
    for profile in profiles:
        # stacks and attributes once per snapshot sample, shared by its sample types
        keys = [(tables.stack(s.stack), tables.sample_attributes(s)) for s in profile.samples]
        for index, value_type in enumerate(profile.sample_types):
            seed_part = id_seed + b"/%d" % len(out) if id_seed else b""
            out.append(_profile(tables, profile, keys, index, value_type, _profile_id(seed_part)))
    request = ExportProfilesServiceRequest(dictionary=tables.dictionary)
    request.resource_profiles.add(
        resource=Resource(attributes=[_key_value(k, resource[k]) for k in sorted(resource)]),
        scope_profiles=[
            pb.ScopeProfiles(
                scope=InstrumentationScope(name=scope.name, version=scope.version),
                profiles=out,
            )
        ],
    )
    return request


def _profile_id(seed: bytes) -> bytes:
    # empty or exactly 16 bytes: the Collector refuses the whole request otherwise
    return hashlib.sha256(seed).digest()[:16] if seed else b""


def _profile(
    tables: _Tables,
    profile: Profile,
    keys: list[tuple[int, list[int]]],
    index: int,
    value_type: ValueType,
    profile_id: bytes,
) -> pb.Profile:
    samples = [
        pb.Sample(stack_index=stack, attribute_indices=attrs, values=[sample.values[index]])
        for sample, (stack, attrs) in zip(profile.samples, keys)
        # a sample with nothing of this type only adds noise to this type's profile
        if index < len(sample.values) and sample.values[index] != 0
    ]
    return pb.Profile(
        sample_type=tables.value_type(value_type),
        samples=samples,
        time_unix_nano=profile.time_nanos,
        duration_nano=profile.duration_nanos,
        period_type=tables.value_type(profile.period_type),
        period=profile.period,
        profile_id=profile_id,
    )


def _any_value(value: AttrValue) -> AnyValue:
    if isinstance(value, bool):  # before int: bool is an int subclass
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def _key_value(key: str, value: AttrValue) -> KeyValue:
    return KeyValue(key=key, value=_any_value(value))


class _Tables:
    """The request's dictionary, interning every entry; index 0 of each table is its zero value."""

    def __init__(self) -> None:
        self.dictionary = pb.ProfilesDictionary()
        d = self.dictionary
        d.mapping_table.add()  # Pyroscope looks every location's mapping up, even index 0
        d.location_table.add()
        d.function_table.add()
        d.link_table.add()
        d.string_table.append("")
        d.attribute_table.add()
        d.stack_table.add()
        self._strings: dict[str, int] = {"": 0}
        self._attrs: dict[tuple[str, str, AttrValue, str], int] = {}
        self._functions: dict[tuple[str, str, int], int] = {}
        self._locations: dict[Frame, int] = {}
        self._stacks: dict[tuple[int, ...], int] = {(): 0}

    def string(self, text: str) -> int:
        index = self._strings.get(text)
        if index is None:
            index = self._strings[text] = len(self.dictionary.string_table)
            self.dictionary.string_table.append(text)
        return index

    def value_type(self, value_type: ValueType) -> pb.ValueType:
        return pb.ValueType(
            type_strindex=self.string(value_type.type), unit_strindex=self.string(value_type.unit)
        )

    def attribute(self, key: str, value: AttrValue, unit: str = "") -> int:
        # the type is part of the identity: thread.id 1 and "1" are different attributes
        ident = (key, type(value).__name__, value, unit)
        index = self._attrs.get(ident)
        if index is None:
            index = self._attrs[ident] = len(self.dictionary.attribute_table)
            self.dictionary.attribute_table.add(
                key_strindex=self.string(key),
                value=_any_value(value),
                unit_strindex=self.string(unit) if unit else 0,
            )
        return index

    def sample_attributes(self, sample: Sample) -> list[int]:
        indices = [self.attribute(key, _label_value(key, value)) for key, value in sample.labels]
        indices += [self.attribute(key, value, unit) for key, value, unit in sample.num_labels]
        return indices

    def function(self, frame: Frame) -> int:
        ident = (frame.function, frame.filename, frame.start_line)
        index = self._functions.get(ident)
        if index is None:
            index = self._functions[ident] = len(self.dictionary.function_table)
            name = self.string(frame.function)
            self.dictionary.function_table.add(
                name_strindex=name,
                system_name_strindex=name,
                filename_strindex=self.string(frame.filename),
                start_line=frame.start_line,
            )
        return index

    def location(self, frame: Frame) -> int:
        index = self._locations.get(frame)
        if index is None:
            function = self.function(frame)
            index = self._locations[frame] = len(self.dictionary.location_table)
            self.dictionary.location_table.add(
                mapping_index=0,
                lines=[pb.Line(function_index=function, line=frame.line)],
                attribute_indices=[self.attribute(FRAME_TYPE_KEY, FRAME_TYPE_CPYTHON)],
            )
        return index

    def stack(self, frames: Sequence[Frame]) -> int:
        ident = tuple(self.location(frame) for frame in frames)
        index = self._stacks.get(ident)
        if index is None:
            index = self._stacks[ident] = len(self.dictionary.stack_table)
            self.dictionary.stack_table.add(location_indices=ident)
        return index


def _label_value(key: str, value: str) -> AttrValue:
    if key in _INT_LABELS:
        try:
            return int(value)
        except ValueError:
            return value
    return value
