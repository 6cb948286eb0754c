"""`make demo`: drives a running stack the way a court system would, and shows the events.

Scenario 4 of the seed article: 广州市黄埔区人民法院 (粤0112) registers an enforcement case
whose debtor has a receivable in Henan and delegates the freeze to 中牟县人民法院 (豫0122),
which freezes 7,000,000 元 the same day; a second matter is left late, urged and escalated:
the demo runs the deadline scanner 30 days ahead over that matter only, so no other matter of
the running stack (a court's real work) is ever marked overdue, urged or escalated by it.
Then the agencies (services/tools/demo_assistance.py, with the simulated agencies): a freeze
notice answered by a bank, a property query across the query network, and scenario 1 — a
car under control in 平阳县, seized by the traffic police and listed for auction within five
working days. The events are read back from JetStream by subscribers that see only their
own court's or agency's subjects.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import grpc
import nats
from google.protobuf.json_format import MessageToDict
from google.type import money_pb2
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.delegation.v1 import delegation_pb2_grpc
from rogatory.events.v1 import events_pb2
from rogatory.registry.v1 import registry_pb2 as pb

from rogatory_client import AsyncClient, Credentials, Endpoints
from services.delegation.scanner import scan_database
from services.plumbing.auth import dev_credentials
from services.plumbing.config import Settings
from services.plumbing.events import ReceivedEvent, subject_filter
from services.plumbing.subscriber import read_events
from services.plumbing.telemetry import client_interceptors
from services.tools.demo_assistance import control_and_seize_a_car, freeze_at_the_bank, query_the_network

T = TypeVar("T")
HUANGPU = "gd0112"  # 广州市黄埔区人民法院, the seed's requesting court

PAYLOAD_TYPES = {
    "rogatory.case.registered.v1": events_pb2.CaseRegistered,
    "rogatory.delegation.submitted.v1": events_pb2.DelegationSubmitted,
    "rogatory.notice.sent.v1": events_pb2.AssistanceNoticeSent,
}


def seed_case_request(sequence: int) -> pb.CreateCaseRequest:
    return pb.CreateCaseRequest(
        parent="courts/gd0112",
        request_id=str(uuid.uuid4()),
        case=pb.Case(
            case_number=f"（2020）粤0112执{sequence}号",
            parties=[
                pb.Party(role=pb.Party.APPLICANT, kind=pb.Party.ORGANIZATION, display_name="广州某科技有限公司"),
                pb.Party(
                    role=pb.Party.RESPONDENT,
                    kind=pb.Party.ORGANIZATION,
                    display_name="河南某建设工程有限公司",
                    id_number="91110000600037341L",
                ),
            ],
            amount_owed=money_pb2.Money(currency_code="CNY", units=7_000_000),
            description="应收账款在河南省，需委托当地法院冻结（人民日报 2023-08-31 报道的案例）",
        ),
    )


def as_court(court_id: str, addresses: dict[str, str]) -> AsyncClient:
    """A court's system, as a court system would call Rogatory: the Python client, with the
    court's development token (and the demo's traces: a span per attempt)."""
    endpoints = Endpoints(addresses["registry"], addresses["delegation"], addresses["assistance"])
    return AsyncClient(Credentials.dev_token(f"court:{court_id}"), endpoints, interceptors=client_interceptors())


async def run_demo(addresses: dict[str, str]) -> None:
    settings = Settings()
    started = datetime.now(UTC) - timedelta(seconds=1)
    sequence = int(time.time()) % 1_000_000 + 1  # a fresh case number on every run
    async with as_court(HUANGPU, addresses) as huangpu:
        court = await huangpu.registry.GetCourt(pb.GetCourtRequest(name=f"courts/{HUANGPU}"))
        print(f"Court: {court.display_name} ({court.code}), parent {court.parent}")
        case = await huangpu.registry.CreateCase(seed_case_request(sequence))
        print(f"\nRegistered {case.case_number} as {case.name}")
        print(f"  respondent ID number as every response shows it: {case.parties[1].id_number}")
        # Delegated at once: the client sends it again while the case is on its way (CASE_NOT_REGISTERED).
        delegation = await huangpu.delegation.CreateDelegation(freeze_request(case.name))
        print(f"\nDelegated to {delegation.entrusted_court}: {delegation.name} ({dg.Delegation.State.Name(delegation.state)})")
        async with as_court(delegation.entrusted_court.split("/")[1], addresses) as zhongmou:
            await freeze_same_day(zhongmou.delegation, huangpu.delegation, delegation)
        late = await huangpu.delegation.CreateDelegation(freeze_request(case.name, entrusted="ha1321"))
        print(f"\nA second matter, to {late.entrusted_court}, is never acknowledged: {late.name}")
        # Time moves only for the demo's own late matter: the stack may hold other courts' matters.
        moment, report = await scan_database(settings, datetime.now(UTC) + timedelta(days=30), only=[late.name])
        print(f"Deadline scan of that matter only, as of {moment:%Y-%m-%d} (30 days on): {dict(report.actions)}")
        await freeze_at_the_bank(huangpu, addresses["nats"], case.name)
        await query_the_network(huangpu, addresses["nats"], case.name)
    async with as_court("zj0326", addresses) as pingyang:
        await control_and_seize_a_car(pingyang, addresses["nats"], sequence)
    stream = settings.stream_name
    await print_events(addresses["nats"], stream, subject_filter("case", "gd0112", ">"), started, expected=1)
    await print_events(addresses["nats"], stream, subject_filter("delegation", "*", "ha0122", ">"), started, expected=4)
    await print_events(addresses["nats"], stream, subject_filter("supervision", "ha13", ">"), started, expected=1)
    await print_events(addresses["nats"], stream, subject_filter("notice", "*", "bank-icbc", ">"), started, expected=3)
    await print_events(addresses["nats"], stream, subject_filter("vehicle", "zj0326", ">"), started, expected=6)


def freeze_request(case_name: str, entrusted: str = "ha0122") -> dg.CreateDelegationRequest:
    """The seed's matter: freeze the debtor's 7,000,000 元 receivable in Henan (DEPOSITS)."""
    return dg.CreateDelegationRequest(
        parent="courts/gd0112",
        request_id=str(uuid.uuid4()),
        delegation=dg.Delegation(
            case=case_name,
            entrusted_court=f"courts/{entrusted}",
            matter_kind=dg.Delegation.DEPOSITS,
            description="冻结被执行人对河南某公司的应收账款 7,000,000 元",
            deposits=dg.DepositDetails(
                bank_name="中国工商银行中牟支行",
                account_number="6222021001123456789",
                account_holder="河南某建设工程有限公司",
                measure=dg.DepositDetails.FREEZE,
                amount_fen=700_000_000,
            ),
            attachments=[
                _attachment(dg.Attachment.DELEGATION_LETTER, "委托执行函.pdf", "01"),
                _attachment(dg.Attachment.RULING, "执行裁定书.pdf", "02"),
                _attachment(dg.Attachment.ASSISTANCE_NOTICE, "协助冻结存款通知书.pdf", "03"),
            ],
            requesting_officer=dg.Officer(display_name="陈法官", phone="020-82212345"),
        ),
    )


def _attachment(kind: dg.Attachment.Kind.ValueType, name: str, digest_byte: str) -> dg.Attachment:
    return dg.Attachment(kind=kind, name=name, size_bytes=120_000, sha256=digest_byte * 32)


# Tests that still call over a bare channel (until they use rogatory_client too: issue 17).
async def delegate_freeze(channel: grpc.aio.Channel, case_name: str, entrusted: str = "ha0122") -> dg.Delegation:
    stub = delegation_pb2_grpc.DelegationServiceStub(channel)
    return await stub.CreateDelegation(freeze_request(case_name, entrusted), metadata=dev_credentials("court", HUANGPU))


async def execute_freeze_same_day(channel: grpc.aio.Channel, delegation: dg.Delegation) -> None:
    stub = delegation_pb2_grpc.DelegationServiceStub(channel)
    entrusted = dev_credentials("court", delegation.entrusted_court.split("/")[1])
    await freeze_same_day(stub, stub, delegation, entrusted, dev_credentials("court", HUANGPU))


async def freeze_same_day(
    entrusted: delegation_pb2_grpc.DelegationServiceAsyncStub,
    requesting: delegation_pb2_grpc.DelegationServiceAsyncStub,
    delegation: dg.Delegation,
    entrusted_metadata: tuple[tuple[str, str], ...] | None = None,
    requesting_metadata: tuple[tuple[str, str], ...] | None = None,
) -> None:
    """The entrusted court acknowledges, starts and completes: 7,000,000 元 frozen the same day;
    the requesting court reads the timeline. (The metadata: for stubs on a bare channel.)"""
    officer = dg.Officer(display_name="李法官", phone="0371-62171234")
    done = await entrusted.AcknowledgeDelegation(
        dg.AcknowledgeDelegationRequest(name=delegation.name, officer=officer, etag=delegation.etag),
        metadata=entrusted_metadata,
    )
    done = await entrusted.StartDelegation(
        dg.StartDelegationRequest(name=delegation.name, etag=done.etag), metadata=entrusted_metadata
    )
    completion = dg.Completion(
        outcome=dg.Completion.EXECUTED,
        amount_fen=700_000_000,
        result_documents=[_attachment(dg.Attachment.ASSISTANCE_RECEIPT, "协助冻结回执.pdf", "04")],
        note="应收账款 7,000,000 元已冻结",
    )
    done = await entrusted.CompleteDelegation(
        dg.CompleteDelegationRequest(name=delegation.name, completion=completion, etag=done.etag),
        metadata=entrusted_metadata,
    )
    print(f"{delegation.entrusted_court} acknowledged, started and completed it: {dg.Delegation.State.Name(done.state)}")
    timeline = await requesting.GetDelegationTimeline(
        dg.GetDelegationTimelineRequest(name=delegation.name), metadata=requesting_metadata
    )
    for entry in timeline.entries:
        elapsed = entry.elapsed.ToTimedelta()
        print(f"  {entry.action:<12} {entry.actor_court or 'system':<16} +{elapsed}  trace {entry.trace_id}")


async def until_case_replicated(call: Callable[[], Awaitable[T]], attempts: int = 50) -> T:
    """The case reaches the other services by event: CASE_NOT_REGISTERED means "retry shortly".
    (For tests on bare channels: rogatory_client retries it by itself.)"""
    for attempt in range(attempts):
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.1)
    raise AssertionError("unreachable")


async def print_events(nats_url: str, stream: str, subject_filter: str, since: datetime, expected: int) -> None:
    nc = await nats.connect(nats_url)
    try:
        events = await read_events(nc.jetstream(), stream, subject_filter, since=since, until_count=expected)
    finally:
        await nc.drain()
    print(f"\nEvents on {subject_filter} since {since:%H:%M:%S}:")
    for event in events:
        print_event(event)


def print_event(event: ReceivedEvent) -> None:
    print(f"\n  {event.subject}")
    print(f"    type {event.event_type}  id {event.event_id}  time {event.occurred_at:%Y-%m-%d %H:%M:%S}Z")
    print(f"    source {event.source}  traceparent {event.headers.get('traceparent', '-')}")
    payload_type = PAYLOAD_TYPES.get(event.event_type)
    if payload_type:
        body = MessageToDict(event.parse(payload_type))
        for line in _indent(body):
            print(line)
    elif event.event_type.startswith("rogatory.supervision."):
        escalated = event.parse(events_pb2.DelegationEscalated)
        print(f"    {escalated.delegation.name} escalated to {escalated.superior_court}")  # type: ignore[attr-defined]
    elif event.event_type.startswith("rogatory.delegation."):
        change = event.parse(events_pb2.DelegationTransitioned)
        state = dg.Delegation.State.Name(change.delegation.state)  # type: ignore[attr-defined]
        print(f"    {change.transition.action or event.subject.rsplit('.', 1)[1]} → {state}")  # type: ignore[attr-defined]


def _indent(body: dict) -> list[str]:  # type: ignore[type-arg]
    import json  # noqa: PLC0415

    return ["    " + line for line in json.dumps(body, ensure_ascii=False, indent=2).splitlines()]
