"""Forgetting request_ids after the retention window (AIP-155).

A request_id is remembered (`request_log`, services/plumbing/idempotency.py) for
`ROGATORY_REQUEST_ID_RETENTION` seconds, 7 days by default: a retry within that window gets the
first answer; after it, the same request_id is a new request. Every service host runs
`expire_request_ids` in the background (hourly, and once at start): it deletes the entries
older than the window, oldest first, in batches of `EXPIRY_BATCH` rows, each batch a unit of
the service's write door (services/plumbing/unit_of_work.py) that commits before the next is
queued, so a backlog never holds the writer (SQLite) or many row locks (PostgreSQL) for long.
The index on `created_at` finds them without reading the table.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Table, delete, select

from services.plumbing.tables import RequestLogEntry
from services.plumbing.unit_of_work import Tx, Writer

EXPIRY_WORKER = "request-id-expiry"
EXPIRY_INTERVAL = 3600.0  # seconds between passes: entries live at most this much past the window
EXPIRY_BATCH = 1000

_LOG: Table = RequestLogEntry.__table__  # type: ignore[attr-defined]


def _expire_batch(tx: Tx, before: datetime, limit: int) -> int:
    oldest = select(_LOG.c.key).where(_LOG.c.created_at < before).order_by(_LOG.c.created_at).limit(limit)
    return tx.connection.execute(delete(_LOG).where(_LOG.c.key.in_(oldest.scalar_subquery()))).rowcount


async def expire_request_ids(
    writer: Writer,
    retention: timedelta,
    *,
    batch: int = EXPIRY_BATCH,
    on_batch: Callable[[int], object] = lambda _deleted: None,
) -> int:
    """Deletes the request_log entries older than `retention`, `batch` at a time; how many."""
    before = datetime.now(UTC) - retention
    total = 0
    while True:
        deleted = await writer.run(lambda tx: _expire_batch(tx, before, batch))
        on_batch(deleted)
        total += deleted
        if deleted < batch:
            return total
