"""Property queries (assistance/queries.py, assistance/property_categories.py): creation rules, replies, timeouts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from rogatory.assistance.v1 import property_query_pb2 as pq

from assistance.property_categories import CATEGORY_AGENCY_KINDS, PropertyCategory, addressees
from assistance.queries import (
    AgencyReply,
    AgencyResult,
    AgencyStatus,
    CaseFacts,
    CreateQuery,
    Debtor,
    PropertyQuery,
    PropertyQueryCompleted,
    PropertyQueryCreated,
    QueryState,
    ReplyItem,
    answer,
    check_addressed,
    check_reader,
    create_query,
    seen_at,
    settle,
    summarize,
    time_out,
)
from registry.agencies import AgencyCatalog, AgencyKind
from registry.courts import CourtCatalog
from registry.errors import FailedPrecondition, InvalidArgument, PermissionDenied

NOW = datetime(2020, 4, 20, 9, 30, tzinfo=UTC)
CASE = "courts/gd0112/cases/2020-enf-1"
DEBTOR = Debtor("张三", "PERSON", "110105********002X")
FACTS = CaseFacts("gd0112", (DEBTOR, Debtor("某某公司", "ORGANIZATION", "")))
COMMAND = CreateQuery(parent="courts/gd0112", case=CASE, debtor="张三", categories=("DEPOSITS", "VEHICLES"))


def default_deadline(now: datetime) -> datetime:
    return now + timedelta(days=1)


@pytest.fixture(scope="module")
def courts() -> CourtCatalog:
    return CourtCatalog.default()


@pytest.fixture(scope="module")
def agencies() -> AgencyCatalog:
    return AgencyCatalog.default()


def create(courts: CourtCatalog, agencies: AgencyCatalog, command: CreateQuery = COMMAND, facts: CaseFacts | None = FACTS):  # type: ignore[no-untyped-def]
    return create_query(command, courts, agencies, facts, NOW, query_id="q1", default_deadline=default_deadline)


def test_category_names_match_the_proto_enum() -> None:
    assert {c.value for c in PropertyCategory} == set(pq.PropertyCategory.keys()) - {"PROPERTY_CATEGORY_UNSPECIFIED"}
    assert set(CATEGORY_AGENCY_KINDS) == set(PropertyCategory)


def test_every_category_is_answered_by_some_shipped_agency(agencies: AgencyCatalog) -> None:
    for category in PropertyCategory:
        assert addressees([category], agencies), category


def test_a_query_goes_to_every_agency_of_the_categories_kinds_nationwide(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    query, results, events = create(courts, agencies)
    banks = {a.id for a in agencies if a.kind is AgencyKind.BANK}
    police = {a.id for a in agencies if a.kind is AgencyKind.TRAFFIC_POLICE}
    assert {r.agency_id for r in results} == banks | police  # regional ones of other provinces too
    assert query.total == query.pending == len(results) and query.state is QueryState.RUNNING
    assert all(r.status is AgencyStatus.PENDING for r in results)
    assert {r.categories for r in results if r.agency_id in banks} == {(PropertyCategory.DEPOSITS,)}
    assert {r.categories for r in results if r.agency_id in police} == {(PropertyCategory.VEHICLES,)}
    assert query.deadline == NOW + timedelta(days=1) and query.debtor == DEBTOR
    assert query.name == "courts/gd0112/propertyQueries/q1"
    assert events == [PropertyQueryCreated(query, tuple(results))]


def test_a_bank_asked_for_deposits_and_wealth_products_gets_one_request(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    command = replace(COMMAND, categories=("DEPOSITS", "WEALTH_PRODUCTS", "DEPOSITS"))
    query, results, _ = create(courts, agencies, command)
    assert query.categories == (PropertyCategory.DEPOSITS, PropertyCategory.WEALTH_PRODUCTS)
    icbc = next(r for r in results if r.agency_id == "bank-icbc")
    assert icbc.categories == (PropertyCategory.DEPOSITS, PropertyCategory.WEALTH_PRODUCTS)


def test_an_explicit_response_window_sets_the_deadline(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    query, _, _ = create(courts, agencies, replace(COMMAND, response_window=timedelta(seconds=30)))
    assert query.deadline == NOW + timedelta(seconds=30)


def test_every_field_violation_at_once(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    command = CreateQuery(parent="courts/nope", case="cases/1", debtor=" ", categories=("GOLD",), response_window=timedelta(0))
    with pytest.raises(InvalidArgument) as raised:
        create(courts, agencies, command)
    assert {(v.field, v.reason) for v in raised.value.violations} == {
        ("parent", "UNKNOWN_COURT"),
        ("property_query.case", "RESOURCE_NAME"),
        ("property_query.debtor", "REQUIRED"),
        ("property_query.categories[0]", "BAD_VALUE"),
        ("response_window", "OUT_OF_RANGE"),
    }


def test_no_categories_is_refused(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    with pytest.raises(InvalidArgument) as raised:
        create(courts, agencies, replace(COMMAND, categories=()))
    assert ("property_query.categories", "REQUIRED") in {(v.field, v.reason) for v in raised.value.violations}


def test_another_courts_case_is_refused_whether_or_not_it_is_known(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    other = replace(COMMAND, parent="courts/zj0326")
    for facts in (FACTS, None):
        with pytest.raises(PermissionDenied) as raised:
            create(courts, agencies, other, facts)
        assert raised.value.reason == "NOT_CASE_OWNER"


def test_an_unreplicated_case_is_a_precondition(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    with pytest.raises(FailedPrecondition) as raised:
        create(courts, agencies, facts=None)
    assert raised.value.reason == "CASE_NOT_REGISTERED"


def test_only_a_respondent_of_the_case_can_be_queried(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    with pytest.raises(InvalidArgument) as raised:
        create(courts, agencies, replace(COMMAND, debtor="李四"))
    assert raised.value.reason == "NOT_A_DEBTOR"


def test_no_agency_for_the_categories_is_a_precondition(courts: CourtCatalog) -> None:
    banks_only = AgencyCatalog(a for a in AgencyCatalog.default() if a.kind is AgencyKind.BANK)
    with pytest.raises(FailedPrecondition) as raised:
        create(courts, banks_only, replace(COMMAND, categories=("SECURITIES",)))
    assert raised.value.reason == "NO_AGENCY"


# --- replies -----------------------------------------------------------------------------------


def running(courts: CourtCatalog, agencies: AgencyCatalog) -> tuple[PropertyQuery, dict[str, AgencyResult]]:
    query, results, _ = create(courts, agencies)
    return query, {r.agency_id: r for r in results}


def test_an_answer_records_status_items_and_reply_time(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    query, results = running(courts, agencies)
    later = NOW + timedelta(minutes=3)
    reply = AgencyReply("bank-icbc", "ANSWERED", (ReplyItem(PropertyCategory.DEPOSITS, 1_000_00),))
    result = answer(query, results["bank-icbc"], reply, later)
    assert result.status is AgencyStatus.ANSWERED and result.reply_time == later and result.items == reply.items


def test_a_second_reply_has_no_second_effect(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    query, results = running(courts, agencies)
    first = answer(query, results["bank-icbc"], AgencyReply("bank-icbc", "NO_PROPERTY"), NOW)
    with pytest.raises(FailedPrecondition) as raised:
        answer(query, first, AgencyReply("bank-icbc", "ANSWERED", (ReplyItem(PropertyCategory.DEPOSITS, 5),)), NOW)
    assert raised.value.reason == "ALREADY_REPLIED"


def test_a_reply_after_the_deadline_is_refused(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    query, results = running(courts, agencies)
    with pytest.raises(FailedPrecondition) as raised:
        answer(query, results["bank-icbc"], AgencyReply("bank-icbc", "NO_PROPERTY"), query.deadline)
    assert raised.value.reason == "DEADLINE_PASSED"
    timed_out = results["bank-icbc"]._replace(status=AgencyStatus.TIMED_OUT)
    with pytest.raises(FailedPrecondition):
        answer(query, timed_out, AgencyReply("bank-icbc", "NO_PROPERTY"), NOW)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (AgencyReply("bank-icbc", "ANSWERED"), {("items", "REQUIRED")}),
        (AgencyReply("bank-icbc", "NO_PROPERTY", (ReplyItem(PropertyCategory.DEPOSITS),)), {("items", "UNEXPECTED")}),
        (AgencyReply("bank-icbc", "FAILED"), {("failure_reason", "REQUIRED")}),
        (AgencyReply("bank-icbc", "TIMED_OUT"), {("outcome", "BAD_OUTCOME")}),
        (AgencyReply("bank-icbc", ""), {("outcome", "REQUIRED")}),
        (AgencyReply("bank-icbc", "ANSWERED", (ReplyItem(PropertyCategory.VEHICLES),)), {("items[0]", "NOT_ASKED")}),
        (AgencyReply("bank-icbc", "ANSWERED", (ReplyItem(PropertyCategory.DEPOSITS, -1),)), {("items[0]", "OUT_OF_RANGE")}),
    ],
)
def test_malformed_replies_are_refused(
    courts: CourtCatalog, agencies: AgencyCatalog, reply: AgencyReply, expected: set[tuple[str, str]]
) -> None:
    query, results = running(courts, agencies)
    with pytest.raises(InvalidArgument) as raised:
        answer(query, results["bank-icbc"], reply, NOW)
    assert {(v.field, v.reason) for v in raised.value.violations} == expected


def test_settle_completes_the_query_when_the_last_agency_is_done(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    query, _ = running(courts, agencies)
    partly, events = settle(query, query.total - 1, NOW)
    assert partly.pending == 1 and partly.state is QueryState.RUNNING and not events
    done, events = settle(partly, 1, NOW + timedelta(seconds=2))
    assert done.state is QueryState.COMPLETED and done.completed_at == NOW + timedelta(seconds=2)
    assert events == [PropertyQueryCompleted(done)]
    assert settle(done, 0, NOW) == (done, [])


def test_time_out_marks_the_pending_agencies_and_completes(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    query, results = running(courts, agencies)
    answered = answer(query, results["bank-icbc"], AgencyReply("bank-icbc", "NO_PROPERTY"), NOW)
    query, _ = settle(query, 1, NOW)
    rest = [answered, *(r for a, r in results.items() if a != "bank-icbc")]
    assert time_out(query, rest, query.deadline - timedelta(seconds=1)) == (query, [], [])
    done, timed_out, events = time_out(query, rest, query.deadline)
    assert {r.agency_id for r in timed_out} == set(results) - {"bank-icbc"}
    assert all(r.status is AgencyStatus.TIMED_OUT for r in timed_out)
    assert done.state is QueryState.COMPLETED and done.pending == 0 and events == [PropertyQueryCompleted(done)]


def test_a_reader_after_the_deadline_sees_pending_agencies_timed_out(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    query, results = running(courts, agencies)
    before = seen_at(query, list(results.values()), NOW)
    assert before[0] is query
    after, shown = seen_at(query, list(results.values()), query.deadline)
    assert after.state is QueryState.COMPLETED and {r.status for r in shown} == {AgencyStatus.TIMED_OUT}


def test_only_the_querying_court_reads_and_only_addressed_agencies_reply() -> None:
    check_reader("gd0112", "courts/gd0112/propertyQueries/q1")
    for court, name in (("zj0326", "courts/gd0112/propertyQueries/q1"), ("gd0112", "bogus")):
        with pytest.raises(PermissionDenied) as raised:
            check_reader(court, name)
        assert raised.value.reason == "NOT_QUERY_OWNER"
    with pytest.raises(PermissionDenied) as denied:
        check_addressed("csdc", "courts/gd0112/propertyQueries/q1", None)
    assert denied.value.reason == "NOT_ADDRESSED"


def test_summary_counts_statuses_and_totals_per_category(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    query, results = running(courts, agencies)
    icbc = results["bank-icbc"]._replace(
        status=AgencyStatus.ANSWERED,
        items=(ReplyItem(PropertyCategory.DEPOSITS, 300), ReplyItem(PropertyCategory.DEPOSITS, 200)),
    )
    police = results["tp-mps"]._replace(status=AgencyStatus.ANSWERED, items=(ReplyItem(PropertyCategory.VEHICLES, 0),))
    summary = summarize(query, [icbc, police, results["bank-ccb"]._replace(status=AgencyStatus.TIMED_OUT)])
    assert summary.by_status == {AgencyStatus.ANSWERED: 2, AgencyStatus.TIMED_OUT: 1}
    assert [(t.category, t.items, t.value_fen) for t in summary.by_category] == [
        (PropertyCategory.DEPOSITS, 2, 500),
        (PropertyCategory.VEHICLES, 1, 0),
    ]
