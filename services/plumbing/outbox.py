"""The outbox's rows and the relay's wake-up. Events reach the outbox only through the write
door (services/plumbing/unit_of_work.py: `tx.emit`), which writes these rows in the unit's
transaction and calls `notify` after the commit."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from services.plumbing.events import Event, trace_columns
from services.plumbing.tables import OutboxEvent

OUTBOX = OutboxEvent.__table__  # type: ignore[attr-defined]


class Outbox:
    """Makes the outbox rows of events, and wakes the relay after a commit wrote some."""

    def __init__(self) -> None:
        self.new_rows = asyncio.Event()

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
