"""The delegation lifecycle through its handlers, against real SQLite and PostgreSQL.

Time comes from a clock the tests move; trace ids from an SDK tracer the tests start.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from rogatory.events.v1 import events_pb2
from sqlalchemy import func, select

from delegation import lifecycle
from delegation.calendar import CHINA_TZ, WorkingCalendar
from delegation.deadlines import RuleTable, Step, Unit, compute_deadline, extend
from delegation.details import (
    Attachment,
    ControlMeasureDetails,
    DepositDetails,
    EquityDetails,
    MatterDetails,
    Officer,
    OtherDetails,
    PropertyInvestigationDetails,
    RegisteredPropertyDetails,
    ServiceOfDocumentsDetails,
)
from delegation.lifecycle import (
    AcknowledgeDelegation,
    Actor,
    CompleteDelegation,
    ReturnDelegation,
    ReturnDelegationForSupplement,
    StartDelegation,
    SupplementDelegation,
    WithdrawDelegation,
)
from delegation.matters import (
    Action,
    Completion,
    CreateDelegation,
    Delegation,
    DelegationState,
    MatterKind,
    Outcome,
    ReturnApproval,
    ReturnReason,
    SupplementReason,
    SupplementRequest,
    Transition,
    WithdrawReason,
)
from registry.courts import CourtCatalog
from registry.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.contract.case_replica import CaseReplica
from services.delegation import codec
from services.delegation.handlers import DelegationHandlers
from services.delegation.messages import entry_to_proto, stored_to_proto
from services.delegation.schedule import DeadlineStatus
from services.delegation.store import DEADLINES, DELEGATIONS, TRANSITIONS, DelegationQuery, StoredDelegation
from services.plumbing.auth import Principal, PrincipalKind
from services.plumbing.idempotency import REQUEST_LOG
from services.plumbing.outbox import OUTBOX, Outbox
from services.plumbing.unit_of_work import Reader, Writer
from tests.conftest import Clock, request_key, statements_run

S = DelegationState
CREATED = datetime(2023, 8, 31, 1, 0, tzinfo=UTC)  # 09:00 in Guangzhou, the seed article's day
CASE = "courts/gd0112/cases/2020-enf-1"
ID_NUMBER = "11010519491231002X"
REQUESTING, ENTRUSTED = "gd0112", "ha0122"  # 广州市黄埔区法院 → 中牟县法院 (Henan)
ENTRUSTED_SUPERIOR, REQUESTING_SUPERIOR, STRANGER = "ha01", "gd01", "zj0326"
ENTRUSTED_OFFICER = Officer(name="李四", phone="0371-62171234")
DEPOSIT = DepositDetails("中国工商银行中牟支行", "6222021001123456789", "河南某建设工程有限公司", "FREEZE", 700_000_000)
CONTROL = ControlMeasureDetails(person="王五", id_number=ID_NUMBER, location="中牟县某宾馆", measure="DETENTION")
RECEIPT = Attachment("ASSISTANCE_RECEIPT", "协助冻结回执.pdf", 4096, "ef" * 32)
REQUIRED = {
    MatterKind.DEPOSITS: ("DELEGATION_LETTER", "RULING", "ASSISTANCE_NOTICE"),
    MatterKind.CONTROL_MEASURES: ("DELEGATION_LETTER", "DECISION"),
}
TRACER = TracerProvider().get_tracer("test")


def principal(court_id: str, kind: PrincipalKind = PrincipalKind.COURT) -> Principal:
    return Principal(kind, court_id)


def create_command(details: MatterDetails = DEPOSIT) -> CreateDelegation:
    kind = details.matter_kind
    attachments = tuple(Attachment(k, f"{k}.pdf", 1000 + i, f"{i:02x}" * 32) for i, k in enumerate(REQUIRED[kind]))
    return CreateDelegation(
        parent=f"courts/{REQUESTING}",
        case=CASE,
        entrusted_court=f"courts/{ENTRUSTED}",
        matter_kind=str(kind),
        description="冻结被执行人应收账款 7,000,000 元",
        details=details,
        attachments=attachments,
        officer=Officer(name="陈法官", phone="020-82212345"),
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(CREATED)


@pytest.fixture
async def handlers(service_db_factory: Any, clock: Clock) -> DelegationHandlers:
    db = await service_db_factory("delegation")
    async with db.transaction() as conn:
        await conn.execute(
            CaseReplica.__table__.insert().values(  # type: ignore[attr-defined]
                name=CASE, court_id=REQUESTING, case_number="（2020）粤0112执1号", respondents="[]", registered_at=CREATED
            )
        )
    return DelegationHandlers(Writer(db, Outbox()), Reader(db), CourtCatalog.default(), clock=clock)


async def submit(handlers: DelegationHandlers, details: MatterDetails = DEPOSIT, request_id: str = "") -> StoredDelegation:
    return await handlers.create_delegation(
        create_command(details), REQUESTING, request_key(request_id, f"courts/{REQUESTING}") if request_id else None
    )


@contextmanager
def traced() -> Iterator[str]:
    """Runs the block in a span, as the RPC wrapper does; yields its trace id."""
    with TRACER.start_as_current_span("rpc") as span:
        yield format(span.get_span_context().trace_id, "032x")


async def count(handlers: DelegationHandlers, table: Any) -> int:
    async with handlers.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def snapshot(handlers: DelegationHandlers) -> tuple[Any, ...]:
    """Everything a failed call must leave as it was."""
    async with handlers.db.read() as conn:
        rows = [(await conn.execute(select(t))).all() for t in (DELEGATIONS, TRANSITIONS, DEADLINES, OUTBOX)]
    return tuple(tuple(map(tuple, r)) for r in rows)


async def outbox_events(handlers: DelegationHandlers) -> list[dict[str, Any]]:
    async with handlers.db.read() as conn:
        return [dict(r) for r in (await conn.execute(select(OUTBOX).order_by(OUTBOX.c.seq))).mappings()]


def statuses(stored: StoredDelegation) -> dict[Step, DeadlineStatus]:
    return {d.step: d.status for d in stored.deadlines}


# --- the codec --------------------------------------------------------------------------------------


def full_delegation(details: MatterDetails) -> Delegation:
    at = CREATED + timedelta(hours=1)
    return Delegation(
        id="0189a1b2-0000-7000-8000-000000000001",
        requesting_court_id=REQUESTING,
        case_name=CASE,
        entrusted_court_id=ENTRUSTED,
        matter_kind=details.matter_kind,
        description="说明",
        created_at=CREATED,
        updated_at=at,
        state=S.WITHDRAWN,
        version=7,
        details=details,
        attachments=(RECEIPT,),
        requesting_officer=Officer("陈法官", "020-82212345"),
        entrusted_officer=ENTRUSTED_OFFICER,
        acknowledged_at=at,
        started_at=at,
        completed_at=at,
        returned_at=at,
        withdrawn_at=at,
        completion=Completion(Outcome.PARTLY_EXECUTED, 123, (RECEIPT,), "部分冻结"),
        supplement_request=SupplementRequest(SupplementReason.MISSING_RULING, ("裁定书",), "请补充", at),
        return_reason=ReturnReason.DUPLICATE,
        return_approval=ReturnApproval("ha", "豫高法〔2023〕1号"),
        withdraw_reason=WithdrawReason.SETTLED,
        history=(Transition(Action.WITHDRAW, S.SUBMITTED, S.WITHDRAWN, REQUESTING, "陈法官", at, "SETTLED", "和解"),),
    )


ALL_DETAILS: list[MatterDetails] = [
    DEPOSIT,
    EquityDetails("郑州某科技有限公司", "91110000600037341L", "王五", "FREEZE", 5_000_000, Decimal("12.5")),
    RegisteredPropertyDetails("REAL_ESTATE", "SEAL", "王五", "中牟县青年路 8 号", "豫(2019)中牟县不动产权第0001234号"),
    RegisteredPropertyDetails("VEHICLE", "SEAL", "王五", plate="豫A12345", vin="LSVAM4187C2184847"),
    PropertyInvestigationDetails(scope=("DEPOSITS", "VEHICLES"), note="查询"),
    ServiceOfDocumentsDetails(documents=("执行通知书",), addressee="王五", address="中牟县青年路 8 号"),
    CONTROL,
    OtherDetails(description="协助调取银行流水"),
]


@pytest.mark.parametrize("details", ALL_DETAILS, ids=lambda d: type(d).__name__)
def test_codec_round_trips_every_field(details: MatterDetails) -> None:
    delegation = full_delegation(details)
    document = json.loads(json.dumps(codec.delegation_to_json(delegation)))  # as stored: JSON text
    assert codec.delegation_from_json(document) == delegation


def test_codec_round_trips_a_fresh_delegation_and_rejects_unknown_schemas() -> None:
    fresh = Delegation("x", REQUESTING, CASE, ENTRUSTED, MatterKind.OTHER, "", CREATED, CREATED)
    assert codec.delegation_from_json(codec.delegation_to_json(fresh)) == fresh
    with pytest.raises(ValueError):
        codec.delegation_from_json({**codec.delegation_to_json(fresh), "schema": 99})


# --- creation --------------------------------------------------------------------------------------


async def test_create_stores_document_submit_entry_deadlines_and_event(handlers: DelegationHandlers) -> None:
    with traced() as trace_id:
        created = await submit(handlers, CONTROL)
    fetched = await handlers.get_delegation(created.delegation.name, principal(REQUESTING))
    assert fetched.delegation == created.delegation  # the document round-trips through the database
    assert fetched.deadlines == created.deadlines
    async with handlers.db.read() as conn:
        row = (await conn.execute(select(DELEGATIONS))).mappings().one()
        entries = (await conn.execute(select(TRANSITIONS))).mappings().all()
    assert ID_NUMBER in row["document"]  # in full where the officers read it…
    assert stored_to_proto(fetched).control_measures.id_number == "110105********002X"  # …masked on the wire
    assert [(e["action"], e["from_state"], e["to_state"], e["trace_id"]) for e in entries] == [
        ("SUBMIT", "", "SUBMITTED", trace_id)
    ]
    [event] = await outbox_events(handlers)
    assert event["subject"] == "rogatory.v1.delegation.gd0112.ha0122.submitted"
    assert ID_NUMBER.encode() not in event["payload"]
    payload = events_pb2.DelegationSubmitted.FromString(event["payload"])
    assert payload.delegation.control_measures.id_number == "110105********002X"
    assert [d.step for d in payload.delegation.deadlines] == [1, 2, 3]  # ACKNOWLEDGE, START, FINISH


async def test_deadlines_follow_the_rule_table_and_calendar(handlers: DelegationHandlers) -> None:
    created = await submit(handlers)
    rules, calendar, courts = RuleTable.default(), WorkingCalendar.default(), CourtCatalog.default()
    for deadline in created.deadlines:
        rule = rules.rule_for_court(MatterKind.DEPOSITS, deadline.step, ENTRUSTED, courts)
        assert deadline.due_at == compute_deadline(CREATED, rule, calendar).due
        assert (deadline.status, deadline.start_at, deadline.provisional) == (DeadlineStatus.OPEN, CREATED, False)
    finish = created.deadline(Step.FINISH)
    assert finish is not None  # 30 days end on 2023-09-30, in the National Day break; 10-07 is a make-up workday
    assert finish.due_at.astimezone(CHINA_TZ).date().isoformat() == "2023-10-07"
    stored = await handlers.get_delegation(created.delegation.name, principal(REQUESTING))
    assert [(d.step, d.due_at) for d in stored.deadlines] == [(d.step, d.due_at) for d in created.deadlines]


async def test_create_requires_the_calling_court_details_and_officer(handlers: DelegationHandlers) -> None:
    before = await snapshot(handlers)
    with pytest.raises(PermissionDenied) as denied:
        await handlers.create_delegation(create_command(), STRANGER)
    assert denied.value.reason == "NOT_REQUESTING_COURT"
    with pytest.raises(InvalidArgument) as invalid:
        await handlers.create_delegation(replace(create_command(), details=None, officer=None, attachments=()), REQUESTING)
    fields = {(v.field, v.reason) for v in invalid.value.violations}
    assert {("delegation.details", "REQUIRED"), ("delegation.officer", "REQUIRED")} <= fields
    assert ("delegation.attachments", "MISSING_ATTACHMENT") in fields  # reported together with the domain's
    assert await snapshot(handlers) == before


async def test_create_is_idempotent_by_request_id(handlers: DelegationHandlers) -> None:
    first = await submit(handlers, request_id="req-1")
    again = await submit(handlers, request_id="req-1")
    assert again.delegation == first.delegation
    assert (await count(handlers, DELEGATIONS), await count(handlers, TRANSITIONS), await count(handlers, OUTBOX)) == (1, 1, 1)


async def test_creations_in_one_batch_share_one_insert_per_table_and_a_refused_one_fails_alone(
    handlers: DelegationHandlers,
) -> None:
    """Delegations created together read their case in the batch's transaction without a
    savepoint and are written with one INSERT per table, not statements per creation; one the
    domain refuses fails alone; a copy of a request in the batch is answered as its retry."""
    unknown_case = replace(create_command(), case="courts/gd0112/cases/2020-enf-404")
    with statements_run() as statements:
        first, control, refused, copy = await asyncio.gather(
            submit(handlers, DEPOSIT, request_id="r-1"),
            submit(handlers, CONTROL),
            handlers.create_delegation(unknown_case, REQUESTING),
            submit(handlers, DEPOSIT, request_id="r-1"),  # last: its replay reads back the rows kept before it
            return_exceptions=True,
        )
    assert isinstance(first, StoredDelegation) and isinstance(control, StoredDelegation)
    assert isinstance(copy, StoredDelegation) and copy.delegation == first.delegation
    assert isinstance(refused, FailedPrecondition) and refused.reason == "CASE_NOT_REGISTERED"
    assert handlers.writer.batches == 1
    inserts = [s for s in statements if s.startswith("INSERT")]
    assert sorted(inserts) == sorted(
        f"INSERT INTO {t.name}" for t in (DELEGATIONS, TRANSITIONS, DEADLINES, OUTBOX, REQUEST_LOG)
    ), statements
    assert not [s for s in statements if "SAVEPOINT" in s], statements
    assert (await count(handlers, DELEGATIONS), await count(handlers, TRANSITIONS), await count(handlers, OUTBOX)) == (2, 2, 2)
    assert await count(handlers, DEADLINES) == len(first.deadlines) + len(control.deadlines)


# --- the lifecycle ---------------------------------------------------------------------------------


async def test_full_lifecycle_same_day(handlers: DelegationHandlers, clock: Clock) -> None:
    created = await submit(handlers)
    name = created.delegation.name
    clock.advance(hours=1)
    with traced() as ack_trace:
        acknowledged = await handlers.acknowledge(
            name, ENTRUSTED, AcknowledgeDelegation(ENTRUSTED_OFFICER, expected_version=created.delegation.version)
        )
    clock.advance(hours=1)
    with traced() as start_trace:
        started = await handlers.start(name, ENTRUSTED, StartDelegation(expected_version=acknowledged.delegation.version))
    clock.advance(hours=2)
    completion = CompleteDelegation("EXECUTED", 700_000_000, (RECEIPT,), expected_version=started.delegation.version)
    with traced() as complete_trace:
        completed = await handlers.complete(name, ENTRUSTED, completion)

    d = completed.delegation
    assert (d.state, d.version) == (S.COMPLETED, 4)
    assert d.completion == Completion(Outcome.EXECUTED, 700_000_000, (RECEIPT,), "")
    assert d.entrusted_officer == ENTRUSTED_OFFICER
    assert statuses(completed) == {s: DeadlineStatus.MET for s in (Step.ACKNOWLEDGE, Step.START, Step.FINISH)}
    assert await handlers.get_delegation(name, principal(REQUESTING)) == completed

    stored, entries = await handlers.get_timeline(name, principal(REQUESTING))
    assert [(e.action, e.actor_court_id, e.officer, e.trace_id) for e in entries] == [
        ("SUBMIT", REQUESTING, "陈法官", ""),
        ("ACKNOWLEDGE", ENTRUSTED, "李四", ack_trace),
        ("START", ENTRUSTED, "李四", start_trace),
        ("COMPLETE", ENTRUSTED, "李四", complete_trace),
    ]
    assert entries[-1].reason_code == "EXECUTED" and entries[-1].at == CREATED + timedelta(hours=4)

    events = await outbox_events(handlers)
    assert [(e["event_type"], e["subject"]) for e in events] == [
        ("rogatory.delegation.submitted.v1", "rogatory.v1.delegation.gd0112.ha0122.submitted"),
        ("rogatory.delegation.acknowledged.v1", "rogatory.v1.delegation.gd0112.ha0122.acknowledged"),
        ("rogatory.delegation.started.v1", "rogatory.v1.delegation.gd0112.ha0122.started"),
        ("rogatory.delegation.completed.v1", "rogatory.v1.delegation.gd0112.ha0122.completed"),
    ]
    last = events_pb2.DelegationTransitioned.FromString(events[-1]["payload"])
    assert last.delegation.completion.amount_fen == 700_000_000 and last.delegation.etag == 'W/"4"'
    assert (last.transition.action, last.transition.trace_id) == ("COMPLETE", complete_trace)
    assert last.transition.elapsed.ToTimedelta() == timedelta(hours=4)
    assert last.transition.elapsed_working_days == pytest.approx(4 / 24)
    assert events[-1]["traceparent"].split("-")[1] == complete_trace  # the outbox row continues the trace


async def test_a_step_after_its_deadline_is_met_late(handlers: DelegationHandlers, clock: Clock) -> None:
    created = await submit(handlers)
    clock.advance(days=10)  # the acknowledgement period is 7 days
    acknowledged = await handlers.acknowledge(created.delegation.name, ENTRUSTED, AcknowledgeDelegation(ENTRUSTED_OFFICER))
    assert statuses(acknowledged)[Step.ACKNOWLEDGE] is DeadlineStatus.MET_LATE
    assert statuses(acknowledged)[Step.START] is DeadlineStatus.OPEN


async def test_return_for_supplement_suspends_finish_and_supplement_restarts_it(
    handlers: DelegationHandlers, clock: Clock
) -> None:
    name = (await submit(handlers)).delegation.name
    await handlers.acknowledge(name, ENTRUSTED, AcknowledgeDelegation(ENTRUSTED_OFFICER))
    clock.advance(days=1)
    returned = await handlers.return_for_supplement(
        name, ENTRUSTED, ReturnDelegationForSupplement("MISSING_EFFECTIVE_DATE", ("生效证明",))
    )
    assert statuses(returned) == {
        Step.ACKNOWLEDGE: DeadlineStatus.MET,
        Step.START: DeadlineStatus.MET,
        Step.FINISH: DeadlineStatus.CANCELLED,
        Step.SUPPLEMENT: DeadlineStatus.OPEN,
    }
    clock.advance(days=20)
    supplemented = await handlers.supplement(name, REQUESTING, SupplementDelegation(note="补充生效证明"))
    assert supplemented.delegation.state is S.IN_PROGRESS
    finish = supplemented.deadline(Step.FINISH)
    assert finish is not None and (finish.status, finish.start_at) == (DeadlineStatus.OPEN, clock.now)
    assert statuses(supplemented)[Step.SUPPLEMENT] is DeadlineStatus.MET
    assert await handlers.get_delegation(name, principal(ENTRUSTED)) == supplemented


async def test_withdrawal_cancels_every_running_deadline(handlers: DelegationHandlers, clock: Clock) -> None:
    name = (await submit(handlers)).delegation.name
    await handlers.acknowledge(name, ENTRUSTED, AcknowledgeDelegation(ENTRUSTED_OFFICER))
    clock.advance(days=2)
    withdrawn = await handlers.withdraw(name, REQUESTING, WithdrawDelegation("SETTLED"))
    assert statuses(withdrawn) == {
        Step.ACKNOWLEDGE: DeadlineStatus.MET,
        Step.START: DeadlineStatus.CANCELLED,
        Step.FINISH: DeadlineStatus.CANCELLED,
    }
    events = await outbox_events(handlers)
    assert events[-1]["subject"] == "rogatory.v1.delegation.gd0112.ha0122.withdrawn"


# --- concurrency, idempotency, errors ---------------------------------------------------------------


async def test_concurrent_updates_with_one_etag_one_wins_one_is_aborted(handlers: DelegationHandlers) -> None:
    created = await submit(handlers)
    name, version = created.delegation.name, created.delegation.version
    results = await asyncio.gather(
        handlers.acknowledge(name, ENTRUSTED, AcknowledgeDelegation(ENTRUSTED_OFFICER, expected_version=version)),
        handlers.return_delegation(name, ENTRUSTED, ReturnDelegation("NOT_WITHIN_JURISDICTION", expected_version=version)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, StoredDelegation) for r in results) == 1
    [error] = [r for r in results if isinstance(r, Exception)]
    assert isinstance(error, Aborted) and error.reason == "VERSION_MISMATCH"
    stored, entries = await handlers.get_timeline(name, principal(REQUESTING))
    assert stored.delegation.version == version + 1 and len(entries) == 2
    assert await count(handlers, OUTBOX) == 2


async def test_concurrent_calls_each_decide_on_the_version_the_other_left(handlers: DelegationHandlers) -> None:
    """Read, decision and write are one unit of the writer: of two acknowledgements sent at
    once without etags, the second sees the first's and is refused by the domain; neither is
    lost to a stale read."""
    name = (await submit(handlers)).delegation.name
    before = await snapshot(handlers)
    results = await asyncio.gather(
        handlers.acknowledge(name, ENTRUSTED, AcknowledgeDelegation(ENTRUSTED_OFFICER)),
        handlers.acknowledge(name, ENTRUSTED, AcknowledgeDelegation(ENTRUSTED_OFFICER)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, StoredDelegation)]
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1 and len(errors) == 1
    assert isinstance(errors[0], FailedPrecondition) and errors[0].reason == "INVALID_TRANSITION"
    assert await count(handlers, TRANSITIONS) == len(before[1]) + 1
    assert await count(handlers, OUTBOX) == len(before[3]) + 1


async def test_the_version_guard_in_sql_aborts_a_write_from_a_stale_read(handlers: DelegationHandlers) -> None:
    """A change decided on a version read earlier (the scanner's, or a replica's on
    PostgreSQL) is written only if the row is still at that version."""
    name = (await submit(handlers)).delegation.name
    stale = await handlers.get_delegation(name, principal(REQUESTING))
    winner = await handlers.acknowledge(name, ENTRUSTED, AcknowledgeDelegation(ENTRUSTED_OFFICER))
    before = await snapshot(handlers)
    updated, events = lifecycle.withdraw(stale.delegation, WithdrawDelegation("SETTLED"), Actor(REQUESTING, ""), handlers.clock())
    with pytest.raises(Aborted) as raised:
        await handlers.writer.run(lambda tx: handlers.write_change(tx, stale, handlers.lifecycle_change(stale, updated, events)))
    assert raised.value.reason == "VERSION_MISMATCH"
    assert await handlers.get_delegation(name, principal(REQUESTING)) == winner
    assert await snapshot(handlers) == before  # nothing of the aborted write is left


async def test_a_retried_request_id_returns_the_current_delegation_once_applied(
    handlers: DelegationHandlers, clock: Clock
) -> None:
    name = (await submit(handlers)).delegation.name
    ack = request_key("ack-1", f"courts/{ENTRUSTED}")
    first = await handlers.acknowledge(name, ENTRUSTED, AcknowledgeDelegation(ENTRUSTED_OFFICER, expected_version=1), ack)
    clock.advance(minutes=5)
    retry = await handlers.acknowledge(name, ENTRUSTED, AcknowledgeDelegation(ENTRUSTED_OFFICER, expected_version=1), ack)
    assert retry == first
    urge = request_key("urge-1", f"courts/{REQUESTING}")
    urged = await handlers.urge(name, REQUESTING, "请尽快", urge)
    assert (await handlers.urge(name, REQUESTING, "请尽快", urge)).urge_count == urged.urge_count == 1
    # The same id from the other court is another request.
    with pytest.raises(PermissionDenied):
        await handlers.acknowledge(
            name, REQUESTING, AcknowledgeDelegation(ENTRUSTED_OFFICER), request_key("ack-1", f"courts/{REQUESTING}")
        )
    assert (await count(handlers, TRANSITIONS), await count(handlers, OUTBOX)) == (3, 3)


async def test_rejected_calls_change_nothing(handlers: DelegationHandlers, clock: Clock) -> None:
    name = (await submit(handlers)).delegation.name
    await handlers.acknowledge(name, ENTRUSTED, AcknowledgeDelegation(ENTRUSTED_OFFICER))
    before = await snapshot(handlers)
    clock.advance(hours=1)
    attempts: list[tuple[Any, type[Exception], str]] = [
        (handlers.start(name, REQUESTING, StartDelegation()), PermissionDenied, "NOT_ENTRUSTED_COURT"),
        (handlers.start(name, STRANGER, StartDelegation()), NotFound, "NOT_FOUND"),
        (handlers.start(name, ENTRUSTED, StartDelegation(expected_version=1)), Aborted, "VERSION_MISMATCH"),
        (handlers.acknowledge(name, ENTRUSTED, AcknowledgeDelegation(ENTRUSTED_OFFICER)), FailedPrecondition, "INVALID_TRANSITION"),
        (handlers.complete(name, ENTRUSTED, CompleteDelegation("SERVED")), InvalidArgument, "OUTCOME_NOT_FOR_KIND"),
        (handlers.urge(name, ENTRUSTED, "x"), PermissionDenied, "NOT_REQUESTING_COURT"),
        (handlers.urge(name, REQUESTING, "x" * 3000), InvalidArgument, "TOO_LONG"),
        (handlers.extend_deadline(name, REQUESTING_SUPERIOR, "START", 5, "CALENDAR_DAY", "x"), PermissionDenied, "NOT_SUPERIOR_COURT"),
        (handlers.extend_deadline(name, ENTRUSTED_SUPERIOR, "ACKNOWLEDGE", 5, "CALENDAR_DAY", "x"), FailedPrecondition, "DEADLINE_NOT_OPEN"),
        (handlers.extend_deadline(name, ENTRUSTED_SUPERIOR, "START", 0, "FORTNIGHT", ""), InvalidArgument, "BAD_VALUE"),
        (handlers.start(f"{name}x", ENTRUSTED, StartDelegation()), NotFound, "NOT_FOUND"),
    ]  # fmt: skip
    for call, error_type, reason in attempts:
        with pytest.raises(error_type) as raised:
            await call
        assert raised.value.reason == reason  # type: ignore[attr-defined]
    assert await snapshot(handlers) == before


# --- urging, extending, supervision -----------------------------------------------------------------


async def test_urging_counts_and_is_evented(handlers: DelegationHandlers, clock: Clock) -> None:
    name = (await submit(handlers)).delegation.name
    clock.advance(days=8)
    urged = await handlers.urge(name, REQUESTING, "请尽快签收")
    assert (urged.urge_count, urged.delegation.version, urged.delegation.state) == (1, 2, S.SUBMITTED)
    assert (await handlers.urge(name, REQUESTING)).urge_count == 2
    event = (await outbox_events(handlers))[1]
    assert (event["event_type"], event["subject"]) == (
        "rogatory.delegation.urged.v1",
        "rogatory.v1.delegation.gd0112.ha0122.urged",
    )
    payload = events_pb2.DelegationUrged.FromString(event["payload"])
    assert (payload.automatic, payload.note, payload.delegation.urge_count) == (False, "请尽快签收", 1)
    _, entries = await handlers.get_timeline(name, principal(REQUESTING))
    assert [(e.action, e.note) for e in entries[1:]] == [("URGE", "请尽快签收"), ("URGE", "")]
    await handlers.withdraw(name, REQUESTING, WithdrawDelegation("NO_LONGER_NEEDED"))
    with pytest.raises(FailedPrecondition) as final:
        await handlers.urge(name, REQUESTING)
    assert final.value.metadata["action"] == "URGE"


async def test_the_entrusted_courts_superior_extends_a_deadline(handlers: DelegationHandlers, clock: Clock) -> None:
    created = await submit(handlers)
    name = created.delegation.name
    clock.advance(days=16)  # START (15 days) has passed
    with traced() as trace_id:
        extended = await handlers.extend_deadline(name, ENTRUSTED_SUPERIOR, "START", 5, "WORKING_DAY", "需异地查控")
    start = extended.deadline(Step.START)
    original = created.deadline(Step.START)
    assert start is not None and original is not None
    rule = RuleTable.default().rule_for_court(MatterKind.DEPOSITS, Step.START, ENTRUSTED, CourtCatalog.default())
    expected = extend(
        compute_deadline(CREATED, rule, WorkingCalendar.default()), 5, Unit.WORKING_DAY, "x", WorkingCalendar.default()
    )
    assert start.due_at == expected.due > original.due_at
    assert start.status is DeadlineStatus.OPEN and start.extensions[0].court_id == ENTRUSTED_SUPERIOR
    assert extended.delegation.version == 2
    assert await handlers.get_delegation(name, principal(REQUESTING)) == extended
    _, entries = await handlers.get_timeline(name, principal(ENTRUSTED))
    assert (entries[-1].action, entries[-1].reason_code, entries[-1].trace_id) == ("EXTEND_DEADLINE", "START", trace_id)
    event = (await outbox_events(handlers))[-1]
    assert event["subject"] == "rogatory.v1.delegation.gd0112.ha0122.deadline-extended"
    payload = events_pb2.DelegationDeadlineExtended.FromString(event["payload"])
    assert (payload.court, payload.reason, payload.deadline.step) == ("courts/ha01", "需异地查控", 2)
    assert "by courts/ha01" in payload.deadline.extensions[0]


async def test_only_parties_superiors_and_admins_see_a_delegation(handlers: DelegationHandlers) -> None:
    name = (await submit(handlers)).delegation.name
    for reader in (REQUESTING, ENTRUSTED, ENTRUSTED_SUPERIOR, REQUESTING_SUPERIOR, "gd", "spc"):
        assert (await handlers.get_delegation(name, principal(reader))).delegation.name == name
    assert (await handlers.get_delegation(name, principal("ops", PrincipalKind.ADMIN))).delegation.name == name
    for outsider in (principal(STRANGER), principal("zj03"), principal("bank-icbc", PrincipalKind.AGENCY)):
        with pytest.raises(NotFound):
            await handlers.get_delegation(name, outsider)
        with pytest.raises(NotFound):
            await handlers.get_timeline(name, outsider)
        assert await handlers.list_delegations(DelegationQuery(), 0, 100, outsider) == []
    received = await handlers.list_delegations(DelegationQuery(entrusted_court_id=ENTRUSTED), 0, 100, principal(ENTRUSTED))
    assert [s.delegation.name for s in received] == [name]
    sent_seen_by_superior = await handlers.list_delegations(DelegationQuery(REQUESTING), 0, 100, principal("gd"))
    assert [s.delegation.name for s in sent_seen_by_superior] == [name]


async def test_overdue_matters_of_subordinate_courts_longest_first(handlers: DelegationHandlers, clock: Clock) -> None:
    older = (await submit(handlers)).delegation.name
    clock.advance(days=2)
    newer = (await submit(handlers)).delegation.name
    clock.advance(days=1)
    done = (await submit(handlers)).delegation.name
    await handlers.acknowledge(done, ENTRUSTED, AcknowledgeDelegation(ENTRUSTED_OFFICER))
    assert await handlers.list_overdue(ENTRUSTED_SUPERIOR, principal(ENTRUSTED_SUPERIOR), None, 10) == []

    clock.advance(days=9)  # both unacknowledged ones are past their 7 days; `done` is not late for START yet
    for supervisor in (ENTRUSTED, ENTRUSTED_SUPERIOR, "ha", "spc"):
        found = await handlers.list_overdue(supervisor, principal(supervisor), None, 10)
        assert [s.delegation.name for s, _ in found] == [older, newer]
    first_page = await handlers.list_overdue("ha", principal("ha"), None, 1)
    second_page = await handlers.list_overdue("ha", principal("ha"), (first_page[0][1], first_page[0][0].delegation.name), 1)
    assert [s.delegation.name for s, _ in first_page + second_page] == [older, newer]
    assert await handlers.list_overdue(REQUESTING, principal(REQUESTING), None, 10) == []  # it received none
    for outsider in (principal(STRANGER), principal(REQUESTING_SUPERIOR), principal("ha0122x")):
        with pytest.raises(PermissionDenied):
            await handlers.list_overdue(ENTRUSTED_SUPERIOR, outsider, None, 10)
    assert len(await handlers.list_overdue("ha", principal("ops", PrincipalKind.ADMIN), None, 10)) == 2


async def test_timeline_counts_working_days_across_the_national_day_break(handlers: DelegationHandlers, clock: Clock) -> None:
    clock.now = datetime(2023, 9, 28, 16, 0, tzinfo=CHINA_TZ).astimezone(UTC)  # Thursday before the break
    name = (await submit(handlers)).delegation.name
    clock.now = datetime(2023, 10, 9, 16, 0, tzinfo=CHINA_TZ).astimezone(UTC)  # Monday after it
    await handlers.acknowledge(name, ENTRUSTED, AcknowledgeDelegation(ENTRUSTED_OFFICER))
    stored, entries = await handlers.get_timeline(name, principal(REQUESTING))
    entry = entry_to_proto(entries[-1], stored.delegation.created_at, handlers.elapsed_calendar)
    assert entry.elapsed.ToTimedelta() == timedelta(days=11)
    # Thu 16:00 → Fri 00:00 (8 h), Sat 10-07 and Sun 10-08 (make-up workdays), Mon 00:00 → 16:00.
    assert entry.elapsed_working_days == pytest.approx((8 + 24 + 24 + 16) / 24)


async def test_replies_reuse_the_message_of_their_event_and_match_a_fresh_read(handlers: DelegationHandlers) -> None:
    """Create and single-event transitions answer with the message their event carries:
    it must be what a read of the row gives."""
    created = await submit(handlers)
    name = created.delegation.name
    assert created.rendered is not None
    assert stored_to_proto(created) == stored_to_proto(await handlers.get_delegation(name, principal(REQUESTING)))
    acknowledged = await handlers.acknowledge(name, ENTRUSTED, AcknowledgeDelegation(ENTRUSTED_OFFICER))
    assert acknowledged.rendered is not None
    assert stored_to_proto(acknowledged) == stored_to_proto(await handlers.get_delegation(name, principal(ENTRUSTED)))
    [event] = [e for e in await outbox_events(handlers) if e["event_type"].endswith(".acknowledged.v1")]
    assert events_pb2.DelegationTransitioned.FromString(event["payload"]).delegation == stored_to_proto(acknowledged)
