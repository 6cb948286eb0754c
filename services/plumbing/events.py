"""The event envelope: what every outbox row, JetStream message and consumer agrees on.

Envelope fields travel as CloudEvents binary-mode headers (`ce-type`, `ce-id`, `ce-time`,
`ce-source`), `Nats-Msg-Id` = event id for JetStream de-duplication, and W3C
`traceparent`/`tracestate`; the body is the protobuf payload.

An `EventType` describes one kind of event and is the only maker of `Event`s; the event
catalog, services/contract/events.py, lists them all (the plumbing sits below it, so its own
dead-letter alert is defined in consumer.py and listed there too).
"""

from __future__ import annotations

import builtins
import functools
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message

from services.plumbing.ids import new_id
from services.plumbing.telemetry import current_trace_headers

SUBJECT_ROOT = "rogatory.v1"  # the stream's subjects: every event, stored and replayable
# Messages not stored by JetStream: the property-query network's requests and replies,
# whose durability is the assistance database (a request is sent again until answered).
DIRECT_ROOT = "rogatory.direct.v1"
CONTENT_TYPE = "application/protobuf"


@dataclass(frozen=True)
class Event:
    """An event on its way out: built by a service, written to the outbox."""

    event_type: str  # e.g. "rogatory.case.registered.v1"
    subject: str  # e.g. "rogatory.v1.case.zj0326.registered"
    payload: Message
    event_id: str = field(default_factory=new_id)
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class ReceivedEvent:
    """An event as a consumer sees it."""

    event_id: str
    event_type: str
    subject: str
    source: str
    occurred_at: datetime
    data: bytes
    headers: dict[str, str]
    delivery_count: int = 1
    stream_seq: int = 0  # the message's position in the stream (0: not from a stream)

    def parse(self, message_type: type[Message]) -> Message:
        message = message_type()
        message.ParseFromString(self.data)
        return message


def subject(*tokens: str, root: str = SUBJECT_ROOT) -> str:
    """Builds a subject under the versioned root; tokens must be NATS-safe ASCII ids."""
    for token in tokens:
        _check_token(token)
    return ".".join((root, *tokens))


def _check_token(token: str) -> None:
    if not token or any(c in token for c in ". *>\t\r\n"):
        raise ValueError(f"unsafe subject token {token!r}")


def subject_filter(*tokens: str, root: str = SUBJECT_ROOT) -> str:
    """Like `subject`, but tokens may be the wildcards `*` (one token) or `>` (the rest)."""
    concrete = [t for t in tokens if t not in ("*", ">")]
    subject(*concrete)  # validates the concrete tokens
    if ">" in tokens[:-1]:
        raise ValueError("'>' may only be the last token")
    return ".".join((root, *tokens))


#: Every EventType made so far, by ce-type: each is defined once (tests/unit/test_event_catalog.py
#: checks that they are exactly the catalog's, services/contract/events.py).
_DEFINED: dict[str, EventType] = {}


@dataclass(frozen=True, eq=False)
class SubjectTemplate:
    """A subject with `{placeholders}` for the ids in it, e.g.
    `rogatory.v1.delegation.{requesting_court}.{entrusted_court}.acknowledged`."""

    template: str

    def __post_init__(self) -> None:
        for token in self.template.split("."):
            if not (token.startswith("{") and token.endswith("}") and token[1:-1].isidentifier()):
                _check_token(token)

    @functools.cached_property
    def placeholders(self) -> frozenset[str]:
        return frozenset(name for _, name, _, _ in string.Formatter().parse(self.template) if name)

    def format(self, **ids: str) -> str:
        """The subject for these ids (each one NATS-safe, every placeholder named)."""
        if ids.keys() != self.placeholders:
            raise ValueError(f"{self.template} takes {sorted(self.placeholders)}, not {sorted(ids)}")
        for token in ids.values():
            _check_token(token)
        return self.template.format(**ids)

    def filter(self, **ids: str) -> str:
        """A subscription filter: the ids given, `*` for the others."""
        for token in ids.values():
            _check_token(token)
        return self.template.format(**{name: ids.get(name, "*") for name in self.placeholders})

    def __str__(self) -> str:
        return self.template


@dataclass(frozen=True, eq=False)
class EventType:
    """One kind of event: its CloudEvents type (`ce-type`), subject template and payload message,
    which payload field orders it, and the span attributes its payload gives the relay's and
    consumers' spans.

    Events are made by their type and in no other way (`CASE_REGISTERED.event(payload,
    court="gd0112")`), so an event whose type is not defined cannot be written; the event
    catalog, services/contract/events.py, lists every EventType, and a test fails when one is
    defined anywhere else without being listed there.
    """

    type: str  # e.g. "rogatory.case.registered.v1"
    subject: SubjectTemplate  # e.g. rogatory.v1.case.{court}.registered
    payload: builtins.type[Message]  # (the field `type` hides the builtin here)
    #: The payload field naming the resource whose events are published in the order they happened.
    ordering_key: str
    #: Span attributes from a payload (None: the payload's resource has none).
    span_attributes: Callable[[Any], Mapping[str, str]] | None = None
    #: When it is published, for docs/events.md.
    doc: str = ""

    def __post_init__(self) -> None:
        if not (self.type.startswith("rogatory.") and self.type.endswith(".v1")):
            raise ValueError(f"event type {self.type!r} is not rogatory.{{aggregate}}.{{verb}}.v1")
        if not self.subject.template.startswith(SUBJECT_ROOT + "."):
            raise ValueError(f"{self.type}: {self.subject.template} is not a subject of the stream")
        if _DEFINED.setdefault(self.type, self) is not self:
            raise ValueError(f"event type {self.type} is defined twice")

    @property
    def verb(self) -> str:
        """`acknowledged` for `rogatory.delegation.acknowledged.v1`."""
        return self.type.split(".")[2]

    def event(self, payload: Message, *, occurred_at: datetime | None = None, **ids: str) -> Event:
        """An event of this type, on the subject of `ids` (e.g. `court="gd0112"`)."""
        if type(payload) is not self.payload:
            raise TypeError(f"{self.type} carries {self.payload.DESCRIPTOR.full_name}, not {payload.DESCRIPTOR.full_name}")
        subject_ = self.subject.format(**ids)
        if occurred_at is None:
            return Event(self.type, subject_, payload)
        return Event(self.type, subject_, payload, occurred_at=occurred_at)

    def parse(self, data: bytes) -> Message:
        return self.payload.FromString(data)


def defined_event_types() -> dict[str, EventType]:
    return dict(_DEFINED)


def envelope_headers(
    *, event_id: str, event_type: str, occurred_at: datetime, source: str, traceparent: str, tracestate: str
) -> dict[str, str]:
    headers = {
        "Nats-Msg-Id": event_id,
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-type": event_type,
        "ce-time": occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "ce-source": source,
        "content-type": CONTENT_TYPE,
    }
    if traceparent:
        headers["traceparent"] = traceparent
    if tracestate:
        headers["tracestate"] = tracestate
    return headers


def trace_columns() -> dict[str, str]:
    """The current span's W3C context, to store with an outbox row."""
    carrier = current_trace_headers()
    return {"traceparent": carrier.get("traceparent", ""), "tracestate": carrier.get("tracestate", "")}


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
