"""The Python client (rogatory_client) against an in-process gRPC server that answers as scripted:
errors from the services' own Status mapping become typed exceptions, a retry resends the same
`request_id`, only transient failures are retried, the credential travels as metadata or as a
client certificate, and the synchronous client is the asynchronous one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import status_pb2
from grpc_status import rpc_status
from rogatory.registry.v1 import registry_pb2 as pb
from rogatory.registry.v1 import registry_pb2_grpc

from registry import errors as domain
from rogatory_client import (
    NO_RETRIES,
    Aborted,
    AlreadyExists,
    AsyncClient,
    Client,
    Credentials,
    DeadlineExceeded,
    Endpoints,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    RetryPolicy,
    RogatoryError,
    Unauthenticated,
    Unavailable,
    error_from_rpc,
)
from services.plumbing.errors import status_for, unavailable_status
from services.plumbing.tls import peer_certificate, principal_name, server_credentials
from services.tools.certificates import Authority

FAST = RetryPolicy(initial_backoff=0.001, max_backoff=0.01, jitter=0.001)


def bad_case() -> domain.InvalidArgument:
    return domain.InvalidArgument.of(
        [
            domain.FieldViolation(
                "case.case_number", "the sequence number must not start with 0, got 0123", "SEQUENCE_LEADING_ZERO"
            ),
            domain.FieldViolation("case.parties[1].id_number", "not a valid unified social credit code", "BAD_ID_NUMBER"),
        ]
    )


@dataclass
class ScriptedRegistry(registry_pb2_grpc.RegistryServiceServicer):
    """CreateCase answers the statuses in `failures` first, then a case; it records what each attempt carried."""

    failures: list[status_pb2.Status] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    principals: list[tuple[str, str] | None] = field(default_factory=list)
    hang: asyncio.Event | None = None

    async def CreateCase(self, request: pb.CreateCaseRequest, context: Any) -> pb.Case:
        self.request_ids.append(request.request_id)
        self.authorizations.append(dict(context.invocation_metadata()).get("authorization", ""))
        certificate = peer_certificate(context)
        self.principals.append(principal_name(certificate) if certificate else None)
        if self.hang is not None:
            await self.hang.wait()
        if self.failures:
            await context.abort_with_status(rpc_status.to_status(self.failures.pop(0)))
        return pb.Case(name="courts/gd0112/cases/2023-enf-4242", case_number=request.case.case_number)


@dataclass
class Server:
    servicer: ScriptedRegistry
    address: str

    def endpoints(self) -> Endpoints:
        return Endpoints(registry=self.address, delegation=self.address, assistance=self.address)


async def serve(servicer: ScriptedRegistry, credentials: grpc.ServerCredentials | None = None) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    registry_pb2_grpc.add_RegistryServiceServicer_to_server(servicer, server)
    port = server.add_secure_port("127.0.0.1:0", credentials) if credentials else server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
async def registry() -> AsyncIterator[Server]:
    servicer = ScriptedRegistry()
    server, address = await serve(servicer)
    try:
        yield Server(servicer, address)
    finally:
        if servicer.hang:
            servicer.hang.set()
        await server.stop(None)


def case_request(request_id: str = "") -> pb.CreateCaseRequest:
    return pb.CreateCaseRequest(parent="courts/gd0112", request_id=request_id, case=pb.Case(case_number="（2023）粤0112执4242号"))


def client(server: Server, **kwargs: Any) -> AsyncClient:
    kwargs.setdefault("retry", FAST)
    return AsyncClient(Credentials.dev_token("court:gd0112"), server.endpoints(), **kwargs)


# --- errors ---------------------------------------------------------------------------------


def rpc_error(status: status_pb2.Status) -> grpc.aio.AioRpcError:
    grpc_status = rpc_status.to_status(status)
    return grpc.aio.AioRpcError(
        grpc_status.code, grpc.aio.Metadata(), grpc.aio.Metadata(*grpc_status.trailing_metadata), status.message
    )


def test_an_invalid_argument_carries_its_reason_and_every_field_violation() -> None:
    error = error_from_rpc(rpc_error(status_for(bad_case())))
    assert isinstance(error, InvalidArgument) and isinstance(error, RogatoryError) and isinstance(error, grpc.RpcError)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (error.reason, error.domain) == ("SEQUENCE_LEADING_ZERO", "rogatory.gov.cn")
    assert error.field_violations == (
        FieldViolation("case.case_number", "SEQUENCE_LEADING_ZERO", "the sequence number must not start with 0, got 0123"),
        FieldViolation("case.parties[1].id_number", "BAD_ID_NUMBER", "not a valid unified social credit code"),
    )
    assert "case.parties[1].id_number: BAD_ID_NUMBER" in str(error)


@pytest.mark.parametrize(
    ("domain_error", "expected"),
    [
        (domain.NotFound("case", "courts/gd0112/cases/x"), NotFound),
        (domain.AlreadyExists("request id reused", reason="REQUEST_ID_IN_USE"), AlreadyExists),
        (domain.FailedPrecondition("case not here yet", reason="CASE_NOT_REGISTERED"), FailedPrecondition),
        (domain.Aborted("changed meanwhile", reason="VERSION_MISMATCH"), Aborted),
        (domain.Unauthenticated("who?", reason="UNKNOWN_PRINCIPAL"), Unauthenticated),
    ],
)
def test_each_code_is_its_exception_class_with_the_error_info(domain_error: domain.DomainError, expected: type) -> None:
    error = error_from_rpc(rpc_error(status_for(domain_error)))
    assert type(error) is expected
    assert error.reason == domain_error.reason
    assert error.metadata == domain_error.metadata
    assert error.field_violations == ()


def test_an_error_without_details_still_has_its_class_and_message() -> None:
    error = error_from_rpc(
        grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "connection refused")
    )
    assert isinstance(error, Unavailable)
    assert (error.reason, error.message, error.status.code) == ("", "connection refused", grpc.StatusCode.UNAVAILABLE.value[0])


def test_resource_info_is_unpacked() -> None:
    from google.protobuf import any_pb2  # noqa: PLC0415
    from google.rpc import code_pb2, error_details_pb2  # noqa: PLC0415

    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ResourceInfo(resource_type="rogatory.gov.cn/Case", resource_name="courts/gd0112/cases/x"))
    error = error_from_rpc(rpc_error(status_pb2.Status(code=code_pb2.NOT_FOUND, message="gone", details=[detail])))
    assert error.resource_info is not None and error.resource_info.resource_name == "courts/gd0112/cases/x"


# --- retries and request_id -------------------------------------------------------------------


async def test_a_retried_create_sends_one_request_id_the_client_made(registry: Server) -> None:
    registry.servicer.failures = [
        unavailable_status("DATABASE_UNAVAILABLE", "down"),
        unavailable_status("DATABASE_UNAVAILABLE", "down"),
    ]
    request = case_request()
    async with client(registry) as rogatory:
        case = await rogatory.registry.CreateCase(request)
    assert case.case_number == "（2023）粤0112执4242号"
    ids = registry.servicer.request_ids
    assert len(ids) == 3 and len(set(ids)) == 1 and ids[0], ids
    assert request.request_id == "", "the caller's message is left as it was"


async def test_a_request_id_the_caller_set_is_the_one_sent(registry: Server) -> None:
    registry.servicer.failures = [unavailable_status("DATABASE_UNAVAILABLE", "down")]
    async with client(registry) as rogatory:
        await rogatory.registry.CreateCase(case_request("6f1c2d1e-0d5e-4a4b-9d1e-2b7c5d1f0a11"))
    assert registry.servicer.request_ids == ["6f1c2d1e-0d5e-4a4b-9d1e-2b7c5d1f0a11"] * 2


async def test_each_call_is_a_new_request_id(registry: Server) -> None:
    async with client(registry) as rogatory:
        await rogatory.registry.CreateCase(case_request())
        await rogatory.registry.CreateCase(case_request())
    assert len(set(registry.servicer.request_ids)) == 2


async def test_case_not_registered_is_retried_but_a_stale_etag_is_not(registry: Server) -> None:
    registry.servicer.failures = [status_for(domain.FailedPrecondition("on its way", reason="CASE_NOT_REGISTERED"))]
    async with client(registry) as rogatory:
        await rogatory.registry.CreateCase(case_request())
        assert len(registry.servicer.request_ids) == 2
        registry.servicer.failures = [status_for(domain.Aborted("changed meanwhile", reason="VERSION_MISMATCH"))]
        with pytest.raises(Aborted) as aborted:
            await rogatory.registry.CreateCase(case_request())
    assert aborted.value.reason == "VERSION_MISMATCH"
    assert len(registry.servicer.request_ids) == 3


@pytest.mark.parametrize(
    "status",
    [status_for(bad_case()), status_for(domain.PermissionDenied("not yours", reason="NOT_CASE_OWNER"))],
    ids=["invalid-argument", "permission-denied"],
)
async def test_a_request_the_service_refused_is_not_sent_again(registry: Server, status: status_pb2.Status) -> None:
    registry.servicer.failures = [status]
    async with client(registry) as rogatory:
        with pytest.raises(RogatoryError) as refused:
            await rogatory.registry.CreateCase(case_request())
    assert refused.value.code().value[0] == status.code
    assert len(registry.servicer.request_ids) == 1


async def test_retries_stop_after_max_attempts_with_the_last_error(registry: Server) -> None:
    registry.servicer.failures = [unavailable_status("DATABASE_UNAVAILABLE", f"down {n}") for n in range(10)]
    async with client(registry, retry=RetryPolicy(max_attempts=3, initial_backoff=0.001, jitter=0)) as rogatory:
        with pytest.raises(Unavailable) as down:
            await rogatory.registry.CreateCase(case_request())
    assert (down.value.reason, down.value.message) == ("DATABASE_UNAVAILABLE", "down 2")
    assert len(registry.servicer.request_ids) == 3


async def test_no_retries_is_one_attempt(registry: Server) -> None:
    registry.servicer.failures = [unavailable_status("DATABASE_UNAVAILABLE", "down")]
    async with client(registry, retry=NO_RETRIES) as rogatory:
        with pytest.raises(Unavailable):
            await rogatory.registry.CreateCase(case_request())
    assert len(registry.servicer.request_ids) == 1


async def test_the_deadline_covers_the_whole_call(registry: Server) -> None:
    registry.servicer.hang = asyncio.Event()  # never answers
    async with client(registry, timeout=0.3) as rogatory:
        started = asyncio.get_running_loop().time()
        with pytest.raises(DeadlineExceeded):
            await rogatory.registry.CreateCase(case_request())
        with pytest.raises(DeadlineExceeded):
            await rogatory.registry.CreateCase(case_request(), timeout=0.1)  # a call's own deadline
        elapsed = asyncio.get_running_loop().time() - started
    assert elapsed < 3, "retries stop at the deadline instead of starting anew"


async def test_an_unreachable_service_is_unavailable() -> None:
    server, address = await serve(ScriptedRegistry())
    await server.stop(None)  # nobody listens there any more
    async with AsyncClient(Credentials.dev_token("court:gd0112"), Endpoints(registry=address), retry=FAST, timeout=2) as rogatory:
        with pytest.raises(Unavailable):
            await rogatory.registry.CreateCase(case_request())


class RefuseFirstAttempt(grpc.aio.UnaryUnaryClientInterceptor):
    """An interceptor inside the client's that fails the first attempt before it is sent."""

    def __init__(self) -> None:
        self.attempts = 0

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        self.attempts += 1
        if self.attempts == 1:
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "no route")
        return await continuation(client_call_details, request)


