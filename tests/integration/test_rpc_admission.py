"""What every RPC of every service checks before its handler runs (issue 15): who is calling
(point 5: a credential naming no known court or agency is UNAUTHENTICATED) and whether the
request decodes at all (point 9: malformed protobuf is INVALID_ARGUMENT, never UNKNOWN).

The three services run in this process on real SQLite files and a real nats-server and are
called over real gRPC with a generic `channel.unary_unary` that sends raw bytes, so the
request never passes through a generated serializer. The methods come from the descriptors
of the services each host registered, checked against every service the protos define, so
a new RPC or a new service cannot be missed.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import rogatory
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import DecodeError
from google.protobuf.message_factory import GetMessageClass
from google.rpc import error_details_pb2, status_pb2
from rogatory.registry.v1 import registry_pb2 as rg
from rogatory.registry.v1 import registry_pb2_grpc

from services.assistance.main import wire as wire_assistance
from services.delegation.main import wire as wire_delegation
from services.plumbing.auth import dev_credentials
from services.plumbing.config import Settings
from services.plumbing.host import ServiceHost
from services.plumbing.nats_server import EmbeddedNatsServer
from services.registry.main import wire as wire_registry
from tests.e2e.test_registry_e2e import create_request

Metadata = tuple[tuple[str, str], ...]
COURT = dev_credentials("court", "gd0112")


@dataclass(frozen=True)
class Method:
    service: str  # which host serves it
    descriptor: MethodDescriptor

    @property
    def path(self) -> str:
        return f"/{self.descriptor.containing_service.full_name}/{self.descriptor.name}"

    def __str__(self) -> str:
        return self.path


@dataclass
class Hosts:
    hosts: dict[str, ServiceHost]
    channels: dict[str, grpc.aio.Channel]

    def methods(self) -> list[Method]:
        pool = descriptor_pool.Default()
        return [
            Method(service, method)
            for service, host in self.hosts.items()
            for name in host.service_names
            for method in pool.FindServiceByName(name).methods
        ]

    async def call(self, method: Method, body: bytes, metadata: Metadata) -> grpc.aio.AioRpcError | None:
        """Sends `body` as it is: no serializer on either side (None is gRPC's identity)."""
        raw = self.channels[method.service].unary_unary(method.path, request_serializer=None, response_deserializer=None)
        try:
            await raw(body, metadata=metadata, timeout=10)
        except grpc.aio.AioRpcError as error:
            return error
        return None


@pytest.fixture(scope="module")
async def hosts(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Hosts]:
    tmp_path: Path = tmp_path_factory.mktemp("rpc-admission")
    nats_server = EmbeddedNatsServer(tmp_path / "nats").start()
    config = Settings(  # type: ignore[call-arg]
        NATS_URL=nats_server.url,
        ROGATORY_DATA_DIR=tmp_path,
        REGISTRY_ADDR="127.0.0.1:0",
        DELEGATION_ADDR="127.0.0.1:0",
        ASSISTANCE_ADDR="127.0.0.1:0",
        ROGATORY_SHUTDOWN_GRACE=2,
        ROGATORY_SCAN_INTERVAL=0,
    )
    started: dict[str, ServiceHost] = {}
    channels: dict[str, grpc.aio.Channel] = {}
    try:
        for service, wire in (("registry", wire_registry), ("delegation", wire_delegation), ("assistance", wire_assistance)):
            started[service] = host = ServiceHost(service, config)
            await host.start(wire)
            channels[service] = grpc.aio.insecure_channel(host.address)
        yield Hosts(started, channels)
    finally:
        for channel in channels.values():
            await channel.close()
        for host in reversed(list(started.values())):
            await host.stop()
        nats_server.stop()


def services_in_the_protos() -> set[str]:
    names: set[str] = set()
    for module in pkgutil.walk_packages(rogatory.__path__, "rogatory."):
        if module.name.endswith("_pb2"):
            names.update(importlib.import_module(module.name).DESCRIPTOR.services_by_name)
    return names


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo of the call's google.rpc.Status, which must match the call's own code."""
    details = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
    assert details is not None, f"{error.code()} {error.details()!r}: no google.rpc.Status details"
    status = status_pb2.Status.FromString(details)
    assert status.code == error.code().value[0]
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert infos, f"{error.code()} {error.details()!r}: no ErrorInfo"
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    return info


def test_every_service_in_the_protos_is_served(hosts: Hosts) -> None:
    served = {m.descriptor.containing_service.name for m in hosts.methods()}
    assert served == services_in_the_protos()


# --- point 5: a credential naming no known court or agency ------------------------------------

STRANGERS = {
    "no such court": dev_credentials("court", "xx9999"),
    "a court id with a suffix": dev_credentials("court", "gd0112.x"),
    "no such agency": dev_credentials("agency", "bank-nowhere"),
    "a court id as an agency": dev_credentials("agency", "gd0112"),
}


async def test_i15_p5_unknown_court_or_agency_is_unauthenticated_on_every_method(hosts: Hosts) -> None:
    answers: dict[str, str] = {}
    for method in hosts.methods():
        for who, metadata in STRANGERS.items():
            error = await hosts.call(method, b"", metadata)
            code = error.code() if error else grpc.StatusCode.OK
            reason = error_info(error).reason if error and code is grpc.StatusCode.UNAUTHENTICATED else ""
            if (code, reason) != (grpc.StatusCode.UNAUTHENTICATED, "UNKNOWN_PRINCIPAL"):
                answers[f"{method} as {who}"] = f"{code.name} {reason}"
    assert not answers, answers


async def test_i15_p5_get_case_by_an_unknown_court_is_unauthenticated_not_internal(hosts: Hosts) -> None:
    stub = registry_pb2_grpc.RegistryServiceStub(hosts.channels["registry"])
    case = await stub.CreateCase(create_request(150_005, "gd0112", "粤0112", request_id="i15-p5"), metadata=COURT)
    for court in ("xx9999", "gd0112.x"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetCase(rg.GetCaseRequest(name=case.name), metadata=dev_credentials("court", court))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, caught.value.details()
        assert error_info(caught.value).reason == "UNKNOWN_PRINCIPAL"
    assert (await stub.GetCase(rg.GetCaseRequest(name=case.name), metadata=COURT)).name == case.name


async def test_i15_p5_admins_and_known_parties_still_pass(hosts: Hosts) -> None:
    stub = registry_pb2_grpc.RegistryServiceStub(hosts.channels["registry"])
    for kind, principal_id in (("admin", "anyone"), ("agency", "bank-icbc"), ("court", "spc"), ("court", "gd0112")):
        await stub.GetCourt(rg.GetCourtRequest(name="courts/gd0112"), metadata=dev_credentials(kind, principal_id))


# --- point 9: malformed protobuf --------------------------------------------------------------

UNKNOWN_FIELD = 9999  # no request message has a field this high


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def length_delimited(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


def string_path(message: Descriptor, seen: frozenset[str] = frozenset()) -> list[FieldDescriptor] | None:
    """Fields leading from `message` to a string field (through nested messages), or None."""
    for field in message.fields:
        if field.type == FieldDescriptor.TYPE_STRING:
            return [field]
    for field in message.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.full_name not in seen:
            inner = string_path(field.message_type, seen | {message.full_name})
            if inner is not None:
                return [field, *inner]
    return None


def invalid_utf8_in_a_string(message: Descriptor) -> bytes:
    path = string_path(message)
    assert path is not None, f"{message.full_name} has no string field"
    body = b"\xc3\x28\xff"  # not UTF-8: a lead byte without its continuation, and 0xFF
    for field in reversed(path):
        body = length_delimited(field.number, body)
    return body


def malformed_bodies(message: Descriptor, *, has_strings: bool = True) -> Iterator[tuple[str, bytes]]:
    """`has_strings`: the message must have a string field (every request of the protos has one)."""
    yield "garbage", b"\xde\xad\xbe\xef" * 4 + b"\xff" * 12
    yield "truncated varint", tag(UNKNOWN_FIELD, 0) + b"\x96"
    yield "wire type 7", tag(UNKNOWN_FIELD, 7) + b"\x01"
    if has_strings or string_path(message) is not None:
        yield "invalid UTF-8 in a string field", invalid_utf8_in_a_string(message)
    depth = 1000  # far past protobuf's recursion limit (100)
    yield "deeply nested unknown groups", tag(UNKNOWN_FIELD, 3) * depth + tag(UNKNOWN_FIELD, 4) * depth


async def test_i15_p9_malformed_requests_are_invalid_argument_on_every_method(hosts: Hosts) -> None:
    answers: dict[str, str] = {}
    for method in hosts.methods():
        request_type = method.descriptor.input_type
        for kind, body in malformed_bodies(request_type):
            with pytest.raises(DecodeError):  # the bytes really are malformed for this message
                GetMessageClass(request_type).FromString(body)
            error = await hosts.call(method, body, COURT)
            code = error.code() if error else grpc.StatusCode.OK
            reason = error_info(error).reason if code is grpc.StatusCode.INVALID_ARGUMENT and error else ""
            if (code, reason) != (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST"):
                answers[f"{method} {kind}"] = f"{code.name} {reason} {error.details() if error else ''}"
    assert not answers, answers


async def test_i15_p9_a_well_formed_request_after_malformed_ones_is_answered(hosts: Hosts) -> None:
    stub = registry_pb2_grpc.RegistryServiceStub(hosts.channels["registry"])
    court = await stub.GetCourt(rg.GetCourtRequest(name="courts/gd0112"), metadata=COURT)
    assert court.name == "courts/gd0112"


# --- the standard services every server carries: health and reflection -----------------------


def standard_methods() -> list[MethodDescriptor]:
    """Every method of gRPC health and server reflection (unary, server- and bidi-streaming)."""
    from grpc_health.v1 import health_pb2  # noqa: PLC0415
    from grpc_reflection.v1alpha import reflection_pb2  # noqa: PLC0415

    services = (health_pb2.DESCRIPTOR.services_by_name["Health"], reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"])
    return [method for service in services for method in service.methods]


async def call_raw(channel: grpc.aio.Channel, method: MethodDescriptor, body: bytes) -> grpc.aio.AioRpcError | None:
    """Sends `body` to a method of any arity, without a serializer, and reads what it answers."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    try:
        if method.client_streaming:
            call = channel.stream_stream(path, request_serializer=None, response_deserializer=None)(iter([body]), timeout=10)
            async for _ in call:
                pass
        elif method.server_streaming:
            async for _ in channel.unary_stream(path, request_serializer=None, response_deserializer=None)(body, timeout=10):
                pass
        else:
            await channel.unary_unary(path, request_serializer=None, response_deserializer=None)(body, timeout=10)
    except grpc.aio.AioRpcError as error:
        return error
    return None


async def test_malformed_requests_to_health_and_reflection_are_invalid_argument_on_every_server(hosts: Hosts) -> None:
    answers: dict[str, str] = {}
    for service, channel in hosts.channels.items():
        for method in standard_methods():
            for kind, body in malformed_bodies(method.input_type, has_strings=False):  # HealthListRequest has none
                with pytest.raises(DecodeError):
                    GetMessageClass(method.input_type).FromString(body)
                error = await call_raw(channel, method, body)
                code = error.code() if error else grpc.StatusCode.OK
                reason = error_info(error).reason if code is grpc.StatusCode.INVALID_ARGUMENT and error else ""
                if (code, reason) != (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST"):
                    answers[f"{service} {method.full_name} {kind}"] = f"{code.name} {reason} {error.details() if error else ''}"
    assert not answers, answers


async def test_health_and_reflection_still_answer_well_formed_requests(hosts: Hosts) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: PLC0415
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc  # noqa: PLC0415

    for host in hosts.hosts.values():
        channel = hosts.channels[host.service]
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()
        requests = [reflection_pb2.ServerReflectionRequest(list_services="")]
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(iter(requests), timeout=10)
        listed = [response async for response in reflection]
        names = {s.name for s in listed[0].list_services_response.service}
        assert set(host.service_names) <= names and "grpc.health.v1.Health" in names
