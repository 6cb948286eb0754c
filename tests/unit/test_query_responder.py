"""The simulated query responder's answers: deterministic, plausible, and only for what was asked."""

from __future__ import annotations

from collections import Counter

from google.protobuf.timestamp_pb2 import Timestamp
from rogatory.assistance.v1 import property_query_pb2 as pb
from rogatory.events.v1 import query_events_pb2 as events_pb2

from services.tools.agency_simulator.query_responder import answer_for

ALL = [pb.DEPOSITS, pb.WEALTH_PRODUCTS, pb.REAL_ESTATE, pb.VEHICLES, pb.EQUITY, pb.SECURITIES, pb.ONLINE_FUNDS, pb.HOUSING_FUND]


def request(number: int, categories: list[int]) -> events_pb2.PropertyQueryRequested:
    return events_pb2.PropertyQueryRequested(
        property_query=f"courts/gd0112/propertyQueries/q{number}",
        agency="agencies/bank-icbc",
        categories=categories,  # type: ignore[arg-type]
        deadline_time=Timestamp(seconds=1_800_000_000),
        reply_subject="rogatory.direct.v1.query-reply.bank-icbc.gd0112",
    )


def test_the_same_seed_query_and_agency_give_the_same_reply() -> None:
    asked = request(1, ALL)
    assert answer_for(asked, "bank-icbc", seed=3) == answer_for(asked, "bank-icbc", seed=3)
    replies = {answer_for(asked, "bank-icbc", seed=s).SerializeToString() for s in range(20)}
    assert len(replies) > 2  # the seed matters


def test_replies_are_well_formed_for_every_category() -> None:
    outcomes: Counter[int] = Counter()
    for number in range(400):
        reply = answer_for(request(number, ALL), "bank-icbc", seed=1, property_rate=0.5, failure_rate=0.05)
        outcomes[reply.outcome] += 1
        assert reply.property_query == f"courts/gd0112/propertyQueries/q{number}" and reply.agency == "agencies/bank-icbc"
        if reply.outcome == pb.AgencyQueryResult.ANSWERED:
            assert reply.items and {i.category for i in reply.items} <= set(ALL)
            assert all(i.WhichOneof("record") for i in reply.items) and all(i.value_fen >= 0 for i in reply.items)
        else:
            assert not reply.items
        if reply.outcome == pb.AgencyQueryResult.FAILED:
            assert reply.failure_reason
    assert set(outcomes) == {pb.AgencyQueryResult.ANSWERED, pb.AgencyQueryResult.NO_PROPERTY, pb.AgencyQueryResult.FAILED}
    assert 150 < outcomes[pb.AgencyQueryResult.ANSWERED] < 250  # about property_rate


def test_items_only_for_the_categories_asked() -> None:
    for number in range(100):
        reply = answer_for(request(number, [pb.VEHICLES]), "tp-330300", seed=2, property_rate=1.0, failure_rate=0.0)
        assert reply.outcome == pb.AgencyQueryResult.ANSWERED
        assert {i.WhichOneof("record") for i in reply.items} == {"vehicle"} and all(len(i.vehicle.vin) == 17 for i in reply.items)
