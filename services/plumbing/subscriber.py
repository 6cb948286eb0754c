"""Reading events back from JetStream as an outside subscriber would (demo, tests, CLI)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.plumbing.consumer import to_received_event
from services.plumbing.events import ReceivedEvent


async def read_events(
    js: JetStreamContext,
    stream: str,
    subject_filter: str,
    *,
    since: datetime | None = None,
    until_count: int | None = None,
    timeout: float = 10.0,
) -> list[ReceivedEvent]:
    """Replays `subject_filter` from `since` (or the start) with an ephemeral consumer.

    Returns once `until_count` events arrived, or when nothing more comes within a
    short idle wait after `timeout` (until_count None: after the first idle wait).
    """
    config = ConsumerConfig(
        ack_policy=AckPolicy.NONE,
        deliver_policy=DeliverPolicy.BY_START_TIME if since else DeliverPolicy.ALL,
        opt_start_time=since,
        filter_subject=subject_filter,
        inactive_threshold=30.0,
    )
    subscription = await js.pull_subscribe(subject_filter, stream=stream, config=config)
    events: list[ReceivedEvent] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while until_count is None or len(events) < until_count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch = await subscription.fetch(256, timeout=min(remaining, 0.5))
            except (TimeoutError, NatsTimeoutError):
                if until_count is None:
                    break
                continue
            events.extend(to_received_event(m) for m in batch)
    finally:
        await subscription.unsubscribe()
    return events
