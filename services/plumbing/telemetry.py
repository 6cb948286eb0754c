"""OpenTelemetry set-up, once per process, and W3C trace-context helpers.

Exports by OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; `OTEL_SDK_DISABLED=true` turns
tracing off. Everything else (`OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, …) is read by
the SDK from the standard variables.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

log = logging.getLogger(__name__)
_lock = threading.Lock()
_configured = False


def configure_telemetry(service_name: str, *, extra_processors: list[SpanProcessor] | None = None) -> None:
    """Installs the global tracer provider; later calls are no-ops (one provider per process)."""
    global _configured
    with _lock:
        if _configured or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
            return
        resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", f"rogatory-{service_name}")})
        provider = TracerProvider(resource=resource)
        for processor in extra_processors or []:
            provider.add_span_processor(processor)
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        _configured = True


def shutdown_telemetry() -> None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def current_trace_headers() -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from_headers(headers: Mapping[str, str] | None) -> Context:
    return propagate.extract(dict(headers or {}))


def client_interceptors() -> list:
    from opentelemetry.instrumentation.grpc import aio_client_interceptors  # noqa: PLC0415

    return list(aio_client_interceptors())
