"""The agencies' NATS replies: a durable JetStream consumer that applies a fetched batch per transaction.

Agencies publish `PropertyQueryReply` to `rogatory.v1.query-reply.{agency}.{court}` (their
NATS credentials allow their own id only, so the subject says who replied). The consumer
fetches up to `batch` replies, and in one transaction skips those its inbox already holds
(redeliveries: keyed by `ce-id`, else `Nats-Msg-Id`, else the stream sequence), records the
rest in the inbox and applies them with `QueryHandlers.apply_replies`; it acks the batch
after the commit. A 1,000-agency query is then a handful of transactions, not 1,000.
A refused reply (second reply, after the deadline, not addressed, malformed) is logged
and acked: redelivering it would not change the answer. A batch that fails (database
away, a bug) is retried reply by reply, so one poison reply is nak'ed, then dead-lettered
like any consumer's poison event, without holding up the others.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from rogatory.events.v1 import query_events_pb2 as events_pb2
from sqlalchemy import insert, select

from registry.errors import DomainError
from services.assistance.queries.handlers import REPLY_SUBJECT_ROOT, IncomingReply, QueryHandlers
from services.assistance.queries.messages import item_record, reply_command
from services.plumbing.consumer import INBOX, EventConsumer, to_received_event
from services.plumbing.db import Database
from services.plumbing.events import subject_filter

log = logging.getLogger(__name__)

CONSUMER = "assistance-query-replies"
REPLIES = subject_filter(REPLY_SUBJECT_ROOT, "*", "*")


class ReplyConsumer(EventConsumer):
    def __init__(
        self,
        db: Database,
        js: JetStreamContext,
        handlers: QueryHandlers,
        *,
        stream: str,
        batch: int = 512,
        gather: float = 0.02,
        max_deliveries: int = 5,
    ):
        super().__init__(
            db,
            js,
            stream=stream,
            durable=CONSUMER,
            filter_subjects=[REPLIES],
            handler=_per_event,
            batch=batch,
            max_deliveries=max_deliveries,
        )
        self.handlers = handlers
        self.gather = gather  # seconds a batch waits for more replies once one arrived
        self.refused = 0

    async def _pull_loop(self, subscription: JetStreamContext.PullSubscription) -> None:
        # A pull for `batch` messages waits until that many arrived or its timeout passed, so
        # a 1 s pull would hold a half-full batch for up to 1 s. Instead: wait (≤ 1 s) for one
        # reply, then take whatever else arrives within `gather` seconds, up to `batch`.
        while not self._stopping.is_set():
            try:
                messages = await subscription.fetch(1, timeout=1.0)
            except (TimeoutError, NatsTimeoutError):
                continue
            try:
                messages += await subscription.fetch(self.batch - 1, timeout=self.gather)
            except (TimeoutError, NatsTimeoutError):
                pass
            await self.process_batch(messages)

    async def process_batch(self, messages: Sequence[Msg]) -> None:
        """Applies the batch in one transaction and acks it; a failing batch is retried one reply at a time.

        Alone, a failing reply is nak'ed with the consumer's growing delay, and parked on the
        dead-letter subject after `max_deliveries` (EventConsumer's poison-event rule), so it
        cannot hold up the replies behind it.
        """
        fresh: list[Msg] = []
        for msg in messages:
            if msg.metadata.num_delivered > self.max_deliveries:  # crashed the process before: not handled again
                event = to_received_event(msg)
                await self._dead_letter(msg, event, f"still unprocessed after {event.delivery_count - 1} deliveries")
            else:
                fresh.append(msg)
        if not fresh:
            return
        try:
            applied = await self._apply([(event_id(msg), msg) for msg in fresh])
        except Exception as exc:
            if len(fresh) > 1:
                log.warning(
                    "consumer %s: a batch of %d replies failed (%s); applying them one by one", self.durable, len(fresh), exc
                )
                for msg in fresh:
                    await self.process_batch([msg])
                return
            event = to_received_event(fresh[0])
            log.exception("consumer %s failed on reply %s", self.durable, event.event_id)
            if event.delivery_count >= self.max_deliveries:
                await self._dead_letter(fresh[0], event, f"{type(exc).__name__}: {exc}")
            else:
                await fresh[0].nak(delay=self.redelivery_delay(event.delivery_count))
            return
        if applied:
            self.handlers.outbox.notify()  # completion events
        for msg in fresh:
            await msg.ack()

    async def _apply(self, keyed: list[tuple[str, Msg]]) -> int:
        async with self.db.transaction() as conn:
            ids = list(dict.fromkeys(k for k, _ in keyed))
            seen = set(
                (
                    await conn.execute(
                        select(INBOX.c.event_id).where(INBOX.c.consumer == self.durable, INBOX.c.event_id.in_(ids))
                    )
                ).scalars()
            )
            fresh: dict[str, Msg] = {}
            for key, msg in keyed:
                if key not in seen and key not in fresh:
                    fresh[key] = msg
            self.duplicates += len(keyed) - len(fresh)
            if not fresh:
                return 0
            now = datetime.now(UTC)
            await conn.execute(insert(INBOX), [{"consumer": self.durable, "event_id": k, "processed_at": now} for k in fresh])
            incoming: list[IncomingReply] = []
            for key, msg in fresh.items():
                try:
                    incoming.append(to_incoming(msg))
                except DomainError as refused:
                    self._refused(key, refused)
            outcomes = await self.handlers.apply_replies(conn, incoming)
        for reply, outcome in zip(incoming, outcomes, strict=True):
            if isinstance(outcome, DomainError):
                self._refused(f"{reply.reply.agency_id} → {reply.query_name}", outcome)
        self.applied += len(fresh)
        return len(fresh)

    def _refused(self, what: str, error: DomainError) -> None:
        self.refused += 1
        log.info("reply %s refused: %s (%s)", what, error.message, error.reason)


def event_id(msg: Msg) -> str:
    headers = msg.headers or {}
    return headers.get("ce-id") or headers.get("Nats-Msg-Id") or f"stream-{msg.metadata.sequence.stream}"


def to_incoming(msg: Msg) -> IncomingReply:
    """The reply a message carries; the agency is the subject's, whatever the payload claims."""
    tokens = msg.subject.split(".")
    agency_id = tokens[3] if len(tokens) == 5 else ""
    try:
        payload = events_pb2.PropertyQueryReply.FromString(msg.data)
    except Exception as exc:  # noqa: BLE001 - any decode failure is the agency's malformed reply
        raise DomainError(f"not a PropertyQueryReply: {exc}", reason="MALFORMED_REPLY") from exc
    if payload.agency and payload.agency != f"agencies/{agency_id}":
        raise DomainError(f"{payload.agency} published on {msg.subject}", reason="AGENCY_MISMATCH")
    court = payload.property_query.split("/")[1] if payload.property_query.count("/") == 3 else ""
    if court != tokens[4]:
        raise DomainError(f"{payload.property_query} published on {msg.subject}", reason="COURT_MISMATCH")
    reply = reply_command(agency_id, payload.outcome, payload.items, payload.failure_reason)
    return IncomingReply(payload.property_query, reply, item_record(payload.items))


async def _per_event(*_: object) -> None:  # the batch path replaces EventConsumer's per-event handler
    raise AssertionError("ReplyConsumer applies replies in batches")


__all__ = ["CONSUMER", "REPLIES", "ReplyConsumer"]
