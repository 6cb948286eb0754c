"""A service process exports its spans and metrics by OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from rogatory.registry.v1 import registry_pb2 as pb
from rogatory.registry.v1 import registry_pb2_grpc

from services.plumbing.nats_server import EmbeddedNatsServer
from services.tools.launcher import ServiceProcess
from tests.e2e.test_registry_e2e import as_owner, create_request


class OtlpReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An in-process OTLP/gRPC trace receiver standing in for a collector."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    async def Export(self, request, context):  # type: ignore[no-untyped-def]
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self) -> list[tuple[str, str]]:
        found = []
        for request in self.requests:
            for resource_spans in request.resource_spans:
                service = next(a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name")
                found += [(service, s.name) for scope in resource_spans.scope_spans for s in scope.spans]
        return found


class OtlpMetricsReceiver(metrics_service_pb2_grpc.MetricsServiceServicer):
    """The metrics half of the stand-in collector."""

    def __init__(self) -> None:
        self.requests: list[metrics_service_pb2.ExportMetricsServiceRequest] = []

    async def Export(self, request, context):  # type: ignore[no-untyped-def]
        self.requests.append(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()

    def names(self) -> set[str]:
        return {
            metric.name
            for request in self.requests
            for resource_metrics in request.resource_metrics
            for scope in resource_metrics.scope_metrics
            for metric in scope.metrics
        }


METRICS = OtlpMetricsReceiver()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[OtlpReceiver, int]]:
    servicer = OtlpReceiver()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    METRICS.requests.clear()
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(METRICS, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield servicer, port
    await server.stop(None)


async def test_spans_reach_the_otlp_endpoint(receiver, nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    collector, port = receiver
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DATABASE_URL"))}
    env.update(
        NATS_URL=nats_server.url,
        ROGATORY_DATA_DIR=str(tmp_path),
        REGISTRY_ADDR="127.0.0.1:0",  # a free port, bound by the service (READY says which)
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
        OTEL_EXPORTER_OTLP_INSECURE="true",
    )
    process = await asyncio.to_thread(ServiceProcess("registry", env).start)
    try:
        async with grpc.aio.insecure_channel(process.address) as channel:
            stub = registry_pb2_grpc.RegistryServiceStub(channel)
            request = create_request(1)
            await stub.GetCourt(pb.GetCourtRequest(name="courts/zj0326"), metadata=as_owner(request))
            await stub.CreateCase(request, metadata=as_owner(request))  # its event goes through the relay: relay lag
    finally:
        code = await asyncio.to_thread(process.stop)  # shutdown flushes the batch processor and the metric reader
    assert code == 0
    assert ("rogatory-registry", "rogatory.registry.v1.RegistryService/GetCourt") in collector.spans()
    assert {"rogatory.outbox.relay_lag", "rogatory.outbox.backlog"} <= METRICS.names()