async def test_a_failure_raised_by_an_inner_interceptor_is_typed_and_retried(registry: Server) -> None:
    refusing = RefuseFirstAttempt()
    async with client(registry, interceptors=[refusing]) as rogatory:
        await rogatory.registry.CreateCase(case_request())
    assert refusing.attempts == 2
    assert len(registry.servicer.request_ids) == 1


# --- credentials ----------------------------------------------------------------------------


async def test_the_token_is_on_every_call_unless_the_call_names_its_own(registry: Server) -> None:
    async with client(registry) as rogatory:
        await rogatory.registry.CreateCase(case_request())
        await rogatory.registry.CreateCase(case_request(), metadata=(("authorization", "Bearer dev:court:ha0122"),))
    assert registry.servicer.authorizations == ["Bearer dev:court:gd0112", "Bearer dev:court:ha0122"]


def test_a_dev_token_names_a_court_an_agency_or_an_admin() -> None:
    assert Credentials.dev_token("court:gd0112").metadata() == (("authorization", "Bearer dev:court:gd0112"),)
    assert Credentials.dev_token("dev:agency:bank-icbc").token == "dev:agency:bank-icbc"
    with pytest.raises(ValueError, match="court:ID"):
        Credentials.dev_token("gd0112")
    assert "BEGIN" not in repr(Credentials(token="dev:admin:ops", root_certificates=b"-----BEGIN CERTIFICATE-----"))


