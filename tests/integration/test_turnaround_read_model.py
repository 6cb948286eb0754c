"""The turnaround read model on a real database: events in (through the consumer's inbox),
statistics out, with a redelivery and events out of order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rogatory.delegation.v1 import delegation_pb2 as pb
from rogatory.events.v1 import events_pb2
from sqlalchemy import delete, select
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.engine import Connection

from delegation.calendar import CHINA_TZ, WorkingCalendar
from delegation.turnaround import RELATIVE_ERROR_BOUND, bucket_bounds, bucket_of, decode_histograms
from registry.courts import CourtCatalog
from registry.errors import InvalidArgument
from services.delegation.turnaround import (
    AGG,
    CONSUMER,
    FACT,
    KEY_COLUMNS,
    TOTAL_FIELDS,
    StatisticsQuery,
    TurnaroundProjection,
    _locked_histograms,
    rebuild_aggregates,
    turnaround_statistics,
)
from services.plumbing.consumer import INBOX, Consumer, JetStreamSource
from services.plumbing.db import Database
from services.plumbing.events import ReceivedEvent
from services.plumbing.ids import new_id
from services.plumbing.migrations import upgrade_to_head
from services.plumbing.unit_of_work import Reader, Writer
from tests.integration.test_histogram_storage import migrate

HOUR = 3_600 / 86_400  # in days


def cst(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CHINA_TZ)


def ts(instant: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(instant.astimezone(UTC))
    return stamp


def snapshot(number: int, requesting: str, entrusted: str, kind: str, created: datetime, **fields: Any) -> pb.Delegation:
    finish_due = fields.pop("finish_due", None)
    delegation = pb.Delegation(
        name=f"courts/{requesting}/delegations/d{number}",
        entrusted_court=f"courts/{entrusted}",
        matter_kind=pb.Delegation.MatterKind.Value(kind),
        create_time=ts(created),
        **{name: ts(value) if isinstance(value, datetime) else value for name, value in fields.items()},
    )
    if finish_due:
        delegation.deadlines.add(step=pb.Deadline.FINISH, due_time=ts(finish_due), status=pb.Deadline.OPEN)
    return delegation


def event(verb: str, message: Message, at: datetime, event_id: str | None = None) -> ReceivedEvent:
    delegation = message.delegation  # type: ignore[attr-defined]
    requesting = delegation.name.split("/")[1]
    entrusted = delegation.entrusted_court.removeprefix("courts/")
    return ReceivedEvent(
        event_id=event_id or new_id(),
        event_type=f"rogatory.delegation.{verb}.v1",
        subject=f"rogatory.v1.delegation.{requesting}.{entrusted}.{verb}",
        source="rogatory/delegation",
        occurred_at=at,
        data=message.SerializeToString(),
        headers={},
    )


def transitioned(verb: str, delegation: pb.Delegation, at: datetime, action: str, reason: str = "") -> ReceivedEvent:
    entry = pb.DelegationTimeline.Entry(action=action, to_state=delegation.state, time=ts(at), reason_code=reason)
    return event(verb, events_pb2.DelegationTransitioned(delegation=delegation, transition=entry), at)


def submitted(delegation: pb.Delegation) -> ReceivedEvent:
    return event("submitted", events_pb2.DelegationSubmitted(delegation=delegation), delegation.create_time.ToDatetime(UTC))


S = pb.Delegation
DUE = cst("2024-03-18T23:59:59")


def scenario() -> list[ReceivedEvent]:
    """Five matters, in delivery order (see the expectations in the tests below)."""
    t1 = cst("2024-03-04T09:00:00")  # 1: 粤→豫, acknowledged in 6 h, completed in 1 day, on time
    m1 = snapshot(1, "gd0112", "ha0122", "DEPOSITS", t1, state=S.SUBMITTED, finish_due=DUE)
    m1_ack = snapshot(1, "gd0112", "ha0122", "DEPOSITS", t1, state=S.ACKNOWLEDGED, finish_due=DUE)
    m1_done = snapshot(1, "gd0112", "ha0122", "DEPOSITS", t1, state=S.COMPLETED, finish_due=DUE)
    t2 = cst("2024-03-06T10:00:00")  # 2: 粤→豫, acknowledged in 1 day, then returned
    m2 = snapshot(2, "gd0112", "ha0122", "DEPOSITS", t2, state=S.SUBMITTED)
    m2_ack = snapshot(2, "gd0112", "ha0122", "DEPOSITS", t2, state=S.ACKNOWLEDGED, acknowledge_time=cst("2024-03-07T10:00:00"))
    m2_ret = snapshot(
        2,
        "gd0112",
        "ha0122",
        "DEPOSITS",
        t2,
        state=S.RETURNED,
        acknowledge_time=cst("2024-03-07T10:00:00"),
        return_time=cst("2024-03-08T10:00:00"),
        return_reason=pb.NOT_WITHIN_JURISDICTION,
    )
    t3 = cst("2024-03-08T16:00:00")  # 3: 粤→粤, acknowledged Monday, completed late, reported overdue
    m3 = snapshot(3, "gd0112", "gd0703", "REAL_ESTATE_OR_REGISTERED_MOVABLES", t3, state=S.SUBMITTED, finish_due=DUE)
    m3_ack = snapshot(3, "gd0112", "gd0703", "REAL_ESTATE_OR_REGISTERED_MOVABLES", t3, state=S.ACKNOWLEDGED, finish_due=DUE)
    m3_done = snapshot(3, "gd0112", "gd0703", "REAL_ESTATE_OR_REGISTERED_MOVABLES", t3, state=S.COMPLETED, finish_due=DUE)
    t4 = cst("2024-03-11T09:00:00")  # 4: 浙→浙, withdrawn the next day
    m4 = snapshot(4, "zj0326", "zj0106", "DEPOSITS", t4, state=S.SUBMITTED)
    m4_wd = snapshot(4, "zj0326", "zj0106", "DEPOSITS", t4, state=S.WITHDRAWN)
    t5 = datetime(2024, 3, 31, 17, 0, tzinfo=UTC)  # 5: 01:00 on April 1 in China; no deadline known
    m5 = snapshot(5, "gd0112", "ha0122", "DEPOSITS", t5, state=S.SUBMITTED)
    m5_done = snapshot(5, "gd0112", "ha0122", "DEPOSITS", t5, state=S.COMPLETED)

    m1_completed = transitioned("completed", m1_done, cst("2024-03-05T09:00:00"), "COMPLETE", "EXECUTED")
    m3_overdue = event(
        "overdue",
        events_pb2.DelegationDeadlineReached(delegation=m3_ack, deadline=m3_ack.deadlines[0]),
        cst("2024-03-19T00:00:00"),
    )
    return [
        submitted(m1),
        m1_completed,  # out of order: completion before acknowledgement
        transitioned("acknowledged", m1_ack, cst("2024-03-04T15:00:00"), "ACKNOWLEDGE"),
        m1_completed,  # redelivered: the inbox drops it
        # Matter 2 arrives backwards: its return first, its submission last.
        transitioned("returned", m2_ret, cst("2024-03-08T10:00:00"), "RETURN", "NOT_WITHIN_JURISDICTION"),
        transitioned("acknowledged", m2_ack, cst("2024-03-07T10:00:00"), "ACKNOWLEDGE"),
        submitted(m2),
        submitted(m3),
        transitioned("acknowledged", m3_ack, cst("2024-03-11T10:00:00"), "ACKNOWLEDGE"),
        m3_overdue,
        event("urged", events_pb2.DelegationUrged(delegation=m3_ack, automatic=True), cst("2024-03-19T00:00:00")),
        event("urged", events_pb2.DelegationUrged(delegation=m3_ack, note="请尽快"), cst("2024-03-19T09:00:00")),
        event(
            "escalated",
            events_pb2.DelegationEscalated(delegation=m3_ack, superior_court="courts/gd07"),
            cst("2024-03-20T00:00:00"),
        ),
        m3_overdue,  # redelivered
        transitioned("completed", m3_done, cst("2024-03-20T16:00:00"), "COMPLETE", "EXECUTED"),
        submitted(m4),
        transitioned("withdrawn", m4_wd, cst("2024-03-12T09:00:00"), "WITHDRAW", "NO_LONGER_NEEDED"),
        submitted(m5),
        transitioned("completed", m5_done, cst("2024-04-03T01:00:00"), "COMPLETE", "EXECUTED"),
        event("some-new-verb", events_pb2.DelegationSubmitted(delegation=m5), cst("2024-04-04T00:00:00")),
    ]


def projection_consumer(db: Database) -> Consumer:
    projection = TurnaroundProjection(CourtCatalog.default(), WorkingCalendar.default())
    return Consumer(
        JetStreamSource(None, stream="ROGATORY", durable=CONSUMER, filter_subjects=[]),  # type: ignore[arg-type]
        writer=Writer(db),
        batch_handler=projection.apply_batch,
    )


async def fed_database(service_db_factory: Any, process: str) -> tuple[Database, Consumer]:
    """The scenario applied one event at a time to `process`'s database."""
    db: Database = await service_db_factory(process)
    consumer = projection_consumer(db)
    for received in scenario():
        await consumer.apply_once(received)
    return db, consumer


