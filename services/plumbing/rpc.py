"""Server-side RPC instrumentation, applied once when a servicer is registered.

Every unary method is wrapped so that it (1) continues the caller's W3C trace context in a
SERVER span named and attributed as the OpenTelemetry RPC conventions say, (2) names the
caller from its credential (services/plumbing/auth.py), (3) parses the request itself, so
malformed protobuf is INVALID_ARGUMENT `MALFORMED_REQUEST` instead of grpc.aio's UNKNOWN
(gRPC hands the wrapper the raw bytes; parsing here costs what gRPC's deserializer did),
(4) holds every string field of the request to the text rule (services/plumbing/request_text.py)
and scopes its `request_id` (services/plumbing/idempotency.py) before the handler runs, and
(5) maps exceptions to rich statuses (services/plumbing/errors.py). Doing this at registration
instead of through grpc.aio's per-call interceptor chain (and OpenTelemetry's aio
interceptor) removes two interceptor hops and their per-call allocations from every RPC:
measured on GetCourt at 64 in flight, 2,550 → see bench/README.md.

The standard services every server carries and anyone may call (gRPC health, server
reflection) keep their own servicers but are registered here too (`register_open`), so
their requests are parsed by the same `parse_request`: malformed bytes are INVALID_ARGUMENT
`MALFORMED_REQUEST` there as well, never UNKNOWN.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode

from registry.errors import DomainError, InvalidArgument
from services.plumbing import auth, deadlines, idempotency
from services.plumbing.db import DatabaseFull, DatabaseNotMigrated, DatabaseUnavailable
from services.plumbing.errors import fault_status, internal_status, status_for
from services.plumbing.ids import new_id
from services.plumbing.request_text import check_request_text
from services.plumbing.telemetry import tracer
from services.plumbing.tls import peer_certificate

log = logging.getLogger(__name__)
_tracer = tracer("rogatory.rpc")

Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


def register(server: grpc.aio.Server, servicer: object, service: ServiceDescriptor, authenticator: auth.Authenticator) -> None:
    """Serves every method of `service` from `servicer`, wrapped as the module docstring says;
    in place of the generated `add_…Servicer_to_server`, whose deserializer would parse first."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        m.name: grpc.unary_unary_rpc_method_handler(
            wrap_unary(getattr(servicer, m.name), m, authenticator),
            request_deserializer=None,  # the raw bytes: wrap_unary parses them
            response_serializer=GetMessageClass(m.output_type).SerializeToString,
        )
        for m in service.methods
    }
    _serve(server, service, handlers)


def register_open(server: grpc.aio.Server, servicer: object, service: ServiceDescriptor) -> None:
    """Serves a standard service that answers any caller (health, reflection) from its own
    servicer, in place of its `add_…Servicer_to_server`: no credential, span or request rule,
    but each request (each message of a request stream) parsed by `parse_request`."""
    handlers = {m.name: _parsing_handler(getattr(servicer, m.name), m) for m in service.methods}
    _serve(server, service, handlers)


def _serve(server: grpc.aio.Server, service: ServiceDescriptor, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]) -> None:
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)


def _parsing_handler(behavior: Callable[..., Any], method: MethodDescriptor) -> grpc.RpcMethodHandler[Any, Any]:
    """`behavior` (a coroutine or an async generator, as gRPC allows) given parsed requests,
    for a method of any arity; the raw bytes arrive because no deserializer is set."""
    request_type = GetMessageClass(method.input_type)

    async def parsed(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
        try:
            return parse_request(request_type, raw)
        except InvalidArgument as error:
            await context.abort_with_status(rpc_status.to_status(status_for(error)))

    async def parsed_stream(raws: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Message]:
        async for raw in raws:
            yield await parsed(raw, context)

    async def prepare(raw: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return parsed_stream(raw, context) if method.client_streaming else await parsed(raw, context)

    async def generate(raw: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        async for response in behavior(await prepare(raw, context), context):
            yield response

    async def answer(raw: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return await behavior(await prepare(raw, context), context)

    serialize = GetMessageClass(method.output_type).SerializeToString
    make = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(method.client_streaming, method.server_streaming)]
    respond = generate if inspect.isasyncgenfunction(behavior) else answer  # the servicer's own shape
    return make(respond, request_deserializer=None, response_serializer=serialize)


def parse_request(request_type: type[Message], raw: bytes) -> Message:
    try:
        return request_type.FromString(raw)
    except DecodeError as exc:
        raise InvalidArgument(
            f"the request is not a well-formed {request_type.DESCRIPTOR.full_name}: {exc}",
            reason="MALFORMED_REQUEST",
            metadata={"message_type": request_type.DESCRIPTOR.full_name},
        ) from None


def wrap_unary(behavior: Behavior, method: MethodDescriptor, authenticator: auth.Authenticator) -> Behavior:
    if method.client_streaming or method.server_streaming:
        raise ValueError(f"{method.full_name}: only unary methods are served")  # the contract's choice (DESIGN.md)
    service, request_type = method.containing_service.full_name, GetMessageClass(method.input_type)
    span_name = f"{service}/{method.name}"
    attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method.name}
    keyed = "request_id" in method.input_type.fields_by_name  # scoped to the caller and method (idempotency.py)

    async def handler(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        metadata = context.invocation_metadata() or ()
        parent = propagate.extract(dict(metadata))
        with _tracer.start_as_current_span(
            span_name, context=parent, kind=SpanKind.SERVER, attributes=attributes, record_exception=False,
            set_status_on_exception=False,
        ) as span:  # fmt: skip
            try:
                principal = authenticator.principal_of(metadata, peer_certificate(context))
                auth.bind(principal)  # task-local: this call only
                deadlines.bind(context.time_remaining())  # database calls answer before the caller's deadline
                request = parse_request(request_type, raw)
                if principal is not None:  # without a credential the handler answers UNAUTHENTICATED first
                    check_request_text(request)
                if keyed:
                    idempotency.bind(idempotency.key_of(principal.name if principal else "", span_name, request))
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
    if isinstance(error, DatabaseNotMigrated):  # names a process of the stack, nothing of the database
        return fault_status(code_pb2.UNAVAILABLE, error.reason, f"{error}; retry later")
    return fault_status(code_pb2.UNAVAILABLE, error.reason, "the database is unavailable; retry later")


# OpenTelemetry RPC conventions: only these codes mark a server span as failed.
SERVER_FAULTS = {2, 4, 12, 13, 14, 15}  # UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS
