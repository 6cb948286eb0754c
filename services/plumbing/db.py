"""Database access: one async engine per service, SQLite (WAL) or PostgreSQL.

Hot paths use SQLAlchemy Core statements on the sqlmodel tables: the ORM unit of work
costs ~2 ms of CPU per transaction, Core ~0.1 ms (ENVIRONMENT.md). Each service owns its
tables: a SQLite file of its own, or a PostgreSQL schema of its own (`search_path`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import fcntl
import functools
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

from sqlalchemy import LargeBinary, create_engine, event, text
from sqlalchemy.engine import Connection, Dialect, Engine, make_url
from sqlalchemy.exc import DBAPIError, EmulatedDBAPIException
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from services.plumbing import deadlines

log = logging.getLogger(__name__)

T = TypeVar("T")

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",  # readers never block the writer
    "PRAGMA synchronous=NORMAL",  # durable at checkpoints in WAL mode; ~5x faster commits
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",  # with a statement timeout: that instead (Database._sqlite_pragmas)
    # Checkpoints run in the background (Database.checkpoint, ServiceHost). SQLite's own,
    # at 1,000 pages, runs inside whichever commit crosses the mark: a ~10 ms stall with its
    # fsync in that request. This higher mark only bounds the WAL if the background falls behind.
    "PRAGMA wal_autocheckpoint=10000",
)
#: After a failed write, SQLite's folder must take this much before the health check passes again.
SPACE_PROBE_BYTES = 1024 * 1024


class SoleWriterTaken(RuntimeError):
    """Another service process already writes this SQLite database (Database.claim_sole_writer)."""


class DatabaseUnavailable(Exception):
    """The database cannot be reached or cannot take the call now; RPCs answer UNAVAILABLE."""

    reason = "DATABASE_UNAVAILABLE"


class DatabaseTimeout(DatabaseUnavailable):
    """A call outlasted the statement timeout: the database hangs, or a lock is held too long."""

    reason = "DATABASE_TIMEOUT"


class DatabaseFull(DatabaseUnavailable):
    """The database's disk is full; RPCs answer RESOURCE_EXHAUSTED until space is freed."""

    reason = "DISK_FULL"


class DatabaseNotMigrated(DatabaseUnavailable):
    """A table the call needs is not there (yet): the database was never migrated, e.g. another
    process's that has not started (the turnaround projector's, which the delegation service
    reads). Not the call's fault, and over once that process has started: UNAVAILABLE."""

    reason = "DATABASE_NOT_MIGRATED"


Fault = TypeVar("Fault", bound=DatabaseUnavailable)  # one of the faults above


