"""The turnaround read model's tables (sqlmodel), in the turnaround projector's database;
migration turnaround_0001 (delegation_0004, 0006 and 0008 made them in the delegation database,
where the read model was kept before its projector had a process of its own).

- `turnaround_fact`: one row per matter, merged from its events (delegation.turnaround.MatterFacts)
  with the durations that were added to the aggregates, so they can be rebuilt from it.
- `turnaround_aggregate`: the sum of the facts' contributions per grain and key (see
  services/delegation/turnaround.py, "Grains"), one row per (grain, entrusted, requesting,
  matter kind, month, cross-province): counters, exact duration sums in seconds, and the
  four duration histograms packed into one compressed value.

A key column that a grain rolls up holds "" (never NULL: it is part of the primary key).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, LargeBinary
from sqlmodel import Field, SQLModel


class TurnaroundFactRow(SQLModel, table=True):
    __tablename__ = "turnaround_fact"
    __table_args__ = (Index("ix_turnaround_fact_entrusted", "entrusted_court_id", "month"),)

    name: str = Field(primary_key=True, max_length=200)
    requesting_court_id: str = Field(max_length=32)
    entrusted_court_id: str = Field(max_length=32)
    requesting_province: str = Field(max_length=8)
    entrusted_province: str = Field(max_length=8)
    cross_province: bool
    matter_kind: str = Field(max_length=48)
    month: str | None = Field(default=None, max_length=7)  # None until the submission is known
    state: str = Field(default="", max_length=32)  # the final or latest known state
    state_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    submitted_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    acknowledged_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    completed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    returned_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    withdrawn_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    return_reason: str = Field(default="", max_length=48)
    finish_due_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    finish_due_seen_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    on_time: bool | None = None  # None: not completed, or no FINISH deadline known
    overdue_reported: bool = False  # an `overdue` event was seen
    overdue_now: bool = False  # a deadline of the entrusted court overdue, as the newest event with deadlines had it
    overdue_now_seen_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    overdue: bool = False  # reported, or completed after the FINISH deadline
    urge_count: int = 0
    escalated_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    ack_seconds: int | None = Field(default=None, sa_type=BigInteger)  # type: ignore[call-overload]
    ack_working_seconds: int | None = Field(default=None, sa_type=BigInteger)  # type: ignore[call-overload]
    complete_seconds: int | None = Field(default=None, sa_type=BigInteger)  # type: ignore[call-overload]
    complete_working_seconds: int | None = Field(default=None, sa_type=BigInteger)  # type: ignore[call-overload]


class TurnaroundAggregateRow(SQLModel, table=True):
    __tablename__ = "turnaround_aggregate"
    # The primary key doubles as the index for filters on the entrusted court (and, with
    # "" in rolled-up columns, on kind and month); the others serve filters on the
    # requesting court and on the month alone in the finest grains.
    __table_args__ = (
        Index("ix_turnaround_aggregate_requesting", "grain", "requesting", "matter_kind", "month"),
        Index("ix_turnaround_aggregate_month", "grain", "month"),
    )

    grain: str = Field(primary_key=True, max_length=4)
    entrusted: str = Field(primary_key=True, max_length=32)  # court id, province id or ""
    requesting: str = Field(primary_key=True, max_length=32)
    matter_kind: str = Field(primary_key=True, max_length=48)
    month: str = Field(primary_key=True, max_length=7)
    cross_province: bool = Field(primary_key=True)
    entrusted_province: str = Field(max_length=8)  # "" when the grain rolls the side up
    requesting_province: str = Field(max_length=8)
    matters: int = 0
    completed: int = 0
    returned: int = 0
    withdrawn: int = 0
    overdue: int = 0
    open_overdue: int = 0
    on_time: int = 0
    on_time_known: int = 0
    returned_not_within_jurisdiction: int = 0
    returned_materials_incomplete: int = 0
    returned_duplicate: int = 0
    returned_other: int = 0
    returned_unspecified: int = 0
    ack_count: int = 0
    ack_seconds: int = Field(default=0, sa_type=BigInteger)  # type: ignore[call-overload]
    ack_working_seconds: int = Field(default=0, sa_type=BigInteger)  # type: ignore[call-overload]
    complete_count: int = 0
    complete_seconds: int = Field(default=0, sa_type=BigInteger)  # type: ignore[call-overload]
    complete_working_seconds: int = Field(default=0, sa_type=BigInteger)  # type: ignore[call-overload]
    # The four duration histograms, packed and compressed (delegation.turnaround.packed_hits).
    histograms: bytes = Field(default=b"", sa_type=LargeBinary)  # type: ignore[call-overload]
