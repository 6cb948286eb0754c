"""Assistance notices (协助执行通知书): a court asks an agency — a bank, a real-estate
registry, the traffic police, a market regulator — to carry out a measure on a debtor's
property.

Pure domain: `create_notice` validates a `CreateNotice` command and returns the sent
`AssistanceNotice` with the `AssistanceNoticeSent` event it records; persistence,
idempotency and publication are the service layer's job. Later commands (receive, answer,
object) take a notice and return its next version with their events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from registry.access import check_case_access, check_case_name, court_id_of
from registry.agencies import Agency, AgencyCatalog, AgencyKind
from registry.courts import CourtCatalog
from registry.errors import Violations, parse_enum

MAX_TARGET_LENGTH = 500


class NoticeKind(StrEnum):
    """Measures the law names; names match rogatory.assistance.v1.AssistanceNotice.Kind."""

    QUERY_DEPOSITS = "QUERY_DEPOSITS"
    FREEZE_DEPOSITS = "FREEZE_DEPOSITS"
    RENEW_FREEZE_DEPOSITS = "RENEW_FREEZE_DEPOSITS"
    UNFREEZE_DEPOSITS = "UNFREEZE_DEPOSITS"
    DEDUCT_DEPOSITS = "DEDUCT_DEPOSITS"
    SEAL_PROPERTY = "SEAL_PROPERTY"
    RENEW_SEAL_PROPERTY = "RENEW_SEAL_PROPERTY"
    UNSEAL_PROPERTY = "UNSEAL_PROPERTY"
    TRANSFER_PROPERTY = "TRANSFER_PROPERTY"
    FREEZE_EQUITY = "FREEZE_EQUITY"
    WITHHOLD_INCOME = "WITHHOLD_INCOME"


class NoticeState(StrEnum):
    """Names match rogatory.assistance.v1.AssistanceNotice.State; only domain commands change it."""

    SENT = "SENT"
    RECEIVED = "RECEIVED"
    ANSWERED = "ANSWERED"
    OBJECTED = "OBJECTED"


_DEPOSITS = frozenset({AgencyKind.BANK})
_REGISTERED_PROPERTY = frozenset({AgencyKind.REAL_ESTATE_REGISTRY, AgencyKind.TRAFFIC_POLICE})

#: Which agencies can carry out each measure; None means any (income is withheld by
#: whoever pays it). A table rather than code, so adding e.g. online-payment providers to
#: deposit measures is a one-line change.
ACCEPTING_AGENCY_KINDS: dict[NoticeKind, frozenset[AgencyKind] | None] = {
    NoticeKind.QUERY_DEPOSITS: _DEPOSITS,
    NoticeKind.FREEZE_DEPOSITS: _DEPOSITS,
    NoticeKind.RENEW_FREEZE_DEPOSITS: _DEPOSITS,
    NoticeKind.UNFREEZE_DEPOSITS: _DEPOSITS,
    NoticeKind.DEDUCT_DEPOSITS: _DEPOSITS,
    NoticeKind.SEAL_PROPERTY: _REGISTERED_PROPERTY,
    NoticeKind.RENEW_SEAL_PROPERTY: _REGISTERED_PROPERTY,
    NoticeKind.UNSEAL_PROPERTY: _REGISTERED_PROPERTY,
    NoticeKind.TRANSFER_PROPERTY: _REGISTERED_PROPERTY,
    NoticeKind.FREEZE_EQUITY: frozenset({AgencyKind.MARKET_REGULATOR}),
    NoticeKind.WITHHOLD_INCOME: None,
}

#: A query covers all of the debtor's accounts; every other measure must say what it acts on.
TARGET_OPTIONAL = frozenset({NoticeKind.QUERY_DEPOSITS})


def notice_name(court_id: str, notice_id: str) -> str:
    return f"courts/{court_id}/assistanceNotices/{notice_id}"


@dataclass(frozen=True)
class AssistanceNotice:
    id: str
    court_id: str
    case_name: str  # courts/{court}/cases/{case}
    agency_id: str
    kind: NoticeKind
    target: str  # free text for now: account, property unit, plate or company
    created_at: datetime
    updated_at: datetime
    state: NoticeState = NoticeState.SENT
    version: int = 1  # bumped by every change, for optimistic concurrency (etag)

    @property
    def name(self) -> str:
        return notice_name(self.court_id, self.id)


@dataclass(frozen=True)
class AssistanceNoticeSent:
    notice: AssistanceNotice


@dataclass(frozen=True)
class CreateNotice:
    """The command: what a court's system sends, still unvalidated."""

    parent: str  # courts/{court}
    case: str  # courts/{court}/cases/{case}
    agency: str  # agencies/{agency}
    kind: str  # a NoticeKind name; "" when unspecified
    target: str = ""


