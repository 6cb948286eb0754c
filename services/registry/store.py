"""SQL for the registry: Core statements on the sqlmodel tables (the write path is hot)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from registry.agencies import Agency
from registry.cases import Case, CaseClosure, mask_id_number
from registry.courts import Court
from services.plumbing.times import utc
from services.registry.tables import AgencyRow, CasePartyRow, CaseRow, CourtRow

CASES = CaseRow.__table__  # type: ignore[attr-defined]
PARTIES = CasePartyRow.__table__  # type: ignore[attr-defined]
COURTS = CourtRow.__table__  # type: ignore[attr-defined]
AGENCIES = AgencyRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PartyView:
    role: str
    kind: str
    display_name: str
    id_number_masked: str


@dataclass(frozen=True)
class CaseView:
    """A stored case as every response and event shows it: ID numbers already masked."""

    seq: int
    name: str
    court_id: str
    case_number: str
    year: int
    court_code: str
    special_code: str
    type_code: str
    sequence: int
    amount_owed_fen: int | None
    description: str
    create_time: datetime
    version: int
    parties: tuple[PartyView, ...]
    state: str = "OPEN"  # a CaseState name
    close_time: datetime | None = None
    close_outcome: str = ""  # a CloseOutcome name, when CLOSED
    close_reason: str = ""
    #: The API message of the case when the write already built it (for its event): the reply
    #: reuses it instead of rendering the case again (services/registry/messages.case_to_proto).
    rendered: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class CaseQuery:
    court_id: str | None = None
    year: int | None = None
    type_code: str | None = None
    party: str | None = None


def replace_reference_data(conn: Connection, courts: list[Court], agencies: list[Agency]) -> None:
    conn.execute(delete(COURTS))
    conn.execute(delete(AGENCIES))
    conn.execute(
        insert(COURTS),
        [
            {
                "id": c.id,
                "code": c.code,
                "name": c.name,
                "level": str(c.level),
                "province": c.province,
                "division_code": c.division_code,
                "parent_id": c.parent_id,
                "special_kind": str(c.special_kind),
            }
            for c in courts
        ],
    )
    conn.execute(
        insert(AGENCIES),
        [
            {"id": a.id, "name": a.name, "kind": str(a.kind), "division_code": a.division_code, "scope": str(a.scope)}
            for a in agencies
        ],
    )


def case_rows(case: Case) -> list[tuple[Table, list[dict[str, Any]]]]:
    """The rows that register `case`, parents first (the write door inserts them with its batch)."""
    number = case.number
    case_row = {
        "name": case.name,
        "court_id": case.court_id,
        "case_number": number.text,
        "year": number.year,
        "court_code": number.court_code,
        "special_code": number.special_code,
        "type_code": number.type_code,
        "sequence": number.sequence,
        "amount_owed_fen": case.amount_owed_fen,
        "description": case.description,
        "create_time": case.registered_at,
        "version": 1,
    }
    party_rows = [
        {
            "case_name": case.name,
            "position": i,
            "role": str(p.role),
            "kind": str(p.kind),
            "display_name": p.display_name,
            "id_number": p.id_number,
        }
        for i, p in enumerate(case.parties)
    ]
    return [(CASES, [case_row]), (PARTIES, party_rows)]


def view_of_new_case(case: Case) -> CaseView:
    n = case.number
    parties = tuple(PartyView(str(p.role), str(p.kind), p.display_name, p.masked_id_number) for p in case.parties)
    return CaseView(
        0, case.name, case.court_id, n.text, n.year, n.court_code, n.special_code, n.type_code, n.sequence,
        case.amount_owed_fen, case.description, case.registered_at, 1, parties,
    )  # fmt: skip


def case_by_name(conn: Connection, name: str) -> CaseView | None:
    views = _joined_views(conn.execute(_CASE_BY_NAME, {"name": name}).mappings())
    return views[0] if views else None


def cases_by_names(conn: Connection, names: list[str]) -> dict[str, CaseView]:
    """GetCase's coalesced read: one query for every name asked for meanwhile (Reader.loader)."""
    views = _joined_views(conn.execute(_CASES_BY_NAMES, {"names": names}).mappings())
    return {view.name: view for view in views}


def list_cases(conn: Connection, query: CaseQuery, after_seq: int, limit: int) -> list[CaseView]:
    statement = select(CASES).where(CASES.c.seq > after_seq).order_by(CASES.c.seq).limit(limit)
    if query.court_id:
        statement = statement.where(CASES.c.court_id == query.court_id)
    if query.year is not None:
        statement = statement.where(CASES.c.year == query.year)
    if query.type_code:
        statement = statement.where(CASES.c.type_code == query.type_code)
    if query.party:
        matching = select(PARTIES.c.case_name).where(PARTIES.c.display_name.contains(query.party, autoescape=True))
        statement = statement.where(CASES.c.name.in_(matching))
    return _joined_views(conn.execute(_with_parties(statement)).mappings())


def _with_parties(cases: Select[Any]) -> Select[Any]:
    """`cases` joined with their parties, so one statement (one round trip) reads both."""
    page = cases.subquery()
    return (
        select(page, PARTIES.c.position, PARTIES.c.role, PARTIES.c.kind, PARTIES.c.display_name, PARTIES.c.id_number)
        .outerjoin(PARTIES, PARTIES.c.case_name == page.c.name)
        .order_by(page.c.seq, PARTIES.c.position)
    )


# Built once: constructing a joined statement costs more CPU than running it on SQLite.
_CASE_BY_NAME = _with_parties(select(CASES).where(CASES.c.name == bindparam("name")))
_CASES_BY_NAMES = _with_parties(select(CASES).where(CASES.c.name.in_(bindparam("names", expanding=True))))


def _joined_views(rows: Iterable[RowMapping]) -> list[CaseView]:
    """Case views from rows of a `_with_parties` statement (a case's rows are adjacent)."""
    views: dict[str, tuple[dict[str, Any], list[PartyView]]] = {}
    for row in rows:
        _, parties = views.setdefault(row["name"], (dict(row), []))
        if row["role"] is not None:
            parties.append(PartyView(row["role"], row["kind"], row["display_name"], mask_id_number(row["id_number"])))
    return [_view(row, tuple(parties)) for row, parties in views.values()]


def _view(row: dict, parties: tuple[PartyView, ...]) -> CaseView:  # type: ignore[type-arg]
    return CaseView(
        seq=row["seq"],
        name=row["name"],
        court_id=row["court_id"],
        case_number=row["case_number"],
        year=row["year"],
        court_code=row["court_code"],
        special_code=row["special_code"],
        type_code=row["type_code"],
        sequence=row["sequence"],
        amount_owed_fen=row["amount_owed_fen"],
        description=row["description"],
        create_time=utc(row["create_time"]),
        version=row["version"],
        parties=parties,
        state=row.get("state") or "OPEN",
        close_time=utc(row["close_time"]) if row.get("close_time") else None,
        close_outcome=row.get("close_outcome") or "",
        close_reason=row.get("close_reason") or "",
    )


def close_case(conn: Connection, name: str, *, expected_version: int, closure: CaseClosure) -> bool:
    """Marks the case CLOSED; False when the row is no longer at `expected_version` (or open)."""
    result = conn.execute(
        update(CASES)
        .where(CASES.c.name == name, CASES.c.version == expected_version, CASES.c.state == "OPEN")
        .values(
            state="CLOSED",
            close_time=utc(closure.closed_at),
            close_outcome=str(closure.outcome),
            close_reason=closure.reason,
            version=expected_version + 1,
        )
    )
    return result.rowcount == 1
