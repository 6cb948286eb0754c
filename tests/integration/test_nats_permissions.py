"""NATS credentials generated from the registry, enforced by a real nats-server: a court or an
agency reads its own subjects (live and by JetStream replay) and nothing else, publishes
nowhere but where it must, and creates, acks and deletes only the consumers named after it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from services.audit.anchors import ANCHOR_STREAM, anchor_stream_config, ensure_anchor_stream, publish_anchor, read_anchors
from services.audit.chain import Anchor
from services.delegation.turnaround import CONSUMER as SERVICE_DURABLE
from services.delegation.turnaround import SUBJECTS as SERVICE_DURABLE_SUBJECTS
from services.plumbing.messaging import ensure_stream, ensure_stream_config, stream_config
from services.plumbing.nats_server import EmbeddedNatsServer
from services.tools.nats_permissions import NatsUser, all_users, authorization_block
from tests.conftest import wait_for

STREAM = "ROGATORY"
EVENTS = {  # subject → who may read it
    "rogatory.v1.case.gd0112.registered": "court-gd0112",
    "rogatory.v1.delegation.gd0112.ha0122.submitted": "court-gd0112 court-ha0122",
    "rogatory.v1.delegation.zj0326.ha0122.submitted": "court-zj0326 court-ha0122",
    "rogatory.v1.supervision.ha01.escalated": "court-ha01",
    "rogatory.v1.notice.gd0112.bank-icbc.sent": "court-gd0112 agency-bank-icbc",
    "rogatory.v1.notice.zj0326.bank-abc.sent": "court-zj0326",
    "rogatory.v1.watchlist.tp-330300.zj0326.added": "agency-tp-330300",
    "rogatory.v1.query.gd0112.bank-icbc.requested": "court-gd0112 agency-bank-icbc",
}


@pytest.fixture(scope="module")
def users() -> dict[str, NatsUser]:
    generated = all_users(CourtCatalog.default(), AgencyCatalog.default(), STREAM, password=lambda user: f"pw-{user}")
    return {u.user: u for u in generated}


@pytest.fixture
async def server(tmp_path: Path, users: dict[str, NatsUser]) -> AsyncIterator[EmbeddedNatsServer]:
    with EmbeddedNatsServer(tmp_path / "js", extra_config=authorization_block(users.values())) as running:
        service = await connect(running, users["rogatory-service"], [])
        js = service.jetstream()
        await ensure_stream(js, STREAM)
        for subject in EVENTS:
            await js.publish(subject, subject.encode())
        await service.drain()
        yield running


async def connect(server: EmbeddedNatsServer, user: NatsUser, errors: list[str]) -> NATS:
    async def on_error(error: Exception) -> None:
        errors.append(str(error))

    return await nats.connect(
        server.url,
        user=user.user,
        password=user.password,
        inbox_prefix=user.inbox_prefix,
        error_cb=on_error,
        allow_reconnect=False,
    )


async def replay(nc: NATS, name: str, subject_filter: str) -> list[str]:
    """A named push consumer filtered on `subject_filter`, from the start of the stream."""
    received: list[str] = []
    config = ConsumerConfig(name=name, deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.EXPLICIT)
    js = nc.jetstream(timeout=1.0)  # a refused API request gets no answer: do not wait 5 s for it
    subscription = await js.subscribe(subject_filter, stream=STREAM, config=config, manual_ack=True)
    try:
        while True:
            msg = await subscription.next_msg(timeout=0.5)
            received.append(msg.subject)
            await msg.ack()
    except nats.errors.TimeoutError:
        return received
    finally:
        await subscription.unsubscribe()


async def denied(errors: list[str], action: Callable[[], Awaitable[object]]) -> bool:
    """Whether `action` is refused: a permissions violation or an API request nobody may answer."""
    before = len(errors)
    try:
        await action()
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.js.errors.Error, TimeoutError):
        return True
    try:
        await wait_for(lambda: len(errors) > before, timeout=2)
    except AssertionError:
        return False
    return any("permissions violation" in e.lower() for e in errors[before:])


def readable_by(user: str) -> set[str]:
    return {subject for subject, readers in EVENTS.items() if user in readers.split()}


ACK_VERBS = (b"+TERM", b"+ACK", b"-NAK", b"+WPI", b"+NXT")


def service_durable_config() -> ConsumerConfig:
    """The delegation service's turnaround durable, as its EventConsumer creates it."""
    return ConsumerConfig(
        durable_name=SERVICE_DURABLE,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        filter_subjects=[SERVICE_DURABLE_SUBJECTS],
        max_deliver=-1,
        ack_wait=30,
    )


