"""The versioned document aggregate, written once for delegations, notices, vehicle controls
and property queries.

An aggregate is read and written whole, so it is one row whose `document` column holds it as
JSON (its codec), beside the columns lists filter on, `version` for the optimistic
concurrency guard (`UPDATE … WHERE version = :read`, the etag of AIP-154) and `traceparent`,
the W3C context of the call that created it. What that gives, here once:

- `DocumentTable`: insert (with the creating call's trace context; `add` with the write
  batch's other new rows when the seq is not needed), update guarded by the
  version read (zero rows → ABORTED `VERSION_MISMATCH`), get, require (NOT_FOUND), many,
  select; each service says how its aggregate becomes columns and how rows become its stored
  form (`StoredDelegation`, `StoredNotice`…).
- `Aggregates`: the commands on it, through the write door (services/plumbing/unit_of_work.py):
  `create(work, request=…)` runs once per request key and starts the aggregate's trace;
  `change(name, operation, work, request=…)` loads it in the unit, continues its trace
  (`continuing_trace`: one aggregate, one trace, however many calls and scanner passes act
  on it) and lets `work` decide through the pure domain and write; a retry of an applied
  request is answered with the aggregate as it is now. Reads go through the read door.

The transition table and the etag check live in the domain (`delegation.lifecycle`,
`assistance.notice_lifecycle`, `assistance.vehicles`): the decision functions stay pure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy import Select, Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from registry.errors import Aborted, NotFound
from services.plumbing.events import trace_columns
from services.plumbing.idempotency import RequestKey
from services.plumbing.telemetry import continuing_trace
from services.plumbing.unit_of_work import Reader, Tx, Writer

A = TypeVar("A")  # the domain aggregate: Delegation, AssistanceNotice, VehicleControl, PropertyQuery
S = TypeVar("S")  # as stored: the aggregate with what its row adds (seq, traceparent, …)
T = TypeVar("T")
Json = dict[str, Any]


#: The seq of an aggregate just created with `DocumentTable.add`: the database assigns it with the
#: write batch's insert, and nothing answering a create needs it (it is a list page's position).
NOT_READ_BACK = 0


def document(data: Json) -> str:
    """The `document` column of an aggregate's codec output: compact JSON, text as it is."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def version_mismatch(label: str, name: str, expected_version: int) -> Aborted:
    """ABORTED VERSION_MISMATCH: the row changed between the read and the write."""
    return Aborted(
        f"{name} changed while the request was applied; read it again and retry",
        reason="VERSION_MISMATCH",
        metadata={label: name, "expected_version": str(expected_version)},
    )


