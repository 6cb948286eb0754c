"""Property queries (网络查控): a court asks every agency that holds a kind of property
whether one of its case's debtors has any, and sees the replies as they come in.

Pure domain. `create_query` validates a `CreateQuery` command against the case (the court
must own it, the debtor must be one of its respondents) and returns the query, one
pending `AgencyResult` per addressed agency and the `PropertyQueryCreated` event.
`answer` records one agency's reply; `settle` closes agencies on the query (completing it
when none is pending); `time_out` marks the agencies still pending at the deadline.
`seen_at` is the read-time view: a query past its deadline reads as complete even before
the scanner has written it so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from assistance.property_categories import Addressee, PropertyCategory, addressees
from registry.access import check_case_access, check_case_name, court_id_of
from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from registry.errors import FailedPrecondition, FieldViolation, InvalidArgument, PermissionDenied, Violations, parse_enum
from registry.text import check_text

MIN_RESPONSE_WINDOW = timedelta(seconds=1)
MAX_RESPONSE_WINDOW = timedelta(days=30)
MAX_FAILURE_REASON = 500
MAX_ITEMS_PER_REPLY = 1000


class QueryState(StrEnum):
    """Names match rogatory.assistance.v1.PropertyQuery.State."""

    RUNNING = "RUNNING"  # some agency has not answered and the deadline has not passed
    COMPLETED = "COMPLETED"  # every agency answered or timed out


class AgencyStatus(StrEnum):
    """Names match rogatory.assistance.v1.AgencyQueryResult.Status."""

    PENDING = "PENDING"
    ANSWERED = "ANSWERED"  # property found; the reply lists it
    NO_PROPERTY = "NO_PROPERTY"
    FAILED = "FAILED"  # the agency could not run the query (e.g. the debtor is not identifiable)
    TIMED_OUT = "TIMED_OUT"  # no reply by the deadline

    @property
    def final(self) -> bool:
        return self is not AgencyStatus.PENDING


#: What an agency may report; TIMED_OUT and PENDING are Rogatory's to set.
REPLY_OUTCOMES = frozenset({AgencyStatus.ANSWERED, AgencyStatus.NO_PROPERTY, AgencyStatus.FAILED})


def query_name(court_id: str, query_id: str) -> str:
    return f"courts/{court_id}/propertyQueries/{query_id}"


def parse_query_name(name: str) -> tuple[str, str] | None:
    """`courts/{court}/propertyQueries/{id}` → (court, id); None when it is not such a name."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "courts" or parts[2] != "propertyQueries" or not parts[1] or not parts[3]:
        return None
    return parts[1], parts[3]


@dataclass(frozen=True)
class Debtor:
    """A respondent of the case, as the case replica knows it (ID number masked)."""

    display_name: str
    kind: str = ""  # PERSON / ORGANIZATION
    id_number_masked: str = ""


@dataclass(frozen=True)
class CaseFacts:
    """What the service knows of the case: its court and respondents (None: not replicated)."""

    court_id: str
    respondents: tuple[Debtor, ...]


# ReplyItem, AgencyResult and AgencyReply are NamedTuples, not frozen dataclasses: a
# 1,000-agency query makes thousands of them, and a tuple is built about 4x faster.


class ReplyItem(NamedTuple):
    """One piece of property in a reply, as far as the domain needs it (the typed record stays in the service)."""

    category: PropertyCategory
    value_fen: int = 0  # balance, market value or 0 when the agency gives none


class AgencyResult(NamedTuple):
    query_id: str
    agency_id: str
    categories: tuple[PropertyCategory, ...]  # what this agency was asked
    status: AgencyStatus = AgencyStatus.PENDING
    reply_time: datetime | None = None
    items: tuple[ReplyItem, ...] = ()
    failure_reason: str = ""