async def test_mutual_tls_the_certificate_names_the_caller(tmp_path: Path) -> None:
    authority = Authority.create()
    (tmp_path / "ca.crt").write_bytes(authority.cert_pem)
    authority.server().write(tmp_path, "server")
    authority.client("court", "gd0112").write(tmp_path, "court-gd0112")
    servicer = ScriptedRegistry()
    tls = server_credentials(str(tmp_path / "server.crt"), str(tmp_path / "server.key"), str(tmp_path / "ca.crt"))
    server, address = await serve(servicer, tls)
    credentials = Credentials.mutual_tls(tmp_path / "ca.crt", tmp_path / "court-gd0112.crt", tmp_path / "court-gd0112.key")
    try:
        async with AsyncClient(credentials, Endpoints(registry=address), retry=FAST) as rogatory:
            await rogatory.registry.CreateCase(case_request())
    finally:
        await server.stop(None)
    assert servicer.principals == [("court", "gd0112")]
    assert servicer.authorizations == [""], "no token beside the certificate"


# --- the synchronous client -----------------------------------------------------------------


async def test_the_synchronous_client_makes_the_same_calls(registry: Server) -> None:
    registry.servicer.failures = [unavailable_status("DATABASE_UNAVAILABLE", "down"), status_for(bad_case())]

    def court_system() -> tuple[pb.Case | None, RogatoryError | None]:
        with Client(Credentials.dev_token("court:gd0112"), registry.endpoints(), retry=FAST) as rogatory:
            try:
                rogatory.registry.CreateCase(case_request())
            except InvalidArgument as error:
                return rogatory.registry.CreateCase(case_request()), error
        return None, None

    # the server runs on this loop: the blocking client waits on a thread of its own
    case, error = await asyncio.to_thread(court_system)
    assert case is not None and case.case_number == "（2023）粤0112执4242号"
    assert error is not None and [v.field for v in error.field_violations] == ["case.case_number", "case.parties[1].id_number"]
    ids = registry.servicer.request_ids
    assert len(ids) == 3 and ids[0] == ids[1] != ids[2]
    assert registry.servicer.authorizations == ["Bearer dev:court:gd0112"] * 3
