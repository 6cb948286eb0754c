"""The one write door and the one read door of every service.

A write is a *unit*: a synchronous function `work(tx)` over SQLAlchemy Core that reads what
it needs (`tx.connection`), asks the pure domain what to do, writes its rows and records its
events with `tx.emit(event)`. `await writer.run(work, request=current_request(), …)` returns
what `work` returns, once it is committed. The writer owns, in one place:

- **The transaction and its batching.** Units that wait together run in one transaction
  (`Database.run_transaction`: on SQLite one hop to the writer thread and one commit for all
  of them; on PostgreSQL one round of commits), each in a savepoint of its own when there are
  several, so a unit that raises is rolled back alone and only its caller hears of it. An
  error of the database itself (disk full, locked, unreachable) fails the whole batch, and
  every caller gets the `DatabaseUnavailable` it stands for (the RPC wrapper maps it).
  A caller cut off by its deadline before its unit ran is left out of the batch.
- **Deadlocks between batches.** On PostgreSQL batches run side by side, and a batch's units
  share its transaction, so two batches can lock rows in opposite orders where the units alone
  never would. PostgreSQL then aborts one transaction (SQLSTATE 40P01; 40001, a serialization
  failure, alike): nothing of it is applied, and its units run again, each alone as it would
  have without batching, up to `RETRIES` more times before the caller hears of it. A unit is
  applied once: only a transaction that was rolled back as a whole is run again.
- **Idempotency by request_id** (AIP-155, services/plumbing/idempotency.py). With `request`,
  the unit runs once per request key: the batch looks up its keys in `request_log` with one
  query; a key already logged with the same fingerprint is answered by `replay(conn,
  resource)` (the resource it wrote, as it is now) and nothing is applied; with another
  fingerprint the unit fails with ALREADY_EXISTS `REQUEST_ID_IN_USE`. A unit that applied logs
  its key with `resource_of(result)`. Two copies of a request in one batch are answered as a
  retry of the first; a copy that lost a race with another process (its unit failed on a
  constraint or a version guard, or its log row conflicted) is answered like a later retry
  when the winner's key is found.
- **The outbox.** The events units emit are written to the outbox in the same transaction,
  each row carrying the trace context current when it was emitted (the unit runs in its
  caller's context, so a span it opens — a matter's trace — is the one its events carry);
  after the commit the relay is woken. A unit that fails emits nothing.

**Multi-row writes.** Rows a unit only inserts (`tx.insert(table, rows)`: a new case and its
parties), its events and its request-log row are kept until the batch writes them with one
multi-row statement per table, in the order the tables were first seen (parents first). A
unit that needs the connection (`tx.connection`, to read or update) gets the rows of the units
before it written first, so it sees them, and a savepoint of its own when the batch has
several units; a unit that only inserts needs neither. A unit that reads and then only
inserts (a new delegation, after looking up its case) reads through `tx.snapshot`: the
transaction without the rows the units ahead of it kept for the batch's statements (what a
concurrent transaction would see), with no savepoint (it writes nothing to roll back) and no
rows written early, so its rows still go with the batch's in one statement per table. If a
batch's rows cannot be written (a duplicate case number, a request key another process logged
meanwhile, a value the database refuses), the batch is rolled back and each unit runs again
alone, so only the offending one fails.

Reads go through `reader.run(read)`: `read(conn)` is synchronous Core too, run on a reader
thread on SQLite (WAL: it never waits for the writer) and on a pooled connection on
PostgreSQL. `reader.loader(name, load_many)` coalesces concurrent keyed reads into one
`load_many(conn, keys)` call (one `IN (…)` query).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from registry.errors import Aborted, AlreadyExists
from services.plumbing.batching import BatchLoader, BatchWorker
from services.plumbing.db import BulkStatement, Database, database_fault, must_retry
from services.plumbing.events import Event
from services.plumbing.idempotency import REQUEST_LOG, RequestKey
from services.plumbing.outbox import OUTBOX, Outbox

log = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Work = Callable[["Tx"], T]
Read = Callable[[Connection], T]
#: The resource an applied unit wrote, as request_log names it (e.g. `delegations/abc`).
ResourceOf = Callable[[Any], str]
#: The answer to a retry: the resource an earlier call wrote, read as it is now.
Replay = Callable[[Connection, str], Any]

_LOOKUP_ONE = select(REQUEST_LOG.c.key, REQUEST_LOG.c.fingerprint, REQUEST_LOG.c.resource).where(
    REQUEST_LOG.c.key == bindparam("key")
)
_LOOKUP_MANY = select(REQUEST_LOG.c.key, REQUEST_LOG.c.fingerprint, REQUEST_LOG.c.resource).where(
    REQUEST_LOG.c.key.in_(bindparam("keys", expanding=True))
)
#: Failures after which a keyed unit may have lost a race with a copy of its request.
_RACE_LOST = (IntegrityError, Aborted)
#: How many more times a unit runs after PostgreSQL aborted its transaction for a deadlock or a
#: serialization failure (each time alone, in a transaction of its own).
RETRIES = 3


class Tx:
    """One unit's share of the batch's transaction: its connection, its rows and its events."""

    __slots__ = ("_batch", "_savepoint", "_rows")

    def __init__(self, batch: _Batch):
        self._batch = batch
        self._savepoint: Any = None
        self._rows: list[tuple[Table, list[dict[str, Any]]]] = []

    @property
    def connection(self) -> Connection:
        """The transaction's connection, with every row of the units before this one written."""
        if self._savepoint is None:
            self._batch.flush()
            self._savepoint = self._batch.conn.begin_nested() if self._batch.isolated else False
        return self._batch.conn

    @property
    def snapshot(self) -> Connection:
        """The transaction's connection, for reads only, without the rows the units before this
        one kept (they are written with the batch): what a concurrent transaction would see.
        A unit that reads here and writes only with `insert` and `emit` needs no savepoint."""
        return self._batch.conn

    def insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Inserts `rows` with the batch's other rows of `table`, in one statement, after the unit."""
        if rows:
            self._rows.append((table, rows))

    def emit(self, *events: Event) -> None:
        """Records events to publish once the unit commits, with the current trace context."""
        outbox = self._batch.outbox
        if outbox is None:
            raise RuntimeError("this writer has no outbox: its units cannot emit events")
        self._rows.append((OUTBOX, outbox.rows(events)))

    def emit_all(self, events: Iterable[Event]) -> None:
        self.emit(*events)


