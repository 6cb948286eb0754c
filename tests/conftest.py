"""Shared fixtures: real nats-servers on free ports, real SQLite files and PostgreSQL schemas.

PostgreSQL tests use TEST_DATABASE_URL (or DATABASE_URL when it names PostgreSQL) and skip
with a reason when neither is set or the server does not answer.
"""

from __future__ import annotations

import os

# Before grpc is imported, here and in every process the tests start: grpc's fork handlers
# pause its threads around each fork (the tests start many subprocesses) and nothing here
# forks a process that goes on using gRPC.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import asyncio
import contextlib
import io
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
from nats.js import JetStreamContext
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import create_async_engine

from services.plumbing.db import Database
from services.plumbing.events import ReceivedEvent
from services.plumbing.idempotency import RequestKey, scoped_key
from services.plumbing.migrations import upgrade_to_head
from services.plumbing.nats_server import EmbeddedNatsServer
from services.plumbing.subscriber import read_events

BACKENDS = ["sqlite", "postgres"]


@dataclass
class Clock:
    """Time a test moves: handlers and scanners read it instead of the wall clock, so "two days
    later" needs no waiting. Starts at `now` (the wall clock's by default)."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def postgres_url() -> str | None:
    for variable in ("TEST_DATABASE_URL", "DATABASE_URL"):
        url = os.environ.get(variable, "")
        if url.startswith("postgresql"):
            return url if "+asyncpg" in url else url.replace("postgresql://", "postgresql+asyncpg://", 1)
    return None


_pg_reachable: bool | None = None


async def _postgres_reachable(url: str) -> bool:
    global _pg_reachable
    if _pg_reachable is None:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            _pg_reachable = True
        except Exception:  # noqa: BLE001 - any failure: skip with a reason
            _pg_reachable = False
        finally:
            await engine.dispose()
    return _pg_reachable


async def require_postgres() -> str:
    url = postgres_url()
    if not url:
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL or DATABASE_URL=postgresql://… (.ci/run sets it)")
    if not await _postgres_reachable(url):
        pytest.skip(f"PostgreSQL at {url} does not answer")
    return url


async def drop_schemas(url: str, prefix: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            rows = await conn.execute(
                text("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE :p"), {"p": f"{prefix}%"}
            )
            for (schema,) in rows:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await engine.dispose()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNatsServer]:
    server = EmbeddedNatsServer(tmp_path / "nats").start()
    try:
        yield server
    finally:
        server.stop()


class SqliteTemplates:
    """Each service's SQLite database migrated to head once per test process; a test gets a copy
    of the file (milliseconds) instead of running the migrations again."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._made: dict[str, Path] = {}

    async def copy(self, service: str, to: Path) -> None:
        if service not in self._made:
            path = self.folder / f"{service}.db"
            db = Database(f"sqlite+aiosqlite:///{path}")
            await upgrade_to_head(db, service)
            await db.dispose()  # the last connection closed: the write-ahead log is checkpointed into the file
            assert not path.with_name(path.name + "-wal").exists()
            self._made[service] = path
        shutil.copyfile(self._made[service], to)


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplates:
    return SqliteTemplates(tmp_path_factory.mktemp("sqlite-templates"))


@pytest.fixture(params=BACKENDS)
async def service_db_factory(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_templates: SqliteTemplates
) -> AsyncIterator[object]:
    """Returns an async factory: `await make("registry")` → a migrated Database of that service."""
    backend: str = request.param
    url = await require_postgres() if backend == "postgres" else None
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    created: list[Database] = []

    async def make(service: str) -> Database:
        if url:
            db = Database(url, schema=f"{prefix}{service}")
            await db.create_schema()
            await upgrade_to_head(db, service)
        else:
            await sqlite_templates.copy(service, tmp_path / f"{service}.db")
            db = Database(f"sqlite+aiosqlite:///{tmp_path}/{service}.db")
        created.append(db)
        return db

    make.backend = backend  # type: ignore[attr-defined]
    make.url = url  # type: ignore[attr-defined]
    make.prefix = prefix  # type: ignore[attr-defined]
    yield make
    for db in created:
        await db.dispose()
    if url:
        await drop_schemas(url, prefix)


