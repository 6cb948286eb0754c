"""OpenTelemetry set-up, once per process, and W3C trace-context helpers.

Exports by OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; `OTEL_SDK_DISABLED=true` turns
tracing off. Everything else (`OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, …) is read by
the SDK from the standard variables.

While no span processor is installed (no OTLP endpoint, no test exporter) and no
`OTEL_TRACES_SAMPLER` is set, spans are not recorded: trace and span ids are still made
and propagated (outbox rows, NATS headers, timeline trace ids stay meaningful), but no
span object is built that nobody would export. It is about a sixth of a simple RPC's CPU.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

log = logging.getLogger(__name__)
_lock = threading.Lock()
_configured = False
_exporting = False  # set once a span processor is installed


class SampleWhenExported(Sampler):
    """ParentBased(ALWAYS_ON) once spans are exported; until then, ids without recording."""

    def __init__(self) -> None:
        self._delegate = ParentBased(ALWAYS_ON)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if not _exporting:
            return SamplingResult(Decision.DROP)
        return self._delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return "SampleWhenExported{ParentBased{AlwaysOn}}"


def configure_telemetry(service_name: str, *, extra_processors: list[SpanProcessor] | None = None) -> None:
    """Installs the global tracer provider; later calls are no-ops (one provider per process)."""
    global _configured
    with _lock:
        if _configured or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
            return
        resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", f"rogatory-{service_name}")})
        sampler = None if os.environ.get("OTEL_TRACES_SAMPLER") else SampleWhenExported()  # None: the SDK reads the variable
        provider = TracerProvider(resource=resource, sampler=sampler)
        trace.set_tracer_provider(provider)
        _configured = True
    for processor in extra_processors or []:
        add_span_processor(processor)
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

        add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))


def add_span_processor(processor: SpanProcessor) -> None:
    """Exports spans through `processor` from now on (configuring the SDK first if needed)."""
    global _exporting
    configure_telemetry("rogatory")
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.add_span_processor(processor)
        _exporting = True


#: Where a service says what an event is about (e.g. the matter, its case and courts), so the
#: relay's and consumers' spans carry the same attributes as the calls that made the event.
EventAttributes = Callable[[str, bytes], dict[str, Any]]
_event_attribute_sources: dict[str, EventAttributes] = {}


def add_event_attributes(source: EventAttributes) -> None:
    """Registers `source(event_type, payload)`; idempotent, so each host's wiring may call it."""
    _event_attribute_sources[f"{source.__module__}.{source.__qualname__}"] = source


def event_span_attributes(event_type: str, payload: bytes) -> dict[str, Any]:
    """Span attributes for an event; a source that fails adds nothing (tracing never breaks delivery)."""
    attributes: dict[str, Any] = {}
    for source in _event_attribute_sources.values():
        try:
            attributes.update(source(event_type, payload))
        except Exception:  # noqa: BLE001 - a malformed payload is the consumer's problem, not the span's
            log.debug("no span attributes for %s", event_type, exc_info=True)
    return attributes


def shutdown_telemetry() -> None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


_tracer = tracer("rogatory.resources")


@contextmanager
def continuing_trace(
    span_name: str, attributes: Mapping[str, str], traceparent: str, kind: SpanKind = SpanKind.INTERNAL
) -> Iterator[trace.Span]:
    """A span in the trace a resource was created in (its stored `traceparent`), linked both
    ways with the caller's span — one matter, notice or control, one trace, however many
    calls and scanner passes act on it later. The caller's span gets `attributes` too, so it
    can be found from the resource. Without a stored context the span is the caller's child."""
    caller = trace.get_current_span()
    caller.set_attributes(attributes)
    links = [Link(caller.get_span_context())] if caller.get_span_context().is_valid else []
    parent = context_from_headers({"traceparent": traceparent}) if traceparent else None
    with _tracer.start_as_current_span(span_name, context=parent, kind=kind, links=links, attributes=attributes) as span:
        if span.get_span_context().trace_id != caller.get_span_context().trace_id:
            caller.add_link(span.get_span_context())  # and back: from the call's trace to the resource's
        yield span


def current_trace_id() -> str:
    """The W3C trace id (32 hex digits) of the current span; "" outside any trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def current_trace_headers() -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from_headers(headers: Mapping[str, str] | None) -> Context:
    return propagate.extract(dict(headers or {}))


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    from opentelemetry.instrumentation.grpc import aio_client_interceptors  # noqa: PLC0415

    return list(aio_client_interceptors())
