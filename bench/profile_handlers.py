"""Profiles RegistryHandlers.create_case / get_case in-process against SQLite (no gRPC, no NATS).

    .venv/bin/python -m bench.profile_handlers [--op create|get] [--requests 3000]
        [--concurrency 64] [--variant as-is|no-overflow|single-writer] [--cprofile 25]

Separates the handler + database cost from the transport: prints throughput, CPU per
call, how many SQLite connections were opened, and (with --cprofile) the top functions.
The variants try the fixes suggested in bench/README.md without touching the service:
  as-is          the engine exactly as services.plumbing.db.Database builds it
  no-overflow    pool_size=4, max_overflow=0: no connection opened and closed per request
  single-writer  no-overflow + an asyncio.Lock around write transactions, so writers queue
                 in the event loop instead of sleeping in SQLite's busy handler
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import pstats
import random
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvloop
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from bench.load import percentile
from bench.workloads import create_case_request
from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from services.plumbing import idempotency
from services.plumbing.db import SQLITE_PRAGMAS, Database
from services.plumbing.migrations import upgrade_to_head
from services.plumbing.outbox import Outbox
from services.plumbing.unit_of_work import Reader, Writer
from services.registry.handlers import RegistryHandlers
from services.registry.messages import register_command

VARIANTS = ("as-is", "no-overflow", "single-writer")


class SingleWriterDatabase(Database):
    """Write transactions wait their turn on an asyncio.Lock (SQLite has one writer anyway)."""

    def __init__(self, url: str):
        super().__init__(url)
        self._write_lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self._write_lock, super().transaction() as conn:
            yield conn


def _apply_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def make_database(url: str, variant: str) -> Database:
    db = SingleWriterDatabase(url) if variant == "single-writer" else Database(url)
    if variant != "as-is":
        db.engine = create_async_engine(db.url, poolclass=AsyncAdaptedQueuePool, pool_size=4, max_overflow=0)
        event.listen(db.engine.sync_engine, "connect", _apply_pragmas)
    return db


def count_connects(db: Database) -> list[int]:
    counter = [0]
    event.listen(db.engine.sync_engine, "connect", lambda *_: counter.__setitem__(0, counter[0] + 1))
    return counter


async def run_concurrently(op: Callable[[], Awaitable[Any]], requests: int, concurrency: int) -> list[float]:
    """Runs `requests` calls, `concurrency` at a time; returns the sorted latencies."""
    remaining = itertools.count(requests, -1)
    latencies: list[float] = []

    async def worker() -> None:
        while next(remaining) > 0:
            start = time.perf_counter()
            await op()
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sorted(latencies)


async def profile(args: argparse.Namespace, data_dir: Path) -> None:
    db = make_database(f"sqlite+aiosqlite:///{data_dir}/registry.db", args.variant)
    await upgrade_to_head(db, "registry")
    handlers = RegistryHandlers(Writer(db, Outbox()), Reader(db), CourtCatalog.default(), AgencyCatalog.default())
    await handlers.load_reference_data()
    numbers = itertools.count(1)
    names: list[str] = []

    async def create() -> None:
        request = create_case_request(next(numbers))
        key = idempotency.key_of("courts/zj0326", "/rogatory.registry.v1.RegistryService/CreateCase", request)
        names.append((await handlers.create_case(register_command(request), key)).name)

    async def get() -> None:
        await handlers.get_case(random.choice(names))

    if args.op == "get":
        await run_concurrently(create, args.requests, args.concurrency)  # the cases to read
    op = create if args.op == "create" else get
    await run_concurrently(op, min(args.requests, 300), args.concurrency)  # warm-up
    connects = count_connects(db)
    profiler = cProfile.Profile() if args.cprofile else None
    wall, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    latencies = await run_concurrently(op, args.requests, args.concurrency)
    if profiler:
        profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await db.dispose()
    print(
        f"{args.op} x{args.requests} @{args.concurrency} [{args.variant}]: {args.requests / wall:.0f} calls/s, "
        f"p50 {percentile(latencies, 0.5) * 1e3:.1f} ms, p99 {percentile(latencies, 0.99) * 1e3:.1f} ms, "
        f"{cpu / args.requests * 1e3:.2f} ms CPU per call (all threads), {connects[0]} SQLite connections opened"
    )
    if profiler:
        print_profile(profiler, args.cprofile)


def print_profile(profiler: cProfile.Profile, top: int) -> None:
    stats = pstats.Stats(profiler)
    print_by_package(stats)
    stats.strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def package_of(filename: str) -> str:
    """`.../site-packages/sqlalchemy/engine/base.py` -> `sqlalchemy`; project files by top folder."""
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0]
    if str(Path.cwd()) in filename:
        return Path(filename).relative_to(Path.cwd()).parts[0]
    if filename == "~":
        return "C builtins (greenlet switch, queue put, ...)"
    return "stdlib (asyncio, contextlib, ...)" if filename.startswith("/") else filename


def print_by_package(stats: pstats.Stats) -> None:
    """Own time (tottime) summed per package: where the main thread's CPU goes, coarsely."""
    totals: dict[str, float] = {}
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        totals[package_of(filename)] = totals.get(package_of(filename), 0.0) + tottime
    grand = sum(totals.values())
    print("own time by package (main thread):")
    for package, seconds in sorted(totals.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {seconds / grand:6.1%}  {package}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--op", choices=["create", "get"], default="create")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--variant", choices=VARIANTS, default="as-is")
    parser.add_argument("--cprofile", type=int, default=0, metavar="TOP", help="print the TOP functions (cProfile)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rogatory-profile-") as tmp:
        uvloop.run(profile(args, Path(tmp)))


if __name__ == "__main__":
    main()