def run_cli(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`rogatory ARGV` as an operator runs it, with exactly `env` as its environment: its own
    main() in this process (a Python process of its own costs ~1.5 s of CPU to import it), its
    exit status and what it printed. Blocks: call it on a thread (asyncio.to_thread) from a
    test whose event loop must go on meanwhile; the command runs an event loop of its own."""
    from services.tools.cli import main  # noqa: PLC0415 - the CLI's imports only where it is run

    out, err = io.StringIO(), io.StringIO()
    code: int = 0
    with mock.patch.dict(os.environ, env, clear=True), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as leaving:
            if isinstance(leaving.code, str):  # sys.exit("message"): printed to stderr, status 1
                print(leaving.code, file=sys.stderr)
                code = 1
            else:
                code = leaving.code or 0
    return subprocess.CompletedProcess(["rogatory", *argv], code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def statements_run() -> Iterator[list[str]]:
    """The first three words of every SQL statement any engine of this process runs in the block
    (SQLite writes on an engine of their own): what a write batch costs, counted."""
    seen: list[str] = []

    def note(conn: object, cursor: object, statement: str, *rest: object) -> None:
        seen.append(" ".join(statement.split()[:3]))

    sqlalchemy_event.listen(Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sqlalchemy_event.remove(Engine, "before_cursor_execute", note)


#: How long a test waits for an outcome before it fails: a bound for an outcome that never
#: comes, not a guess at how long it takes, so generous — CI shares two cores with other work,
#: and everything may run several times slower than on an idle machine.
WAIT_SECONDS = 30.0


async def wait_for(condition, timeout: float = WAIT_SECONDS, interval: float = 0.02) -> None:  # type: ignore[no-untyped-def]
    """Polls an async or sync condition until true: waiting for an outcome, not for time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"condition not met in {timeout:g} s: {getattr(condition, '__name__', condition)}")
        await asyncio.sleep(interval)


#: pytest-timeout dumps the threads' stacks; a hung test is mostly an asyncio task awaiting
#: something, so the tasks and what each awaits are written this long before.
TASK_DUMP_LEAD_SECONDS = 15


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: object) -> None:
    timeout = getattr(settings, "timeout", 0) or 0
    if timeout > TASK_DUMP_LEAD_SECONDS:
        timer = threading.Timer(timeout - TASK_DUMP_LEAD_SECONDS, _dump_asyncio_tasks, args=(item.nodeid,))
        timer.daemon = True
        timer.start()
        item.stash[_TASK_DUMP] = timer


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> None:
    timer = item.stash.get(_TASK_DUMP, None)
    if timer is not None:
        timer.cancel()


_TASK_DUMP = pytest.StashKey[threading.Timer]()


def _dump_asyncio_tasks(nodeid: str) -> None:
    """Every pending task of the test process and the await chain it is stuck in (read from
    another thread: a best-effort snapshot, for the report of a test about to time out)."""
    lines = [f"\n+++ {nodeid} is about to time out; its pending asyncio tasks:"]
    for task in list(asyncio.tasks._all_tasks):  # type: ignore[attr-defined]
        if task.done():
            continue
        lines.append(f"--- {task.get_name()} {task.get_coro()!r}")
        awaited = task.get_coro()
        while awaited is not None:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is not None:
                lines.append(f"    {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """With `-n N` (make test): a module's tests on one worker, heaviest modules first (tests/scheduling.py)."""
    from tests.scheduling import HeaviestModulesFirst  # noqa: PLC0415 - xdist only when it runs workers

    return HeaviestModulesFirst(config, log)  # type: ignore[arg-type]


def request_key(request_id: str, caller: str = "courts/tests", body: bytes = b"") -> RequestKey:
    """What wrap_unary makes of a request_id, for tests that call handlers directly."""
    return scoped_key(caller, "/tests/Method", "", request_id, body)


async def events_until(
    js: JetStreamContext,
    subject_filter: str,
    enough: Callable[[list[ReceivedEvent]], bool],
    *,
    since: datetime | None = None,
    timeout: float = WAIT_SECONDS,
) -> list[ReceivedEvent]:
    """The events of the stream on `subject_filter` (since `since`), read again until `enough`
    of them are there — a relay publishes after its commit, a scanner on its next pass — or
    `timeout` passes; then the last read, for the caller's assertion to show what is missing."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        events = await read_events(js, "ROGATORY", subject_filter, since=since, timeout=5.0)
        if enough(events) or loop.time() > deadline:
            return events
        await asyncio.sleep(0.1)
