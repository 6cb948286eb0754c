"""AIP-155 idempotent creation: one transaction per `request_id`, retries get the first answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.errors import FieldViolation, InvalidArgument
from services.plumbing.db import Database
from services.plumbing.group_commit import TransactionBatcher
from services.plumbing.outbox import Outbox

T = TypeVar("T")
MAX_REQUEST_ID_LENGTH = 64

Lookup = Callable[[AsyncConnection, str], Awaitable[T | None]]


def check_request_id(request_id: str) -> None:
    if len(request_id) > MAX_REQUEST_ID_LENGTH:
        raise InvalidArgument.of(
            [FieldViolation("request_id", f"at most {MAX_REQUEST_ID_LENGTH} characters (a UUID)", "TOO_LONG")]
        )


async def create_once(
    db: Database,
    outbox: Outbox,
    request_id: str,
    by_request_id: Lookup[T],
    write: Callable[[AsyncConnection], Awaitable[T]],
) -> T:
    """Runs `write` (state + outbox rows) in one transaction, once per `request_id`.

    A retry with the same request_id gets the first answer back, also when it raced the
    first call and lost on the unique request_id column. Any other integrity error is
    re-raised for the caller to explain (e.g. ALREADY_EXISTS).
    """

    async def transact() -> T:
        async with db.transaction() as conn:
            return await write(conn)

    return await _once(db, outbox, request_id, by_request_id, transact)


async def create_once_in_one_hop(
    db: Database, outbox: Outbox, request_id: str, by_request_id: Lookup[T], work: Callable[[Connection], T]
) -> T:
    """create_once with synchronous `work`, run by Database.run_transaction (one thread hop on
    SQLite): for hot creations whose transaction is several statements."""
    return await _once(db, outbox, request_id, by_request_id, lambda: db.run_transaction(work))


async def create_once_batched(
    writer: TransactionBatcher,
    outbox: Outbox,
    request_id: str,
    by_request_id: Callable[[Connection, str], T | None],
    write: Callable[[Connection], T],
) -> T:
    """create_once for hot creations, as one unit of a TransactionBatcher: the request_id
    look-up and the write share the transaction of every creation waiting with it, so the
    happy path has no read of its own."""
    check_request_id(request_id)

    def once(conn: Connection) -> T:
        if request_id and (earlier := by_request_id(conn, request_id)) is not None:
            return earlier
        return write(conn)

    try:
        created = await writer.run(once)
    except IntegrityError:  # raced a copy of itself committed elsewhere (another replica)
        if request_id and (earlier := await writer.run(lambda conn: by_request_id(conn, request_id))) is not None:
            return earlier
        raise
    outbox.notify()
    return created


async def _once(
    db: Database, outbox: Outbox, request_id: str, by_request_id: Lookup[T], transact: Callable[[], Awaitable[T]]
) -> T:
    check_request_id(request_id)
    if request_id and (earlier := await _earlier(db, request_id, by_request_id)):
        return earlier
    try:
        created = await transact()
    except IntegrityError:
        if request_id and (earlier := await _earlier(db, request_id, by_request_id)):
            return earlier
        raise
    outbox.notify()
    return created


async def _earlier(db: Database, request_id: str, by_request_id: Lookup[T]) -> T | None:
    async with db.read() as conn:
        return await by_request_id(conn, request_id)
