"""AIP-155 idempotent creation: one transaction per `request_id`, retries get the first answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.errors import FieldViolation, InvalidArgument
from services.plumbing.db import Database
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
    check_request_id(request_id)
    if request_id and (earlier := await _earlier(db, request_id, by_request_id)):
        return earlier
    try:
        async with db.transaction() as conn:
            created = await write(conn)
    except IntegrityError:
        if request_id and (earlier := await _earlier(db, request_id, by_request_id)):
            return earlier
        raise
    outbox.notify()
    return created


async def _earlier(db: Database, request_id: str, by_request_id: Lookup[T]) -> T | None:
    async with db.read() as conn:
        return await by_request_id(conn, request_id)
