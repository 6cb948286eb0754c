"""Assistance command handlers: the same code serves gRPC, the CLI and event-driven calls.

Every write is one unit of the write door (services/plumbing/unit_of_work.py) on the notice
aggregate (services/plumbing/aggregate.py), like the delegation service's: read the notice,
let the domain decide (assistance.notices, assistance.notice_lifecycle, assistance.seizures),
then write in the same transaction the row (`UPDATE … WHERE version = :old`, zero rows →
ABORTED VERSION_MISMATCH), the timeline entry with the current trace id, the seizures the step
creates, renews or lifts, the queued notices that move up (轮候), and emit the events.

Who may see a notice or a seizure: its court, its agency and admins. Anyone else gets
NOT_FOUND, for the custom methods too, so no call reveals that a notice exists.

Idempotency (AIP-155, services/plumbing/idempotency.py, applied by the write door): a
request_id is scoped to the caller, the method and the notice; a retry of an applied custom
method returns the notice as it is now.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.message import Message
from rogatory.events.v1 import events_pb2
from sqlalchemy.engine import Connection

from assistance import notice_lifecycle as lifecycle
from assistance import seizures
from assistance.notice_lifecycle import Action, Actor, Party, Transition
from assistance.notices import (
    AssistanceNotice,
    CreateNotice,
    NoticeState,
    ResultKind,
    SeizureEffect,
    asset_class_of,
    create_notice,
)
from assistance.seizures import Seizure
from delegation.calendar import WorkingCalendar
from registry.agencies import AgencyCatalog, AgencyKind
from registry.courts import CourtCatalog
from registry.errors import DomainError, NotFound, PermissionDenied
from services.assistance import store
from services.assistance.messages import entry_to_proto, notice_to_proto, seizure_to_proto
from services.assistance.notice_tracing import notice_attributes
from services.assistance.store import NoticeQuery, SeizureQuery, StoredNotice, StoredSeizure, TimelineEntry
from services.contract.case_replica import replica_row
from services.contract.events import (
    NOTICE_SENT,
    NOTICE_TRANSITIONED,
    SEIZURE_EFFECTIVE,
    SEIZURE_EXPIRING,
    SEIZURE_LAPSED,
    SEIZURE_RELEASED,
    SEIZURE_RENEWED,
)
from services.plumbing.aggregate import NOT_READ_BACK, Aggregates
from services.plumbing.auth import Principal, PrincipalKind
from services.plumbing.db import Database
from services.plumbing.events import Event, EventType
from services.plumbing.idempotency import RequestKey
from services.plumbing.ids import new_id
from services.plumbing.telemetry import current_trace_id
from services.plumbing.unit_of_work import Reader, Tx, Writer

log = logging.getLogger(__name__)

#: Results that put a measure in effect (a QUEUED one waits, NOT_FOUND does nothing).
EFFECTIVE_RESULTS = frozenset({ResultKind.REGISTERED, ResultKind.FROZEN})


def notice_event(kind: EventType, notice: AssistanceNotice, payload: Message, at: datetime) -> Event:
    """An event about a notice, on `rogatory.v1.notice.{court}.{agency}.{verb}`: an agency subscribes to `notice.*.{agency}.>`."""
    return kind.event(payload, occurred_at=at, court=notice.court_id, agency=notice.agency_id)


def actor_of(principal: Principal) -> Actor:
    if principal.kind is PrincipalKind.COURT:
        return Actor(Party.COURT, principal.id)
    if principal.kind is PrincipalKind.AGENCY:
        return Actor(Party.AGENCY, principal.id)
    raise PermissionDenied(f"{principal.name} is neither a court nor an agency", reason="NOT_A_PARTY")


@dataclass
class Work:
    """What one write adds beside the notice row: other rows, entries and events."""

    events: list[Event] = field(default_factory=list)
    entries: list[tuple[str, TimelineEntry]] = field(default_factory=list)


@dataclass
class AssistanceHandlers:
    writer: Writer
    reader: Reader
    courts: CourtCatalog
    agencies: AgencyCatalog
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    id_factory: Callable[[], str] = new_id  # injected like the clock, so tests can fix ids
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar.default)
    #: How long before a seizure's term ends its court and agency are reminded.
    reminder_lead: timedelta = seizures.DEFAULT_REMINDER_LEAD
    #: The notice aggregate's commands and reads, through the write and read doors.
    notices: Aggregates[AssistanceNotice, StoredNotice] = field(init=False)

    def __post_init__(self) -> None:
        self.notices = Aggregates(
            self.writer, self.reader, store.TABLE, "assistance_notice", notice_attributes, _notice_of, _traceparent_of
        )

    @property
    def db(self) -> Database:
        """The service's database, for tests and tools that look at its rows."""
        return self.writer.db

    # --- sending ---------------------------------------------------------------------------------

    async def create_notice(self, command: CreateNotice, court_id: str, request: RequestKey | None = None) -> StoredNotice:
        """Sends a notice as `court_id`; a retry of the same request returns the first answer."""
        if command.parent != f"courts/{court_id}":
            raise PermissionDenied(
                f"courts/{court_id} cannot send notices on behalf of {command.parent}",
                reason="NOT_SENDING_COURT",
                metadata={"parent": command.parent, "court": f"courts/{court_id}"},
            )
        # This call starts the notice's trace.
        return await self.notices.create(lambda tx: self._send(tx, command), request=request)

    def _send(self, tx: Tx, command: CreateNotice) -> StoredNotice:
        # The case and the seizure are read in the writing transaction: checks and write commit
        # together; the unit then only inserts, so the notices sent meanwhile are written with one
        # statement per table (services/plumbing/unit_of_work.py).
        conn = tx.snapshot
        replica = replica_row(conn, command.case)
        respondents = tuple(r["display_name"] for r in json.loads(replica["respondents"])) if replica else ()
        seizure = store.seizure_by_name(conn, command.seizure.strip()) if command.seizure.strip() else None
        notice, _ = create_notice(
            command,
            self.courts,
            self.agencies,
            replica["court_id"] if replica else None,
            self.clock(),
            notice_id=self.id_factory(),
            respondents=respondents,
            seizure=seizure,
        )
        send = Transition(Action.SEND, None, NoticeState.SENT, f"courts/{notice.court_id}", notice.created_at)
        store.add_notice(tx, notice, [TimelineEntry(send, current_trace_id())])
        payload = events_pb2.AssistanceNoticeSent(assistance_notice=notice_to_proto(notice))
        tx.emit(notice_event(NOTICE_SENT, notice, payload, notice.created_at))
        return StoredNotice(NOT_READ_BACK, notice)

    # --- reading -------------------------------------------------------------------------------

    def may_read(self, principal: Principal, court_id: str, agency_id: str) -> bool:
        """The sending court, its superior courts (they supervise), the agency addressed, admins."""
        if principal.kind is PrincipalKind.ADMIN:
            return True
        if principal.kind is PrincipalKind.COURT:
            return principal.id == court_id or self._supervises(principal.id, court_id)
        return principal.id == agency_id

    def _supervises(self, caller_id: str, court_id: str) -> bool:
        return caller_id in self.courts and court_id in self.courts and self.courts.is_superior_of(caller_id, court_id)

    async def get_notice(self, name: str, principal: Principal) -> StoredNotice:
        return await self.reader.run(lambda conn: self._visible_notice(conn, name, principal))

    def _visible_notice(self, conn: Connection, name: str, principal: Principal, *, for_update: bool = False) -> StoredNotice:
        """The notice, if `principal` may see it: NOT_FOUND otherwise, as when there is none.
        `for_update`: its row locked until the unit commits (PostgreSQL), so a change waits for
        another replica's overdue mark (which leaves the version guard as it was) and keeps it."""
        stored = store.notice_for_update(conn, name) if for_update else store.notice_by_name(conn, name)
        if stored is None or not self.may_read(principal, stored.notice.court_id, stored.notice.agency_id):
            raise NotFound("assistance notice", name)
        return stored

    def visible_query(self, court_id: str | None, principal: Principal) -> tuple[str | None, str | None]:
        """(court, agency) a list is restricted to for `principal` asking about `court_id` (None: every court)."""
        if principal.kind is PrincipalKind.ADMIN:
            return court_id, None
        if principal.kind is PrincipalKind.COURT:
            if court_id is not None and court_id != principal.id and self._supervises(principal.id, court_id):
                return court_id, None  # a superior court reads its subordinates' notices
            if court_id not in (None, principal.id):
                raise PermissionDenied(
                    f"courts/{principal.id} may list only its own notices and seizures and those of the courts it supervises",
                    reason="NOT_OWN_COURT",
                    metadata={"parent": f"courts/{court_id}", "caller": principal.name},
                )
            return principal.id, None
        return court_id, principal.id

    async def list_notices(self, query: NoticeQuery, after_seq: int, limit: int, principal: Principal) -> list[StoredNotice]:
        court_id, agency_id = self.visible_query(query.court_id, principal)
        if agency_id is not None:
            if query.agency_id not in (None, agency_id):
                return []
            query = replace(query, agency_id=agency_id)
        query = replace(query, court_id=court_id)
        return await self.reader.run(lambda conn: store.list_notices(conn, query, after_seq, limit))

    async def get_timeline(self, name: str, principal: Principal) -> tuple[StoredNotice, list[Any]]:
        def read(conn: Connection) -> tuple[StoredNotice, list[Any]]:
            return self._visible_notice(conn, name, principal), store.entries_of(conn, name)

        return await self.reader.run(read)

    async def get_seizure(self, name: str, principal: Principal) -> Seizure:
        found = await self.reader.run(lambda conn: store.seizure_by_name(conn, name))
        if found is None or not self.may_read(principal, found.court_id, found.agency_id):
            raise NotFound("seizure", name)
        return found

    async def list_seizures(self, query: SeizureQuery, after_seq: int, limit: int, principal: Principal) -> list[StoredSeizure]:
        court_id, agency_id = self.visible_query(query.court_id, principal)
        if agency_id is not None:
            if query.agency_id not in (None, agency_id):
                return []
            query = replace(query, agency_id=agency_id)
        query = replace(query, court_id=court_id)
        return await self.reader.run(lambda conn: store.list_seizures(conn, query, after_seq, limit))

    # --- the custom methods ---------------------------------------------------------------------------

    def _serves(self, notice: AssistanceNotice) -> bool:
        agency = self.agencies.get(notice.agency_id)
        return agency is not None and agency.kind is AgencyKind.REAL_ESTATE_REGISTRY

    async def receive(
        self, name: str, principal: Principal, command: lifecycle.ReceiveNotice, request: RequestKey | None = None
    ) -> StoredNotice:
        return await self._update(
            name, principal, request, Action.RECEIVE,
            lambda n, a, now: lifecycle.receive(n, command, a, now, serves=self._serves(n)),
        )  # fmt: skip

    async def reply(
        self, name: str, principal: Principal, command: lifecycle.ReplyNotice, request: RequestKey | None = None
    ) -> StoredNotice:
        return await self._update(
            name, principal, request, Action.REPLY, lambda n, a, now: lifecycle.reply(n, command, a, now, serves=self._serves(n))
        )

    async def object_to(
        self, name: str, principal: Principal, command: lifecycle.ObjectToNotice, request: RequestKey | None = None
    ) -> StoredNotice:
        return await self._update(
            name, principal, request, Action.OBJECT,
            lambda n, a, now: lifecycle.object_to(n, command, a, now, calendar=self.calendar),
        )  # fmt: skip

    async def answer_objection(
        self, name: str, principal: Principal, command: lifecycle.AnswerObjection, request: RequestKey | None = None
    ) -> StoredNotice:
        return await self._update(
            name, principal, request, Action.ANSWER_OBJECTION, lambda n, a, now: lifecycle.answer_objection(n, command, a, now)
        )

    async def _update(
        self,
        name: str,
        principal: Principal,
        request: RequestKey | None,
        action: Action,
        decide: Callable[[AssistanceNotice, Actor, datetime], lifecycle.Result],
    ) -> StoredNotice:
        """Reads the notice as `principal` (NOT_FOUND unless it may see it), decides and writes,
        as one unit of the write door in a span of the notice's trace; a retry of an applied
        request gets the notice as it is now."""
        actor = actor_of(principal)

        def change(tx: Tx, stored: StoredNotice) -> StoredNotice:
            now = self.clock()
            updated, transition = decide(stored.notice, actor, now)
            return self._commit(tx, stored, updated, transition, now)

        load = functools.partial(self._visible_notice, principal=principal, for_update=True)
        return await self.notices.change(name, str(action).lower(), change, request=request, load=load)

    def _commit(
        self, tx: Tx, stored: StoredNotice, updated: AssistanceNotice, transition: Transition, now: datetime
    ) -> StoredNotice:
        """The notice's next version (if still at the version read: ABORTED otherwise), what its
        step caused (seizures, the queue moving up), the timeline entries and the events."""
        conn = tx.connection
        work = Work()
        if transition.action is Action.REPLY:
            updated = self._apply_result(conn, updated, now, work)
        self._write(conn, stored.notice.version, updated, transition, work)
        # The step itself first, then what it caused (seizures, the queue moving up).
        work.events.insert(0, work.events.pop())
        work.entries.insert(0, work.entries.pop())
        self._flush(tx, work)
        return StoredNotice(stored.seq, updated, stored.traceparent)

    def _write(
        self,
        conn: Connection,
        expected_version: int,
        notice: AssistanceNotice,
        transition: Transition,
        work: Work,
    ) -> None:
        store.update_notice(conn, notice, expected_version=expected_version)
        entry = TimelineEntry(transition, current_trace_id())
        work.entries.append((notice.name, entry))
        work.events.append(self._transitioned(notice, entry))

    def _flush(self, tx: Tx, work: Work) -> None:
        store.append_timeline(tx.connection, work.entries)
        tx.emit(*work.events)

    def _transitioned(self, notice: AssistanceNotice, entry: TimelineEntry) -> Event:
        row = _entry_row(entry)
        payload = events_pb2.AssistanceNoticeTransitioned(
            assistance_notice=notice_to_proto(notice), transition=entry_to_proto(row, notice.created_at)
        )
        return notice_event(NOTICE_TRANSITIONED[entry.transition.action], notice, payload, entry.transition.at)

    # --- seizures: what a result does ------------------------------------------------------------------

    def _apply_result(self, conn: Connection, notice: AssistanceNotice, now: datetime, work: Work) -> AssistanceNotice:
        result = notice.result
        assert result is not None
        if result.kind not in EFFECTIVE_RESULTS:
            return notice
        effect = notice.rule.effect
        if effect is SeizureEffect.SEIZE:
            seizure = self._seize(conn, notice, result.amount_fen, now, work)
            return replace(notice, resulting_seizure=seizure.name) if seizure else notice
        if effect in (SeizureEffect.RENEW, SeizureEffect.RELEASE) and notice.seizure_name:
            current = store.seizure_by_name(conn, notice.seizure_name)
            if current is None or current.state is not seizures.SeizureState.ACTIVE or now > current.expires_at:
                # It ended between the notice and the reply: the reply is recorded, the seizure
                # stays ended (a lapsed seizure is not revived by a late renewal).
                return notice
            if effect is SeizureEffect.RENEW:
                changed = seizures.renew(current, now, result.amount_fen)
                self._save_seizure(conn, current, changed, SEIZURE_RENEWED, notice.name, work)
            else:
                changed = seizures.release(current, now)
                self._save_seizure(conn, current, changed, SEIZURE_RELEASED, notice.name, work)
                self.advance_queue(conn, changed.asset_key, now, work)
        return notice

    def _seize(
        self, conn: Connection, notice: AssistanceNotice, amount_fen: int | None, now: datetime, work: Work
    ) -> Seizure | None:
        target = notice.target_details
        asset_class = asset_class_of(notice.kind, target) if target else None
        if target is None or asset_class is None:
            return None
        requested = getattr(target.subject, "amount_fen", None)
        seizure = seizures.take_effect(
            seizure_id=self.id_factory(),
            court_id=notice.court_id,
            case_name=notice.case_name,
            agency_id=notice.agency_id,
            notice_name=notice.name,
            target=target,
            asset_class=asset_class,
            asset_key=notice.asset_key,
            amount_fen=amount_fen if amount_fen is not None else requested,
            now=now,
        )
        store.insert_seizure(conn, seizure)
        work.events.append(self._seizure_event(seizure, SEIZURE_EFFECTIVE, notice.name))
        return seizure

    def _save_seizure(
        self, conn: Connection, before: Seizure, after: Seizure, kind: EventType, notice_name: str, work: Work
    ) -> None:
        store.update_seizure(conn, after, expected_version=before.version)
        work.events.append(self._seizure_event(after, kind, notice_name))

    def _seizure_event(self, seizure: Seizure, kind: EventType, notice_name: str = "") -> Event:
        """`rogatory.v1.seizure.{court}.{agency}.{verb}`."""
        payload = events_pb2.SeizureChanged(seizure=seizure_to_proto(seizure), assistance_notice=notice_name)
        at = seizure.updated_at or self.clock()
        return kind.event(payload, occurred_at=at, court=seizure.court_id, agency=seizure.agency_id)

    def advance_queue(self, conn: Connection, asset_key: str, now: datetime, work: Work) -> None:
        """An earlier seizure of the asset ended: every measure queued on it moves up one place;
        the one at the front takes effect and becomes a seizure (轮候转正式查封)."""
        for queued in store.queued_notices(conn, asset_key):
            notice, transition = lifecycle.advance_queue(queued.notice, now)
            if transition.action is Action.TAKE_EFFECT:
                assert notice.result is not None
                seizure = self._seize(conn, notice, notice.result.amount_fen, now, work)
                if seizure is not None:
                    notice = replace(notice, resulting_seizure=seizure.name)
            self._write(conn, queued.notice.version, notice, transition, work)

    # --- the scanner's actions ---------------------------------------------------------------------------

    async def flag_overdue_objections(self) -> int:
        """Marks objections the court left unanswered past their due time; one event each."""
        now = self.clock()
        names = await self.reader.run(lambda conn: store.overdue_objection_names(conn, now))
        flagged = 0
        for name in names:
            flagged += await self.writer.run(functools.partial(self._flag, name=name, now=now))
        return flagged

    def _flag(self, tx: Tx, *, name: str, now: datetime) -> int:
        conn = tx.connection
        stored = store.notice_for_update(conn, name)  # another replica's pass waits, then sees the mark
        objection = stored.notice.objection if stored else None
        if stored is None or objection is None or objection.overdue_flagged_at or stored.notice.state is not NoticeState.OBJECTED:
            return 0
        notice, transition = lifecycle.flag_objection_overdue(stored.notice, now)
        with self.notices.in_trace("objection_overdue", stored):
            if not store.save_annotation(conn, notice):
                return 0  # answered meanwhile: nothing to flag
            entry = TimelineEntry(transition, current_trace_id())
            store.append_entries(conn, name, [entry])
            tx.emit(self._transitioned(notice, entry))
        return 1

    async def watch_seizures(self) -> dict[str, int]:
        """Reminders before a term ends and lapses after it, with the queue moving up on a lapse."""
        now = self.clock()
        candidates = await self.reader.run(lambda conn: store.seizures_to_watch(conn, now + self.reminder_lead))
        counts = {SEIZURE_EXPIRING.verb: 0, SEIZURE_LAPSED.verb: 0}
        for candidate in candidates:
            try:
                verb = await self.writer.run(functools.partial(self._watch, candidate=candidate, now=now))
            except DomainError as reason:  # e.g. a queued notice changed meanwhile: next pass
                log.info("seizure %s skipped: %s", candidate.name, reason)
                continue
            if verb:
                counts[verb] += 1
        return counts

    def _watch(self, tx: Tx, *, candidate: Seizure, now: datetime) -> str:
        """One seizure, one unit, in the trace of the notice that put it in place: lapse it (and
        move its queue up) or remind of its end; the verb of the event it emitted, or ""."""
        origin = store.notice_by_name(tx.connection, candidate.notice_name)
        with self.notices.in_trace("seizure_term", origin) if origin is not None else contextlib.nullcontext():
            return self._watch_in_trace(tx, candidate, now)

    def _watch_in_trace(self, tx: Tx, candidate: Seizure, now: datetime) -> str:
        conn = tx.connection
        current = store.seizure_for_update(conn, candidate.name)  # another replica's pass waits, then sees the reminder
        if current is None or current.version != candidate.version:
            return ""  # changed since the pass read it (renewed, released): look again next pass
        work = Work()
        verb = ""
        if now > current.expires_at:
            lapsed = seizures.lapse(current, now)
            self._save_seizure(conn, current, lapsed, SEIZURE_LAPSED, "", work)
            self.advance_queue(conn, lapsed.asset_key, now, work)
            verb = SEIZURE_LAPSED.verb
        elif seizures.reminder_due(current, now, self.reminder_lead):
            # Bookkeeping only: the version stays, so no court is made to re-read.
            if store.save_seizure_annotation(conn, seizures.reminded(current)):
                work.events.append(self._seizure_event(replace(current, updated_at=now), SEIZURE_EXPIRING))
                verb = SEIZURE_EXPIRING.verb
        self._flush(tx, work)
        return verb


def _notice_of(stored: StoredNotice) -> AssistanceNotice:
    return stored.notice


def _traceparent_of(stored: StoredNotice) -> str:
    return stored.traceparent


def _entry_row(entry: TimelineEntry) -> dict[str, Any]:
    t = entry.transition
    return {
        "action": str(t.action),
        "from_state": str(t.from_state or ""),
        "to_state": str(t.to_state),
        "actor": t.actor,
        "at": t.at,
        "reason_code": t.reason_code,
        "note": t.note,
        "trace_id": entry.trace_id,
    }
