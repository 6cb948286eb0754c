"""The event catalog: every event Rogatory publishes, in one place.

Each event type (`EventType`, services/plumbing/events.py) says its `ce-type`, its subject
template, its protobuf payload, the payload field that orders it, the span attributes its
payload gives, and when it is published. The subject families a court, an agency or an
admin may read (their NATS permissions) are here too, and so which parties read each event
follows from its subject (`readers`). The property-query network's direct messages (core
NATS, not stored) are listed beside them.

Everything else derives from this module: the services build their events from these types
(there is no other way to make an `Event`), the consumers decode payloads by type with it,
the relay and consumers take span attributes from it, `rogatory nats-auth`
(services/tools/nats_permissions.py) grants its families, and `make proto` writes
protos/rogatory/events/v1/catalog.json and the event table of docs/events.md from it
(services/tools/event_catalog.py; tests/unit/test_event_catalog.py fails when either is stale,
or when an EventType is defined anywhere without being listed here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from rogatory.events.v1 import alert_events_pb2, events_pb2, query_events_pb2, vehicle_events_pb2

from assistance import vehicles
from assistance.notice_lifecycle import Action as NoticeAction
from delegation.matters import Action
from services.contract.span_attributes import control_message_attributes, message_attributes, notice_message_attributes
from services.plumbing.consumer import DEAD_LETTERED
from services.plumbing.events import DIRECT_ROOT, SUBJECT_ROOT, EventType, SubjectTemplate, subject

# --- who may read what: the subject families of the NATS permissions ---------------------------


@dataclass(frozen=True)
class Family:
    """Subjects one court, agency or admin may read, live or through the one consumer it owns
    on them (`{party}-{id}-{name}`, e.g. `court-gd0112-sent`)."""

    party: str  # "court", "agency" or "admin"
    name: str
    pattern: str  # under SUBJECT_ROOT; `{id}` is the party's id

    @property
    def filter(self) -> str:
        """The filter with `{id}` left in, e.g. `rogatory.v1.delegation.{id}.*.>`."""
        return f"{SUBJECT_ROOT}.{self.pattern}"

    def filter_for(self, party_id: str) -> str:
        subject(party_id)  # a NATS-safe id
        return self.filter.format(id=party_id)


FAMILIES = (
    Family("court", "cases", "case.{id}.>"),
    Family("court", "sent", "delegation.{id}.*.>"),  # matters it sent
    Family("court", "received", "delegation.*.{id}.>"),  # matters it received
    Family("court", "supervision", "supervision.{id}.>"),  # matters escalated to it
    Family("court", "notices", "notice.{id}.>"),
    Family("court", "seizures", "seizure.{id}.>"),
    Family("court", "vehicles", "vehicle.{id}.>"),
    Family("court", "queries", "query.{id}.>"),
    Family("agency", "notices", "notice.*.{id}.>"),
    Family("agency", "seizures", "seizure.*.{id}.>"),
    Family("agency", "watchlist", "watchlist.{id}.>"),
    Family("admin", "all", ">"),  # an admin reads everything
)
#: Which party each subject placeholder names.
PARTY_OF = {
    "court": "court",
    "requesting_court": "court",
    "entrusted_court": "court",
    "superior_court": "court",
    "agency": "agency",
}


def family(party: str, name: str) -> Family:
    return next(f for f in FAMILIES if (f.party, f.name) == (party, name))


def families(party: str) -> dict[str, str]:
    """Family name → subject pattern (under SUBJECT_ROOT, `{id}` for the party's id) of one kind of party."""
    return {f.name: f.pattern for f in FAMILIES if f.party == party}


# --- span attributes -------------------------------------------------------------------------------


def _matter(payload: Any) -> Mapping[str, str]:
    return message_attributes(payload.delegation)


def _notice_attributes(payload: Any) -> Mapping[str, str]:
    return notice_message_attributes(payload.assistance_notice)


def _control(payload: Any) -> Mapping[str, str]:
    return control_message_attributes(payload.vehicle_control)


# --- the events ------------------------------------------------------------------------------------


def _event(
    type_: str, subject: str, payload: type[Message], ordering_key: str, doc: str, span_attributes: Any = None
) -> EventType:
    return EventType(type_, SubjectTemplate(f"{SUBJECT_ROOT}.{subject}"), payload, ordering_key, span_attributes, doc)


def _delegation(verb: str, payload: type[Message], doc: str) -> EventType:
    subject = f"delegation.{{requesting_court}}.{{entrusted_court}}.{verb}"
    return _event(f"rogatory.delegation.{verb}.v1", subject, payload, "delegation.name", doc, _matter)


def _notice(verb: str, payload: type[Message], doc: str) -> EventType:
    subject = f"notice.{{court}}.{{agency}}.{verb}"
    return _event(f"rogatory.notice.{verb}.v1", subject, payload, "assistance_notice.name", doc, _notice_attributes)


def _seizure(verb: str, doc: str) -> EventType:
    subject = f"seizure.{{court}}.{{agency}}.{verb}"
    return _event(f"rogatory.seizure.{verb}.v1", subject, events_pb2.SeizureChanged, "seizure.name", doc)


def _vehicle(verb: str, payload: type[Message], doc: str) -> EventType:
    return _event(f"rogatory.vehicle.{verb}.v1", f"vehicle.{{court}}.{verb}", payload, "vehicle_control.name", doc, _control)


def _watchlist(verb: str, payload: type[Message], doc: str) -> EventType:
    subject = f"watchlist.{{agency}}.{{court}}.{verb}"
    return _event(f"rogatory.watchlist.{verb}.v1", subject, payload, "vehicle_control.name", doc, _control)


def _query(verb: str, payload: type[Message], doc: str) -> EventType:
    return _event(f"rogatory.query.{verb}.v1", f"query.{{court}}.{verb}", payload, "property_query.name", doc)


CASE_REGISTERED = _event(
    "rogatory.case.registered.v1", "case.{court}.registered", events_pb2.CaseRegistered, "case.name",
    "a court registered an enforcement case",
)  # fmt: skip
CASE_CLOSED = _event(
    "rogatory.case.closed.v1", "case.{court}.closed", events_pb2.CaseClosed, "case.name",
    "a court closed an enforcement case (CloseCase); the case carries its `closure`",
)  # fmt: skip

DELEGATION_SUBMITTED = _delegation("submitted", events_pb2.DelegationSubmitted, "a court delegated a matter to another court")
_TRANSITION_DOC = "a lifecycle transition; carries the delegation after it and the transition (actor, time, reason, trace id)"
#: The event of each lifecycle action; deemed withdrawn is a withdrawal.
DELEGATION_TRANSITIONED: dict[Action, EventType] = {
    action: _delegation(verb, events_pb2.DelegationTransitioned, _TRANSITION_DOC)
    for action, verb in [
        (Action.ACKNOWLEDGE, "acknowledged"),
        (Action.START, "started"),
        (Action.COMPLETE, "completed"),
        (Action.RETURN_FOR_SUPPLEMENT, "returned-for-supplement"),
        (Action.SUPPLEMENT, "supplemented"),
        (Action.RETURN, "returned"),
        (Action.WITHDRAW, "withdrawn"),
    ]
}
DELEGATION_TRANSITIONED[Action.DEEM_WITHDRAWN] = DELEGATION_TRANSITIONED[Action.WITHDRAW]
DELEGATION_URGED = _delegation(
    "urged", events_pb2.DelegationUrged,
    "the requesting court, or the deadline scanner (`automatic`), urged the entrusted court (催办)",
)  # fmt: skip
DELEGATION_UPDATED = _delegation(
    "updated", events_pb2.DelegationUpdated,
    "the requesting court changed its officer or the description (UpdateDelegation); carries the fields changed",
)  # fmt: skip
DELEGATION_DUE_SOON = _delegation("due-soon", events_pb2.DelegationDeadlineReached, "a deadline is about to pass")
DELEGATION_OVERDUE = _delegation("overdue", events_pb2.DelegationDeadlineReached, "a deadline has passed")
DELEGATION_ESCALATED = _delegation("escalated", events_pb2.DelegationEscalated, "overdue long enough to be escalated (督办)")
DELEGATION_DEADLINE_EXTENDED = _delegation(
    "deadline-extended", events_pb2.DelegationDeadlineExtended, "a superior court extended a deadline"
)
SUPERVISION_ESCALATED = _event(
    "rogatory.supervision.escalated.v1", "supervision.{superior_court}.escalated", events_pb2.DelegationEscalated,
    "delegation.name", "the same escalation, for the supervising court", _matter,
)  # fmt: skip

NOTICE_SENT = _notice("sent", events_pb2.AssistanceNoticeSent, "a court sent an assistance notice to an agency")
_STEP_DOC = (
    "a step of a notice ([assistance-notices.md](assistance-notices.md)): the notice after it and the step (actor, time, reason, trace id); "
    "`took-effect` when a queued (轮候) measure reached the front"
)
#: The event of each step of a notice.
NOTICE_TRANSITIONED: dict[NoticeAction, EventType] = {
    action: _notice(verb, events_pb2.AssistanceNoticeTransitioned, _STEP_DOC)
    for action, verb in [
        (NoticeAction.RECEIVE, "received"),
        (NoticeAction.REPLY, "answered"),
        (NoticeAction.OBJECT, "objected"),
        (NoticeAction.ANSWER_OBJECTION, "objection-answered"),
        (NoticeAction.ADVANCE_QUEUE, "queue-advanced"),
        (NoticeAction.TAKE_EFFECT, "took-effect"),
        (NoticeAction.OBJECTION_OVERDUE, "objection-overdue"),
    ]
}
SEIZURE_EFFECTIVE = _seizure("effective", "a freeze or seal took effect")
SEIZURE_RENEWED = _seizure("renewed", "a freeze or seal was renewed")
SEIZURE_RELEASED = _seizure("released", "a freeze or seal was lifted")
SEIZURE_EXPIRING = _seizure("expiring", "a freeze or seal is about to end (reminder)")
SEIZURE_LAPSED = _seizure("lapsed", "a freeze or seal ended without renewal")

VEHICLE_CONTROL_CREATED = _vehicle(
    "created", vehicle_events_pb2.VehicleControlCreated,
    "a court put a vehicle under control (布控) ([vehicle-control.md](vehicle-control.md))",
)  # fmt: skip
VEHICLE_SIGHTED = _vehicle("sighted", vehicle_events_pb2.VehicleSighted, "a traffic-police agency saw it")
VEHICLE_SEIZED = _vehicle("seized", vehicle_events_pb2.VehicleSeized, "a traffic-police agency seized it (carries the target)")
VEHICLE_STEP_RECORDED = _vehicle(
    "step-recorded", vehicle_events_pb2.PostSeizureStepRecorded, "the court recorded a post-seizure step"
)
VEHICLE_TARGET_MISSED = _vehicle(
    "target-missed", vehicle_events_pb2.PostSeizureTargetMissed, "a seized vehicle was not listed for auction by the target"
)
#: The event of each way a control ends.
VEHICLE_CONTROL_ENDED: dict[vehicles.ControlState, EventType] = {
    state: _vehicle(verb, vehicle_events_pb2.VehicleControlEnded, "the control ended: lifted, its case closed, or expired")
    for state, verb in [
        (vehicles.ControlState.LIFTED, "lifted"),
        (vehicles.ControlState.CASE_CLOSED, "case-closed"),
        (vehicles.ControlState.EXPIRED, "expired"),
    ]
}
WATCHLIST_ENTRY_ADDED = _watchlist(
    "added", vehicle_events_pb2.WatchListEntryAdded, "one per addressed traffic-police agency: look out for a vehicle"
)
WATCHLIST_ENTRY_REMOVED = _watchlist(
    "removed", vehicle_events_pb2.WatchListEntryRemoved,
    "one per addressed traffic-police agency: stop (seized, lifted, case closed or expired: the control's `state` says which)",
)  # fmt: skip

QUERY_CREATED = _query(
    "created", query_events_pb2.PropertyQueryCreated,
    "a court started a property query (网络查控) ([property-queries.md](property-queries.md))",
)  # fmt: skip
QUERY_COMPLETED = _query(
    "completed", query_events_pb2.PropertyQueryCompleted,
    "every agency replied or timed out; the completed query carries its summary",
)  # fmt: skip

#: Published by every consumer of the services (services/plumbing/consumer.py) when it parks an event.
ALERT_DEAD_LETTERED = DEAD_LETTERED
#: The audit appender's consumer: its chain-broken alert names it in the subject.
AUDIT_CONSUMER = "registry-audit"
ALERT_AUDIT_BROKEN = _event(
    "rogatory.alert.audit-broken.v1", f"alert.audit.{AUDIT_CONSUMER}.broken", alert_events_pb2.AuditChainBroken,
    "consumer", "the audit log lost an anchored head ([the audit log](#the-audit-log))",
)  # fmt: skip

#: Every event type, in the order docs/events.md and catalog.json list them.
EVENTS: tuple[EventType, ...] = (
    CASE_REGISTERED,
    CASE_CLOSED,
    DELEGATION_SUBMITTED,
    *dict.fromkeys(DELEGATION_TRANSITIONED.values()),
    DELEGATION_URGED,
    DELEGATION_UPDATED,
    DELEGATION_DUE_SOON,
    DELEGATION_OVERDUE,
    DELEGATION_ESCALATED,
    DELEGATION_DEADLINE_EXTENDED,
    SUPERVISION_ESCALATED,
    NOTICE_SENT,
    *NOTICE_TRANSITIONED.values(),
    SEIZURE_EFFECTIVE,
    SEIZURE_RENEWED,
    SEIZURE_RELEASED,
    SEIZURE_EXPIRING,
    SEIZURE_LAPSED,
    VEHICLE_CONTROL_CREATED,
    VEHICLE_SIGHTED,
    VEHICLE_SEIZED,
    VEHICLE_STEP_RECORDED,
    VEHICLE_TARGET_MISSED,
    *VEHICLE_CONTROL_ENDED.values(),
    WATCHLIST_ENTRY_ADDED,
    WATCHLIST_ENTRY_REMOVED,
    QUERY_CREATED,
    QUERY_COMPLETED,
    ALERT_DEAD_LETTERED,
    ALERT_AUDIT_BROKEN,
)
BY_TYPE: dict[str, EventType] = {e.type: e for e in EVENTS}


def of_type(event_type: str) -> EventType | None:
    return BY_TYPE.get(event_type)


def in_aggregate(aggregate: str) -> tuple[EventType, ...]:
    """The event types of one aggregate, e.g. `delegation` (`rogatory.delegation.*.v1`)."""
    return tuple(e for e in EVENTS if e.type.split(".")[1] == aggregate)


def aggregate_filter(aggregate: str) -> str:
    """The subject filter of every event of one aggregate, e.g. `rogatory.v1.seizure.>`."""
    if not in_aggregate(aggregate):
        raise ValueError(f"no event of aggregate {aggregate!r}")
    return f"{SUBJECT_ROOT}.{aggregate}.>"


def span_attributes(event_type: str, payload: bytes) -> dict[str, Any]:
    """Span attributes of an event, from its payload (`services.plumbing.telemetry.add_event_attributes`)."""
    kind = BY_TYPE.get(event_type)
    if kind is None or kind.span_attributes is None:
        return {}
    return dict(kind.span_attributes(kind.parse(payload)))


# --- who reads each event --------------------------------------------------------------------------


@dataclass(frozen=True)
class Reader:
    family: Family
    placeholder: str  # the subject placeholder naming the reading party ("" for admins)


def _nats_match(pattern: list[str], tokens: list[str]) -> bool:
    for i, p in enumerate(pattern):
        if p == ">":
            return len(tokens) > i
        if i >= len(tokens) or (p != "*" and p != tokens[i]):
            return False
    return len(pattern) == len(tokens)


def readers(kind: EventType) -> tuple[Reader, ...]:
    """Which parties' families take events of this type: for each family, the placeholder of the
    subject that must be the party's id (a court reads the matters it sent through `sent`, where
    it is `{requesting_court}`)."""
    out = []
    for family in FAMILIES:
        candidates = [p for p in sorted(kind.subject.placeholders) if PARTY_OF.get(p) == family.party]
        for placeholder in candidates if "{id}" in family.pattern else [""]:
            ids = {p: ("reader" if p == placeholder else f"other{i}") for i, p in enumerate(sorted(kind.subject.placeholders))}
            pattern = family.filter.replace("{id}", "reader").split(".")
            if _nats_match(pattern, kind.subject.format(**ids).split(".")):
                out.append(Reader(family, placeholder))
    return tuple(out)


# --- direct messages: the property-query network, core NATS, not stored ----------------------------


@dataclass(frozen=True, eq=False)
class DirectMessage:
    subject: SubjectTemplate
    payload: type[Message]
    doc: str


QUERY_REQUESTED = DirectMessage(
    SubjectTemplate(f"{DIRECT_ROOT}.query.{{court}}.{{agency}}.requested"),
    query_events_pb2.PropertyQueryRequested,
    "the request to one agency (categories, debtor, deadline, reply subject = the message's reply-to); "
    "no envelope headers, `traceparent` when the trace is sampled",
)
QUERY_REPLY = DirectMessage(
    SubjectTemplate(f"{DIRECT_ROOT}.query-reply.{{agency}}.{{court}}"),
    query_events_pb2.PropertyQueryReply,
    "**published by agencies**: an agency's reply; the first one counts. Sent as a NATS request, it is answered "
    "with a `google.rpc.Status` (OK once stored; the refusal's `ErrorInfo` reason; `UNAVAILABLE` `REPLY_NOT_STORED`: "
    "send it again)",
)
DIRECT: tuple[DirectMessage, ...] = (QUERY_REQUESTED, QUERY_REPLY)
#: What an agency's NATS user may subscribe to (live only) and publish, under DIRECT_ROOT; `{id}` is the agency's id.
AGENCY_DIRECT_SUBSCRIBES = ("query.*.{id}.requested",)
AGENCY_DIRECT_PUBLISHES = ("query-reply.{id}.>",)