async def spoof_every_ack(nc: NATS, in_flight: Msg) -> None:
    """Settles, or tries to, a delivery of a consumer `nc` does not own."""
    for verb in ACK_VERBS:
        await nc.publish(in_flight.reply, verb)
    await nc.flush()  # the server has read them all before the owner acts on the message


def refusals(errors: list[str], subject: str) -> int:
    return sum("permissions violation" in e.lower() and subject.lower() in e.lower() for e in errors)


async def redelivered_after_nak(in_flight: Msg, next_delivery: Callable[[], Awaitable[Msg]]) -> None:
    """The owner naks its in-flight message: it comes back (neither terminated nor acked) and the owner acks it.

    Events behind it may come first (the nak is handled asynchronously); `next_delivery` raises
    once nothing more comes.
    """
    await in_flight.nak()
    while (again := await next_delivery()).metadata.sequence.stream != in_flight.metadata.sequence.stream:
        await again.ack_sync()
    assert (again.subject, again.metadata.num_delivered) == (in_flight.subject, 2)
    await again.ack_sync()


async def own_durable_works(nc: NATS, errors: list[str], name: str, subject_filter: str) -> None:
    """`nc` creates its durable `name`, gets the first event, acks it, reads its info and deletes it."""
    before = len(errors)
    js = nc.jetstream(timeout=5)
    config = ConsumerConfig(
        name=name, durable_name=name, deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.EXPLICIT, ack_wait=30
    )
    subscription = await js.subscribe(subject_filter, durable=name, stream=STREAM, config=config, manual_ack=True)
    msg = await subscription.next_msg(timeout=5)
    await msg.ack_sync()
    info = await js.consumer_info(STREAM, name)
    assert info.ack_floor.stream_seq == msg.metadata.sequence.stream  # its ack counted
    await subscription.unsubscribe()
    assert await js.delete_consumer(STREAM, name)
    assert errors[before:] == []


async def test_a_court_replays_its_own_events_and_no_others(server: EmbeddedNatsServer, users: dict[str, NatsUser]) -> None:
    errors: list[str] = []
    nc = await connect(server, users["court-gd0112"], errors)
    try:
        sent = await replay(nc, "court-gd0112-sent", "rogatory.v1.delegation.gd0112.*.>")
        cases = await replay(nc, "court-gd0112-cases", "rogatory.v1.case.gd0112.>")
        notices = await replay(nc, "court-gd0112-notices", "rogatory.v1.notice.gd0112.>")
        assert set(sent + cases + notices) <= readable_by("court-gd0112")
        assert sent == ["rogatory.v1.delegation.gd0112.ha0122.submitted"] and len(cases) == 1 and len(notices) == 1
        for foreign in ("rogatory.v1.delegation.*.*.>", "rogatory.v1.delegation.zj0326.*.>", "rogatory.v1.>"):
            assert await denied(errors, lambda f=foreign: replay(nc, "court-gd0112-sent", f)), foreign
    finally:
        await nc.close()


