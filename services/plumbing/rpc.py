"""Server-side RPC instrumentation, applied once when a servicer is registered.

Every unary method is wrapped so that it (1) continues the caller's W3C trace context in a
SERVER span named and attributed as the OpenTelemetry RPC conventions say, and (2) maps
exceptions to rich statuses (services/plumbing/errors.py). Doing this at registration
instead of through grpc.aio's per-call interceptor chain (and OpenTelemetry's aio
interceptor) removes two interceptor hops and their per-call allocations from every RPC:
measured on GetCourt at 64 in flight, 2,550 → see bench/README.md.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode

from registry.errors import DomainError
from services.plumbing import auth, deadlines
from services.plumbing.db import DatabaseFull, DatabaseUnavailable
from services.plumbing.errors import fault_status, internal_status, status_for
from services.plumbing.ids import new_id
from services.plumbing.telemetry import tracer
from services.plumbing.tls import peer_certificate

log = logging.getLogger(__name__)
_tracer = tracer("rogatory.rpc")

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def instrumented(servicer: object, service: ServiceDescriptor, *, dev_tokens: bool = True) -> object:
    """A stand-in for `servicer` whose methods are traced and never leak an exception."""
    methods = {
        m.name: wrap_unary(getattr(servicer, m.name), service.full_name, m.name, dev_tokens=dev_tokens) for m in service.methods
    }
    return SimpleNamespace(**methods)


def wrap_unary(behavior: Behavior, service: str, method: str, *, dev_tokens: bool = True) -> Behavior:
    span_name = f"{service}/{method}"
    attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}

    async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
        metadata = context.invocation_metadata() or ()
        parent = propagate.extract(dict(metadata))
        with _tracer.start_as_current_span(
            span_name, context=parent, kind=SpanKind.SERVER, attributes=attributes, record_exception=False,
            set_status_on_exception=False,
        ) as span:  # fmt: skip
            try:
                principal = auth.principal_of(metadata, peer_certificate(context), dev_tokens=dev_tokens)
                auth.bind(principal)  # task-local: this call only
                deadlines.bind(context.time_remaining())  # database calls answer before the caller's deadline
                response = await behavior(request, context)
                span.set_attribute("rpc.grpc.status_code", 0)
                return response
            except DomainError as error:
                status = status_for(error)
            except DatabaseUnavailable as exc:
                log.warning("%s: database %s: %s", span_name, exc.reason, exc)
                status = _database_status(exc)
            except deadlines.DeadlineExceeded:
                status = fault_status(
                    code_pb2.DEADLINE_EXCEEDED,
                    "DEADLINE_EXCEEDED",
                    "the call's deadline passed while it waited for the database; retry (a write with its request_id)",
                )
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                reference = new_id()
                log.exception("%s failed (reference %s)", span_name, reference)
                span.record_exception(exc)
                status = internal_status(reference)
            span.set_attribute("rpc.grpc.status_code", status.code)
            if status.code in SERVER_FAULTS:
                span.set_status(Status(StatusCode.ERROR, status.message))
        await context.abort_with_status(rpc_status.to_status(status))

    return handler


def _database_status(error: DatabaseUnavailable) -> status_pb2.Status:
    if isinstance(error, DatabaseFull):
        return fault_status(code_pb2.RESOURCE_EXHAUSTED, error.reason, "the database's disk is full; retry later")
    return fault_status(code_pb2.UNAVAILABLE, error.reason, "the database is unavailable; retry later")


# OpenTelemetry RPC conventions: only these codes mark a server span as failed.
SERVER_FAULTS = {2, 4, 12, 13, 14, 15}  # UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS
