"""Translation between property-query protobuf messages and domain objects."""

from __future__ import annotations

from collections.abc import Sequence

from rogatory.assistance.v1 import property_query_pb2 as pb
from rogatory.events.v1 import query_events_pb2 as events_pb2

from assistance.property_categories import PropertyCategory
from assistance.queries import AgencyReply, AgencyStatus, CreateQuery, PropertyQuery, ReplyItem, Summary
from registry.errors import Violations
from services.assistance.queries.store import StoredResult
from services.plumbing.times import timedelta_of, timestamp

CATEGORY_NUMBERS = {c: pb.PropertyCategory.Value(str(c)) for c in PropertyCategory}
_CATEGORIES = {number: category for category, number in CATEGORY_NUMBERS.items()}
_STATUS_NUMBERS = {s: pb.AgencyQueryResult.Status.Value(str(s)) for s in AgencyStatus}


def create_command(request: pb.CreatePropertyQueryRequest) -> CreateQuery:
    query = request.property_query
    return CreateQuery(
        parent=request.parent,
        case=query.case,
        debtor=query.debtor,
        categories=tuple(pb.PropertyCategory.Name(c) if c else "" for c in query.categories),
        response_window=timedelta_of(query.response_window, "property_query.response_window")
        if query.HasField("response_window")
        else None,
    )


_STATUS_NAMES = {number: name for name, number in pb.AgencyQueryResult.Status.items() if number}


def reply_command(agency_id: str, outcome: int, items: Sequence[pb.PropertyItem], failure_reason: str) -> AgencyReply:
    """The domain reply; InvalidArgument when an item names no category."""
    return AgencyReply(agency_id, _STATUS_NAMES.get(outcome, ""), _reply_items(items) if items else (), failure_reason)


def _reply_items(items: Sequence[pb.PropertyItem]) -> tuple[ReplyItem, ...]:
    violations = Violations()
    parsed: list[ReplyItem] = []
    for index, item in enumerate(items):
        if not item.category:
            violations.add(f"items[{index}].category", "required", "REQUIRED")
            continue
        category = _CATEGORIES.get(item.category)
        if category is None:
            violations.add(f"items[{index}].category", f"unknown category {item.category}", "UNKNOWN")
            continue
        parsed.append(ReplyItem(category, item.value_fen))
    violations.raise_if_any()
    return tuple(parsed)


def item_record(items: Sequence[pb.PropertyItem]) -> bytes:
    """What is stored of a reply: the typed items, exactly as the agency sent them."""
    return pb.AgencyQueryResult(items=items).SerializeToString() if items else b""


def summary_to_proto(query: PropertyQuery, summary: Summary) -> pb.QuerySummary:
    counts = summary.by_status
    return pb.QuerySummary(
        answered=counts.get(AgencyStatus.ANSWERED, 0),
        no_property=counts.get(AgencyStatus.NO_PROPERTY, 0),
        failed=counts.get(AgencyStatus.FAILED, 0),
        timed_out=counts.get(AgencyStatus.TIMED_OUT, 0),
        pending=counts.get(AgencyStatus.PENDING, 0),
        categories=[
            pb.QuerySummary.CategoryTotal(category=CATEGORY_NUMBERS[t.category], items=t.items, value_fen=t.value_fen)
            for t in summary.by_category
        ],
    )


def result_to_proto(stored: StoredResult) -> pb.AgencyQueryResult:
    result = stored.result
    message = pb.AgencyQueryResult.FromString(stored.record) if stored.record else pb.AgencyQueryResult()
    message.agency = f"agencies/{result.agency_id}"
    message.categories.extend(CATEGORY_NUMBERS[c] for c in result.categories)
    message.status = _STATUS_NUMBERS[result.status]  # type: ignore[assignment]
    message.failure_reason = result.failure_reason
    if result.reply_time is not None:
        message.reply_time.CopyFrom(timestamp(result.reply_time))
    return message


def query_to_proto(
    query: PropertyQuery, summary: Summary | None = None, results: Sequence[StoredResult] | None = None
) -> pb.PropertyQuery:
    message = pb.PropertyQuery(
        name=query.name,
        case=query.case_name,
        debtor=query.debtor.display_name,
        debtor_id_number=query.debtor.id_number_masked,
        categories=[CATEGORY_NUMBERS[c] for c in query.categories],
        state=pb.PropertyQuery.State.Value(str(query.state)),
        create_time=timestamp(query.created_at),
        deadline_time=timestamp(query.deadline),
        agency_count=query.total,
        pending_count=query.pending,
        etag=f'W/"{query.version}"',
    )
    if query.completed_at is not None:
        message.complete_time.CopyFrom(timestamp(query.completed_at))
    if summary is not None:
        message.summary.CopyFrom(summary_to_proto(query, summary))
    if results is not None:
        message.agency_results.extend(result_to_proto(r) for r in results)
    return message


class RequestPayloads:
    """One query's `PropertyQueryRequested` payloads: the fields all agencies share are
    serialized once, and each agency's own fields appended (protobuf parses concatenated
    messages as one), so a 1,000-agency fan-out does not rebuild the query 1,000 times."""

    def __init__(self, query: PropertyQuery):
        self._common = events_pb2.PropertyQueryRequested(
            property_query=query.name,
            case=query.case_name,
            debtor=query.debtor.display_name,
            debtor_id_number=query.debtor.id_number_masked,
            deadline_time=timestamp(query.deadline),
        ).SerializeToString()

    def for_agency(self, agency_id: str, categories: Sequence[PropertyCategory], reply_subject: str) -> bytes:
        own = events_pb2.PropertyQueryRequested(
            agency=f"agencies/{agency_id}", categories=[CATEGORY_NUMBERS[c] for c in categories], reply_subject=reply_subject
        )
        return self._common + own.SerializeToString()
