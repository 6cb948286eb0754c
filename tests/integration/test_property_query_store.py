"""Property queries on a real database (SQLite and PostgreSQL) and a real nats-server:
fan-out rows in the outbox, replies in batches, the durable reply consumer, timeouts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from nats.aio.client import Client as NATS
from rogatory.assistance.v1 import property_query_pb2 as pb
from rogatory.events.v1 import query_events_pb2 as events_pb2
from sqlalchemy import select

from assistance.property_categories import PropertyCategory
from assistance.queries import AgencyReply, AgencyStatus, CreateQuery, QueryState, ReplyItem, summarize
from registry.agencies import Agency, AgencyCatalog, AgencyKind, AgencyScope
from registry.courts import CourtCatalog
from registry.errors import FailedPrecondition, NotFound, PermissionDenied
from services.assistance.queries import store
from services.assistance.queries.dispatch import RequestDispatcher
from services.assistance.queries.handlers import Fanout, IncomingReply, QueryHandlers
from services.assistance.queries.messages import summary_to_proto
from services.assistance.queries.replies import ReplyListener
from services.assistance.queries.scanner import QueryTimeoutScanner
from services.assistance.queries.store import QueryFilter
from services.contract.case_replica import CaseReplica
from services.plumbing.db import DatabaseUnavailable
from services.plumbing.messaging import connect, ensure_stream
from services.plumbing.nats_server import EmbeddedNatsServer
from services.plumbing.outbox import OUTBOX, Outbox
from services.plumbing.unit_of_work import Reader, Writer
from tests.conftest import Clock, request_key, wait_for

STREAM = "ROGATORY"
COURT, CASE = "gd0112", "courts/gd0112/cases/2020-enf-1"
START = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)  # a Friday, 10:00 in Beijing
AGENCIES = AgencyCatalog(
    [
        Agency("bank-a", "甲银行", AgencyKind.BANK, "", AgencyScope.NATIONAL),
        Agency("bank-b", "乙银行", AgencyKind.BANK, "", AgencyScope.NATIONAL),
        Agency("tp-x", "某交警支队", AgencyKind.TRAFFIC_POLICE, "440100", AgencyScope.REGIONAL),
        Agency("re-x", "某不动产登记中心", AgencyKind.REAL_ESTATE_REGISTRY, "440100", AgencyScope.REGIONAL),
    ]
)
COMMAND = CreateQuery(parent=f"courts/{COURT}", case=CASE, debtor="张三", categories=("DEPOSITS", "VEHICLES"))


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
async def handlers(service_db_factory: Any, clock: Clock) -> QueryHandlers:
    db = await service_db_factory("assistance")
    respondents = [{"display_name": "张三", "kind": "PERSON", "id_number_masked": "110105********002X"}]
    async with db.transaction() as conn:
        await conn.execute(
            CaseReplica.__table__.insert().values(  # type: ignore[attr-defined]
                name=CASE,
                court_id=COURT,
                case_number="（2020）粤0112执1号",
                respondents=json.dumps(respondents),
                registered_at=START,
            )
        )
    return QueryHandlers(Writer(db, Outbox()), Reader(db), CourtCatalog.default(), AGENCIES, clock=clock)


async def outbox(handlers: QueryHandlers) -> list[Any]:
    async with handlers.db.read() as conn:
        return list((await conn.execute(select(OUTBOX).order_by(OUTBOX.c.seq))).mappings())


def deposits(value_fen: int) -> pb.PropertyItem:
    return pb.PropertyItem(
        category=pb.DEPOSITS, value_fen=value_fen, account=pb.Account(account_number="6222****0001", currency="CNY")
    )


def incoming(name: str, agency_id: str, outcome: str = "NO_PROPERTY", items: tuple[pb.PropertyItem, ...] = ()) -> IncomingReply:
    record = pb.AgencyQueryResult(items=items).SerializeToString() if items else b""
    domain_items = tuple(ReplyItem(PropertyCategory(pb.PropertyCategory.Name(i.category)), i.value_fen) for i in items)
    return IncomingReply(name, AgencyReply(agency_id, outcome, domain_items), record)


async def test_create_writes_the_query_its_agency_rows_and_the_created_event_once(handlers: QueryHandlers) -> None:
    handed: list[Fanout] = []
    handlers.dispatch = handed.append
    stored = await handlers.create(COMMAND, request=request_key("r-1"))
    again = await handlers.create(COMMAND, request=request_key("r-1"))
    query = stored.query
    assert again.query.id == query.id and len(handed) == 1  # a retry is not fanned out again
    assert query.total == query.pending == 3  # bank-a, bank-b, tp-x; not the registry
    assert query.deadline == datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # next working day, Monday 10:00 Beijing
    assert [r.agency_id for r in handed[0].results] == ["bank-a", "bank-b", "tp-x"]
    assert [r["subject"] for r in await outbox(handlers)] == ["rogatory.v1.query.gd0112.created"]
    unsent = await handlers.reader.run(lambda conn: store.unanswered_results(conn, now=START, sent_before=START, limit=10))
    assert [r.agency_id for r in unsent[query.id]] == ["bank-a", "bank-b", "tp-x"]  # the fan-out's outbox, "sent" at creation


async def test_replies_are_aggregated_and_the_last_one_completes_the_query(handlers: QueryHandlers, clock: Clock) -> None:
    query = (await handlers.create(COMMAND)).query
    clock.now = START + timedelta(minutes=5)
    batch = [
        incoming(query.name, "bank-a", "ANSWERED", (deposits(12_345_00), deposits(5_00))),
        incoming(query.name, "bank-a", "NO_PROPERTY"),  # a second reply in the same batch
        incoming(query.name, "re-x"),  # not addressed
        incoming(query.name, "bank-b"),
    ]
    outcomes = await handlers.writer.run(lambda tx: handlers.apply_replies(tx, batch))
    assert [getattr(o, "reason", None) for o in outcomes] == [None, "ALREADY_REPLIED", "NOT_ADDRESSED", None]
    view = await handlers.get(query.name, COURT)
    assert view.query.pending == 1 and view.query.state is QueryState.RUNNING
    by_agency = {r.result.agency_id: r for r in view.results}
    assert by_agency["bank-a"].result.status is AgencyStatus.ANSWERED
    assert by_agency["bank-a"].result.reply_time == clock.now
    assert pb.AgencyQueryResult.FromString(by_agency["bank-a"].record).items[0].account.account_number == "6222****0001"
    assert by_agency["bank-b"].result.status is AgencyStatus.NO_PROPERTY
    assert by_agency["tp-x"].result.status is AgencyStatus.PENDING
    assert not [r for r in await outbox(handlers) if r["subject"].endswith(".completed")]

    with pytest.raises(FailedPrecondition) as again:
        await handlers.reply(incoming(query.name, "bank-b", "NO_PROPERTY"))
    assert again.value.reason == "ALREADY_REPLIED"
    await handlers.reply(incoming(query.name, "tp-x", "NO_PROPERTY"))
    done = await handlers.get(query.name, COURT)
    assert done.query.state is QueryState.COMPLETED and done.query.completed_at == clock.now
    [completed] = [r for r in await outbox(handlers) if r["subject"] == "rogatory.v1.query.gd0112.completed"]
    summary = events_pb2.PropertyQueryCompleted.FromString(completed["payload"]).property_query.summary
    assert (summary.answered, summary.no_property, summary.timed_out) == (1, 2, 0)
    assert summary.categories[0].category == pb.DEPOSITS and summary.categories[0].value_fen == 12_350_00


def count_row_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many result rows each batch read (store.results_for_update), one entry per read."""
    reads: list[int] = []
    read = store.results_for_update

    def counted(conn: Any, keys: Any) -> Any:
        keys = list(keys)
        reads.append(len(keys))
        return read(conn, keys)

    monkeypatch.setattr(store, "results_for_update", counted)
    return reads


