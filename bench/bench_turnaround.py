"""Turnaround statistics over many historical matters: GetTurnaroundStatistics latency.

    .venv/bin/python -m bench.bench_turnaround [--matters 1000000] [--backend sqlite|postgres]
                                               [--runs 50] [--seed 7] [--url postgresql+asyncpg://…]

Loads N generated matters straight into the read model (fact rows bulk-inserted, and the
aggregate rows summed by `Accumulator`, the code `rebuild_aggregates` uses), then times
`services.delegation.turnaround.turnaround_statistics` — the body of the RPC: parse,
read one grain, merge histograms, build the protobuf — for a set of filter/grouping
combinations, and a `SELECT 1` through the same pool as the baseline. Goal (issue 3,
point 9): median ≤ 50 ms for each combination. PostgreSQL runs in a schema of its own that
is dropped afterwards; SQLite in a temp directory. Results go to
bench/results/turnaround-<backend>-<timestamp>.json. Exit 0 when every goal passes.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from delegation.calendar import CHINA_TZ, WorkingCalendar
from delegation.details import MatterKind
from delegation.matters import ReturnReason
from delegation.turnaround import Durations, MatterFacts, working_seconds
from registry.courts import CourtCatalog
from services.delegation.turnaround import (
    AGG,
    FACT,
    Accumulator,
    StatisticsQuery,
    StoredFacts,
    fact_columns,
    province_id,
    query_conditions,
    turnaround_statistics,
)
from services.plumbing.db import Database
from services.plumbing.migrations import upgrade_to_head
from services.plumbing.unit_of_work import Reader

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
GOAL_MEDIAN_MS = 50.0
FIRST_MONTH = date(2024, 1, 1)
MONTHS = 24
CHUNK = 20_000
DAY = 86_400

# --- generating matters ---------------------------------------------------------------------------------

KIND_WEIGHTS = {
    MatterKind.DEPOSITS: 35,
    MatterKind.REAL_ESTATE_OR_REGISTERED_MOVABLES: 20,
    MatterKind.PROPERTY_INVESTIGATION: 15,
    MatterKind.SERVICE_OF_DOCUMENTS: 15,
    MatterKind.EQUITY: 5,
    MatterKind.CONTROL_MEASURES: 5,
    MatterKind.OTHER: 5,
}
REASONS = [r.value for r in ReturnReason]


class WorkingTime:
    """Working seconds between instants in O(1): prefix sums of the calendar's working days.

    Equal to `delegation.turnaround.working_seconds` (checked on a sample at start-up), which
    walks day by day and would take most of the load time for a million matters.
    """

    def __init__(self, calendar: WorkingCalendar, first: date, last: date):
        self.first = first
        days = (last - first).days + 1
        self.working = [calendar.is_working_day(first + timedelta(d)) for d in range(days)]
        self.before = [0]  # working days strictly before first + i
        for is_working in self.working:
            self.before.append(self.before[-1] + is_working)

    def seconds(self, start: datetime, end: datetime) -> int:
        if end <= start:
            return 0
        a, b = start.astimezone(CHINA_TZ), end.astimezone(CHINA_TZ)
        i, j = (a.date() - self.first).days, (b.date() - self.first).days
        if i == j:
            return _seconds(b - a) if self.working[i] else 0
        first = _seconds(_midnight(a.date() + timedelta(1)) - a) if self.working[i] else 0
        last = _seconds(b - _midnight(b.date())) if self.working[j] else 0
        return first + last + (self.before[j] - self.before[i + 1]) * DAY


def _midnight(day: date) -> datetime:
    return datetime.combine(day, dtime.min, tzinfo=CHINA_TZ)


def _seconds(delta: timedelta) -> int:
    return round(delta.total_seconds())


@dataclass(frozen=True)
class Court:
    id: str
    province: str


class Generator:
    """Seeded, roughly realistic history: most delegations stay in the province, returns are
    twice as frequent across provinces, a few matters are withdrawn or still open."""

    def __init__(self, seed: int, courts: CourtCatalog, calendar: WorkingCalendar):
        calendar = calendar.with_weekend_fallback()  # as the projection: 2027 has no notice yet
        self.rng = random.Random(seed)
        self.courts = [Court(c.id, province_id(courts, c.id)) for c in courts if c.id != "spc"]
        self.by_province: dict[str, list[Court]] = {}
        for court in self.courts:
            self.by_province.setdefault(court.province, []).append(court)
        self.kinds = list(KIND_WEIGHTS)
        self.kind_cumulative = _cumulative(list(KIND_WEIGHTS.values()))
        self.working = WorkingTime(calendar, FIRST_MONTH - timedelta(31), FIRST_MONTH + timedelta(MONTHS * 31 + 400))
        self.calendar = calendar
        self.now = _month_start(MONTHS) + timedelta(days=5)  # when the history was taken

    def check_working_time(self, samples: int = 2_000) -> None:
        for _ in range(samples):
            start = self._submission()
            end = start + timedelta(seconds=self.rng.randrange(0, 90 * DAY))
            assert self.working.seconds(start, end) == working_seconds(self.calendar, start, end), (start, end)

    def matters(self, n: int) -> Iterator[StoredFacts]:
        for number in range(n):
            yield self._matter(number)

    def _pair(self) -> tuple[Court, Court]:
        requesting = self.rng.choice(self.courts)
        neighbours = [c for c in self.by_province[requesting.province] if c.id != requesting.id]
        if neighbours and self.rng.random() < 0.6:
            return requesting, self.rng.choice(neighbours)
        while True:
            entrusted = self.rng.choice(self.courts)
            if entrusted.id != requesting.id:
                return requesting, entrusted

    def _submission(self) -> datetime:
        start = _month_start(self.rng.randrange(MONTHS))
        return start + timedelta(seconds=self.rng.randrange(28 * DAY))

    def _matter(self, number: int) -> StoredFacts:
        rng = self.rng
        requesting, entrusted = self._pair()
        cross = requesting.province != entrusted.province
        kind = self.kinds[bisect.bisect(self.kind_cumulative, rng.random() * self.kind_cumulative[-1])]
        submitted = self._submission()
        due = _end_of_day(submitted + timedelta(days=30)) if rng.random() < 0.9 else None
        acknowledged = _later(submitted, rng.lognormvariate(-0.7 + 0.4 * cross, 0.9)) if rng.random() < 0.97 else None
        stamps = self._outcome(submitted, acknowledged, cross)
        done = stamps.get("completed_at") or stamps.get("returned_at") or stamps.get("withdrawn_at")
        late = due is not None and (done or self.now) > due
        facts = MatterFacts(
            name=f"courts/{requesting.id}/delegations/b{number:08d}",
            requesting_court_id=requesting.id,
            entrusted_court_id=entrusted.id,
            requesting_province=requesting.province,
            entrusted_province=entrusted.province,
            matter_kind=kind.value,
            submitted_at=submitted,
            acknowledged_at=acknowledged if acknowledged and acknowledged < self.now else None,
            finish_due_at=due,
            finish_due_seen_at=submitted if due else None,
            state="IN_PROGRESS" if acknowledged else "SUBMITTED",
            state_at=done or acknowledged or submitted,
            overdue_reported=late and rng.random() < 0.8,
            urge_count=rng.randrange(1, 4) if late else 0,
            **stamps,
        )
        return StoredFacts(facts, self._durations(facts))

    def _outcome(self, submitted: datetime, acknowledged: datetime | None, cross: bool) -> dict[str, Any]:
        rng, roll = self.rng, self.rng.random()
        start = acknowledged or submitted
        if roll < 0.03:
            return _if_past({"withdrawn_at": _later(submitted, rng.uniform(0.1, 10))}, self.now)
        if acknowledged is None:
            return {}
        if roll < 0.03 + (0.10 if cross else 0.05):
            reason = rng.choices(REASONS, weights=[5, 3, 1, 1])[0]
            return _if_past({"returned_at": _later(start, rng.lognormvariate(0.5, 0.8)), "return_reason": reason}, self.now)
        return _if_past({"completed_at": _later(start, rng.lognormvariate(1.0, 1.0))}, self.now)

    def _durations(self, facts: MatterFacts) -> Durations:
        assert facts.submitted_at is not None
        ack = self._elapsed(facts.submitted_at, facts.acknowledged_at)
        done = self._elapsed(facts.submitted_at, facts.completed_at)
        return Durations(ack[0], ack[1], done[0], done[1])

    def _elapsed(self, start: datetime, end: datetime | None) -> tuple[int | None, int | None]:
        if end is None:
            return None, None
        return _seconds(end - start), self.working.seconds(start, end)


def _cumulative(weights: list[int]) -> list[int]:
    total, out = 0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def _month_start(index: int) -> datetime:
    year, month = divmod(FIRST_MONTH.month - 1 + index, 12)
    return datetime(FIRST_MONTH.year + year, month + 1, 1, tzinfo=CHINA_TZ)


def _later(start: datetime, days: float) -> datetime:
    return start + timedelta(seconds=round(days * DAY))


def _end_of_day(instant: datetime) -> datetime:
    return datetime.combine(instant.date(), dtime(23, 59, 59), tzinfo=CHINA_TZ)


def _if_past(stamps: dict[str, Any], now: datetime) -> dict[str, Any]:
    """History ends at `now`: what would happen later has not happened yet."""
    return stamps if all(not isinstance(v, datetime) or v <= now for v in stamps.values()) else {}


# --- loading ----------------------------------------------------------------------------------------------


async def load(db: Database, generator: Generator, n: int) -> dict[str, float]:
    """Fact rows in chunks while the Accumulator sums them, then every aggregate row."""
    accumulator = Accumulator()
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    async with db.transaction() as conn:
        for stored in generator.matters(n):
            accumulator.add(stored)
            batch.append(fact_columns(stored))
            if len(batch) == CHUNK:
                await _bulk_insert(conn, FACT, batch, db.schema)
                batch = []
        if batch:
            await _bulk_insert(conn, FACT, batch, db.schema)
    facts_s = time.perf_counter() - started
    started = time.perf_counter()
    async with db.transaction() as conn:
        rows = accumulator.rows()
        while chunk := list(itertools.islice(rows, CHUNK)):
            await _bulk_insert(conn, AGG, chunk, db.schema)
    aggregates_s = time.perf_counter() - started
    started = time.perf_counter()
    await _analyze(db)
    return {"facts_s": facts_s, "aggregates_s": aggregates_s, "analyze_s": time.perf_counter() - started}


async def _bulk_insert(conn: Any, table: Any, rows: list[dict[str, Any]], schema: str | None) -> None:
    if conn.dialect.name != "postgresql":
        await conn.execute(table.insert(), rows)
        return
    columns = list(rows[0])
    raw = await conn.get_raw_connection()  # COPY: an order of magnitude faster than INSERTs
    records = [tuple(row[c] for c in columns) for row in rows]
    await raw.driver_connection.copy_records_to_table(table.name, records=records, columns=columns, schema_name=schema)


async def _analyze(db: Database) -> None:
    if db.is_sqlite:
        async with db.transaction() as conn:
            await conn.execute(text("ANALYZE"))
        return
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in (FACT, AGG):
            await conn.execute(text(f"VACUUM ANALYZE {table.name}"))


async def table_sizes(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        return {t.name: int((await conn.execute(select(func.count()).select_from(t))).scalar_one()) for t in (FACT, AGG)}


# --- measuring --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    label: str
    filter: str
    group_by: tuple[str, ...]


def cases(sample_court: str, sample_requesting: str, month: str) -> list[Case]:
    court = f'entrusted_court = "courts/{sample_court}"'
    return [
        Case("national total", "", ()),
        Case("national by month", "", ("month",)),
        Case("in- vs cross-province by month", "", ("cross_province", "month")),
        Case("matter kind x month", "", ("matter_kind", "month")),
        Case("one court by month", court, ("month",)),
        Case("one court, one month, by kind", f'{court} AND month = "{month}"', ("matter_kind",)),
        Case("courts ranked, one month", f'month = "{month}"', ("entrusted_court",)),
        Case("courts ranked, all time", "", ("entrusted_court",)),
        Case("court x kind, all time", "", ("entrusted_court", "matter_kind")),
        Case("court x month, all time", "", ("entrusted_court", "month")),
        Case("province pairs, all time", "", ("province_pair",)),
        Case("cross-province pairs, one month", f'month = "{month}" AND cross_province = true', ("province_pair",)),
        Case("one court's pairs", court, ("province_pair",)),
        Case("one requester by entrusted court", f'requesting_court = "courts/{sample_requesting}"', ("entrusted_court",)),
        Case(
            "finest: court, month, kind x requester",
            f'{court} AND month = "{month}" AND matter_kind = DEPOSITS',
            ("requesting_court",),
        ),
    ]


@dataclass
class Result:
    label: str
    filter: str
    group_by: list[str]
    grain: str
    groups: int
    aggregate_rows: int
    median_ms: float
    p99_ms: float
    max_ms: float
    ratio_to_select_1: float
    passed: bool


async def timed(runs: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    for _ in range(3):
        await call()  # warm-up: statement caches, page cache
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def rows_read(db: Database, case: Case) -> tuple[str, int]:
    query = StatisticsQuery.parse(case.filter, case.group_by)
    async with db.read() as conn:
        count = select(func.count()).select_from(AGG).where(*query_conditions(AGG, query))
        return query.grain.code, int((await conn.execute(count)).scalar_one())


async def measure(db: Database, runs: int, sample_court: str, sample_requesting: str, month: str) -> tuple[float, list[Result]]:
    async def select_1() -> None:
        async with db.read() as conn:
            await conn.execute(text("SELECT 1"))

    baseline = statistics.median(await timed(runs, select_1))
    results = []
    reader = Reader(db)
    for case in cases(sample_court, sample_requesting, month):
        answer = await turnaround_statistics(reader, case.filter, case.group_by)
        samples = await timed(runs, lambda case=case: turnaround_statistics(reader, case.filter, case.group_by))  # type: ignore[misc]
        grain, aggregate_rows = await rows_read(db, case)
        median = statistics.median(samples)
        results.append(
            Result(
                case.label,
                case.filter,
                list(case.group_by),
                grain,
                len(answer.groups),
                aggregate_rows,
                median,
                p99(samples),
                max(samples),
                median / baseline,
                median <= GOAL_MEDIAN_MS,
            )
        )
    return baseline, results


def print_report(
    backend: str, n: int, timings: dict[str, float], sizes: dict[str, int], baseline: float, results: list[Result]
) -> None:
    print(f"\nturnaround statistics, {backend}, {n:,} matters")
    print("load: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    print("rows: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))
    print(f"baseline SELECT 1 through the pool: median {baseline:.3f} ms\n")
    header = f"{'query':40} {'grain':5} {'groups':>6} {'rows read':>9} {'median':>8} {'p99':>8} {'x SELECT 1':>10}  goal"
    print(header)
    print("-" * len(header))
    for r in results:
        verdict = "PASS" if r.passed else "FAIL"
        print(
            f"{r.label:40} {r.grain:5} {r.groups:6,} {r.aggregate_rows:9,} "
            f"{r.median_ms:7.2f}ms {r.p99_ms:7.2f}ms {r.ratio_to_select_1:10.1f}  {verdict} (median <= {GOAL_MEDIAN_MS:.0f} ms)"
        )


# --- databases --------------------------------------------------------------------------------------------


async def open_database(backend: str, url: str, folder: Path) -> Database:
    if backend == "postgres":
        db = Database(url, schema=f"bench_turnaround_{uuid.uuid4().hex[:8]}")
    else:
        db = Database(f"sqlite+aiosqlite:///{folder}/delegation.db")
    await db.create_schema()
    await upgrade_to_head(db, "delegation")
    return db


async def drop_schema(url: str, schema: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


async def run(args: argparse.Namespace) -> int:
    courts, calendar = CourtCatalog.default(), WorkingCalendar.default()
    generator = Generator(args.seed, courts, calendar)
    generator.check_working_time()
    with tempfile.TemporaryDirectory(prefix="bench-turnaround-") as folder:
        db = await open_database(args.backend, args.url, Path(folder))
        try:
            timings = await load(db, generator, args.matters)
            sizes = await table_sizes(db)
            month = _month_start(MONTHS // 2).strftime("%Y-%m")
            baseline, results = await measure(db, args.runs, "ha0122", "gd0112", month)
        finally:
            await db.dispose()
            if db.schema:
                await drop_schema(args.url, db.schema)
    print_report(args.backend, args.matters, timings, sizes, baseline, results)
    save(args, timings, sizes, baseline, results)
    return 0 if all(r.passed for r in results) else 1


def save(
    args: argparse.Namespace, timings: dict[str, float], sizes: dict[str, int], baseline: float, results: list[Result]
) -> None:
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"turnaround-{args.backend}-{stamp}.json"
    document = {
        "backend": args.backend,
        "matters": args.matters,
        "runs": args.runs,
        "seed": args.seed,
        "load": timings,
        "rows": sizes,
        "baseline_select_1_ms": baseline,
        "results": [asdict(r) for r in results],
    }
    path.write_text(json.dumps(document, indent=2))
    print(f"\nsaved {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matters", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--url", default=DEFAULT_PG_URL, help="PostgreSQL URL (asyncpg)")
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