@pytest.fixture
async def fed(service_db_factory: Any) -> tuple[Database, Consumer]:
    return await fed_database(service_db_factory, "turnaround")  # the projector's database


async def stats(db: Database, filter_text: str = "", group_by: tuple[str, ...] = ()) -> dict[str, pb.TurnaroundStatistics.Group]:
    result = await turnaround_statistics(Reader(db), filter_text, group_by)
    return {"|".join(f"{k}={g.key[k]}" for k in group_by): g for g in result.groups}


def in_bucket_of(value: float, exact: float) -> bool:
    lower, upper = bucket_bounds(bucket_of(exact))
    return lower <= value <= upper and abs(value - exact) <= RELATIVE_ERROR_BOUND * exact


async def test_redeliveries_are_dropped_and_facts_merge_out_of_order(fed: tuple[Database, Consumer]) -> None:
    db, consumer = fed
    assert consumer.duplicates == 2 and consumer.applied == 18
    async with db.read() as conn:
        rows = {r["name"]: r for r in (await conn.execute(select(FACT))).mappings()}
    m1, m2, m3 = (rows[f"courts/gd0112/delegations/d{n}"] for n in (1, 2, 3))
    assert (m1["state"], m1["on_time"], m1["ack_seconds"], m1["complete_seconds"]) == ("COMPLETED", True, 6 * 3600, 86_400)
    assert (m2["state"], m2["return_reason"], m2["month"], m2["cross_province"]) == (
        "RETURNED",
        "NOT_WITHIN_JURISDICTION",
        "2024-03",
        True,
    )
    assert (m3["state"], m3["urge_count"], m3["overdue"], m3["overdue_reported"], m3["on_time"]) == (
        "COMPLETED",
        2,
        True,
        True,
        False,
    )
    assert m3["escalated_at"] is not None and m3["cross_province"] is False
    assert rows["courts/gd0112/delegations/d5"]["month"] == "2024-04"


