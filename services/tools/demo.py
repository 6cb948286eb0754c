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
from typing import Any, TypeVar

import grpc
import nats
from google.protobuf.json_format import MessageToDict
from google.type import money_pb2
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.events.v1 import events_pb2
from rogatory.registry.v1 import registry_pb2 as pb

from registry.case_number import parse_case_number
from registry.cases import case_name
from registry.courts import CourtCatalog
from rogatory_client import AlreadyExists, AsyncClient, Credentials, Endpoints
from services.contract import events
from services.contract.events import family
from services.delegation.scanner import scan_database
from services.plumbing.config import Settings
from services.plumbing.events import ReceivedEvent
from services.plumbing.subscriber import read_events
from services.plumbing.telemetry import client_interceptors
from services.tools.demo_assistance import control_and_seize_a_car, freeze_at_the_bank, query_the_network

T = TypeVar("T")
HUANGPU = "gd0112"  # 广州市黄埔区人民法院, the seed's requesting court
#: The seed's case, as the README and docs/admin.md show it (`rogatory-admin timeline '（2023）粤0112执4242号'`):
#: registered by the first run, and every later run delegates its matters in it again.
SEED_CASE_NUMBER = "（2023）粤0112执4242号"

#: Events printed whole; the other delegation events in one line.
PRINTED_WHOLE = (events.CASE_REGISTERED, events.DELEGATION_SUBMITTED, events.NOTICE_SENT)


