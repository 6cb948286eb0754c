"""The turnaround read model: a projection of the delegation events, and the statistics query.

**Projection.** The durable consumer `turnaround-projector`, in the turnaround projector's own
process and database (projector.py), reads every event on
`rogatory.v1.delegation.>` through the inbox of services.plumbing.consumer, so a
redelivered event is never applied twice. Each event carries the delegation as it stood
after the event; `decode` turns it into an `Observation`, which is merged into the matter's
fact row (`MatterFacts.observe`: earliest timestamps, sticky flags, newest state), and the
aggregates change by `contribution(after) - contribution(before)` of that row. The sums are
therefore a function of the fact rows alone, whatever order the events come in, and
`rebuild_aggregates` recomputes them from the facts.

**Grains.** To answer any filter and grouping from few rows, every matter is added to 20
rolled-up grains (a small data cube). A grain code has four letters: entrusted side and
requesting side, each C (court), P (province) or A (all); K (by matter kind) or A; M (by
month of submission) or A. The side pairs kept are CC, CA, AC, PP and AA, so the grains
are CCKM … AAAA. Every row also keeps `cross_province`. A query reads the one grain that
has exactly the dimensions it filters or groups on (`StatisticsQuery.grain`), so it reads
about one row per answer group (two when cross_province is neither filtered nor grouped),
however many matters there are. Each row holds additive counters, exact duration sums in
seconds and the four duration histograms packed into one integer (delegation.turnaround:
fixed-width fields, so merging is one big-int addition), stored as sparse entries of
the non-empty fields (delegation.turnaround.encode_histograms).

The consumer hands over each fetched batch (its `batch_handler`, services.plumbing.consumer),
applied in one transaction: the batch's fact rows are read once, its events merged in
stream order, and each aggregate row gets the sum of the changed matters' deltas, so a
batch of 64 events of one court pair writes its 20 rows once, not 64 times. Rows are
upserted in key order (concurrent consumers lock rows in the same order, so they cannot
deadlock): counters are added in SQL, then the histograms of the now locked rows are read,
added to and written back.

**Query.** GetTurnaroundStatistics takes an AIP-160 filter over entrusted_court,
requesting_court, matter_kind, cross_province and month, and a group_by over
entrusted_court, requesting_court, province_pair, cross_province, matter_kind and month. It
reads the matching rows of one grain in one statement (one snapshot), adds up their
counters and histograms per group, and derives means (exact), medians and p90 (within one
histogram bucket, ≈ 9 %: delegation.turnaround) and rates, for all groups at once with
numpy. The cost follows the number of groups in the answer (≈ 20 µs each, most of it
reading the rows and building the reply), not the number of matters. Without group_by the answer is one group, possibly all zeros. `province_pair`
keys read "requesting-entrusted" in ISO 3166-2:CN province codes, e.g. "gd-ha".

Authorization: open to every caller for now (the figures are aggregates without matter or
party data); DESIGN.md non-negotiable 5 will decide whether a court sees only figures in
which it is a party or its subordinates are.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from operator import add, sub
from typing import Any, NamedTuple

import numpy as np
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rogatory.delegation.v1 import delegation_pb2 as pb
from rogatory.events.v1 import events_pb2
from sqlalchemy import ColumnElement, bindparam, delete, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from delegation.calendar import WorkingCalendar
from delegation.details import MatterKind
from delegation.turnaround import (
    HISTOGRAM_METRICS,
    REASON_COLUMNS,
    TOTAL_FIELDS,
    Durations,
    DurationSummary,
    MatterFacts,
    Observation,
    Totals,
    decode_histograms,
    encode_histograms,
    histogram_buckets,
    packed_distribution,
    packed_hits,
    rates,
    summarise_many,
    summed_histogram_words,
)
from registry.courts import ISO_BY_PROVINCE, NON_TERRITORIAL_ID_PREFIX, CourtCatalog
from registry.errors import FieldViolation, InvalidArgument, Violations
from services.contract.events import aggregate_filter, in_aggregate
from services.delegation.turnaround_tables import TurnaroundAggregateRow, TurnaroundFactRow
from services.plumbing.db import BulkStatement, placeholders
from services.plumbing.events import ReceivedEvent
from services.plumbing.filtering import enum_term, parse_filter
from services.plumbing.names import parse_name
from services.plumbing.unit_of_work import Reader, Tx

log = logging.getLogger(__name__)

CONSUMER = "turnaround-projector"
SUBJECTS = aggregate_filter("delegation")
#: Every delegation event is a turnaround fact: each carries the matter as it is after it.
DELEGATION_EVENTS = {kind.type: kind for kind in in_aggregate("delegation")}

FACT = TurnaroundFactRow.__table__  # type: ignore[attr-defined]
AGG = TurnaroundAggregateRow.__table__  # type: ignore[attr-defined]

KEY_COLUMNS = ("grain", "entrusted", "requesting", "matter_kind", "month", "cross_province")
ALL = ""  # the value of a rolled-up key column

# --- grains --------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Grain:
    code: str  # e.g. "CCKM": entrusted C/P/A, requesting C/P/A, kind K/A, month M/A

    @property
    def entrusted_level(self) -> str:
        return self.code[0]

    @property
    def requesting_level(self) -> str:
        return self.code[1]

    @property
    def by_kind(self) -> bool:
        return self.code[2] == "K"

    @property
    def by_month(self) -> bool:
        return self.code[3] == "M"


SIDE_PAIRS = ("CC", "CA", "AC", "PP", "AA")
GRAINS: tuple[Grain, ...] = tuple(Grain(f"{sides}{k}{m}") for sides in SIDE_PAIRS for k in "KA" for m in "MA")
BASE_GRAIN = Grain("CCKM")


class GroupKey(NamedTuple):
    """An aggregate row's key, and the province columns that go with it."""

    grain: str
    entrusted: str
    requesting: str
    matter_kind: str
    month: str
    cross_province: bool
    entrusted_province: str
    requesting_province: str