def create_notice(
    command: CreateNotice,
    courts: CourtCatalog,
    agencies: AgencyCatalog,
    case_court_id: str | None,
    now: datetime,
    *,
    notice_id: str,
) -> tuple[AssistanceNotice, list[AssistanceNoticeSent]]:
    """Validates the command and returns the sent notice and its event.

    `case_court_id` is the case's court as the caller's case replica knows it (None: not
    seen); `notice_id` is injected like `now`. Raises InvalidArgument with every field
    violation at once, then PermissionDenied (NOT_CASE_OWNER) or FailedPrecondition
    (CASE_NOT_REGISTERED).
    """
    violations = Violations()
    court_id = court_id_of(command.parent, "parent", courts, violations)
    check_case_name(command.case, "assistance_notice.case", violations)
    agency = _check_agency(command.agency, agencies, violations)
    kind = parse_enum(NoticeKind, command.kind, "assistance_notice.kind", violations)
    if agency is not None and kind is not None:
        _check_agency_fits(agency, kind, violations)
    target = command.target.strip()
    _check_target(target, kind, violations)
    violations.raise_if_any()
    assert court_id is not None and agency is not None and kind is not None
    check_case_access(court_id, command.case, case_court_id)
    notice = AssistanceNotice(
        id=notice_id,
        court_id=court_id,
        case_name=command.case,
        agency_id=agency.id,
        kind=kind,
        target=target,
        created_at=now,
        updated_at=now,
    )
    return notice, [AssistanceNoticeSent(notice)]


def _check_agency(name: str, agencies: AgencyCatalog, violations: Violations) -> Agency | None:
    parts = name.split("/")
    if len(parts) != 2 or parts[0] != "agencies" or not parts[1]:
        violations.add(
            "assistance_notice.agency", f"must be an agency resource name, agencies/{{agency}}, got {name!r}", "RESOURCE_NAME"
        )
        return None
    agency = agencies.get(parts[1])
    if agency is None:
        violations.add("assistance_notice.agency", f"unknown agency {name!r}", "UNKNOWN_AGENCY")
    return agency


def _check_agency_fits(agency: Agency, kind: NoticeKind, violations: Violations) -> None:
    accepted = ACCEPTING_AGENCY_KINDS[kind]
    if accepted is not None and agency.kind not in accepted:
        wanted = " or ".join(sorted(accepted))
        violations.add(
            "assistance_notice.agency",
            f"{kind} needs a {wanted} agency; agencies/{agency.id} is a {agency.kind}",
            "AGENCY_KIND_MISMATCH",
        )


def _check_target(target: str, kind: NoticeKind | None, violations: Violations) -> None:
    if not target and kind is not None and kind not in TARGET_OPTIONAL:
        violations.add("assistance_notice.target", f"required for {kind}", "REQUIRED")
    elif len(target) > MAX_TARGET_LENGTH:
        violations.add("assistance_notice.target", f"at most {MAX_TARGET_LENGTH} characters", "TOO_LONG")
