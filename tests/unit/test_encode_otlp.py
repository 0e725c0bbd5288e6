"""encode/otlp.py: the whole `ExportProfilesServiceRequest` for hand-built snapshots, decoded
from its bytes and compared against a golden file (the Pyroscope rules and the round trip are
in test_otlp_encode.py)."""

from __future__ import annotations

from google.protobuf import text_format
from opentelemetry.proto.collector.profiles.v1development.profiles_service_pb2 import (
    ExportProfilesServiceRequest,
)
from support import snapshots
from support.golden import assert_golden

from duragraph_pprof.encode.otlp import Scope, encode_profiles

RESOURCE = {"service.name": "checkout", "process.pid": 4242, "host.arch": "amd64",
            "deployment.canary": True, "sampling.ratio": 0.5}
SCOPE = Scope("duragraph_pprof", "0.1.0")


def request(seed: bytes = b"") -> ExportProfilesServiceRequest:
    profiles = [snapshots.cpu(), snapshots.sampled_heap(), snapshots.contention()]
    encoded = encode_profiles(profiles, RESOURCE, SCOPE, id_seed=seed)
    return ExportProfilesServiceRequest.FromString(encoded.SerializeToString())


def test_request_matches_golden():
    assert_golden("otlp_request.txtpb", text_format.MessageToString(request(b"push/1")))


def test_same_snapshots_same_bytes():
    assert request(b"push/1").SerializeToString() == request(b"push/1").SerializeToString()
    assert request().SerializeToString() != request(b"push/1").SerializeToString()


def test_one_otlp_profile_per_sample_type_in_snapshot_order():
    d = request().dictionary
    (scope,) = request().resource_profiles[0].scope_profiles
    types = [d.string_table[p.sample_type.type_strindex] for p in scope.profiles]
    assert types == ["samples", "cpu", "alloc_objects", "alloc_space", "inuse_objects",
                     "inuse_space", "contentions", "delay"]