@dataclass(frozen=True)
class PropertyQuery:
    id: str
    court_id: str
    case_name: str
    debtor: Debtor
    categories: tuple[PropertyCategory, ...]
    created_at: datetime
    deadline: datetime
    total: int  # agencies addressed
    pending: int  # agencies not yet answered or timed out
    state: QueryState = QueryState.RUNNING
    completed_at: datetime | None = None
    version: int = 1

    @property
    def name(self) -> str:
        return query_name(self.court_id, self.id)


@dataclass(frozen=True)
class PropertyQueryCreated:
    query: PropertyQuery
    results: tuple[AgencyResult, ...]  # one per agency: the service sends each its request


@dataclass(frozen=True)
class PropertyQueryCompleted:
    query: PropertyQuery


QueryEvent = PropertyQueryCreated | PropertyQueryCompleted


@dataclass(frozen=True)
class CreateQuery:
    """The command: what a court's system sends, still unvalidated."""

    parent: str  # courts/{court}
    case: str  # courts/{court}/cases/{case}
    debtor: str  # display name of one of the case's respondents
    categories: tuple[str, ...]  # PropertyCategory names
    response_window: timedelta | None = None  # None: the default deadline


class AgencyReply(NamedTuple):
    """An agency's answer, from gRPC or from its NATS reply."""

    agency_id: str
    outcome: str  # ANSWERED / NO_PROPERTY / FAILED
    items: tuple[ReplyItem, ...] = ()
    failure_reason: str = ""


def create_query(
    command: CreateQuery,
    courts: CourtCatalog,
    agencies: AgencyCatalog,
    case: CaseFacts | None,
    now: datetime,
    *,
    query_id: str,
    default_deadline: Callable[[datetime], datetime],
) -> tuple[PropertyQuery, list[AgencyResult], list[QueryEvent]]:
    """Validates the command; returns the running query, its pending agency results and the event.

    Raises InvalidArgument with every field violation at once, then PermissionDenied
    (NOT_CASE_OWNER), FailedPrecondition (CASE_NOT_REGISTERED), InvalidArgument
    (NOT_A_DEBTOR) and FailedPrecondition (NO_AGENCY).
    """
    violations = Violations()
    court_id = court_id_of(command.parent, "parent", courts, violations)
    check_case_name(command.case, "property_query.case", violations)
    debtor_name = command.debtor.strip()
    if not debtor_name:
        violations.add("property_query.debtor", "required: the display name of a respondent of the case", "REQUIRED")
    categories = _categories(command.categories, violations)
    window = _window(command.response_window, violations)
    violations.raise_if_any()
    assert court_id is not None
    check_case_access(court_id, command.case, case.court_id if case else None)
    assert case is not None
    debtor = _debtor(case, debtor_name)
    found = addressees(categories, agencies)
    if not found:
        raise FailedPrecondition(
            f"no agency answers {', '.join(categories)}", reason="NO_AGENCY", metadata={"categories": ",".join(categories)}
        )
    deadline = now + window if window is not None else default_deadline(now)
    query = PropertyQuery(
        id=query_id,
        court_id=court_id,
        case_name=command.case,
        debtor=debtor,
        categories=categories,
        created_at=now,
        deadline=deadline,
        total=len(found),
        pending=len(found),
    )
    results = [_pending(query_id, a) for a in found]
    return query, results, [PropertyQueryCreated(query, tuple(results))]


def _pending(query_id: str, addressee: Addressee) -> AgencyResult:
    return AgencyResult(query_id=query_id, agency_id=addressee.agency.id, categories=addressee.categories)


def _categories(names: Iterable[str], violations: Violations) -> tuple[PropertyCategory, ...]:
    parsed: list[PropertyCategory] = []
    names = list(names)
    if not names:
        violations.add("property_query.categories", "name at least one property category", "REQUIRED")
    for index, name in enumerate(names):
        category = parse_enum(PropertyCategory, name, f"property_query.categories[{index}]", violations)
        if category is not None and category not in parsed:
            parsed.append(category)
    return tuple(parsed)


