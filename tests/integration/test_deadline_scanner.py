"""The deadline scanner on a moved clock, against real SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rogatory.events.v1 import events_pb2
from sqlalchemy import select

from delegation.deadlines import Step
from delegation.lifecycle import AcknowledgeDelegation, ReturnDelegationForSupplement
from delegation.matters import DelegationState
from delegation.supervision import ScanAction
from services.delegation.handlers import DelegationHandlers
from services.delegation.scanner import DeadlineScanner
from services.delegation.schedule import DeadlineStatus
from services.delegation.store import DEADLINES
from services.plumbing.outbox import OUTBOX
from tests.conftest import Clock
from tests.integration.test_delegation_lifecycle_store import (
    ENTRUSTED,
    ENTRUSTED_OFFICER,
    REQUESTING,
    principal,
    submit,
)


async def subjects(handlers: DelegationHandlers) -> Counter[str]:
    async with handlers.db.read() as conn:
        return Counter(r.subject.rsplit(".", 1)[1] for r in await conn.execute(select(OUTBOX.c.subject)))


async def deadline_row(handlers: DelegationHandlers, name: str, step: Step) -> Any:
    async with handlers.db.read() as conn:
        query = select(DEADLINES).where(DEADLINES.c.delegation_name == name, DEADLINES.c.step == str(step))
        return (await conn.execute(query)).mappings().one()


async def test_warns_then_marks_overdue_urges_and_escalates(handlers: DelegationHandlers, clock: Clock) -> None:
    name = (await submit(handlers)).delegation.name
    scanner = DeadlineScanner(handlers)
    ack_due = (await deadline_row(handlers, name, Step.ACKNOWLEDGE))["due_at"]
    assert (await scanner.scan_once()).actions == Counter()  # nothing is near yet

    clock.advance(days=6)  # within two days of the 7-day ACKNOWLEDGE deadline
    report = await scanner.scan_once()
    assert report.count(ScanAction.WARN_DUE_SOON) == 1
    assert (await scanner.scan_once()).actions == Counter()  # a warning is sent once

    clock.advance(days=2)  # past ACKNOWLEDGE
    report = await scanner.scan_once()
    assert report.count(ScanAction.MARK_OVERDUE) == 1 and report.count(ScanAction.URGE) == 1
    row = await deadline_row(handlers, name, Step.ACKNOWLEDGE)
    assert row["status"] == str(DeadlineStatus.OVERDUE) and row["due_at"] == ack_due
    stored = await handlers.get_delegation(name, principal(REQUESTING))
    assert stored.urge_count == 1 and stored.delegation.version == 1  # annotations keep the etag

    clock.advance(days=15)  # overdue long enough: escalate; START has also passed by now
    report = await scanner.scan_once()
    assert report.count(ScanAction.ESCALATE) >= 1
    sent = await subjects(handlers)
    assert sent["due-soon"] >= 1 and sent["overdue"] >= 1 and sent["urged"] >= 2 and sent["escalated"] >= 2
    async with handlers.db.read() as conn:
        supervision = [
            r.subject for r in await conn.execute(select(OUTBOX.c.subject)) if r.subject.startswith("rogatory.v1.supervision.")
        ]
    assert supervision and all(s == "rogatory.v1.supervision.ha01.escalated" for s in supervision)
    _, entries = await handlers.get_timeline(name, principal(REQUESTING))
    actions = [e.action for e in entries]
    assert actions[0] == "SUBMIT" and {"DUE_SOON", "OVERDUE", "URGE", "ESCALATE"} <= set(actions)
    assert all(e.officer == "system" for e in entries if e.action in {"DUE_SOON", "OVERDUE", "ESCALATE"})

    # The overdue matter shows on the supervising court's list.
    overdue = await handlers.list_overdue("ha01", principal("ha01"), None, 10)
    assert [s.delegation.name for s, _ in overdue] == [name]


async def test_a_late_step_closes_the_overdue_deadline_and_stops_urging(handlers: DelegationHandlers, clock: Clock) -> None:
    name = (await submit(handlers)).delegation.name
    scanner = DeadlineScanner(handlers)
    clock.advance(days=8)
    await scanner.scan_once()
    await handlers.acknowledge(name, ENTRUSTED, AcknowledgeDelegation(ENTRUSTED_OFFICER))
    assert (await deadline_row(handlers, name, Step.ACKNOWLEDGE))["status"] == str(DeadlineStatus.MET_LATE)
    clock.advance(days=8)  # a week later: ACKNOWLEDGE is no longer urged (START is, being overdue itself)
    before = (await subjects(handlers))["urged"]
    await scanner.scan_once()
    assert (await deadline_row(handlers, name, Step.ACKNOWLEDGE))["last_urged_at"] is not None
    urged = await subjects(handlers)
    assert urged["urged"] - before == 1  # only START's


async def test_a_missed_supplement_deadline_deems_the_matter_withdrawn(handlers: DelegationHandlers, clock: Clock) -> None:
    name = (await submit(handlers)).delegation.name
    await handlers.acknowledge(name, ENTRUSTED, AcknowledgeDelegation(ENTRUSTED_OFFICER))
    await handlers.return_for_supplement(name, ENTRUSTED, ReturnDelegationForSupplement("MISSING_RULING", ("执行裁定书",)))
    scanner = DeadlineScanner(handlers)
    clock.advance(days=45)  # the 30-day supplement period (moved past the National Day break) has passed
    report = await scanner.scan_once()
    assert report.count(ScanAction.DEEM_WITHDRAWN) == 1
    stored = await handlers.get_delegation(name, principal(REQUESTING))
    assert stored.delegation.state is DelegationState.WITHDRAWN
    assert str(stored.delegation.withdraw_reason) == "DEEMED_WITHDRAWN"
    assert not any(d.is_live for d in stored.deadlines)  # nothing left for the scanner to chase
    assert (await subjects(handlers))["withdrawn"] == 1
    assert (await scanner.scan_once()).actions == Counter()  # nothing more to do


async def test_events_carry_the_delegation_and_the_deadline(handlers: DelegationHandlers, clock: Clock) -> None:
    name = (await submit(handlers)).delegation.name
    clock.advance(days=8)
    await DeadlineScanner(handlers).scan_once()
    async with handlers.db.read() as conn:
        rows = (await conn.execute(select(OUTBOX).where(OUTBOX.c.subject.like("%.urged")))).mappings().all()
    urged = events_pb2.DelegationUrged.FromString(rows[0]["payload"])
    assert urged.automatic and urged.delegation.name == name and urged.delegation.urge_count == 1
    assert urged.deadline.step == urged.deadline.ACKNOWLEDGE
    assert rows[0]["subject"] == f"rogatory.v1.delegation.{REQUESTING}.{ENTRUSTED}.urged"


async def test_an_extended_deadline_is_not_overdue(handlers: DelegationHandlers, clock: Clock) -> None:
    name = (await submit(handlers)).delegation.name
    clock.advance(days=8)  # ACKNOWLEDGE (7 days) has passed, START (15 days) has not
    await handlers.extend_deadline(name, "ha01", "ACKNOWLEDGE", 10, "CALENDAR_DAY", "交通中断")
    report = await DeadlineScanner(handlers).scan_once()
    assert report.count(ScanAction.MARK_OVERDUE) == 0 and report.count(ScanAction.URGE) == 0
    assert (await deadline_row(handlers, name, Step.ACKNOWLEDGE))["status"] == str(DeadlineStatus.OPEN)
