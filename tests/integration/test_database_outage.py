"""PostgreSQL unreachable for a while (issue 6): the registry answers UNAVAILABLE at once, its
health service says NOT_SERVING, and when the database is back everything recovers by
itself — no restart, nothing lost, nothing written twice.

The outage is a real one for the service: it reaches PostgreSQL through a TCP proxy the test
cuts (refusing new connections and dropping open ones) and restores.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rogatory.registry.v1 import registry_pb2 as pb
from rogatory.registry.v1 import registry_pb2_grpc
from sqlalchemy.engine import make_url

from services.plumbing.config import Settings
from services.plumbing.host import ServiceHost
from services.plumbing.nats_server import EmbeddedNatsServer, free_port
from services.plumbing.subscriber import read_events
from services.registry.main import wire as wire_registry
from tests.conftest import drop_schemas, require_postgres
from tests.e2e.test_registry_e2e import as_owner, create_request

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


class TcpProxy:
    """127.0.0.1:port → PostgreSQL; `cut()` is the database going away, `restore()` its return."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._forward, "127.0.0.1", self.port, reuse_address=True)

    async def _forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        self.writers |= {client_writer, upstream_writer}
        await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            self.writers.discard(writer)

    async def cut(self) -> None:
        assert self.server
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        await self.server.wait_closed()
        self.writers.clear()

    async def restore(self) -> None:
        await self.start()


@pytest.fixture
async def proxied_registry(tmp_path: Path, nats_server: EmbeddedNatsServer) -> AsyncIterator[tuple[ServiceHost, TcpProxy]]:
    url = make_url(await require_postgres())
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    prefix = f"outage{free_port()}_"
    settings = Settings(  # type: ignore[call-arg]
        NATS_URL=nats_server.url,
        DATABASE_URL=url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        ROGATORY_DB_SCHEMA_PREFIX=prefix,
        ROGATORY_DATA_DIR=tmp_path,
        REGISTRY_ADDR="127.0.0.1:0",
        ROGATORY_HEALTH_INTERVAL=0.2,
        ROGATORY_DB_CONNECT_TIMEOUT=1.0,
        ROGATORY_SHUTDOWN_GRACE=2,
    )
    host = ServiceHost("registry", settings)
    await host.start(wire_registry)
    try:
        yield host, proxy
    finally:
        with contextlib.suppress(Exception):
            await proxy.restore()  # so the host can flush and the schemas can be dropped
        await host.stop()
        if proxy.server:
            proxy.server.close()
        await drop_schemas(str(url), prefix)


async def health_becomes(stub: health_pb2_grpc.HealthStub, status: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (await stub.Check(health_pb2.HealthCheckRequest())).status != status:
        assert time.monotonic() < deadline, f"health did not become {health_pb2.HealthCheckResponse.ServingStatus.Name(status)}"
        await asyncio.sleep(0.05)


async def unavailable_within(seconds: float, call: Callable[[], Awaitable[object]]) -> None:
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value.details()
    assert time.monotonic() - started < seconds, "did not fail fast"


async def test_outage_fails_fast_reports_not_serving_and_recovers(
    proxied_registry: tuple[ServiceHost, TcpProxy], nats_server: EmbeddedNatsServer
) -> None:
    host, proxy = proxied_registry
    async with grpc.aio.insecure_channel(host.address) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        court = as_owner(create_request(1))
        before = await registry.CreateCase(create_request(1), metadata=court)

        await proxy.cut()
        during = create_request(2)
        await unavailable_within(5.0, lambda: registry.CreateCase(during, metadata=court))
        await unavailable_within(5.0, lambda: registry.GetCase(pb.GetCaseRequest(name=before.name), metadata=court))
        await health_becomes(health, NOT_SERVING)
        assert (
            await registry.GetCourt(pb.GetCourtRequest(name="courts/zj0326"), metadata=court)
        ).name  # reference data still answers

        await proxy.restore()
        await health_becomes(health, SERVING)
        assert (await registry.GetCase(pb.GetCaseRequest(name=before.name), metadata=court)).case_number == before.case_number
        retried = await registry.CreateCase(during, metadata=court)  # the client's retry, same request_id: written once now
        after = await registry.CreateCase(create_request(3), metadata=court)

    nc = host.nc
    events = await read_events(nc.jetstream(), host.settings.stream_name, "rogatory.v1.case.>", until_count=3, timeout=10)
    registered = [e.headers.get("ce-id") for e in events]
    assert len(registered) == len(set(registered)) == 3  # each case once, none lost
    assert len({before.name, retried.name, after.name}) == 3
