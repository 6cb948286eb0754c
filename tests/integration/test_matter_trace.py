"""One delegated matter, one trace (issue 5): the three services in this process, one in-memory
span exporter, a matter driven through its whole life over gRPC — created, left late so the
deadline scanner marks it overdue, urges and escalates it days later, then acknowledged,
started, returned for supplement, supplemented and completed. Every span about the matter
must be in the matter's trace or link to it, carry the matter, case number and courts, and
the NATS spans must follow the OpenTelemetry messaging conventions."""

from __future__ import annotations

import functools
import urllib.request
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.delegation.v1 import delegation_pb2_grpc
from rogatory.registry.v1 import registry_pb2_grpc

from services.assistance.main import wire as wire_assistance
from services.audit.main import wire as wire_audit
from services.delegation import tracing
from services.delegation.main import DEADLINE_SCANNER
from services.delegation.main import wire as wire_delegation
from services.delegation.projector import wire as wire_projector
from services.delegation.turnaround import CONSUMER as TURNAROUND_CONSUMER
from services.plumbing import telemetry
from services.plumbing.auth import dev_credentials
from services.plumbing.config import Settings
from services.plumbing.host import PeriodicWorker, ServiceHost
from services.plumbing.metrics import serve_prometheus, stop_prometheus
from services.plumbing.nats_server import EmbeddedNatsServer
from services.registry.main import wire as wire_registry
from services.tools.demo import freeze_request, seed_case_request, until_case_replicated
from tests.conftest import Clock, wait_for

EXPORTER = InMemorySpanExporter()
REQUESTING = dev_credentials("court", "gd0112")
ENTRUSTED = dev_credentials("court", "ha0122")
OFFICER = dg.Officer(display_name="李法官", phone="0371-62171234")
RECEIPT = dg.Attachment(kind=dg.Attachment.ASSISTANCE_RECEIPT, name="协助冻结回执.pdf", size_bytes=4096, sha256="ef" * 32)
RULING = dg.Attachment(kind=dg.Attachment.RULING, name="执行裁定书.pdf", size_bytes=2048, sha256="ab" * 32)
MATTER_KEYS = (
    tracing.MATTER_NAME,
    tracing.MATTER_ID,
    tracing.CASE_NAME,
    tracing.CASE_NUMBER,
    tracing.REQUESTING_COURT,
    tracing.ENTRUSTED_COURT,
)


@pytest.fixture(scope="module", autouse=True)
def in_memory_tracing() -> None:
    telemetry.add_span_processor(SimpleSpanProcessor(EXPORTER))


@pytest.fixture
async def hosts(tmp_path: Path, nats_server: EmbeddedNatsServer) -> AsyncIterator[tuple[dict[str, ServiceHost], Clock]]:
    clock = Clock()
    settings = Settings(  # type: ignore[call-arg]
        NATS_URL=nats_server.url,
        ROGATORY_DATA_DIR=tmp_path,
        REGISTRY_ADDR="127.0.0.1:0",
        DELEGATION_ADDR="127.0.0.1:0",
        ASSISTANCE_ADDR="127.0.0.1:0",
        AUDIT_ADDR="127.0.0.1:0",
        TURNAROUND_ADDR="127.0.0.1:0",
        ROGATORY_SHUTDOWN_GRACE=2,
        ROGATORY_SCAN_INTERVAL=3600,  # one pass at start; the test runs the others on its clock
    )
    wires = {
        "registry": wire_registry,
        "delegation": functools.partial(wire_delegation, clock=clock),
        "assistance": wire_assistance,
        "audit": wire_audit,
        "turnaround": wire_projector,
    }
    started: dict[str, ServiceHost] = {}
    try:
        for service, wire in wires.items():
            host = ServiceHost(service, settings)
            started[service] = host
            await host.start(wire)
        yield started, clock
    finally:
        for host in reversed(list(started.values())):
            await host.stop()


