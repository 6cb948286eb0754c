"""The NATS connection and the JetStream stream every service publishes to."""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, ServiceUnavailableError
from tenacity import AsyncRetrying, before_sleep_log, retry_if_exception, stop_after_delay, wait_exponential

from services.plumbing.events import SUBJECT_ROOT

log = logging.getLogger(__name__)

# Long enough to cover a relay retrying after a NATS restart: a re-sent event with the
# same Nats-Msg-Id inside this window is dropped by the server.
DUPLICATE_WINDOW_SECONDS = 15 * 60


def stream_config(name: str, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=[f"{SUBJECT_ROOT}.>"],
        retention=RetentionPolicy.LIMITS,  # subscribers replay from any point in time
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        num_replicas=replicas,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        allow_direct=True,
    )


async def connect(url: str, *, name: str, retry_forever: bool = True) -> NATS:
    """Connects and keeps reconnecting for ever: a NATS outage must not stop a service.
    A one-off command passes `retry_forever=False`: two tries, then the error."""

    client: NATS | None = None

    async def on_disconnect() -> None:
        if client is not None and client.is_closed:  # the service is stopping: no cause for alarm
            log.info("NATS connection closed")
        else:
            log.warning("NATS disconnected")

    async def on_reconnect() -> None:
        log.info("NATS reconnected")

    async def on_error(exc: Exception) -> None:
        log.warning("NATS error: %s", exc)

    client = await nats.connect(
        servers=url.split(","),
        name=name,
        max_reconnect_attempts=-1 if retry_forever else 1,
        reconnect_time_wait=0.5,
        allow_reconnect=retry_forever,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        error_cb=on_error,
    )
    return client


#: JetStream's answer to creating a stream that exists with another configuration.
STREAM_NAME_IN_USE = 10058


#: JetStream's answer when a replicated stream cannot be placed (yet): a cluster still forming,
#: or fewer nodes up than the stream's replicas.
NO_SUITABLE_PEERS = 10005
#: How long a starting service waits for the cluster to place its stream before it fails.
PLACEMENT_WAIT_SECONDS = 60.0


def _cluster_not_ready(error: BaseException) -> bool:
    if isinstance(error, ServiceUnavailableError):  # no meta leader elected yet
        return True
    return isinstance(error, BadRequestError) and error.err_code == NO_SUITABLE_PEERS


async def ensure_stream(js: JetStreamContext, name: str, replicas: int = 1, *, wait: float = PLACEMENT_WAIT_SECONDS) -> None:
    """The event stream at start-up: created when missing (ensure_stream_config). Services
    started beside a cluster that is still forming (compose, a rolling restart) wait for it up
    to `wait` seconds instead of failing on "no suitable peers for placement"."""
    retrying = AsyncRetrying(
        retry=retry_if_exception(_cluster_not_ready),
        wait=wait_exponential(multiplier=0.1, max=2.0),
        stop=stop_after_delay(wait),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            await ensure_stream_config(js, stream_config(name, replicas))


async def ensure_stream_config(js: JetStreamContext, config: StreamConfig) -> None:
    """Creates the stream when it is missing — all a service's NATS user may do to a stream
    besides publishing and reading (`rogatory nats-auth`). Creating it again as configured is
    a no-op; when it is there with another configuration (an earlier release's), it is updated
    where the user may (development, no NATS permissions), else left as it is with a warning:
    updating, purging and deleting the streams is the operator's."""
    try:
        await js.add_stream(config)
    except BadRequestError as exc:
        if exc.err_code != STREAM_NAME_IN_USE:
            raise
        try:
            await js.update_stream(config)
        except TimeoutError:  # a request the user may not send gets no answer
            log.warning(
                "stream %s exists with another configuration than this release's, and this NATS user may not "
                "update it: the operator updates it (docs/events.md, 'Who may manage the streams')",
                config.name,
            )