class _Batch:
    """The transaction of one batch: its connection and the rows waiting to be written."""

    __slots__ = ("conn", "outbox", "isolated", "pending")

    def __init__(self, conn: Connection, outbox: Outbox | None, isolated: bool):
        self.conn = conn
        self.outbox = outbox
        self.isolated = isolated
        self.pending: dict[Table, list[dict[str, Any]]] = {}

    def keep(self, rows: list[tuple[Table, list[dict[str, Any]]]]) -> None:
        for table, table_rows in rows:
            self.pending.setdefault(table, []).extend(table_rows)

    def flush(self) -> None:
        """Writes the rows kept so far, one statement per table. Rows that cannot be written fail
        the batch (whichever unit's `tx.connection` flushed them), so that its units run again
        alone and only the one whose rows they are fails — never a later unit, never by losing
        the rows kept after them; the database's own fault and a deadlock leave as they are."""
        pending, self.pending = self.pending, {}
        try:
            for table, rows in pending.items():
                if rows:
                    _insert_into(table, rows).execute_sync(self.conn, rows)
        except Exception as refused:
            if database_fault(refused) is not None or must_retry(refused):
                raise
            raise _Conflict from refused


def _insert_into(table: Table, rows: Sequence[Mapping[str, Any]]) -> BulkStatement:
    """The multi-row INSERT of `rows`' columns into `table` (every row of a batch's table gives the same)."""
    return _bulk_insert(table, tuple(rows[0]))


@functools.cache
def _bulk_insert(table: Table, keys: tuple[str, ...]) -> BulkStatement:
    """Built once per table and columns: building costs more than running."""
    return BulkStatement(insert(table), keys=keys)


@dataclass(frozen=True)
class Insert(Generic[T]):
    """A unit whose rows are known before it runs — a new case and its parties — and the
    events it emits; `writer.run(Insert(rows, events, result))` returns `result`. The writer
    prepares its rows (and the events' outbox rows, with the caller's trace context) in the
    caller's task, so the writer thread only writes them with the batch's other rows: the
    fewest Python steps inside the transaction on the hottest path."""

    rows: Sequence[tuple[Table, list[dict[str, Any]]]]
    events: Sequence[Event] = ()
    result: T | None = None

    def __call__(self, tx: Tx) -> T | None:
        for table, rows in self.rows:
            tx.insert(table, rows)
        tx.emit(*self.events)
        return self.result


@dataclass
class _Unit:
    work: Callable[[Tx], Any]
    request: RequestKey | None
    resource_of: ResourceOf | None
    replay: Replay | None
    context: contextvars.Context | None = None  # None: an Insert, prepared beforehand
    prepared: list[tuple[Table, list[dict[str, Any]]]] | None = None


@dataclass
class _Applied:
    """A unit that ran: its result, and whether it emitted events."""

    value: Any
    emitted: bool