def _side(level: str, court_id: str, province: str) -> tuple[str, str]:
    """(key value, province column) of one side at a level."""
    if level == "C":
        return court_id, province
    if level == "P":
        return province, province
    return ALL, ALL


def key_at(grain: Grain, facts: MatterFacts, month: str | None = None) -> GroupKey:
    entrusted, entrusted_province = _side(grain.entrusted_level, facts.entrusted_court_id, facts.entrusted_province)
    requesting, requesting_province = _side(grain.requesting_level, facts.requesting_court_id, facts.requesting_province)
    return GroupKey(
        grain=grain.code,
        entrusted=entrusted,
        requesting=requesting,
        matter_kind=facts.matter_kind if grain.by_kind else ALL,
        month=(month or facts.month or ALL) if grain.by_month else ALL,
        cross_province=facts.cross_province,
        entrusted_province=entrusted_province,
        requesting_province=requesting_province,
    )


def province_id(courts: CourtCatalog, court_id: str) -> str:
    """ISO 3166-2:CN code of a court's province ("spc", "mil", "xpcc" for those systems).

    For a court missing from the catalog, the letters of its id, which are the same code
    (registry.courts.court_id_for_code).
    """
    court = courts.get(court_id)
    if court is None:
        return re.match(r"[a-z]*", court_id).group(0)  # type: ignore[union-attr]
    if not court.province:
        return court.id  # 最高法
    return ISO_BY_PROVINCE.get(court.province) or NON_TERRITORIAL_ID_PREFIX.get(court.province, court.province)


# --- decoding events ---------------------------------------------------------------------------------

# The verb whose own time stands for a timestamp the snapshot may not carry.
_VERB_TIMESTAMP = {
    "submitted": "submitted_at",
    "acknowledged": "acknowledged_at",
    "completed": "completed_at",
    "returned": "returned_at",
    "withdrawn": "withdrawn_at",
    "escalated": "escalated_at",
}
_SNAPSHOT_TIMESTAMP = {
    "submitted_at": "create_time",
    "acknowledged_at": "acknowledge_time",
    "completed_at": "complete_time",
    "returned_at": "return_time",
    "withdrawn_at": "withdraw_time",
    "escalated_at": "escalate_time",
}


@dataclass(frozen=True)
class Identity:
    name: str
    requesting_court_id: str
    entrusted_court_id: str
    matter_kind: str


def decode(event: ReceivedEvent) -> tuple[Identity, Observation] | None:
    """What a delegation event says for the statistics; None for events it does not use."""
    kind = DELEGATION_EVENTS.get(event.event_type)
    if kind is None:
        return None  # not a delegation event
    verb = kind.verb
    message = kind.parse(event.data)
    delegation: pb.Delegation = message.delegation  # type: ignore[attr-defined]
    identity = _identity(delegation, event.subject)
    if identity is None:
        log.warning("turnaround: %s event %s names no delegation; skipped", verb, event.event_id)
        return None
    return identity, _observation(verb, message, delegation, event.occurred_at)


def _identity(delegation: pb.Delegation, subject: str) -> Identity | None:
    parts = delegation.name.split("/")
    if len(parts) != 4 or parts[0] != "courts" or parts[2] != "delegations":
        return None
    tokens = subject.split(".")  # rogatory.v1.delegation.{requesting}.{entrusted}.{verb}
    entrusted = delegation.entrusted_court.removeprefix("courts/") or (tokens[4] if len(tokens) == 6 else "")
    kind = pb.Delegation.MatterKind.Name(delegation.matter_kind)
    return Identity(delegation.name, parts[1], entrusted, "" if kind == "MATTER_KIND_UNSPECIFIED" else kind)


def _observation(verb: str, message: Message, delegation: pb.Delegation, occurred_at: datetime) -> Observation:
    transition = getattr(message, "transition", None)
    at = _time(transition.time) if transition is not None and transition.HasField("time") else occurred_at
    stamps = {
        field: _time(getattr(delegation, source)) for field, source in _SNAPSHOT_TIMESTAMP.items() if delegation.HasField(source)
    }
    if verb in _VERB_TIMESTAMP:
        stamps.setdefault(_VERB_TIMESTAMP[verb], at)
    state = pb.Delegation.State.Name(delegation.state)
    return Observation(
        at=at,
        state="" if delegation.state == pb.Delegation.STATE_UNSPECIFIED else state,
        return_reason=_return_reason(delegation, transition if verb == "returned" else None),
        finish_due_at=_finish_due(message, delegation),
        overdue=verb == "overdue",
        overdue_now=_overdue_now(verb, message, delegation),
        urged=verb == "urged",
        **stamps,
    )


def _return_reason(delegation: pb.Delegation, transition: Any) -> str:
    if delegation.return_reason != pb.RETURN_REASON_UNSPECIFIED:
        name = pb.ReturnReason.Name(delegation.return_reason)
        return "OTHER" if name == "RETURN_REASON_OTHER" else name
    return transition.reason_code if transition is not None else ""


