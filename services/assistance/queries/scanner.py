"""The timeout scanner: queries past their deadline have their silent agencies marked timed out.

Runs in the assistance service every `interval` seconds on the handlers' injected clock;
readers never wait for it, since a query past its deadline already reads as complete
(`assistance.queries.seen_at`). The completion event is written by the pass that times
the query out, or by the last reply, whichever commits first (the query row is locked).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from services.assistance.queries.handlers import QueryHandlers

log = logging.getLogger(__name__)


@dataclass
class QueryTimeoutScanner:
    handlers: QueryHandlers
    interval: float = 1.0
    _task: asyncio.Task[None] | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="property-query-timeouts")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task:
            await self._task

    async def scan_once(self) -> int:
        return await self.handlers.time_out_due()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.scan_once()
            except Exception:  # noqa: BLE001 - a failed pass (database away) is retried next time
                log.exception("property-query timeout scan failed")
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)
            except TimeoutError:
                pass
