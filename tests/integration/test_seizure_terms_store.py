# ruff: noqa: F401, F811 - fixtures imported from test_notice_lifecycle_store are used as parameters
"""Seizure terms through the handlers and the scanner, on real SQLite and PostgreSQL: expiry
reminders, renewal by a RENEW_* notice the agency confirms, lapse with the queue (轮候)
moving up, and who sees which seizures."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from assistance import notice_lifecycle as lc
from assistance.seizures import SeizureState
from registry.errors import FailedPrecondition
from services.assistance.handlers import AssistanceHandlers
from services.assistance.notice_scanner import NoticeScanner
from services.assistance.store import SeizureQuery
from services.plumbing.outbox import OUTBOX
from tests.conftest import Clock
from tests.integration.test_notice_lifecycle_store import (
    BANK,
    COURT,
    HOUSE,
    OTHER_BANK,
    REGISTRY,
    another_replica,
    clock,
    command,
    handlers,
)


async def subjects(h: AssistanceHandlers) -> list[str]:
    async with h.db.read() as conn:
        return [r.subject for r in await conn.execute(select(OUTBOX).order_by(OUTBOX.c.seq))]


async def freeze(h: AssistanceHandlers) -> str:
    name = (await h.create_notice(command(), "gd0112")).notice.name
    return (await h.reply(name, BANK, lc.ReplyNotice("FROZEN", amount_fen=700_000_000))).notice.resulting_seizure


async def test_a_reminder_comes_once_and_a_confirmed_renewal_extends_the_term(handlers: AssistanceHandlers, clock: Clock) -> None:
    seizure_name = await freeze(handlers)
    first_end = (await handlers.get_seizure(seizure_name, COURT)).expires_at
    scanner = NoticeScanner(handlers)
    clock.now = first_end - handlers.reminder_lead - timedelta(seconds=1)
    assert (await scanner.scan_once())["expiring"] == 0
    clock.advance(seconds=1)
    assert (await scanner.scan_once())["expiring"] == 1
    assert (await scanner.scan_once())["expiring"] == 0
    assert (await subjects(handlers)).count("rogatory.v1.seizure.gd0112.bank-icbc.expiring") == 1

    renewal = replace(command("RENEW_FREEZE_DEPOSITS", seizure=seizure_name), target_details=None)
    notice = (await handlers.create_notice(renewal, "gd0112")).notice
    assert notice.target_details is not None and notice.target_details.debtor  # taken from the seizure
    await handlers.reply(notice.name, BANK, lc.ReplyNotice("REGISTERED", reference="续冻2024-1"))
    renewed = await handlers.get_seizure(seizure_name, COURT)
    assert (renewed.renewal_count, renewed.state) == (1, SeizureState.ACTIVE)
    assert renewed.expires_at.date().isoformat() == "2025-09-20"
    assert (await subjects(handlers))[-1] == "rogatory.v1.seizure.gd0112.bank-icbc.renewed"
    clock.now = first_end + timedelta(days=1)
    report = await scanner.scan_once()
    assert (report["lapsed"], report["expiring"]) == (0, 0)


async def test_an_unrenewed_seal_lapses_and_the_queued_one_takes_effect(handlers: AssistanceHandlers, clock: Clock) -> None:
    first = (await handlers.create_notice(command("SEAL_PROPERTY", "re-440100", HOUSE), "gd0112")).notice.name
    seizure_name = (await handlers.reply(first, REGISTRY, lc.ReplyNotice("REGISTERED"))).notice.resulting_seizure
    second = (await handlers.create_notice(command("SEAL_PROPERTY", "re-440100", HOUSE), "gd0112")).notice.name
    await handlers.reply(second, REGISTRY, lc.ReplyNotice("QUEUED", queue_position=1))
    end = (await handlers.get_seizure(seizure_name, COURT)).expires_at
    clock.now = end + timedelta(minutes=1)
    report = await NoticeScanner(handlers).scan_once()
    assert report["lapsed"] == 1
    assert (await handlers.get_seizure(seizure_name, COURT)).state is SeizureState.LAPSED
    promoted = (await handlers.get_notice(second, REGISTRY)).notice
    assert promoted.result is not None and promoted.result.effective_at == clock.now
    successor = await handlers.get_seizure(promoted.resulting_seizure, COURT)
    assert successor.state is SeizureState.ACTIVE and successor.expires_at > clock.now + timedelta(days=3 * 365 - 2)
    tail = (await subjects(handlers))[-3:]
    assert tail == [
        "rogatory.v1.seizure.gd0112.re-440100.lapsed",
        "rogatory.v1.seizure.gd0112.re-440100.effective",
        "rogatory.v1.notice.gd0112.re-440100.took-effect",
    ]
    late = replace(command("RENEW_SEAL_PROPERTY", "re-440100", None, seizure=seizure_name), target_details=None)
    with pytest.raises(FailedPrecondition) as raised:
        await handlers.create_notice(late, "gd0112")
    assert raised.value.reason == "SEIZURE_NOT_ACTIVE"


async def test_each_party_lists_its_own_seizures(handlers: AssistanceHandlers) -> None:
    seizure_name = await freeze(handlers)
    for who in (COURT, BANK):
        assert [s.seizure.name for s in await handlers.list_seizures(SeizureQuery(), 0, 10, who)] == [seizure_name]
    assert await handlers.list_seizures(SeizureQuery(), 0, 10, OTHER_BANK) == []
    assert await handlers.list_seizures(SeizureQuery(state=SeizureState.LAPSED), 0, 10, COURT) == []


async def test_a_renewal_confirmed_after_the_term_ended_does_not_revive_it(handlers: AssistanceHandlers, clock: Clock) -> None:
    seizure_name = await freeze(handlers)
    end = (await handlers.get_seizure(seizure_name, COURT)).expires_at
    clock.now = end - timedelta(days=2)
    renewal = replace(command("RENEW_FREEZE_DEPOSITS", seizure=seizure_name), target_details=None)
    notice = (await handlers.create_notice(renewal, "gd0112")).notice
    clock.now = end + timedelta(hours=1)  # the bank confirms too late
    replied = await handlers.reply(notice.name, BANK, lc.ReplyNotice("REGISTERED"))
    assert replied.notice.state.value == "ANSWERED"
    assert (await handlers.get_seizure(seizure_name, COURT)).renewal_count == 0
    assert (await NoticeScanner(handlers).scan_once())["lapsed"] == 1


async def test_two_replicas_scanning_at_once_remind_once(handlers: AssistanceHandlers, clock: Clock) -> None:
    """Non-negotiable 11: the reminder leaves the seizure's version as it is, so the version
    guard alone let a second replica that read the seizure before the first one's reminder
    committed send it again (PostgreSQL)."""
    seizure_name = await freeze(handlers)
    clock.now = (await handlers.get_seizure(seizure_name, COURT)).expires_at - handlers.reminder_lead
    async with another_replica(handlers) as replica:
        reports = await asyncio.gather(handlers.watch_seizures(), replica.watch_seizures())
    assert sorted(report["expiring"] for report in reports) == [0, 1]
    assert (await subjects(handlers)).count("rogatory.v1.seizure.gd0112.bank-icbc.expiring") == 1
