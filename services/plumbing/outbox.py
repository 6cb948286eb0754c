"""Writing events to the outbox inside the caller's transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from services.plumbing.db import BulkStatement
from services.plumbing.events import Event, trace_columns
from services.plumbing.tables import OutboxEvent

OUTBOX = OutboxEvent.__table__  # type: ignore[attr-defined]
_INSERT = BulkStatement(
    insert(OUTBOX), keys=["event_id", "event_type", "subject", "payload", "occurred_at", "traceparent", "tracestate"]
)


class Outbox:
    """Adds events to the current transaction and wakes the relay after commit."""

    def __init__(self) -> None:
        self.new_rows = asyncio.Event()

    async def add(self, conn: AsyncConnection, events: Iterable[Event]) -> None:
        await _INSERT.execute(conn, self.rows(events))

    def insert_rows(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Writes rows made by rows() (the write door's batch: one statement for all its units)."""
        _INSERT.execute_sync(conn, rows)

    def rows(self, events: Iterable[Event]) -> list[dict[str, Any]]:
        """Outbox rows for `events`, carrying the current trace context."""
        trace = trace_columns()
        return [
            {
                "event_id": e.event_id,
                "event_type": e.event_type,
                "subject": e.subject,
                "payload": e.payload.SerializeToString(deterministic=True),
                "occurred_at": e.occurred_at,
                **trace,
            }
            for e in events
        ]

    def notify(self) -> None:
        """Call after the transaction commits, so the relay does not wait for its next poll."""
        self.new_rows.set()
