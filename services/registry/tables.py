"""The registry service's tables (sqlmodel); migrations in services/migrations/versions/registry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class CourtRow(SQLModel, table=True):
    """Reference data, replaced from registry/data at every start so SQL reports can join it."""

    __tablename__ = "court"

    id: str = Field(primary_key=True, max_length=32)
    code: str = Field(unique=True, max_length=16)
    name: str = Field(max_length=100)
    level: str = Field(max_length=16)
    province: str = Field(default="", max_length=4)
    division_code: str = Field(default="", max_length=6)
    parent_id: str | None = Field(default=None, max_length=32)
    special_kind: str = Field(default="", max_length=16)


class AgencyRow(SQLModel, table=True):
    __tablename__ = "agency"

    id: str = Field(primary_key=True, max_length=48)
    name: str = Field(max_length=100)
    kind: str = Field(max_length=32)
    division_code: str = Field(default="", max_length=6)
    scope: str = Field(max_length=16)


class CaseRow(SQLModel, table=True):
    __tablename__ = "enforcement_case"
    __table_args__ = (
        UniqueConstraint("court_id", "year", "special_code", "type_code", "sequence", name="uq_case_number"),
        Index("ix_case_court_year_type", "court_id", "year", "type_code"),
    )

    seq: int | None = Field(default=None, primary_key=True)  # keyset pagination order
    name: str = Field(unique=True, max_length=200)
    court_id: str = Field(index=True, max_length=32)
    case_number: str = Field(max_length=64)
    year: int
    court_code: str = Field(max_length=16)
    special_code: str = Field(default="", max_length=4)
    type_code: str = Field(max_length=8)
    sequence: int = Field(sa_type=BigInteger)  # type: ignore[call-overload]
    amount_owed_fen: int | None = Field(default=None, sa_type=BigInteger)  # type: ignore[call-overload]
    description: str = Field(default="", sa_type=Text)  # type: ignore[call-overload]
    create_time: datetime = Field(sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    version: int = 1
    # Closing (CloseCase, migration registry_0002); OPEN rows leave the rest at their defaults.
    state: str = Field(default="OPEN", max_length=16)
    close_time: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # type: ignore[call-overload]
    close_outcome: str = Field(default="", max_length=32)
    close_reason: str = Field(default="", sa_type=Text)  # type: ignore[call-overload]


class CasePartyRow(SQLModel, table=True):
    __tablename__ = "case_party"

    # Keyed by the case's name, which the service knows before insert, so a batch of cases
    # and their parties goes in with one executemany per table (group commit).
    case_name: str = Field(primary_key=True, foreign_key="enforcement_case.name", max_length=200)
    position: int = Field(primary_key=True)
    role: str = Field(max_length=16)
    kind: str = Field(max_length=16)
    display_name: str = Field(index=True, max_length=200)
    id_number: str = Field(default="", max_length=32)  # full; masked on every way out
