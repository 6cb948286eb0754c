"""Whole requests over gRPC against the real services (issue 6 point 8).

The three services run in this process on real SQLite files and a real nats-server, as in
tests/integration/test_matter_trace.py. Requests are generated from the protobuf messages
(tests/property/proto_strategies.py), arbitrary or mutated from a valid one, and sent with
an arbitrary credential. Every answer must be OK or one specific status code with
`google.rpc.Status` details (ErrorInfo with a reason; BadRequest with field violations for
INVALID_ARGUMENT) — never UNKNOWN or INTERNAL, never a stack trace — and a refused request
must leave the service's tables and outbox as they were.

Hypothesis drives the examples from a worker thread (it has no asyncio runner of its own);
each call and each row count runs on the test's event loop, where the servers live.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from rogatory.assistance.v1 import assistance_pb2 as asst
from rogatory.assistance.v1 import assistance_pb2_grpc
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.delegation.v1 import delegation_pb2_grpc
from rogatory.registry.v1 import registry_pb2 as rg
from rogatory.registry.v1 import registry_pb2_grpc
from sqlalchemy import func, inspect, select, table

from registry.text import text_problem
from services.assistance.main import wire as wire_assistance
from services.delegation.main import wire as wire_delegation
from services.delegation.projector import wire as wire_projector
from services.plumbing.auth import dev_credentials
from services.plumbing.config import Settings
from services.plumbing.host import ServiceHost
from services.plumbing.nats_server import EmbeddedNatsServer
from services.registry.main import wire as wire_registry
from services.tools.demo import freeze_request, seed_case_request, until_case_replicated
from tests.property.proto_strategies import build, messages, mutated

# The servers share this process and draw from the global `random` (NATS reconnect jitter, ids)
# while hypothesis generates in its thread; hypothesis takes that for the strategies' use of it.
pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")

#: What a refusal may be; anything else (UNKNOWN, INTERNAL, UNAVAILABLE, …) fails the property.
ALLOWED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
#: The tables RPC handlers write, per service; consumers' tables (inbox, replicas, read
#: models, audit log) change on their own schedule and are not counted.
COMMAND_TABLES = {
    "registry": ("enforcement_case", "case_party", "outbox"),
    "delegation": ("delegation", "delegation_transition", "delegation_deadline", "outbox"),
    "assistance": ("assistance_notice", "assistance_notice_transition", "seizure", "outbox"),
}
MAX_MESSAGE_BYTES = Settings().max_message_bytes  # type: ignore[call-arg]
#: Fewer than the unit properties in CI (each example is a few RPCs and row counts); the
#: thorough profile's count otherwise.
RPC_EXAMPLES = settings(max_examples=100) if settings.default.max_examples <= 150 else settings()

REQUESTING, ENTRUSTED = "gd0112", "ha0122"
known_credentials = st.sampled_from(
    [
        *[dev_credentials("court", REQUESTING), dev_credentials("court", ENTRUSTED)] * 3,
        dev_credentials("court", "zj0326"),
        dev_credentials("court", "ha01"),  # superiors of the entrusted court may extend deadlines
        dev_credentials("court", "ha"),
        dev_credentials("court", "gd01"),  # a superior of the requesting court
        dev_credentials("court", "nope"),
        dev_credentials("agency", "bank-icbc"),
        dev_credentials("admin", "ops"),
        (),
        (("authorization", "Bearer"),),
        (("authorization", "Basic dev:court:gd0112"),),
        (("authorization", "Bearer dev:court:"),),
    ]
)
#: Mostly real callers, so requests get past authentication to the checks behind it.
credentials = st.one_of(
    known_credentials,
    st.sampled_from(["", "dev:court:gd0112 x", "dev:court:" + "a" * 65, "dev:court:../x", "dev:x:y", "☃", "a" * 4000]).map(
        lambda token: (("authorization", f"Bearer {token}"),) if token.isascii() else (("authorization-bin", token.encode()),)
    ),
)


@dataclass
class Stack:
    hosts: dict[str, ServiceHost]
    loop: asyncio.AbstractEventLoop
    channels: dict[str, grpc.aio.Channel]
    case_name: str
    delegation: dg.Delegation
    tables: dict[str, list[str]] = field(default_factory=dict)  # service → its command tables there are

    def run(self, coroutine: Awaitable[Any]) -> Any:
        """Runs `coroutine` on the servers' loop from the hypothesis thread."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)  # type: ignore[arg-type]

    async def counts(self, service: str) -> dict[str, int]:
        """The rows of each of the service's command tables, counted in one statement."""
        db = self.hosts[service].db
        async with db.read() as conn:
            if service not in self.tables:  # the migrations made them before the service started
                present = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
                self.tables[service] = [t for t in COMMAND_TABLES[service] if t in present]
            names = self.tables[service]
            counted = select(*(select(func.count()).select_from(table(t)).scalar_subquery() for t in names))
            return dict(zip(names, (await conn.execute(counted)).one(), strict=True))


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    tmp_path: Path = tmp_path_factory.mktemp("property-rpc")
    nats_server = EmbeddedNatsServer(tmp_path / "nats").start()
    config = Settings(  # type: ignore[call-arg]
        NATS_URL=nats_server.url,
        ROGATORY_DATA_DIR=tmp_path,
        REGISTRY_ADDR="127.0.0.1:0",
        DELEGATION_ADDR="127.0.0.1:0",
        ASSISTANCE_ADDR="127.0.0.1:0",
        TURNAROUND_ADDR="127.0.0.1:0",
        ROGATORY_SHUTDOWN_GRACE=2,
        ROGATORY_SCAN_INTERVAL=0,  # no scanner writing beside the calls under test
    )
    started: dict[str, ServiceHost] = {}
    channels: dict[str, grpc.aio.Channel] = {}
    try:
        wires = {
            "registry": wire_registry,
            "delegation": wire_delegation,
            "assistance": wire_assistance,
            "turnaround": wire_projector,
        }
        for service, wire in wires.items():  # the projector: GetTurnaroundStatistics reads its database
            started[service] = host = ServiceHost(service, config)
            await host.start(wire)
            channels[service] = grpc.aio.insecure_channel(host.address)
        case = await registry_pb2_grpc.RegistryServiceStub(channels["registry"]).CreateCase(
            seed_case_request(515151), metadata=dev_credentials("court", REQUESTING)
        )
        stub = delegation_pb2_grpc.DelegationServiceStub(channels["delegation"])
        delegation = await until_case_replicated(
            lambda: stub.CreateDelegation(freeze_request(case.name), metadata=dev_credentials("court", REQUESTING))
        )
        yield Stack(started, asyncio.get_running_loop(), channels, case.name, delegation)
    finally:
        for channel in channels.values():
            await channel.close()
        for host in reversed(list(started.values())):
            await host.stop()
        nats_server.stop()


