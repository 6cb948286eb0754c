"""Vehicle-control command handlers: the same code serves gRPC, the scanner and the
`case.closed` consumer.

Every write follows one path: read the control, let the domain decide
(assistance/vehicles.py), then commit in ONE transaction the row (`UPDATE … WHERE version =
:old`; zero rows → ABORTED VERSION_MISMATCH) and the outbox events.

Events: the court's own on `rogatory.v1.vehicle.{court}.{verb}`, and one copy per addressed
agency on `rogatory.v1.watchlist.{agency}.{court}.added|removed` when the watch list changes,
so each traffic-police unit subscribes to its own subject alone.

Who may see a control: the controlling court and admins always; an addressed agency while the
vehicle is on the watch list. Anyone else gets NOT_FOUND, for the custom methods too (as for
delegations), so no call reveals that a control exists.

Idempotency (AIP-155, services/plumbing/idempotency.py): a request_id is scoped to the caller,
the method and the control; a retry returns the control as it is now, with no second event.

One control, one trace: the call that creates a control starts its trace, stored with the
row; every later write — an agency's report, a court's step, the scanner, case closing — runs
in a span that continues that context and links both ways to the call that caused it, so its
outbox rows (and the relay's and consumers' spans) land in the control's trace.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opentelemetry.trace import SpanKind
from rogatory.events.v1 import vehicle_events_pb2
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from assistance import vehicles as v
from delegation.calendar import WorkingCalendar
from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from registry.errors import Aborted, AlreadyExists, NotFound, PermissionDenied
from services.assistance.vehicles import store
from services.assistance.vehicles.messages import control_to_proto, sighting_to_proto, step_to_proto
from services.assistance.vehicles.store import ControlQuery, StoredControl
from services.contract.case_replica import replica_of
from services.contract.events import (
    CASE_CLOSED,
    VEHICLE_CONTROL_CREATED,
    VEHICLE_CONTROL_ENDED,
    VEHICLE_SEIZED,
    VEHICLE_SIGHTED,
    VEHICLE_STEP_RECORDED,
    VEHICLE_TARGET_MISSED,
    WATCHLIST_ENTRY_ADDED,
    WATCHLIST_ENTRY_REMOVED,
)
from services.contract.span_attributes import CASE_NAME, COURT, VEHICLE_CONTROL_NAME
from services.plumbing.auth import Principal, PrincipalKind
from services.plumbing.db import Database
from services.plumbing.events import Event, EventType, ReceivedEvent
from services.plumbing.idempotency import RequestKey, earlier_resource, once_async, record
from services.plumbing.ids import new_id
from services.plumbing.outbox import Outbox
from services.plumbing.telemetry import continuing_trace

CASE_CLOSED_ALL_COURTS = CASE_CLOSED.subject.filter()

Decide = Callable[[v.VehicleControl, datetime], v.Result]


@dataclass
class VehicleControlHandlers:
    db: Database
    outbox: Outbox
    courts: CourtCatalog
    agencies: AgencyCatalog
    policy: v.VehicleControlPolicy = field(default_factory=v.VehicleControlPolicy)
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar.default)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    id_factory: Callable[[], str] = new_id

    # --- creating ------------------------------------------------------------------------------

    async def create(self, command: v.CreateVehicleControl, court_id: str, request: RequestKey | None = None) -> StoredControl:
        """Puts a vehicle under control as `court_id`; a retry of the same request returns the first answer."""
        if command.parent != f"courts/{court_id}":
            raise PermissionDenied(
                f"courts/{court_id} cannot act for {command.parent}",
                reason="NOT_CONTROLLING_COURT",
                metadata={"parent": command.parent, "court": f"courts/{court_id}"},
            )

        async def write(conn: AsyncConnection) -> StoredControl:
            return await self._insert(conn, command)

        try:
            created = await once_async(self.db, request, write, lambda s: s.control.name, store.control_by_name)
        except IntegrityError as error:
            if not _live_vehicle_conflict(error):
                raise
            # Another replica's create of the same vehicle committed between our check and insert.
            raise AlreadyExists(
                "the vehicle is already under control", reason="VEHICLE_ALREADY_CONTROLLED", metadata={"parent": command.parent}
            ) from error
        self.outbox.notify()
        return created

    async def _insert(self, conn: AsyncConnection, command: v.CreateVehicleControl) -> StoredControl:
        # The case is read on the writing connection, so the checks and the write commit together.
        facts = await self._case_facts(conn, command.case)
        control, events = v.create_control(
            command, self.courts, self.agencies, facts, self.policy, self.clock(), control_id=self.id_factory()
        )
        vehicle = control.vehicle
        if existing := await store.live_controls_of_vehicle(conn, control.court_id, vehicle.plate, vehicle.vin):
            other = existing[0]
            raise AlreadyExists(
                f"the vehicle is already under control by {other.control.name}",
                reason="VEHICLE_ALREADY_CONTROLLED",
                metadata={"vehicle_control": other.control.name},
            )
        seq = await store.insert_control(conn, control)
        await self.outbox.add(conn, self.messages(events))
        return StoredControl(seq, control)

    async def _case_facts(self, conn: AsyncConnection, case_name: str) -> v.CaseFacts | None:
        replica = await replica_of(conn, case_name)
        if replica is None:
            return None
        respondents = tuple(r["display_name"] for r in json.loads(replica["respondents"] or "[]"))
        return v.CaseFacts(replica["court_id"], respondents, closed=await store.is_case_closed(conn, case_name))

    # --- reading -------------------------------------------------------------------------------

    async def get(self, name: str, principal: Principal) -> StoredControl:
        async with self.db.read() as conn:
            stored = await store.control_by_name(conn, name)
        if stored is None or not may_read(principal, stored.control, self.courts):
            raise NotFound("vehicle control", name)
        return stored

    async def list(self, query: ControlQuery, after_seq: int, limit: int) -> list[StoredControl]:
        async with self.db.read() as conn:
            return await store.list_controls(conn, query, after_seq, limit)

    # --- custom methods ------------------------------------------------------------------------

    async def lift(self, name: str, court_id: str, command: v.LiftControl, request: RequestKey | None = None) -> StoredControl:
        principal = Principal(PrincipalKind.COURT, court_id)
        return await self._update(name, principal, request, lambda c, now: v.lift(c, court_id, command, now), "lift")

    async def record_step(
        self, name: str, court_id: str, command: v.RecordStep, request: RequestKey | None = None
    ) -> StoredControl:
        principal = Principal(PrincipalKind.COURT, court_id)
        decide: Decide = lambda c, now: v.record_step(c, court_id, command, self.policy, now)  # noqa: E731
        return await self._update(name, principal, request, decide, "record_step")

    async def report_sighting(
        self, name: str, agency_id: str, command: v.ReportSighting, request: RequestKey | None = None
    ) -> StoredControl:
        principal = Principal(PrincipalKind.AGENCY, agency_id)
        decide: Decide = lambda c, now: v.report_sighting(c, agency_id, command, self.policy, now)  # noqa: E731
        return await self._update(name, principal, request, decide, "report_sighting")

    async def report_seizure(
        self, name: str, agency_id: str, command: v.ReportSeizure, request: RequestKey | None = None
    ) -> StoredControl:
        principal = Principal(PrincipalKind.AGENCY, agency_id)
        decide: Decide = lambda c, now: v.report_seizure(c, agency_id, command, self.policy, self.calendar, now)  # noqa: E731
        return await self._update(name, principal, request, decide, "report_seizure")

    async def _update(
        self, name: str, principal: Principal, request: RequestKey | None, decide: Decide, operation: str
    ) -> StoredControl:
        stored = await self._load_for(name, principal)
        if await self._applied_before(request):
            return stored  # a retry of an applied request
        with in_control_trace(operation, stored.control, stored.traceparent):
            updated, events = decide(stored.control, self.clock())
            try:
                await self.commit(stored, updated, events, request)
            except (Aborted, IntegrityError):
                # Two copies of one request raced: the loser answers like a later retry would.
                if await self._applied_before(request):
                    return await self._load_for(name, principal)
                raise
        return StoredControl(stored.seq, updated, stored.traceparent)

    async def _applied_before(self, request: RequestKey | None) -> bool:
        if request is None:
            return False
        async with self.db.read() as conn:
            return await conn.run_sync(earlier_resource, request) is not None

    async def _load_for(self, name: str, principal: Principal) -> StoredControl:
        async with self.db.read() as conn:
            stored = await store.control_by_name(conn, name)
        if stored is None or not (may_act(principal, stored.control) or may_read(principal, stored.control, self.courts)):
            raise NotFound("vehicle control", name)
        if not may_act(principal, stored.control):  # e.g. a superior court: it supervises, it does not act
            raise PermissionDenied(
                f"{principal.name} may read {name} but not act on it", reason="NOT_CONTROLLING_PARTY", metadata={"control": name}
            )
        return stored

    async def commit(
        self, stored: StoredControl, updated: v.VehicleControl, events: list[v.VehicleEvent], request: RequestKey | None = None
    ) -> None:
        async with self.db.transaction() as conn:
            await conn.run_sync(record, request, stored.control.name)
            await self.write(conn, stored, updated, events)
        self.outbox.notify()

    async def write(
        self,
        conn: AsyncConnection,
        stored: StoredControl,
        updated: v.VehicleControl,
        events: list[v.VehicleEvent],
    ) -> None:
        written = await store.update_control(conn, updated, expected_version=stored.control.version)
        if not written:
            raise Aborted(
                f"{updated.name} changed while the request was applied; read it again and retry",
                reason="VERSION_MISMATCH",
                metadata={"vehicle_control": updated.name, "expected_version": str(stored.control.version)},
            )
        await self.outbox.add(conn, self.messages(events))

    # --- the case was closed (consumer of case.closed) ----------------------------------------

    async def apply_case_closed(self, conn: AsyncConnection, event: ReceivedEvent) -> None:
        """Ends every control of the case that has not ended, in the consumer's transaction."""
        closed = CASE_CLOSED.parse(event.data)
        case = closed.case
        now = self.clock()
        await store.record_closed_case(conn, case.name, now)
        reason = case.closure.reason
        note = f"case {case.case_number} closed" + (f": {reason}" if reason else "")
        for stored in await store.live_controls_of_case(conn, case.name):
            with in_control_trace("close_for_case", stored.control, stored.traceparent, kind=SpanKind.CONSUMER):
                updated, events = v.close_for_case(stored.control, now, note[: v.MAX_TEXT])
                await self.write(conn, stored, updated, events)
        self.outbox.notify()  # early wake-up; the relay's poll picks the rows up after commit anyway

    # --- events --------------------------------------------------------------------------------

    def messages(self, events: list[v.VehicleEvent]) -> list[Event]:
        return [message for event in events for message in self._messages(event)]

    def _messages(self, event: v.VehicleEvent) -> list[Event]:
        c = event.control
        proto = control_to_proto(c, self.policy)
        if isinstance(event, v.ControlCreated):
            added = vehicle_events_pb2.WatchListEntryAdded(vehicle_control=proto)
            created = vehicle_events_pb2.VehicleControlCreated(vehicle_control=proto)
            return [_court_event(VEHICLE_CONTROL_CREATED, c, created), *_agency_events(WATCHLIST_ENTRY_ADDED, c, added)]
        if isinstance(event, v.VehicleSighted):
            payload: Any = vehicle_events_pb2.VehicleSighted(vehicle_control=proto, sighting=sighting_to_proto(event.sighting))
            return [_court_event(VEHICLE_SIGHTED, c, payload)]
        if isinstance(event, v.VehicleSeized):
            seized = vehicle_events_pb2.VehicleSeized(vehicle_control=proto)
            return [_court_event(VEHICLE_SEIZED, c, seized), *self._removed(c, proto)]
        if isinstance(event, v.StepRecorded):
            payload = vehicle_events_pb2.PostSeizureStepRecorded(vehicle_control=proto, step=step_to_proto(event.record))
            return [_court_event(VEHICLE_STEP_RECORDED, c, payload)]
        if isinstance(event, v.TargetMissed):
            payload = vehicle_events_pb2.PostSeizureTargetMissed(vehicle_control=proto)
            return [_court_event(VEHICLE_TARGET_MISSED, c, payload)]
        ended = _court_event(VEHICLE_CONTROL_ENDED[c.state], c, vehicle_events_pb2.VehicleControlEnded(vehicle_control=proto))
        return [ended, *(self._removed(c, proto) if event.was_on_watch_list else [])]

    def _removed(self, c: v.VehicleControl, proto: Any) -> list[Event]:
        return _agency_events(WATCHLIST_ENTRY_REMOVED, c, vehicle_events_pb2.WatchListEntryRemoved(vehicle_control=proto))


