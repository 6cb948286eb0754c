"""Wiring of the notice side of the assistance service beside its servicer: the agency
turnaround consumer and the scanner (objection answers, seizure reminders and lapses).

`ROGATORY_SEIZURE_REMINDER_DAYS` (default 30) sets how many days before a seizure's term
ends its court and agency get the `expiring` reminder; the scanner runs every
`ROGATORY_SCAN_INTERVAL` seconds like the delegation service's (0: off).
"""

from __future__ import annotations

import os
from datetime import timedelta

from services.assistance.agency_turnaround import CONSUMER as AGENCY_TURNAROUND_CONSUMER
from services.assistance.agency_turnaround import SUBJECTS as AGENCY_TURNAROUND_SUBJECTS
from services.assistance.agency_turnaround import AgencyTurnaroundProjection
from services.assistance.handlers import AssistanceHandlers
from services.assistance.notice_scanner import NoticeScanner
from services.plumbing.host import ServiceHost

REMINDER_DAYS_VARIABLE = "ROGATORY_SEIZURE_REMINDER_DAYS"


def wire_notices(host: ServiceHost, handlers: AssistanceHandlers) -> None:
    days = os.environ.get(REMINDER_DAYS_VARIABLE, "").strip()
    if days:
        handlers.reminder_lead = timedelta(days=float(days))
    projection = AgencyTurnaroundProjection(handlers.calendar)
    host.add_consumer(AGENCY_TURNAROUND_CONSUMER, [AGENCY_TURNAROUND_SUBJECTS], batch_handler=projection.apply_batch)
    if host.settings.scan_interval > 0:
        host.add_periodic("assistance-notice-scanner", host.settings.scan_interval, NoticeScanner(handlers).scan_once)
