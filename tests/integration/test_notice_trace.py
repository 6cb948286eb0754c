# ruff: noqa: F401, F811 - fixtures imported from test_notice_lifecycle_store are used as parameters
"""One notice, one trace: the agency's reply (a call in another trace) and the scanner's
overdue mark days later run in spans of the trace the court's sending call started; their
timeline entries carry that trace id and the spans carry the notice, case, court and agency."""

from __future__ import annotations

from datetime import timedelta

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assistance import notice_lifecycle as lc
from services.assistance.handlers import AssistanceHandlers
from services.assistance.notice_scanner import NoticeScanner
from services.assistance.notice_tracing import AGENCY, NOTICE_NAME
from services.plumbing import telemetry
from tests.conftest import Clock
from tests.integration.test_notice_lifecycle_store import BANK, COURT, clock, command, handlers

_tracer = telemetry.tracer(__name__)  # the test's own spans stand for the callers' RPCs

EXPORTER = InMemorySpanExporter()
_installed: list[bool] = []


def export_spans() -> None:
    if not _installed:
        telemetry.add_span_processor(SimpleSpanProcessor(EXPORTER))
        _installed.append(True)
    EXPORTER.clear()  # spans of the other backend's run


async def test_later_steps_join_the_trace_of_the_sending_call(handlers: AssistanceHandlers, clock: Clock) -> None:
    export_spans()
    with _tracer.start_as_current_span("court call") as court_call:
        name = (await handlers.create_notice(command(), "gd0112")).notice.name
    notice_trace = format(court_call.get_span_context().trace_id, "032x")
    with _tracer.start_as_current_span("bank call") as bank_call:
        objected = await handlers.object_to(name, BANK, lc.ObjectToNotice("EXEMPT_PROPERTY", "社保专户"))
    assert bank_call.get_span_context().trace_id != court_call.get_span_context().trace_id
    assert objected.notice.objection is not None
    clock.now = objected.notice.objection.answer_due + timedelta(days=1)
    assert (await NoticeScanner(handlers).scan_once())["objection-overdue"] == 1

    _, timeline = await handlers.get_timeline(name, COURT)
    assert [(r["action"], r["trace_id"]) for r in timeline] == [
        ("SEND", notice_trace),
        ("OBJECT", notice_trace),
        ("OBJECTION_OVERDUE", notice_trace),
    ]
    spans = [s for s in EXPORTER.get_finished_spans() if s.name.startswith("assistance_notice.")]
    assert {s.name for s in spans} >= {"assistance_notice.object", "assistance_notice.objection_overdue"}
    for span in spans:
        assert format(span.context.trace_id, "032x") == notice_trace
        assert span.attributes is not None and span.attributes[NOTICE_NAME] == name and span.attributes[AGENCY] == "bank-icbc"
    objecting = next(s for s in spans if s.name == "assistance_notice.object")
    assert [link.context.span_id for link in objecting.links] == [bank_call.get_span_context().span_id]
