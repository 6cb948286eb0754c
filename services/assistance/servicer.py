"""gRPC AssistanceService: translates requests into handler calls and results into messages.

The caller comes from the credential (services/plumbing/auth.py), never from the request:
a court sends notices and answers objections as `calling_court()`; agencies act as the
agency their credential names; reads are filtered by `current_principal()`.
"""

from __future__ import annotations

import grpc
from rogatory.assistance.v1 import assistance_pb2 as pb
from rogatory.assistance.v1 import assistance_pb2_grpc

from assistance.notices import NoticeKind, NoticeState
from assistance.seizures import AssetClass, SeizureState
from registry.errors import NotFound
from services.assistance import messages as m
from services.assistance.agency_turnaround import agency_turnaround_statistics
from services.assistance.handlers import AssistanceHandlers
from services.assistance.store import NoticeQuery, SeizureQuery
from services.plumbing.auth import calling_court, current_principal
from services.plumbing.filtering import enum_term, parse_filter
from services.plumbing.idempotency import current_request
from services.plumbing.names import parse_name, parse_parent
from services.plumbing.pagination import after_seq, encode_token, page_size

NOTICE_FILTERS = {"agency": str, "kind": str, "state": str, "case": str}
SEIZURE_FILTERS = {"agency": str, "state": str, "case": str, "asset_class": str}
NOTICE_NAME = "courts/{court}/assistanceNotices/{assistance_notice}"
SEIZURE_NAME = "courts/{court}/seizures/{seizure}"


