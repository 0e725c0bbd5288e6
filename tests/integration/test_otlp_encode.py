"""The OTLP profiles encoder: Pyroscope's ingestion rules for every profile kind we emit, the
dictionary's zero entries, attributes, determinism and a decode round trip."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.profiles.v1development.profiles_service_pb2 import (
    ExportProfilesServiceRequest,
)
from opentelemetry.proto.profiles.v1development import profiles_pb2 as pb

from duragraph_pprof.core.snapshot import Frame, Profile, Sample, ValueType
from duragraph_pprof.encode.otlp import Scope, encode_profiles

SAMPLES = ValueType("samples", "count")
CPU = ValueType("cpu", "nanoseconds")
WALL = ValueType("wall", "nanoseconds")
SPACE = ValueType("space", "bytes")
INUSE = (ValueType("inuse_objects", "count"), ValueType("inuse_space", "bytes"))
T0 = 1_700_000_000_000_000_000

BURN = Frame("app.work.burn", "/srv/app/work.py", 12, 10)
WAIT = Frame("threading.Event.wait", "/usr/lib/python3/threading.py", 600, 590)
MAIN = Frame("app.main", "/srv/app/main.py", 30, 1)
ALLOC = Frame("app.cache.fill", "/srv/app/cache.py", 7, 5)
MAIN_LABELS = (("thread.id", "140001"), ("thread.name", "MainThread"))
TASK_LABELS = (("asyncio.task.name", "Task-7"), ("thread.id", "140002"), ("thread.name", "loop"))


def cpu_profile() -> Profile:
    return Profile(
        (SAMPLES, CPU),
        CPU,
        10_000_000,
        (
            Sample((BURN, MAIN), (90, 900_000_000), MAIN_LABELS),
            Sample((WAIT, MAIN), (3, 1_000_000), TASK_LABELS),
        ),
        T0,
        1_000_000_000,
    )


def wall_profile() -> Profile:
    return Profile(
        (SAMPLES, WALL),
        WALL,
        10_000_000,
        (
            Sample((BURN, MAIN), (100, 1_000_000_000), MAIN_LABELS),
            Sample((WAIT, MAIN), (100, 1_000_000_000), TASK_LABELS),
        ),
        T0,
        1_000_000_000,
    )


def heap_profile() -> Profile:
    return Profile(INUSE, SPACE, 1, (Sample((ALLOC, MAIN), (40, 4096)),), T0 + 5)


RESOURCE = {"service.name": "checkout", "process.pid": 4242, "process.executable.name": "python3"}
SCOPE = Scope("duragraph_pprof", "0.1.0")


def encode(*profiles: Profile, seed: bytes = b"") -> ExportProfilesServiceRequest:
    return encode_profiles(list(profiles), RESOURCE, SCOPE, id_seed=seed)


def otlp_profiles(request: ExportProfilesServiceRequest) -> list[pb.Profile]:
    return [p for rp in request.resource_profiles for sp in rp.scope_profiles for p in sp.profiles]


def text(request: ExportProfilesServiceRequest, index: int) -> str:
    return request.dictionary.string_table[index]


def type_of(request: ExportProfilesServiceRequest, vt: pb.ValueType) -> tuple[str, str]:
    return text(request, vt.type_strindex), text(request, vt.unit_strindex)


def pyroscope_name(request: ExportProfilesServiceRequest, profile: pb.Profile) -> str:
    """Pyroscope's `__name__` for an OTLP profile (reference notes, section 4)."""
    sample = type_of(request, profile.sample_type)
    period = type_of(request, profile.period_type)
    if sample == ("samples", "count") and period == ("cpu", "nanoseconds"):
        return "process_cpu"
    if period[0] == "off_cpu":
        return "off_cpu"
    return period[0]


@pytest.mark.parametrize(
    ("make", "names"),
    [
        (cpu_profile, ["process_cpu", "cpu"]),
        (wall_profile, ["wall", "wall"]),
        (heap_profile, ["space", "space"]),
    ],
)
def test_pyroscope_rules_hold_for_every_profile_kind(make, names):
    # decode from bytes, as Pyroscope would
    request = ExportProfilesServiceRequest.FromString(encode(make()).SerializeToString())
    d = request.dictionary
    assert request.HasField("dictionary") and request.resource_profiles
    assert d.mapping_table and d.mapping_table[0] == pb.Mapping()
    resource = {kv.key: kv.value for kv in request.resource_profiles[0].resource.attributes}
    assert resource["service.name"].string_value == "checkout"
    profiles = otlp_profiles(request)
    assert [pyroscope_name(request, p) for p in profiles] == names
    for profile in profiles:
        assert profile.HasField("sample_type") and profile.sample_type.type_strindex != 0
        assert profile.HasField("period_type") and profile.period_type.type_strindex != 0
        assert profile.period > 0
        assert profile.samples
        for sample in profile.samples:
            assert len(sample.values) == 1 and sample.values[0] != 0
            assert 0 < sample.stack_index < len(d.stack_table)
            for loc in d.stack_table[sample.stack_index].location_indices:
                assert 0 < loc < len(d.location_table)
                assert d.location_table[loc].mapping_index < len(d.mapping_table)


