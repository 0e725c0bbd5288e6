"""encode/chrome.py: trace events -> Chrome Trace Event JSON, byte for byte against a golden
file, and the fields Perfetto reads."""

from __future__ import annotations

import json

from support import snapshots
from support.golden import assert_golden

from duragraph_pprof.core.snapshot import TraceEvent
from duragraph_pprof.encode import chrome

METADATA = {"program": "checkout", "seconds": "1", "note": "stacks sampled; gc spans exact"}


def test_trace_matches_golden():
    assert_golden("trace.json", chrome.encode(snapshots.trace_events(), METADATA))


def test_document_shape_and_event_fields():
    document = json.loads(chrome.encode(snapshots.trace_events(), METADATA))
    assert set(document) == {"traceEvents", "displayTimeUnit", "otherData"}
    assert document["displayTimeUnit"] == "ms" and document["otherData"] == METADATA
    meta, _, _, burn, gc, instant = document["traceEvents"]
    assert meta == {"name": "process_name", "ph": "M", "ts": 0, "pid": 4242, "tid": 0,
                    "args": {"name": "python"}}
    assert (burn["ts"], burn["dur"], burn["cat"]) == (10.0, 1234.568, "python")  # ns precision
    assert gc["args"] == {"collected": "17", "uncollectable": "0"}
    assert instant == {"name": "trace truncated", "ph": "i", "ts": 5010.0, "pid": 4242, "tid": 1,
                       "s": "g"}


def test_only_complete_spans_carry_a_duration():
    events = json.loads(chrome.encode(snapshots.trace_events(), {}))["traceEvents"]
    assert [e["ph"] for e in events if "dur" in e] == ["X", "X", "X"]


def test_names_stay_ascii_json():
    body = chrome.encode((TraceEvent('caf\u00e9 "q"\n', "X", 1.0, 1, 1, 1.0),), {})
    assert body.isascii()
    assert json.loads(body)["traceEvents"][0]["name"] == 'caf\u00e9 "q"\n'


def test_no_events_is_still_a_document():
    assert chrome.encode((), {}) == b'{"traceEvents":[],"displayTimeUnit":"ms","otherData":{}}'
