"""Trace events -> Chrome Trace Event JSON (opens in ui.perfetto.dev and chrome://tracing)."""

from __future__ import annotations

import json

from ..core.snapshot import TraceEvent


def encode(events: tuple[TraceEvent, ...], metadata: dict[str, str]) -> bytes:
    out = []
    for e in events:
        item: dict = {"name": e.name, "ph": e.ph, "ts": round(e.ts_us, 3), "pid": e.pid,
                      "tid": e.tid}
        if e.ph == "X":
            item["dur"] = round(e.dur_us, 3)
        if e.ph == "i":
            item["s"] = "g"
        if e.cat:
            item["cat"] = e.cat
        if e.args:
            item["args"] = dict(e.args)
        out.append(item)
    document = {"traceEvents": out, "displayTimeUnit": "ms", "otherData": metadata}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True).encode()
