"""The audit log in the registry service: every event of the stream appended to the hash
chain (real nats-server, SQLite and PostgreSQL); `verify` finds an edited or deleted entry."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from rogatory.registry.v1 import registry_pb2_grpc
from sqlalchemy import delete, update

from services.audit.log import AUDIT, AuditAppender, read_anchor, verify_log
from services.plumbing.config import Settings
from services.plumbing.host import ServiceHost
from services.plumbing.nats_server import EmbeddedNatsServer
from services.registry.main import wire as wire_registry
from tests.conftest import drop_schemas, require_postgres, wait_for
from tests.e2e.test_registry_e2e import as_owner, create_request

CASES = 4


@pytest.fixture(params=["sqlite", "postgres"])
async def registry(request: pytest.FixtureRequest, tmp_path: Path, nats_server: EmbeddedNatsServer) -> AsyncIterator[ServiceHost]:
    overrides = {}
    if request.param == "postgres":
        url = await require_postgres()
        prefix = f"t{abs(hash(tmp_path)) % 10**8}_"
        overrides = {"DATABASE_URL": url, "ROGATORY_DB_SCHEMA_PREFIX": prefix}
    settings = Settings(NATS_URL=nats_server.url, ROGATORY_DATA_DIR=tmp_path, REGISTRY_ADDR="127.0.0.1:0", **overrides)  # type: ignore[call-arg]
    host = ServiceHost("registry", settings)
    await host.start(wire_registry)
    try:
        yield host
    finally:
        await host.stop()
        if request.param == "postgres":
            await drop_schemas(overrides["DATABASE_URL"], overrides["ROGATORY_DB_SCHEMA_PREFIX"])


def appender_of(host: ServiceHost) -> AuditAppender:
    return next(c for c in host.consumers if isinstance(c, AuditAppender))


async def register_cases(host: ServiceHost) -> None:
    async with grpc.aio.insecure_channel(host.address) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        for n in range(1, CASES + 1):
            request = create_request(n)
            await stub.CreateCase(request, metadata=as_owner(request))
    appender = appender_of(host)
    await wait_for(lambda: appender.appended == CASES, timeout=15)
    await wait_for_anchor(host, CASES)


async def wait_for_anchor(host: ServiceHost, seq: int) -> None:
    """The head is published just after the batch is acked: poll it, bounded."""
    for _ in range(200):
        anchor = await read_anchor(host.js)
        if anchor and anchor.seq == seq:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the head was not anchored")


async def test_every_event_is_chained_and_the_chain_verifies(registry: ServiceHost) -> None:
    await register_cases(registry)
    count, breaks = await verify_log(registry.db, registry.js)
    assert (count, breaks) == (CASES, [])


async def test_verify_finds_an_edited_entry(registry: ServiceHost) -> None:
    await register_cases(registry)
    async with registry.db.transaction() as conn:
        await conn.execute(update(AUDIT).where(AUDIT.c.seq == 2).values(subject="rogatory.v1.case.gd0112.registered"))
    _, breaks = await verify_log(registry.db, registry.js)
    assert [(b.seq, "edited" in b.problem) for b in breaks] == [(2, True)]


async def test_verify_finds_deleted_entries_in_the_middle_and_at_the_end(registry: ServiceHost) -> None:
    await register_cases(registry)
    async with registry.db.transaction() as conn:
        await conn.execute(delete(AUDIT).where(AUDIT.c.seq == 2))
    _, breaks = await verify_log(registry.db, registry.js)
    assert [b.seq for b in breaks] == [2, 3]
    async with registry.db.transaction() as conn:
        await conn.execute(delete(AUDIT).where(AUDIT.c.seq >= 2))  # now only the tail is gone: the chain alone holds
    _, breaks = await verify_log(registry.db, None)
    assert breaks == []
    _, breaks = await verify_log(registry.db, registry.js)
    assert [(b.seq, "deleted from the end" in b.problem) for b in breaks] == [(CASES, True)]


async def test_a_redelivered_event_is_not_chained_twice(registry: ServiceHost) -> None:
    await register_cases(registry)
    appender = appender_of(registry)
    subscription = await registry.js.subscribe("rogatory.v1.case.>", ordered_consumer=True)
    try:
        first = await subscription.next_msg(timeout=5)
    finally:
        await subscription.unsubscribe()
    await registry.js.publish(first.subject, first.data, headers={**(first.headers or {}), "Nats-Msg-Id": "republished"})
    await registry.js.publish("rogatory.v1.case.zj0326.registered", b"another", headers={"ce-id": "one-more"})
    await wait_for(lambda: appender.appended == CASES + 1, timeout=15)  # the republished copy was recognised
    await wait_for_anchor(registry, CASES + 1)
    assert await verify_log(registry.db, registry.js) == (CASES + 1, [])


async def test_the_cli_reports_a_break_with_exit_status_1(tmp_path: Path, nats_server: EmbeddedNatsServer) -> None:
    settings = Settings(NATS_URL=nats_server.url, ROGATORY_DATA_DIR=tmp_path, REGISTRY_ADDR="127.0.0.1:0")  # type: ignore[call-arg]
    host = ServiceHost("registry", settings)
    await host.start(wire_registry)
    try:
        await register_cases(host)
        async with host.db.transaction() as conn:
            await conn.execute(update(AUDIT).where(AUDIT.c.seq == 3).values(event_type="rogatory.case.closed.v1"))
    finally:
        await host.stop()
    env = {"NATS_URL": nats_server.url, "ROGATORY_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "audit-verify"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    assert "BROKEN at entry 3" in done.stdout and f"{CASES} entries" in done.stdout
