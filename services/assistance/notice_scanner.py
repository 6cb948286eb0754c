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

from assistance.notice_lifecycle import Action
from services.assistance.handlers import AssistanceHandlers
from services.contract.events import NOTICE_TRANSITIONED, SEIZURE_EXPIRING, SEIZURE_LAPSED

OBJECTION_OVERDUE = NOTICE_TRANSITIONED[Action.OBJECTION_OVERDUE]

log = logging.getLogger(__name__)


@dataclass
class NoticeScanner:
    handlers: AssistanceHandlers

    async def scan_once(self) -> dict[str, int]:
        report = {OBJECTION_OVERDUE.verb: await self.handlers.flag_overdue_objections()}
        seizures = await self.handlers.watch_seizures()
        report[SEIZURE_EXPIRING.verb] = seizures[SEIZURE_EXPIRING.verb]
        report[SEIZURE_LAPSED.verb] = seizures[SEIZURE_LAPSED.verb]
        return report
