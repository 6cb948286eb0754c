"""The service host: everything a Rogatory service process runs besides its own servicers.

A `grpc.aio` server with the standard health service (NOT_SERVING while shutting down),
server reflection (so `buf curl` can list and call methods), the error and tracing
interceptors, the database, the NATS connection, the outbox relay and the service's
event consumers. SIGTERM / Ctrl-C drain in-flight RPCs, flush the outbox, drain NATS
and exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection, reflection_pb2
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from services.plumbing import pagination
from services.plumbing.auth import Authenticator
from services.plumbing.children import EXIT_SOLE_WRITER_TAKEN
from services.plumbing.config import Settings
from services.plumbing.consumer import BatchHandler, Consumer, ConsumerHooks, Handler, JetStreamSource
from services.plumbing.db import Database, SoleWriterTaken
from services.plumbing.messaging import connect, ensure_stream
from services.plumbing.metrics import configure_metrics, serve_prometheus, shutdown_metrics
from services.plumbing.migrations import upgrade_to_head
from services.plumbing.outbox import Outbox
from services.plumbing.relay import OutboxRelay
from services.plumbing.request_expiry import EXPIRY_INTERVAL, EXPIRY_WORKER, expire_request_ids
from services.plumbing.rpc import register, register_open
from services.plumbing.telemetry import configure_telemetry, shutdown_telemetry
from services.plumbing.tls import server_credentials
from services.plumbing.unit_of_work import Reader, Writer

log = logging.getLogger(__name__)

Wiring = Callable[["ServiceHost"], Awaitable[None]]
HEALTH = descriptor_pool.Default().FindServiceByName(health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
REFLECTION = descriptor_pool.Default().FindServiceByName(reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"].full_name)


class Worker(Protocol):
    """A background loop the host starts after wiring and stops before draining NATS."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


class PeriodicWorker:
    """Runs `run_once` now and then every `interval` seconds until stopped: the deadline and
    term scanners. A failed pass (e.g. the database away) is logged and tried again next time."""

    def __init__(self, name: str, interval: float, run_once: Callable[[], Awaitable[object]]):
        self.name = name
        self.interval = interval
        self.run_once = run_once
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stopping.set()
        if self._task:
            await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception:  # noqa: BLE001 - retried on the next pass
                log.exception("%s: pass failed", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)