def test_every_dictionary_table_starts_with_its_zero_value():
    d = encode(cpu_profile(), wall_profile(), heap_profile()).dictionary
    assert d.mapping_table[0] == pb.Mapping()
    assert d.location_table[0] == pb.Location()
    assert d.function_table[0] == pb.Function()
    assert d.link_table[0] == pb.Link()
    assert d.string_table[0] == ""
    assert d.attribute_table[0] == pb.KeyValueAndUnit()
    assert d.stack_table[0] == pb.Stack()


def test_tables_hold_no_duplicates():
    d = encode(cpu_profile(), wall_profile(), heap_profile()).dictionary
    for table in (d.location_table, d.function_table, d.attribute_table, d.stack_table):
        encoded = [entry.SerializeToString() for entry in table]
        assert len(encoded) == len(set(encoded))
    assert len(d.string_table) == len(set(d.string_table))


def decoded_samples(request, profile):
    """Each sample as ((function, file, line), ...), value, {attribute: value}."""
    d = request.dictionary
    out = []
    for sample in profile.samples:
        frames = []
        for loc_index in d.stack_table[sample.stack_index].location_indices:
            (line,) = d.location_table[loc_index].lines
            fn = d.function_table[line.function_index]
            frames.append(
                (
                    text(request, fn.name_strindex),
                    text(request, fn.filename_strindex),
                    line.line,
                    fn.start_line,
                )
            )
        attrs = {}
        for index in sample.attribute_indices:
            kv = d.attribute_table[index]
            attrs[text(request, kv.key_strindex)] = getattr(kv.value, kv.value.WhichOneof("value"))
        out.append((tuple(frames), sample.values[0], attrs))
    return out


def test_round_trip_restores_stacks_values_and_labels():
    snapshots = [cpu_profile(), wall_profile(), heap_profile()]
    request = ExportProfilesServiceRequest.FromString(encode(*snapshots).SerializeToString())
    profiles = iter(otlp_profiles(request))
    for snapshot in snapshots:
        for index, value_type in enumerate(snapshot.sample_types):
            profile = next(profiles)
            assert type_of(request, profile.sample_type) == (value_type.type, value_type.unit)
            assert type_of(request, profile.period_type) == (
                snapshot.period_type.type,
                snapshot.period_type.unit,
            )
            assert profile.period == snapshot.period
            assert profile.time_unix_nano == snapshot.time_nanos
            assert profile.duration_nano == snapshot.duration_nanos
            expected = [
                (
                    tuple((f.function, f.filename, f.line, f.start_line) for f in s.stack),
                    s.values[index],
                    {k: int(v) if k == "thread.id" else v for k, v in s.labels},
                )
                for s in snapshot.samples
            ]
            assert decoded_samples(request, profile) == expected
    assert next(profiles, None) is None


def test_frames_are_cpython_and_thread_and_task_attributes_are_typed():
    request = encode(cpu_profile())
    d = request.dictionary
    for location in d.location_table[1:]:
        (attr,) = [d.attribute_table[i] for i in location.attribute_indices]
        assert text(request, attr.key_strindex) == "profile.frame.type"
        assert attr.value.string_value == "cpython"
        assert location.mapping_index == 0
    _, _, attrs = decoded_samples(request, otlp_profiles(request)[0])[1]
    assert attrs == {"asyncio.task.name": "Task-7", "thread.id": 140002, "thread.name": "loop"}


def test_samples_without_a_value_of_the_type_are_left_out():
    profile = Profile((SAMPLES, CPU), CPU, 10, (Sample((BURN,), (0, 7)),), T0)
    first, second = otlp_profiles(encode(profile))
    assert list(first.samples) == []
    assert [s.values[0] for s in second.samples] == [7]


def test_encoding_is_deterministic_and_profile_ids_follow_the_seed():
    assert encode(cpu_profile()).SerializeToString() == encode(cpu_profile()).SerializeToString()
    assert all(p.profile_id == b"" for p in otlp_profiles(encode(cpu_profile())))
    ids = [p.profile_id for p in otlp_profiles(encode(cpu_profile(), heap_profile(), seed=b"s"))]
    assert all(len(i) == 16 for i in ids) and len(set(ids)) == len(ids)
    again = [p.profile_id for p in otlp_profiles(encode(cpu_profile(), heap_profile(), seed=b"s"))]
    assert again == ids


def test_scope_and_resource_value_types():
    request = encode(heap_profile())
    rp = request.resource_profiles[0]
    assert (rp.scope_profiles[0].scope.name, rp.scope_profiles[0].scope.version) == (
        "duragraph_pprof",
        "0.1.0",
    )
    values = {kv.key: kv.value for kv in rp.resource.attributes}
    assert values["process.pid"].int_value == 4242
    assert [kv.key for kv in rp.resource.attributes] == sorted(RESOURCE)


def test_empty_input_gives_a_valid_request_with_only_zero_entries():
    request = encode()
    assert otlp_profiles(request) == []
    assert len(request.dictionary.mapping_table) == 1
