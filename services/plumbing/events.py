"""The event envelope: what every outbox row, JetStream message and consumer agrees on.

Envelope fields travel as CloudEvents binary-mode headers (`ce-type`, `ce-id`, `ce-time`,
`ce-source`), `Nats-Msg-Id` = event id for JetStream de-duplication, and W3C
`traceparent`/`tracestate`; the body is the protobuf payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

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
        if not token or any(c in token for c in ". *>\t\r\n"):
            raise ValueError(f"unsafe subject token {token!r}")
    return ".".join((root, *tokens))


def subject_filter(*tokens: str, root: str = SUBJECT_ROOT) -> str:
    """Like `subject`, but tokens may be the wildcards `*` (one token) or `>` (the rest)."""
    concrete = [t for t in tokens if t not in ("*", ">")]
    subject(*concrete)  # validates the concrete tokens
    if ">" in tokens[:-1]:
        raise ValueError("'>' may only be the last token")
    return ".".join((root, *tokens))


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
