"""A full disk, a locked or a hung database answers quickly and honestly (issue 15, point 7).

Real services over real gRPC: the registry with its SQLite data directory on a small tmpfs that
the test fills up; the registry with its SQLite file write-locked by another connection; the
delegation service reaching PostgreSQL through a TCP proxy that stops forwarding (connections
still accepted, nothing answered). Each time the caller gets a status with `ErrorInfo` well
before its own deadline (RESOURCE_EXHAUSTED DISK_FULL, UNAVAILABLE, DEADLINE_EXCEEDED), health
is NOT_SERVING until the database recovers, and the failed calls wrote nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import sqlite3
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from rogatory.delegation.v1 import delegation_pb2_grpc
from rogatory.registry.v1 import registry_pb2_grpc
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from services.delegation.main import wire as wire_delegation
from services.plumbing import deadlines
from services.plumbing.auth import dev_credentials
from services.plumbing.config import Settings
from services.plumbing.db import Database, DatabaseTimeout, database_fault
from services.plumbing.host import ServiceHost, Wiring
from services.plumbing.nats_server import EmbeddedNatsServer, free_port
from services.registry.main import wire as wire_registry
from services.tools.demo import freeze_request, seed_case_request
from tests.conftest import BACKENDS, WAIT_SECONDS, drop_schemas, require_postgres, wait_for
from tests.e2e.test_registry_e2e import as_owner, create_request

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
COURT = as_owner(create_request(1))
REQUESTING = dev_credentials("court", "gd0112")
T = TypeVar("T")


@contextlib.asynccontextmanager
async def running(service: str, wire: Wiring, **settings: Any) -> AsyncIterator[ServiceHost]:
    host = ServiceHost(service, Settings(**settings, ROGATORY_HEALTH_INTERVAL=0.2, ROGATORY_SHUTDOWN_GRACE=2))
    await host.start(wire)
    try:
        yield host
    finally:
        await host.stop()


async def failure(call: Callable[[], Awaitable[object]]) -> tuple[grpc.StatusCode, str, float]:
    """The call's status code, the ErrorInfo reason the server sent ("" if none: e.g. the
    client's own deadline), and the seconds it took."""
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call()
    took = time.monotonic() - started
    status = rpc_status.from_call(caught.value)
    info = error_details_pb2.ErrorInfo()
    if status is not None:
        assert any(d.Unpack(info) for d in status.details if d.Is(info.DESCRIPTOR)), status
    return caught.value.code(), info.reason, took


async def health_becomes(channel: grpc.aio.Channel, status: int) -> None:
    stub = health_pb2_grpc.HealthStub(channel)

    async def reached() -> bool:
        return (await stub.Check(health_pb2.HealthCheckRequest())).status == status

    await wait_for(reached, timeout=15)


def count(database: Path, sql: str, *args: object) -> int:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return int(conn.execute(sql, args).fetchone()[0])


