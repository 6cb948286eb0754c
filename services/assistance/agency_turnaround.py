"""Agency turnaround read model: how long agencies take to acknowledge a notice and to
reply with a result, per agency, notice kind and month of sending (DOMAIN.md: "Per agency:
time to reply per assistance kind").

Kept like the courts' figures (services/delegation/turnaround.py) and with the same math
(delegation/turnaround.py): per notice a fact row built only from the recorded timestamps
the notice events carry (sent, received, replied or objected; earliest wins, so events may
arrive in any order or twice), and per (agency, kind, month) the sums of every notice's
contribution with packed log-bucket histograms for median and p90. A change of facts
changes the sums by `after - before`. "Result" is the reply or the objection, whichever
came first: both are the agency's answer to the notice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from rogatory.assistance.v1 import assistance_pb2 as pb
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from assistance.notices import NoticeKind
from delegation.calendar import WorkingCalendar
from delegation.turnaround import (
    Durations,
    decode_histograms,
    encode_histograms,
    histogram_buckets,
    month_of,
    packed_hits,
    packed_to_bytes,
    summarise_packed,
    working_seconds,
)
from registry.errors import FieldViolation, InvalidArgument
from services.assistance.tables import AgencyTurnaroundAggregateRow, AgencyTurnaroundFactRow
from services.contract.events import aggregate_filter, in_aggregate
from services.plumbing.events import ReceivedEvent
from services.plumbing.filtering import parse_filter
from services.plumbing.names import parse_name
from services.plumbing.times import utc
from services.plumbing.unit_of_work import Reader, Tx

CONSUMER = "assistance-agency-turnaround"
SUBJECTS = aggregate_filter("notice")
#: Each notice event carries the notice as it is after it.
NOTICE_EVENTS = {kind.type: kind for kind in in_aggregate("notice")}
FACT = AgencyTurnaroundFactRow.__table__  # type: ignore[attr-defined]
AGG = AgencyTurnaroundAggregateRow.__table__  # type: ignore[attr-defined]
COUNTERS = (
    "notices",
    "answered",
    "objected",
    "ack_count",
    "ack_seconds",
    "ack_working_seconds",
    "result_count",
    "result_seconds",
    "result_working_seconds",
)
#: Positions of the histograms in delegation.turnaround.HISTOGRAM_METRICS: acknowledgement
#: uses the "ack" pair, the result the "complete" pair.
ACK_METRIC, RESULT_METRIC = 0, 2


# --- facts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeFacts:
    notice_name: str
    agency_id: str
    kind: str
    sent_at: datetime | None = None
    received_at: datetime | None = None
    result_at: datetime | None = None
    outcome: str = ""  # ANSWERED or OBJECTED: whichever came first

    def merged(self, seen: NoticeFacts) -> NoticeFacts:
        result_at, outcome = self.result_at, self.outcome
        if seen.result_at is not None and (result_at is None or seen.result_at < result_at):
            result_at, outcome = seen.result_at, seen.outcome
        return NoticeFacts(
            self.notice_name,
            self.agency_id,
            self.kind,
            _earliest(self.sent_at, seen.sent_at),
            _earliest(self.received_at, seen.received_at),
            result_at,
            outcome,
        )

    def durations(self, calendar: WorkingCalendar) -> Durations:
        if self.sent_at is None:
            return Durations()
        ack = _elapsed(self.sent_at, self.received_at, calendar)
        done = _elapsed(self.sent_at, self.result_at, calendar)
        return Durations(ack[0], ack[1], done[0], done[1])

    @property
    def month(self) -> str | None:
        return month_of(self.sent_at) if self.sent_at else None


def contribution(facts: NoticeFacts, d: Durations) -> tuple[dict[str, int], int]:
    """What one notice adds to its (agency, kind, month) row: counters and packed histograms."""
    if facts.sent_at is None:
        return dict.fromkeys(COUNTERS, 0), 0
    counters = {
        "notices": 1,
        "answered": int(facts.outcome == "ANSWERED"),
        "objected": int(facts.outcome == "OBJECTED"),
        "ack_count": int(d.ack_seconds is not None),
        "ack_seconds": d.ack_seconds or 0,
        "ack_working_seconds": d.ack_working_seconds or 0,
        "result_count": int(d.complete_seconds is not None),
        "result_seconds": d.complete_seconds or 0,
        "result_working_seconds": d.complete_working_seconds or 0,
    }
    return counters, packed_hits(histogram_buckets(d))


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _elapsed(start: datetime, end: datetime | None, calendar: WorkingCalendar) -> tuple[int | None, int | None]:
    if end is None:
        return None, None
    if end <= start:
        return 0, 0
    return round((end - start).total_seconds()), working_seconds(calendar, start, end)


def _time(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def decode(event: ReceivedEvent) -> NoticeFacts | None:
    """The facts one notice event states; None for events the model does not use."""
    event_type = NOTICE_EVENTS.get(event.event_type)
    if event_type is None:
        return None
    notice = event_type.parse(event.data).assistance_notice  # type: ignore[attr-defined]
    agency_id = notice.agency.split("/", 1)[-1]
    kind = pb.AssistanceNotice.Kind.Name(notice.kind)
    results: list[tuple[datetime, str]] = []
    if notice.HasField("reply_time"):
        results.append((_time(notice.reply_time), "ANSWERED"))
    if notice.HasField("objection") and notice.objection.HasField("object_time"):
        results.append((_time(notice.objection.object_time), "OBJECTED"))
    first = min(results) if results else None
    return NoticeFacts(
        notice_name=notice.name,
        agency_id=agency_id,
        kind=kind,
        sent_at=_time(notice.create_time) if notice.HasField("create_time") else None,
        received_at=_time(notice.receive_time) if notice.HasField("receive_time") else None,
        result_at=first[0] if first else None,
        outcome=first[1] if first else "",
    )


# --- the projection --------------------------------------------------------------------------------


class AgencyTurnaroundProjection:
    """The consumer's batch handler: `host.add_consumer(CONSUMER, [SUBJECTS],
    batch_handler=projection.apply_batch)`, the events of a fetch as one unit of the write door.

    The rows come out as if each event were applied alone, in stream order: per notice its
    events are merged into its facts one after the other, and each change adds `after -
    before` to its (agency, kind, month) row; the changes to one row are summed and written
    once. Rows are inserted if absent, then locked: fact rows in notice-name order, then
    aggregate rows in key order, so replicas applying batches side by side neither fail on a
    row the other just inserted nor deadlock."""

    def __init__(self, calendar: WorkingCalendar):
        self.calendar = calendar.with_weekend_fallback()

    def apply(self, tx: Tx, event: ReceivedEvent) -> None:
        """One event alone."""
        self.apply_batch(tx, [event])

    def apply_batch(self, tx: Tx, events: Sequence[ReceivedEvent]) -> None:
        seen_by_notice: dict[str, list[NoticeFacts]] = {}
        for event in events:
            if (seen := decode(event)) is not None:
                seen_by_notice.setdefault(seen.notice_name, []).append(seen)
        if not seen_by_notice:
            return
        conn = tx.connection
        statements = _statements(conn)
        names = sorted(seen_by_notice)
        rows = {row["notice_name"]: row for row in conn.execute(statements.lock_facts, {"names": names}).mappings()}
        if missing := [name for name in names if name not in rows]:
            # A notice's first events: its row, empty (as no events make it), then locked.
            empty = [NoticeFacts(s.notice_name, s.agency_id, s.kind) for s in (seen_by_notice[name][0] for name in missing)]
            conn.execute(statements.insert_fact, [_fact_row(facts, Durations()) for facts in empty])
            rows.update((row["notice_name"], row) for row in conn.execute(statements.lock_facts, {"names": missing}).mappings())
        deltas: dict[tuple[str, str, str], tuple[dict[str, int], int]] = {}
        for name in names:
            row = rows[name]
            changed = self._merge((_facts(row), _durations(row)), seen_by_notice[name], deltas)
            if changed is not None:
                conn.execute(update(FACT).where(FACT.c.notice_name == name).values(**_fact_values(*changed)))
        for key in sorted(deltas):
            _add(conn, statements, key, *deltas[key])

    def _merge(
        self,
        stored: tuple[NoticeFacts, Durations],
        observations: list[NoticeFacts],
        deltas: dict[tuple[str, str, str], tuple[dict[str, int], int]],
    ) -> tuple[NoticeFacts, Durations] | None:
        """Merges a notice's observations, in order, into its stored facts, adding what each
        change adds to and takes from the aggregate rows to `deltas`; the facts and durations
        to store, or None when nothing changed."""
        current, changed = stored, False
        for seen in observations:
            before = current[0]
            after = before.merged(seen)
            if after == before:
                continue
            after_durations = after.durations(self.calendar)
            if before.month is not None:
                _sum_into(deltas, before, *contribution(before, current[1]), sign=-1)
            if after.month is not None:
                _sum_into(deltas, after, *contribution(after, after_durations), sign=1)
            current, changed = (after, after_durations), True
        return current if changed else None


def _fact_row(facts: NoticeFacts, durations: Durations) -> dict[str, Any]:
    return {"notice_name": facts.notice_name, "agency_id": facts.agency_id, "kind": facts.kind, **_fact_values(facts, durations)}


def _fact_values(facts: NoticeFacts, durations: Durations) -> dict[str, Any]:
    return {
        "sent_at": facts.sent_at,
        "received_at": facts.received_at,
        "result_at": facts.result_at,
        "outcome": facts.outcome,
        "ack_seconds": durations.ack_seconds,
        "ack_working_seconds": durations.ack_working_seconds,
        "result_seconds": durations.complete_seconds,
        "result_working_seconds": durations.complete_working_seconds,
    }


def _facts(row: Any) -> NoticeFacts:
    return NoticeFacts(
        row["notice_name"],
        row["agency_id"],
        row["kind"],
        utc(row["sent_at"]) if row["sent_at"] else None,
        utc(row["received_at"]) if row["received_at"] else None,
        utc(row["result_at"]) if row["result_at"] else None,
        row["outcome"],
    )


def _durations(row: Any) -> Durations:
    return Durations(row["ack_seconds"], row["ack_working_seconds"], row["result_seconds"], row["result_working_seconds"])


def _sum_into(
    deltas: dict[tuple[str, str, str], tuple[dict[str, int], int]],
    facts: NoticeFacts,
    counters: dict[str, int],
    packed: int,
    *,
    sign: int,
) -> None:
    assert facts.month is not None
    key = (facts.agency_id, facts.kind, facts.month)
    summed, summed_packed = deltas.get(key, (dict.fromkeys(COUNTERS, 0), 0))
    deltas[key] = ({name: summed[name] + sign * counters[name] for name in COUNTERS}, summed_packed + sign * packed)


def _add(conn: Connection, statements: _Statements, key: tuple[str, str, str], counters: dict[str, int], packed: int) -> None:
    """Adds the summed changes to one (agency, kind, month) row, inserted empty when absent."""
    agency_id, kind, month = key
    where = {"agency_id": agency_id, "kind": kind, "month": month}
    row = conn.execute(statements.lock_aggregate, where).mappings().first()
    if row is None:
        conn.execute(statements.insert_aggregate, {**where, "histograms": b"", **dict.fromkeys(COUNTERS, 0)})
        row = conn.execute(statements.lock_aggregate, where).mappings().one()
    values: dict[str, Any] = {name: row[name] + counters[name] for name in COUNTERS}
    values["histograms"] = encode_histograms(decode_histograms(row["histograms"]) + packed)
    conn.execute(update(AGG).where(*(AGG.c[k] == v for k, v in where.items())).values(**values))


@dataclass(frozen=True)
class _Statements:
    """The projection's statements, built once per dialect (insert-if-absent is the dialect's)."""

    lock_facts: Any
    insert_fact: Any
    lock_aggregate: Any
    insert_aggregate: Any


_STATEMENTS: dict[str, _Statements] = {}


def _statements(conn: Connection) -> _Statements:
    dialect = conn.dialect.name
    if dialect not in _STATEMENTS:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        _STATEMENTS[dialect] = _Statements(
            lock_facts=select(FACT)
            .where(FACT.c.notice_name.in_(bindparam("names", expanding=True)))
            .order_by(FACT.c.notice_name)
            .with_for_update(),
            insert_fact=insert(FACT).on_conflict_do_nothing(index_elements=["notice_name"]),
            lock_aggregate=select(AGG)
            .where(AGG.c.agency_id == bindparam("agency_id"), AGG.c.kind == bindparam("kind"), AGG.c.month == bindparam("month"))
            .with_for_update(),
            insert_aggregate=insert(AGG).on_conflict_do_nothing(index_elements=["agency_id", "kind", "month"]),
        )
    return _STATEMENTS[dialect]


# --- the query -------------------------------------------------------------------------------------

GROUP_BY_FIELDS = ("agency", "kind", "month")
FILTERS = {"agency": str, "kind": str, "month": str}


def _bad(field: str, description: str) -> InvalidArgument:
    return InvalidArgument.of([FieldViolation(field, description, "BAD_VALUE")])


async def agency_turnaround_statistics(
    reader: Reader, filter_text: str, group_by: Iterable[str]
) -> pb.AgencyTurnaroundStatistics:
    terms = parse_filter(filter_text, FILTERS)
    dims = list(dict.fromkeys(group_by))
    for dim in dims:
        if dim not in GROUP_BY_FIELDS:
            raise _bad("group_by", f"unknown dimension {dim!r}; use any of {', '.join(GROUP_BY_FIELDS)}")
    statement = select(AGG)
    if "agency" in terms:
        statement = statement.where(AGG.c.agency_id == parse_name(str(terms["agency"]), "agencies/{agency}", "filter")["agency"])
    if "kind" in terms:
        if str(terms["kind"]) not in NoticeKind.__members__:
            raise _bad("filter", f"unknown notice kind {terms['kind']!r}")
        statement = statement.where(AGG.c.kind == str(terms["kind"]))
    if "month" in terms:
        statement = statement.where(AGG.c.month == str(terms["month"]))
    rows = await reader.run(lambda conn: list(conn.execute(statement).mappings()))
    groups: dict[tuple[str, ...], tuple[dict[str, int], int]] = {}
    for row in rows:
        key = tuple(_key_value(dim, row) for dim in dims)
        counters, packed = groups.get(key, (dict.fromkeys(COUNTERS, 0), 0))
        groups[key] = (
            {name: counters[name] + row[name] for name in COUNTERS},
            packed + decode_histograms(row["histograms"]),
        )
    result = pb.AgencyTurnaroundStatistics()
    for key, (counters, packed) in sorted(groups.items()):
        if counters["notices"] == 0:
            continue
        data = packed_to_bytes(packed)
        group = result.groups.add(
            count=counters["notices"], answered_count=counters["answered"], objected_count=counters["objected"]
        )
        group.key.update(dict(zip(dims, key, strict=True)))
        _set(
            group.time_to_acknowledge,
            summarise_packed(counters["ack_count"], counters["ack_seconds"], counters["ack_working_seconds"], data, ACK_METRIC),
        )
        _set(
            group.time_to_result,
            summarise_packed(
                counters["result_count"], counters["result_seconds"], counters["result_working_seconds"], data, RESULT_METRIC
            ),
        )
    return result


def _key_value(dim: str, row: Any) -> str:
    if dim == "agency":
        return f"agencies/{row['agency_id']}"
    return str(row["kind"] if dim == "kind" else row["month"])


def _set(message: pb.AgencyTurnaroundStatistics.Durations, summary: Any) -> None:
    message.count = summary.count
    message.mean_days = summary.mean_days
    message.median_days = summary.median_days
    message.p90_days = summary.p90_days
    message.mean_working_days = summary.mean_working_days
    message.median_working_days = summary.median_working_days
    message.p90_working_days = summary.p90_working_days