class _CallerGone(Exception):
    """The caller was cut off by its deadline before its unit ran: the unit is not done."""


class _Conflict(Exception):
    """Rows kept for the batch could not be written: a constraint (e.g. a request key another
    process logged), or a value the database or its driver refused."""


class _Replayed:
    """A unit answered from the request log: nothing applied."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


Outcome = _Applied | _Replayed | BaseException


class Writer(BatchWorker[_Unit, Any]):
    """`await writer.run(work, request=…, resource_of=…, replay=…)`: the module docstring."""

    def __init__(
        self, db: Database, outbox: Outbox | None = None, *, name: str = "writes", max_batch: int = 64, concurrency: int = 4
    ):
        # SQLite has one writer: one batch at a time. PostgreSQL runs `concurrency` batches side by
        # side, so a unit waiting on a lock (a consumer's, a hung statement) does not hold up the rest.
        super().__init__(name, max_batch=max_batch, concurrency=1 if db.is_sqlite else concurrency)
        self.db = db
        self.outbox = outbox
        self.rerun = 0  # units run again after their batch was aborted for a deadlock or a serialization failure

    async def run(
        self,
        work: Work[T],
        *,
        request: RequestKey | None = None,
        resource_of: Callable[[T], str] | None = None,
        replay: Callable[[Connection, str], T] | None = None,
    ) -> T:
        if request is not None and (resource_of is None or replay is None):
            raise TypeError("a unit with a request key needs resource_of and replay")
        if isinstance(work, Insert):
            prepared = list(work.rows)
            if work.events:
                if self.outbox is None:
                    raise RuntimeError("this writer has no outbox: its units cannot emit events")
                prepared.append((OUTBOX, self.outbox.rows(work.events)))
            unit = _Unit(work, request, resource_of, replay, prepared=prepared)
        else:
            unit = _Unit(work, request, resource_of, replay, contextvars.copy_context())
        result: T = await self.submit(unit)
        return result

    async def process(self, batch: list[tuple[_Unit, asyncio.Future[Any]]], retries: int = RETRIES) -> None:
        try:
            outcomes = await self.db.run_transaction(lambda conn: self._run_batch(conn, batch))
        except _Conflict as conflict:
            if len(batch) > 1:  # some unit's rows conflict: each unit alone decides afresh
                for one in batch:
                    await self.process([one], retries)
                return
            outcomes = [conflict.__cause__ or conflict]  # the lone unit's own rows
        except Exception as error:
            if retries > 0 and must_retry(error):  # rolled back whole to break a deadlock: each unit again, alone
                log.info(
                    "%s: a batch of %d aborted by the database (%s); running its units again, each alone",
                    self.name,
                    len(batch),
                    error.__class__.__name__,
                )
                self.rerun += len(batch)
                for one in batch:
                    await self.process([one], retries - 1)
                return
            if len(batch) != 1 or database_fault(error) is not None:
                raise  # BatchWorker settles every caller with it
            # the lone unit's own failure (its transaction was its savepoint), or aborted again
            # and again by concurrent writers: ABORTED, which clients retry (AIP-194), not INTERNAL
            outcomes = [_write_conflict(error) if must_retry(error) else error]
        emitted = False
        for outcome, (unit, future) in zip(outcomes, batch, strict=True):
            if isinstance(outcome, BaseException) and unit.request is not None and isinstance(outcome, _RACE_LOST):
                outcome = await self._answer_lost_race(unit, outcome)
            emitted |= isinstance(outcome, _Applied) and outcome.emitted
            _settle(future, outcome)
        if emitted and self.outbox is not None:
            self.outbox.notify()

    def _run_batch(self, conn: Connection, batch: list[tuple[_Unit, asyncio.Future[Any]]]) -> list[Outcome]:
        """Runs in the transaction (on SQLite, on the writer thread). A caller's future is only
        read here (cancelled or not), never set."""
        logged = _logged(conn, [unit.request.key for unit, _ in batch if unit.request is not None])
        written = _Batch(conn, self.outbox, isolated=len(batch) > 1)
        outcomes: list[Outcome] = []
        for unit, future in batch:
            if future.cancelled():
                outcomes.append(_CallerGone())
                continue
            if unit.context is None:
                outcomes.append(self._run_unit(written, unit, logged))
            else:
                outcomes.append(unit.context.run(self._run_unit, written, unit, logged))
        written.flush()
        return outcomes

    def _run_unit(self, batch: _Batch, unit: _Unit, logged: dict[str, tuple[str, str]]) -> Outcome:
        request = unit.request
        if request is not None and (earlier := logged.get(request.key)) is not None:
            batch.flush()  # a copy earlier in this batch: its rows are read back
            try:
                return _Replayed(_replay(batch.conn, unit, request, *earlier))
            except Exception as error:
                if not batch.isolated or _fails_the_batch(error):
                    raise
                return error
        if unit.prepared is not None:
            return self._prepared(batch, unit, logged)
        tx = Tx(batch)
        try:
            value = unit.work(tx)
        except Exception as error:
            if not batch.isolated or _fails_the_batch(error):
                raise  # alone: the transaction rolls back; the database's fault, a deadlock or a conflict fails the batch
            if tx._savepoint:
                tx._savepoint.rollback()
            return error
        if tx._savepoint:
            tx._savepoint.commit()
        if request is not None:
            assert unit.resource_of is not None
            row = request.log_row(unit.resource_of(value))
            logged[request.key] = (row["fingerprint"], row["resource"])
            tx.insert(REQUEST_LOG, [row])
        batch.keep(tx._rows)
        return _Applied(value, any(table is OUTBOX for table, _ in tx._rows))

    def _prepared(self, batch: _Batch, unit: _Unit, logged: dict[str, tuple[str, str]]) -> _Applied:
        """An Insert: its prepared rows, and its key, go with the batch's rows."""
        assert unit.prepared is not None and isinstance(unit.work, Insert)
        value = unit.work.result
        rows = unit.prepared
        if unit.request is not None:
            assert unit.resource_of is not None
            row = unit.request.log_row(unit.resource_of(value))
            logged[unit.request.key] = (row["fingerprint"], row["resource"])
            rows = [*rows, (REQUEST_LOG, [row])]
        batch.keep(rows)
        return _Applied(value, bool(unit.work.events))

    async def _answer_lost_race(self, unit: _Unit, error: BaseException) -> Outcome:
        """A keyed unit that failed on a constraint or a version guard: if a copy of its request
        committed meanwhile (replicas on PostgreSQL), it is answered like a later retry."""
        request = unit.request
        assert request is not None

        def look(conn: Connection) -> Outcome:
            earlier = _logged(conn, [request.key]).get(request.key)
            return error if earlier is None else _Replayed(_replay(conn, unit, request, *earlier))

        try:
            return await self.db.run_read(look)
        except Exception as failure:  # noqa: BLE001 - the caller hears of it instead of its first error
            return failure