async def drive_a_late_matter(hosts: dict[str, ServiceHost], clock: Clock, sequence: int = 424242) -> str:
    """The matter's whole life; returns its name."""
    async with grpc.aio.insecure_channel(hosts["registry"].address) as channel:
        case = await registry_pb2_grpc.RegistryServiceStub(channel).CreateCase(seed_case_request(sequence), metadata=REQUESTING)
    scanner = next(w for w in hosts["delegation"].workers if isinstance(w, PeriodicWorker) and w.name == DEADLINE_SCANNER)
    async with grpc.aio.insecure_channel(hosts["delegation"].address) as channel:
        stub = delegation_pb2_grpc.DelegationServiceStub(channel)
        created = await until_case_replicated(lambda: stub.CreateDelegation(freeze_request(case.name), metadata=REQUESTING))
        name = created.name
        clock.now += timedelta(days=10)  # the acknowledge deadline (7 days) has passed
        assert (await scanner.run_once()).actions
        clock.now += timedelta(days=30)  # long overdue: escalated to the superior court
        assert (await scanner.run_once()).actions
        await stub.AcknowledgeDelegation(dg.AcknowledgeDelegationRequest(name=name, officer=OFFICER), metadata=ENTRUSTED)
        await stub.StartDelegation(dg.StartDelegationRequest(name=name), metadata=ENTRUSTED)
        missing = dg.SupplementRequest(reason=dg.SupplementRequest.MISSING_RULING, missing_items=["执行裁定书"])
        await stub.ReturnDelegationForSupplement(
            dg.ReturnDelegationForSupplementRequest(name=name, supplement_request=missing), metadata=ENTRUSTED
        )
        await stub.SupplementDelegation(dg.SupplementDelegationRequest(name=name, attachments=[RULING]), metadata=REQUESTING)
        completion = dg.Completion(outcome=dg.Completion.EXECUTED, amount_fen=700_000_000, result_documents=[RECEIPT])
        await stub.CompleteDelegation(dg.CompleteDelegationRequest(name=name, completion=completion), metadata=ENTRUSTED)
    return name


def consumed(name: str, verb: str, consumer: str = TURNAROUND_CONSUMER) -> bool:
    """Whether `consumer` has processed the matter's `verb` event."""
    return any(
        s.kind == SpanKind.CONSUMER
        and (s.attributes or {}).get("rogatory.event.type") == f"rogatory.delegation.{verb}.v1"
        and (s.attributes or {}).get("messaging.consumer.group.name") == consumer
        for s in about(list(EXPORTER.get_finished_spans()), name)
    )


def about(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if (s.attributes or {}).get(tracing.MATTER_NAME) == name]


