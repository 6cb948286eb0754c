"""Delegation command handlers: the same code serves gRPC, the CLI and event-driven calls.

Every write is one unit of the write door (services/plumbing/unit_of_work.py) on the
delegation aggregate (services/plumbing/aggregate.py): read the delegation, let the domain
decide (delegation.matters, delegation.lifecycle; schedule.py for deadlines), then write in
the same transaction the row (`UPDATE … WHERE version = :old`, zero rows → ABORTED
VERSION_MISMATCH), the timeline entry with the current trace id, the deadline rows, and emit
the events. Urging and extending a
deadline change the resource too (urge_count, deadlines), so they bump the version like the
lifecycle methods: a concurrent writer that read the older version is ABORTED rather than
overwriting them, and re-reads.

Who may see a delegation: its two courts, a superior court of either, and admins. Anyone
else gets NOT_FOUND, for the custom methods too, so no call reveals that a matter exists.

Idempotency (AIP-155, services/plumbing/idempotency.py, applied by the write door): a
request_id is scoped to the calling court, the method and the delegation; a retry of an
applied custom method returns the delegation as it is now, with no second transition, event
or urge.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message
from rogatory.events.v1 import events_pb2
from sqlalchemy.engine import Connection

from delegation import lifecycle
from delegation.calendar import WorkingCalendar
from delegation.deadlines import RuleTable, Step
from delegation.details import MAX_TEXT_LENGTH
from delegation.lifecycle import Actor, LifecycleEvent, check_handed_over_seizures, court_roles, is_final
from delegation.matters import CreateDelegation, Delegation, create_delegation
from registry.courts import CourtCatalog
from registry.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Violations,
)
from registry.text import check_text
from services.contract.case_replica import replica_row
from services.contract.events import (
    DELEGATION_DEADLINE_EXTENDED,
    DELEGATION_SUBMITTED,
    DELEGATION_TRANSITIONED,
    DELEGATION_UPDATED,
    DELEGATION_URGED,
)
from services.delegation import store
from services.delegation.messages import deadline_to_proto, delegation_to_proto, entry_to_proto
from services.delegation.schedule import DeadlineBook, TrackedDeadline, check_extension, ordered
from services.delegation.seizure_replica import known_seizures, record_handover
from services.delegation.store import DelegationQuery, StoredDelegation, TimelineEntry
from services.delegation.tracing import matter_attributes
from services.plumbing.aggregate import NOT_READ_BACK, Aggregates
from services.plumbing.auth import Principal, PrincipalKind
from services.plumbing.db import Database
from services.plumbing.events import Event, EventType
from services.plumbing.idempotency import RequestKey
from services.plumbing.ids import new_id
from services.plumbing.telemetry import current_trace_id
from services.plumbing.unit_of_work import Reader, Tx, Writer

SUBMIT, URGE, EXTEND_DEADLINE = "SUBMIT", "URGE", "EXTEND_DEADLINE"

#: A custom method of delegation.lifecycle: (delegation, command, actor, now) → (next version, events).
Decide = Callable[[Delegation, Any, Actor, datetime], lifecycle.Result]


def matter_event(kind: EventType, delegation: Delegation, payload: Message, at: datetime) -> Event:
    """An event about a matter, on `rogatory.v1.delegation.{requesting}.{entrusted}.{verb}`: each court can subscribe to its side."""
    return kind.event(
        payload, occurred_at=at, requesting_court=delegation.requesting_court_id, entrusted_court=delegation.entrusted_court_id
    )


def officer_of(delegation: Delegation, court_id: str) -> str:
    """The officer in charge at `court_id`'s side: who acts when that court calls."""
    if court_id == delegation.entrusted_court_id:
        officer = delegation.entrusted_officer
    elif court_id == delegation.requesting_court_id:
        officer = delegation.requesting_officer
    else:
        officer = None
    return officer.name if officer else ""


