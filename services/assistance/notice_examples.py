"""Complete, valid notice requests for the demo, the agency simulator's tests and e2e tests:
the seed's 7,000,000 元 freeze at a bank, a seal at a real-estate registry, a deposit query."""

from __future__ import annotations

import uuid

from rogatory.assistance.v1 import assistance_pb2 as pb
from rogatory.delegation.v1 import delegation_pb2 as dg

A = dg.Attachment
#: The document set every measure carries (a query needs no ruling, but one does no harm).
DOCUMENTS = (
    A(kind=A.RULING, name="执行裁定书.pdf", size_bytes=48_213, sha256="1" * 64),
    A(kind=A.ASSISTANCE_NOTICE, name="协助执行通知书.pdf", size_bytes=20_114, sha256="2" * 64),
    A(kind=A.OFFICER_CREDENTIALS, name="执行公务证.pdf", size_bytes=9_870, sha256="3" * 64),
)


def notice_request(
    court_id: str, case_name: str, agency_id: str, kind: int, target: pb.NoticeTarget, seizure: str = ""
) -> pb.CreateAssistanceNoticeRequest:
    return pb.CreateAssistanceNoticeRequest(
        parent=f"courts/{court_id}",
        request_id=str(uuid.uuid4()),
        assistance_notice=pb.AssistanceNotice(
            case=case_name,
            agency=f"agencies/{agency_id}",
            kind=kind,  # type: ignore[arg-type]
            target_details=target,
            documents=DOCUMENTS,
            seizure=seizure,
        ),
    )


def freeze_request(
    court_id: str, case_name: str, debtor: str, agency_id: str = "bank-icbc", amount_fen: int = 700_000_000
) -> pb.CreateAssistanceNoticeRequest:
    target = pb.NoticeTarget(
        debtor=debtor,
        deposit_account=pb.NoticeTarget.DepositAccount(account_number="6222021001123456789", amount_fen=amount_fen),
    )
    return notice_request(court_id, case_name, agency_id, pb.AssistanceNotice.FREEZE_DEPOSITS, target)


def query_request(court_id: str, case_name: str, debtor: str, agency_id: str = "bank-icbc") -> pb.CreateAssistanceNoticeRequest:
    return notice_request(court_id, case_name, agency_id, pb.AssistanceNotice.QUERY_DEPOSITS, pb.NoticeTarget(debtor=debtor))


def seal_request(
    court_id: str, case_name: str, debtor: str, agency_id: str, certificate_number: str = "粤(2019)广州市不动产权第0001234号"
) -> pb.CreateAssistanceNoticeRequest:
    target = pb.NoticeTarget(
        debtor=debtor,
        registered_property=pb.NoticeTarget.RegisteredProperty(
            property_kind=dg.RegisteredPropertyDetails.REAL_ESTATE, location="某市某路1号", certificate_number=certificate_number
        ),
    )
    return notice_request(court_id, case_name, agency_id, pb.AssistanceNotice.SEAL_PROPERTY, target)


def renew_request(
    court_id: str, case_name: str, debtor: str, agency_id: str, seizure: str, kind: int
) -> pb.CreateAssistanceNoticeRequest:
    """A renewal (or release) acts on `seizure`; the target comes from it."""
    return notice_request(court_id, case_name, agency_id, kind, pb.NoticeTarget(debtor=debtor), seizure)
