"""The collector harness against the real OpenTelemetry Collector.

Hand-built OTLP profiles go in over gRPC and HTTP, an SDK metric goes in over gRPC, and all of it
must come back out of the file exporter decoded with the values intact.
"""

from __future__ import annotations

import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.profiles.v1development import (
    profiles_service_pb2 as service_pb2,
)
from opentelemetry.proto.collector.profiles.v1development import (
    profiles_service_pb2_grpc as service_grpc,
)
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.proto.profiles.v1development import profiles_pb2 as pb
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from support.collector import Collector, attributes_dict, running_collector

pytestmark = pytest.mark.collector

SERVICE_NAME = "duragraph-pprof-harness-test"
PERIOD_NS = 10_000_000
NO_PROXY = (("grpc.enable_http_proxy", 0),)


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    with running_collector(tmp_path / "otelcol") as handle:
        yield handle


def profile_request(function_name: str, value: int = 5) -> service_pb2.ExportProfilesServiceRequest:
    """A minimal valid request: every dictionary table starts with its zero value."""
    strings = ["", "samples", "count", "cpu", "nanoseconds", function_name, "harness_test.py"]
    dictionary = pb.ProfilesDictionary(
        mapping_table=[pb.Mapping()],
        location_table=[
            pb.Location(),
            pb.Location(mapping_index=0, lines=[pb.Line(function_index=1, line=12)]),
        ],
        function_table=[
            pb.Function(),
            pb.Function(
                name_strindex=5, system_name_strindex=5, filename_strindex=6, start_line=10
            ),
        ],
        link_table=[pb.Link()],
        string_table=strings,
        attribute_table=[pb.KeyValueAndUnit()],
        stack_table=[pb.Stack(), pb.Stack(location_indices=[1])],
    )
    profile = pb.Profile(
        sample_type=pb.ValueType(type_strindex=1, unit_strindex=2),
        period_type=pb.ValueType(type_strindex=3, unit_strindex=4),
        period=PERIOD_NS,
        time_unix_nano=time.time_ns(),
        duration_nano=1_000_000_000,
        profile_id=os.urandom(16),
        samples=[pb.Sample(stack_index=1, values=[value])],
    )
    resource = resource_pb2.Resource(
        attributes=[
            common_pb2.KeyValue(
                key="service.name", value=common_pb2.AnyValue(string_value=SERVICE_NAME)
            )
        ]
    )
    return service_pb2.ExportProfilesServiceRequest(
        dictionary=dictionary,
        resource_profiles=[
            pb.ResourceProfiles(
                resource=resource,
                scope_profiles=[
                    pb.ScopeProfiles(
                        scope=common_pb2.InstrumentationScope(name="duragraph_pprof.tests"),
                        profiles=[profile],
                    )
                ],
            )
        ],
    )


def send_grpc(collector: Collector, request: service_pb2.ExportProfilesServiceRequest) -> None:
    with grpc.insecure_channel(collector.grpc_endpoint, options=NO_PROXY) as channel:
        response = service_grpc.ProfilesServiceStub(channel).Export(request, timeout=10)
    assert response.partial_success.rejected_profiles == 0, response


def send_http(collector: Collector, request: service_pb2.ExportProfilesServiceRequest) -> None:
    http_request = urllib.request.Request(
        f"{collector.http_endpoint}/v1development/profiles",
        data=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(http_request, timeout=10) as response:
        assert response.status == 200
        assert response.headers.get_content_type() == "application/x-protobuf"
        body = service_pb2.ExportProfilesServiceResponse.FromString(response.read())
    assert body.partial_success.rejected_profiles == 0, body


def received_samples(collector: Collector) -> dict[str, list[int]]:
    """Leaf function name -> sample values, resolved through the dictionary of each record."""
    found: dict[str, list[int]] = {}
    for data in collector.profiles():
        d = data.dictionary
        strings = d.string_table
        for resource_profiles in data.resource_profiles:
            attributes = attributes_dict(resource_profiles.resource.attributes, strings)
            assert attributes["service.name"] == SERVICE_NAME
            for scope_profiles in resource_profiles.scope_profiles:
                for profile in scope_profiles.profiles:
                    assert strings[profile.sample_type.type_strindex] == "samples"
                    assert strings[profile.sample_type.unit_strindex] == "count"
                    assert strings[profile.period_type.type_strindex] == "cpu"
                    assert strings[profile.period_type.unit_strindex] == "nanoseconds"
                    assert profile.period == PERIOD_NS
                    assert len(profile.profile_id) == 16
                    for sample in profile.samples:
                        stack = d.stack_table[sample.stack_index]
                        location = d.location_table[stack.location_indices[0]]
                        assert location.mapping_index < len(d.mapping_table)
                        function = d.function_table[location.lines[0].function_index]
                        assert strings[function.filename_strindex] == "harness_test.py"
                        found.setdefault(strings[function.name_strindex], []).extend(sample.values)
    return found


def test_profile_over_grpc_arrives_decoded(collector: Collector) -> None:
    send_grpc(collector, profile_request("grpc_leaf_function"))
    samples = collector.wait_for(lambda: received_samples(collector), description="a profile")
    assert samples == {"grpc_leaf_function": [5]}


def test_profile_over_http_arrives_decoded(collector: Collector) -> None:
    send_http(collector, profile_request("http_leaf_function"))
    samples = collector.wait_for(lambda: received_samples(collector), description="a profile")
    assert samples == {"http_leaf_function": [5]}


def test_restart_keeps_ports_and_output(collector: Collector) -> None:
    ports = (collector.grpc_port, collector.http_port)
    send_grpc(collector, profile_request("before_restart"))
    assert collector.stop() == 0
    assert not collector.running
    # SIGTERM flushed the file exporter: the record is there without waiting.
    assert received_samples(collector) == {"before_restart": [5]}
    with pytest.raises(grpc.RpcError):
        send_grpc(collector, profile_request("while_down"))

    collector.start()
    assert (collector.grpc_port, collector.http_port) == ports
    send_http(collector, profile_request("after_restart"))
    collector.wait_for(lambda: "after_restart" in received_samples(collector))
    assert received_samples(collector) == {"before_restart": [5], "after_restart": [5]}


def metric_points(collector: Collector, name: str) -> list[int]:
    values: list[int] = []
    data: MetricsData
    for data in collector.metrics():
        for resource_metrics in data.resource_metrics:
            attributes = attributes_dict(resource_metrics.resource.attributes)
            if attributes.get("service.name") != SERVICE_NAME:
                continue
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        assert metric.unit == "{item}"
                        values.extend(point.as_int for point in metric.sum.data_points)
    return values


def test_sdk_metric_arrives(collector: Collector) -> None:
    exporter = OTLPMetricExporter(
        endpoint=collector.grpc_endpoint, insecure=True, timeout=10, channel_options=NO_PROXY
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource.create({"service.name": SERVICE_NAME}),
        shutdown_on_exit=False,
    )
    try:
        counter = provider.get_meter("duragraph_pprof.tests").create_counter(
            "duragraph.test.harness.items", unit="{item}"
        )
        counter.add(7, {"case": "harness"})
    finally:
        provider.shutdown()  # collects and exports once (force_flush too would export twice)
    values = collector.wait_for(
        lambda: metric_points(collector, "duragraph.test.harness.items"), description="the metric"
    )
    assert values == [7]
