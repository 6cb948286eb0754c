"""The service host in-process: one trace from RPC to consumer, graceful NOT_SERVING on stop, consumers stopped at once."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.js.errors import NotFoundError
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.delegation.v1 import delegation_pb2_grpc
from rogatory.registry.v1 import registry_pb2_grpc

from services.contract.case_replica import CASE_REGISTERED_ALL_COURTS
from services.delegation.main import wire as wire_delegation
from services.delegation.projector import wire as wire_projector
from services.plumbing import telemetry
from services.plumbing.auth import dev_credentials
from services.plumbing.config import Settings
from services.plumbing.db import Database, SoleWriterTaken
from services.plumbing.events import ReceivedEvent
from services.plumbing.host import EXIT_SOLE_WRITER_TAKEN, ServiceHost
from services.plumbing.nats_server import EmbeddedNatsServer
from services.plumbing.unit_of_work import Tx
from services.registry.main import wire as wire_registry
from tests.conftest import drop_schemas, require_postgres, wait_for
from tests.e2e.test_registry_e2e import as_owner, create_request

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def in_memory_tracing() -> None:
    """Installs the SDK once for this process with an in-memory exporter (tests only)."""
    telemetry.add_span_processor(SimpleSpanProcessor(EXPORTER))


def settings(tmp_path: Path, nats_url: str) -> Settings:
    return Settings(NATS_URL=nats_url, ROGATORY_DATA_DIR=tmp_path, REGISTRY_ADDR="127.0.0.1:0", ROGATORY_SHUTDOWN_GRACE=2)  # type: ignore[call-arg]


async def test_one_trace_from_rpc_through_relay_to_consumer(tmp_path: Path, nats_server: EmbeddedNatsServer) -> None:
    host = ServiceHost("registry", settings(tmp_path, nats_server.url))
    await host.start(wire_registry)
    seen: list[str] = []

    def note(_tx: Tx, event: ReceivedEvent) -> None:
        seen.append(event.event_id)

    consumer = host.add_consumer("trace-test-replica", [CASE_REGISTERED_ALL_COURTS], note)
    consumer.start()
    try:
        EXPORTER.clear()
        async with grpc.aio.insecure_channel(host.address, interceptors=telemetry.client_interceptors()) as channel:
            request = create_request(1)
            case = await registry_pb2_grpc.RegistryServiceStub(channel).CreateCase(request, metadata=as_owner(request))
        await wait_for(lambda: consumer.applied == 1)
    finally:
        await host.stop()
    spans = EXPORTER.get_finished_spans()
    client = next(s for s in spans if s.kind == SpanKind.CLIENT and s.name.endswith("/CreateCase"))
    server = next(s for s in spans if s.kind == SpanKind.SERVER and s.name.endswith("/CreateCase"))
    assert server.parent.span_id == client.context.span_id  # the caller's context crossed the wire
    send = next(s for s in spans if s.kind == SpanKind.PRODUCER)
    process = next(
        s
        for s in spans
        if s.kind == SpanKind.CONSUMER and s.attributes.get("messaging.consumer.group.name") == "trace-test-replica"
    )
    trace_id = server.context.trace_id
    assert send.context.trace_id == trace_id and process.context.trace_id == trace_id
    assert process.parent.span_id == send.context.span_id  # consumer continues the producer span
    assert send.attributes["messaging.destination.name"] == "rogatory.v1.case.zj0326.registered"
    assert case.name.endswith("2023-enf-1") and len(seen) == 1


async def test_stop_reports_not_serving_before_closing(tmp_path: Path, nats_server: EmbeddedNatsServer) -> None:
    host = ServiceHost("registry", settings(tmp_path, nats_server.url))
    await host.start(wire_registry)
    statuses: list[int] = []
    async with grpc.aio.insecure_channel(host.address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        first = await watch.read()
        statuses.append(first.status)
        stopping = asyncio.create_task(host.stop())
        try:
            update = await watch.read()
            statuses.append(update.status)
        except grpc.aio.AioRpcError:
            pass
        await stopping
    assert statuses == [health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING]


async def test_sqlite_checkpoints_run_in_the_background(
    tmp_path: Path, nats_server: EmbeddedNatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    passes: list[tuple[int, int, int]] = []
    checkpoint = Database.checkpoint

    async def recorded(db: Database) -> tuple[int, int, int]:
        passes.append(await checkpoint(db))
        return passes[-1]

    monkeypatch.setattr(Database, "checkpoint", recorded)
    fast = settings(tmp_path, nats_server.url).model_copy(update={"sqlite_checkpoint_seconds": 0.05})
    host = ServiceHost("registry", fast)
    await host.start(wire_registry)
    try:
        request = create_request(1)
        async with grpc.aio.insecure_channel(host.address) as channel:
            await registry_pb2_grpc.RegistryServiceStub(channel).CreateCase(request, metadata=as_owner(request))
        written = len(passes)
        # a later pass copies the case's pages into the database file: no commit had to
        await wait_for(lambda: any(wal and done == wal and not busy for busy, wal, done in passes[written:]))
    finally:
        await host.stop()


async def test_i16_p2_a_host_stops_its_consumers_together_without_waiting_out_their_fetches(
    tmp_path: Path, nats_server: EmbeddedNatsServer
) -> None:
    """Each consumer's fetch waits up to 1 s for an event; stopping one after another, each
    waiting its fetch out, took about a second per consumer. Now they are stopped together,
    each cancelling its fetch: the host with five consumers stops well inside one fetch."""
    host = ServiceHost("registry", settings(tmp_path, nats_server.url))
    await host.start(wire_registry)

    def ignore(_tx: Tx, _event: ReceivedEvent) -> None:
        return None

    names = [f"stop-test-{n}" for n in range(5)]
    for name in names:
        host.add_consumer(name, [CASE_REGISTERED_ALL_COURTS], ignore).start()

    async def all_fetching() -> bool:
        try:
            infos = [await host.js.consumer_info(host.settings.stream_name, name) for name in names]
        except NotFoundError:
            return False
        return all(info.num_waiting for info in infos)

    try:
        await wait_for(all_fetching, interval=0.005)
    finally:
        started = asyncio.get_running_loop().time()
        await host.stop()
    stopped_in = asyncio.get_running_loop().time() - started
    assert len(host.consumers) == 5 and stopped_in < 0.5, f"stop() took {stopped_in:.2f}s"


async def test_i18_p3_a_second_service_process_on_one_sqlite_file_is_refused_saying_who_writes_it(
    tmp_path: Path, nats_server: EmbeddedNatsServer
) -> None:
    """SQLite serves one service process per file: a second would publish every outbox row again
    (a relay keeps its progress in memory). It is refused before it touches the file, naming
    the first; once the first stops, the file is free."""
    first = ServiceHost("registry", settings(tmp_path, nats_server.url))
    await first.start(wire_registry)
    try:
        second = ServiceHost("registry", settings(tmp_path, nats_server.url))
        with pytest.raises(SoleWriterTaken) as refused:
            await second.start(wire_registry)
        await second.db.dispose()
        message = str(refused.value)
        assert f"registry.db is already written by the registry service (pid {os.getpid()})" in message
        assert "PostgreSQL" in message
    finally:
        await first.stop()
    again = ServiceHost("registry", settings(tmp_path, nats_server.url))
    await again.start(wire_registry)
    await again.stop()


def test_i18_p3_a_refused_service_process_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    """Also when the first process holds the metrics port too (as `make run`'s fixed ports): the
    claim comes first; the port taken was a traceback, exit 1, and a supervisor restart."""
    held = Database(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}")
    held.claim_sole_writer("a test")
    metrics = socket.socket()
    metrics.bind(("127.0.0.1", 0))
    metrics.listen()
    try:
        env = {
            **os.environ, "ROGATORY_DATA_DIR": str(tmp_path), "NATS_URL": "nats://127.0.0.1:1", "REGISTRY_ADDR": "127.0.0.1:0",
            "REGISTRY_METRICS_ADDR": f"127.0.0.1:{metrics.getsockname()[1]}",
        }  # fmt: skip
        started = subprocess.run(
            [sys.executable, "-m", "services.registry.main"], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        metrics.close()
        asyncio.run(held.dispose())
    assert started.returncode == EXIT_SOLE_WRITER_TAKEN, started.stderr
    assert "registry not started:" in started.stderr and "already written by a test (pid" in started.stderr
    assert "Traceback" not in started.stderr


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_i18_p1_statistics_before_the_projector_has_made_its_database_are_unavailable_then_served(
    backend: str, tmp_path: Path, nats_server: EmbeddedNatsServer
) -> None:
    """The delegation service answers GetTurnaroundStatistics from the turnaround projector's
    database. Before the projector has created it, the answer is UNAVAILABLE saying why (it was
    INTERNAL, "no such table"); once the projector runs, the statistics are served."""
    overrides = {"DELEGATION_ADDR": "127.0.0.1:0", "TURNAROUND_ADDR": "127.0.0.1:0", "ROGATORY_SCAN_INTERVAL": 0}
    if backend == "postgres":
        overrides |= {"DATABASE_URL": await require_postgres(), "ROGATORY_DB_SCHEMA_PREFIX": f"t{abs(hash(tmp_path)) % 10**8}_"}
    config = Settings(
        **{**{"NATS_URL": nats_server.url, "ROGATORY_DATA_DIR": tmp_path, "ROGATORY_SHUTDOWN_GRACE": 2}, **overrides}
    )  # type: ignore[arg-type]
    delegation = ServiceHost("delegation", config)
    await delegation.start(wire_delegation)
    asking = dg.GetTurnaroundStatisticsRequest()
    try:
        async with grpc.aio.insecure_channel(delegation.address) as channel:
            stub = delegation_pb2_grpc.DelegationServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GetTurnaroundStatistics(asking, metadata=dev_credentials("court", "gd0112"))
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
            assert "the turnaround process has not created its database yet" in (refused.value.details() or "")
            projector = ServiceHost("turnaround", config)
            await projector.start(wire_projector)
            try:
                served = await stub.GetTurnaroundStatistics(asking, metadata=dev_credentials("court", "gd0112"))
            finally:
                await projector.stop()
        assert [group.count for group in served.groups] == [0]
    finally:
        await delegation.stop()
        if backend == "postgres":
            await drop_schemas(overrides["DATABASE_URL"], overrides["ROGATORY_DB_SCHEMA_PREFIX"])
