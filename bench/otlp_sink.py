"""A stand-in OpenTelemetry collector for benchmarks: accepts OTLP/gRPC traces and metrics,
counts them and discards them, so a service's export path runs for real without a
collector installed. `python -m bench.otlp_sink --addr 127.0.0.1:PORT` prints
`READY otlp ADDR` when serving, and logs the counts (stderr) when it stops (SIGTERM).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import grpc
import uvloop
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from bench.processes import serve_until_signalled


class Counts:
    spans = 0
    metric_exports = 0


class TraceSink(trace_service_pb2_grpc.TraceServiceServicer):
    async def Export(self, request: Any, context: Any) -> trace_service_pb2.ExportTraceServiceResponse:
        Counts.spans += sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        return trace_service_pb2.ExportTraceServiceResponse()


class MetricsSink(metrics_service_pb2_grpc.MetricsServiceServicer):
    async def Export(self, request: Any, context: Any) -> metrics_service_pb2.ExportMetricsServiceResponse:
        Counts.metric_exports += 1
        return metrics_service_pb2.ExportMetricsServiceResponse()


async def serve(addr: str) -> None:
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceSink(), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(MetricsSink(), server)
    await serve_until_signalled(server, "otlp", addr)
    print(f"spans {Counts.spans} metric_exports {Counts.metric_exports}", file=sys.stderr, flush=True)  # to its log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--addr", default="127.0.0.1:0")
    uvloop.run(serve(parser.parse_args().addr))


if __name__ == "__main__":
    main()
