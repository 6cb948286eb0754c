"""Vehicle-control command handlers: the same code serves gRPC, the scanner and the
`case.closed` consumer.

Every write is one unit of the write door (services/plumbing/unit_of_work.py) on the control
aggregate (services/plumbing/aggregate.py, `store.TABLE`): read the control, let the domain
decide (assistance/vehicles.py), then write in the same transaction the row (`UPDATE … WHERE
version = :old`; zero rows → ABORTED VERSION_MISMATCH) and emit the events.

Events: the court's own on `rogatory.v1.vehicle.{court}.{verb}`, and one copy per addressed
agency on `rogatory.v1.watchlist.{agency}.{court}.added|removed` when the watch list changes,
so each traffic-police unit subscribes to its own subject alone.

Who may see a control: the controlling court and admins always; an addressed agency while the
vehicle is on the watch list. Anyone else gets NOT_FOUND, for the custom methods too (as for
delegations), so no call reveals that a control exists.

Idempotency (AIP-155, services/plumbing/idempotency.py, applied by the write door): a
request_id is scoped to the caller, the method and the control; a retry returns the control
as it is now, with no second event.

One control, one trace: the call that creates a control starts its trace, stored with the
row; every later write — an agency's report, a court's step, the scanner, case closing — runs
in a span that continues that context and links both ways to the call that caused it, so its
outbox rows (and the relay's and consumers' spans) land in the control's trace.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opentelemetry.trace import SpanKind
from rogatory.events.v1 import vehicle_events_pb2
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from assistance import vehicles as v
from delegation.calendar import WorkingCalendar
from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from registry.errors import AlreadyExists, NotFound, PermissionDenied
from services.assistance.vehicles import store
from services.assistance.vehicles.messages import control_to_proto, sighting_to_proto, step_to_proto
from services.assistance.vehicles.store import ControlQuery, StoredControl
from services.contract.case_replica import replica_row
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
from services.plumbing.aggregate import Aggregates
from services.plumbing.auth import Principal, PrincipalKind
from services.plumbing.db import Database
from services.plumbing.events import Event, EventType, ReceivedEvent
from services.plumbing.idempotency import RequestKey
from services.plumbing.ids import new_id
from services.plumbing.unit_of_work import Reader, Tx, Writer

CASE_CLOSED_ALL_COURTS = CASE_CLOSED.subject.filter()

Decide = Callable[[v.VehicleControl, datetime], v.Result]


@dataclass
class VehicleControlHandlers:
    writer: Writer
    reader: Reader
    courts: CourtCatalog
    agencies: AgencyCatalog
    policy: v.VehicleControlPolicy = field(default_factory=v.VehicleControlPolicy)
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar.default)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    id_factory: Callable[[], str] = new_id
    #: The control aggregate's commands and reads, through the write and read doors.
    controls: Aggregates[v.VehicleControl, StoredControl] = field(init=False)

    def __post_init__(self) -> None:
        self.controls = Aggregates(
            self.writer, self.reader, store.TABLE, "vehicle_control", control_attributes, _control_of, _traceparent_of
        )

    @property
    def db(self) -> Database:
        """The service's database, for tests and tools that look at its rows."""
        return self.writer.db

    # --- creating ------------------------------------------------------------------------------

    async def create(self, command: v.CreateVehicleControl, court_id: str, request: RequestKey | None = None) -> StoredControl:
        """Puts a vehicle under control as `court_id`; a retry of the same request returns the first answer."""
        if command.parent != f"courts/{court_id}":
            raise PermissionDenied(
                f"courts/{court_id} cannot act for {command.parent}",
                reason="NOT_CONTROLLING_COURT",
                metadata={"parent": command.parent, "court": f"courts/{court_id}"},
            )
        try:
            # This call starts the control's trace.
            return await self.controls.create(lambda tx: self._insert(tx, command), request=request)
        except IntegrityError as error:
            if not _live_vehicle_conflict(error):
                raise
            # Another replica's create of the same vehicle committed between our check and insert.
            raise AlreadyExists(
                "the vehicle is already under control", reason="VEHICLE_ALREADY_CONTROLLED", metadata={"parent": command.parent}
            ) from error

    def _insert(self, tx: Tx, command: v.CreateVehicleControl) -> StoredControl:
        # The case is read in the writing transaction, so the checks and the write commit together.
        conn = tx.connection
        facts = self._case_facts(conn, command.case)
        control, events = v.create_control(
            command, self.courts, self.agencies, facts, self.policy, self.clock(), control_id=self.id_factory()
        )
        vehicle = control.vehicle
        if existing := store.live_controls_of_vehicle(conn, control.court_id, vehicle.plate, vehicle.vin):
            other = existing[0]
            raise AlreadyExists(
                f"the vehicle is already under control by {other.control.name}",
                reason="VEHICLE_ALREADY_CONTROLLED",
                metadata={"vehicle_control": other.control.name},
            )
        seq = store.insert_control(conn, control)
        tx.emit_all(self.messages(events))
        return StoredControl(seq, control)

    def _case_facts(self, conn: Connection, case_name: str) -> v.CaseFacts | None:
        replica = replica_row(conn, case_name)
        if replica is None:
            return None
        respondents = tuple(r["display_name"] for r in json.loads(replica["respondents"] or "[]"))
        return v.CaseFacts(replica["court_id"], respondents, closed=store.is_case_closed(conn, case_name))

    # --- reading -------------------------------------------------------------------------------

    async def get(self, name: str, principal: Principal) -> StoredControl:
        stored = await self.controls.get(name)
        if stored is None or not may_read(principal, stored.control, self.courts):
            raise NotFound("vehicle control", name)
        return stored

    async def list(self, query: ControlQuery, after_seq: int, limit: int) -> list[StoredControl]:
        return await self.reader.run(lambda conn: store.list_controls(conn, query, after_seq, limit))

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
        """One unit: load the control as `principal` may act on it, decide, write; a retry of an
        applied request gets the control as it is now (checked the same way)."""

        def load(conn: Connection, name: str) -> StoredControl:
            return self._load_for(store.control_by_name(conn, name), name, principal)

        def work(tx: Tx, stored: StoredControl) -> StoredControl:
            updated, events = decide(stored.control, self.clock())
            self.write(tx, stored, updated, events)
            return StoredControl(stored.seq, updated, stored.traceparent)

        return await self.controls.change(name, operation, work, request=request, load=load)

    def _load_for(self, stored: StoredControl | None, name: str, principal: Principal) -> StoredControl:
        if stored is None or not (may_act(principal, stored.control) or may_read(principal, stored.control, self.courts)):
            raise NotFound("vehicle control", name)
        if not may_act(principal, stored.control):  # e.g. a superior court: it supervises, it does not act
            raise PermissionDenied(
                f"{principal.name} may read {name} but not act on it", reason="NOT_CONTROLLING_PARTY", metadata={"control": name}
            )
        return stored

    def write(self, tx: Tx, stored: StoredControl, updated: v.VehicleControl, events: list[v.VehicleEvent]) -> None:
        """Writes the next version (version-guarded) and emits its events, in the unit `tx`."""
        store.update_control(tx.connection, updated, expected_version=stored.control.version)
        tx.emit_all(self.messages(events))

    # --- the case was closed (consumer of case.closed) ----------------------------------------

    def apply_case_closed(self, tx: Tx, event: ReceivedEvent) -> None:
        """Ends every control of the case that has not ended, as a unit of the write door."""
        closed = CASE_CLOSED.parse(event.data)
        case = closed.case
        now = self.clock()
        conn = tx.connection
        store.record_closed_case(conn, case.name, now)
        reason = case.closure.reason
        note = f"case {case.case_number} closed" + (f": {reason}" if reason else "")
        for stored in store.live_controls_of_case(conn, case.name):
            with self.controls.in_trace("close_for_case", stored, kind=SpanKind.CONSUMER):
                updated, events = v.close_for_case(stored.control, now, note[: v.MAX_TEXT])
                self.write(tx, stored, updated, events)

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


def _control_of(stored: StoredControl) -> v.VehicleControl:
    return stored.control


def _traceparent_of(stored: StoredControl) -> str:
    return stored.traceparent
