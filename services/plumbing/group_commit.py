"""Group commit: the writes of concurrent requests share one transaction.

`GroupCommitter` inserts rows. `TransactionBatcher` runs arbitrary synchronous work, each
request's in a savepoint of its own.

Each request hands over the rows it needs inserted atomically (its state rows and its
outbox rows). A single writer task takes every request waiting, inserts their rows with
one `executemany` per table and commits once, then answers them all. On SQLite, where
there is one writer anyway, this turns N transactions of 3 inserts into one transaction of
3 inserts; on PostgreSQL it saves N-1 commits and round trips.

If the batch violates a constraint (a duplicate case number, a retried request_id), the
writer re-runs its requests one by one, so only the offending request gets the
IntegrityError and the others still commit.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Insert, Table, insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from services.plumbing.batching import BatchWorker, settle
from services.plumbing.db import Database, database_fault

Rows = Sequence[tuple[Table, list[dict[str, Any]]]]
T = TypeVar("T")
Work = tuple[Callable[[Connection], Any], contextvars.Context]


class GroupCommitter(BatchWorker[Rows, None]):
    def __init__(self, db: Database, *, max_batch: int = 256):
        super().__init__("group-commit", max_batch=max_batch)
        self.db = db

    async def insert(self, rows: Rows) -> None:
        """Returns once `rows` are committed; raises IntegrityError if they conflict."""
        await self.submit(rows)

    async def process(self, batch: list[tuple[Rows, asyncio.Future[None]]]) -> None:
        try:
            await self.db.run_transaction(functools.partial(_insert_waiting, batch=batch))
        except IntegrityError as error:
            if len(batch) == 1:
                settle(batch, error=error)
            else:
                for one in batch:  # isolate the conflicting request(s); the others still commit
                    await self.process([one])
            return
        settle(batch)


def _insert_waiting(conn: Connection, batch: list[tuple[Rows, asyncio.Future[None]]]) -> None:
    """Inserts the rows of every caller still waiting. Run by the writer, so a caller cut off by
    its deadline while the batch waited for the database is left out: it is not written after
    it was told it failed. (A future's state is read from the writer thread: a read only.)"""
    for table, rows in _merge(rows for rows, future in batch if not future.cancelled()):
        conn.execute(_insert_into(table), rows)


@functools.cache
def _insert_into(table: Table) -> Insert:
    """Built once per table: at one request per batch, building it was a good part of the batch's CPU."""
    return insert(table)


def _merge(units: Any) -> list[tuple[Table, list[dict[str, Any]]]]:
    """Concatenates rows per table, keeping the first-seen table order (parents before children)."""
    merged: dict[Table, list[dict[str, Any]]] = {}
    for unit in units:
        for table, rows in unit:
            merged.setdefault(table, []).extend(rows)
    return [(table, rows) for table, rows in merged.items() if rows]


class TransactionBatcher(BatchWorker[Work, Any]):
    """Runs the synchronous transactions of concurrent requests as one transaction.

    `await batcher.run(work)` returns what `work(conn)` returns. Every work waiting is run
    in one Database.run_transaction (on SQLite: one thread hop and one commit for all of
    them), each in a savepoint and in its caller's context (the trace id its timeline and
    outbox rows carry). A work that raises is rolled back to its savepoint and its caller
    gets the exception; the others commit together. An error of the database itself (disk
    full, locked, unreachable) fails the whole batch instead, and every caller gets it as
    the DatabaseUnavailable it stands for. Works run in the order they came.
    """

    def __init__(self, db: Database, *, name: str = "transactions", max_batch: int = 64):
        super().__init__(name, max_batch=max_batch)
        self.db = db

    async def run(self, work: Callable[[Connection], T]) -> T:
        result: T = await self.submit((work, contextvars.copy_context()))
        return result

    async def process(self, batch: list[tuple[Work, asyncio.Future[Any]]]) -> None:
        if len(batch) == 1:  # the transaction is its savepoint; a failure reaches the caller through settle()
            (work, context), future = batch[0]
            value = await self.db.run_transaction(lambda conn: _unless_gone(conn, work, context, future))
            if not future.done():
                future.set_result(value)
            return
        outcomes = await self.db.run_transaction(lambda conn: [_in_savepoint(conn, *work, future) for work, future in batch])
        for (succeeded, value), (_, future) in zip(outcomes, batch, strict=True):
            if future.done():
                continue
            if succeeded:
                future.set_result(value)
            else:
                future.set_exception(value)


class _CallerGone(Exception):
    """The caller was cut off by its deadline before its work ran: the work is not done."""


def _unless_gone(
    conn: Connection, work: Callable[[Connection], T], context: contextvars.Context, future: asyncio.Future[Any]
) -> T:
    if future.cancelled():  # as in _insert_waiting
        raise _CallerGone
    return context.run(work, conn)


def _in_savepoint(
    conn: Connection, work: Callable[[Connection], Any], context: contextvars.Context, future: asyncio.Future[Any]
) -> tuple[bool, Any]:
    if future.cancelled():  # as in _insert_waiting
        return False, _CallerGone()
    try:
        with conn.begin_nested():
            return True, context.run(work, conn)
    except Exception as error:
        if database_fault(error) is not None:
            raise  # the database's trouble (disk full, locked…), not this work's: the batch fails, every caller hears it
        return False, error  # the caller's to handle; the batch goes on