def _fails_the_batch(error: BaseException) -> bool:
    """An error no savepoint confines to its unit: the database's fault, a conflict of the batch's
    rows, or a deadlock or serialization failure, after which the batch's transaction is rolled
    back whole (wherever it struck: in a unit, in the batch's multi-row writes, at the commit) and
    its units run again, each alone — so no unit of it is applied twice."""
    return database_fault(error) is not None or isinstance(error, _Conflict) or must_retry(error)


def _logged(conn: Connection, keys: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(fingerprint, resource) of each key already in request_log."""
    if not keys:
        return {}
    if len(keys) == 1:
        rows = conn.execute(_LOOKUP_ONE, {"key": keys[0]})
    else:
        rows = conn.execute(_LOOKUP_MANY, {"keys": list(set(keys))})
    return {row.key: (row.fingerprint, row.resource) for row in rows}


def _replay(conn: Connection, unit: _Unit, request: RequestKey, fingerprint: str, resource: str) -> Any:
    if fingerprint != request.fingerprint:
        raise AlreadyExists(
            f"request_id {request.request_id!r} was used for a different request; send a new request_id",
            reason="REQUEST_ID_IN_USE",
            metadata={"request_id": request.request_id, "resource": resource},
        )
    assert unit.replay is not None
    return unit.replay(conn, resource)


def _settle(future: asyncio.Future[Any], outcome: Outcome) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome.value)


class Reader:
    """The read door: `await reader.run(read)` returns `read(conn)`, synchronous Core."""

    def __init__(self, db: Database):
        self.db = db

    async def run(self, read: Read[T]) -> T:
        return await self.db.run_read(read)

    def loader(self, name: str, load_many: Callable[[Connection, list[K]], dict[K, V]]) -> BatchLoader[K, V]:
        """Concurrent `await loader.load(key)` calls become one `load_many(conn, keys)` read."""

        async def load(keys: list[K]) -> dict[K, V]:
            return await self.run(lambda conn: load_many(conn, keys))

        return BatchLoader(name, load)


def _write_conflict(error: BaseException) -> Aborted:
    """A unit the database aborted for a deadlock or a serialization failure RETRIES more times."""
    aborted = Aborted(
        f"the write conflicted with concurrent writes {RETRIES + 1} times; nothing was applied, retry",
        reason="WRITE_CONFLICT",
    )
    aborted.__cause__ = error
    return aborted
