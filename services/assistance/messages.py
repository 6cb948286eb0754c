"""Translation between assistance protobuf messages and domain objects."""

from __future__ import annotations

from rogatory.assistance.v1 import assistance_pb2 as pb

from assistance.notices import AssistanceNotice, CreateNotice
from services.plumbing.times import timestamp
from services.registry.messages import enum_name


def notice_to_proto(notice: AssistanceNotice) -> pb.AssistanceNotice:
    return pb.AssistanceNotice(
        name=notice.name,
        case=notice.case_name,
        agency=f"agencies/{notice.agency_id}",
        kind=pb.AssistanceNotice.Kind.Value(str(notice.kind)),
        target=notice.target,
        state=pb.AssistanceNotice.State.Value(str(notice.state)),
        create_time=timestamp(notice.created_at),
        etag=f'W/"{notice.version}"',
    )


def create_command(request: pb.CreateAssistanceNoticeRequest) -> CreateNotice:
    notice = request.assistance_notice
    return CreateNotice(
        parent=request.parent,
        case=notice.case,
        agency=notice.agency,
        kind=enum_name(pb.AssistanceNotice.Kind, notice.kind),
        target=notice.target,
    )