def _court_event(kind: EventType, c: v.VehicleControl, payload: Any) -> Event:
    """`rogatory.v1.vehicle.{court}.{verb}`: the controlling court subscribes to `vehicle.{court}.>`."""
    return kind.event(payload, occurred_at=c.updated_at, court=c.court_id)


def _agency_events(kind: EventType, c: v.VehicleControl, payload: Any) -> list[Event]:
    """`rogatory.v1.watchlist.{agency}.{court}.{verb}`, one per agency: an agency subscribes to `watchlist.{agency}.>`."""
    return [kind.event(payload, occurred_at=c.updated_at, agency=a, court=c.court_id) for a in c.agency_ids]


def control_attributes(control: v.VehicleControl) -> dict[str, str]:
    """The same as the relay's and consumers' spans read from an event (services/contract/span_attributes.py)."""
    return {VEHICLE_CONTROL_NAME: control.name, CASE_NAME: control.case_name, COURT: control.court_id}


@contextmanager
def in_control_trace(
    operation: str, control: v.VehicleControl, traceparent: str, kind: SpanKind = SpanKind.INTERNAL
) -> Iterator[None]:
    """Runs a write on `control` in a span of the control's trace, linked both ways to the caller's span."""
    with continuing_trace(f"vehicle_control.{operation}", control_attributes(control), traceparent, kind):
        yield


def may_read(principal: Principal, control: v.VehicleControl, courts: CourtCatalog) -> bool:
    """The controlling court, its superior courts (they supervise) and admins; an addressed
    agency while the vehicle is on the watch list."""
    if principal.kind is PrincipalKind.ADMIN:
        return True
    if principal.kind is PrincipalKind.COURT:
        return principal.id == control.court_id or (
            principal.id in courts and courts.is_superior_of(principal.id, control.court_id)
        )
    return principal.id in control.agency_ids and control.on_watch_list


def may_act(principal: Principal, control: v.VehicleControl) -> bool:
    """Courts act on their own controls, agencies on those addressed to them (the domain then
    checks the state, e.g. NOT_ON_WATCH_LIST)."""
    if principal.kind is PrincipalKind.COURT:
        return principal.id == control.court_id
    return principal.kind is PrincipalKind.AGENCY and principal.id in control.agency_ids


def _live_vehicle_conflict(error: IntegrityError) -> bool:
    """A violation of ux_vehicle_control_live_plate / _vin (tables.py): PostgreSQL names the
    index; SQLite names the columns, and no other unique key of the table has court_id."""
    message = str(error.orig)
    return "ux_vehicle_control_live" in message or "vehicle_control.court_id" in message