@dataclass(frozen=True)
class Change:
    """Everything one write commits together."""

    delegation: Delegation  # the next version
    entries: tuple[TimelineEntry, ...]
    deadlines: tuple[TrackedDeadline, ...]  # all of them, after the change
    changed_steps: frozenset[Step]  # the deadline rows to write
    events: tuple[Event, ...]
    urge_count: int
    #: The API message of the next version, when an event already carries it (see StoredDelegation.rendered).
    rendered: Any = None


MakeChange = Callable[[StoredDelegation, datetime], Change]


@dataclass
class DelegationHandlers:
    writer: Writer
    reader: Reader
    courts: CourtCatalog
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    id_factory: Callable[[], str] = new_id  # injected like the clock, so tests can fix ids
    rules: RuleTable = field(default_factory=RuleTable.default)
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar.default)
    book: DeadlineBook = field(init=False)
    #: The delegation aggregate's commands and reads, through the write and read doors.
    matters: Aggregates[Delegation, StoredDelegation] = field(init=False)
    #: For elapsed working days: a timeline must answer even across a year with no notice yet.
    elapsed_calendar: WorkingCalendar = field(init=False)

    def __post_init__(self) -> None:
        self.book = DeadlineBook(self.rules, self.calendar, self.courts)
        self.matters = Aggregates(
            self.writer, self.reader, store.TABLE, "delegation", matter_attributes, _delegation_of, _traceparent_of
        )
        self.elapsed_calendar = self.calendar.with_weekend_fallback()

    @property
    def db(self) -> Database:
        """The service's database, for tests and tools that look at its rows."""
        return self.writer.db

    # --- creating ------------------------------------------------------------------------------

    async def create_delegation(
        self,
        command: CreateDelegation,
        court_id: str,
        request: RequestKey | None = None,
        handed_over_seizures: tuple[str, ...] = (),
    ) -> StoredDelegation:
        """Submits a delegation as `court_id`; a retry of the same request returns the first answer.

        `handed_over_seizures` are seizures handed over with the matter: each must have at
        least a month of its term left (委托执行规定 art. 6), judged on the seizure replica."""
        if command.parent != f"courts/{court_id}":
            raise PermissionDenied(
                f"courts/{court_id} cannot delegate on behalf of {command.parent}",
                reason="NOT_REQUESTING_COURT",
                metadata={"parent": command.parent, "court": f"courts/{court_id}"},
            )

        # This call starts the matter's trace.
        return await self.matters.create(lambda tx: self._submit(tx, command, handed_over_seizures), request=request)

    def _submit(self, tx: Tx, command: CreateDelegation, handed_over: tuple[str, ...] = ()) -> StoredDelegation:
        # The case and the seizures are looked up in the writing transaction, so the checks and
        # the write commit together; the unit then only inserts, so the delegations created
        # meanwhile are written with one statement per table (services/plumbing/unit_of_work.py).
        conn = tx.snapshot
        replica = replica_row(conn, command.case)
        delegation = self._created(command, replica["court_id"] if replica else None)
        seizures = known_seizures(conn, handed_over)
        check_handed_over_seizures(handed_over, seizures, delegation.requesting_court_id, self.clock())
        delegation = replace(delegation, case_number=replica["case_number"] if replica else "")
        deadlines = self.book.on_submit(delegation)
        store.add_delegation(tx, delegation, [_submit_entry(delegation)], deadlines)
        record_handover(tx, delegation.name, (seizures[name] for name in handed_over))
        rendered = delegation_to_proto(delegation, deadlines)
        tx.emit(_submitted_event(delegation, rendered))
        return StoredDelegation(NOT_READ_BACK, delegation, tuple(deadlines), rendered=rendered)

    def _created(self, command: CreateDelegation, case_court_id: str | None) -> Delegation:
        """The domain's delegation; the service also requires details and an officer, which the
        domain leaves optional for clients that predate them, reported with the domain's violations."""
        missing = _missing_parts(command)
        try:
            delegation, _ = create_delegation(command, self.courts, case_court_id, self.clock(), delegation_id=self.id_factory())
        except InvalidArgument as error:
            raise InvalidArgument.of([*error.violations, *missing]) from None
        if missing:
            raise InvalidArgument.of(missing)
        return delegation

    # --- reading -------------------------------------------------------------------------------

    async def get_delegation(self, name: str, principal: Principal) -> StoredDelegation:
        stored = await self.matters.get(name)
        if stored is None or not self.may_read(principal, stored.delegation):
            raise NotFound("delegation", name)
        return stored

    async def list_delegations(
        self, query: DelegationQuery, after_seq: int, limit: int, principal: Principal
    ) -> list[StoredDelegation]:
        query = replace(query, visible_to=self._visible_courts(principal))
        return await self.reader.run(lambda conn: store.list_delegations(conn, query, after_seq, limit))

    async def get_timeline(self, name: str, principal: Principal) -> tuple[StoredDelegation, list[TimelineEntry]]:
        def read(conn: Connection) -> tuple[StoredDelegation, list[TimelineEntry]]:
            stored = store.delegation_by_name(conn, name)
            if stored is None or not self.may_read(principal, stored.delegation):
                raise NotFound("delegation", name)
            return stored, store.entries_of(conn, name)

        return await self.reader.run(read)

    async def list_overdue(
        self, court_id: str, principal: Principal, after: tuple[datetime, str] | None, limit: int
    ) -> list[tuple[StoredDelegation, datetime]]:
        """Matters entrusted to `court_id` or a subordinate court with a missed deadline, longest
        overdue first, each with its earliest missed due time (the page cursor)."""
        if court_id not in self.courts:
            raise NotFound("court", f"courts/{court_id}")
        self._check_supervises(principal, court_id)
        supervised = [court_id, *(c.id for c in self.courts.subordinates(court_id))]
        now = self.clock()

        def read(conn: Connection) -> list[tuple[StoredDelegation, datetime]]:
            found = store.overdue_delegation_names(conn, supervised, now, after, limit)
            stored = {s.delegation.name: s for s in store.delegations_by_names(conn, [name for name, _ in found])}
            return [(stored[name], due) for name, due in found if name in stored]

        return await self.reader.run(read)

    def may_read(self, principal: Principal, delegation: Delegation) -> bool:
        if principal.kind is PrincipalKind.ADMIN:
            return True
        return principal.kind is PrincipalKind.COURT and bool(court_roles(delegation, principal.id, self.courts))

    def _visible_courts(self, principal: Principal) -> frozenset[str] | None:
        """The courts whose sent or received matters `principal` may list; None: all."""
        if principal.kind is PrincipalKind.ADMIN:
            return None
        if principal.kind is not PrincipalKind.COURT:
            return frozenset()
        if principal.id not in self.courts:
            return frozenset({principal.id})
        return frozenset({principal.id, *(c.id for c in self.courts.subordinates(principal.id))})

    def _check_supervises(self, principal: Principal, court_id: str) -> None:
        if principal.kind is PrincipalKind.ADMIN:
            return
        caller = principal.id if principal.kind is PrincipalKind.COURT else ""
        if caller == court_id or (caller in self.courts and self.courts.is_superior_of(caller, court_id)):
            return
        raise PermissionDenied(
            f"only courts/{court_id}, its superior courts and admins may list its overdue matters",
            reason="NOT_SUPERVISING_COURT",
            metadata={"court": f"courts/{court_id}", "caller": principal.name},
        )

    # --- lifecycle (delegation.lifecycle) ---------------------------------------------------------

    async def acknowledge(
        self, name: str, court_id: str, command: lifecycle.AcknowledgeDelegation, request: RequestKey | None = None
    ) -> StoredDelegation:
        # The acknowledging officer is the one the command names, not one on file yet.
        return await self._transition(name, court_id, request, lifecycle.acknowledge, command, officer=command.officer.name)

    async def start(
        self, name: str, court_id: str, command: lifecycle.StartDelegation, request: RequestKey | None = None
    ) -> StoredDelegation:
        return await self._transition(name, court_id, request, lifecycle.start, command)

    async def complete(
        self, name: str, court_id: str, command: lifecycle.CompleteDelegation, request: RequestKey | None = None
    ) -> StoredDelegation:
        return await self._transition(name, court_id, request, lifecycle.complete, command)

    async def return_for_supplement(
        self, name: str, court_id: str, command: lifecycle.ReturnDelegationForSupplement, request: RequestKey | None = None
    ) -> StoredDelegation:
        return await self._transition(name, court_id, request, lifecycle.return_for_supplement, command)

    async def supplement(
        self, name: str, court_id: str, command: lifecycle.SupplementDelegation, request: RequestKey | None = None
    ) -> StoredDelegation:
        return await self._transition(name, court_id, request, lifecycle.supplement, command)

    async def return_delegation(
        self, name: str, court_id: str, command: lifecycle.ReturnDelegation, request: RequestKey | None = None
    ) -> StoredDelegation:
        decide = functools.partial(lifecycle.return_delegation, courts=self.courts)
        return await self._transition(name, court_id, request, decide, command)

    async def withdraw(
        self, name: str, court_id: str, command: lifecycle.WithdrawDelegation, request: RequestKey | None = None
    ) -> StoredDelegation:
        return await self._transition(name, court_id, request, lifecycle.withdraw, command)

    async def _transition(
        self, name: str, court_id: str, request: RequestKey | None, decide: Decide, command: Any, *, officer: str | None = None
    ) -> StoredDelegation:
        """Runs the custom method `decide(delegation, command, actor, now)` of delegation.lifecycle."""

        def change(stored: StoredDelegation, now: datetime) -> Change:
            actor = Actor(court_id, officer_of(stored.delegation, court_id) if officer is None else officer)
            updated, events = decide(stored.delegation, command, actor, now)
            return self.lifecycle_change(stored, updated, events)

        return await self._update(name, court_id, request, change, operation=_operation_of(decide))

    def lifecycle_change(self, stored: StoredDelegation, updated: Delegation, events: list[LifecycleEvent]) -> Change:
        transition = updated.history[-1]
        current = {d.step: d for d in stored.deadlines}
        changed = self.book.changes_for(transition.action, transition.at, updated, current)
        deadlines = tuple(ordered({**current, **changed}.values()))
        entry = TimelineEntry(
            str(transition.action),
            transition.from_state,
            transition.to_state,
            transition.actor_court_id,
            transition.officer,
            transition.at,
            reason_code=transition.reason_code,
            note=transition.note,
            trace_id=current_trace_id(),
        )
        messages = tuple(self._transitioned(e, entry, deadlines, stored) for e in events)
        # The usual single event carries the next version as the reply shows it.
        rendered = messages[0].payload.delegation if len(events) == 1 and events[0].delegation is updated else None
        return Change(updated, (entry,), deadlines, frozenset(changed), messages, stored.urge_count, rendered)

    def _transitioned(
        self, event: LifecycleEvent, entry: TimelineEntry, deadlines: tuple[TrackedDeadline, ...], stored: StoredDelegation
    ) -> Event:
        delegation = delegation_to_proto(
            event.delegation, deadlines, urge_count=stored.urge_count, escalated_at=stored.escalated_at
        )
        payload = events_pb2.DelegationTransitioned(
            delegation=delegation, transition=entry_to_proto(entry, event.delegation.created_at, self.elapsed_calendar)
        )
        return matter_event(DELEGATION_TRANSITIONED[event.transition.action], event.delegation, payload, entry.at)

    # --- updating the requesting court's fields (AIP-134) ------------------------------------------

    async def update(
        self, name: str, court_id: str, command: lifecycle.UpdateDelegation, request: RequestKey | None = None
    ) -> StoredDelegation:
        """The requesting court changes the fields `command.paths` names (delegation.lifecycle.update)."""
        return await self._update(
            name, court_id, request, lambda stored, now: self._update_change(stored, court_id, command, now), operation="update"
        )

    def _update_change(
        self, stored: StoredDelegation, court_id: str, command: lifecycle.UpdateDelegation, now: datetime
    ) -> Change:
        updated = lifecycle.update(stored.delegation, command, Actor(court_id, officer_of(stored.delegation, court_id)), now)
        delegation = delegation_to_proto(
            updated, stored.deadlines, urge_count=stored.urge_count, escalated_at=stored.escalated_at
        )
        payload = events_pb2.DelegationUpdated(delegation=delegation)
        payload.update_mask.paths.extend(command.paths)
        event = matter_event(DELEGATION_UPDATED, updated, payload, now)
        return Change(updated, (), stored.deadlines, frozenset(), (event,), stored.urge_count, delegation)

    # --- urging and extending ---------------------------------------------------------------------

    async def urge(self, name: str, court_id: str, note: str = "", request: RequestKey | None = None) -> StoredDelegation:
        """The requesting court urges (催办) the entrusted court, in any state that is not final."""
        return await self._update(
            name, court_id, request, lambda stored, now: self._urge_change(stored, court_id, note, now), operation="urge"
        )

    def _urge_change(self, stored: StoredDelegation, court_id: str, note: str, now: datetime) -> Change:
        d = stored.delegation
        if court_id != d.requesting_court_id:
            raise PermissionDenied(
                f"only the requesting court may urge {d.name}",
                reason="NOT_REQUESTING_COURT",
                metadata={"delegation": d.name, "action": URGE, "court": f"courts/{court_id}"},
            )
        note = _checked_note(note)
        if is_final(d.state):
            raise FailedPrecondition(
                f"cannot urge {d.name}: it is {d.state}",
                reason="INVALID_TRANSITION",
                metadata={"delegation": d.name, "state": str(d.state), "action": URGE},
            )
        updated = replace(d, version=d.version + 1, updated_at=now)
        count = stored.urge_count + 1
        officer = officer_of(d, court_id)
        entry = TimelineEntry(URGE, d.state, d.state, court_id, officer, now, note=note, trace_id=current_trace_id())
        delegation = delegation_to_proto(updated, stored.deadlines, urge_count=count, escalated_at=stored.escalated_at)
        payload = events_pb2.DelegationUrged(delegation=delegation, automatic=False, note=note)
        event = matter_event(DELEGATION_URGED, d, payload, now)
        return Change(updated, (entry,), stored.deadlines, frozenset(), (event,), count)

    async def extend_deadline(
        self, name: str, court_id: str, step: str, amount: int, unit: str, reason: str, request: RequestKey | None = None
    ) -> StoredDelegation:
        """A superior court of the entrusted court extends one running deadline (deadlines.extend)."""

        def change(stored: StoredDelegation, now: datetime) -> Change:
            return self._extension_change(stored, court_id, (step, amount, unit, reason), now)

        return await self._update(name, court_id, request, change, operation="extend_deadline")

    def _extension_change(
        self, stored: StoredDelegation, court_id: str, arguments: tuple[str, int, str, str], now: datetime
    ) -> Change:
        d = stored.delegation
        if court_id not in self.courts or not self.courts.is_superior_of(court_id, d.entrusted_court_id):
            raise PermissionDenied(
                f"only a superior court of courts/{d.entrusted_court_id} may extend the deadlines of {d.name}",
                reason="NOT_SUPERIOR_COURT",
                metadata={"delegation": d.name, "court": f"courts/{court_id}"},
            )
        extension = check_extension(*arguments)
        deadline = stored.deadline(extension.step)
        if deadline is None:
            raise FailedPrecondition(
                f"{d.name} has no {extension.step} deadline", reason="DEADLINE_NOT_OPEN", metadata={"step": str(extension.step)}
            )
        extended = self.book.extended(deadline, extension, court_id, now)
        deadlines = tuple(ordered([extended, *(x for x in stored.deadlines if x.step is not extension.step)]))
        updated = replace(d, version=d.version + 1, updated_at=now)
        # The step extended is the entry's reason code; the request names no officer.
        entry = TimelineEntry(
            EXTEND_DEADLINE, d.state, d.state, court_id, "", now, str(extension.step), extension.reason, current_trace_id()
        )
        payload = events_pb2.DelegationDeadlineExtended(
            delegation=delegation_to_proto(updated, deadlines, urge_count=stored.urge_count, escalated_at=stored.escalated_at),
            deadline=deadline_to_proto(extended),
            court=f"courts/{court_id}",
            reason=extension.reason,
        )
        event = matter_event(DELEGATION_DEADLINE_EXTENDED, d, payload, now)
        return Change(updated, (entry,), deadlines, frozenset({extension.step}), (event,), stored.urge_count)

    # --- the write path --------------------------------------------------------------------------

    async def _update(
        self, name: str, court_id: str, request: RequestKey | None, make_change: MakeChange, *, operation: str
    ) -> StoredDelegation:
        """Reads the matter as `court_id` (NOT_FOUND unless a party), decides and writes, as one
        unit of the write door in a span of the matter's trace."""

        def update(tx: Tx, stored: StoredDelegation) -> StoredDelegation:
            return self.write_change(tx, stored, make_change(stored, self.clock()))

        return await self.matters.change(name, operation, update, request=request, load=self._loader(court_id))

    def _loader(self, court_id: str) -> Callable[[Connection, str], StoredDelegation]:
        def load(conn: Connection, name: str) -> StoredDelegation:
            stored = store.delegation_by_name(conn, name)
            if stored is None or not court_roles(stored.delegation, court_id, self.courts):
                raise NotFound("delegation", name)
            return stored

        return load

    def write_change(self, tx: Tx, stored: StoredDelegation, change: Change) -> StoredDelegation:
        """The row (if still at the version read: ABORTED otherwise), its timeline entry,
        deadlines and events, in the unit's transaction."""
        conn = tx.connection
        before = stored.delegation
        store.update_delegation(conn, change.delegation, expected_version=before.version, urge_count=change.urge_count)
        store.append_entries(conn, before.name, change.entries)
        changed = [d for d in change.deadlines if d.step in change.changed_steps]
        store.save_deadlines(conn, change.delegation, changed, existing=(d.step for d in stored.deadlines))
        tx.emit(*change.events)
        return StoredDelegation(
            stored.seq,
            change.delegation,
            change.deadlines,
            change.urge_count,
            stored.escalated_at,
            stored.traceparent,
            rendered=change.rendered,
        )