class Database:
    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_size: int = 10,
        echo: bool = False,
        connect_timeout: float = 3.0,
        statement_timeout: float | None = None,
        written_by: str = "",
    ):
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.schema = None if self.is_sqlite else schema
        self.connect_timeout = connect_timeout  # fail fast (UNAVAILABLE) rather than hang when PostgreSQL is away
        # The longest a call (waiting for a connection or the writer, its statements, its commit)
        # may take; also the server-side statement, lock and idle-in-transaction timeouts on
        # PostgreSQL and SQLite's busy timeout. None: unbounded (the command-line tools).
        self.statement_timeout = statement_timeout
        # The process that writes this database, when this one only reads it: a table missing here
        # means that process has not migrated it yet (DatabaseNotMigrated), not a fault of the call.
        self.written_by = written_by
        self.engine: AsyncEngine = self._create_engine(pool_size, echo)
        # SQLite has one writer: queue this process's writers here rather than in SQLite's
        # busy handler, which sleeps in steps of up to 100 ms.
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._sync_writer: tuple[Engine, ThreadPoolExecutor] | None = None  # SQLite: see run_transaction
        self._sync_reader: tuple[Engine, ThreadPoolExecutor] | None = None  # SQLite: see run_read
        #: The last failure of the database itself (not of a call's input), until check() passes.
        self.fault: DatabaseUnavailable | None = None
        self._writer_claim: IO[str] | None = None  # SQLite: see claim_sole_writer
        self._faulted = asyncio.Event()

    def _create_engine(self, pool_size: int, echo: bool) -> AsyncEngine:
        if self.is_sqlite:
            self._ensure_sqlite_folder()
            engine = create_async_engine(self.url, echo=echo, poolclass=AsyncAdaptedQueuePool, pool_size=4, max_overflow=0)
            event.listen(engine.sync_engine, "connect", self._sqlite_pragmas())
            return engine
        connect_args: dict[str, Any] = {}
        if self.url.get_driver_name() == "asyncpg":
            connect_args["timeout"] = self.connect_timeout
            server_settings = {"search_path": self.schema} if self.schema else {}
            if self.statement_timeout is not None:
                # Also server-side: a statement or lock wait is stopped by PostgreSQL even when the
                # client has gone, and a session left in a transaction does not hold its locks.
                milliseconds = str(max(1, round(self.statement_timeout * 1000)))
                for setting in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"):
                    server_settings[setting] = milliseconds
            if server_settings:
                connect_args["server_settings"] = server_settings
        return create_async_engine(
            self.url,
            echo=echo,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,  # a connection that died while the database was away is replaced
            pool_timeout=self.connect_timeout + 2,
            connect_args=connect_args,
        )

    def _sqlite_pragmas(self) -> Callable[[Any, Any], None]:
        pragmas: tuple[str, ...] = SQLITE_PRAGMAS
        if self.statement_timeout is not None:  # another process's writer is waited for that long, no longer
            pragmas = (*pragmas, f"PRAGMA busy_timeout={max(1, round(self.statement_timeout * 1000))}")
        return functools.partial(_apply_sqlite_pragmas, pragmas=pragmas)

    def _ensure_sqlite_folder(self) -> None:
        if self.url.database and self.url.database != ":memory:":
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)

    async def create_schema(self) -> None:
        if self.schema:
            async with self.engine.begin() as conn:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One transaction; commits on success, rolls back on any exception."""
        async with self._cut_off():
            with self._faults():
                if self._write_lock:
                    async with self._write_lock, _connecting(self.engine.begin()) as conn:
                        yield conn
                else:
                    async with _connecting(self.engine.begin()) as conn:
                        yield conn

    async def run_transaction(self, work: Callable[[Connection], T]) -> T:
        """Runs `work` — synchronous SQLAlchemy Core on a `Connection` — in one transaction.

        On SQLite the whole of it runs in one call on a writer thread with a synchronous
        connection (BEGIN IMMEDIATE; savepoints work): one thread hop per transaction, where
        aiosqlite takes about four per statement (~0.2 ms each, most of a short hot
        transaction's time). On PostgreSQL it runs in the async connection's greenlet
        (`run_sync`). Writers queue as in transaction().
        """
        if not self.is_sqlite:
            async with self.transaction() as conn:
                return await conn.run_sync(work)
        assert self._write_lock is not None
        engine, thread = self._sqlite_writer()
        context = contextvars.copy_context()  # the caller's trace context, for the outbox rows
        call = _ThreadCall()

        def run() -> T:
            call.go_on()
            with engine.begin() as conn:
                result = work(conn)
                call.go_on()  # the caller was cut off meanwhile: roll back what it was told failed
                return result

        async with self._cut_off():
            with self._faults():
                async with self._write_lock:
                    return await call.run(thread, context.run, run)

    def _sqlite_writer(self) -> tuple[Engine, ThreadPoolExecutor]:
        if self._sync_writer is None:
            engine = self._sync_engine()
            event.listen(engine, "connect", _leave_transactions_to_sqlalchemy)
            event.listen(engine, "begin", _begin_immediate)
            self._sync_writer = engine, ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        return self._sync_writer

    async def run_read(self, work: Callable[[Connection], T]) -> T:
        """Runs `work` — synchronous reads on a `Connection` — and returns what it returns.

        On SQLite it is one call on a reader thread of its own (WAL: it never waits for the
        writer), for reads on a hot path that would otherwise take aiosqlite's thread round
        trips; on PostgreSQL it runs on a pooled async connection (`run_sync`)."""
        if not self.is_sqlite:
            async with self.read() as conn:
                return await conn.run_sync(work)
        if self._sync_reader is None:
            self._sync_reader = self._sync_engine(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-reader")
        engine, thread = self._sync_reader
        call = _ThreadCall()

        def run() -> T:
            call.go_on()
            with engine.connect() as conn:
                return work(conn)

        async with self._cut_off():
            with self._faults():
                return await call.run(thread, run)

    def _sync_engine(self) -> Engine:
        engine = create_engine(self.url.set(drivername="sqlite+pysqlite"), pool_size=1, max_overflow=0)
        event.listen(engine, "connect", self._sqlite_pragmas())
        return engine

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._cut_off():
            with self._faults():
                async with _connecting(self.engine.connect()) as conn:
                    yield conn

    def _cut_off(self) -> deadlines.CutOff:
        """Where a call is cut off: at the statement timeout, or the RPC's deadline if sooner."""
        call_deadline = deadlines.current()
        if self.statement_timeout is None:
            return deadlines.CutOff(call_deadline, deadlines.DeadlineExceeded)
        own = asyncio.get_running_loop().time() + self.statement_timeout
        if call_deadline is not None and call_deadline <= own:
            return deadlines.CutOff(call_deadline, deadlines.DeadlineExceeded)
        return deadlines.CutOff(own, self._timed_out)

    def _timed_out(self) -> DatabaseTimeout:
        return self._noted(DatabaseTimeout(f"no answer from the database within {self.statement_timeout:g} s"))

    def _faults(self) -> _Faults:
        return _Faults(self)

    def _noted(self, fault: Fault) -> Fault:
        """Records `fault` for the health check (NOT_SERVING until check() passes) and wakes it."""
        if self.fault is None:
            log.warning("database failing: %s: %s", fault.reason, fault)
        self.fault = fault
        self._faulted.set()
        return fault

    async def wait_for_fault(self, timeout: float) -> None:
        """Returns once a call has failed on the database, or after `timeout` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._faulted.wait(), timeout)
        self._faulted.clear()

    async def check(self, timeout: float) -> bool:
        """Whether the database answers within `timeout`: `SELECT 1`, and after a failure a write
        probe (SQLite: its folder takes SPACE_PROBE_BYTES and the write lock can be taken).
        Passing clears the recorded fault."""
        fault = self.fault
        try:
            async with deadlines.CutOff(asyncio.get_running_loop().time() + timeout, TimeoutError):
                if not await self.ping():
                    return False
                if fault is not None and self.is_sqlite:
                    await self._probe_sqlite_writes()
        except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
            log.debug("database check failed: %r", exc)
            return False
        if self.fault is fault and fault is not None:
            log.warning("database answers again after %s", fault.reason)
            self.fault = None
        return True

    async def _probe_sqlite_writes(self) -> None:
        assert self._write_lock is not None
        engine, thread = self._sqlite_writer()
        folder = Path(self.url.database).parent if self.url.database not in (None, "", ":memory:") else None

        call = _ThreadCall()

        def probe() -> None:
            call.go_on()
            if folder is not None:
                _reserve_space(folder / f".{Path(str(self.url.database)).name}.space-probe", SPACE_PROBE_BYTES)
            with engine.begin():  # BEGIN IMMEDIATE: nobody holds the write lock for good
                pass

        async with self._write_lock:
            await call.run(thread, probe)

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - any failure means "not healthy"
            return False

    async def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE WAL checkpoint on SQLite: copies committed pages into the database file
        without blocking readers or writers. Returns (busy, WAL pages, pages checkpointed);
        (0, 0, 0) on PostgreSQL, which checkpoints itself."""
        if not self.is_sqlite:
            return (0, 0, 0)
        async with self.read() as conn:
            busy, wal_pages, checkpointed = tuple((await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")).one())
        return int(busy), int(wal_pages), int(checkpointed)

    def claim_sole_writer(self, holder: str) -> None:
        """Makes this process the only service process writing the SQLite file until it disposes
        of the database or ends, however it ends: an advisory lock on `<file>-writer`, which the
        kernel releases with the process. A second service process on the same file would publish
        every outbox row again (a relay keeps its progress in memory) and fight the first for the
        write lock: it is refused with `SoleWriterTaken`, naming the holder. Tools that write a
        row or two (the admin CLI) do not claim the file. No-op on PostgreSQL, where replicas
        share a database (claimed rows, SKIP LOCKED)."""
        if not self.is_sqlite or self._writer_claim is not None:
            return
        path = Path(self.url.database or "")
        claim = open(path.with_name(path.name + "-writer"), "a+")  # noqa: SIM115 - held until dispose()
        try:
            fcntl.flock(claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            claim.seek(0)
            taken_by = claim.read().strip() or "another process"
            claim.close()
            raise SoleWriterTaken(
                f"{path} is already written by {taken_by}: SQLite serves one service process per database file. "
                "Stop that one first, or give this one its own ROGATORY_DATA_DIR; to run replicas, use PostgreSQL (DATABASE_URL)."
            ) from None
        claim.truncate(0)
        claim.write(f"{holder} (pid {os.getpid()})")
        claim.flush()
        self._writer_claim = claim

    async def dispose(self) -> None:
        if self._writer_claim is not None:
            self._writer_claim.close()  # releases the lock
            self._writer_claim = None
        await self.engine.dispose()
        for engine, thread in filter(None, (self._sync_writer, self._sync_reader)):
            await asyncio.get_running_loop().run_in_executor(thread, engine.dispose)  # its connection lives in that thread
            thread.shutdown()
        self._sync_writer = self._sync_reader = None


class _Faults:
    """`with db._faults():` — an error of the database itself (unreachable, locked, disk full,
    timed out) leaves as the DatabaseUnavailable it stands for, noted for the health check;
    every other error (a constraint, a domain error of the work) leaves as it is."""

    __slots__ = ("db",)

    def __init__(self, db: Database):
        self.db = db

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None) -> None:
        if error is None or not isinstance(error, Exception):
            return
        fault = database_fault(error) or not_migrated_by(self.db.written_by, error)
        if fault is None:
            return
        self.db._noted(fault)
        if fault is not error:
            raise fault from error


class _Abandoned(Exception):
    """The caller of a thread call was cut off before the call started or before it committed."""


class _ThreadCall:
    """A call on a SQLite thread that its caller may leave (cut off): the thread then skips it,
    or rolls it back instead of committing (`go_on`). A statement already running finishes."""

    __slots__ = ("abandoned",)

    def __init__(self) -> None:
        self.abandoned = False

    def go_on(self) -> None:
        if self.abandoned:
            raise _Abandoned

    async def run(self, thread: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(thread, fn, *args)
        except asyncio.CancelledError:
            self.abandoned = True
            raise


def _reserve_space(path: Path, size: int) -> None:
    """Raises OSError (ENOSPC, EDQUOT, EROFS, EIO…) unless the file system takes `size` more bytes."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # a file system that cannot tell in advance
            raise
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)


@asynccontextmanager
async def _connecting(context: Any) -> AsyncIterator[AsyncConnection]:
    """`context` (engine.begin() / connect()), where failing to connect at all — refused,
    timed out, no pooled connection in time — is DatabaseUnavailable. Errors of the body
    are left as they are: a NATS timeout inside a transaction is not the database's."""
    try:
        conn = await context.__aenter__()
    except (OSError, TimeoutError, PoolTimeout) as exc:
        raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
    try:
        yield conn
    except BaseException as exc:
        if not await context.__aexit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        await context.__aexit__(None, None, None)


def _apply_sqlite_pragmas(dbapi_connection: Any, _record: Any, pragmas: Sequence[str] = SQLITE_PRAGMAS) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in pragmas:
        cursor.execute(pragma)
    cursor.close()


def _leave_transactions_to_sqlalchemy(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own BEGIN comes late (before the first write, not the first read) and
    # breaks savepoints; with it off, _begin_immediate opens every transaction.
    dbapi_connection.isolation_level = None


def _begin_immediate(conn: Connection) -> None:
    # The writer's transactions read, then write: take the write lock at the start (waiting
    # in busy_timeout for another process's writer), so a read is never followed by a
    # write that finds the database changed under it (SQLITE_BUSY_SNAPSHOT).
    conn.exec_driver_sql("BEGIN IMMEDIATE")


# SQLite result codes (primary code: extended & 0xFF) and PostgreSQL SQLSTATEs that are the
# database's trouble, not the call's: disk full, locked or busy, I/O, unreachable, timed out.
_SQLITE_ERROR = 1  # generic: "no such table" is one
_SQLITE_FULL = 13
_SQLITE_UNAVAILABLE = {5, 6, 7, 8, 10, 14, 15}  # BUSY, LOCKED, NOMEM, READONLY, IOERR, CANTOPEN, PROTOCOL
_PG_FULL = {"53100"}  # disk_full
_PG_NOT_MIGRATED = {"42P01", "3F000"}  # undefined_table, invalid_schema_name
_PG_TIMEOUT = {"57014", "55P03"}  # query_canceled (statement_timeout), lock_not_available (lock_timeout)
_PG_UNAVAILABLE_CLASSES = ("08", "53", "57P")  # connection exception, insufficient resources, shutdown
_PG_UNAVAILABLE = {"25P03"}  # idle_in_transaction_session_timeout
#: PostgreSQL rolled the transaction back to let another one through: its work, run again, may
#: well succeed (services/plumbing/unit_of_work.py does). SQLite has one writer: neither happens.
_PG_RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure
_CONNECTION_LOST = (
    "connection refused",
    "could not connect",
    "connection was closed",
    "connection is closed",
    "terminating connection",
    "connect call failed",
)


def database_fault(error: BaseException) -> DatabaseUnavailable | None:
    """The DatabaseUnavailable that `error` (or an error it was raised from or while handling,
    e.g. a rollback failing after the disk filled) stands for; None for errors of the call."""
    seen: BaseException | None = error
    for _ in range(4):
        if seen is None:
            return None
        if isinstance(seen, DatabaseUnavailable):
            return seen
        if isinstance(seen, DBAPIError) and (kind := _fault_kind(seen)) is not None:
            return kind(str(seen.orig))
        seen = seen.__cause__ or seen.__context__
    return None


def not_migrated_by(owner: str, error: BaseException) -> DatabaseNotMigrated | None:
    """DatabaseNotMigrated when `error` is a missing table (or schema) of a database `owner` writes."""
    if not owner or not isinstance(error, DBAPIError):
        return None
    driver = _driver_error(error)
    missing_table = getattr(driver, "sqlite_errorcode", None) == _SQLITE_ERROR and str(driver).startswith("no such table")
    if missing_table or getattr(driver, "sqlstate", None) in _PG_NOT_MIGRATED:
        return DatabaseNotMigrated(f"the {owner} process has not created its database yet (is it running?)")
    return None


def must_retry(error: BaseException) -> bool:
    """Whether `error` (or an error it was raised from or while handling) says the database
    aborted the transaction to break a deadlock or a serialization conflict with another one:
    nothing of it was applied, and its work, run again, may well succeed."""
    seen: BaseException | None = error
    for _ in range(4):
        if seen is None:
            return False
        if isinstance(seen, DBAPIError) and getattr(_driver_error(seen), "sqlstate", None) in _PG_RETRYABLE:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _driver_error(error: DBAPIError) -> object:
    return error.orig.driver_exception if isinstance(error.orig, EmulatedDBAPIException) else error.orig


def _fault_kind(error: DBAPIError) -> type[DatabaseUnavailable] | None:
    driver = _driver_error(error)
    code = getattr(driver, "sqlite_errorcode", None)
    if isinstance(code, int):
        if code & 0xFF == _SQLITE_FULL:
            return DatabaseFull

        return DatabaseUnavailable if code & 0xFF in _SQLITE_UNAVAILABLE else None
    state = getattr(driver, "sqlstate", None)
    if isinstance(state, str):
        if state in _PG_FULL:
            return DatabaseFull
        if state in _PG_TIMEOUT:
            return DatabaseTimeout
        if state in _PG_UNAVAILABLE or state.startswith(_PG_UNAVAILABLE_CLASSES):
            return DatabaseUnavailable
    if error.connection_invalidated or any(s in str(error.orig).lower() for s in _CONNECTION_LOST):
        return DatabaseUnavailable
    return None


def placeholders(dialect: Dialect, count: int, first: int = 1) -> str:
    """`count` positional parameters in the dialect's style, for SQL built by hand (e.g. an
    IN list whose length varies: SQLAlchemy's expanding parameters cost ≈ 8 µs each)."""
    if dialect.paramstyle == "qmark":
        return ", ".join("?" * count)
    if dialect.paramstyle in ("numeric_dollar", "numeric"):
        sign = "$" if dialect.paramstyle == "numeric_dollar" else ":"
        return ", ".join(f"{sign}{i}" for i in range(first, first + count))
    raise NotImplementedError(f"paramstyle {dialect.paramstyle}")


class BulkStatement:
    """An INSERT or UPDATE run for many rows by the driver's executemany, compiled once per dialect.

    SQLAlchemy's executemany builds and processes a parameter dict per row; for the
    1,000-row writes of a property query that was most of the statement's time. Here the
    SQL is compiled once, and each row becomes a tuple in the compiled order, passed through
    the same type bind processors (e.g. datetimes to text on SQLite). `keys` names the
    columns an INSERT writes (every row gives all of them); the table's other columns with a
    scalar default get it.
    """

    def __init__(self, statement: Any, keys: Sequence[str] | None = None):
        self.statement = statement
        self.keys = list(keys) if keys else None
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        if dialect.name not in self._compiled:
            compiled = self.statement.compile(dialect=dialect, column_keys=self.keys)
            names = list(compiled.positiontup or [])
            table = getattr(self.statement, "table", None)
            defaults = {
                n: table.c[n].default.arg
                for n in names
                if self.keys and n not in self.keys and table is not None and table.c[n].default is not None
            }
            # Binary values go to the driver as they are: both drivers take bytes, and wrapping
            # each in the DB-API's Binary only costs time.
            processors = [
                (i, compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect))
                for i, n in enumerate(names)
                if not isinstance(compiled.binds[n].type, LargeBinary)
            ]
            self._compiled[dialect.name] = _Compiled(
                str(compiled), itemgetter(*names), [(i, p) for i, p in processors if p], defaults
            )
        return self._compiled[dialect.name]

    async def execute(self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            await conn.exec_driver_sql(*self._statement(conn.dialect, rows))

    def execute_sync(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Rows changed, where the dialect counts executemany rows (supports_sane_multi_rowcount); else -1."""
        if not rows:
            return 0
        return int(conn.exec_driver_sql(*self._statement(conn.dialect, rows)).rowcount)

    def _statement(self, dialect: Dialect, rows: Sequence[Mapping[str, Any]]) -> tuple[str, list[tuple[Any, ...]]]:
        compiled = self._for(dialect)
        if compiled.defaults:
            rows = [{**compiled.defaults, **row} for row in rows]
        return compiled.sql, compiled.rows(rows)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    values: Callable[[Mapping[str, Any]], Any]  # the row's values in the statement's order
    processors: list[tuple[int, Callable[[Any], Any]]]  # by position, only where the type has one
    defaults: dict[str, Any]

    def rows(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        if not self.processors:
            return [v if isinstance(v, tuple) else (v,) for v in map(self.values, rows)]
        # The same object in consecutive rows (a batch's timestamp, a shared text) is processed once.
        last: dict[int, tuple[Any, Any]] = {}
        out = []
        for values in map(self.values, rows):
            processed = list(values) if isinstance(values, tuple) else [values]
            for index, process in self.processors:
                value = processed[index]
                seen = last.get(index)
                if seen is not None and seen[0] is value:
                    processed[index] = seen[1]
                else:
                    processed[index] = converted = process(value)
                    last[index] = (value, converted)
            out.append(tuple(processed))
        return out