@dataclass
class ServiceHost:
    service: str
    settings: Settings
    db: Database = field(init=False)
    nc: NATS = field(init=False)
    js: JetStreamContext = field(init=False)
    outbox: Outbox = field(init=False)
    #: The write door and the read door of the service (services/plumbing/unit_of_work.py).
    writer: Writer = field(init=False)
    reader: Reader = field(init=False)
    relay: OutboxRelay = field(init=False)
    server: grpc.aio.Server = field(init=False)
    authenticator: Authenticator = field(init=False)
    health: HealthServicer = field(init=False)
    port: int = field(init=False, default=0)
    metrics_address: str = field(init=False, default="")  # host:port of /metrics, when served
    consumers: list[Consumer] = field(default_factory=list)  # stopped together, before NATS drains
    workers: list[Worker] = field(default_factory=list)  # background loops, e.g. the deadline scanner
    service_names: list[str] = field(default_factory=list)
    _read_only: list[Database] = field(default_factory=list)  # other processes' databases (reader_of)
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: bool = False
    _serving: bool = False
    _health_task: asyncio.Task[None] | None = None

    @property
    def source(self) -> str:
        return f"rogatory/{self.service}"

    async def start(self, wire: Wiring) -> None:
        configure_telemetry(self.service)
        configure_metrics(self.service)
        pagination.configure(self.settings.page_token_secret())
        self.db = Database(
            self.settings.database_url_for(self.service),
            schema=self.settings.schema_for(self.service),
            connect_timeout=self.settings.db_connect_timeout,
            statement_timeout=self.settings.db_statement_timeout,
        )
        # Before binding anything: a second process on the file is told so, not that a port is taken.
        self.db.claim_sole_writer(f"the {self.service} service")
        if metrics_address := self.settings.metrics_address_of(self.service):
            self.metrics_address = serve_prometheus(metrics_address)
            log.info("%s metrics on http://%s/metrics", self.service, self.metrics_address)
        await self.db.create_schema()
        if self.settings.migrate_on_start:
            await upgrade_to_head(self.db, self.service)
        self.nc = await connect(self.settings.nats_url, name=self.source)
        self.js = self.nc.jetstream()
        await ensure_stream(self.js, self.settings.stream_name, self.settings.stream_replicas)
        self.outbox = Outbox()
        self.writer = Writer(self.db, self.outbox, name=f"{self.service}-writes")
        self.reader = Reader(self.db)
        self.relay = OutboxRelay(self.db, self.js, self.outbox, source=self.source, connected=lambda: self.nc.is_connected)
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", self.settings.max_message_bytes),
                # A port another server holds is an error, not shared: gRPC's default SO_REUSEPORT
                # let a second server (another stack on the machine) bind it and take half the calls.
                ("grpc.so_reuseport", 0),
            ]
        )
        self.authenticator = self._authenticator()
        warn_about_credentials(self.service, self.settings)
        self.health = HealthServicer()
        register_open(self.server, self.health, HEALTH)
        if self.db.is_sqlite and self.settings.sqlite_checkpoint_seconds > 0:
            self.add_periodic("sqlite-checkpoint", self.settings.sqlite_checkpoint_seconds, self.db.checkpoint)
        retention = timedelta(seconds=self.settings.request_id_retention)
        self.add_periodic(EXPIRY_WORKER, EXPIRY_INTERVAL, functools.partial(expire_request_ids, self.writer, retention))
        await wire(self)
        reflected = [*self.service_names, reflection.SERVICE_NAME, "grpc.health.v1.Health"]
        register_open(self.server, reflection.aio.ReflectionServicer(reflected), REFLECTION)
        self.port = self._listen()
        self.relay.start()
        for consumer in self.consumers:
            consumer.start()
        for worker in self.workers:
            worker.start()
        await self.server.start()
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        self._serving = True
        self._health_task = asyncio.create_task(self._watch_database(), name=f"{self.service}-health")
        log.info("%s listening on %s", self.service, self.address)

    @functools.cached_property
    def agencies(self) -> AgencyCatalog:
        """The agency table: the shipped one, or the CSV file ROGATORY_AGENCIES_FILE names
        (same columns; e.g. the benchmark's 1,000 banks), used by property queries."""
        path = self.settings.agencies_file
        return AgencyCatalog.from_csv(Path(path).read_text(encoding="utf-8")) if path else AgencyCatalog.default()

    def _authenticator(self) -> Authenticator:
        """Callers may be any court of the court table and any agency of the agency tables this
        process serves; every service knows the same ones, whichever of them it loads itself."""
        agencies = frozenset(a.id for a in AgencyCatalog.default()) | frozenset(a.id for a in self.agencies)
        return Authenticator(CourtCatalog.default(), agencies, dev_tokens=self.settings.accepts_dev_tokens)

    def _listen(self) -> int:
        address, settings = self.settings.address_of(self.service), self.settings
        if not settings.tls_cert_file:
            return self.server.add_insecure_port(address)
        credentials = server_credentials(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)
        return self.server.add_secure_port(address, credentials)

    @property
    def address(self) -> str:
        host = self.settings.address_of(self.service).rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    def add_servicer(self, service: ServiceDescriptor, servicer: object) -> None:
        """Serves `service` from `servicer` with tracing, authentication, request parsing and
        error mapping on every method (services/plumbing/rpc.py)."""
        register(self.server, servicer, service, self.authenticator)
        self.service_names.append(service.full_name)

    def reader_of(self, owner: str) -> Reader:
        """The read door to the database of `owner`, another process of the stack that alone
        writes it: the delegation service answers statistics from the turnaround projector's
        (issue 18). Never written from here; closed when the host stops."""
        db = Database(
            self.settings.database_url_for(owner),
            schema=self.settings.schema_for(owner),
            connect_timeout=self.settings.db_connect_timeout,
            statement_timeout=self.settings.db_statement_timeout,
            written_by=owner,
        )
        self._read_only.append(db)
        return Reader(db)

    def add_periodic(self, name: str, interval: float, run_once: Callable[[], Awaitable[object]]) -> PeriodicWorker:
        worker = PeriodicWorker(name, interval, run_once)
        self.workers.append(worker)
        return worker

    def add_consumer(
        self,
        durable: str,
        filter_subjects: list[str],
        handler: Handler | None = None,
        *,
        batch_handler: BatchHandler | None = None,
        hooks: ConsumerHooks | None = None,
        linger: float = 0.0,
    ) -> Consumer:
        """A durable consumer of the stream: `handler` applies one event per unit of the write
        door (replicas), `batch_handler` each fetched batch as one (projections); `hooks` hear
        of what it does, e.g. `OnApplied` of the events applied, after the commit."""
        source = JetStreamSource(self.js, stream=self.settings.stream_name, durable=durable, filter_subjects=filter_subjects)
        consumer = Consumer(
            source,
            writer=self.writer,
            handler=handler,
            batch_handler=batch_handler,
            hooks=hooks,
            max_deliveries=self.settings.max_deliveries,
            linger=linger,
        )
        self.consumers.append(consumer)
        return consumer

    async def _watch_database(self) -> None:
        """NOT_SERVING while the database cannot take calls, NATS cannot be reached (the consumers
        receive nothing), or a consumer is waiting out an outage; SERVING again once they can and
        the consumers have applied an event: load balancers and orchestrators route around the
        replica, and nothing needs a restart. Checked every `health_interval`, and at once when a
        call fails on the database (disk full, locked, unreachable, timed out: Database.check)."""
        interval = self.settings.health_interval
        while not self._stopping:
            healthy = await self.db.check(timeout=max(interval, 1.0))
            held = [f"{c.name} ({c.unavailable})" for c in self.consumers if c.unavailable]
            events_flow = self.nc.is_connected or not self.consumers  # a consumer gets nothing while NATS is away
            serving = healthy and events_flow and not held
            if serving != self._serving and not self._stopping:
                why = (
                    "database failing" if not healthy
                    else "NATS unreachable" if not events_flow
                    else "consumers waiting out an outage: " + "; ".join(held)
                )  # fmt: skip
                log.warning("%s: %s", self.service, "SERVING again" if serving else f"NOT_SERVING, {why}")
                status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
                await self._set_health(status)
                self._serving = serving
            await self.db.wait_for_fault(interval)

    async def _set_health(self, status: int) -> None:  # a HealthCheckResponse.ServingStatus
        for name in ["", *self.service_names]:
            await self.health.set(name, status)

    async def stop(self) -> None:
        """Graceful: stop taking RPCs, finish in-flight ones, flush events, drain NATS."""
        self._stopping = True
        if self._health_task:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(self.settings.shutdown_grace)
        for worker in self.workers:
            await worker.stop()
        # Together: each cancels its fetch in flight and finishes the batch in hand.
        await asyncio.gather(*(consumer.stop() for consumer in self.consumers))
        await self.writer.close()
        await self.relay.stop(flush=True)
        try:
            await asyncio.wait_for(self.nc.drain(), timeout=5)
        except Exception as exc:  # noqa: BLE001 - the process is leaving anyway
            log.warning("NATS drain: %s", exc)
        await self.db.dispose()
        for db in self._read_only:
            await db.dispose()
        self._stopped.set()

    async def run_until_signalled(self, stop: asyncio.Event) -> None:
        await stop.wait()
        log.info("%s shutting down", self.service)
        await self.stop()