class DocumentTable(Generic[A, S]):
    """One aggregate's table. `columns(aggregate)` gives every column it writes (name,
    version and document included); `load(conn, rows)` turns rows into the stored form."""

    def __init__(
        self,
        table: Table,
        *,
        kind: str,
        label: str,
        columns: Callable[[A], dict[str, Any]],
        load: Callable[[Connection, Sequence[RowMapping]], list[S]],
        fixed: Sequence[str] = ("name",),
    ):
        self.table = table
        self.kind = kind  # NOT_FOUND's resource kind, e.g. "assistance notice"
        self.label = label  # the errors' metadata key, e.g. "assistance_notice"
        self.columns = columns
        self.load = load
        self.fixed = frozenset(fixed)  # columns an update leaves as inserted
        # A row that starts a trace keeps its context (`traceparent`, `tracestate`); a part of
        # another aggregate's story (a seizure, in its notice's trace) has no such columns.
        self.traced = "traceparent" in table.c
        # Built once: building and cache-keying a statement per call costs more than running it.
        self._insert = insert(table)
        self._by_name = select(table).where(table.c.name == bindparam("name"))
        self._by_names = select(table).where(table.c.name.in_(bindparam("names", expanding=True)))
        self._updates: dict[tuple[str, ...], Any] = {}

    def insert(self, conn: Connection, aggregate: A, **extra: Any) -> int:
        """Inserts the aggregate with the current trace context (its trace); returns its seq."""
        trace_context = trace_columns() if self.traced else {}
        key = conn.execute(self._insert, {**self.columns(aggregate), **trace_context, **extra}).inserted_primary_key
        assert key is not None
        return int(key[0])

    def add(self, tx: Tx, aggregate: A) -> None:
        """Inserts the aggregate with the current trace context, with the batch's other new rows
        of the table in one statement (`tx.insert`); its seq is not read back (`NOT_READ_BACK`)."""
        trace_context = trace_columns() if self.traced else {}
        tx.insert(self.table, [{**self.columns(aggregate), **trace_context}])

    def update(self, conn: Connection, aggregate: A, *, expected_version: int, **extra: Any) -> None:
        """Writes the next version, if the row is still at `expected_version`; ABORTED otherwise."""
        values = {k: v for k, v in self.columns(aggregate).items() if k not in self.fixed}
        values.update(extra)
        name = self.columns_name(aggregate)
        params = {f"v_{k}": v for k, v in values.items()}
        params.update(b_name=name, b_version=expected_version)
        if conn.execute(self._update_of(tuple(values)), params).rowcount != 1:
            raise version_mismatch(self.label, name, expected_version)

    def columns_name(self, aggregate: A) -> str:
        return str(getattr(aggregate, "name"))  # noqa: B009 - every aggregate is named (AIP-122)

    def _update_of(self, keys: tuple[str, ...]) -> Any:
        statement = self._updates.get(keys)
        if statement is None:
            c = self.table.c
            statement = self._updates[keys] = (
                update(self.table)
                .where(c.name == bindparam("b_name"), c.version == bindparam("b_version"))
                .values({k: bindparam(f"v_{k}") for k in keys})
            )
        return statement

    def get(self, conn: Connection, name: str) -> S | None:
        rows = conn.execute(self._by_name, {"name": name}).mappings().all()
        return self.load(conn, rows)[0] if rows else None

    def require(self, conn: Connection, name: str) -> S:
        found = self.get(conn, name)
        if found is None:
            raise NotFound(self.kind, name)
        return found

    def many(self, conn: Connection, names: Sequence[str]) -> list[S]:
        """In the order of `names`; unknown names are skipped."""
        if not names:
            return []
        rows = {r["name"]: r for r in conn.execute(self._by_names, {"names": list(names)}).mappings()}
        return self.load(conn, [rows[n] for n in names if n in rows])

    def select(self, conn: Connection, statement: Select[Any]) -> list[S]:
        return self.load(conn, conn.execute(statement).mappings().all())


@dataclass
class Aggregates(Generic[A, S]):
    """The commands and reads of one aggregate, through the write and read doors."""

    writer: Writer
    reader: Reader
    table: DocumentTable[A, S]
    span_prefix: str  # spans are named f"{span_prefix}.{operation}", e.g. "delegation.acknowledge"
    attributes: Callable[[A], Mapping[str, str]]  # what every span about it carries
    aggregate_of: Callable[[S], A]
    traceparent_of: Callable[[S], str]

    async def create(self, work: Callable[[Tx], S], *, request: RequestKey | None) -> S:
        """Runs `work` once per request key (a retry gets the aggregate as it is now); the
        calling span starts the aggregate's trace and is named after it."""
        stored = await self.writer.run(work, request=request, resource_of=self.name_of, replay=self.table.require)
        trace.get_current_span().set_attributes(self.attributes(self.aggregate_of(stored)))
        return stored

    async def change(
        self,
        name: str,
        operation: str,
        work: Callable[[Tx, S], T],
        *,
        request: RequestKey | None = None,
        load: Callable[[Connection, str], S] | None = None,
        replay: Callable[[Connection, str], T] | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> T:
        """Loads `name` in the unit (`load`, default: NOT_FOUND when missing), then runs
        `work(tx, stored)` in a span of the aggregate's trace. A retry of an applied request
        gets `replay(conn, name)` (default: `load`)."""
        load_ = load or self.table.require

        def unit(tx: Tx) -> T:
            stored = load_(tx.connection, name)
            with self.in_trace(operation, stored, kind):
                return work(tx, stored)

        if request is None:
            return await self.writer.run(unit)
        answer: Callable[[Connection, str], Any] = replay or load_
        return await self.writer.run(unit, request=request, resource_of=lambda _: name, replay=answer)

    @contextmanager
    def in_trace(self, operation: str, stored: S, kind: SpanKind = SpanKind.INTERNAL) -> Iterator[trace.Span]:
        """A span of the aggregate's trace (its stored context), linked both ways to the caller's."""
        aggregate = self.aggregate_of(stored)
        span_name = f"{self.span_prefix}.{operation}"
        with continuing_trace(span_name, self.attributes(aggregate), self.traceparent_of(stored), kind) as span:
            yield span

    def name_of(self, stored: S) -> str:
        return self.table.columns_name(self.aggregate_of(stored))

    async def get(self, name: str) -> S | None:
        return await self.reader.run(lambda conn: self.table.get(conn, name))
