"""Wiring of the notice side of the assistance service beside its servicer: the agency
turnaround consumer and the scanner (objection answers, seizure reminders and lapses)."""

from __future__ import annotations

from services.assistance.agency_turnaround import CONSUMER as AGENCY_TURNAROUND_CONSUMER
from services.assistance.agency_turnaround import SUBJECTS as AGENCY_TURNAROUND_SUBJECTS
from services.assistance.agency_turnaround import AgencyTurnaroundProjection
from services.assistance.handlers import AssistanceHandlers
from services.assistance.notice_scanner import NoticeScanner
from services.plumbing.host import ServiceHost


def wire_notices(host: ServiceHost, handlers: AssistanceHandlers) -> None:
    projection = AgencyTurnaroundProjection(handlers.calendar)
    host.add_consumer(AGENCY_TURNAROUND_CONSUMER, [AGENCY_TURNAROUND_SUBJECTS], projection.apply)
    if host.settings.scan_interval > 0:
        host.workers.append(NoticeScanner(handlers, interval=host.settings.scan_interval))