def stop_on_signals() -> asyncio.Event:
    """Set by SIGTERM or Ctrl-C; installed first thing, so a launcher that stops the stack
    while a service is still starting gets a clean exit, not the default action's kill."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def start_unless_stopped(host: ServiceHost, wire: Wiring, stop: asyncio.Event) -> bool:
    """Starts the host; False, with the start cancelled, when `stop` is set first (e.g. while
    it waits for a database or NATS that does not answer)."""
    starting = asyncio.ensure_future(host.start(wire))
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if starting.done():
        starting.result()  # a failed start raises here
        return True
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    log.info("%s stopped while starting", host.service)
    return False


def warn_about_credentials(service: str, settings: Settings) -> None:
    """Says loudly at start-up when the service's credentials are not what production needs."""
    if settings.tls_cert_file and settings.accepts_dev_tokens:
        log.warning(
            "%s\n%s: INSECURE: ROGATORY_DEV_TOKENS=true under TLS. This service accepts development tokens "
            "(authorization: Bearer dev:admin:…), which anyone can forge: any caller may act as any court, agency "
            "or admin. For tests only; production callers present client certificates (ROGATORY_TLS_CLIENT_CA_FILE).\n%s",
            "!" * 100, service, "!" * 100,
        )  # fmt: skip
    elif settings.tls_cert_file and not settings.tls_client_ca_file:
        log.warning(
            "%s: TLS without ROGATORY_TLS_CLIENT_CA_FILE and development tokens off: no caller can authenticate "
            "(every call but health checks answers UNAUTHENTICATED). Set the client CA to identify callers.",
            service,
        )


def settle_garbage_collector() -> None:
    """Moves what start-up allocated (modules, descriptors, SQLAlchemy's compiled caches)
    out of the collector's reach, so a full collection scans only what requests create:
    full collections over the whole heap were tens of milliseconds stalls in the middle of
    a request (bench/README.md). The usual server recipe: collect, then freeze."""
    gc.collect()
    gc.freeze()


def ready_line(service: str, host: ServiceHost) -> str:
    """`READY {service} {host:port}`, then ` metrics={host:port}` when it serves /metrics: the
    addresses bound, so a launcher can give port 0 (a free one, chosen when binding) and learn it."""
    metrics = f" metrics={host.metrics_address}" if host.metrics_address else ""
    return f"READY {service} {host.address}{metrics}"


def run_service(service: str, wire: Wiring) -> None:
    """Entry point of a service process."""
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        stop = stop_on_signals()
        host = ServiceHost(service, settings)
        try:
            if not await start_unless_stopped(host, wire, stop):
                return
            settle_garbage_collector()
            print(ready_line(service, host), flush=True)  # the launcher and tests wait for this line
            await host.run_until_signalled(stop)
        finally:  # the providers are the process's, not the host's: flush them as the process ends
            shutdown_telemetry()
            shutdown_metrics()

    try:
        import uvloop  # noqa: PLC0415

        run: Callable[[Coroutine[Any, Any, None]], None] = uvloop.run
    except ImportError:
        run = asyncio.run
    try:
        run(main())
    except SoleWriterTaken as taken:  # a mistake of whoever started it: said in one line, no traceback
        log.error("%s not started: %s", service, taken)
        raise SystemExit(EXIT_SOLE_WRITER_TAKEN) from None