async def test_a_batch_of_replies_reads_its_results_with_one_statement_per_query(
    handlers: QueryHandlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = (await handlers.create(COMMAND)).query
    reads = count_row_reads(monkeypatch)
    outcomes = await handlers.record_replies(
        [
            incoming(query.name, "bank-a", "ANSWERED", (deposits(100_00),)),
            incoming(query.name, "re-x"),
            incoming(query.name, "bank-b"),
        ]
    )
    assert [getattr(o, "reason", None) for o in outcomes] == [None, "NOT_ADDRESSED", None]
    assert reads == [3]  # the batch's three results, read (and locked) together
    view = await handlers.get(query.name, COURT)
    statuses = {r.result.agency_id: r.result.status for r in view.results}
    assert statuses == {"bank-a": AgencyStatus.ANSWERED, "bank-b": AgencyStatus.NO_PROPERTY, "tp-x": AgencyStatus.PENDING}
    assert view.query.pending == 1


async def test_a_result_answered_by_another_instance_is_refused_as_a_second_reply(
    handlers: QueryHandlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = (await handlers.create(COMMAND)).query
    elsewhere = QueryHandlers(handlers.writer, handlers.reader, handlers.courts, handlers.agencies, clock=handlers.clock)
    await elsewhere.record_replies([incoming(query.name, "bank-a", "NO_PROPERTY")])
    reads = count_row_reads(monkeypatch)
    outcomes = await handlers.record_replies(
        [incoming(query.name, "bank-a", "ANSWERED", (deposits(100_00),)), incoming(query.name, "bank-b")]
    )
    assert [getattr(o, "reason", None) for o in outcomes] == ["ALREADY_REPLIED", None]
    assert reads == [2]  # the batch read the rows as the other instance left them, once
    view = await handlers.get(query.name, COURT)
    assert {r.result.agency_id: r.result.status for r in view.results}["bank-a"] is AgencyStatus.NO_PROPERTY
    assert view.query.pending == 1 and view.query.version == 3  # created, bank-a, bank-b: nothing applied twice


async def test_the_completion_summary_splits_replies_that_mix_categories(handlers: QueryHandlers) -> None:
    query = (await handlers.create(replace(COMMAND, categories=("DEPOSITS", "WEALTH_PRODUCTS")))).query  # banks: both
    product = pb.PropertyItem(category=pb.WEALTH_PRODUCTS, value_fen=300_00, account=pb.Account(account_number="w-1"))
    await handlers.reply(incoming(query.name, "bank-a", "ANSWERED", (deposits(100_00), product, deposits(20_00))))
    await handlers.reply(incoming(query.name, "bank-b", "ANSWERED", (product,)))
    [completed] = [r for r in await outbox(handlers) if r["subject"] == "rogatory.v1.query.gd0112.completed"]
    summary = events_pb2.PropertyQueryCompleted.FromString(completed["payload"]).property_query.summary
    view = await handlers.get(query.name, COURT)
    expected = summarize(view.query, [r.result for r in view.results])  # the rule, over every result
    assert summary == summary_to_proto(view.query, expected)
    totals = {t.category: (t.items, t.value_fen) for t in summary.categories}
    assert totals == {pb.DEPOSITS: (2, 120_00), pb.WEALTH_PRODUCTS: (2, 600_00)} and summary.answered == 2


async def test_only_the_querying_court_reads_a_query(handlers: QueryHandlers) -> None:
    query = (await handlers.create(COMMAND)).query
    with pytest.raises(PermissionDenied):
        await handlers.get(query.name, "zj0326")
    with pytest.raises(NotFound):
        await handlers.get(f"courts/{COURT}/propertyQueries/nope", COURT)


async def test_silent_agencies_time_out_at_the_deadline(handlers: QueryHandlers, clock: Clock) -> None:
    query = (await handlers.create(COMMAND)).query
    await handlers.reply(incoming(query.name, "bank-a"))
    scanner = QueryTimeoutScanner(handlers)
    clock.now = query.deadline - timedelta(seconds=1)
    assert await scanner.scan_once() == 0
    clock.now = query.deadline
    seen = await handlers.get(query.name, COURT)  # read time: already shown timed out, nothing written yet
    assert seen.query.state is QueryState.COMPLETED
    assert {r.result.agency_id for r in seen.results if r.result.status is AgencyStatus.TIMED_OUT} == {"bank-b", "tp-x"}
    assert not [r for r in await outbox(handlers) if r["subject"].endswith(".completed")]

    assert await scanner.scan_once() == 1
    assert await scanner.scan_once() == 0  # once only
    completed = [r for r in await outbox(handlers) if r["subject"].endswith(".completed")]
    assert len(completed) == 1
    summary = events_pb2.PropertyQueryCompleted.FromString(completed[0]["payload"]).property_query.summary
    assert (summary.no_property, summary.timed_out, summary.pending) == (1, 2, 0)
    with pytest.raises(FailedPrecondition) as late:
        await handlers.reply(incoming(query.name, "tp-x"))
    assert late.value.reason == "DEADLINE_PASSED"


# --- the NATS reply consumer ---------------------------------------------------------------------


@pytest.fixture
async def nats_client(nats_server: EmbeddedNatsServer) -> AsyncIterator[NATS]:
    nc = await connect(nats_server.url, name="test")
    await ensure_stream(nc.jetstream(), STREAM)
    yield nc
    await nc.drain()


Sent = tuple[str, events_pb2.PropertyQueryReply | bytes, bool]  # agency, reply, whether it asks for an answer


async def apply_as_one_batch(
    nc: NATS, handlers: QueryHandlers, sent: list[Sent]
) -> tuple[ReplyListener, list[status_pb2.Status]]:
    """As agencies: each reply on core NATS on its agency's subject, some as requests. The
    listener only collects them until all arrived, then applies them as one batch; returns
    it (stopped) and the answers, in order."""
    listener = ReplyListener(nc, handlers)
    await listener.source.open()
    inbox = nc.new_inbox()
    told = await nc.subscribe(inbox)
    for agency, reply, asks in sent:
        data = reply if isinstance(reply, bytes) else reply.SerializeToString()
        await nc.publish(f"rogatory.direct.v1.query-reply.{agency}.gd0112", data, reply=inbox if asks else "")
    await wait_for(lambda: listener.source.waiting == len(sent))
    listener.consumer.start()
    try:
        messages = [await told.next_msg(timeout=5) for _ in range(sum(asks for _, _, asks in sent))]
    finally:
        await listener.consumer.stop()
    return listener, [status_pb2.Status.FromString(m.data) for m in messages]


async def test_nats_replies_are_applied_in_one_transaction_and_answered(handlers: QueryHandlers, nats_client: NATS) -> None:
    query = (await handlers.create(COMMAND)).query
    found = events_pb2.PropertyQueryReply(
        property_query=query.name, agency="agencies/bank-a", outcome=pb.AgencyQueryResult.ANSWERED
    )
    found.items.append(deposits(100_00))
    nothing = events_pb2.PropertyQueryReply(property_query=query.name, outcome=pb.AgencyQueryResult.NO_PROPERTY)
    impostor = events_pb2.PropertyQueryReply(
        property_query=query.name, agency="agencies/bank-b", outcome=pb.AgencyQueryResult.NO_PROPERTY
    )
    listener, statuses = await apply_as_one_batch(
        nats_client,
        handlers,
        [
            ("bank-a", found, True),
            ("bank-a", found, True),  # a copy (the request was sent again)
            ("tp-x", impostor, True),  # payload ≠ subject
            ("tp-x", b"\xff not protobuf", True),
            ("bank-b", nothing, False),  # no answer asked for
            ("tp-x", nothing, False),
        ],
    )
    assert listener.applied == 3 and listener.refused == 3 and listener.batches == 1
    assert [s.code for s in statuses].count(code_pb2.OK) == 1
    reasons = sorted(error_details_pb2.ErrorInfo.FromString(s.details[0].value).reason for s in statuses if s.code)
    assert reasons == ["AGENCY_MISMATCH", "ALREADY_REPLIED", "MALFORMED_REPLY"]
    view = await handlers.get(query.name, COURT)
    assert view.query.state is QueryState.COMPLETED
    results = {r.result.agency_id: r.result.status for r in view.results}
    assert results == {"bank-a": AgencyStatus.ANSWERED, "bank-b": AgencyStatus.NO_PROPERTY, "tp-x": AgencyStatus.NO_PROPERTY}
    assert len([r for r in await outbox(handlers) if r["subject"].endswith(".completed")]) == 1


async def test_i15_p11_an_agency_reply_follows_the_text_rule(handlers: QueryHandlers, nats_client: NATS) -> None:
    query = (await handlers.create(COMMAND)).query
    spoofing = events_pb2.PropertyQueryReply(
        property_query=query.name, outcome=pb.AgencyQueryResult.FAILED, failure_reason="\u202e系统维护"
    )
    listener, statuses = await apply_as_one_batch(nats_client, handlers, [("bank-a", spoofing, True)])
    assert listener.applied == 0 and listener.refused == 1
    assert [s.code for s in statuses] == [code_pb2.INVALID_ARGUMENT]
    bad = error_details_pb2.BadRequest.FromString(statuses[0].details[1].value)
    assert [(v.field, v.reason) for v in bad.field_violations] == [("failure_reason", "BAD_CHARACTER")]
    view = await handlers.get(query.name, COURT)
    assert {r.result.agency_id: r.result.status for r in view.results}["bank-a"] is AgencyStatus.PENDING


async def test_i16_p2_stopping_the_reply_consumer_writes_the_replies_that_already_arrived(
    handlers: QueryHandlers, nats_client: NATS
) -> None:
    """Replies that arrived before the stop are not dropped with the subscription: the
    consumer writes them, in batches of `max_batch`, before it stops."""
    query = (await handlers.create(COMMAND)).query
    listener = ReplyListener(nats_client, handlers, max_batch=2)
    await listener.source.open()
    nothing = events_pb2.PropertyQueryReply(property_query=query.name, outcome=pb.AgencyQueryResult.NO_PROPERTY)
    for agency in ("bank-a", "bank-b", "tp-x"):
        await nats_client.publish(f"rogatory.direct.v1.query-reply.{agency}.gd0112", nothing.SerializeToString())
    await wait_for(lambda: listener.source.waiting == 3)
    listener.consumer.start()
    await listener.consumer.stop()  # at once, before it fetched anything
    assert (listener.applied, listener.batches, listener.source.waiting) == (3, 2, 0)
    view = await handlers.get(query.name, COURT)
    assert {r.result.status for r in view.results} == {AgencyStatus.NO_PROPERTY} and view.query.state is QueryState.COMPLETED


# --- the fan-out ------------------------------------------------------------------------------------


async def test_the_dispatcher_sends_each_agency_its_own_request_and_again_until_answered(
    handlers: QueryHandlers, nats_client: NATS, clock: Clock
) -> None:
    dispatcher = RequestDispatcher(handlers.writer, handlers.reader, nats_client, clock=clock)
    handed: list[Fanout] = []
    handlers.dispatch = handed.append
    query = (await handlers.create(COMMAND)).query
    received: list[Any] = []

    async def collect(msg: Any) -> None:
        received.append(msg)

    subscription = await nats_client.subscribe("rogatory.direct.v1.query.*.tp-x.requested", cb=collect)
    stream_before = (await nats_client.jetstream().stream_info(STREAM)).state.messages
    assert await dispatcher.publish(handed[0]) == 3
    await wait_for(lambda: len(received) == 1)
    request = events_pb2.PropertyQueryRequested.FromString(received[0].data)
    assert request.property_query == query.name and request.agency == "agencies/tp-x"
    assert list(request.categories) == [pb.VEHICLES] and request.debtor_id_number == "110105********002X"
    assert request.reply_subject == received[0].reply == "rogatory.direct.v1.query-reply.tp-x.gd0112"
    assert set(received[0].headers or {}) <= {"traceparent", "tracestate"}  # no envelope; the trace when sampled
    assert (await nats_client.jetstream().stream_info(STREAM)).state.messages == stream_before  # not stored
    assert await dispatcher.resend() == 0  # sent with the query's creation: not due yet

    # A crash between commit and publish: the second query's requests never went out. Once
    # `resend_after` passed, the pass sends them, and asks every other pending agency again.
    await handlers.create(replace(COMMAND, categories=("DEPOSITS",)))
    await handlers.reply(incoming(query.name, "tp-x"))
    clock.now += dispatcher.resend_after
    assert await dispatcher.resend() == 4  # bank-a and bank-b for both queries; tp-x answered
    await wait_for(lambda: dispatcher.resent == 4)
    assert len(received) == 1  # tp-x was not asked again
    assert await dispatcher.resend() == 0  # the resend is recorded: not due again yet
    clock.now += timedelta(days=10)  # past the deadline: the scanner times them out, nobody is asked
    assert await dispatcher.resend() == 0
    await subscription.unsubscribe()


async def test_nothing_is_sent_again_while_nats_is_disconnected(handlers: QueryHandlers, clock: Clock) -> None:
    class Disconnected:
        is_connected = False

        async def publish(self, *_args: Any, **_kwargs: Any) -> None:
            raise AssertionError("published while disconnected")

    dispatcher = RequestDispatcher(handlers.writer, handlers.reader, Disconnected(), clock=clock)  # type: ignore[arg-type]
    await handlers.create(COMMAND)
    clock.now += dispatcher.resend_after
    assert await dispatcher.resend() == 0


async def test_a_court_lists_its_own_queries_in_pages_and_by_state(handlers: QueryHandlers) -> None:
    first = (await handlers.create(COMMAND)).query
    second = (await handlers.create(replace(COMMAND, categories=("REAL_ESTATE",)))).query
    await handlers.reply(incoming(second.name, "re-x"))  # its only agency: completed
    page = await handlers.list(QueryFilter(COURT), after_seq=0, limit=1)
    assert [v.query.id for v in page] == [first.id]
    rest = await handlers.list(QueryFilter(COURT), after_seq=page[0].stored.seq, limit=10)
    assert [v.query.id for v in rest] == [second.id]
    done = await handlers.list(QueryFilter(COURT, state=QueryState.COMPLETED), after_seq=0, limit=10)
    assert [v.query.id for v in done] == [second.id]
    assert await handlers.list(QueryFilter("zj0326"), after_seq=0, limit=10) == []
    assert await handlers.list(QueryFilter(COURT, case_name="courts/gd0112/cases/other"), after_seq=0, limit=10) == []


async def test_a_reply_that_cannot_be_written_is_not_stored_and_the_agency_told_to_send_again(
    handlers: QueryHandlers, nats_client: NATS, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = (await handlers.create(COMMAND)).query
    real_apply = handlers.apply_replies

    def failing_on_tp_x(conn: Any, replies: Any, **options: Any) -> Any:
        if any(r.reply.agency_id == "tp-x" for r in replies):
            raise RuntimeError("simulated bug on tp-x's reply")
        return real_apply(conn, replies, **options)

    monkeypatch.setattr(handlers, "apply_replies", failing_on_tp_x)
    nothing = events_pb2.PropertyQueryReply(property_query=query.name, outcome=pb.AgencyQueryResult.NO_PROPERTY)
    sent = [(agency, nothing, agency == "tp-x") for agency in ("bank-a", "tp-x", "bank-b")]
    listener, [status] = await apply_as_one_batch(nats_client, handlers, sent)
    assert status.code == code_pb2.UNAVAILABLE and listener.failed == 1 and listener.applied == 2
    view = await handlers.get(query.name, COURT)
    statuses = {r.result.agency_id: r.result.status for r in view.results}
    assert statuses == {"bank-a": AgencyStatus.NO_PROPERTY, "bank-b": AgencyStatus.NO_PROPERTY, "tp-x": AgencyStatus.PENDING}


async def test_replies_while_the_database_is_away_are_answered_unavailable_without_a_retry_each(
    handlers: QueryHandlers, nats_client: NATS, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = (await handlers.create(COMMAND)).query
    attempts: list[int] = []

    def database_away(_conn: Any, replies: Any, **_options: Any) -> Any:
        attempts.append(len(replies))
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(handlers, "apply_replies", database_away)
    nothing = events_pb2.PropertyQueryReply(property_query=query.name, outcome=pb.AgencyQueryResult.NO_PROPERTY)
    listener, statuses = await apply_as_one_batch(
        nats_client, handlers, [(a, nothing, True) for a in ("bank-a", "tp-x", "bank-b")]
    )
    assert [s.code for s in statuses] == [code_pb2.UNAVAILABLE] * 3 and attempts == [3] and listener.failed == 3
    assert (await handlers.get(query.name, COURT)).query.pending == 3  # nothing stored: they are asked again
