"""The agencies' NATS replies: a core NATS consumer that applies what arrived, one unit of the write door per batch.

Agencies publish `PropertyQueryReply` to `rogatory.direct.v1.query-reply.{agency}.{court}`
(the reply-to of the request; their NATS credentials allow their own id only, so the
subject says who replied). The service instances share the subscription as a queue group,
so each reply is handled once. Replies that arrive while a batch is being written wait and
form the next batch: a 1,000-agency query is a handful of transactions, not 1,000.

Reliability without a stream: a reply is stored when its transaction commits. One lost on
the way (service restarting, database away) leaves the agency pending, so the dispatcher
sends it the request again and it answers again; a copy of a stored reply is refused as a
second reply. An agency that wants to know sends its reply as a NATS request: the answer
is a `google.rpc.Status` (code 0 when stored; else the refusal with its ErrorInfo reason,
or UNAVAILABLE when it could not be written and should be sent again).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from google.rpc import code_pb2, status_pb2
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from rogatory.events.v1 import query_events_pb2 as events_pb2

from registry.errors import DomainError
from services.assistance.queries.handlers import IncomingReply, QueryHandlers
from services.assistance.queries.messages import item_record, reply_command
from services.contract.events import QUERY_REPLY
from services.plumbing.consumer import Consumer, CoreSource
from services.plumbing.db import DatabaseUnavailable
from services.plumbing.errors import status_for, unavailable_status
from services.plumbing.request_text import check_request_text

log = logging.getLogger(__name__)

QUEUE_GROUP = "assistance-query-replies"
REPLIES = QUERY_REPLY.subject.filter()
#: A reply as it arrived: the message (answered when it asks) and what it says, or why it is refused.
Arrived = tuple[Msg, IncomingReply | DomainError]
_STORED = status_pb2.Status(code=code_pb2.OK).SerializeToString()
_NOT_STORED = unavailable_status("REPLY_NOT_STORED", "the reply could not be stored; send it again").SerializeToString()


class ReplyListener:
    """Applies the replies its consumer (`self.consumer`: core NATS, the queue group) takes
    in batches of up to `max_batch`, decoded as they arrive; stopping writes what already arrived."""

    def __init__(self, nc: NATS, handlers: QueryHandlers, *, max_batch: int = 1024):
        self.nc = nc
        self.handlers = handlers
        self.applied = 0
        self.refused = 0
        self.failed = 0  # replies not written (database away): the agency is asked again
        self.batches = 0  # transactions that stored replies
        # Decoded as they arrive, while the previous batch waits for the database: the batch
        # that follows the last reply then only does the database work.
        self.source = CoreSource(nc, REPLIES, queue=QUEUE_GROUP, prepare=_arrived)
        self.consumer = Consumer(self.source, message_handler=self.apply, batch=max_batch)

    async def apply(self, batch: Sequence[Arrived]) -> None:
        """The consumer's message handler: applies the decoded replies as one unit of the write
        door and answers each; a failing batch is retried reply by reply."""
        decoded: list[tuple[Msg, IncomingReply]] = []
        for msg, incoming in batch:
            if isinstance(incoming, DomainError):
                await self._answer(msg, self._refused(msg.subject, incoming))
            else:
                decoded.append((msg, incoming))
        if not decoded:
            return
        replies = [incoming for _, incoming in decoded]
        try:
            outcomes = await self.handlers.record_replies(replies)
        except DatabaseUnavailable as exc:  # not worth trying reply by reply: each would wait for the database
            log.warning("%d property-query replies not stored (%s); they will be asked again", len(decoded), exc)
            self.failed += len(decoded)
            for msg, _ in decoded:
                await self._answer(msg, _NOT_STORED)
            return
        except Exception as exc:
            if len(decoded) > 1:
                log.warning("a batch of %d property-query replies failed (%s); applying them one by one", len(decoded), exc)
                for one in decoded:
                    await self.apply([one])
                return
            msg, incoming = decoded[0]
            log.warning(
                "reply of %s to %s not stored (%s); it will be asked again", incoming.reply.agency_id, incoming.query_name, exc
            )
            self.failed += 1
            await self._answer(msg, _NOT_STORED)
            return
        self.batches += 1
        for (msg, incoming), outcome in zip(decoded, outcomes, strict=True):
            if isinstance(outcome, DomainError):
                await self._answer(msg, self._refused(f"{incoming.reply.agency_id} → {incoming.query_name}", outcome))
            else:
                self.applied += 1
                await self._answer(msg, _STORED)

    def _refused(self, what: str, error: DomainError) -> bytes:
        self.refused += 1
        log.info("reply %s refused: %s (%s)", what, error.message, error.reason)
        return status_for(error).SerializeToString()

    async def _answer(self, msg: Msg, status: bytes) -> None:
        if msg.reply:  # the agency asked for an answer
            await self.nc.publish(msg.reply, status)


def _arrived(msg: Msg) -> Arrived:
    try:
        return msg, to_incoming(msg)
    except DomainError as refused:
        return msg, refused


def to_incoming(msg: Msg) -> IncomingReply:
    """The reply a message carries; the agency is the subject's, whatever the payload claims."""
    tokens = msg.subject.split(".")
    agency_id, court_id = (tokens[4], tokens[5]) if len(tokens) == 6 else ("", "")
    try:
        payload = events_pb2.PropertyQueryReply.FromString(msg.data)
    except Exception as exc:  # noqa: BLE001 - any decode failure is the agency's malformed reply
        raise DomainError(f"not a PropertyQueryReply: {exc}", reason="MALFORMED_REPLY") from exc
    check_request_text(payload)  # an agency's reply is a request too: the one text rule (registry/text.py)
    if payload.agency and payload.agency != f"agencies/{agency_id}":
        raise DomainError(f"{payload.agency} published on {msg.subject}", reason="AGENCY_MISMATCH")
    court = payload.property_query.split("/")[1] if payload.property_query.count("/") == 3 else ""
    if court != court_id:
        raise DomainError(f"{payload.property_query} published on {msg.subject}", reason="COURT_MISMATCH")
    reply = reply_command(agency_id, payload.outcome, payload.items, payload.failure_reason)
    return IncomingReply(payload.property_query, reply, item_record(payload.items))


__all__ = ["QUEUE_GROUP", "REPLIES", "ReplyListener", "to_incoming"]
