"""The vehicle-control scanner, on an injected clock: controls whose term ran out while on the
watch list expire (the agencies are told to drop them), and seized vehicles not listed for
auction by the post-seizure target are flagged (`target-missed`).

Each finding is its own unit of the write door (services/plumbing/unit_of_work.py): it reads
the control, asks the domain again and writes version-guarded, so a report or a lift that
lands meanwhile, or a second replica running the same pass, makes the pass skip that control
rather than act twice. The actions continue the trace of the call that created the control.

Runs in the assistance service every `ROGATORY_VEHICLE_SCAN_INTERVAL` seconds, or once as a
job: `python -m services.assistance.vehicles.scanner [--at 2026-12-01T09:00:00+08:00]`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from assistance import vehicles as v
from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from registry.errors import DomainError
from services.assistance.vehicles import store
from services.assistance.vehicles.handlers import VehicleControlHandlers
from services.assistance.vehicles.settings import VehicleSettings
from services.plumbing.config import Settings
from services.plumbing.db import Database
from services.plumbing.outbox import Outbox
from services.plumbing.telemetry import tracer
from services.plumbing.unit_of_work import Reader, Tx, Writer

log = logging.getLogger(__name__)
_tracer = tracer(__name__)
PAGE = 500
EXPIRED, TARGET_MISSED = "EXPIRED", "TARGET_MISSED"


@dataclass
class ScanReport:
    actions: Counter[str] = field(default_factory=Counter)
    skipped: int = 0


@dataclass
class VehicleControlScanner:
    handlers: VehicleControlHandlers

    async def scan_once(self) -> ScanReport:
        now = self.handlers.clock()
        report = ScanReport()

        def due(conn: Connection) -> tuple[list[str], list[str]]:
            return store.names_to_expire(conn, now, PAGE), store.names_past_target(conn, now, PAGE)

        expiring, late = await self.handlers.reader.run(due)
        for names, action, decide in ((expiring, EXPIRED, v.expire), (late, TARGET_MISSED, v.miss_target)):
            for name in names:
                if await self._act(name, action, decide, now):
                    report.actions[action] += 1
                else:
                    report.skipped += 1
        return report

    async def _act(self, name: str, action: str, decide: Callable[[v.VehicleControl, datetime], v.Result], now: datetime) -> bool:
        handlers = self.handlers

        def act(tx: Tx) -> bool:
            stored = store.control_by_name(tx.connection, name)
            if stored is None:
                return False
            updated, events = decide(stored.control, now)
            if not events:
                return False  # changed since the query (e.g. listed, lifted)
            with handlers.controls.in_trace(f"scan.{action.lower()}", stored):
                handlers.write(tx, stored, updated, events)
            return True

        try:
            return await handlers.writer.run(act)
        except DomainError as reason:
            log.info("vehicle control %s skipped: %s", name, reason)
            return False


async def scan_database(settings: Settings, at: datetime | None = None) -> tuple[datetime, ScanReport]:
    """One pass over the assistance database of `settings`, as of `at` (default: now).
    Its events go to the outbox; the running service's relay publishes them."""
    db = Database(settings.database_url_for("assistance"), schema=settings.schema_for("assistance"))
    moment = at or datetime.now(UTC)
    writer = Writer(db, Outbox(), name="vehicle-scan-writes")
    try:
        handlers = VehicleControlHandlers(
            writer, Reader(db), CourtCatalog.default(), AgencyCatalog.default(), VehicleSettings().policy(), clock=lambda: moment
        )
        return moment, await VehicleControlScanner(handlers).scan_once()
    finally:
        await writer.close()
        await db.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="one vehicle-control scanner pass over the assistance database")
    parser.add_argument("--at", type=datetime.fromisoformat, help="scan as of this instant (ISO 8601 with offset)")
    args = parser.parse_args(argv)
    if args.at is not None and args.at.tzinfo is None:
        parser.error("--at needs a UTC offset, e.g. 2026-12-01T09:00:00+08:00")
    moment, report = asyncio.run(scan_database(Settings(), args.at))
    print(
        f"vehicle-control scan at {moment.isoformat()}: "
        + ", ".join(f"{k} {n}" for k, n in sorted(report.actions.items()))
        + f"; skipped {report.skipped}"
    )


if __name__ == "__main__":
    main()
