"""Group commit: the rows of concurrent requests are inserted in one transaction.

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
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.exc import IntegrityError

from services.plumbing.batching import BatchWorker, settle
from services.plumbing.db import Database

Rows = Sequence[tuple[Table, list[dict[str, Any]]]]


class GroupCommitter(BatchWorker[Rows, None]):
    def __init__(self, db: Database, *, max_batch: int = 256):
        super().__init__("group-commit", max_batch=max_batch)
        self.db = db

    async def insert(self, rows: Rows) -> None:
        """Returns once `rows` are committed; raises IntegrityError if they conflict."""
        await self.submit(rows)

    async def process(self, batch: list[tuple[Rows, asyncio.Future[None]]]) -> None:
        try:
            async with self.db.transaction() as conn:
                for table, rows in _merge(rows for rows, _ in batch):
                    await conn.execute(insert(table), rows)
        except IntegrityError as error:
            if len(batch) == 1:
                settle(batch, error=error)
            else:
                for one in batch:  # isolate the conflicting request(s); the others still commit
                    await self.process([one])
            return
        settle(batch)


def _merge(units: Any) -> list[tuple[Table, list[dict[str, Any]]]]:
    """Concatenates rows per table, keeping the first-seen table order (parents before children)."""
    merged: dict[Table, list[dict[str, Any]]] = {}
    for unit in units:
        for table, rows in unit:
            merged.setdefault(table, []).extend(rows)
    return [(table, rows) for table, rows in merged.items() if rows]
