"""gRPC AssistanceService: translates requests into handler calls and results into messages."""

from __future__ import annotations

import grpc
from rogatory.assistance.v1 import assistance_pb2 as pb
from rogatory.assistance.v1 import assistance_pb2_grpc

from assistance.notices import NoticeKind, NoticeState
from registry.errors import NotFound
from services.assistance.handlers import AssistanceHandlers
from services.assistance.messages import create_command, notice_to_proto
from services.assistance.store import NoticeQuery
from services.plumbing.filtering import enum_term, parse_filter
from services.plumbing.names import parse_name
from services.plumbing.pagination import after_seq, encode_token, page_size

NOTICE_FILTERS = {"agency": str, "kind": str, "state": str, "case": str}


class AssistanceServicer(assistance_pb2_grpc.AssistanceServiceServicer):
    def __init__(self, handlers: AssistanceHandlers):
        self.handlers = handlers

    async def CreateAssistanceNotice(
        self, request: pb.CreateAssistanceNoticeRequest, context: grpc.aio.ServicerContext
    ) -> pb.AssistanceNotice:
        stored = await self.handlers.create_notice(create_command(request), request.request_id)
        return notice_to_proto(stored.notice)

    async def GetAssistanceNotice(
        self, request: pb.GetAssistanceNoticeRequest, context: grpc.aio.ServicerContext
    ) -> pb.AssistanceNotice:
        parse_name(request.name, "courts/{court}/assistanceNotices/{assistance_notice}")
        return notice_to_proto((await self.handlers.get_notice(request.name)).notice)

    async def ListAssistanceNotices(
        self, request: pb.ListAssistanceNoticesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAssistanceNoticesResponse:
        court_id = parse_name(request.parent, "courts/{court}", "parent")["court"]
        if court_id != "-" and court_id not in self.handlers.courts:
            raise NotFound("court", request.parent)
        query = _query(None if court_id == "-" else court_id, parse_filter(request.filter, NOTICE_FILTERS))
        fingerprint = f"{request.parent}|{request.filter}"
        after = after_seq(request.page_token, fingerprint)
        limit = page_size(request.page_size)
        found = await self.handlers.list_notices(query, after, limit + 1)
        token = encode_token(fingerprint, found[limit - 1].seq) if len(found) > limit else ""
        return pb.ListAssistanceNoticesResponse(
            assistance_notices=[notice_to_proto(s.notice) for s in found[:limit]], next_page_token=token
        )


def _query(court_id: str | None, terms: dict[str, str | int]) -> NoticeQuery:
    agency = terms.get("agency")
    return NoticeQuery(
        court_id=court_id,
        agency_id=parse_name(str(agency), "agencies/{agency}", "filter")["agency"] if agency else None,
        kind=enum_term(NoticeKind, terms, "kind"),
        state=enum_term(NoticeState, terms, "state"),
        case_name=str(terms["case"]) if "case" in terms else None,
    )