def status_of(error: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return status_pb2.Status.FromString(value)
    return None


def check_answer(
    stack: Stack,
    service: str,
    request: Message,
    call: Callable[[], Awaitable[Any]],
    before_extra: Callable[[], Awaitable[Any]] | None = None,
) -> Any:
    """Makes the call; asserts the answer is OK or a specific code with details and that a refusal wrote nothing."""

    async def attempt() -> tuple[Any, grpc.aio.AioRpcError | None, dict[str, int], dict[str, int], Any, Any]:
        before = await stack.counts(service)
        extra_before = await before_extra() if before_extra else None
        try:
            answer, error = await call(), None
        except grpc.aio.AioRpcError as exc:
            answer, error = None, exc
        after = await stack.counts(service)
        extra_after = await before_extra() if before_extra else None
        return answer, error, before, after, extra_before, extra_after

    answer, error, before, after, extra_before, extra_after = stack.run(attempt())
    if error is None:
        return answer
    code, message = error.code(), error.details() or ""
    assert code in ALLOWED, f"{code}: {message}"
    assert "Traceback" not in message and 'File "' not in message, message
    assert len(message) <= 2000, f"{code}: a {len(message)}-character message"
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:  # only gRPC's own size limit, which carries no details
        assert request.ByteSize() > MAX_MESSAGE_BYTES, f"RESOURCE_EXHAUSTED for a {request.ByteSize()}-byte request: {message}"
    else:
        status = status_of(error)
        assert status is not None and status.code == code.value[0], f"{code}: no google.rpc.Status details"
        infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
        assert len(infos) == 1, status
        info = error_details_pb2.ErrorInfo()
        infos[0].Unpack(info)
        assert info.reason and info.domain, info
        if code is grpc.StatusCode.INVALID_ARGUMENT:
            bad = [d for d in status.details if d.Is(error_details_pb2.BadRequest.DESCRIPTOR)]
            assert len(bad) == 1, f"INVALID_ARGUMENT without BadRequest: {message}"
            request = error_details_pb2.BadRequest()
            bad[0].Unpack(request)
            assert request.field_violations and all(v.field and v.description for v in request.field_violations)
    assert before == after, f"{code} ({message}) but rows changed: {before} → {after}"
    assert extra_before == extra_after, f"{code} ({message}) but the target changed"
    return None


def registry(stack: Stack) -> registry_pb2_grpc.RegistryServiceStub:
    return registry_pb2_grpc.RegistryServiceStub(stack.channels["registry"])


def delegations(stack: Stack) -> delegation_pb2_grpc.DelegationServiceStub:
    return delegation_pb2_grpc.DelegationServiceStub(stack.channels["delegation"])


def any_request(cls: type[Message], valid: Message | None = None) -> st.SearchStrategy[Message]:
    """Arbitrary messages of `cls`, and (when given) `valid` with a few fields broken."""
    arbitrary = messages(cls.DESCRIPTOR).map(lambda values: build(cls, values))
    return st.one_of(arbitrary, mutated(valid)) if valid is not None else arbitrary


# --- registry ------------------------------------------------------------------------------------


async def test_create_case_answers_ok_or_a_specific_error(stack: Stack) -> None:
    valid = seed_case_request(1)

    @RPC_EXAMPLES
    @given(any_request(rg.CreateCaseRequest, valid), st.integers(1, 2**31 - 1), credentials)
    def check(request: rg.CreateCaseRequest, sequence: int, metadata: Any) -> None:
        if request.case.case_number == valid.case.case_number:
            request.case.case_number = f"（2020）粤0112执{sequence}号"  # a fresh case now and then
        check_answer(stack, "registry", request, lambda: registry(stack).CreateCase(request, metadata=metadata))

    await asyncio.to_thread(check)


async def test_parse_case_number_always_answers(stack: Stack) -> None:
    @RPC_EXAMPLES
    @given(any_request(rg.ParseCaseNumberRequest))
    def check(request: rg.ParseCaseNumberRequest) -> None:
        answer = check_answer(
            stack,
            "registry",
            request,
            lambda: registry(stack).ParseCaseNumber(request, metadata=dev_credentials("court", REQUESTING)),
        )
        if text_problem(request.case_number):  # the text rule holds for every request (issue 15 point 11)
            assert answer is None, "text with control, bidirectional-control or only invisible characters is refused"
            return
        assert answer is not None, "ParseCaseNumber answers every other text with a verdict, not an error"
        assert answer.valid != bool(answer.violations)

    await asyncio.to_thread(check)


async def test_registry_reads_answer_ok_or_a_specific_error(stack: Stack) -> None:
    methods = {
        rg.ListCasesRequest: lambda s: registry(s).ListCases,
        rg.ListCourtsRequest: lambda s: registry(s).ListCourts,
        rg.ListAgenciesRequest: lambda s: registry(s).ListAgencies,
        rg.GetCaseRequest: lambda s: registry(s).GetCase,
        rg.GetCourtRequest: lambda s: registry(s).GetCourt,
        rg.GetAgencyRequest: lambda s: registry(s).GetAgency,
        rg.ListCourtSuperiorsRequest: lambda s: registry(s).ListCourtSuperiors,
        rg.CloseCaseRequest: lambda s: registry(s).CloseCase,
    }
    requests = st.one_of(*(any_request(cls) for cls in methods))

    @RPC_EXAMPLES
    @given(requests, credentials)
    def check(request: Message, metadata: Any) -> None:
        method = methods[type(request)](stack)
        check_answer(stack, "registry", request, lambda: method(request, metadata=metadata))

    await asyncio.to_thread(check)


# --- delegation ----------------------------------------------------------------------------------


async def test_create_delegation_answers_ok_or_a_specific_error(stack: Stack) -> None:
    valid = freeze_request(stack.case_name)

    @RPC_EXAMPLES
    @given(any_request(dg.CreateDelegationRequest, valid), credentials)
    def check(request: dg.CreateDelegationRequest, metadata: Any) -> None:
        if request.request_id == valid.request_id:
            request.request_id = str(uuid.uuid4())
        check_answer(stack, "delegation", request, lambda: delegations(stack).CreateDelegation(request, metadata=metadata))

    await asyncio.to_thread(check)


LIFECYCLE = {
    dg.AcknowledgeDelegationRequest: "AcknowledgeDelegation",
    dg.StartDelegationRequest: "StartDelegation",
    dg.CompleteDelegationRequest: "CompleteDelegation",
    dg.ReturnDelegationForSupplementRequest: "ReturnDelegationForSupplement",
    dg.SupplementDelegationRequest: "SupplementDelegation",
    dg.ReturnDelegationRequest: "ReturnDelegation",
    dg.WithdrawDelegationRequest: "WithdrawDelegation",
    dg.UrgeDelegationRequest: "UrgeDelegation",
    dg.ExtendDelegationDeadlineRequest: "ExtendDelegationDeadline",
}


_RECEIPT = dg.Attachment(kind=dg.Attachment.ASSISTANCE_RECEIPT, name="回执.pdf", size_bytes=4096, sha256="ef" * 32)
_RULING = dg.Attachment(kind=dg.Attachment.RULING, name="执行裁定书.pdf", size_bytes=2048, sha256="ab" * 32)
#: A valid request of each method, to mutate: so the checks behind the first violation are reached.
LIFECYCLE_VALID: list[Message] = [
    dg.AcknowledgeDelegationRequest(officer=dg.Officer(display_name="李法官", phone="0371-62171234"), etag='W/"1"'),
    dg.StartDelegationRequest(note="开始执行"),
    dg.CompleteDelegationRequest(
        completion=dg.Completion(outcome=dg.Completion.EXECUTED, amount_fen=700_000_000, result_documents=[_RECEIPT])
    ),
    dg.ReturnDelegationForSupplementRequest(
        supplement_request=dg.SupplementRequest(reason=dg.SupplementRequest.MISSING_RULING, missing_items=["执行裁定书"])
    ),
    dg.SupplementDelegationRequest(attachments=[_RULING], note="补充裁定书"),
    dg.ReturnDelegationRequest(reason=dg.MATERIALS_INCOMPLETE, note="材料不全"),
    dg.WithdrawDelegationRequest(reason=dg.SETTLED),
    dg.UrgeDelegationRequest(note="请尽快办理"),
    dg.ExtendDelegationDeadlineRequest(step=dg.Deadline.ACKNOWLEDGE, amount=5, unit="CALENDAR_DAY", reason="节假日"),
]


async def test_lifecycle_methods_answer_ok_or_a_specific_error(stack: Stack) -> None:
    """Random names, etags and fields; often aimed at a real delegation, whose version a refusal must not move."""

    async def target_version() -> str:
        found = await delegations(stack).GetDelegation(
            dg.GetDelegationRequest(name=stack.delegation.name), metadata=dev_credentials("court", REQUESTING)
        )
        return found.etag

    @RPC_EXAMPLES
    @given(st.sampled_from(LIFECYCLE_VALID).flatmap(lambda valid: any_request(type(valid), valid)), st.booleans(), credentials)
    def check(request: Message, aim: bool, metadata: Any) -> None:
        if aim:
            request.name = stack.delegation.name  # type: ignore[attr-defined]
        method = getattr(delegations(stack), LIFECYCLE[type(request)])
        check_answer(stack, "delegation", request, lambda: method(request, metadata=metadata), before_extra=target_version)

    await asyncio.to_thread(check)


async def test_delegation_reads_answer_ok_or_a_specific_error(stack: Stack) -> None:
    methods = {
        dg.ListDelegationsRequest: "ListDelegations",
        dg.GetDelegationRequest: "GetDelegation",
        dg.GetDelegationTimelineRequest: "GetDelegationTimeline",
        dg.ListOverdueDelegationsRequest: "ListOverdueDelegations",
        dg.GetTurnaroundStatisticsRequest: "GetTurnaroundStatistics",
        dg.ComputeDeadlineRequest: "ComputeDeadline",
        dg.ListMatterKindsRequest: "ListMatterKinds",
        dg.GetMatterKindRequest: "GetMatterKind",
    }

    @RPC_EXAMPLES
    @given(st.sampled_from(list(methods)).flatmap(any_request), credentials)
    def check(request: Message, metadata: Any) -> None:
        method = getattr(delegations(stack), methods[type(request)])
        check_answer(stack, "delegation", request, lambda: method(request, metadata=metadata))

    await asyncio.to_thread(check)


# --- assistance ------------------------------------------------------------------------------------


async def test_create_assistance_notice_answers_ok_or_a_specific_error(stack: Stack) -> None:
    valid = asst.CreateAssistanceNoticeRequest(
        parent=f"courts/{REQUESTING}",
        request_id=str(uuid.uuid4()),
        assistance_notice=asst.AssistanceNotice(
            case=stack.case_name, agency="agencies/bank-icbc", kind=asst.AssistanceNotice.QUERY_DEPOSITS
        ),
    )
    stub = assistance_pb2_grpc.AssistanceServiceStub(stack.channels["assistance"])

    @RPC_EXAMPLES
    @given(any_request(asst.CreateAssistanceNoticeRequest, valid), credentials)
    def check(request: asst.CreateAssistanceNoticeRequest, metadata: Any) -> None:
        if request.request_id == valid.request_id:
            request.request_id = str(uuid.uuid4())
        check_answer(stack, "assistance", request, lambda: stub.CreateAssistanceNotice(request, metadata=metadata))

    await asyncio.to_thread(check)


# --- limits (docs/api-limits.md) -------------------------------------------------------------------


def violations_of(error: grpc.aio.AioRpcError) -> tuple[dict[str, str], error_details_pb2.ErrorInfo]:
    status = status_of(error)
    assert status is not None
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    for detail in status.details:
        if detail.Is(bad.DESCRIPTOR):
            detail.Unpack(bad)
        elif detail.Is(info.DESCRIPTOR):
            detail.Unpack(info)
    return {v.field: v.description for v in bad.field_violations}, info


async def refused(stack: Stack, service: str, call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    before = await stack.counts(service)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert await stack.counts(service) == before
    return caught.value


async def test_an_oversized_request_is_refused_by_grpc_before_it_is_parsed(stack: Stack) -> None:
    request = seed_case_request(777)
    request.case.description = "x" * (MAX_MESSAGE_BYTES + 1)
    error = await refused(stack, "registry", registry(stack).CreateCase(request, metadata=dev_credentials("court", REQUESTING)))
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(MAX_MESSAGE_BYTES) in (error.details() or "")  # gRPC names the limit: "… larger than max (N vs. 4194304)"


async def test_lists_and_texts_over_their_limit_are_field_violations_naming_the_limit(stack: Stack) -> None:
    court = dev_credentials("court", REQUESTING)
    case = seed_case_request(778)
    case.case.parties.extend([case.case.parties[0]] * 50)  # 52 parties
    case.case.description = "长" * 2001
    error = await refused(stack, "registry", registry(stack).CreateCase(case, metadata=court))
    found, _ = violations_of(error)
    assert "at most 50 parties" in found["case.parties"] and "at most 2000 characters" in found["case.description"]

    delegation = freeze_request(stack.case_name)
    attachment = delegation.delegation.attachments[0]
    delegation.delegation.attachments.extend([attachment] * 48)  # 51 descriptors
    error = await refused(stack, "delegation", delegations(stack).CreateDelegation(delegation, metadata=court))
    found, _ = violations_of(error)
    assert found["delegation.attachments"] == "at most 50 attachments per delegation"

    delegation = freeze_request(stack.case_name)
    bad = delegation.delegation.attachments[0]
    bad.name, bad.size_bytes, bad.sha256 = "a" * 256 + ".pdf", 50 * 1024 * 1024 + 1, "not-a-digest"
    delegation.delegation.description = "d" * 2001
    error = await refused(stack, "delegation", delegations(stack).CreateDelegation(delegation, metadata=court))
    found, _ = violations_of(error)
    assert found["delegation.attachments[0].name"] == "at most 255 characters"
    assert found["delegation.attachments[0].size_bytes"] == "must be 1 to 52428800 bytes (50 MiB)"
    assert found["delegation.attachments[0].sha256"] == "must be 64 hexadecimal digits"
    assert found["delegation.description"] == "at most 2000 characters"

    delegation = freeze_request(stack.case_name)
    delegation.handed_over_seizures.extend(f"courts/{REQUESTING}/seizures/s{i}" for i in range(51))
    error = await refused(stack, "delegation", delegations(stack).CreateDelegation(delegation, metadata=court))
    found, _ = violations_of(error)
    assert found == {"handed_over_seizures": "at most 50 seizures per delegation"}

    entrusted = dev_credentials("court", ENTRUSTED)
    name = stack.delegation.name
    start = dg.StartDelegationRequest(name=name, note="n" * 2001)
    found, _ = violations_of(await refused(stack, "delegation", delegations(stack).StartDelegation(start, metadata=entrusted)))
    assert found == {"note": "at most 2000 characters"}
    ask = dg.ReturnDelegationForSupplementRequest(
        name=name, supplement_request=dg.SupplementRequest(reason=dg.SupplementRequest.OTHER, missing_items=["x"] * 51)
    )
    call = delegations(stack).ReturnDelegationForSupplement(ask, metadata=entrusted)
    found, _ = violations_of(await refused(stack, "delegation", call))
    assert found["supplement_request.missing_items"] == "at most 50 items"


async def test_a_refusal_with_many_violations_stays_within_grpc_trailer_limits(stack: Stack) -> None:
    """50 bad descriptors make 150 violations: BadRequest keeps what fits and says how many it left out."""
    delegation = freeze_request(stack.case_name)
    del delegation.delegation.attachments[:]
    for i in range(50):
        delegation.delegation.attachments.add(name=f"{i}/" + "名" * 300, size_bytes=-1, sha256="g" * 64)
    call = delegations(stack).CreateDelegation(delegation, metadata=dev_credentials("court", REQUESTING))
    error = await refused(stack, "delegation", call)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    found, info = violations_of(error)
    assert 0 < len(found) < 150 and int(info.metadata["omitted_field_violations"]) + len(found) >= 150
    assert all(len(description) <= 200 for description in found.values())


async def test_assistance_reads_and_agency_answers_answer_ok_or_a_specific_error(stack: Stack) -> None:
    methods = [
        "GetAssistanceNotice",
        "ListAssistanceNotices",
        "ReceiveAssistanceNotice",
        "ReplyAssistanceNotice",
        "ObjectToAssistanceNotice",
        "AnswerAssistanceNoticeObjection",
        "GetAssistanceNoticeTimeline",
        "GetSeizure",
        "ListSeizures",
        "GetAgencyTurnaroundStatistics",
    ]
    stub = assistance_pb2_grpc.AssistanceServiceStub(stack.channels["assistance"])
    requests = {getattr(asst, f"{method}Request"): method for method in methods}

    @RPC_EXAMPLES
    @given(st.sampled_from(list(requests)).flatmap(any_request), credentials)
    def check(request: Message, metadata: Any) -> None:
        method = getattr(stub, requests[type(request)])
        check_answer(stack, "assistance", request, lambda: method(request, metadata=metadata))

    await asyncio.to_thread(check)