def seed_case_request(sequence: int | None = None) -> pb.CreateCaseRequest:
    """The seed case; with a sequence number, another case like it, （2020）粤0112执{sequence}号 (for tests)."""
    return pb.CreateCaseRequest(
        parent="courts/gd0112",
        request_id=str(uuid.uuid4()),
        case=pb.Case(
            case_number=SEED_CASE_NUMBER if sequence is None else f"（2020）粤0112执{sequence}号",
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
    sequence = int(time.time()) % 1_000_000 + 1  # a fresh number for 平阳县's case on every run
    async with as_court(HUANGPU, addresses) as huangpu:
        court = await huangpu.registry.GetCourt(pb.GetCourtRequest(name=f"courts/{HUANGPU}"))
        print(f"Court: {court.display_name} ({court.code}), parent {court.parent}")
        case, registered = await register_seed_case(huangpu)
        print(f"\n{'Registered' if registered else 'Already registered by an earlier run:'} {case.case_number} as {case.name}")
        print(f"  respondent ID number as every response shows it: {case.parties[1].id_number}")
        # Delegated at once: the client sends it again while the case is on its way (CASE_NOT_REGISTERED).
        delegation = await huangpu.delegation.CreateDelegation(freeze_request(case.name))
        print(f"\nDelegated to {delegation.entrusted_court}: {delegation.name} ({dg.Delegation.State.Name(delegation.state)})")
        await execute_freeze_same_day(addresses, delegation)
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
    await print_events(
        addresses["nats"], stream, family("court", "cases").filter_for("gd0112"), started, expected=int(registered)
    )
    await print_events(addresses["nats"], stream, family("court", "received").filter_for("ha0122"), started, expected=4)
    await print_events(addresses["nats"], stream, family("court", "supervision").filter_for("ha13"), started, expected=1)
    await print_events(addresses["nats"], stream, family("agency", "notices").filter_for("bank-icbc"), started, expected=3)
    await print_events(addresses["nats"], stream, family("court", "vehicles").filter_for("zj0326"), started, expected=6)


async def register_seed_case(court: AsyncClient) -> tuple[pb.Case, bool]:
    """The seed case, registered now (True) or by an earlier run of the demo (False)."""
    try:
        return await court.registry.CreateCase(seed_case_request()), True
    except AlreadyExists:
        number = parse_case_number(SEED_CASE_NUMBER, CourtCatalog.default())
        return await court.registry.GetCase(pb.GetCaseRequest(name=case_name(number.court_id, number.slug))), False


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


async def delegate_freeze(court: AsyncClient, case_name: str, entrusted: str = "ha0122") -> dg.Delegation:
    """The requesting court (`court`'s credential) delegates the seed's freeze to `entrusted`."""
    return await court.delegation.CreateDelegation(freeze_request(case_name, entrusted))


async def execute_freeze_same_day(addresses: dict[str, str], delegation: dg.Delegation) -> None:
    """The entrusted court acknowledges, starts and completes: 7,000,000 元 frozen the same day;
    the requesting court reads the timeline. Each court calls with its own client."""
    entrusted_id, requesting_id = delegation.entrusted_court.split("/")[1], delegation.name.split("/")[1]
    async with as_court(entrusted_id, addresses) as entrusted, as_court(requesting_id, addresses) as requesting:
        officer = dg.Officer(display_name="李法官", phone="0371-62171234")
        done = await entrusted.delegation.AcknowledgeDelegation(
            dg.AcknowledgeDelegationRequest(name=delegation.name, officer=officer, etag=delegation.etag)
        )
        done = await entrusted.delegation.StartDelegation(dg.StartDelegationRequest(name=delegation.name, etag=done.etag))
        completion = dg.Completion(
            outcome=dg.Completion.EXECUTED,
            amount_fen=700_000_000,
            result_documents=[_attachment(dg.Attachment.ASSISTANCE_RECEIPT, "协助冻结回执.pdf", "04")],
            note="应收账款 7,000,000 元已冻结",
        )
        done = await entrusted.delegation.CompleteDelegation(
            dg.CompleteDelegationRequest(name=delegation.name, completion=completion, etag=done.etag)
        )
        print(f"{delegation.entrusted_court} acknowledged, started and completed it: {dg.Delegation.State.Name(done.state)}")
        timeline = await requesting.delegation.GetDelegationTimeline(dg.GetDelegationTimelineRequest(name=delegation.name))
        for entry in timeline.entries:
            elapsed = entry.elapsed.ToTimedelta()
            print(f"  {entry.action:<12} {entry.actor_court or 'system':<16} +{elapsed}  trace {entry.trace_id}")


async def until_case_replicated(call: Callable[[], Awaitable[T]], attempts: int = 50) -> T:
    """The case reaches the other services by event: CASE_NOT_REGISTERED means "retry shortly".
    rogatory_client retries it by itself for a few seconds; this waits longer (a stack restarting)."""
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
        received = await read_events(nc.jetstream(), stream, subject_filter, since=since, until_count=expected)
    finally:
        await nc.drain()
    print(f"\nEvents on {subject_filter} since {since:%H:%M:%S}:")
    for event in received:
        print_event(event)


def print_event(event: ReceivedEvent) -> None:
    print(f"\n  {event.subject}")
    print(f"    type {event.event_type}  id {event.event_id}  time {event.occurred_at:%Y-%m-%d %H:%M:%S}Z")
    print(f"    source {event.source}  traceparent {event.headers.get('traceparent', '-')}")
    kind = events.of_type(event.event_type)
    if kind is None:
        return
    message: Any = kind.parse(event.data)
    if kind in PRINTED_WHOLE:
        for line in _indent(MessageToDict(message)):
            print(line)
    elif kind is events.SUPERVISION_ESCALATED:
        print(f"    {message.delegation.name} escalated to {message.superior_court}")
    elif kind in events.in_aggregate("delegation"):
        action = message.transition.action if kind.payload is events_pb2.DelegationTransitioned else ""
        print(f"    {action or kind.verb} → {dg.Delegation.State.Name(message.delegation.state)}")


def _indent(body: dict) -> list[str]:  # type: ignore[type-arg]
    import json  # noqa: PLC0415

    return ["    " + line for line in json.dumps(body, ensure_ascii=False, indent=2).splitlines()]