def _window(window: timedelta | None, violations: Violations) -> timedelta | None:
    if window is not None and not MIN_RESPONSE_WINDOW <= window <= MAX_RESPONSE_WINDOW:
        violations.add(
            "response_window",
            f"must be between {MIN_RESPONSE_WINDOW.total_seconds():.0f} s and {MAX_RESPONSE_WINDOW.days} days",
            "OUT_OF_RANGE",
        )
    return window


def _debtor(case: CaseFacts, display_name: str) -> Debtor:
    for respondent in case.respondents:
        if respondent.display_name == display_name:
            return respondent
    raise InvalidArgument.of(
        [FieldViolation("property_query.debtor", f"{display_name!r} is not a respondent of the case", "NOT_A_DEBTOR")],
        reason="NOT_A_DEBTOR",
    )


# --- replies ---------------------------------------------------------------------------------


def answer(query: PropertyQuery, result: AgencyResult, reply: AgencyReply, now: datetime) -> AgencyResult:
    """The agency's result after its reply.

    Raises InvalidArgument for a malformed reply, FailedPrecondition ALREADY_REPLIED when
    the agency has answered before (a second reply has no effect) and DEADLINE_PASSED
    when it comes after the query's deadline.
    """
    status = _check_reply(reply, result.categories)
    if result.status is AgencyStatus.TIMED_OUT or (not result.status.final and now >= query.deadline):
        raise FailedPrecondition(
            f"the deadline of {query.name} passed at {query.deadline.isoformat()}",
            reason="DEADLINE_PASSED",
            metadata={"property_query": query.name, "agency": f"agencies/{result.agency_id}"},
        )
    if result.status.final:
        raise FailedPrecondition(
            f"agencies/{result.agency_id} already replied to {query.name}",
            reason="ALREADY_REPLIED",
            metadata={"property_query": query.name, "agency": f"agencies/{result.agency_id}"},
        )
    return AgencyResult(  # not dataclasses.replace: this runs once per reply, 1,000 times per query
        result.query_id, result.agency_id, result.categories, status, now, reply.items, reply.failure_reason.strip()
    )


def _check_reply(reply: AgencyReply, asked: tuple[PropertyCategory, ...]) -> AgencyStatus:
    violations = Violations()
    status = parse_enum(AgencyStatus, reply.outcome, "outcome", violations)
    if status is not None and status not in REPLY_OUTCOMES:
        violations.add("outcome", "must be ANSWERED, NO_PROPERTY or FAILED", "BAD_OUTCOME")
    if status is AgencyStatus.ANSWERED and not reply.items:
        violations.add("items", "an ANSWERED reply lists the property found (NO_PROPERTY when there is none)", "REQUIRED")
    if status in (AgencyStatus.NO_PROPERTY, AgencyStatus.FAILED) and reply.items:
        violations.add("items", f"a {status} reply lists no property", "UNEXPECTED")
    failed = status is AgencyStatus.FAILED  # then the reason is required: say why the query could not be run
    check_text(reply.failure_reason.strip(), "failure_reason", violations, max_length=MAX_FAILURE_REASON, required=failed)
    if len(reply.items) > MAX_ITEMS_PER_REPLY:
        violations.add("items", f"at most {MAX_ITEMS_PER_REPLY} items per reply", "TOO_MANY")
    for index, item in enumerate(reply.items):
        if item.category not in asked:
            violations.add(f"items[{index}]", f"{item.category} was not asked of this agency", "NOT_ASKED")
        if item.value_fen < 0:
            violations.add(f"items[{index}]", "a value is not negative", "OUT_OF_RANGE")
    violations.raise_if_any()
    assert status is not None
    return status