def _finish_due(message: Message, delegation: pb.Delegation) -> datetime | None:
    deadlines = list(delegation.deadlines)
    extended = getattr(message, "deadline", None)
    if isinstance(message, events_pb2.DelegationDeadlineExtended) and extended is not None:
        deadlines.append(extended)  # the extension itself wins over the snapshot's copy
    due = [_time(d.due_time) for d in deadlines if d.step == pb.Deadline.FINISH and d.HasField("due_time")]
    return due[-1] if due else None


def _overdue_now(verb: str, message: Message, delegation: pb.Delegation) -> bool | None:
    """Whether a deadline of the entrusted court (SUPPLEMENT is the requesting court's) stands
    overdue after the event; None when the event carries no deadlines."""
    deadlines = {d.step: d for d in delegation.deadlines}
    reached = getattr(message, "deadline", None)
    if isinstance(message, events_pb2.DelegationDeadlineExtended) and reached is not None:
        deadlines[reached.step] = reached  # the extension itself wins over the snapshot's copy
    if verb == "overdue" and reached is not None and reached.step != pb.Deadline.SUPPLEMENT:
        return True  # the deadline the event marks overdue, whatever the snapshot says
    if not deadlines:
        return None
    return any(d.status == pb.Deadline.OVERDUE for step, d in deadlines.items() if step != pb.Deadline.SUPPLEMENT)


