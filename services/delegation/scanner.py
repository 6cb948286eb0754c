"""The deadline scanner: due-soon warnings, overdue marking, automatic urges (催办),
escalation to the superior court (督办) and deemed withdrawal, on an injected clock.

Each pass reads the deadlines worth looking at, asks `delegation.supervision.actions_for`
what to do and writes, per deadline and in one transaction, the timeline entries, the
deadline's bookkeeping (warned_at, overdue_at, last_urged_at, escalated_at) and the
events. The deadline row is updated only if it is still as read (status and due time),
so a step done meanwhile, an extension, or a second scanner replica make the pass skip
it rather than act twice. Actions join the matter's trace: their spans continue the
trace context stored when the matter was created.

Scanner annotations do not change the delegation's version (etag): a court about to act
on a matter is not made to re-read it because the scanner warned or urged. Deemed
withdrawal is a lifecycle transition, written by the handlers' `write_change` in the scanner's
unit. Each deadline's actions are one unit of the write door, in a span of the matter's trace.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from rogatory.events.v1 import events_pb2
from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection

from delegation import lifecycle
from delegation.deadlines import Step
from delegation.supervision import DeadlineWatch, ScanAction, SupervisionPolicy, WatchStatus, actions_for
from registry.courts import CourtCatalog
from registry.errors import DomainError
from services.contract.events import (
    DELEGATION_DUE_SOON,
    DELEGATION_ESCALATED,
    DELEGATION_OVERDUE,
    DELEGATION_URGED,
    SUPERVISION_ESCALATED,
)
from services.delegation import store
from services.delegation.handlers import DelegationHandlers, matter_event
from services.delegation.messages import deadline_to_proto, delegation_to_proto
from services.delegation.schedule import DeadlineStatus, TrackedDeadline, ordered
from services.delegation.store import DEADLINES, DELEGATIONS, StoredDelegation, TimelineEntry
from services.plumbing.config import Settings
from services.plumbing.db import Database
from services.plumbing.events import Event, EventType
from services.plumbing.outbox import Outbox
from services.plumbing.telemetry import current_trace_id, tracer
from services.plumbing.times import utc
from services.plumbing.unit_of_work import Reader, Tx, Writer

log = logging.getLogger(__name__)
_tracer = tracer(__name__)

SYSTEM_OFFICER = "system"
PAGE = 500


class DeadlineMoved(Exception):
    """The deadline changed between the read and the write: skip it this pass."""


@dataclass
class ScanReport:
    actions: Counter[str] = field(default_factory=Counter)
    skipped: int = 0

    def count(self, action: ScanAction) -> int:
        return self.actions[str(action)]


@dataclass
class DeadlineScanner:
    handlers: DelegationHandlers
    policy: SupervisionPolicy = field(default_factory=SupervisionPolicy)

    # --- running in a service -------------------------------------------------------------------

    # --- one pass ----------------------------------------------------------------------------------

    async def scan_once(self, only: Collection[str] | None = None) -> ScanReport:
        """One pass over every matter, or over the delegations named in `only` (the demo's own)."""
        now = self.handlers.clock()
        report = ScanReport()
        for row in await self._deadlines_to_watch(now, only):
            watch = _watch(row)
            actions = actions_for(watch, now, self.policy)
            if not actions:
                continue
            try:
                await self._act(row, watch, actions, now)
            except (DeadlineMoved, DomainError) as reason:
                log.info("deadline %s/%s skipped: %s", row["delegation_name"], row["step"], reason)
                report.skipped += 1
                continue
            report.actions.update(str(a) for a in actions)
        return report

    async def _deadlines_to_watch(self, now: datetime, only: Collection[str] | None) -> list[Any]:
        horizon = now + self.policy.warn_before
        query = (
            select(DEADLINES)
            .where(
                or_(
                    (DEADLINES.c.status == str(DeadlineStatus.OPEN)) & (DEADLINES.c.due_at <= horizon),
                    DEADLINES.c.status == str(DeadlineStatus.OVERDUE),
                )
            )
            .order_by(DEADLINES.c.due_at)
        )
        if only is not None:
            query = query.where(DEADLINES.c.delegation_name.in_(list(only)))
        return await self.handlers.reader.run(lambda conn: list(conn.execute(query).mappings().all()))

    async def _act(self, row: Any, watch: DeadlineWatch, actions: list[ScanAction], now: datetime) -> None:
        """One deadline's actions, as one unit of the write door. Days later, still the matter's
        trace: the unit's span continues the context stored with the matter."""

        def act(tx: Tx, stored: StoredDelegation) -> None:
            trace.get_current_span().set_attributes(
                {"rogatory.deadline.step": row["step"], "rogatory.scan.actions": ",".join(actions)}
            )
            if ScanAction.DEEM_WITHDRAWN in actions:
                self._deem_withdrawn(tx, stored, row, watch, now)
            else:
                self._annotate(tx, stored, row, watch, actions, now)

        await self.handlers.matters.change(row["delegation_name"], "scan_deadline", act, load=_still_there)

    # --- deemed withdrawn: a lifecycle transition ------------------------------------------------

    def _deem_withdrawn(self, tx: Tx, stored: StoredDelegation, row: Any, watch: DeadlineWatch, now: datetime) -> None:
        command = lifecycle.DeemDelegationWithdrawn(supplement_deadline=watch.due, expected_version=stored.delegation.version)
        updated, events = lifecycle.deem_withdrawn(stored.delegation, command, now)
        change = self.handlers.lifecycle_change(stored, updated, events)
        _guarded_update(tx.connection, row, overdue_at=now)
        tx.emit(self._deadline_event(DELEGATION_OVERDUE, stored, _tracked(stored, watch.step), now))
        self.handlers.write_change(tx, stored, change)

    # --- annotations: warn, overdue, urge, escalate ------------------------------------------

    def _annotate(
        self, tx: Tx, stored: StoredDelegation, row: Any, watch: DeadlineWatch, actions: list[ScanAction], now: datetime
    ) -> None:
        deadline = _tracked(stored, watch.step)
        values: dict[str, Any] = {}
        if ScanAction.MARK_OVERDUE in actions:
            deadline = replace(deadline, status=DeadlineStatus.OVERDUE)
            values.update(status=str(DeadlineStatus.OVERDUE), overdue_at=now)
        deadlines = tuple(ordered([deadline, *(x for x in stored.deadlines if x.step is not watch.step)]))
        urge_count = stored.urge_count + (1 if ScanAction.URGE in actions else 0)
        escalated_at = now if ScanAction.ESCALATE in actions else stored.escalated_at
        view = replace(stored, deadlines=deadlines, urge_count=urge_count, escalated_at=escalated_at)
        entries, events = [], []
        for action in actions:
            entry, action_events, stamp = self._annotation(action, view, deadline, now)
            entries.append(entry)
            events.extend(action_events)
            values.update(stamp)
        conn = tx.connection
        _guarded_update(conn, row, **values)
        conn.execute(
            update(DELEGATIONS)
            .where(DELEGATIONS.c.name == row["delegation_name"])
            .values(urge_count=urge_count, escalated_at=escalated_at)
        )
        store.append_entries(conn, row["delegation_name"], entries)
        tx.emit(*events)

    def _annotation(
        self, action: ScanAction, view: StoredDelegation, deadline: TrackedDeadline, now: datetime
    ) -> tuple[TimelineEntry, list[Event], dict[str, Any]]:
        d = view.delegation
        step = str(deadline.step)
        due = f"{deadline.step} deadline {deadline.due_at:%Y-%m-%d %H:%M} UTC"

        def entry(name: str, note: str) -> TimelineEntry:
            return TimelineEntry(name, d.state, d.state, "", SYSTEM_OFFICER, now, step, note, current_trace_id())

        if action is ScanAction.WARN_DUE_SOON:
            return (
                entry("DUE_SOON", f"{due} is near"),
                [self._deadline_event(DELEGATION_DUE_SOON, view, deadline, now)],
                {"warned_at": now},
            )
        if action is ScanAction.MARK_OVERDUE:
            return entry("OVERDUE", f"{due} passed"), [self._deadline_event(DELEGATION_OVERDUE, view, deadline, now)], {}
        if action is ScanAction.URGE:
            note = f"automatic urge: {due} passed"
            return entry("URGE", note), [self._urged_event(view, deadline, note, now)], {"last_urged_at": now}
        return self._escalation(view, deadline, due, now, entry)

    def _escalation(self, view: StoredDelegation, deadline: TrackedDeadline, due: str, now: datetime, entry: Any) -> Any:
        d = view.delegation
        superior = self.handlers.courts.get(d.entrusted_court_id)
        superior_id = superior.parent_id if superior and superior.parent_id else d.entrusted_court_id
        payload = events_pb2.DelegationEscalated(
            delegation=self._proto(view), superior_court=f"courts/{superior_id}", deadline=deadline_to_proto(deadline)
        )
        events = [
            matter_event(DELEGATION_ESCALATED, d, payload, now),
            SUPERVISION_ESCALATED.event(payload, occurred_at=now, superior_court=superior_id),
        ]
        note = f"escalated to courts/{superior_id}: {due} passed {self.policy.escalate_after.days} days ago or more"
        return entry("ESCALATE", note), events, {"escalated_at": now}

    def _proto(self, view: StoredDelegation) -> Any:
        return delegation_to_proto(view.delegation, view.deadlines, urge_count=view.urge_count, escalated_at=view.escalated_at)

    def _deadline_event(self, kind: EventType, view: StoredDelegation, deadline: TrackedDeadline, now: datetime) -> Event:
        payload = events_pb2.DelegationDeadlineReached(delegation=self._proto(view), deadline=deadline_to_proto(deadline))
        return matter_event(kind, view.delegation, payload, now)

    def _urged_event(self, view: StoredDelegation, deadline: TrackedDeadline, note: str, now: datetime) -> Event:
        payload = events_pb2.DelegationUrged(
            delegation=self._proto(view), automatic=True, note=note, deadline=deadline_to_proto(deadline)
        )
        return matter_event(DELEGATION_URGED, view.delegation, payload, now)


def _watch(row: Any) -> DeadlineWatch:
    return DeadlineWatch(
        step=Step(row["step"]),
        due=utc(row["due_at"]),
        status=WatchStatus(row["status"]),
        warned_at=row["warned_at"],
        overdue_at=row["overdue_at"],
        last_urged_at=row["last_urged_at"] and utc(row["last_urged_at"]),
        escalated_at=row["escalated_at"],
    )


def _still_there(conn: Connection, name: str) -> StoredDelegation:
    stored = store.delegation_by_name(conn, name)
    if stored is None:
        raise DeadlineMoved("delegation gone")
    return stored


def _tracked(stored: StoredDelegation, step: Step) -> TrackedDeadline:
    deadline = stored.deadline(step)
    if deadline is None:
        raise DeadlineMoved(f"no {step} deadline")
    return deadline


def _guarded_update(conn: Connection, row: Any, **values: Any) -> None:
    """Updates the deadline row only if it is still as the pass read it."""
    result = conn.execute(
        update(DEADLINES)
        .where(
            DEADLINES.c.delegation_name == row["delegation_name"],
            DEADLINES.c.step == row["step"],
            DEADLINES.c.status == row["status"],
            DEADLINES.c.due_at == row["due_at"],
        )
        .values(**values)
    )
    if result.rowcount != 1:
        raise DeadlineMoved("changed since it was read")


async def scan_database(
    settings: Settings, at: datetime | None = None, only: Collection[str] | None = None
) -> tuple[datetime, ScanReport]:
    """One pass over the delegation database of `settings`, as of `at` (default: now), over
    every matter or only the delegations named in `only`.

    Its events go to the outbox; the running service's relay publishes them.
    """
    db = Database(settings.database_url_for("delegation"), schema=settings.schema_for("delegation"))
    moment = at or datetime.now(UTC)
    writer = Writer(db, Outbox(), name="scan-deadlines")
    try:
        handlers = DelegationHandlers(writer, Reader(db), CourtCatalog.default(), clock=lambda: moment)
        return moment, await DeadlineScanner(handlers).scan_once(only)
    finally:
        await writer.close()
        await db.dispose()
