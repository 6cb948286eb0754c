"""Service-side helpers the assistance service reuses.

They are generic (AIP-155 idempotent creation, AIP-158 keyset cursors, AIP-160 enum terms,
timestamps) and belong in `services/plumbing`; they live here until plumbing is next
changed, so there is one copy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.errors import FieldViolation, InvalidArgument
from services.plumbing.db import Database
from services.plumbing.outbox import Outbox
from services.plumbing.pagination import decode_token
from services.registry.handlers import _check_request_id as check_request_id

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


async def create_once(
    db: Database,
    outbox: Outbox,
    request_id: str,
    by_request_id: Callable[[AsyncConnection, str], Awaitable[T | None]],
    write: Callable[[AsyncConnection], Awaitable[T]],
) -> T:
    """Runs `write` (state + outbox rows) in one transaction, once per `request_id`.

    A retry with the same request_id gets the first answer back, also when it raced the
    first call and lost on the unique request_id column.
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


async def _earlier(
    db: Database, request_id: str, by_request_id: Callable[[AsyncConnection, str], Awaitable[T | None]]
) -> T | None:
    async with db.read() as conn:
        return await by_request_id(conn, request_id)


def enum_term(kind: type[E], terms: dict[str, str | int], field: str) -> E | None:
    """The filter term `field` as a member of `kind`; None when absent, BAD_FILTER when no member."""
    if field not in terms:
        return None
    try:
        return kind(str(terms[field]))
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidArgument.of([FieldViolation("filter", f"{field} must be one of {allowed}", "BAD_FILTER")]) from None


def after_seq(token: str, fingerprint: str) -> int:
    """The `seq` a keyset page starts after: 0 for the first page."""
    after = decode_token(token, fingerprint) or 0
    if not isinstance(after, int) or after < 0:  # a forged token must not reach SQL as INTERNAL
        raise InvalidArgument.of([FieldViolation("page_token", "corrupt", "BAD_PAGE_TOKEN")])
    return after


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every value stored is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)