async def test_in_province_against_cross_province(fed: tuple[Database, Consumer]) -> None:
    db, _ = fed
    groups = await stats(db, 'month = "2024-03"', ("cross_province",))
    assert set(groups) == {"cross_province=true", "cross_province=false"}
    cross, local = groups["cross_province=true"], groups["cross_province=false"]

    # Matters 1 and 2: one completed on time, one returned.
    assert (cross.count, cross.completion_rate, cross.return_rate, cross.on_time_rate, cross.overdue_count) == (
        2,
        0.5,
        0.5,
        1.0,
        0,
    )
    assert dict(cross.returns_by_reason) == {"NOT_WITHIN_JURISDICTION": 1}
    assert cross.time_to_acknowledge.count == 2
    assert cross.time_to_acknowledge.mean_days == pytest.approx((6 * HOUR + 1.0) / 2)
    assert in_bucket_of(cross.time_to_acknowledge.median_days, 6 * HOUR)  # nearest rank: the lower of two
    assert in_bucket_of(cross.time_to_acknowledge.p90_days, 1.0)
    assert (cross.time_to_complete.count, cross.time_to_complete.mean_days) == (1, 1.0)
    assert cross.time_to_complete.mean_working_days == pytest.approx(1.0)

    # Matters 3 and 4: one completed late (overdue), one withdrawn (not finished).
    assert (local.count, local.completion_rate, local.return_rate, local.on_time_rate, local.overdue_count) == (
        2,
        1.0,
        0.0,
        0.0,
        1,
    )
    assert dict(local.returns_by_reason) == {}
    assert local.time_to_acknowledge.mean_days == pytest.approx(2.75)
    assert local.time_to_acknowledge.mean_working_days == pytest.approx(0.75)  # Fri 8 h + Mon 10 h
    assert local.time_to_complete.mean_days == pytest.approx(12.0)
    assert local.time_to_complete.mean_working_days == pytest.approx(8.0)
    assert in_bucket_of(local.time_to_complete.median_working_days, 8.0)