async def test_a_court_subscribes_live_to_its_subjects_only(server: EmbeddedNatsServer, users: dict[str, NatsUser]) -> None:
    errors: list[str] = []
    court = await connect(server, users["court-ha0122"], errors)
    service = await connect(server, users["rogatory-service"], [])
    try:
        own = await court.subscribe("rogatory.v1.delegation.*.ha0122.>")
        assert await denied(errors, lambda: court.subscribe("rogatory.v1.delegation.gd0112.*.>"))
        await court.flush()
        await service.publish("rogatory.v1.delegation.gd0112.ha0122.acknowledged", b"ack")
        assert (await own.next_msg(timeout=5)).subject == "rogatory.v1.delegation.gd0112.ha0122.acknowledged"
    finally:
        await court.close()
        await service.close()


async def test_parties_publish_nowhere_else(server: EmbeddedNatsServer, users: dict[str, NatsUser]) -> None:
    court_errors: list[str] = []
    agency_errors: list[str] = []
    court = await connect(server, users["court-gd0112"], court_errors)
    agency = await connect(server, users["agency-bank-icbc"], agency_errors)
    service = await connect(server, users["rogatory-service"], [])
    try:
        assert await denied(court_errors, lambda: court.publish("rogatory.v1.case.gd0112.registered", b"forged"))
        forged_notice = "rogatory.v1.notice.gd0112.bank-icbc.sent"
        assert await denied(court_errors, lambda: court.jetstream(timeout=1.0).publish(forged_notice, b"x"))
        not_mine = "rogatory.direct.v1.query-reply.bank-abc.gd0112"
        assert await denied(agency_errors, lambda: agency.publish(not_mine, b"not mine"))
        assert await denied(agency_errors, lambda: agency.publish("rogatory.v1.query-reply.bank-icbc.gd0112", b"in the stream"))
        assert await denied(agency_errors, lambda: agency.jetstream(timeout=1.0).delete_stream(STREAM))
        replies = await service.subscribe("rogatory.direct.v1.query-reply.>")
        requests = await agency.subscribe("rogatory.direct.v1.query.*.bank-icbc.requested")
        assert await denied(agency_errors, lambda: agency.subscribe("rogatory.direct.v1.query.*.bank-abc.requested"))
        await agency.flush()
        await service.flush()
        await service.publish("rogatory.direct.v1.query.gd0112.bank-icbc.requested", b"request")
        assert (await requests.next_msg(timeout=5)).data == b"request"
        await agency.publish("rogatory.direct.v1.query-reply.bank-icbc.gd0112", b"its own reply")  # the one thing it publishes
        assert (await replies.next_msg(timeout=5)).data == b"its own reply"
        received = await replay(agency, "agency-bank-icbc-notices", "rogatory.v1.notice.*.bank-icbc.>")
        assert received == ["rogatory.v1.notice.gd0112.bank-icbc.sent"]
        assert await denied(agency_errors, lambda: replay(agency, "agency-bank-icbc-notices", "rogatory.v1.notice.*.bank-abc.>"))
    finally:
        await court.close()
        await agency.close()
        await service.close()


async def test_i15_p2_a_court_cannot_ack_nak_or_terminate_a_service_durables_delivery(
    server: EmbeddedNatsServer, users: dict[str, NatsUser]
) -> None:
    """court-gd0112 may read delegation.gd0112.ha0122.submitted, but the delegation service's
    durable's delivery of it is not its to settle: every ack verb it sends is refused, and the
    service gets the event back after its own nak and acks it itself."""
    service = await connect(server, users["rogatory-service"], [])
    errors: list[str] = []
    court = await connect(server, users["court-gd0112"], errors)
    try:
        js = service.jetstream()
        await js.add_consumer(STREAM, service_durable_config())
        pull = await js.pull_subscribe_bind(SERVICE_DURABLE, stream=STREAM)

        async def fetched() -> Msg:
            [msg] = await pull.fetch(1, timeout=5)
            return msg

        in_flight = await fetched()
        assert in_flight.subject == "rogatory.v1.delegation.gd0112.ha0122.submitted"

        await spoof_every_ack(court, in_flight)
        await redelivered_after_nak(in_flight, fetched)
        info = await js.consumer_info(STREAM, SERVICE_DURABLE)
        assert (info.num_ack_pending, info.num_pending) == (0, 0)  # every event settled by the service itself
        await wait_for(lambda: refusals(errors, in_flight.reply) == len(ACK_VERBS))

        await own_durable_works(court, errors, "court-gd0112-sent", "rogatory.v1.delegation.gd0112.*.>")
    finally:
        await court.close()
        await service.close()


