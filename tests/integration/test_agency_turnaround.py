# ruff: noqa: F401, F811 - fixtures imported from test_notice_lifecycle_store are used as parameters
"""The agency turnaround read model, fed with the events the notice handlers wrote, on real
SQLite and PostgreSQL: figures per agency, kind and month; any event order; repeats."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select

from assistance import notice_lifecycle as lc
from registry.errors import InvalidArgument
from services.assistance.agency_turnaround import AGG, FACT, AgencyTurnaroundProjection, agency_turnaround_statistics
from services.assistance.handlers import AssistanceHandlers
from services.plumbing.events import ReceivedEvent
from services.plumbing.outbox import OUTBOX
from tests.conftest import Clock
from tests.integration.test_notice_lifecycle_store import (  # noqa: F401
    BANK,
    HOUSE,
    REGISTRY,
    another_replica,
    clock,
    command,
    handlers,
)


async def events(h: AssistanceHandlers) -> list[ReceivedEvent]:
    async with h.db.read() as conn:
        rows = list(await conn.execute(select(OUTBOX).order_by(OUTBOX.c.seq)))
    return [
        ReceivedEvent(r.event_id, r.event_type, r.subject, "rogatory/assistance", r.occurred_at, bytes(r.payload), {})
        for r in rows
    ]


async def project(h: AssistanceHandlers, received: list[ReceivedEvent]) -> None:
    projection = AgencyTurnaroundProjection(h.calendar)
    for event in received:
        await h.writer.run(lambda tx, event=event: projection.apply(tx, event))


async def scenario(h: AssistanceHandlers, clock: Clock) -> None:
    """Sept 2023 (Wed 20th, 10:00 China time): the bank acknowledges one freeze after 2 hours
    and answers after 1 day; a second one it answers directly after 3 days (across a weekend);
    the registry acknowledges a seal after 1 day and objects after 2 more."""
    start = clock.now
    one = (await h.create_notice(command(), "gd0112")).notice.name
    two = (await h.create_notice(command(), "gd0112")).notice.name
    seal = (await h.create_notice(command("SEAL_PROPERTY", "re-440100", HOUSE), "gd0112")).notice.name
    clock.advance(hours=2)
    await h.receive(one, BANK, lc.ReceiveNotice())
    clock.now = start + timedelta(days=1)
    await h.reply(one, BANK, lc.ReplyNotice("NOT_FOUND"))
    await h.receive(seal, REGISTRY, lc.ReceiveNotice())
    clock.advance(days=2)
    await h.reply(two, BANK, lc.ReplyNotice("FROZEN", amount_fen=100))
    await h.object_to(seal, REGISTRY, lc.ObjectToNotice("NOT_DEBTORS_PROPERTY", "已过户"))


async def statistics(h: AssistanceHandlers, filter_text: str = "", group_by: tuple[str, ...] = ()) -> Any:
    return await agency_turnaround_statistics(h.reader, filter_text, group_by)


async def test_figures_per_agency_and_kind(handlers: AssistanceHandlers, clock: Clock) -> None:
    await scenario(handlers, clock)
    await project(handlers, await events(handlers))
    answer = await statistics(handlers, group_by=("agency", "kind", "month"))
    groups = {(g.key["agency"], g.key["kind"]): g for g in answer.groups}
    assert set(groups) == {("agencies/bank-icbc", "FREEZE_DEPOSITS"), ("agencies/re-440100", "SEAL_PROPERTY")}
    bank = groups["agencies/bank-icbc", "FREEZE_DEPOSITS"]
    assert (bank.count, bank.answered_count, bank.objected_count) == (2, 2, 0)
    assert bank.key["month"] == "2023-09"
    # Acknowledged: 2 h, and (replying directly) 3 days; results after 1 and 3 days.
    assert bank.time_to_acknowledge.count == 2
    assert bank.time_to_acknowledge.mean_days == pytest.approx((2 / 24 + 3) / 2)
    assert bank.time_to_result.mean_days == pytest.approx(2.0)
    assert bank.time_to_result.median_days == pytest.approx(1.0, rel=0.1)
    assert bank.time_to_result.p90_days == pytest.approx(3.0, rel=0.1)
    # Wed 10:00 → Sat 10:00 is 2 working days (Thu 10:00 → Fri end of day counts 1.58… in
    # working time); what matters is that the weekend is not counted.
    assert bank.time_to_result.mean_working_days < bank.time_to_result.mean_days
    registry = groups["agencies/re-440100", "SEAL_PROPERTY"]
    assert (registry.count, registry.answered_count, registry.objected_count) == (1, 0, 1)
    assert registry.time_to_result.mean_days == pytest.approx(3.0)

    total = await statistics(handlers)
    assert [g.count for g in total.groups] == [3] and dict(total.groups[0].key) == {}
    only_bank = await statistics(handlers, 'agency = "agencies/bank-icbc"', ("kind",))
    assert [(dict(g.key), g.count) for g in only_bank.groups] == [({"kind": "FREEZE_DEPOSITS"}, 2)]
    assert (await statistics(handlers, 'month = "2023-10"')).groups == []


async def test_any_order_and_repeats_give_the_same_figures(handlers: AssistanceHandlers, clock: Clock) -> None:
    await scenario(handlers, clock)
    received = await events(handlers)
    await project(handlers, list(reversed(received)))
    await project(handlers, received[::2])  # redelivered events change nothing
    reversed_answer = await statistics(handlers, group_by=("agency", "kind"))
    assert [g.count for g in reversed_answer.groups] == [2, 1]
    bank = reversed_answer.groups[0]
    assert bank.time_to_acknowledge.mean_days == pytest.approx((2 / 24 + 3) / 2)
    assert bank.time_to_result.count == 2


async def projection_rows(h: AssistanceHandlers) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    def read(conn: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        facts = conn.execute(select(FACT).order_by(FACT.c.notice_name)).mappings()
        aggregates = conn.execute(select(AGG).order_by(AGG.c.agency_id, AGG.c.kind, AGG.c.month)).mappings()
        return [dict(r) for r in facts], [dict(r) for r in aggregates]

    return await h.reader.run(read)


def forget(tx: Any) -> None:
    """The projection starts afresh."""
    tx.connection.execute(delete(FACT))
    tx.connection.execute(delete(AGG))


async def test_a_batch_gives_the_rows_its_events_give_one_by_one(handlers: AssistanceHandlers, clock: Clock) -> None:
    """The consumer applies a fetch as one unit: the fact and aggregate rows are those of the
    same events applied one at a time, repeats and any order included."""
    await scenario(handlers, clock)
    received = await events(handlers)
    await project(handlers, received)
    one_by_one = await projection_rows(handlers)
    assert len(one_by_one[0]) == 3 and one_by_one[1]

    await handlers.writer.run(forget)
    projection = AgencyTurnaroundProjection(handlers.calendar)
    await handlers.writer.run(lambda tx: projection.apply_batch(tx, received))
    assert await projection_rows(handlers) == one_by_one
    await handlers.writer.run(forget)
    half = len(received) // 2
    await handlers.writer.run(lambda tx: projection.apply_batch(tx, [*reversed(received[half:]), *received[::2]]))
    await handlers.writer.run(lambda tx: projection.apply_batch(tx, [*received[:half], *received]))
    assert await projection_rows(handlers) == one_by_one


async def test_replicas_applying_a_notices_first_events_at_once_give_the_rows_of_one(
    handlers: AssistanceHandlers, clock: Clock
) -> None:
    """Two replicas of the consumer apply batches with the first events of the same notices
    side by side: the rows are inserted if absent and then locked, so neither fails on a row
    the other has just inserted (PostgreSQL), and the figures are those of one consumer."""
    await scenario(handlers, clock)
    received = await events(handlers)
    await project(handlers, received)
    one_by_one = await projection_rows(handlers)
    await handlers.writer.run(forget)
    projection = AgencyTurnaroundProjection(handlers.calendar)
    async with another_replica(handlers) as replica:
        await asyncio.gather(
            handlers.writer.run(lambda tx: projection.apply_batch(tx, received[::2])),
            replica.writer.run(lambda tx: projection.apply_batch(tx, received[1::2])),
        )
    assert await projection_rows(handlers) == one_by_one


@pytest.mark.parametrize(
    ("filter_text", "group_by"),
    [('kind = "SEIZE_CAR"', ()), ("", ("court",)), ('agency = "banks/x"', ()), ("nonsense", ())],
)
async def test_bad_queries_are_invalid_arguments(
    handlers: AssistanceHandlers, filter_text: str, group_by: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidArgument):
        await statistics(handlers, filter_text, group_by)