async def test_grouping_by_province_pair_court_and_month(fed: tuple[Database, Consumer]) -> None:
    db, _ = fed
    pairs = await stats(db, "", ("province_pair",))
    assert {k: g.count for k, g in pairs.items()} == {
        "province_pair=gd-gd": 1,
        "province_pair=gd-ha": 3,
        "province_pair=zj-zj": 1,
    }
    by_month = await stats(db, 'entrusted_court = "courts/ha0122"', ("month",))
    assert {k: g.count for k, g in by_month.items()} == {"month=2024-03": 2, "month=2024-04": 1}
    april = by_month["month=2024-04"]
    assert (april.completion_rate, april.on_time_rate, april.time_to_acknowledge.count) == (1.0, 0.0, 0)
    courts = await stats(db, "cross_province = false AND matter_kind = DEPOSITS", ("entrusted_court", "requesting_court"))
    assert {k: g.count for k, g in courts.items()} == {"entrusted_court=courts/zj0106|requesting_court=courts/zj0326": 1}
    everything = await stats(db)
    assert list(everything) == [""] and everything[""].count == 5
    assert everything[""].completion_rate == pytest.approx(3 / 4)
    nothing = await stats(db, 'month = "2030-01"')
    assert nothing[""].count == 0 and nothing[""].completion_rate == 0.0


async def test_every_grain_agrees_and_a_rebuild_from_facts_gives_the_same_rows(fed: tuple[Database, Consumer]) -> None:
    db, _ = fed
    for group_by in [(), ("month",), ("matter_kind", "month"), ("entrusted_court",), ("requesting_court",), ("province_pair",)]:
        groups = await stats(db, "", group_by)
        assert sum(g.count for g in groups.values()) == 5, group_by
        assert sum(g.time_to_complete.count for g in groups.values()) == 3, group_by
    incremental = await _rows(db)
    async with db.transaction() as conn:
        await rebuild_aggregates(conn)
    assert await _rows(db) == incremental


@pytest.mark.parametrize("batch_size", [3, 64])
async def test_batches_give_the_rows_of_one_event_at_a_time(fed: tuple[Database, Consumer], batch_size: int) -> None:
    """A batch reads each matter once and adds the sum of its deltas: the same facts and
    aggregates as the events one by one, the redeliveries inside a batch dropped too."""
    db, _ = fed
    one_by_one = (await _rows(db), await _facts(db))
    async with db.transaction() as conn:
        for table in (AGG, FACT, INBOX):
            await conn.execute(delete(table))
    consumer = projection_consumer(db)
    events = scenario()
    for start in range(0, len(events), batch_size):
        await consumer.apply_batch(events[start : start + batch_size])
    assert (consumer.applied, consumer.duplicates) == (18, 2)
    assert (await _rows(db), await _facts(db)) == one_by_one


async def test_the_rows_a_batch_changes_are_found_by_their_key(fed: tuple[Database, Consumer]) -> None:
    """The aggregate table grows with the history: a batch must find its rows by primary
    key. On SQLite a row-value `IN (VALUES …)` scanned the whole table for every batch."""
    db, _ = fed
    if not db.is_sqlite:
        pytest.skip("PostgreSQL plans the row-value IN as primary-key searches (BitmapOr); the join is SQLite's")
    async with db.read() as conn:
        stored = {tuple(row[:-1]): row[-1] for row in await conn.execute(select(*AGG.c[KEY_COLUMNS], AGG.c.histograms))}
    keys = sorted(stored)[:3]
    missing = ("CCKA", "nowhere", "nobody", "DEPOSITS", "1999-01", False)

    def look_up(conn: Connection) -> tuple[list[str], dict[tuple[Any, ...], bytes]]:
        executed: list[tuple[str, Any]] = []

        def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            executed.append((statement, parameters))

        sqlalchemy_event.listen(conn, "before_cursor_execute", capture)
        try:
            found = _locked_histograms(conn, [*keys, missing])
        finally:
            sqlalchemy_event.remove(conn, "before_cursor_execute", capture)
        [(sql, params)] = executed
        return [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)], found

    plan, found = await db.run_read(look_up)
    assert any(step.startswith("SEARCH a USING") for step in plan), plan
    assert not any(step.startswith("SCAN a") for step in plan), plan
    assert found == {key: stored[key] for key in keys}