async def test_i15_p2_a_party_creates_acks_and_deletes_only_consumers_named_after_it(
    server: EmbeddedNatsServer, users: dict[str, NatsUser]
) -> None:
    """No taking over the service's durable (whose filter a create could otherwise rewrite), no
    other party's consumer name, no filter outside the named family, no settling another court's
    delivery of an event both courts may read, no deleting or purging what is not its own."""
    service = await connect(server, users["rogatory-service"], [])
    gd_errors: list[str] = []
    gd = await connect(server, users["court-gd0112"], gd_errors)
    ha = await connect(server, users["court-ha0122"], [])
    try:
        js = service.jetstream()
        await js.add_consumer(STREAM, service_durable_config())
        gd_js = gd.jetstream(timeout=1.0)  # a refused API request gets no answer
        own = "rogatory.v1.delegation.gd0112.*.>"
        takeover = ConsumerConfig(
            name=SERVICE_DURABLE, durable_name=SERVICE_DURABLE, ack_policy=AckPolicy.EXPLICIT, filter_subject=own
        )
        assert await denied(gd_errors, lambda: gd_js.add_consumer(STREAM, takeover))
        assert (await js.consumer_info(STREAM, SERVICE_DURABLE)).config.filter_subjects == [SERVICE_DURABLE_SUBJECTS]
        for name, subject_filter in (
            ("court-ha0122-sent", own),  # another court's name
            ("court-gd0112-cases", own),  # its own name, another family
            ("court-gd0112-sent", "rogatory.v1.delegation.>"),  # its family's name, a wider filter
        ):
            assert await denied(gd_errors, lambda n=name, f=subject_filter: replay(gd, n, f)), name
        legacy = ConsumerConfig(durable_name="court-gd0112-sent", filter_subject=own)  # DURABLE.CREATE names no filter
        assert await denied(gd_errors, lambda: gd_js.add_consumer(STREAM, legacy))

        ha_config = ConsumerConfig(
            name="court-ha0122-received", durable_name="court-ha0122-received", ack_policy=AckPolicy.EXPLICIT, ack_wait=30
        )
        received = await ha.jetstream().subscribe(
            "rogatory.v1.delegation.*.ha0122.>", stream=STREAM, config=ha_config, manual_ack=True
        )
        in_flight = await received.next_msg(timeout=5)
        assert in_flight.subject == "rogatory.v1.delegation.gd0112.ha0122.submitted"  # gd0112 may read it too
        await spoof_every_ack(gd, in_flight)
        await redelivered_after_nak(in_flight, lambda: received.next_msg(timeout=5))
        await wait_for(lambda: refusals(gd_errors, in_flight.reply) == len(ACK_VERBS))

        for action in (
            lambda: gd_js.consumer_info(STREAM, SERVICE_DURABLE),
            lambda: gd_js.delete_consumer(STREAM, SERVICE_DURABLE),
            lambda: gd_js.delete_consumer(STREAM, "court-ha0122-received"),
            lambda: gd_js.purge_stream(STREAM),
            lambda: gd_js.delete_stream(STREAM),
        ):
            assert await denied(gd_errors, action)
        assert {c.name for c in await js.consumers_info(STREAM)} == {SERVICE_DURABLE, "court-ha0122-received"}
        assert (await js.stream_info(STREAM)).state.messages == len(EVENTS)
    finally:
        await gd.close()
        await ha.close()
        await service.close()


