"""What the admin tool shows, as plain rows built from API messages: a matter's timeline,
overdue matters, turnaround figures and their groupings. Pure (no I/O, time passed in), so
tables, JSON and the HTML report all read the same rows, and tests need no server.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.table import Table
from rich.text import Text
from rogatory.delegation.v1 import delegation_pb2 as pb

from delegation.calendar import CHINA_TZ
from registry.courts import ISO_BY_PROVINCE, CourtCatalog
from services.tools.admin.labels import Labels

SECONDS_PER_DAY = 86_400

# The deadline a step meets: the entry of that action closes it.
_STEP_MET_BY = {"ACKNOWLEDGE": "ACKNOWLEDGE", "START": "START", "COMPLETE": "FINISH", "SUPPLEMENT": "SUPPLEMENT"}
# Entries the deadline scanner and extensions write name their deadline step in reason_code.
_STEP_IN_REASON = frozenset({"DUE_SOON", "OVERDUE", "URGE", "ESCALATE", "DEEM_WITHDRAWN", "EXTEND_DEADLINE"})
# Entries that exist only because a deadline passed.
_OVERDUE_ACTIONS = frozenset({"OVERDUE", "ESCALATE", "DEEM_WITHDRAWN"})
_PROVINCE_BY_ISO = {iso: abbr for abbr, iso in ISO_BY_PROVINCE.items()}


# --- formatting -------------------------------------------------------------------------------------------


def china_time(instant: datetime | None) -> str:
    """ "2026-11-27 19:30" in China time; "-" for none."""
    return instant.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M") if instant else "-"


def format_duration(seconds: float, labels: Labels) -> str:
    """Calendar time as days, hours and minutes: "3d 4h 5m" / "3天4小时5分"; at least the minutes."""
    minutes = max(0, int(seconds // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [(days, "days_unit"), (hours, "hours_unit"), (minutes, "minutes_unit")]
    shown = [f"{n}{labels(unit)}" for n, unit in parts if n] or [f"0{labels('minutes_unit')}"]
    return ("" if labels.lang == "zh" else " ").join(shown)


def format_days(days: float, decimals: int = 1) -> str:
    return f"{days:.{decimals}f}"


def format_rate(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def court_label(name: str, courts: CourtCatalog) -> str:
    """ "中牟县人民法院 (ha0122)" for `courts/ha0122`; the name itself for unknown courts, "-" for none."""
    if not name:
        return "-"
    court_id = name.removeprefix("courts/")
    court = courts.get(court_id)
    return f"{court.name} ({court_id})" if court else name


def province_pair_label(pair: str, labels: Labels) -> str:
    """ "gd-ha" (ISO 3166-2:CN) as "粤-豫" in Chinese; unchanged in English."""
    if labels.lang != "zh":
        return pair
    return "-".join(_PROVINCE_BY_ISO.get(part, part) for part in pair.split("-"))


def key_label(dimension: str, value: str, labels: Labels, courts: CourtCatalog) -> str:
    """A statistics group key value as a reader wants it."""
    if dimension in ("entrusted_court", "requesting_court"):
        return court_label(value, courts)
    if dimension == "matter_kind":
        return labels.enum("matter_kind", value)
    if dimension == "cross_province":
        return labels("cross_province_value" if value == "true" else "in_province")
    if dimension == "province_pair":
        return province_pair_label(value, labels)
    return value


def _time(stamp: Any) -> datetime | None:
    """A protobuf Timestamp as an aware UTC datetime; None when unset."""
    if not stamp.seconds and not stamp.nanos:
        return None
    return stamp.ToDatetime(tzinfo=UTC)


def _iso(instant: datetime | None) -> str | None:
    return instant.isoformat() if instant else None


# --- timeline -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadlineRow:
    step: str
    due: datetime | None
    status: str
    provisional: bool
    source: str
    extensions: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "due": _iso(self.due), "extensions": list(self.extensions)}


@dataclass(frozen=True)
class TimelineRow:
    action: str
    from_state: str
    to_state: str
    actor_court: str  # "" for the system (deadline scanner)
    officer: str
    time: datetime | None
    elapsed_seconds: float
    elapsed_working_days: float
    deadline_step: str  # the deadline the step met or is about; "" for none
    deadline_due: datetime | None
    overdue: bool
    trace_id: str
    reason_code: str
    note: str

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "time": _iso(self.time), "deadline_due": _iso(self.deadline_due)}


@dataclass(frozen=True)
class MatterTimeline:
    delegation: str
    entries: tuple[TimelineRow, ...]
    deadlines: tuple[DeadlineRow, ...]
    case: str = ""
    state: str = ""
    requesting_court: str = ""
    entrusted_court: str = ""
    matter_kind: str = ""

    @property
    def trace_ids(self) -> tuple[str, ...]:
        """Distinct trace ids, in step order: the first is the one the matter was created in."""
        return tuple(dict.fromkeys(e.trace_id for e in self.entries if e.trace_id))

    def to_json(self) -> dict[str, Any]:
        return {
            "delegation": self.delegation,
            "case": self.case,
            "state": self.state,
            "requesting_court": self.requesting_court,
            "entrusted_court": self.entrusted_court,
            "matter_kind": self.matter_kind,
            "trace_ids": list(self.trace_ids),
            "entries": [e.to_json() for e in self.entries],
            "deadlines": [d.to_json() for d in self.deadlines],
        }


def deadline_rows(deadlines: Iterable[pb.Deadline]) -> tuple[DeadlineRow, ...]:
    return tuple(
        DeadlineRow(
            step=pb.Deadline.Step.Name(d.step),
            due=_time(d.due_time),
            status=pb.Deadline.Status.Name(d.status),
            provisional=d.provisional,
            source=d.source,
            extensions=tuple(d.extensions),
        )
        for d in deadlines
    )


def entry_step(entry: pb.DelegationTimeline.Entry) -> str:
    """The deadline step an entry met (ACKNOWLEDGE, COMPLETE…) or is about (scanner actions)."""
    if entry.action in _STEP_IN_REASON:
        return entry.reason_code
    return _STEP_MET_BY.get(entry.action, "")


def is_overdue_entry(entry: pb.DelegationTimeline.Entry, due: datetime | None, at: datetime | None) -> bool:
    """Marked when the entry exists because a deadline passed (overdue, escalation, an
    automatic urge) or when it met its deadline late."""
    if entry.action in _OVERDUE_ACTIONS or (entry.action == "URGE" and not entry.actor_court):
        return True
    return entry.action in _STEP_MET_BY and due is not None and at is not None and at > due


def timeline_view(timeline: pb.DelegationTimeline, delegation: pb.Delegation | None = None) -> MatterTimeline:
    deadlines = deadline_rows(timeline.deadlines)
    due_by_step = {}
    for d in deadlines:
        due_by_step.setdefault(d.step, d.due)
    rows = []
    for entry in timeline.entries:
        step, at = entry_step(entry), _time(entry.time)
        due = due_by_step.get(step)
        rows.append(
            TimelineRow(
                action=entry.action,
                from_state=pb.Delegation.State.Name(entry.from_state),
                to_state=pb.Delegation.State.Name(entry.to_state),
                actor_court=entry.actor_court,
                officer=entry.officer,
                time=at,
                elapsed_seconds=entry.elapsed.ToTimedelta().total_seconds(),
                elapsed_working_days=entry.elapsed_working_days,
                deadline_step=step,
                deadline_due=due,
                overdue=is_overdue_entry(entry, due, at),
                trace_id=entry.trace_id,
                reason_code=entry.reason_code,
                note=entry.note,
            )
        )
    return MatterTimeline(
        delegation=timeline.delegation,
        entries=tuple(rows),
        deadlines=deadlines,
        case=delegation.case if delegation else "",
        state=pb.Delegation.State.Name(delegation.state) if delegation else "",
        requesting_court=delegation.requesting_court if delegation else "",
        entrusted_court=delegation.entrusted_court if delegation else "",
        matter_kind=pb.Delegation.MatterKind.Name(delegation.matter_kind) if delegation else "",
    )


def matter_header(matter: MatterTimeline, labels: Labels, courts: CourtCatalog) -> str:
    """One line above a timeline: case, requesting → entrusted court, kind, state."""
    return (
        f"{labels('case')}: {matter.case}  {court_label(matter.requesting_court, courts)} → "
        f"{court_label(matter.entrusted_court, courts)}  {labels.enum('matter_kind', matter.matter_kind)}  "
        f"{labels('state')}: {labels.enum('state', matter.state)}"
    )


# --- overdue ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OverdueRow:
    delegation: str
    case: str
    requesting_court: str
    entrusted_court: str
    matter_kind: str
    state: str
    step: str  # the earliest missed deadline
    due: datetime | None
    days_overdue: float
    urge_count: int
    escalated: bool

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "due": _iso(self.due)}


def missed_deadline(delegation: pb.Delegation, now: datetime) -> tuple[str, datetime | None]:
    """The earliest deadline marked overdue or passed while open (the entrusted court's, not SUPPLEMENT)."""
    missed = [
        (due, pb.Deadline.Step.Name(d.step))
        for d in delegation.deadlines
        if d.step != pb.Deadline.SUPPLEMENT
        and (due := _time(d.due_time)) is not None
        and (d.status == pb.Deadline.OVERDUE or (d.status == pb.Deadline.OPEN and due < now))
    ]
    if not missed:
        return "", None
    due, step = min(missed)
    return step, due


def overdue_row(delegation: pb.Delegation, now: datetime) -> OverdueRow:
    step, due = missed_deadline(delegation, now)
    return OverdueRow(
        delegation=delegation.name,
        case=delegation.case,
        requesting_court=delegation.requesting_court,
        entrusted_court=delegation.entrusted_court,
        matter_kind=pb.Delegation.MatterKind.Name(delegation.matter_kind),
        state=pb.Delegation.State.Name(delegation.state),
        step=step,
        due=due,
        # The scanner may have run "as of" a later instant (rogatory scan-deadlines --at): never negative.
        days_overdue=max(0.0, (now - due) / timedelta(days=1)) if due else 0.0,
        urge_count=delegation.urge_count,
        escalated=delegation.HasField("escalate_time"),
    )


def only_entrusted_to(rows: Iterable[OverdueRow], court: str) -> list[OverdueRow]:
    """Rows of matters entrusted to the court itself, leaving out its subordinate courts'."""
    return [r for r in rows if r.entrusted_court == court]


# --- statistics ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatsRow:
    key: dict[str, str]
    count: int
    ack_count: int
    ack_mean_days: float
    ack_median_days: float
    ack_p90_days: float
    complete_count: int
    complete_mean_days: float
    complete_median_days: float
    complete_p90_days: float
    complete_mean_working_days: float
    complete_median_working_days: float
    on_time_rate: float  # completed matters: share completed by their FINISH deadline
    overdue_count: int  # went overdue at some time, open or finished
    open_overdue_count: int  # open, with a deadline of the entrusted court overdue now
    completion_rate: float
    return_rate: float
    returns_by_reason: dict[str, int] = field(default_factory=dict)
    # (lower days, upper days or inf, matters): histogram of completion times, if asked for
    complete_distribution: tuple[tuple[float, float, int], ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["complete_distribution"] = [
            {"lower_days": lo, "upper_days": None if math.isinf(hi) else hi, "count": n}
            for lo, hi, n in self.complete_distribution
        ]
        return data


def stats_rows(statistics: pb.TurnaroundStatistics) -> list[StatsRow]:
    return [_stats_row(group) for group in statistics.groups]


def _stats_row(group: pb.TurnaroundStatistics.Group) -> StatsRow:
    ack, done = group.time_to_acknowledge, group.time_to_complete
    return StatsRow(
        key=dict(group.key),
        count=group.count,
        ack_count=ack.count,
        ack_mean_days=ack.mean_days,
        ack_median_days=ack.median_days,
        ack_p90_days=ack.p90_days,
        complete_count=done.count,
        complete_mean_days=done.mean_days,
        complete_median_days=done.median_days,
        complete_p90_days=done.p90_days,
        complete_mean_working_days=done.mean_working_days,
        complete_median_working_days=done.median_working_days,
        on_time_rate=group.on_time_rate,
        overdue_count=group.overdue_count,
        open_overdue_count=group.open_overdue_count,
        completion_rate=group.completion_rate,
        return_rate=group.return_rate,
        returns_by_reason=dict(group.returns_by_reason),
        complete_distribution=tuple(
            (b.lower_days, b.upper_days if b.upper_days > 0 else math.inf, b.count) for b in done.distribution
        ),
    )


def ranking(rows: Iterable[StatsRow], dimension: str = "entrusted_court") -> list[StatsRow]:
    """Groups with at least one completed matter, fastest average handling first (ties: more
    matters first, then the key), for the per-court ranking."""
    measured = [r for r in rows if r.complete_count > 0 and dimension in r.key]
    return sorted(measured, key=lambda r: (r.complete_mean_days, -r.complete_count, r.key[dimension]))


def by_month(rows: Iterable[StatsRow]) -> list[StatsRow]:
    """Month groups in calendar order."""
    return sorted((r for r in rows if "month" in r.key), key=lambda r: r.key["month"])


def split_cross_province(rows: Iterable[StatsRow]) -> tuple[StatsRow | None, StatsRow | None]:
    """(in-province, cross-province) groups of an answer grouped by cross_province."""
    found = {r.key.get("cross_province"): r for r in rows}
    return found.get("false"), found.get("true")


#: Edges of the report's completion-time bins, in days: whole powers of two, which are exact
#: edges of the read model's histogram buckets, so no matter is split between two bins.
DISTRIBUTION_EDGES: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, math.inf)


def coarse_distribution(
    buckets: Iterable[tuple[float, float, int]], edges: Sequence[float] = DISTRIBUTION_EDGES
) -> list[tuple[float, float, int]]:
    """Histogram buckets added up into [edges[i], edges[i+1]) bins (all bins, empty ones too)."""
    counts = [0] * (len(edges) - 1)
    for lower, _, n in buckets:
        index = max(i for i in range(len(edges) - 1) if edges[i] <= lower)
        counts[index] += n
    return [(edges[i], edges[i + 1], counts[i]) for i in range(len(counts))]


def bin_label(lower: float, upper: float, labels: Labels) -> str:
    """ "<1d", "1–2d", "≥128d" (天 in Chinese)."""
    unit = labels("days_unit")
    if lower == 0:
        return f"<{upper:g}{unit}"
    if math.isinf(upper):
        return f"≥{lower:g}{unit}"
    return f"{lower:g}–{upper:g}{unit}"


# --- tables --------------------------------------------------------------------------------------------------


def timeline_table(matter: MatterTimeline, labels: Labels, courts: CourtCatalog) -> Table:
    table = Table(title=labels("timeline_title", matter=matter.delegation), title_justify="left", expand=False)
    for key in ("action", "to_state", "actor", "officer", "time", "elapsed", "working_days", "deadline", "overdue", "trace_id"):
        table.add_column(labels(key), no_wrap=key in ("time", "trace_id"), justify="right" if key == "working_days" else "left")
    for row in matter.entries:
        deadline = f"{labels.enum('step', row.deadline_step)} {china_time(row.deadline_due)}" if row.deadline_step else ""
        table.add_row(
            labels.enum("action", row.action),
            labels.enum("state", row.to_state),
            court_label(row.actor_court, courts) if row.actor_court else labels("system"),
            row.officer if row.officer != "system" else labels("system"),
            china_time(row.time),
            format_duration(row.elapsed_seconds, labels),
            format_days(row.elapsed_working_days, 2),
            deadline,
            Text("⚠ " + labels("yes"), style="bold red") if row.overdue else "",
            row.trace_id,
        )
    return table


def deadlines_table(matter: MatterTimeline, labels: Labels) -> Table:
    table = Table(title=labels("deadlines_title"), title_justify="left")
    for key in ("step", "due", "status", "source"):
        table.add_column(labels(key))
    for d in matter.deadlines:
        status = labels.enum("deadline_status", d.status)
        style = "bold red" if d.status in ("OVERDUE", "MET_LATE") else ""
        table.add_row(labels.enum("step", d.step), china_time(d.due), Text(status, style=style), d.source)
    return table


def overdue_table(rows: Sequence[OverdueRow], court: str, labels: Labels, courts: CourtCatalog) -> Table:
    table = Table(title=labels("overdue_title", court=court_label(court, courts)), title_justify="left")
    for key in ("matter", "entrusted_court", "requesting_court", "matter_kind", "state", "overdue_step", "due", "days_overdue"):
        table.add_column(
            labels(key),
            justify="right" if key == "days_overdue" else "left",
            overflow="fold" if key == "matter" else "ellipsis",  # a name cut short is no use
            min_width=max((len(r.delegation) for r in rows), default=0) if key == "matter" else None,
        )
    table.add_column(labels("urge_count"), justify="right")
    table.add_column(labels("escalated"))
    for r in rows:
        table.add_row(
            r.delegation,
            court_label(r.entrusted_court, courts),
            court_label(r.requesting_court, courts),
            labels.enum("matter_kind", r.matter_kind),
            labels.enum("state", r.state),
            labels.enum("step", r.step),
            china_time(r.due),
            format_days(r.days_overdue),
            str(r.urge_count),
            labels.yes_no(r.escalated),
        )
    return table


STATS_COLUMNS = (
    "count",
    "ack_mean",
    "complete_mean",
    "complete_median",
    "complete_p90",
    "complete_mean_working",
    "on_time_rate",
    "open_overdue_count",
    "completion_rate",
    "return_rate",
)


def stats_cells(row: StatsRow) -> list[str]:
    finished = row.completion_rate + row.return_rate > 0  # they add up to 1 when any matter finished
    return [
        str(row.count),
        format_days(row.ack_mean_days),
        format_days(row.complete_mean_days),
        format_days(row.complete_median_days),
        format_days(row.complete_p90_days),
        format_days(row.complete_mean_working_days),
        format_rate(row.on_time_rate) if row.complete_count else "-",  # a share of nothing is no 0 %
        str(row.open_overdue_count),
        *(format_rate(rate) if finished else "-" for rate in (row.completion_rate, row.return_rate)),
    ]


def stats_table(rows: Sequence[StatsRow], group_by: Sequence[str], labels: Labels, courts: CourtCatalog) -> Table:
    # The caption says what each figure counts, so none reads as contradicting another.
    table = Table(title=labels("stats_title"), title_justify="left", caption=labels("figures_defined"), caption_justify="left")
    for dimension in group_by:
        table.add_column(labels.enum("dimension", dimension))
    for key in STATS_COLUMNS:
        table.add_column(labels(key), justify="right")
    for row in rows:
        keys = [key_label(d, row.key.get(d, ""), labels, courts) for d in group_by]
        table.add_row(*keys, *stats_cells(row))
    return table


def distribution_table(rows: Sequence[StatsRow], group_by: Sequence[str], labels: Labels, courts: CourtCatalog) -> Table:
    """Matters per completion-time bin (DISTRIBUTION_EDGES), one line per group."""
    table = Table(title=labels("distribution_title"), title_justify="left")
    for dimension in group_by:
        table.add_column(labels.enum("dimension", dimension))
    for lower, upper in zip(DISTRIBUTION_EDGES, DISTRIBUTION_EDGES[1:], strict=False):
        table.add_column(bin_label(lower, upper, labels), justify="right")
    for row in rows:
        keys = [key_label(d, row.key.get(d, ""), labels, courts) for d in group_by]
        table.add_row(*keys, *(str(n) for _, _, n in coarse_distribution(row.complete_distribution)))
    return table


# --- records: the rows of --csv ------------------------------------------------------------------------------
#
# One flat record per line, with the field names of --json (docs/admin.md lists them): a
# column never depends on the data, so a script can rely on the header.

Record = dict[str, Any]

_MATTER_FIELDS = ("delegation", "case", "state", "requesting_court", "entrusted_court", "matter_kind")
TIMELINE_FIELDS: tuple[str, ...] = _MATTER_FIELDS + tuple(f for f in TimelineRow.__dataclass_fields__)
OVERDUE_FIELDS: tuple[str, ...] = tuple(OverdueRow.__dataclass_fields__)
_STATS_SCALARS: tuple[str, ...] = tuple(
    f for f in StatsRow.__dataclass_fields__ if f not in ("key", "returns_by_reason", "complete_distribution")
)
#: The keys of returns_by_reason: the API's ReturnReason names, RETURN_REASON_UNSPECIFIED for none given.
RETURN_REASONS: tuple[str, ...] = (
    *(r for r in pb.ReturnReason.keys() if r != "RETURN_REASON_UNSPECIFIED"),
    "RETURN_REASON_UNSPECIFIED",
)
RETURN_REASON_FIELDS: tuple[str, ...] = tuple(f"returns_{reason}" for reason in RETURN_REASONS)


def distribution_field(lower: float, upper: float) -> str:
    """ "completed_0_1_days" … "completed_128_plus_days": a bin of DISTRIBUTION_EDGES as a column name."""
    return f"completed_{lower:g}_plus_days" if math.isinf(upper) else f"completed_{lower:g}_{upper:g}_days"


DISTRIBUTION_FIELDS: tuple[str, ...] = tuple(
    distribution_field(lo, hi) for lo, hi in zip(DISTRIBUTION_EDGES, DISTRIBUTION_EDGES[1:], strict=False)
)


def stats_fields(group_by: Sequence[str], distribution: bool) -> tuple[str, ...]:
    """The group's dimensions, the figures, returns per reason, and the completion-time bins if asked for."""
    return (*group_by, *_STATS_SCALARS, *RETURN_REASON_FIELDS, *(DISTRIBUTION_FIELDS if distribution else ()))


def timeline_records(matters: Iterable[MatterTimeline]) -> list[Record]:
    """One record per step of every matter, the matter's fields first (its deadlines are in --json)."""
    return [
        {**{f: getattr(matter, f) for f in _MATTER_FIELDS}, **asdict(entry)} for matter in matters for entry in matter.entries
    ]


def overdue_records(rows: Iterable[OverdueRow]) -> list[Record]:
    return [asdict(row) for row in rows]


def stats_records(rows: Iterable[StatsRow], group_by: Sequence[str], distribution: bool) -> list[Record]:
    records = []
    for row in rows:
        record: Record = {d: row.key.get(d, "") for d in group_by}
        record.update((f, getattr(row, f)) for f in _STATS_SCALARS)
        record.update((f"returns_{reason}", row.returns_by_reason.get(reason, 0)) for reason in RETURN_REASONS)
        if distribution:
            bins = coarse_distribution(row.complete_distribution)
            record.update((distribution_field(lo, hi), n) for lo, hi, n in bins)
        records.append(record)
    return records


def csv_cell(value: Any) -> str:
    """A value as --csv writes it: ISO 8601 times, true/false, "" for none."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