def _delegation_of(stored: StoredDelegation) -> Delegation:
    return stored.delegation


def _traceparent_of(stored: StoredDelegation) -> str:
    return stored.traceparent


def _operation_of(decide: Decide) -> str:
    """`acknowledge`, `complete`, …: the name of a delegation.lifecycle custom method (or a partial of one)."""
    function = decide.func if isinstance(decide, functools.partial) else decide
    return getattr(function, "__name__", "transition")


def _submit_entry(delegation: Delegation) -> TimelineEntry:
    """Creation is not a lifecycle transition, but the timeline starts with it."""
    officer = delegation.requesting_officer.name if delegation.requesting_officer else ""
    court_id = delegation.requesting_court_id
    return TimelineEntry(SUBMIT, None, delegation.state, court_id, officer, delegation.created_at, trace_id=current_trace_id())


def _submitted_event(delegation: Delegation, rendered: Any) -> Event:
    payload = events_pb2.DelegationSubmitted(delegation=rendered)
    return matter_event(DELEGATION_SUBMITTED, delegation, payload, delegation.created_at)


def _missing_parts(command: CreateDelegation) -> list[FieldViolation]:
    missing = []
    if command.details is None:
        missing.append(
            FieldViolation("delegation.details", f"the details of the {command.matter_kind or 'matter'} kind", "REQUIRED")
        )
    if command.officer is None:
        missing.append(FieldViolation("delegation.officer", "the requesting court's officer and phone", "REQUIRED"))
    return missing


def _checked_note(note: str) -> str:
    violations = Violations()
    note = note.strip()
    check_text(note, "note", violations, max_length=MAX_TEXT_LENGTH, required=False)
    violations.raise_if_any()
    return note
