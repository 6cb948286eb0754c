"""One assistance notice, one trace — as for delegated matters (services/delegation/tracing.py).

The court's call that sends a notice starts its trace; the context is stored with the
notice's row. The agency's receipt and reply, the court's answer to an objection, and the
scanner's actions days later (overdue objection, the lapse or reminder of the seizure the
notice put in place) run in spans that continue that context and link to the call that
caused them, so their timeline entries, outbox rows and the events' consumers land in the
notice's trace. Spans carry the notice, its case, court and agency (the relay's and consumers'
spans too, read from the event's payload by services/contract/span_attributes.py).

The spans are the notice aggregate's (`AssistanceHandlers.notices`, services/plumbing/aggregate.py:
`Aggregates.in_trace`), named `assistance_notice.{operation}` and carrying `notice_attributes`.
"""

from __future__ import annotations

from assistance.notices import AssistanceNotice
from services.contract.span_attributes import AGENCY, CASE_NAME, COURT, NOTICE_KIND, NOTICE_NAME


def notice_attributes(notice: AssistanceNotice) -> dict[str, str]:
    return {
        NOTICE_NAME: notice.name,
        NOTICE_KIND: str(notice.kind),
        CASE_NAME: notice.case_name,
        COURT: notice.court_id,
        AGENCY: notice.agency_id,
    }
