"""The audit chain's anchored heads: an append-only JetStream stream outside the database.

Stream `ROGATORY_AUDIT_ANCHORS`, subject `rogatory.audit.anchor`: one message per head the
appender commits, `{"seq": …, "hash": …}`, with `Nats-Msg-Id` = `audit-head:{seq}:{hash}`
so a head published again (after a crash) is stored once. The stream refuses message
deletes, purges and roll-ups (`deny_delete` / `deny_purge`, which nats-server does not let
a later update turn off) and keeps every message: no limits, and `discard: new`, so a limit
added by mistake refuses new heads rather than dropping old ones. Only the services' NATS
user may publish there, and it may create the stream but not update, purge or delete it:
that is the operator's user's (services/tools/nats_permissions.py).
"""

from __future__ import annotations

import json
from datetime import datetime

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from services.audit.chain import Anchor
from services.plumbing.messaging import DUPLICATE_WINDOW_SECONDS, ensure_stream_config

ANCHOR_STREAM = "ROGATORY_AUDIT_ANCHORS"
ANCHOR_SUBJECT = "rogatory.audit.anchor"
READ_TIMEOUT = 5.0  # seconds to wait for the next anchor while reading them all


class AnchorsUnavailable(Exception):
    """The anchored heads cannot be read: without them the chain cannot be verified."""


def anchor_stream_config(replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=ANCHOR_STREAM,
        subjects=[ANCHOR_SUBJECT],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        num_replicas=replicas,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        deny_delete=True,
        deny_purge=True,
        allow_rollup_hdrs=False,
    )


async def ensure_anchor_stream(js: JetStreamContext, replicas: int = 1) -> None:
    """Created when missing; the services' NATS user may not update, purge or delete it."""
    await ensure_stream_config(js, anchor_stream_config(replicas))


async def publish_anchor(js: JetStreamContext, head: Anchor) -> None:
    body = json.dumps({"seq": head.seq, "hash": head.hash}).encode()
    await js.publish(ANCHOR_SUBJECT, body, stream=ANCHOR_STREAM, headers={"Nats-Msg-Id": f"audit-head:{head.seq}:{head.hash}"})


def decode_anchor(data: bytes, at: datetime | None = None) -> Anchor:
    value = json.loads(data)
    return Anchor(int(value["seq"]), str(value["hash"]), at.isoformat(timespec="seconds") if at else "")


async def last_anchor(js: JetStreamContext) -> Anchor | None:
    """The head published last; None when none was (the stream must exist)."""
    try:
        msg = await js.get_last_msg(ANCHOR_STREAM, ANCHOR_SUBJECT)
    except NotFoundError:
        return None
    return decode_anchor(msg.data or b"{}", msg.time)


async def read_anchors(js: JetStreamContext) -> list[Anchor]:
    """Every head ever anchored, oldest first. Raises AnchorsUnavailable when they cannot
    be read (the stream missing, JetStream away, no permission): then nothing can say which
    heads were published."""
    try:
        return await _read_all(js)
    except NotFoundError as exc:
        raise AnchorsUnavailable(f"the anchor stream {ANCHOR_STREAM} does not exist") from exc
    except (NatsError, TimeoutError) as exc:
        raise AnchorsUnavailable(f"the anchor stream {ANCHOR_STREAM} could not be read: {type(exc).__name__}") from exc


async def _read_all(js: JetStreamContext) -> list[Anchor]:
    last = (await js.stream_info(ANCHOR_STREAM)).state.last_seq
    anchors: list[Anchor] = []
    if not last:
        return anchors
    subscription = await js.subscribe(ANCHOR_SUBJECT, stream=ANCHOR_STREAM, ordered_consumer=True)
    try:
        while True:  # up to the last message there was when we started
            msg = await subscription.next_msg(timeout=READ_TIMEOUT)
            anchors.append(decode_anchor(msg.data, msg.metadata.timestamp))
            if msg.metadata.sequence.stream >= last:
                return anchors
    finally:
        await subscription.unsubscribe()