async def test_a_matter_is_one_trace_across_services_and_days(hosts: tuple[dict[str, ServiceHost], Clock]) -> None:
    services, clock = hosts
    EXPORTER.clear()
    name = await drive_a_late_matter(services, clock)

    # Every consumer in every process saw the last step: the turnaround projector and the audit log.
    await wait_for(lambda: consumed(name, "completed") and consumed(name, "completed", "registry-audit"), timeout=20)
    spans = about(list(EXPORTER.get_finished_spans()), name)

    creation = next(s for s in spans if s.kind == SpanKind.SERVER and s.name.endswith("/CreateDelegation"))
    matter_trace = creation.context.trace_id
    in_trace = {s.context.span_id for s in spans if s.context.trace_id == matter_trace}
    for span in spans:  # same trace, or linked to a span of it
        linked = any(link.context.trace_id == matter_trace for link in span.links)
        assert span.context.trace_id == matter_trace or linked, f"{span.name} is outside the matter's trace"
        attributes = span.attributes or {}
        assert all(attributes.get(key) for key in MATTER_KEYS), f"{span.name} lacks {MATTER_KEYS}: {attributes}"
        assert attributes[tracing.CASE_NUMBER] == "（2020）粤0112执424242号"
        assert (attributes[tracing.REQUESTING_COURT], attributes[tracing.ENTRUSTED_COURT]) == ("gd0112", "ha0122")

    names = {s.name for s in spans if s.context.trace_id == matter_trace}
    for operation in ("acknowledge", "start", "return_for_supplement", "supplement", "complete", "scan_deadline"):
        assert f"delegation.{operation}" in names, f"no delegation.{operation} span in the matter's trace"
    methods = ("AcknowledgeDelegation", "StartDelegation", "ReturnDelegationForSupplement", "SupplementDelegation")
    for method in (*methods, "CompleteDelegation"):  # each call's own trace links to the matter's
        server = [s for s in spans if s.kind == SpanKind.SERVER and s.name.endswith(f"/{method}")]
        assert len(server) == 1 and any(link.context.trace_id == matter_trace for link in server[0].links), method

    sends = [s for s in spans if s.kind == SpanKind.PRODUCER]
    processes = [s for s in spans if s.kind == SpanKind.CONSUMER]
    verbs = {s.attributes["messaging.destination.name"].rsplit(".", 1)[1] for s in sends}  # type: ignore[index, union-attr]
    expected = {"submitted", "overdue", "urged", "escalated", "acknowledged", "started", "returned-for-supplement"}
    assert expected | {"supplemented", "completed"} <= verbs
    for span in sends + processes:  # OpenTelemetry messaging conventions
        attributes = span.attributes or {}
        destination = attributes["messaging.destination.name"]
        assert attributes["messaging.system"] == "nats" and attributes["messaging.message.id"]
        operation = "send" if span.kind == SpanKind.PRODUCER else "process"
        assert attributes["messaging.operation.type"] == operation and span.name == f"{operation} {destination}"
        assert span.context.trace_id == matter_trace
    for process in processes:  # each consumer continues the producer span of its message
        assert process.parent is not None and process.parent.span_id in in_trace
    groups = {s.attributes.get("messaging.consumer.group.name") for s in processes}  # type: ignore[union-attr]
    assert groups >= {TURNAROUND_CONSUMER, "registry-audit"}


SOURCE = frozenset({("rogatory_source", "rogatory/delegation")})


def scrape(address: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """What Prometheus would read: every sample by (name, labels)."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(value for (sample, sample_labels), value in samples.items() if sample == name and wanted <= sample_labels)


async def test_turnaround_metrics_are_readable_by_prometheus(hosts: tuple[dict[str, ServiceHost], Clock]) -> None:
    services, clock = hosts
    address = serve_prometheus("127.0.0.1:0")
    try:
        before = scrape(address)
        await drive_a_late_matter(services, clock, sequence=434343)
        completed = "rogatory_delegation_time_to_complete_seconds_count"
        matter = {"matter_kind": "DEPOSITS", "entrusted_court": "ha0122", "requesting_court": "gd0112"}
        await wait_for(lambda: total(scrape(address), completed, **matter) > total(before, completed, **matter), timeout=20)
        after = scrape(address)
    finally:
        stop_prometheus()

    def grew(metric: str, **labels: str) -> float:
        return total(after, metric, **labels) - total(before, metric, **labels)

    assert grew("rogatory_delegation_time_to_acknowledge_seconds_count", **matter) == 1
    assert grew("rogatory_delegation_time_to_acknowledge_seconds_sum", **matter) >= 40 * 86400  # acknowledged 40 days late
    assert grew("rogatory_delegation_time_to_acknowledge_seconds_bucket", le="+Inf", **matter) == 1
    assert grew("rogatory_delegation_time_to_complete_seconds_count", **matter) == 1
    assert grew("rogatory_delegation_overdue_total", step="ACKNOWLEDGE", **matter) == 1
    assert grew("rogatory_delegation_urged_total", automatic="true", **matter) >= 1
    assert grew("rogatory_delegation_escalated_total", **matter) >= 1
    assert grew("rogatory_delegation_returned_for_supplement_total", **matter) == 1
    assert grew("rogatory_outbox_relay_lag_seconds_count", **dict(SOURCE)) >= 9  # every event of the matter
    backlog = [v for (metric, labels), v in after.items() if metric == "rogatory_outbox_backlog" and labels >= SOURCE]
    assert backlog and all(v >= 0 for v in backlog)
