"""Assistance notices through their handlers, against real SQLite and PostgreSQL: sending,
the agency's receipt and typed results, the seizure queue, objections and their deadline,
visibility, etags, idempotency, timeline and the events written to the outbox."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rogatory.events.v1 import events_pb2
from sqlalchemy import select, text
from sqlalchemy.util import await_only

from assistance import notice_lifecycle as lc
from assistance.notice_targets import DepositAccount, NoticeTarget, RegisteredProperty
from assistance.notices import CreateNotice, NoticeState, ResultKind
from assistance.seizures import SeizureState
from delegation.details import Attachment
from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from registry.errors import Aborted, FailedPrecondition, NotFound, PermissionDenied
from services.assistance import store
from services.assistance.handlers import AssistanceHandlers
from services.assistance.notice_scanner import NoticeScanner
from services.assistance.store import NoticeQuery, SeizureQuery
from services.contract.case_replica import CaseReplica
from services.plumbing.auth import Principal, PrincipalKind
from services.plumbing.db import Database
from services.plumbing.idempotency import REQUEST_LOG
from services.plumbing.outbox import OUTBOX, Outbox
from services.plumbing.unit_of_work import Reader, Writer
from tests.conftest import Clock, request_key, statements_run, wait_for

SENT_AT = datetime(2023, 9, 20, 2, 0, tzinfo=UTC)  # 10:00 in Guangzhou
CASE = "courts/gd0112/cases/2020-enf-1"
DEBTOR = "河南某建设工程有限公司"
COURT, OTHER_COURT = Principal(PrincipalKind.COURT, "gd0112"), Principal(PrincipalKind.COURT, "zj0326")
BANK, OTHER_BANK = Principal(PrincipalKind.AGENCY, "bank-icbc"), Principal(PrincipalKind.AGENCY, "bank-ccb")
REGISTRY = Principal(PrincipalKind.AGENCY, "re-440100")
ADMIN = Principal(PrincipalKind.ADMIN, "ops")
DOCUMENTS = tuple(
    Attachment(k, f"{k}.pdf", 2048, c * 64)
    for k, c in (("RULING", "a"), ("ASSISTANCE_NOTICE", "b"), ("OFFICER_CREDENTIALS", "c"))
)
ACCOUNT = DepositAccount("6222021001123456789", 700_000_000)
HOUSE = RegisteredProperty("REAL_ESTATE", location="广州市黄埔区某路1号", certificate_number="粤(2019)广州市不动产权第0001234号")


@pytest.fixture
def clock() -> Clock:
    return Clock(SENT_AT)


@pytest.fixture
async def handlers(service_db_factory: Any, clock: Clock) -> AssistanceHandlers:
    db = await service_db_factory("assistance")
    respondents = json.dumps([{"display_name": DEBTOR, "kind": "ORGANIZATION", "id_number_masked": ""}], ensure_ascii=False)
    async with db.transaction() as conn:
        await conn.execute(
            CaseReplica.__table__.insert().values(  # type: ignore[attr-defined]
                name=CASE, court_id="gd0112", case_number="（2020）粤0112执1号", respondents=respondents, registered_at=SENT_AT
            )
        )
    return AssistanceHandlers(Writer(db, Outbox()), Reader(db), CourtCatalog.default(), AgencyCatalog.default(), clock=clock)


def command(kind: str = "FREEZE_DEPOSITS", agency: str = "bank-icbc", subject: Any = ACCOUNT, **kw: Any) -> CreateNotice:
    return CreateNotice(
        parent="courts/gd0112",
        case=CASE,
        agency=f"agencies/{agency}",
        kind=kind,
        target_details=NoticeTarget(DEBTOR, subject),
        documents=DOCUMENTS,
        **kw,
    )


async def outbox(handlers: AssistanceHandlers) -> list[tuple[str, str]]:
    async with handlers.db.read() as conn:
        return [(r.event_type, r.subject) for r in await conn.execute(select(OUTBOX).order_by(OUTBOX.c.seq))]


async def payload_of(handlers: AssistanceHandlers, subject: str) -> bytes:
    async with handlers.db.read() as conn:
        rows = list(await conn.execute(select(OUTBOX).where(OUTBOX.c.subject == subject).order_by(OUTBOX.c.seq)))
    return bytes(rows[-1].payload)


async def test_a_freeze_is_received_frozen_and_becomes_a_seizure(handlers: AssistanceHandlers, clock: Clock) -> None:
    sent = await handlers.create_notice(command(), "gd0112", request_key("req-1", "courts/gd0112"))
    assert (
        await handlers.create_notice(command(), "gd0112", request_key("req-1", "courts/gd0112"))
    ).notice == sent.notice  # AIP-155 retry
    name = sent.notice.name
    clock.advance(hours=2)
    received = await handlers.receive(name, BANK, lc.ReceiveNotice(expected_version=1))
    assert (received.notice.state, received.notice.served_at) == (NoticeState.RECEIVED, None)  # a bank's receipt is no service
    clock.advance(hours=1)
    reply = lc.ReplyNotice("FROZEN", amount_fen=500_000_000, reference="冻字2023-1")
    frozen = await handlers.reply(name, BANK, reply, request_key("rep-1", "agencies/bank"))
    assert (
        await handlers.reply(name, BANK, reply, request_key("rep-1", "agencies/bank"))
    ).notice == frozen.notice  # a retry changes nothing
    seizure = await handlers.get_seizure(frozen.notice.resulting_seizure, COURT)
    assert (seizure.state, seizure.amount_fen, seizure.agency_id) == (SeizureState.ACTIVE, 500_000_000, "bank-icbc")
    assert seizure.expires_at.date().isoformat() == "2024-09-20"  # deposits: one year

    verbs = [s.rsplit(".", 1)[1] for _, s in await outbox(handlers)]
    assert verbs == ["sent", "received", "answered", "effective"]
    subjects = {s for _, s in await outbox(handlers)}
    assert "rogatory.v1.notice.gd0112.bank-icbc.answered" in subjects
    assert "rogatory.v1.seizure.gd0112.bank-icbc.effective" in subjects
    event = events_pb2.AssistanceNoticeTransitioned.FromString(
        await payload_of(handlers, "rogatory.v1.notice.gd0112.bank-icbc.answered")
    )
    assert event.assistance_notice.result.amount_fen == 500_000_000 and event.transition.actor == "agencies/bank-icbc"

    _, timeline = await handlers.get_timeline(name, COURT)
    assert [(r["action"], r["actor"]) for r in timeline] == [
        ("SEND", "courts/gd0112"),
        ("RECEIVE", "agencies/bank-icbc"),
        ("REPLY", "agencies/bank-icbc"),
    ]


async def test_notices_sent_in_one_batch_share_one_insert_per_table_and_a_refused_one_fails_alone(
    handlers: AssistanceHandlers,
) -> None:
    """Notices sent together read their case in the batch's transaction without a savepoint and
    are written with one INSERT per table; one the domain refuses fails alone."""
    with statements_run() as statements:
        freeze, seal, refused = await asyncio.gather(
            handlers.create_notice(command(), "gd0112", request_key("n-1", "courts/gd0112")),
            handlers.create_notice(command("SEAL_PROPERTY", "re-440100", HOUSE), "gd0112"),
            handlers.create_notice(replace(command(), case="courts/gd0112/cases/2020-enf-404"), "gd0112"),
            return_exceptions=True,
        )
    assert not isinstance(freeze, BaseException) and not isinstance(seal, BaseException), (freeze, seal)
    assert isinstance(refused, FailedPrecondition) and refused.reason == "CASE_NOT_REGISTERED"
    assert handlers.writer.batches == 1
    inserts = sorted(s for s in statements if s.startswith("INSERT"))
    assert inserts == sorted(f"INSERT INTO {t.name}" for t in (store.NOTICES, store.TRANSITIONS, OUTBOX, REQUEST_LOG)), statements
    assert not [s for s in statements if "SAVEPOINT" in s], statements
    assert [v for v, _ in await outbox(handlers)] == ["rogatory.notice.sent.v1"] * 2
    for sent in (freeze, seal):
        _, timeline = await handlers.get_timeline(sent.notice.name, COURT)
        assert [r["action"] for r in timeline] == ["SEND"]


async def test_steps_sent_at_once_without_an_etag_are_applied_one_after_the_other(handlers: AssistanceHandlers) -> None:
    """The bank's receipt and its reply arrive together, neither with an etag: each step reads
    the notice in the transaction it writes in, so the reply sees the receipt instead of
    failing ABORTED VERSION_MISMATCH on a version it read before the receipt was written."""
    name = (await handlers.create_notice(command(), "gd0112")).notice.name
    received, replied = await asyncio.gather(
        handlers.receive(name, BANK, lc.ReceiveNotice()), handlers.reply(name, BANK, lc.ReplyNotice("FROZEN", amount_fen=1))
    )
    assert (received.notice.version, replied.notice.version) == (2, 3)
    assert replied.notice.state is NoticeState.ANSWERED and replied.notice.received_at == received.notice.received_at
    _, timeline = await handlers.get_timeline(name, COURT)
    assert [r["action"] for r in timeline] == ["SEND", "RECEIVE", "REPLY"]
    assert [s.rsplit(".", 1)[1] for _, s in await outbox(handlers)] == ["sent", "received", "answered", "effective"]


async def test_only_the_parties_see_a_notice_and_only_the_agency_replies(handlers: AssistanceHandlers) -> None:
    name = (await handlers.create_notice(command(), "gd0112")).notice.name
    for who in (COURT, BANK, ADMIN):
        assert (await handlers.get_notice(name, who)).notice.name == name
    for who in (OTHER_COURT, OTHER_BANK):
        with pytest.raises(NotFound):
            await handlers.get_notice(name, who)
        with pytest.raises(NotFound):
            await handlers.receive(name, who, lc.ReceiveNotice())
    with pytest.raises(PermissionDenied) as raised:
        await handlers.reply(name, COURT, lc.ReplyNotice("NOT_FOUND"))
    assert raised.value.reason == "NOT_ADDRESSED_AGENCY"
    with pytest.raises(PermissionDenied):
        await handlers.create_notice(command(), "zj0326")
    assert [s.notice.name for s in await handlers.list_notices(NoticeQuery(), 0, 10, BANK)] == [name]
    assert await handlers.list_notices(NoticeQuery(), 0, 10, OTHER_BANK) == []
    assert await handlers.list_notices(NoticeQuery(agency_id="bank-icbc"), 0, 10, OTHER_BANK) == []
    assert [s.notice.name for s in await handlers.list_notices(NoticeQuery(court_id="gd0112"), 0, 10, COURT)] == [name]
    with pytest.raises(PermissionDenied):
        await handlers.list_notices(NoticeQuery(court_id="gd0112"), 0, 10, OTHER_COURT)


async def test_a_stale_etag_or_a_wrong_state_changes_nothing(handlers: AssistanceHandlers) -> None:
    name = (await handlers.create_notice(command(), "gd0112")).notice.name
    await handlers.receive(name, BANK, lc.ReceiveNotice())
    before = await outbox(handlers)
    with pytest.raises(Aborted):
        await handlers.reply(name, BANK, lc.ReplyNotice("NOT_FOUND", expected_version=1))
    with pytest.raises(FailedPrecondition):
        await handlers.receive(name, BANK, lc.ReceiveNotice())
    with pytest.raises(FailedPrecondition):
        await handlers.answer_objection(name, COURT, lc.AnswerObjection("WITHDRAW"))
    assert await outbox(handlers) == before
    assert (await handlers.get_notice(name, BANK)).notice.version == 2


async def test_a_measure_against_someone_else_is_refused(handlers: AssistanceHandlers) -> None:
    stranger = replace(command(), target_details=NoticeTarget("李四", ACCOUNT))
    with pytest.raises(FailedPrecondition) as raised:
        await handlers.create_notice(stranger, "gd0112")
    assert raised.value.reason == "NOT_A_DEBTOR"
    assert await outbox(handlers) == []


async def test_registry_receipt_is_service_and_a_queued_seal_takes_effect_when_the_earlier_one_is_lifted(
    handlers: AssistanceHandlers, clock: Clock
) -> None:
    first = (await handlers.create_notice(command("SEAL_PROPERTY", "re-440100", HOUSE), "gd0112")).notice.name
    received = await handlers.receive(first, REGISTRY, lc.ReceiveNotice())
    assert received.notice.served_at == clock.now
    sealed = await handlers.reply(first, REGISTRY, lc.ReplyNotice("REGISTERED", reference="查封登记2023-7"))
    seizure_name = sealed.notice.resulting_seizure
    assert (await handlers.get_seizure(seizure_name, REGISTRY)).expires_at.date().isoformat() == "2026-09-20"  # 3 years

    second = (await handlers.create_notice(command("SEAL_PROPERTY", "re-440100", HOUSE), "gd0112")).notice.name
    queued = await handlers.reply(second, REGISTRY, lc.ReplyNotice("QUEUED", queue_position=1))
    assert queued.notice.waiting_in_queue and not queued.notice.resulting_seizure

    clock.advance(days=10)
    unseal = command("UNSEAL_PROPERTY", "re-440100", None, seizure=seizure_name)
    unseal = replace(unseal, target_details=None)
    release = (await handlers.create_notice(unseal, "gd0112")).notice.name
    await handlers.reply(release, REGISTRY, lc.ReplyNotice("REGISTERED"))
    assert (await handlers.get_seizure(seizure_name, COURT)).state is SeizureState.RELEASED
    promoted = (await handlers.get_notice(second, COURT)).notice
    assert promoted.result is not None and promoted.result.kind is ResultKind.QUEUED
    assert promoted.result.effective_at == clock.now and promoted.resulting_seizure
    new_seizure = await handlers.get_seizure(promoted.resulting_seizure, COURT)
    assert (new_seizure.state, new_seizure.effective_at) == (SeizureState.ACTIVE, clock.now)
    verbs = [s.rsplit(".", 1)[1] for _, s in await outbox(handlers)][-4:]
    assert verbs == ["answered", "released", "effective", "took-effect"]
    active = await handlers.list_seizures(SeizureQuery(state=SeizureState.ACTIVE), 0, 10, COURT)
    assert [s.seizure.name for s in active] == [new_seizure.name]


async def test_an_unanswered_objection_is_flagged_overdue_once(handlers: AssistanceHandlers, clock: Clock) -> None:
    name = (await handlers.create_notice(command(), "gd0112")).notice.name
    objected = await handlers.object_to(name, BANK, lc.ObjectToNotice("EXEMPT_PROPERTY", "社保基金专户"))
    assert objected.notice.objection is not None
    assert objected.notice.objection.answer_due.date().isoformat() == "2023-10-07"  # past 国庆, CPL art. 85
    scanner = NoticeScanner(handlers)
    clock.now = objected.notice.objection.answer_due
    assert (await scanner.scan_once())["objection-overdue"] == 0
    clock.advance(seconds=1)
    assert (await scanner.scan_once())["objection-overdue"] == 1
    assert (await scanner.scan_once())["objection-overdue"] == 0
    flagged = (await handlers.get_notice(name, COURT)).notice
    assert flagged.objection is not None and flagged.objection.overdue_flagged_at == clock.now
    assert flagged.version == objected.notice.version  # the court's etag still holds
    assert "rogatory.v1.notice.gd0112.bank-icbc.objection-overdue" in {s for _, s in await outbox(handlers)}
    answered = await handlers.answer_objection(
        name, COURT, lc.AnswerObjection("MAINTAIN", "账户为被执行人一般账户", expected_version=flagged.version)
    )
    assert answered.notice.state is NoticeState.RECEIVED
    frozen = await handlers.reply(name, BANK, lc.ReplyNotice("FROZEN", amount_fen=1))
    assert frozen.notice.state is NoticeState.ANSWERED
    assert await handlers.reader.run(lambda conn: store.overdue_objection_names(conn, clock.now + timedelta(days=100))) == []


async def test_the_overdue_mark_never_overwrites_a_newer_answer(handlers: AssistanceHandlers) -> None:
    name = (await handlers.create_notice(command(), "gd0112")).notice.name
    stale = (await handlers.object_to(name, BANK, lc.ObjectToNotice("DEFECTIVE_NOTICE"))).notice
    await handlers.answer_objection(name, COURT, lc.AnswerObjection("WITHDRAW"))
    assert stale.objection is not None
    flagged, _ = lc.flag_objection_overdue(stale, stale.objection.answer_due + timedelta(seconds=1))
    assert not await handlers.writer.run(lambda tx: store.save_annotation(tx.connection, flagged))
    assert (await handlers.get_notice(name, COURT)).notice.state is NoticeState.WITHDRAWN


@contextlib.asynccontextmanager
async def another_replica(handlers: AssistanceHandlers) -> AsyncIterator[AssistanceHandlers]:
    """The same service in another process on the same database: a Database (connection pool)
    of its own. Both replicas' connections are opened beforehand, so neither starts late."""
    db = handlers.db
    other = Database(db.url.render_as_string(hide_password=False), schema=db.schema)
    replica = replace(handlers, writer=Writer(other, Outbox()), reader=Reader(other))
    try:
        for warm in (handlers, replica):
            await asyncio.gather(*(warm.reader.run(lambda conn: conn.execute(text("SELECT 1")).all()) for _ in range(2)))
            await warm.writer.run(lambda tx: tx.connection.execute(text("SELECT 1")).all())
        yield replica
    finally:
        await replica.writer.close()
        await other.dispose()