class AssistanceServicer(assistance_pb2_grpc.AssistanceServiceServicer):
    def __init__(self, handlers: AssistanceHandlers):
        self.handlers = handlers

    # --- notices: standard methods ----------------------------------------------------------------

    async def CreateAssistanceNotice(
        self, request: pb.CreateAssistanceNoticeRequest, context: grpc.aio.ServicerContext
    ) -> pb.AssistanceNotice:
        court_id = calling_court()
        parse_parent(request.parent)
        stored = await self.handlers.create_notice(m.create_command(request), court_id, current_request())
        return m.notice_to_proto(stored.notice)

    async def GetAssistanceNotice(
        self, request: pb.GetAssistanceNoticeRequest, context: grpc.aio.ServicerContext
    ) -> pb.AssistanceNotice:
        parse_name(request.name, NOTICE_NAME)
        return self._view((await self.handlers.get_notice(request.name, current_principal())).notice)

    async def ListAssistanceNotices(
        self, request: pb.ListAssistanceNoticesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAssistanceNoticesResponse:
        principal = current_principal()
        court_id = self._parent_court(request.parent)
        query = _notice_query(court_id, parse_filter(request.filter, NOTICE_FILTERS))
        after = after_seq(request)
        limit = page_size(request.page_size)
        found = await self.handlers.list_notices(query, after, limit + 1, principal)
        token = encode_token(request, found[limit - 1].seq) if len(found) > limit else ""
        return pb.ListAssistanceNoticesResponse(
            assistance_notices=[self._view(s.notice) for s in found[:limit]], next_page_token=token
        )

    # --- notices: custom methods ----------------------------------------------------------------------

    async def ReceiveAssistanceNotice(
        self, request: pb.ReceiveAssistanceNoticeRequest, context: grpc.aio.ServicerContext
    ) -> pb.AssistanceNotice:
        parse_name(request.name, NOTICE_NAME)
        stored = await self.handlers.receive(request.name, current_principal(), m.receive_command(request), current_request())
        return self._view(stored.notice)

    async def ReplyAssistanceNotice(
        self, request: pb.ReplyAssistanceNoticeRequest, context: grpc.aio.ServicerContext
    ) -> pb.AssistanceNotice:
        parse_name(request.name, NOTICE_NAME)
        stored = await self.handlers.reply(request.name, current_principal(), m.reply_command(request), current_request())
        return self._view(stored.notice)

    async def ObjectToAssistanceNotice(
        self, request: pb.ObjectToAssistanceNoticeRequest, context: grpc.aio.ServicerContext
    ) -> pb.AssistanceNotice:
        parse_name(request.name, NOTICE_NAME)
        stored = await self.handlers.object_to(request.name, current_principal(), m.object_command(request), current_request())
        return self._view(stored.notice)

    async def AnswerAssistanceNoticeObjection(
        self, request: pb.AnswerAssistanceNoticeObjectionRequest, context: grpc.aio.ServicerContext
    ) -> pb.AssistanceNotice:
        parse_name(request.name, NOTICE_NAME)
        command = m.answer_objection_command(request)
        stored = await self.handlers.answer_objection(request.name, current_principal(), command, current_request())
        return self._view(stored.notice)

    async def GetAssistanceNoticeTimeline(
        self, request: pb.GetAssistanceNoticeTimelineRequest, context: grpc.aio.ServicerContext
    ) -> pb.AssistanceNoticeTimeline:
        parse_name(request.name, NOTICE_NAME)
        stored, rows = await self.handlers.get_timeline(request.name, current_principal())
        sent_at = stored.notice.created_at
        return pb.AssistanceNoticeTimeline(
            assistance_notice=stored.notice.name, entries=[m.entry_to_proto(row, sent_at) for row in rows]
        )

    # --- seizures -------------------------------------------------------------------------------------

    async def GetSeizure(self, request: pb.GetSeizureRequest, context: grpc.aio.ServicerContext) -> pb.Seizure:
        parse_name(request.name, SEIZURE_NAME)
        return m.seizure_to_proto(await self.handlers.get_seizure(request.name, current_principal()))

    async def ListSeizures(self, request: pb.ListSeizuresRequest, context: grpc.aio.ServicerContext) -> pb.ListSeizuresResponse:
        principal = current_principal()
        court_id = self._parent_court(request.parent)
        terms = parse_filter(request.filter, SEIZURE_FILTERS)
        agency = terms.get("agency")
        query = SeizureQuery(
            court_id=court_id,
            agency_id=parse_name(str(agency), "agencies/{agency}", "filter")["agency"] if agency else None,
            state=enum_term(SeizureState, terms, "state"),
            case_name=str(terms["case"]) if "case" in terms else None,
            asset_class=enum_term(AssetClass, terms, "asset_class"),
        )
        after = after_seq(request)
        limit = page_size(request.page_size)
        found = await self.handlers.list_seizures(query, after, limit + 1, principal)
        token = encode_token(request, found[limit - 1].seq) if len(found) > limit else ""
        return pb.ListSeizuresResponse(seizures=[m.seizure_to_proto(s.seizure) for s in found[:limit]], next_page_token=token)

    # --- statistics -------------------------------------------------------------------------------------

    async def GetAgencyTurnaroundStatistics(
        self, request: pb.GetAgencyTurnaroundStatisticsRequest, context: grpc.aio.ServicerContext
    ) -> pb.AgencyTurnaroundStatistics:
        # Open to every authenticated caller, like the courts' figures: aggregates only.
        current_principal()
        return await agency_turnaround_statistics(self.handlers.reader, request.filter, request.group_by)

    # --- helpers ----------------------------------------------------------------------------------------

    def _parent_court(self, parent: str) -> str | None:
        court_id = parse_name(parent, "courts/{court}", "parent")["court"]
        if court_id != "-" and court_id not in self.handlers.courts:
            raise NotFound("court", parent)
        return None if court_id == "-" else court_id

    def _view(self, notice: object) -> pb.AssistanceNotice:
        message = m.notice_to_proto(notice)  # type: ignore[arg-type]
        objection = notice.objection  # type: ignore[attr-defined]
        if objection is not None:
            # "overdue" is as of now, even between two scanner passes.
            message.objection.answer_overdue = message.objection.answer_overdue or objection.is_overdue(self.handlers.clock())
        return message


def _notice_query(court_id: str | None, terms: dict[str, str | int]) -> NoticeQuery:
    agency = terms.get("agency")
    return NoticeQuery(
        court_id=court_id,
        agency_id=parse_name(str(agency), "agencies/{agency}", "filter")["agency"] if agency else None,
        kind=enum_term(NoticeKind, terms, "kind"),
        state=enum_term(NoticeState, terms, "state"),
        case_name=str(terms["case"]) if "case" in terms else None,
    )