def settle(query: PropertyQuery, finished: int, now: datetime) -> tuple[PropertyQuery, list[QueryEvent]]:
    """The query after `finished` more agencies answered or timed out; completes it at zero pending."""
    if finished <= 0:
        return query, []
    pending = max(query.pending - finished, 0)
    if pending or query.state is QueryState.COMPLETED:
        return replace(query, pending=pending, version=query.version + 1), []
    completed = replace(query, pending=0, state=QueryState.COMPLETED, completed_at=now, version=query.version + 1)
    return completed, [PropertyQueryCompleted(completed)]


def time_out(
    query: PropertyQuery, results: Iterable[AgencyResult], now: datetime
) -> tuple[PropertyQuery, list[AgencyResult], list[QueryEvent]]:
    """At or after the deadline: every pending agency times out and the query completes."""
    if query.state is QueryState.COMPLETED or now < query.deadline:
        return query, [], []
    timed_out = [r._replace(status=AgencyStatus.TIMED_OUT) for r in results if not r.status.final]
    settled, events = settle(query, query.pending, now)
    return settled, timed_out, events


def seen_at(query: PropertyQuery, results: list[AgencyResult], now: datetime) -> tuple[PropertyQuery, list[AgencyResult]]:
    """The query as a reader sees it at `now`: past the deadline, pending agencies read as timed out."""
    if query.state is QueryState.COMPLETED or now < query.deadline:
        return query, results
    done = replace(query, pending=0, state=QueryState.COMPLETED, completed_at=query.deadline)
    return done, [r if r.status.final else r._replace(status=AgencyStatus.TIMED_OUT) for r in results]


# --- who may see a query ---------------------------------------------------------------------


def check_reader(court_id: str, name: str) -> None:
    """Only the querying court reads a query; judged from the name, so others cannot probe which exist."""
    parsed = parse_query_name(name)
    if parsed is None or parsed[0] != court_id:
        raise PermissionDenied(
            f"{name} is not a property query of courts/{court_id}",
            reason="NOT_QUERY_OWNER",
            metadata={"property_query": name, "court": f"courts/{court_id}"},
        )


def check_addressed(agency_id: str, name: str, result: AgencyResult | None) -> AgencyResult:
    """An agency replies only to a query it was sent; the same answer whether or not the query exists."""
    if result is None:
        raise PermissionDenied(
            f"{name} was not sent to agencies/{agency_id}",
            reason="NOT_ADDRESSED",
            metadata={"property_query": name, "agency": f"agencies/{agency_id}"},
        )
    return result


# --- the aggregated view ---------------------------------------------------------------------


@dataclass(frozen=True)
class CategoryTotal:
    category: PropertyCategory
    items: int = 0
    value_fen: int = 0


@dataclass(frozen=True)
class Summary:
    by_status: dict[AgencyStatus, int] = field(default_factory=dict)
    by_category: tuple[CategoryTotal, ...] = ()


def summarize(query: PropertyQuery, results: Iterable[AgencyResult]) -> Summary:
    """Agencies per status, and property found per category (items and total value), in the order asked."""
    statuses: Counter[AgencyStatus] = Counter()
    found: list[ReplyItem] = []
    for result in results:
        statuses[result.status] += 1
        found.extend(result.items)
    return summary_of_totals(query, statuses, [(i.category, 1, i.value_fen) for i in found])


def summary_of_totals(
    query: PropertyQuery, statuses: Mapping[AgencyStatus, int], found: Iterable[tuple[PropertyCategory, int, int]]
) -> Summary:
    """The summary from agencies per status and (category, items, value) totals, e.g. summed by the database."""
    items: Counter[PropertyCategory] = Counter()
    values: Counter[PropertyCategory] = Counter()
    for category, count, value_fen in found:
        items[category] += count
        values[category] += value_fen
    return Summary(
        by_status={s: statuses[s] for s in AgencyStatus if statuses.get(s)},
        by_category=tuple(CategoryTotal(c, items[c], values[c]) for c in query.categories),
    )
