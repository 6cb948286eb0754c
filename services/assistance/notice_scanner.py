"""The assistance scanner: overdue objection answers, seizure expiry reminders and lapses,
on the handlers' injected clock (tests move it; nothing sleeps).

One pass (`scan_once`) flags objections the court left unanswered past their 15 days,
sends `expiring` reminders for seizures within the reminder lead of their end, and lapses
seizures whose term ended without renewal, moving their seizure queue up (轮候). Each item
is its own transaction; a second replica or a concurrent reply makes the pass skip it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from services.assistance.handlers import SEIZURE_EXPIRING, SEIZURE_LAPSED, AssistanceHandlers

log = logging.getLogger(__name__)


@dataclass
class NoticeScanner:
    handlers: AssistanceHandlers

    async def scan_once(self) -> dict[str, int]:
        report = {"objection-overdue": await self.handlers.flag_overdue_objections()}
        seizures = await self.handlers.watch_seizures()
        report[SEIZURE_EXPIRING] = seizures[SEIZURE_EXPIRING]
        report[SEIZURE_LAPSED] = seizures[SEIZURE_LAPSED]
        return report