# --- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of its own, so the test can fill it without filling the machine's disk."""
    folder = tmp_path / "data"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here (needs root or CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(path: Path) -> None:
    with path.open("wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


async def test_i15_p7_full_disk_answers_resource_exhausted_and_not_serving_until_space_is_freed(
    small_filesystem: Path, nats_server: EmbeddedNatsServer
) -> None:
    database = small_filesystem / "registry.db"
    async with (
        running("registry", wire_registry, NATS_URL=nats_server.url, ROGATORY_DATA_DIR=small_filesystem, REGISTRY_ADDR="127.0.0.1:0") as host,
        grpc.aio.insecure_channel(host.address) as channel,
    ):  # fmt: skip
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        await registry.CreateCase(create_request(1), metadata=COURT)
        filler = small_filesystem / "filler"
        await asyncio.to_thread(fill, filler)

        # What room the database's files had left is used up within a few cases; then every
        # write is refused at once, as RESOURCE_EXHAUSTED DISK_FULL — never INTERNAL.
        written = 1
        while True:
            refused = create_request(written + 1)
            try:
                await registry.CreateCase(refused, metadata=COURT, timeout=10)
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
                break
            written += 1
            assert written < 2000, "the disk never filled up"
        code, reason, took = await failure(lambda: registry.CreateCase(refused, metadata=COURT, timeout=10))
        assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "DISK_FULL")
        assert took < 2.0
        await health_becomes(channel, NOT_SERVING)

        filler.unlink()
        await health_becomes(channel, SERVING)
        # Nothing of the refused case was written: no case row, no parties, no event.
        assert count(database, "SELECT count(*) FROM enforcement_case WHERE case_number = ?", refused.case.case_number) == 0
        assert count(database, "SELECT count(*) FROM enforcement_case") == written
        assert count(database, "SELECT count(*) FROM case_party") == 2 * written
        assert count(database, "SELECT count(*) FROM outbox WHERE event_type = 'rogatory.case.registered.v1'") == written
        again = await registry.CreateCase(refused, metadata=COURT, timeout=10)  # the client's retry, same request_id
        assert again.case_number == refused.case.case_number
        assert count(database, "SELECT count(*) FROM enforcement_case WHERE case_number = ?", refused.case.case_number) == 1


# --- a locked database --------------------------------------------------------------------------


class WriteLock:
    """Another process's writer on the service's SQLite file (BEGIN IMMEDIATE), held until released."""

    def __init__(self, database: Path):
        self.conn = sqlite3.connect(database, isolation_level=None, timeout=30, check_same_thread=False)

    async def take(self) -> None:
        await asyncio.to_thread(self.conn.execute, "BEGIN IMMEDIATE")

    async def release(self) -> None:
        await asyncio.to_thread(self.conn.execute, "ROLLBACK")


async def test_i15_p7_locked_sqlite_answers_before_the_deadline_and_writes_nothing(
    tmp_path: Path, nats_server: EmbeddedNatsServer
) -> None:
    data = tmp_path / "data"
    async with (
        running(
            "registry", wire_registry, NATS_URL=nats_server.url, ROGATORY_DATA_DIR=data, REGISTRY_ADDR="127.0.0.1:0",
            ROGATORY_DB_STATEMENT_TIMEOUT=3,
        ) as host,
        grpc.aio.insecure_channel(host.address) as channel,
    ):  # fmt: skip
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        await registry.CreateCase(create_request(1), metadata=COURT)
        database = data / "registry.db"
        lock = WriteLock(database)
        try:
            # The call's deadline comes first: the server answers DEADLINE_EXCEEDED itself (with
            # its ErrorInfo, so before the client gave up), and the write that was waiting for the
            # database is dropped, not done later when the lock goes.
            await lock.take()
            late = create_request(2)
            code, reason, _ = await failure(lambda: registry.CreateCase(late, metadata=COURT, timeout=2))
            assert (code, reason) == (grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED")
            await lock.release()  # the writer now runs the batch the cut-off call was in
            await registry.CreateCase(create_request(3), metadata=COURT)  # committed after that batch
            assert count(database, "SELECT count(*) FROM enforcement_case WHERE case_number = ?", late.case.case_number) == 0

            # Locked longer than the statement timeout (3 s): every waiting call, however long its
            # own deadline, gets UNAVAILABLE, and health says NOT_SERVING until the lock goes.
            await lock.take()
            stuck = [create_request(4), create_request(5)]
            outcomes = await asyncio.gather(
                *(failure(lambda r=r: registry.CreateCase(r, metadata=COURT, timeout=15)) for r in stuck)  # type: ignore[misc]
            )
            for code, reason, took in outcomes:
                assert code == grpc.StatusCode.UNAVAILABLE and reason in {"DATABASE_TIMEOUT", "DATABASE_UNAVAILABLE"}
                assert took < 10
            await health_becomes(channel, NOT_SERVING)
            await lock.release()
            await health_becomes(channel, SERVING)
            for request in [late, *stuck]:
                assert (
                    count(database, "SELECT count(*) FROM enforcement_case WHERE case_number = ?", request.case.case_number) == 0
                )
                await registry.CreateCase(request, metadata=COURT)  # the client's retry
                assert (
                    count(database, "SELECT count(*) FROM enforcement_case WHERE case_number = ?", request.case.case_number) == 1
                )
        finally:
            lock.conn.close()


# --- a hung PostgreSQL --------------------------------------------------------------------------


class StallingProxy:
    """127.0.0.1:port → PostgreSQL. `stall()`: connections are still accepted, but nothing is
    forwarded either way (a database host that hangs); `resume()` forwards what waited."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._forward, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    def stall(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    async def stop(self) -> None:
        if self.server:
            self.server.close()

    async def _forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        await self.flowing.wait()
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


async def retried(call: Callable[[], Awaitable[T]]) -> T:
    """`call`, retried as a court system would while the service says "retry": the case not
    replicated yet, or a database call that outlasted the 1 s statement timeout on a loaded
    machine (the stalled call itself is asserted without this)."""
    give_up = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            retry = error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.FAILED_PRECONDITION)
            if not retry or time.monotonic() > give_up:
                raise
        await asyncio.sleep(0.1)


async def delegation_counts(url: str, schema: str) -> tuple[int, int, int]:
    """Matters, timeline entries and outbox rows, read past the proxy."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            tables = ("delegation", "delegation_transition", "outbox")
            counted = [await conn.scalar(text(f'SELECT count(*) FROM "{schema}".{table}')) for table in tables]
        return counted[0], counted[1], counted[2]
    finally:
        await engine.dispose()


async def test_i15_p7_hung_postgres_answers_well_before_the_deadline_and_writes_nothing(
    tmp_path: Path, nats_server: EmbeddedNatsServer
) -> None:
    url = await require_postgres()
    target = make_url(url)
    proxy = StallingProxy(target.host or "127.0.0.1", target.port or 5432)
    await proxy.start()
    prefix = f"hung{free_port()}_"
    common = {"NATS_URL": nats_server.url, "ROGATORY_DATA_DIR": tmp_path, "ROGATORY_SCAN_INTERVAL": 0}
    proxied = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        async with (
            running("registry", wire_registry, REGISTRY_ADDR="127.0.0.1:0", **common) as registry_host,
            running(
                "delegation", wire_delegation, DELEGATION_ADDR="127.0.0.1:0", DATABASE_URL=proxied,
                ROGATORY_DB_SCHEMA_PREFIX=prefix, ROGATORY_DB_STATEMENT_TIMEOUT=1, ROGATORY_DB_CONNECT_TIMEOUT=1, **common,
            ) as delegation_host,
            grpc.aio.insecure_channel(registry_host.address) as registry_channel,
            grpc.aio.insecure_channel(delegation_host.address) as channel,
        ):  # fmt: skip
            case = await registry_pb2_grpc.RegistryServiceStub(registry_channel).CreateCase(
                seed_case_request(770_001), metadata=REQUESTING
            )
            stub = delegation_pb2_grpc.DelegationServiceStub(channel)
            warm_up = freeze_request(case.name)
            await retried(lambda: stub.CreateDelegation(warm_up, metadata=REQUESTING))
            before = await delegation_counts(url, f"{prefix}delegation")

            proxy.stall()
            hung = freeze_request(case.name)
            code, reason, took = await failure(lambda: stub.CreateDelegation(hung, metadata=REQUESTING, timeout=3))
            assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "DATABASE_TIMEOUT")
            assert took < 2.0, f"answered after {took:.2f} s of a 3 s deadline"
            await health_becomes(channel, NOT_SERVING)

            proxy.resume()
            await health_becomes(channel, SERVING)
            assert await delegation_counts(url, f"{prefix}delegation") == before, "the hung call wrote something"
            created = await retried(lambda: stub.CreateDelegation(hung, metadata=REQUESTING, timeout=10))  # the client's retry
            again = await retried(lambda: stub.CreateDelegation(hung, metadata=REQUESTING, timeout=10))
            assert created.name == again.name
            matters, _, _ = await delegation_counts(url, f"{prefix}delegation")
            assert matters == before[0] + 1
    finally:
        proxy.resume()
        await proxy.stop()
        await drop_schemas(url, prefix)


async def test_i15_p7_postgres_sessions_carry_server_side_timeouts() -> None:
    """The statement timeout is PostgreSQL's too: a statement or lock wait is stopped by the server
    (even for a client that has gone), as DATABASE_TIMEOUT."""
    url = await require_postgres()
    db = Database(url, statement_timeout=0.5)
    try:
        async with db.read() as conn:
            for setting in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"):
                assert await conn.scalar(text(f"SHOW {setting}")) == "500ms"
        with pytest.raises(DBAPIError) as caught:
            async with db.engine.connect() as conn:  # no client-side cut-off here: the server's timeout
                await conn.execute(text("SELECT pg_sleep(5)"))
        assert isinstance(database_fault(caught.value), DatabaseTimeout)
    finally:
        await db.dispose()


# --- the cut-off itself, on both databases -----------------------------------------------------


@pytest.fixture(params=BACKENDS)
async def scratch_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A Database with a 1 s statement timeout and one table, `scratch(n)`."""
    if request.param == "postgres":
        url = await require_postgres()
        db = Database(url, schema=f"p7{uuid.uuid4().hex[:10]}_scratch", statement_timeout=1)
    else:
        url, db = "", Database(f"sqlite+aiosqlite:///{tmp_path}/scratch.db", statement_timeout=1)
    await db.create_schema()
    async with db.transaction() as conn:
        await conn.execute(text("CREATE TABLE scratch (n INTEGER)"))
    try:
        yield db
    finally:
        deadlines.unbind()
        await db.dispose()
        if url:
            await drop_schemas(url, str(db.schema))


@contextlib.asynccontextmanager
async def writes_blocked(db: Database) -> AsyncIterator[None]:
    """Another session holds what a write to `scratch` needs: SQLite's write lock, or an ACCESS
    EXCLUSIVE lock on the table in PostgreSQL."""
    if db.is_sqlite:
        lock = WriteLock(Path(str(db.url.database)))
        await lock.take()
        try:
            yield
        finally:
            await lock.release()
            lock.conn.close()
        return
    engine = create_async_engine(db.url)
    try:
        async with engine.connect() as conn, conn.begin():
            await conn.execute(text(f'LOCK TABLE "{db.schema}".scratch IN ACCESS EXCLUSIVE MODE'))
            yield
    finally:
        await engine.dispose()


async def insert_in_transaction(db: Database, n: int) -> None:
    async with db.transaction() as conn:
        await conn.execute(text("INSERT INTO scratch VALUES (:n)"), {"n": n})


async def insert_in_one_hop(db: Database, n: int) -> None:
    await db.run_transaction(lambda conn: conn.execute(text("INSERT INTO scratch VALUES (:n)"), {"n": n}))


async def scratch_rows(db: Database) -> list[int]:
    async with db.read() as conn:
        return list((await conn.execute(text("SELECT n FROM scratch ORDER BY n"))).scalars())


async def test_i15_p7_a_cut_off_database_call_answers_at_once_and_writes_nothing(scratch_db: Database) -> None:
    db = scratch_db
    async with writes_blocked(db):
        for n, insert in enumerate((insert_in_transaction, insert_in_one_hop)):
            deadlines.bind(0.5)  # as rpc.wrap_unary does for a call with a 0.5 s deadline
            started = time.monotonic()
            with pytest.raises(deadlines.DeadlineExceeded):
                await asyncio.wait_for(insert(db, n), timeout=10)
            assert time.monotonic() - started < 0.7
            assert db.fault is None  # the caller's deadline is not the database's fault
        deadlines.unbind()  # no deadline of a call (a consumer, the relay): the statement timeout, 1 s
        started = time.monotonic()
        with pytest.raises(DatabaseTimeout):
            await asyncio.wait_for(insert_in_transaction(db, 2), timeout=10)
        assert time.monotonic() - started < 1.5
        assert isinstance(db.fault, DatabaseTimeout)  # health: NOT_SERVING until check() passes
    assert await db.check(timeout=5) and db.fault is None
    assert await scratch_rows(db) == []  # none of the cut-off writes, not even after the lock went
    await insert_in_one_hop(db, 3)
    assert await scratch_rows(db) == [3]


async def test_i15_p7_cut_off_cuts_a_hanging_clean_up_short_and_hides_no_outside_cancellation() -> None:
    loop = asyncio.get_running_loop()

    async def hangs_in_clean_up() -> None:  # as SQLAlchemy closing a connection to a silent server
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.Event().wait()

    started = loop.time()
    with pytest.raises(deadlines.DeadlineExceeded):
        async with deadlines.CutOff(loop.time() + 0.1, deadlines.DeadlineExceeded):
            await hangs_in_clean_up()
    assert loop.time() - started < 0.1 + 5 * deadlines.RECANCEL_SECONDS
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # every cancellation of its own taken back

    async def cut_off_later() -> None:
        async with deadlines.CutOff(loop.time() + 60, deadlines.DeadlineExceeded):
            await asyncio.Event().wait()

    outside = asyncio.create_task(cut_off_later())
    await asyncio.sleep(0)
    outside.cancel()  # e.g. the server shutting down: a cancellation, not a deadline
    with pytest.raises(asyncio.CancelledError):
        await outside
