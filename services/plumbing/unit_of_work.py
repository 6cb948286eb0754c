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

The request-log rows and the outbox rows of a batch are written with one multi-row statement
each, after every unit ran: the batch's shared statements (issue 18's multi-row writes extend
this to the units' own rows).

Reads go through `reader.run(read)`: `read(conn)` is synchronous Core too, run on a reader
thread on SQLite (WAL: it never waits for the writer) and on a pooled connection on
PostgreSQL. `reader.loader(name, load_many)` coalesces concurrent keyed reads into one
`load_many(conn, keys)` call (one `IN (…)` query).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import bindparam, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from registry.errors import Aborted, AlreadyExists
from services.plumbing.batching import BatchLoader, BatchWorker
from services.plumbing.db import BulkStatement, Database, database_fault
from services.plumbing.events import Event
from services.plumbing.idempotency import REQUEST_LOG, RequestKey
from services.plumbing.outbox import Outbox

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
_LOG = BulkStatement(insert(REQUEST_LOG), keys=["key", "fingerprint", "resource", "created_at"])
#: Failures after which a keyed unit may have lost a race with a copy of its request.
_RACE_LOST = (IntegrityError, Aborted)


class Tx:
    """One unit's share of the batch's transaction: its connection and the events it emits."""

    __slots__ = ("connection", "_outbox", "_rows")

    def __init__(self, connection: Connection, outbox: Outbox | None):
        self.connection = connection
        self._outbox = outbox
        self._rows: list[dict[str, Any]] = []

    def emit(self, *events: Event) -> None:
        """Records events to publish once the unit commits, with the current trace context."""
        if self._outbox is None:
            raise RuntimeError("this writer has no outbox: its units cannot emit events")
        self._rows.extend(self._outbox.rows(events))

    def emit_all(self, events: Iterable[Event]) -> None:
        self.emit(*events)


@dataclass
class _Unit:
    work: Callable[[Tx], Any]
    request: RequestKey | None
    resource_of: ResourceOf | None
    replay: Replay | None
    context: contextvars.Context = field(default_factory=contextvars.copy_context)


@dataclass
class _Applied:
    """A unit that ran: its result, and the rows it leaves for the batch to write."""

    value: Any
    outbox_rows: list[dict[str, Any]]
    log_row: dict[str, Any] | None


class _CallerGone(Exception):
    """The caller was cut off by its deadline before its unit ran: the unit is not done."""


class _LogConflict(Exception):
    """A request-log row of the batch conflicted with one another process committed meanwhile."""


class _Replayed:
    """A unit answered from the request log: nothing applied."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


Outcome = _Applied | _Replayed | BaseException


class Writer(BatchWorker[_Unit, Any]):
    """`await writer.run(work, request=…, resource_of=…, replay=…)`: the module docstring."""

    def __init__(self, db: Database, outbox: Outbox | None = None, *, name: str = "writes", max_batch: int = 64):
        super().__init__(name, max_batch=max_batch)
        self.db = db
        self.outbox = outbox

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
        result: T = await self.submit(_Unit(work, request, resource_of, replay))
        return result

    async def process(self, batch: list[tuple[_Unit, asyncio.Future[Any]]], *, retried: bool = False) -> None:
        try:
            outcomes = await self.db.run_transaction(lambda conn: self._run_batch(conn, batch))
        except _LogConflict as conflict:
            if retried:  # alone and conflicting again: the other process's row came and went
                _settle(batch[0][1], conflict.__cause__ or conflict)
                return
            for one in batch:  # another process logged one of the keys: each unit alone decides afresh
                await self.process([one], retried=True)
            return
        except Exception as error:
            if len(batch) != 1 or database_fault(error) is not None:
                raise  # BatchWorker settles every caller with it
            outcomes = [error]  # the lone unit's own failure: its transaction was its savepoint
        emitted = False
        for outcome, (unit, future) in zip(outcomes, batch, strict=True):
            if isinstance(outcome, BaseException) and unit.request is not None and isinstance(outcome, _RACE_LOST):
                outcome = await self._answer_lost_race(unit, outcome)
            emitted |= isinstance(outcome, _Applied) and bool(outcome.outbox_rows)
            _settle(future, outcome)
        if emitted and self.outbox is not None:
            self.outbox.notify()

    def _run_batch(self, conn: Connection, batch: list[tuple[_Unit, asyncio.Future[Any]]]) -> list[Outcome]:
        """Runs in the transaction (on SQLite, on the writer thread). A caller's future is only
        read here (cancelled or not), never set."""
        logged = _logged(conn, [unit.request.key for unit, _ in batch if unit.request is not None])
        isolated = len(batch) > 1
        outcomes: list[Outcome] = []
        for unit, future in batch:
            if future.cancelled():
                outcomes.append(_CallerGone())
                continue
            outcome = unit.context.run(self._run_unit, conn, unit, logged, isolated)
            if isinstance(outcome, _Applied) and outcome.log_row is not None:
                row = outcome.log_row
                logged[row["key"]] = (row["fingerprint"], row["resource"])
            outcomes.append(outcome)
        applied = [o for o in outcomes if isinstance(o, _Applied)]
        log_rows = [o.log_row for o in applied if o.log_row is not None]
        try:
            _LOG.execute_sync(conn, log_rows)
        except IntegrityError as conflict:
            raise _LogConflict from conflict
        if self.outbox is not None:
            self.outbox.insert_rows(conn, [row for o in applied for row in o.outbox_rows])
        return outcomes

    def _run_unit(self, conn: Connection, unit: _Unit, logged: dict[str, tuple[str, str]], isolated: bool) -> Outcome:
        request = unit.request
        if request is not None and (earlier := logged.get(request.key)) is not None:
            try:
                return _Replayed(_replay(conn, unit, request, *earlier))
            except Exception as error:
                if not isolated or database_fault(error) is not None:
                    raise
                return error
        tx = Tx(conn, self.outbox)
        try:
            if isolated:
                with conn.begin_nested():
                    value = unit.work(tx)
            else:
                value = unit.work(tx)
        except Exception as error:
            if not isolated or database_fault(error) is not None:
                raise  # alone: the transaction rolls back; a fault of the database fails the batch
            return error
        log_row = None
        if request is not None:
            assert unit.resource_of is not None
            log_row = request.log_row(unit.resource_of(value))
        return _Applied(value, tx._rows, log_row)

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
