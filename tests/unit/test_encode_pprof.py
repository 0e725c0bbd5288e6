"""encode/pprof.py: hand-built snapshots -> gzipped pprof bytes, decoded back with the real
protobuf decoder and compared whole against golden files."""

from __future__ import annotations

import gzip

import pytest
from google.protobuf import text_format
from support import snapshots
from support.golden import assert_golden
from support.profiles import parse_pprof

from duragraph_pprof.core.snapshot import Frame, Profile, Sample
from duragraph_pprof.encode import pprof

PROGRAM = "checkout"


def decoded(profile: Profile):
    return parse_pprof(pprof.encode(profile, PROGRAM))


def resolved(message) -> list[tuple[list[tuple[str, str, int, int]], list[int], dict]]:
    """Each sample as ([(function, file, line, start line), ...], values, labels), by the ids."""
    strings = message.string_table
    functions = {f.id: f for f in message.function}
    locations = {loc.id: loc for loc in message.location}
    out = []
    for sample in message.sample:
        frames = []
        for location_id in sample.location_id:
            (line,) = locations[location_id].line
            fn = functions[line.function_id]
            frames.append((strings[fn.name], strings[fn.filename], line.line, fn.start_line))
        labels = {strings[label.key]: strings[label.str] if label.str else
                  (label.num, strings[label.num_unit]) for label in sample.label}
        out.append((frames, list(sample.value), labels))
    return out


@pytest.mark.parametrize("make", [snapshots.cpu, snapshots.sampled_heap, snapshots.contention],
                         ids=["cpu", "heap", "contention"])
def test_decoded_message_matches_golden(make):
    assert_golden(f"pprof_{make.__name__}.txtpb", text_format.MessageToString(decoded(make())))


@pytest.mark.parametrize("make", [snapshots.cpu, snapshots.sampled_heap, snapshots.exact_heap,
                                  snapshots.contention])
def test_round_trip_restores_every_sample(make):
    profile = make()
    expected = [
        ([(f.function, f.filename, f.line, f.start_line) for f in s.stack], list(s.values),
         {**dict(s.labels), **{k: (v, unit) for k, v, unit in s.num_labels}})
        for s in profile.samples
    ]
    assert resolved(decoded(profile)) == expected


def test_header_fields_survive():
    message = decoded(snapshots.sampled_heap())
    strings = message.string_table
    assert [(strings[t.type], strings[t.unit]) for t in message.sample_type] == [
        ("alloc_objects", "count"), ("alloc_space", "bytes"),
        ("inuse_objects", "count"), ("inuse_space", "bytes")]
    assert (strings[message.period_type.type], strings[message.period_type.unit]) == (
        "space", "bytes")
    assert message.period == 524_288
    assert (message.time_nanos, message.duration_nanos) == (snapshots.T0 + 5, 0)
    assert strings[message.default_sample_type] == "inuse_space"
    assert [strings[c] for c in message.comment] == ["heap: sampled, one per 524288 bytes"]


def test_one_mapping_named_after_the_program_with_symbols_present():
    (mapping,) = decoded(snapshots.cpu()).mapping
    assert mapping.id == 1
    assert decoded(snapshots.cpu()).string_table[mapping.filename] == PROGRAM
    assert (mapping.has_functions, mapping.has_filenames, mapping.has_line_numbers) == (
        True, True, True)


def test_strings_are_interned_with_the_empty_string_first():
    strings = list(decoded(snapshots.cpu()).string_table)
    assert strings[0] == ""
    assert len(strings) == len(set(strings))


def test_locations_per_line_functions_per_function_numbered_in_first_use_order():
    message = decoded(snapshots.cpu())
    # BURN and BURN_LOOP: one function, two locations
    assert [loc.id for loc in message.location] == [1, 2, 3, 4, 5, 6]
    assert [f.id for f in message.function] == [1, 2, 3, 4, 5]
    assert [loc.line[0].function_id for loc in message.location] == [1, 2, 3, 4, 1, 5]
    assert list(message.sample[0].location_id) == [1, 2, 3, 4]
    assert list(message.sample[1].location_id) == [5, 2, 3, 4]


def test_no_default_sample_type_leaves_the_field_zero():
    assert decoded(snapshots.cpu()).default_sample_type == 0


def test_same_snapshot_same_bytes_and_a_zero_gzip_mtime():
    body = pprof.encode(snapshots.cpu(), PROGRAM)
    assert body == pprof.encode(snapshots.cpu(), PROGRAM)
    assert body[:2] == b"\x1f\x8b" and body[4:8] == b"\0\0\0\0"  # RFC 1952 MTIME
    assert gzip.decompress(body) == pprof.to_message(snapshots.cpu(), PROGRAM).SerializeToString()


def test_an_empty_profile_still_decodes():
    empty = Profile((snapshots.GOROUTINE,), snapshots.GOROUTINE, 1, (), snapshots.T0)
    message = decoded(empty)
    assert (len(message.sample), len(message.location), len(message.function)) == (0, 0, 0)
    assert message.period == 1 and message.time_nanos == snapshots.T0


def test_a_sample_without_frames_keeps_its_values():
    bare = Profile((snapshots.SAMPLES,), snapshots.SAMPLES, 1,
                   (Sample((), (5,)), Sample((Frame("m.f", "/m.py", 2, 1),), (1,))), 0)
    assert [(list(s.location_id), list(s.value)) for s in decoded(bare).sample] == [
        ([], [5]), ([1], [1])]