async def test_two_replicas_scanning_at_once_flag_an_overdue_objection_once(handlers: AssistanceHandlers, clock: Clock) -> None:
    """Non-negotiable 11: the overdue mark leaves the version as it is, so the version guard
    alone let a second replica that read the notice before the first one's mark committed
    flag it again, with a second event and timeline entry (PostgreSQL)."""
    name = (await handlers.create_notice(command(), "gd0112")).notice.name
    objected = (await handlers.object_to(name, BANK, lc.ObjectToNotice("EXEMPT_PROPERTY", "社保基金专户"))).notice
    assert objected.objection is not None
    clock.now = objected.objection.answer_due + timedelta(seconds=1)
    async with another_replica(handlers) as replica:
        flagged = await asyncio.gather(handlers.flag_overdue_objections(), replica.flag_overdue_objections())
    assert sorted(flagged) == [0, 1]
    _, timeline = await handlers.get_timeline(name, COURT)
    assert [r["action"] for r in timeline].count("OBJECTION_OVERDUE") == 1
    assert [s for _, s in await outbox(handlers)].count("rogatory.v1.notice.gd0112.bank-icbc.objection-overdue") == 1


async def test_an_answer_racing_the_overdue_mark_keeps_what_the_timeline_says(
    handlers: AssistanceHandlers, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The overdue mark leaves the version as it is, so the version guard alone let the court's
    answer, read before another replica's mark committed, write over the mark: the timeline said
    OBJECTION_OVERDUE and the notice did not (PostgreSQL; SQLite has one writer). The answer's
    read is held open here until the other replica's scan has finished or waits for it."""
    if handlers.db.is_sqlite:
        pytest.skip("one writer on SQLite: a scan and an answer never interleave")
    name = (await handlers.create_notice(command(), "gd0112")).notice.name
    objected = (await handlers.object_to(name, BANK, lc.ObjectToNotice("EXEMPT_PROPERTY", "社保基金专户"))).notice
    assert objected.objection is not None
    clock.now = objected.objection.answer_due + timedelta(seconds=1)
    answer_read, go_on = asyncio.Event(), asyncio.Event()
    decide = lc.answer_objection

    def held_open(*args: Any) -> Any:
        answer_read.set()
        await_only(go_on.wait())  # inside the unit's transaction, its read done (greenlet of run_sync)
        return decide(*args)

    async with another_replica(handlers) as replica:
        monkeypatch.setattr(lc, "answer_objection", held_open)
        answering = asyncio.ensure_future(handlers.answer_objection(name, COURT, lc.AnswerObjection("WITHDRAW")))
        await wait_for(answer_read.is_set)
        scanning = asyncio.ensure_future(replica.flag_overdue_objections())
        await wait_for(lambda: scanning.done() or waiting_on_a_lock(handlers))
        go_on.set()
        await answering
        await scanning
    stored = (await handlers.get_notice(name, ADMIN)).notice
    _, timeline = await handlers.get_timeline(name, COURT)
    flagged_in_timeline = "OBJECTION_OVERDUE" in [r["action"] for r in timeline]
    assert stored.objection is not None
    assert flagged_in_timeline == (stored.objection.overdue_flagged_at is not None)


async def waiting_on_a_lock(handlers: AssistanceHandlers) -> bool:
    """Whether a session waits for a notice row another holds (PostgreSQL)."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND query ILIKE '%assistance_notice%FOR UPDATE%' AND datname = current_database()"
    )
    return bool(await handlers.reader.run(lambda conn: conn.execute(waiting).scalar()))
