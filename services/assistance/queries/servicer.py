"""gRPC PropertyQueryService: courts create and read their queries, agencies reply as themselves."""

from __future__ import annotations

import grpc
from rogatory.assistance.v1 import property_query_pb2 as pb
from rogatory.assistance.v1 import property_query_pb2_grpc

from assistance.queries import QueryState, summarize
from registry.errors import PermissionDenied
from services.assistance.queries.handlers import IncomingReply, QueryHandlers, QueryView
from services.assistance.queries.messages import create_command, item_record, query_to_proto, reply_command, result_to_proto
from services.assistance.queries.store import QueryFilter
from services.plumbing.auth import PrincipalKind, calling_court, current_principal
from services.plumbing.filtering import enum_term, parse_filter
from services.plumbing.idempotency import current_request
from services.plumbing.names import parse_name, parse_parent
from services.plumbing.pagination import after_seq, encode_token, page_size

QUERY_FILTERS = {"case": str, "state": str}


class PropertyQueryServicer(property_query_pb2_grpc.PropertyQueryServiceServicer):
    def __init__(self, handlers: QueryHandlers):
        self.handlers = handlers

    async def CreatePropertyQuery(
        self, request: pb.CreatePropertyQueryRequest, context: grpc.aio.ServicerContext
    ) -> pb.PropertyQuery:
        _require_own_parent(request.parent)
        stored = await self.handlers.create(create_command(request), current_request())
        return query_to_proto(stored.query)  # BASIC: every agency is pending; GetPropertyQuery shows progress

    async def GetPropertyQuery(self, request: pb.GetPropertyQueryRequest, context: grpc.aio.ServicerContext) -> pb.PropertyQuery:
        parse_name(request.name, "courts/{court}/propertyQueries/{property_query}")
        full = request.view != pb.PropertyQuery.BASIC
        return _view_to_proto(await self.handlers.get(request.name, calling_court(), with_results=full), full)

    async def ListPropertyQueries(
        self, request: pb.ListPropertyQueriesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPropertyQueriesResponse:
        court_id = _require_own_parent(request.parent)
        terms = parse_filter(request.filter, QUERY_FILTERS)
        where = QueryFilter(court_id, str(terms["case"]) if "case" in terms else None, enum_term(QueryState, terms, "state"))
        after = after_seq(request)
        limit = page_size(request.page_size)
        found = await self.handlers.list(where, after, limit + 1)
        token = encode_token(request, found[limit - 1].stored.seq) if len(found) > limit else ""
        full = request.view == pb.PropertyQuery.FULL
        if full:  # FULL in a list: each query's results, read one query at a time
            found = [await self.handlers.get(v.stored.query.name, court_id) for v in found[:limit]]
        return pb.ListPropertyQueriesResponse(
            property_queries=[_view_to_proto(v, full) for v in found[:limit]], next_page_token=token
        )

    async def ReplyPropertyQuery(
        self, request: pb.ReplyPropertyQueryRequest, context: grpc.aio.ServicerContext
    ) -> pb.AgencyQueryResult:
        parse_name(request.name, "courts/{court}/propertyQueries/{property_query}")
        agency_id = parse_name(request.agency, "agencies/{agency}", "agency")["agency"]
        principal = current_principal()
        if principal.kind is not PrincipalKind.AGENCY or principal.id != agency_id:
            raise PermissionDenied(f"{principal.name} cannot reply as {request.agency}", reason="NOT_THE_AGENCY")
        reply = reply_command(agency_id, request.outcome, request.items, request.failure_reason)
        stored = await self.handlers.reply(IncomingReply(request.name, reply, item_record(request.items)), current_request())
        return result_to_proto(stored)


def _require_own_parent(parent: str) -> str:
    court_id = parse_parent(parent)
    caller = calling_court()
    if court_id != caller:
        raise PermissionDenied(f"courts/{caller} cannot act for {parent}", reason="NOT_THE_COURT")
    return court_id


def _view_to_proto(view: QueryView, full: bool) -> pb.PropertyQuery:
    results = view.results if full else None
    summary = summarize(view.query, [r.result for r in view.results]) if full else None
    return query_to_proto(view.query, summary, results)