async def test_agencies_and_admins_own_their_named_consumers(server: EmbeddedNatsServer, users: dict[str, NatsUser]) -> None:
    for user, name, subject_filter in (
        ("agency-bank-icbc", "agency-bank-icbc-notices", "rogatory.v1.notice.*.bank-icbc.>"),
        ("admin-ops", "admin-ops-all", "rogatory.v1.>"),
    ):
        errors: list[str] = []
        nc = await connect(server, users[user], errors)
        try:
            await own_durable_works(nc, errors, name, subject_filter)
            assert await denied(errors, lambda c=nc: replay(c, "court-gd0112-cases", "rogatory.v1.case.gd0112.>")), user
        finally:
            await nc.close()


async def test_no_credential_no_connection(server: EmbeddedNatsServer) -> None:
    with pytest.raises((nats.errors.NoServersError, nats.errors.Error, asyncio.TimeoutError)):
        await nats.connect(server.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)


def test_the_cli_writes_private_files(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.tools.cli", "nats-auth", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "NATS users written" in done.stdout
    assert (tmp_path / "auth.conf").read_text().startswith("authorization {")
    credentials = json.loads((tmp_path / "credentials.json").read_text())
    assert credentials["court-zj0326"]["inbox_prefix"] == "_INBOX_court-zj0326"
    assert all((tmp_path / name).stat().st_mode & 0o077 == 0 for name in ("auth.conf", "credentials.json"))


async def test_the_services_user_creates_and_uses_the_streams_but_cannot_delete_purge_or_reconfigure_them(
    tmp_path: Path, users: dict[str, NatsUser]
) -> None:
    """Anyone holding a service's NATS credentials may create the event stream and the audit
    anchor stream when they are missing, publish to them and read them — what the services do —
    but not delete, purge or update either (nor through a JetStream-domain prefix): that is the
    operator's user's, which may."""
    with EmbeddedNatsServer(tmp_path / "js", extra_config=authorization_block(users.values())) as server:
        errors: list[str] = []
        service = await connect(server, users["rogatory-service"], errors)
        operator = await connect(server, users["rogatory-operator"], [])
        try:
            js = service.jetstream(timeout=1.0)  # a refused API request gets no answer: do not wait 5 s
            for _ in range(2):  # created when missing, then found as configured (a restart)
                await ensure_stream(js, STREAM)
                await ensure_anchor_stream(js)
            await js.publish("rogatory.v1.case.gd0112.registered", b"event")
            await publish_anchor(js, Anchor(1, "a" * 64))
            assert await read_anchors(js) == [Anchor(1, "a" * 64)]
            assert (await js.stream_info(STREAM)).state.messages == 1
            for stream, config in ((STREAM, stream_config(STREAM)), (ANCHOR_STREAM, anchor_stream_config())):
                wider = replace(config, max_age=3600.0)  # would age every message out within the hour
                for action in (
                    lambda s=stream: js.delete_stream(s),
                    lambda s=stream: js.purge_stream(s),
                    lambda c=wider: js.update_stream(c),
                    lambda s=stream: service.publish(f"$JS.hub.API.STREAM.DELETE.{s}", b""),  # refused, not unanswered
                    lambda s=stream: service.publish(f"$JS.hub.API.STREAM.PURGE.{s}", b""),
                ):
                    assert await denied(errors, action), stream
                await ensure_stream_config(js, wider)  # a release wanting another configuration: left to the operator
                assert (await js.stream_info(stream)).config.max_age in (None, 0)
            assert (await js.stream_info(STREAM)).state.messages == 1
            assert await read_anchors(js) == [Anchor(1, "a" * 64)]

            operator_js = operator.jetstream()
            await operator_js.update_stream(replace(stream_config(STREAM), max_msgs=1000))
            await operator_js.purge_stream(STREAM)
            assert (await js.stream_info(STREAM)).state.messages == 0
            await operator_js.delete_stream(STREAM)
        finally:
            await service.close()
            await operator.close()
