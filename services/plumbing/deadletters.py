"""Parked events: what `rogatory deadletter list` shows and `rogatory deadletter replay` sends back.

A consumer that gives up on an event parks it on `rogatory.v1.deadletter.{consumer}` in the
stream (consumer.py), body and headers untouched plus why. Replaying publishes it on
`rogatory.v1.replay.{consumer}` — a subject only that consumer takes — with its original
subject in `Rogatory-Original-Subject`, and, once the stream has stored the replay, deletes
the parked copy: the list shows only what still waits. The consumer applies a replayed event
as it would have the first time, once (its inbox drops an event it applied already), and
parks it again if it still fails. The `EventDeadLettered` alert stays, as the record.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from services.plumbing.consumer import ORIGINAL_SUBJECT, replay_subject, takes_subject
from services.plumbing.events import subject_filter


@dataclass(frozen=True)
class ParkedEvent:
    seq: int  # the parked copy's position in the stream
    consumer: str  # the consumer that gave up on it
    subject: str  # where the event was published
    event_id: str
    event_type: str
    reason: str  # its last failure
    deliveries: int
    parked_at: datetime
    headers: dict[str, str]
    data: bytes


@dataclass(frozen=True)
class ReplayReport:
    replayed: list[ParkedEvent]
    skipped: list[tuple[ParkedEvent, str]]  # with why


async def parked_events(js: JetStreamContext, stream: str, consumer: str | None = None) -> list[ParkedEvent]:
    """Every event parked by `consumer` (or by any consumer), oldest first."""
    wanted = subject_filter("deadletter", consumer or "*")
    info = await js.stream_info(stream, subjects_filter=wanted)
    if not sum((info.state.subjects or {}).values()):
        return []  # nothing to read: an empty fetch would only wait
    config = ConsumerConfig(
        ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, filter_subject=wanted, inactive_threshold=30.0
    )
    subscription = await js.pull_subscribe(wanted, stream=stream, config=config)
    found: list[ParkedEvent] = []
    try:
        while True:
            try:
                batch = await subscription.fetch(256, timeout=5.0)
            except (TimeoutError, NatsTimeoutError):
                break  # the rest was replayed (deleted) meanwhile
            found.extend(_parked(msg) for msg in batch)
            if batch[-1].metadata.num_pending == 0:
                break
    finally:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
    return found


def _parked(msg: Msg) -> ParkedEvent:
    headers = dict(msg.headers or {})
    return ParkedEvent(
        seq=msg.metadata.sequence.stream,
        consumer=headers.get("Rogatory-Dead-Letter-Consumer") or msg.subject.rsplit(".", 1)[-1],
        subject=headers.get("Rogatory-Dead-Letter-Subject", ""),
        event_id=headers.get("ce-id", ""),
        event_type=headers.get("ce-type", ""),
        reason=headers.get("Rogatory-Dead-Letter-Reason", ""),
        deliveries=int(headers.get("Rogatory-Deliveries") or 0),
        parked_at=msg.metadata.timestamp,
        headers=headers,
        data=msg.data,
    )


async def replay(js: JetStreamContext, stream: str, events: Sequence[ParkedEvent]) -> ReplayReport:
    """Sends each parked event back to the consumer that parked it, then drops the parked copy."""
    takes_replays: dict[str, bool] = {}
    report = ReplayReport([], [])
    for event in events:
        if event.consumer not in takes_replays:
            takes_replays[event.consumer] = await _takes_replays(js, stream, event.consumer)
        if not takes_replays[event.consumer]:
            why = f"consumer {event.consumer} is not on stream {stream} or takes no replays: start the service that runs it"
            report.skipped.append((event, why))
            continue
        headers = {k: v for k, v in event.headers.items() if not k.startswith("Rogatory-")}
        # One id per parked copy: running replay again after a crash between the publish and
        # the delete sends it once; a copy parked again later is a new one, replayed anew.
        headers["Nats-Msg-Id"] = f"replay:{event.consumer}:{event.event_id}:{event.seq}"
        headers[ORIGINAL_SUBJECT] = event.subject
        await js.publish(replay_subject(event.consumer), event.data, stream=stream, headers=headers)
        with contextlib.suppress(NotFoundError):  # another replay removed it first
            await js.delete_msg(stream, event.seq)
        report.replayed.append(event)
    return report


async def _takes_replays(js: JetStreamContext, stream: str, consumer: str) -> bool:
    try:
        info = await js.consumer_info(stream, consumer)
    except NotFoundError:
        return False
    config = info.config
    filters = list(config.filter_subjects or []) or ([config.filter_subject] if config.filter_subject else [])
    return takes_subject(filters, replay_subject(consumer))
