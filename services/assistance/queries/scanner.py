"""The timeout scanner: queries past their deadline have their silent agencies marked timed out.

Runs in the assistance service every second (a `PeriodicWorker`) on the handlers' injected clock;
readers never wait for it, since a query past its deadline already reads as complete
(`assistance.queries.seen_at`). The completion event is written by the pass that times
the query out, or by the last reply, whichever commits first (the query row is locked).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from services.assistance.queries.handlers import QueryHandlers

log = logging.getLogger(__name__)


@dataclass
class QueryTimeoutScanner:
    handlers: QueryHandlers

    async def scan_once(self) -> int:
        return await self.handlers.time_out_due()
