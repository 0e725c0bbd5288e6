"""One profile kind, one place: a kind registered here, and nowhere else, is on every surface: the
HTTP index and /debug/pprof/<name> (pprof, debug=1 text, a seconds=N delta), the gRPC list and
pulls, the page's picker, and the OTLP push."""

from __future__ import annotations

import json

import grpc
import pytest
from opentelemetry.proto.collector.profiles.v1development.profiles_service_pb2 import (
    ExportProfilesServiceRequest,
)
from support.listener import fetch, started
from support.profiles import parse_pprof

from duragraph_pprof._gen.duragraph.pprof.v1 import profiler_pb2 as pb
from duragraph_pprof._gen.duragraph.pprof.v1 import profiler_pb2_grpc as pb_grpc
from duragraph_pprof.core.snapshot import Frame, Profile, Sample, ValueType
from duragraph_pprof.encode.otlp import Scope
from duragraph_pprof.exporter.pusher import Pusher
from duragraph_pprof.kinds import REGISTRY, ProfileKind, every_interval

P = "/debug/pprof/"
WIDGETS = ValueType("widgets", "count")
MADE_AT = (Frame("shop.make_widget", "/srv/shop.py", 12, 10),
           Frame("shop.main", "/srv/shop.py", 3, 1))


def widgets(core, collect_garbage: bool = False) -> Profile:
    return Profile((WIDGETS,), WIDGETS, 1, (Sample(MADE_AT, (7,)),), 1_700_000_000_000_000_000)


TOY = ProfileKind(
    "widgets",
    "Widgets made, by the stack that made them (a kind a test registers).",
    count=lambda core: 7,
    snapshot=widgets,
    delta=True,
    push=every_interval(widgets),
)


@pytest.fixture
def toy():
    REGISTRY.register(TOY)
    try:
        yield TOY
    finally:
        REGISTRY.unregister(TOY.name)
    assert REGISTRY.get(TOY.name) is None


@pytest.fixture
def profiler(toy):
    with started(http_addr="127.0.0.1:0", grpc_addr="127.0.0.1:0") as profiler:
        yield profiler


class Sent:
    """The push's queue, keeping every request it was given."""

    def __init__(self) -> None:
        self.requests: list[ExportProfilesServiceRequest] = []

    def put(self, body: bytes) -> None:
        self.requests.append(ExportProfilesServiceRequest.FromString(body))

    def close(self, flush_timeout: float) -> None:
        pass


def test_http_index_lists_it_and_its_endpoint_serves_it(profiler):
    _, _, page = fetch(profiler, P)
    assert "<tr><td>7</td><td><a href='widgets?debug=1'>widgets</a></td></tr>" in page.decode()
    assert "widgets: </div> Widgets made, by the stack that made them" in page.decode()

    status, headers, body = fetch(profiler, P + "widgets")
    assert (status, headers["content-disposition"]) == (200, 'attachment; filename="widgets"')
    parsed = parse_pprof(body)
    strings = parsed.string_table
    assert [(strings[t.type], strings[t.unit]) for t in parsed.sample_type] == [("widgets", "count")]
    assert [s.value[0] for s in parsed.sample] == [7]

    status, _, text = fetch(profiler, P + "widgets?debug=1")
    assert status == 200 and text.decode().startswith("widgets profile: total 7\n")
    assert "shop.make_widget+0x0" in text.decode()

    status, headers, body = fetch(profiler, P + "widgets?seconds=1")
    assert (status, headers["content-disposition"]) == (200, 'attachment; filename="widgets-delta"')
    assert not parse_pprof(body).sample  # the same widgets before and after


def test_grpc_lists_it_and_pulls_the_bytes_http_serves(profiler):
    channel = grpc.insecure_channel(f"127.0.0.1:{profiler.grpc_address[1]}")
    try:
        stub = pb_grpc.ProfilerServiceStub(channel)
        listed = {p.name: p for p in stub.ListProfiles(pb.ListProfilesRequest(), timeout=30).profiles}
        pulled = b"".join(m.data for m in stub.GetProfile(pb.GetProfileRequest(name="widgets"),
                                                          timeout=30))
    finally:
        channel.close()
    info = listed["widgets"]
    assert (info.description, info.count, info.delta) == (TOY.description, 7, True)
    assert pulled == fetch(profiler, P + "widgets")[2]


def test_the_page_offers_it(profiler):
    _, _, body = fetch(profiler, P + "ui/api/profiles")
    offered = {p["name"]: p for p in json.loads(body)["profiles"]}
    assert offered["widgets"] == {"name": "widgets", "description": TOY.description,
                                  "timed": False, "delta": True, "gc": False}


def test_the_otlp_push_sends_it(profiler):
    sent = Sent()
    Pusher(profiler.core, 3600, {"service.name": "shop"}, Scope("test"), sent, None).start().stop()
    (request,) = sent.requests
    strings = request.dictionary.string_table
    pushed = [(strings[p.sample_type.type_strindex], [s.values[0] for s in p.samples])
              for rp in request.resource_profiles for sp in rp.scope_profiles for p in sp.profiles]
    assert ("widgets", [7]) in pushed


def test_a_second_kind_of_the_same_name_is_refused(toy):
    with pytest.raises(ValueError, match="'widgets' is registered already"):
        REGISTRY.register(TOY)