async def _facts(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        return [dict(row) for row in (await conn.execute(select(FACT).order_by(FACT.c.name))).mappings()]


async def _rows(db: Database) -> set[tuple[Any, ...]]:
    """Aggregate rows that hold something (a delta may leave zeros behind), histograms unpacked."""
    async with db.read() as conn:
        rows = (await conn.execute(select(AGG))).mappings().all()
    return {
        (*[row[c] for c in AGG.c.keys() if c != "histograms"], decode_histograms(row["histograms"]))
        for row in rows
        if any(row[f] for f in TOTAL_FIELDS) or row["histograms"]
    }


@pytest.mark.parametrize(
    ("filter_text", "group_by", "field"),
    [
        ('court = "courts/gd0112"', (), "filter"),
        ('month = "2024-13"', (), "filter"),
        ("cross_province = maybe", (), "filter"),
        ('entrusted_court = "gd0112"', (), "filter"),
        ("matter_kind = CARS", (), "filter"),
        ("", ("month", "province"), "group_by[1]"),
        ("", ("month", "month"), "group_by[1]"),
    ],
)
def test_bad_queries_name_the_field(filter_text: str, group_by: tuple[str, ...], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        StatisticsQuery.parse(filter_text, group_by)
    assert [v.field for v in caught.value.violations] == [field]


def test_queries_read_the_smallest_grain_that_holds_them() -> None:
    def grain(filter_text: str, *group_by: str) -> str:
        return StatisticsQuery.parse(filter_text, group_by).grain.code

    assert grain("") == "AAAA"
    assert grain("cross_province = true", "month") == "AAAM"
    assert grain('entrusted_court = "courts/ha0122"', "month") == "CAAM"
    assert grain('requesting_court = "courts/gd0112"', "matter_kind") == "ACKA"
    assert grain("", "province_pair") == "PPAA"
    assert grain('entrusted_court = "courts/ha0122"', "province_pair") == "CCAA"
    assert grain('month = "2024-03" AND matter_kind = DEPOSITS', "entrusted_court", "requesting_court") == "CCKM"


# --- open and overdue now -------------------------------------------------------------------------------------


def with_deadlines(delegation: pb.Delegation, **status_by_step: int) -> pb.Delegation:
    """The snapshot with its ACKNOWLEDGE (and other) deadlines in the given statuses."""
    copy = pb.Delegation()
    copy.CopyFrom(delegation)
    for step, status in status_by_step.items():
        copy.deadlines.add(step=pb.Deadline.Step.Value(step), due_time=ts(DUE), status=status)
    return copy


def overdue(delegation: pb.Delegation, at: datetime, step: int = pb.Deadline.ACKNOWLEDGE) -> ReceivedEvent:
    reached = pb.Deadline(step=step, due_time=ts(DUE), status=pb.Deadline.OVERDUE)
    return event("overdue", events_pb2.DelegationDeadlineReached(delegation=delegation, deadline=reached), at)


def late_matters() -> list[ReceivedEvent]:
    """粤→豫 in March 2024, besides matters 1 and 2 (one completed on time, one returned):
    6 never acknowledged (overdue, still open); 7 overdue, then acknowledged late (its
    acknowledgement event delivered first); 8 overdue, then returned; 9 overdue on the
    requesting court's SUPPLEMENT deadline only."""
    t = cst("2024-03-12T09:00:00")
    late, after = cst("2024-03-19T00:00:00"), cst("2024-03-20T10:00:00")

    def matter(number: int, state: int, **statuses: int) -> pb.Delegation:
        return with_deadlines(snapshot(number, "gd0112", "ha0122", "DEPOSITS", t, state=state), **statuses)

    m6, m7, m8, m9 = (matter(n, S.SUBMITTED, ACKNOWLEDGE=pb.Deadline.OPEN) for n in (6, 7, 8, 9))
    m6_late, m7_late, m8_late = (matter(n, S.SUBMITTED, ACKNOWLEDGE=pb.Deadline.OVERDUE) for n in (6, 7, 8))
    m7_ack = matter(7, S.ACKNOWLEDGED, ACKNOWLEDGE=pb.Deadline.MET_LATE, FINISH=pb.Deadline.OPEN)
    m8_ret = matter(8, S.RETURNED, ACKNOWLEDGE=pb.Deadline.OVERDUE)
    m8_ret.return_time.CopyFrom(ts(after))
    m9_late = matter(9, S.RETURNED_FOR_SUPPLEMENT, ACKNOWLEDGE=pb.Deadline.MET, SUPPLEMENT=pb.Deadline.OVERDUE)
    return [
        submitted(m6),
        overdue(m6_late, late),
        event("urged", events_pb2.DelegationUrged(delegation=m6_late, automatic=True), late),
        submitted(m7),
        transitioned("acknowledged", m7_ack, after, "ACKNOWLEDGE"),
        overdue(m7_late, late),  # older than the acknowledgement: it does not undo it
        submitted(m8),
        overdue(m8_late, late),
        transitioned("returned", m8_ret, after, "RETURN", "NOT_WITHIN_JURISDICTION"),
        submitted(m9),
        overdue(m9_late, late, step=pb.Deadline.SUPPLEMENT),
    ]


async def test_open_and_overdue_now_is_apart_from_completed_on_time(fed: tuple[Database, Consumer]) -> None:
    """The figures an admin saw as "On time 100.0%" next to "Overdue 4": the share is of the
    completed matters, the open-and-overdue count of the open ones (only matter 6; 9 is late
    on the requesting court's SUPPLEMENT deadline, which went overdue but is not the
    entrusted court's)."""
    db, consumer = fed
    for received in late_matters():
        await consumer.apply_once(received)
    groups = await stats(db, 'month = "2024-03" AND cross_province = true', ("entrusted_court",))
    ha0122 = groups["entrusted_court=courts/ha0122"]
    assert (ha0122.count, ha0122.on_time_rate, ha0122.overdue_count, ha0122.open_overdue_count) == (6, 1.0, 4, 1)
    async with db.read() as conn:
        rows = {r["name"].rsplit("/d", 1)[1]: r for r in (await conn.execute(select(FACT))).mappings()}
    assert {n: (rows[n]["overdue_now"], rows[n]["overdue_reported"]) for n in "6789"} == {
        "6": (True, True),
        "7": (False, True),
        "8": (True, True),  # returned: finished, so not open
        "9": (False, True),
    }
    everything = await stats(db)
    assert everything[""].open_overdue_count == 1 and everything[""].overdue_count == 5  # and matter 3, completed late

    incremental = await _rows(db)
    async with db.transaction() as conn:
        await rebuild_aggregates(conn)
    assert await _rows(db) == incremental

    # Completing the open matter takes it out of the count.
    done = with_deadlines(snapshot(6, "gd0112", "ha0122", "DEPOSITS", cst("2024-03-12T09:00:00"), state=S.COMPLETED))
    await consumer.apply_once(transitioned("completed", done, cst("2024-03-21T09:00:00"), "COMPLETE", "EXECUTED"))
    assert (await stats(db))[""].open_overdue_count == 0


async def test_the_migration_counts_the_open_overdue_matters_of_before(service_db_factory: Any) -> None:
    """delegation_0008 starts facts from "reported overdue and not finished" and sums the new
    aggregate column in SQL: the same rows as the read model's own rebuild from those facts
    (in the delegation database, where the read model was kept before its projector had its own)."""
    db, consumer = await fed_database(service_db_factory, "delegation")
    for received in late_matters():
        await consumer.apply_once(received)
    await migrate(db, "delegation", "delegation_0007")
    await upgrade_to_head(db, "delegation")
    async with db.read() as conn:
        facts = {r["name"].rsplit("/d", 1)[1]: r["overdue_now"] for r in (await conn.execute(select(FACT))).mappings()}
    assert {n for n, now in facts.items() if now} == {"6", "7"}  # 7 was acknowledged late: not known before
    migrated = await _rows(db)
    async with db.transaction() as conn:
        await rebuild_aggregates(conn)
    assert await _rows(db) == migrated
    assert (await stats(db))[""].open_overdue_count == 2