def _time(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


# --- the projection --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFacts:
    """A fact row: the merged facts and the durations that were added to the aggregates."""

    facts: MatterFacts
    durations: Durations

    def contribution(self) -> Totals:
        return self.facts.contribution(self.durations)

    def keys(self) -> tuple[GroupKey, ...]:
        facts = self.facts
        month = facts.month
        if not month:
            return ()
        return keys_of(
            facts.entrusted_court_id,
            facts.entrusted_province,
            facts.requesting_court_id,
            facts.requesting_province,
            facts.matter_kind,
            month,
        )


@functools.lru_cache(maxsize=4096)
def keys_of(
    entrusted_court_id: str, entrusted_province: str, requesting_court_id: str, requesting_province: str, kind: str, month: str
) -> tuple[GroupKey, ...]:
    """The aggregate rows of every grain a matter adds to: shared by the many matters of one
    court pair, kind and month, so computed once for them."""
    facts = MatterFacts(
        name="",
        requesting_court_id=requesting_court_id,
        entrusted_court_id=entrusted_court_id,
        requesting_province=requesting_province,
        entrusted_province=entrusted_province,
        matter_kind=kind,
    )
    return tuple(key_at(grain, facts, month) for grain in GRAINS)


class TurnaroundProjection:
    """The consumer's batch handler: `host.add_consumer(CONSUMER, [SUBJECTS], batch_handler=projection.apply_batch)`."""

    def __init__(self, courts: CourtCatalog, calendar: WorkingCalendar):
        self.courts = courts
        # Unknown years count Monday–Friday rather than stall the consumer on a poison event.
        self.calendar = calendar.with_weekend_fallback()

    def apply_batch(self, tx: Tx, events: Sequence[ReceivedEvent]) -> None:
        """Merges the events, in order, into their matters' fact rows, then adds to each
        aggregate row once the sum of the matters' deltas: the same rows as applying the
        events one by one (a sum of deltas telescopes), for one read and one write of each."""
        conn = tx.connection
        observed = [decoded for event in events if (decoded := decode(event)) is not None]
        if not observed:
            return
        before = self._locked_facts(conn, {identity.name: identity for identity, _ in observed})
        after = dict(before)
        for identity, observation in observed:
            current = after[identity.name]
            facts = current.facts.observe(observation)
            if facts != current.facts:  # e.g. a due-soon warning changes nothing the statistics keep
                after[identity.name] = StoredFacts(facts, self._durations(current, facts))
        changed = [name for name, stored in after.items() if stored is not before[name]]
        if changed:
            _save_facts(conn, [after[name] for name in changed])
            apply_changes(conn, merged_deltas((before[name], after[name]) for name in changed))

    def _durations(self, before: StoredFacts, facts: MatterFacts) -> Durations:
        old = before.facts
        unchanged = (old.submitted_at, old.acknowledged_at, old.completed_at) == (
            facts.submitted_at,
            facts.acknowledged_at,
            facts.completed_at,
        )
        # Keep what was added: a calendar update must not make a later delta subtract
        # something other than what an earlier one added.
        return before.durations if unchanged else facts.durations(self.calendar)

    def _locked_facts(self, conn: Connection, identities: dict[str, Identity]) -> dict[str, StoredFacts]:
        """The matters' fact rows, locked (in name order, so replicas cannot deadlock)."""
        statements = _statements(conn)
        names = sorted(identities)
        found = {row["name"]: _stored_from_row(row) for row in conn.execute(statements.lock_facts, {"names": names}).mappings()}
        missing = [name for name in names if name not in found]
        if missing:
            # Insert-if-absent, then lock: two replicas seeing a matter's first events at
            # once serialise on the row instead of failing on the primary key.
            conn.execute(statements.insert_fact, [self._skeleton(identities[name]) for name in missing])
            rows = conn.execute(statements.lock_facts, {"names": missing}).mappings()
            found.update((row["name"], _stored_from_row(row)) for row in rows)
        return found

    def _skeleton(self, identity: Identity) -> dict[str, Any]:
        requesting = province_id(self.courts, identity.requesting_court_id)
        entrusted = province_id(self.courts, identity.entrusted_court_id)
        return {
            "name": identity.name,
            "requesting_court_id": identity.requesting_court_id,
            "entrusted_court_id": identity.entrusted_court_id,
            "requesting_province": requesting,
            "entrusted_province": entrusted,
            "cross_province": requesting != entrusted,
            "matter_kind": identity.matter_kind,
        }


@dataclass(frozen=True)
class _Statements:
    """The projection's statements, built once per dialect: building and cache-keying an
    upsert with 18 `excluded` columns costs SQLAlchemy milliseconds per event otherwise."""

    lock_facts: Any
    insert_fact: Any
    upsert_totals: Any
    lock_rows: Any
    update_row: Any


_STATEMENTS: dict[str, _Statements] = {}
_UPDATE_FACT = BulkStatement(
    FACT.update().where(FACT.c.name == bindparam("k_name")), keys=[*(c.name for c in FACT.c if c.name != "name"), "k_name"]
)


def _statements(conn: Connection) -> _Statements:
    dialect = conn.dialect.name
    if dialect not in _STATEMENTS:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        upsert = insert(AGG)
        key_columns = [AGG.c[name] for name in KEY_COLUMNS]
        _STATEMENTS[dialect] = _Statements(
            lock_facts=select(FACT)
            .where(FACT.c.name.in_(bindparam("names", expanding=True)))
            .order_by(FACT.c.name)
            .with_for_update(),
            insert_fact=insert(FACT).on_conflict_do_nothing(index_elements=["name"]),
            upsert_totals=upsert.on_conflict_do_update(
                index_elements=list(KEY_COLUMNS), set_={name: AGG.c[name] + upsert.excluded[name] for name in TOTAL_FIELDS}
            ),
            lock_rows=select(*key_columns, AGG.c.histograms)
            .where(tuple_(*key_columns).in_(bindparam("keys", expanding=True)))
            .order_by(*key_columns)
            .with_for_update(),
            update_row=AGG.update()
            .where(*[AGG.c[name] == bindparam(f"k_{name}") for name in KEY_COLUMNS])
            .values({**{name: AGG.c[name] + bindparam(f"d_{name}") for name in TOTAL_FIELDS}, "histograms": bindparam("h")}),
        )
    return _STATEMENTS[dialect]


_FACT_FIELDS = (
    "submitted_at",
    "acknowledged_at",
    "completed_at",
    "returned_at",
    "withdrawn_at",
    "return_reason",
    "finish_due_at",
    "finish_due_seen_at",
    "state_at",
    "overdue_reported",
    "overdue_now",
    "overdue_now_seen_at",
    "urge_count",
    "escalated_at",
)
_DURATION_FIELDS = ("ack_seconds", "ack_working_seconds", "complete_seconds", "complete_working_seconds")


def _stored_from_row(row: Any) -> StoredFacts:
    facts = MatterFacts(
        name=row["name"],
        requesting_court_id=row["requesting_court_id"],
        entrusted_court_id=row["entrusted_court_id"],
        requesting_province=row["requesting_province"],
        entrusted_province=row["entrusted_province"],
        matter_kind=row["matter_kind"],
        state=row["state"],
        **{name: _aware(row[name]) for name in _FACT_FIELDS},
    )
    return StoredFacts(facts, Durations(**{name: row[name] for name in _DURATION_FIELDS}))


def _aware(value: Any) -> Any:
    # SQLite hands back naive datetimes for DateTime(timezone=True); they were written in UTC.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def fact_columns(stored: StoredFacts) -> dict[str, Any]:
    """The fact row's columns (also used by the benchmark's bulk load)."""
    facts = stored.facts
    columns = {
        "name": facts.name,
        "requesting_court_id": facts.requesting_court_id,
        "entrusted_court_id": facts.entrusted_court_id,
        "requesting_province": facts.requesting_province,
        "entrusted_province": facts.entrusted_province,
        "cross_province": facts.cross_province,
        "matter_kind": facts.matter_kind,
        "month": facts.month,
        "state": facts.final_state,
        **{name: getattr(facts, name) for name in _FACT_FIELDS},
        "on_time": facts.on_time,
        "overdue": facts.overdue,
        **{name: getattr(stored.durations, name) for name in _DURATION_FIELDS},
    }
    # SQLite keeps a datetime's wall-clock time and drops its offset: store UTC everywhere.
    return {name: value.astimezone(UTC) if isinstance(value, datetime) else value for name, value in columns.items()}


def _save_facts(conn: Connection, stored: Iterable[StoredFacts]) -> None:
    rows = []
    for one in stored:
        columns = fact_columns(one)
        columns["k_name"] = columns.pop("name")
        rows.append(columns)
    _UPDATE_FACT.execute_sync(conn, rows)


# --- aggregate deltas ---------------------------------------------------------------------------------------


def summed_by_group(values: np.ndarray, groups: Sequence[int], group_count: int) -> np.ndarray:
    """The rows of `values` (int64) added up per group, exactly: one reduceat over the rows
    sorted by group (np.add.at takes ~10 ms for 2,500 rows)."""
    if not len(values):
        return np.zeros((group_count, values.shape[1] if values.ndim == 2 else 0), dtype=np.int64)
    by_group = np.asarray(groups, dtype=np.int64)
    order = np.argsort(by_group, kind="stable")
    ordered = by_group[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sums = np.zeros((group_count, values.shape[1]), dtype=np.int64)
    sums[ordered[starts]] = np.add.reduceat(values[order], starts, axis=0)
    return sums


Change = tuple[tuple[int, ...], int]  # (counters in TOTAL_FIELDS order, packed histograms)


def delta_terms(before: StoredFacts | None, after: StoredFacts) -> list[tuple[tuple[GroupKey, ...], Change]]:
    """How the aggregate rows change when a fact row goes from before to after, as (rows,
    change) terms: every row of a term changes alike."""
    if before is not None and before.facts.month is not None and before.facts.month == after.facts.month:
        # The usual case: the matter stays in the same rows.
        vector = tuple(map(sub, _totals_vector(after.contribution()), _totals_vector(before.contribution())))
        hits = packed_hits(histogram_buckets(after.durations)) - packed_hits(histogram_buckets(before.durations))
        return [(after.keys(), (vector, hits))] if hits or any(vector) else []
    terms = []
    for stored, sign in ((before, -1), (after, 1)):
        if stored is not None and (keys := stored.keys()):
            vector = tuple(sign * n for n in _totals_vector(stored.contribution()))
            terms.append((keys, (vector, sign * packed_hits(histogram_buckets(stored.durations)))))
    return terms


def merged_deltas(pairs: Iterable[tuple[StoredFacts, StoredFacts]]) -> dict[GroupKey, Change]:
    """The sum of the changes of several fact rows, each going from before to after. Terms
    on the same rows (matters of one court pair, kind and month) are summed first."""
    by_rows: dict[tuple[GroupKey, ...], Change] = {}
    for before, after in pairs:
        for keys, change in delta_terms(before, after):
            by_rows[keys] = _sum(by_rows[keys], change) if keys in by_rows else change
    total: dict[GroupKey, Change] = {}
    for keys, change in by_rows.items():
        for key in keys:
            total[key] = _sum(total[key], change) if key in total else change
    return {key: change for key, change in total.items() if change[1] or any(change[0])}


def _sum(one: Change, other: Change) -> Change:
    return tuple(map(add, one[0], other[0])), one[1] + other[1]


_ZERO = (0,) * len(TOTAL_FIELDS)


def _totals_vector(totals: Totals) -> tuple[int, ...]:
    return tuple(getattr(totals, name) for name in TOTAL_FIELDS)


def apply_changes(conn: Connection, changes_by_key: dict[GroupKey, Change]) -> None:
    """Adds the changes to the aggregate rows, each locked in key order (so concurrent
    consumers cannot deadlock) and written once; rows seen for the first time are created."""
    changes = sorted(changes_by_key.items())
    if not changes:
        return
    statements = _statements(conn)
    keys = [_key_tuple(key) for key, _ in changes]
    current = _locked_histograms(conn, keys)
    if len(current) < len(changes):
        # Some row is new: create-or-add the counters first (that locks every row), then
        # read the histograms back under the lock.
        rows = [
            {**key._asdict(), **dict(zip(TOTAL_FIELDS, counters, strict=True)), "histograms": b""}
            for key, (counters, _) in changes
        ]
        conn.execute(statements.upsert_totals, rows)
        current = _locked_histograms(conn, keys)
        changes = [(key, (_ZERO, packed)) for key, (_, packed) in changes]
    updates = [
        {
            **{f"k_{name}": value for name, value in zip(KEY_COLUMNS, key, strict=False)},
            **{f"d_{name}": n for name, n in zip(TOTAL_FIELDS, counters, strict=True)},
            "h": encode_histograms(decode_histograms(current[_key_tuple(key)]) + packed),
        }
        for key, (counters, packed) in changes
    ]
    conn.execute(statements.update_row, updates)


def _locked_histograms(conn: Connection, keys: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], bytes]:
    """The histograms of the aggregate rows with these primary keys, the rows locked in key order."""
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql(_sqlite_rows_by_keys(conn.dialect, len(keys)), tuple(v for key in keys for v in key))
    else:
        rows = conn.execute(_statements(conn).lock_rows, {"keys": keys})
    return {tuple(row[: len(KEY_COLUMNS)]): row[-1] for row in rows}


@functools.lru_cache(maxsize=256)
def _sqlite_rows_by_keys(dialect: Dialect, count: int) -> str:
    """SQLite does not look a row-value `IN (VALUES …)` up in the primary key: it scans the
    whole table (10 ms a batch at 19,200 aggregate rows, and the table grows with the
    history). Joined to the keys as a VALUES table, each key is one primary-key search."""
    width = len(KEY_COLUMNS)
    rows = ", ".join([f"({placeholders(dialect, width)})"] * count)
    joined = " AND ".join(f"a.{name} = k.{name}" for name in KEY_COLUMNS)
    order = ", ".join(f"a.{name}" for name in KEY_COLUMNS)
    return (
        f"WITH k({', '.join(KEY_COLUMNS)}) AS (VALUES {rows}) "
        f"SELECT {order}, a.histograms FROM k JOIN {AGG.name} AS a ON {joined} ORDER BY {order}"
    )


def _key_tuple(key: GroupKey) -> tuple[Any, ...]:
    """The primary-key part of a GroupKey (without the province columns)."""
    return tuple(key[: len(KEY_COLUMNS)])


# --- rebuilding the aggregates from the facts ----------------------------------------------------------------

# (target, source): each grain is summed from the smallest grain that holds it; sources first.
ROLLUPS: tuple[tuple[Grain, Grain], ...] = (
    (Grain("CCKA"), BASE_GRAIN),
    (Grain("CCAM"), BASE_GRAIN),
    (Grain("CCAA"), Grain("CCKA")),
    *((Grain(sides + g.code[2:]), g) for sides in ("CA", "AC", "PP") for g in GRAINS if g.code[:2] == "CC"),
    *((Grain("AA" + g.code[2:]), g) for g in GRAINS if g.code[:2] == "CA"),
)
_TOTAL_BITS = 64  # per packed total: sums stay far below 2^63


def _pack_totals(totals: Totals) -> int:
    return sum(getattr(totals, name) << (_TOTAL_BITS * i) for i, name in enumerate(TOTAL_FIELDS))


def _unpack_totals(packed: int) -> dict[str, int]:
    mask = (1 << _TOTAL_BITS) - 1
    return {name: (packed >> (_TOTAL_BITS * i)) & mask for i, name in enumerate(TOTAL_FIELDS)}


class Accumulator:
    """Sums fact rows into every grain's aggregate rows, for a rebuild or a bulk load.

    Totals and histograms are packed into one int each (fixed-width fields), so adding a
    matter to its base row is two int additions; the other grains are rolled up from it.
    """

    def __init__(self) -> None:
        self.base: dict[GroupKey, list[int]] = {}

    def add(self, stored: StoredFacts) -> None:
        if not stored.facts.month:
            return
        key = key_at(BASE_GRAIN, stored.facts)
        totals, hits = _pack_totals(stored.contribution()), packed_hits(histogram_buckets(stored.durations))
        sums = self.base.get(key)
        if sums is None:
            self.base[key] = [totals, hits]
        else:
            sums[0] += totals
            sums[1] += hits

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every aggregate row, as column values."""
        grains = {BASE_GRAIN.code: self.base}
        for target, source in ROLLUPS:
            grains[target.code] = _rolled_up(grains[source.code], target)
        for grain in GRAINS:
            for key, (totals, packed) in grains[grain.code].items():
                yield {**key._asdict(), **_unpack_totals(totals), "histograms": encode_histograms(packed)}


def _rolled_up(source: dict[GroupKey, list[int]], target: Grain) -> dict[GroupKey, list[int]]:
    rolled: dict[GroupKey, list[int]] = {}
    for key, (totals, packed) in source.items():
        entrusted, entrusted_province = _rolled_side(target.entrusted_level, key.entrusted, key.entrusted_province)
        requesting, requesting_province = _rolled_side(target.requesting_level, key.requesting, key.requesting_province)
        new_key = GroupKey(
            target.code,
            entrusted,
            requesting,
            key.matter_kind if target.by_kind else ALL,
            key.month if target.by_month else ALL,
            key.cross_province,
            entrusted_province,
            requesting_province,
        )
        sums = rolled.get(new_key)
        if sums is None:
            rolled[new_key] = [totals, packed]
        else:
            sums[0] += totals
            sums[1] += packed
    return rolled


def _rolled_side(level: str, key: str, province: str) -> tuple[str, str]:
    """A side's (key, province) at a coarser level, from a court- or province-level row."""
    if level == "C":
        return key, province
    if level == "P":
        return province, province
    return ALL, ALL


async def rebuild_aggregates(conn: AsyncConnection, *, chunk: int = 5_000) -> int:
    """Recomputes every aggregate row from the fact rows; returns how many rows it wrote.

    For a recovery, or after a change of grains or buckets; the projection keeps the rows
    equal to this incrementally (the integration tests compare the two).
    """
    accumulator = Accumulator()
    async for row in await conn.stream(select(FACT).where(FACT.c.month.is_not(None))):
        accumulator.add(_stored_from_row(row._mapping))
    await conn.execute(delete(AGG))
    return await insert_aggregates(conn, accumulator.rows(), chunk=chunk)


async def insert_aggregates(conn: AsyncConnection, rows: Iterable[dict[str, Any]], *, chunk: int = 5_000) -> int:
    written, batch = 0, []
    for row in rows:
        batch.append(row)
        if len(batch) == chunk:
            await conn.execute(AGG.insert(), batch)
            written, batch = written + len(batch), []
    if batch:
        await conn.execute(AGG.insert(), batch)
        written += len(batch)
    return written


# --- the statistics query ----------------------------------------------------------------------------------------

FILTER_FIELDS: dict[str, type] = {
    "entrusted_court": str,
    "requesting_court": str,
    "matter_kind": str,
    "cross_province": str,
    "month": str,
}
GROUP_BY_FIELDS = ("entrusted_court", "requesting_court", "province_pair", "cross_province", "matter_kind", "month")
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
# AIP-160 writes booleans bare (`cross_province = true`); the shared parser takes bare
# UPPER_CASE names only, so quote them first.
_BARE_BOOLEAN = re.compile(r"(\bcross_province\s*[=:]\s*)(true|false)\b", re.IGNORECASE)


@dataclass(frozen=True)
class StatisticsQuery:
    entrusted_court_id: str | None = None
    requesting_court_id: str | None = None
    matter_kind: str | None = None
    cross_province: bool | None = None
    month: str | None = None
    group_by: tuple[str, ...] = ()

    @classmethod
    def parse(cls, filter_text: str, group_by: Iterable[str]) -> StatisticsQuery:
        """Validates a request's filter and group_by; InvalidArgument with field violations."""
        terms = parse_filter(_BARE_BOOLEAN.sub(lambda m: f'{m.group(1)}"{m.group(2)}"', filter_text), FILTER_FIELDS)
        query = cls(
            entrusted_court_id=_court_term(terms, "entrusted_court"),
            requesting_court_id=_court_term(terms, "requesting_court"),
            matter_kind=(kind.value if (kind := enum_term(MatterKind, terms, "matter_kind")) else None),
            cross_province=_boolean_term(terms, "cross_province"),
            month=_month_term(terms),
        )
        return replace(query, group_by=_group_by(list(group_by)))

    @property
    def dimensions(self) -> frozenset[str]:
        filtered = {
            name
            for name, value in (
                ("entrusted_court", self.entrusted_court_id),
                ("requesting_court", self.requesting_court_id),
                ("matter_kind", self.matter_kind),
                ("month", self.month),
            )
            if value is not None
        }
        return frozenset(filtered | set(self.group_by))

    @property
    def grain(self) -> Grain:
        """The smallest grain that holds every dimension filtered or grouped on."""
        dims = self.dimensions
        by_entrusted, by_requesting = "entrusted_court" in dims, "requesting_court" in dims
        if (by_entrusted and by_requesting) or ("province_pair" in dims and (by_entrusted or by_requesting)):
            sides = "CC"
        elif "province_pair" in dims:
            sides = "PP"
        else:
            sides = "CA" if by_entrusted else "AC" if by_requesting else "AA"
        return Grain(sides + ("K" if "matter_kind" in dims else "A") + ("M" if "month" in dims else "A"))


def _filter_violation(description: str) -> InvalidArgument:
    return InvalidArgument.of([FieldViolation("filter", description, "BAD_FILTER")])


def _court_term(terms: dict[str, str | int], field: str) -> str | None:
    if field not in terms:
        return None
    return parse_name(str(terms[field]), "courts/{court}", "filter")["court"]


def _boolean_term(terms: dict[str, str | int], field: str) -> bool | None:
    if field not in terms:
        return None
    value = str(terms[field]).lower()
    if value not in ("true", "false"):
        raise _filter_violation(f"{field} must be true or false")
    return value == "true"


def _month_term(terms: dict[str, str | int]) -> str | None:
    if "month" not in terms:
        return None
    month = str(terms["month"])
    if not _MONTH.fullmatch(month):
        raise _filter_violation('month must be "YYYY-MM", e.g. "2026-11"')
    return month


def _group_by(fields: list[str]) -> tuple[str, ...]:
    violations = Violations()
    for index, name in enumerate(fields):
        if name not in GROUP_BY_FIELDS:
            violations.add(f"group_by[{index}]", f"unknown dimension {name!r}; use {', '.join(GROUP_BY_FIELDS)}", "BAD_GROUP_BY")
        elif name in fields[:index]:
            violations.add(f"group_by[{index}]", f"{name!r} given twice", "BAD_GROUP_BY")
    violations.raise_if_any()
    return tuple(fields)


class StatisticsTable(NamedTuple):
    """An answer's groups as columns, in the answer's order (sorted by key)."""

    keys: list[dict[str, str]]
    sums: np.ndarray  # (groups, TOTAL_FIELDS): the counters added up, int64
    words: np.ndarray  # (groups, PACKED_FIELDS): the histogram fields added up, int64

    def column(self, name: str) -> np.ndarray:
        return self.sums[:, _TOTAL_INDEX[name]]

    def summaries(self, metric: int, prefix: str) -> list[DurationSummary]:
        counts, seconds, working = (self.column(f"{prefix}{n}").tolist() for n in ("_count", "_seconds", "_working_seconds"))
        return summarise_many(counts, seconds, working, self.words, metric)


_TOTAL_INDEX = {name: i for i, name in enumerate(TOTAL_FIELDS)}


# Columns a dimension groups on, and how a key value is written.
_GROUP_COLUMNS: dict[str, tuple[str, ...]] = {
    "entrusted_court": ("entrusted",),
    "requesting_court": ("requesting",),
    "province_pair": ("requesting_province", "entrusted_province"),
    "cross_province": ("cross_province",),
    "matter_kind": ("matter_kind",),
    "month": ("month",),
}


def _key_text(dimension: str, values: Sequence[Any]) -> str:
    if dimension in ("entrusted_court", "requesting_court"):
        return f"courts/{values[0]}"
    if dimension == "province_pair":
        return f"{values[0]}-{values[1]}"
    if dimension == "cross_province":
        return "true" if values[0] else "false"
    return str(values[0])


def query_conditions(table: Any, query: StatisticsQuery) -> list[ColumnElement[bool]]:
    c = table.c
    conditions = [c.grain == query.grain.code]
    for column, value in (
        ("entrusted", query.entrusted_court_id),
        ("requesting", query.requesting_court_id),
        ("matter_kind", query.matter_kind),
        ("month", query.month),
        ("cross_province", query.cross_province),
    ):
        if value is not None:
            conditions.append(c[column] == value)
    return conditions


def _group_columns(query: StatisticsQuery) -> list[str]:
    return [column for dimension in query.group_by for column in _GROUP_COLUMNS[dimension]]


def query_statistics(conn: Connection, query: StatisticsQuery) -> StatisticsTable:
    """Figures per group from the aggregate rows of one grain (about one row per group):
    counters and histograms added up per group here rather than in a SQL GROUP BY, which
    cannot add histograms and costs SQLite a sort, with a few numpy calls for all groups
    at once (answers reach 1,500 groups)."""
    group_columns = _group_columns(query)
    width = len(group_columns)
    statement = select(*[AGG.c[c] for c in group_columns], *[AGG.c[name] for name in TOTAL_FIELDS], AGG.c.histograms)
    rows = conn.execute(statement.where(*query_conditions(AGG, query))).all()
    index: dict[tuple[Any, ...], int] = {}
    groups = [index.setdefault(tuple(row[:width]), len(index)) for row in rows]
    if not query.group_by and not index:
        index[()] = 0  # the one group of an ungrouped answer, all zeros
    values = np.array([row[width:-1] for row in rows], dtype=np.int64).reshape(len(rows), len(TOTAL_FIELDS))
    sums = summed_by_group(values, groups, len(index))
    words = summed_histogram_words([row[-1] for row in rows], groups, len(index))
    in_order = sorted(index.items(), key=_sort_key)
    order = np.fromiter((g for _, g in in_order), dtype=np.intp, count=len(in_order))
    return StatisticsTable(_keys(query, [group for group, _ in in_order]), sums[order], words[order])


def _sort_key(item: tuple[tuple[Any, ...], int]) -> tuple[str, ...]:
    return tuple(map(str, item[0]))


def _keys(query: StatisticsQuery, groups: list[tuple[Any, ...]]) -> list[dict[str, str]]:
    """The answer's key of each group: one column of texts per dimension, then one dict per group."""
    texts, offset = [], 0
    for dimension in query.group_by:
        size = len(_GROUP_COLUMNS[dimension])
        texts.append([_key_text(dimension, group[offset : offset + size]) for group in groups])
        offset += size
    return [dict(zip(query.group_by, row, strict=True)) for row in zip(*texts, strict=True)] if texts else [{} for _ in groups]


_ACK, _COMPLETE = HISTOGRAM_METRICS.index("ack_days"), HISTOGRAM_METRICS.index("complete_days")


async def read_statistics(reader: Reader, query: StatisticsQuery) -> StatisticsTable:
    return await reader.run(functools.partial(query_statistics, query=query))  # one hop on SQLite


# --- protobuf -----------------------------------------------------------------------------------------------

_PROTO_REASONS = {"OTHER": "RETURN_REASON_OTHER", "UNSPECIFIED": "RETURN_REASON_UNSPECIFIED"}


def _set_durations(message: pb.TurnaroundStatistics.Durations, summary: DurationSummary) -> None:
    # Field by field into the parent's sub-message: about twice as fast as building
    # messages from keyword arguments, which matters for answers with many groups.
    message.count = summary.count
    message.mean_days = summary.mean_days
    message.median_days = summary.median_days
    message.p90_days = summary.p90_days
    message.mean_working_days = summary.mean_working_days
    message.median_working_days = summary.median_working_days
    message.p90_working_days = summary.p90_working_days


def _set_distribution(message: pb.TurnaroundStatistics.Durations, words: np.ndarray, metric: int) -> None:
    packed = words.astype("<u4").tobytes()
    for lower, upper, n in packed_distribution(packed, metric):
        message.distribution.add(lower_days=lower, upper_days=0.0 if upper == math.inf else upper, count=n)


def statistics_to_proto(table: StatisticsTable, include_distributions: bool = False) -> pb.TurnaroundStatistics:
    result = pb.TurnaroundStatistics()
    completed, returned = table.column("completed"), table.column("returned")
    matters, overdue = table.column("matters").tolist(), table.column("overdue").tolist()
    open_overdue = table.column("open_overdue").tolist()
    on_time_rate = rates(table.column("on_time"), table.column("on_time_known")).tolist()
    completion_rate = rates(completed, completed + returned).tolist()
    return_rate = rates(returned, completed + returned).tolist()
    returns = _returns_by_reason(table)
    acknowledge, complete = table.summaries(_ACK, "ack"), table.summaries(_COMPLETE, "complete")
    for g, key in enumerate(table.keys):
        group = result.groups.add(
            count=matters[g],
            on_time_rate=on_time_rate[g],
            overdue_count=overdue[g],
            open_overdue_count=open_overdue[g],
            completion_rate=completion_rate[g],
            return_rate=return_rate[g],
        )
        group.key.update(key)
        if returns[g]:
            group.returns_by_reason.update(returns[g])
        _set_durations(group.time_to_acknowledge, acknowledge[g])
        _set_durations(group.time_to_complete, complete[g])
        if include_distributions:
            _set_distribution(group.time_to_acknowledge, table.words[g], _ACK)
            _set_distribution(group.time_to_complete, table.words[g], _COMPLETE)
    return result


_REASON_COLUMNS = [(_PROTO_REASONS.get(reason, reason), _TOTAL_INDEX[column]) for reason, column in REASON_COLUMNS]


def _returns_by_reason(table: StatisticsTable) -> list[dict[str, int]]:
    """Each group's non-zero return counts by proto reason name ({} for most groups)."""
    counts = table.sums[:, [index for _, index in _REASON_COLUMNS]]
    any_returned = counts.any(axis=1).tolist()
    return [
        {name: n for (name, _), n in zip(_REASON_COLUMNS, row, strict=True) if n} if returned else {}
        for row, returned in zip(counts.tolist(), any_returned, strict=True)
    ]


async def turnaround_statistics(
    reader: Reader, filter_text: str, group_by: Iterable[str], include_distributions: bool = False
) -> pb.TurnaroundStatistics:
    """GetTurnaroundStatistics: validate, read one grain, answer."""
    query = StatisticsQuery.parse(filter_text, group_by)
    return statistics_to_proto(await read_statistics(reader, query), include_distributions)
