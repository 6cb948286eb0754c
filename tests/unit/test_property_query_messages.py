"""The fan-out's request payloads: built from a shared part and each agency's own fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rogatory.assistance.v1 import property_query_pb2 as pb
from rogatory.events.v1 import query_events_pb2 as events_pb2

from assistance.property_categories import PropertyCategory
from assistance.queries import Debtor, PropertyQuery
from services.assistance.queries.dispatch import _sampled_trace
from services.assistance.queries.messages import RequestPayloads

CREATED = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
QUERY = PropertyQuery(
    id="q-1",
    court_id="gd0112",
    case_name="courts/gd0112/cases/2020-enf-1",
    debtor=Debtor("张三", "PERSON", "110105********002X"),
    categories=(PropertyCategory.DEPOSITS, PropertyCategory.VEHICLES),
    created_at=CREATED,
    deadline=CREATED + timedelta(days=1),
    total=2,
    pending=2,
)


def test_each_agency_gets_the_whole_request_with_its_own_fields() -> None:
    payloads = RequestPayloads(QUERY)
    bank = events_pb2.PropertyQueryRequested.FromString(
        payloads.for_agency("bank-a", (PropertyCategory.DEPOSITS,), "rogatory.direct.v1.query-reply.bank-a.gd0112")
    )
    police = events_pb2.PropertyQueryRequested.FromString(
        payloads.for_agency("tp-x", (PropertyCategory.VEHICLES,), "rogatory.direct.v1.query-reply.tp-x.gd0112")
    )
    assert bank == events_pb2.PropertyQueryRequested(
        property_query=QUERY.name,
        agency="agencies/bank-a",
        case=QUERY.case_name,
        debtor="张三",
        debtor_id_number="110105********002X",
        categories=[pb.DEPOSITS],
        deadline_time=bank.deadline_time,
        reply_subject="rogatory.direct.v1.query-reply.bank-a.gd0112",
    )
    assert bank.deadline_time.ToDatetime(UTC) == QUERY.deadline
    assert police.agency == "agencies/tp-x" and list(police.categories) == [pb.VEHICLES]
    assert police.property_query == bank.property_query and police.debtor_id_number == bank.debtor_id_number


def test_requests_carry_the_trace_context_only_when_the_trace_is_sampled() -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}"
    sampled = {"traceparent": traceparent.format(flags="01"), "tracestate": "rogatory=1", "baggage": "x"}
    assert _sampled_trace(sampled) == {"traceparent": sampled["traceparent"], "tracestate": "rogatory=1"}
    assert _sampled_trace({"traceparent": traceparent.format(flags="00")}) is None
    assert _sampled_trace({}) is None and _sampled_trace({"traceparent": "garbage"}) is None
