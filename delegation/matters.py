"""Delegated matters (事项委托): a requesting court asks the court where the debtor or the
property is (the entrusted court) to carry out one enforcement matter of its case.

Pure domain: `create_delegation` validates a `CreateDelegation` command and returns the new
`Delegation` with the `DelegationSubmitted` event it records; persistence, idempotency and
publication are the service layer's job. The lifecycle commands (acknowledge, start,
complete, return for supplement, supplement, return, withdraw) live in delegation.lifecycle
and return the next version of a `Delegation` with their events. What a delegation records
of its life (transitions, completion, supplement request, reasons) is defined here, beside
the aggregate that holds it, so the lifecycle builds on this module and not the reverse;
matter details, attachments and officers are in delegation.details.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from delegation.details import (
    REQUIRED_ATTACHMENTS,
    Attachment,
    MatterDetails,
    MatterKind,  # defined beside the per-kind rules; still imported from here by services/
    Officer,
    PropertyKind,
    RegisteredPropertyDetails,
    check_attachments,
    check_details,
    check_required_attachments,
)
from registry.access import check_case_access, check_case_name, court_id_of
from registry.courts import CourtCatalog, SpecialKind
from registry.errors import Violations, parse_enum
from registry.jurisdictions import JurisdictionTable
from registry.text import check_text

MAX_DESCRIPTION_LENGTH = 2000


class DelegationState(StrEnum):
    """Names match rogatory.delegation.v1.Delegation.State; only domain commands change it."""

    SUBMITTED = "SUBMITTED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    IN_PROGRESS = "IN_PROGRESS"
    RETURNED_FOR_SUPPLEMENT = "RETURNED_FOR_SUPPLEMENT"
    COMPLETED = "COMPLETED"
    RETURNED = "RETURNED"
    WITHDRAWN = "WITHDRAWN"


# --- what a delegation records of its life (delegation.lifecycle changes it) ------------------


class Action(StrEnum):
    ACKNOWLEDGE = "ACKNOWLEDGE"
    START = "START"
    COMPLETE = "COMPLETE"
    RETURN_FOR_SUPPLEMENT = "RETURN_FOR_SUPPLEMENT"
    SUPPLEMENT = "SUPPLEMENT"
    RETURN = "RETURN"
    WITHDRAW = "WITHDRAW"
    DEEM_WITHDRAWN = "DEEM_WITHDRAWN"


class Outcome(StrEnum):
    EXECUTED = "EXECUTED"
    PARTLY_EXECUTED = "PARTLY_EXECUTED"
    NOT_EXECUTED = "NOT_EXECUTED"
    PROPERTY_FOUND = "PROPERTY_FOUND"
    PROPERTY_NOT_FOUND = "PROPERTY_NOT_FOUND"
    SERVED = "SERVED"
    NOT_SERVED = "NOT_SERVED"
    PERSON_NOT_FOUND = "PERSON_NOT_FOUND"


class SupplementReason(StrEnum):
    MISSING_RULING = "MISSING_RULING"
    MISSING_EFFECTIVE_DATE = "MISSING_EFFECTIVE_DATE"  # 生效日期 / 生效证明
    UNCLEAR_PROPERTY = "UNCLEAR_PROPERTY"
    WRONG_COURT = "WRONG_COURT"  # documents name another court
    OTHER = "OTHER"


class ReturnReason(StrEnum):
    NOT_WITHIN_JURISDICTION = "NOT_WITHIN_JURISDICTION"
    MATERIALS_INCOMPLETE = "MATERIALS_INCOMPLETE"
    DUPLICATE = "DUPLICATE"
    OTHER = "OTHER"


class WithdrawReason(StrEnum):
    SETTLED = "SETTLED"  # paid or settled (执行和解)
    NO_LONGER_NEEDED = "NO_LONGER_NEEDED"
    SENT_IN_ERROR = "SENT_IN_ERROR"
    DEEMED_WITHDRAWN = "DEEMED_WITHDRAWN"  # system only: supplement deadline passed (art. 8)
    OTHER = "OTHER"


@dataclass(frozen=True)
class Transition:
    """Who did what, when and why; `actor_court_id` is "" for the system.

    `reason_code` is the reason of a return, supplement request or withdrawal, or the
    outcome of a completion; "" for the other actions.
    """

    action: Action
    from_state: DelegationState
    to_state: DelegationState
    actor_court_id: str
    officer: str
    at: datetime
    reason_code: str = ""
    note: str = ""


@dataclass(frozen=True)
class Completion:
    outcome: Outcome
    amount_fen: int | None  # frozen / deducted / sealed value, for EXECUTED and PARTLY_EXECUTED
    result_documents: tuple[Attachment, ...]
    note: str


@dataclass(frozen=True)
class SupplementRequest:
    reason: SupplementReason
    missing_items: tuple[str, ...]
    note: str
    requested_at: datetime  # the supplement period (art. 8: 30 days) runs from here


@dataclass(frozen=True)
class ReturnApproval:
    """The superior (high) court's approval of returning a whole-case delegation (art. 9)."""

    court_id: str
    reference: str  # the approval's document number


def delegation_name(requesting_court_id: str, delegation_id: str) -> str:
    return f"courts/{requesting_court_id}/delegations/{delegation_id}"


@dataclass(frozen=True)
class Delegation:
    id: str
    requesting_court_id: str
    case_name: str  # courts/{requesting court}/cases/{case}
    entrusted_court_id: str
    matter_kind: MatterKind
    description: str
    created_at: datetime
    updated_at: datetime
    state: DelegationState = DelegationState.SUBMITTED
    version: int = 1  # bumped by every change, for optimistic concurrency (etag)
    details: MatterDetails | None = None  # None: sent by a client that does not carry details yet
    attachments: tuple[Attachment, ...] = ()  # as submitted, then as supplemented
    requesting_officer: Officer | None = None
    entrusted_officer: Officer | None = None  # named on acknowledgement
    # Turnaround timestamps (also in `history`, kept flat so statistics need no history scan).
    acknowledged_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    returned_at: datetime | None = None
    withdrawn_at: datetime | None = None
    completion: Completion | None = None
    supplement_request: SupplementRequest | None = None  # the latest; open while RETURNED_FOR_SUPPLEMENT
    return_reason: ReturnReason | None = None
    return_approval: ReturnApproval | None = None
    withdraw_reason: WithdrawReason | None = None
    history: tuple[Transition, ...] = ()  # every lifecycle transition, oldest first
    case_number: str = ""  # the case's 案号 as registered (from the case replica), for events and traces

    @property
    def name(self) -> str:
        return delegation_name(self.requesting_court_id, self.id)


@dataclass(frozen=True)
class DelegationSubmitted:
    delegation: Delegation


@dataclass(frozen=True)
class CreateDelegation:
    """The command: what a requesting court's system sends, still unvalidated."""

    parent: str  # courts/{requesting court}
    case: str  # courts/{court}/cases/{case}
    entrusted_court: str  # courts/{court}
    matter_kind: str  # a MatterKind name; "" when unspecified
    description: str = ""
    details: MatterDetails | None = None
    # None: the client's message has no attachments field (yet), so none are required.
    # A tuple, even empty, is checked against REQUIRED_ATTACHMENTS.
    attachments: tuple[Attachment, ...] | None = None
    officer: Officer | None = None  # the requesting court's officer in charge
    # GB/T 2260 code of where the property is: routes the matter when entrusted_court is "".
    property_division_code: str = ""


#: Matters a special court takes, whatever ordinary court the division has: a ship's
#: seizure goes to the maritime court of those waters (海事法院).
SPECIAL_COURT_FOR_PROPERTY: dict[PropertyKind, SpecialKind] = {PropertyKind.SHIP: SpecialKind.MARITIME}


def special_court_needed(details: MatterDetails | None) -> SpecialKind | None:
    if isinstance(details, RegisteredPropertyDetails) and isinstance(details.property_kind, PropertyKind):
        return SPECIAL_COURT_FOR_PROPERTY.get(details.property_kind)
    return None


def route_entrusted_court(
    command: CreateDelegation, courts: CourtCatalog, violations: Violations, jurisdictions: JurisdictionTable | None = None
) -> str | None:
    """The entrusted court: the one named; else, from the property's division, the special
    court the matter needs (a ship: the maritime court of those waters) or the basic court."""
    if command.entrusted_court or not command.property_division_code:
        return court_id_of(command.entrusted_court, "delegation.entrusted_court", courts, violations)
    code = command.property_division_code.strip()
    field = "delegation.property_division_code"
    if len(code) != 6 or not (code.isascii() and code.isdigit()):  # isdigit alone takes ٣, ３, ¹
        violations.add(field, "must be a 6-digit GB/T 2260 division code", "BAD_DIVISION_CODE")
        return None
    if (special := special_court_needed(command.details)) is not None:
        special_court = (jurisdictions or JurisdictionTable.default()).court_for(special, code)
        if special_court is None:
            violations.add(
                field, f"no {special.lower()} court is registered for division {code}; name the entrusted court", "UNROUTABLE"
            )
        return special_court
    court = courts.basic_court_for_division(code)
    if court is None:
        violations.add(field, f"no basic court is registered for division {code}; name the entrusted court", "UNROUTABLE")
        return None
    return court.id


def create_delegation(
    command: CreateDelegation,
    courts: CourtCatalog,
    case_court_id: str | None,
    now: datetime,
    *,
    delegation_id: str,
) -> tuple[Delegation, list[DelegationSubmitted]]:
    """Validates the command and returns the submitted delegation and its event.

    `case_court_id` is the case's court as the caller's case replica knows it (None: not
    seen). `delegation_id` is injected like `now`, so the domain stays free of id schemes.
    Raises InvalidArgument with every field violation at once, then PermissionDenied
    (NOT_CASE_OWNER) or FailedPrecondition (CASE_NOT_REGISTERED).
    """
    violations = Violations()
    requesting_id = court_id_of(command.parent, "parent", courts, violations)
    check_case_name(command.case, "delegation.case", violations)
    entrusted_id = route_entrusted_court(command, courts, violations)
    if requesting_id is not None and requesting_id == entrusted_id:
        violations.add("delegation.entrusted_court", "a court cannot delegate a matter to itself", "SELF_DELEGATION")
    kind = parse_enum(MatterKind, command.matter_kind, "delegation.matter_kind", violations)
    description = command.description.strip()
    check_text(description, "delegation.description", violations, max_length=MAX_DESCRIPTION_LENGTH, required=False)
    _check_matter(command, kind, violations)
    violations.raise_if_any()
    assert requesting_id is not None and entrusted_id is not None and kind is not None
    check_case_access(requesting_id, command.case, case_court_id)
    delegation = Delegation(
        id=delegation_id,
        requesting_court_id=requesting_id,
        case_name=command.case,
        entrusted_court_id=entrusted_id,
        matter_kind=kind,
        description=description,
        created_at=now,
        updated_at=now,
        details=command.details,
        attachments=command.attachments or (),
        requesting_officer=command.officer,
    )
    return delegation, [DelegationSubmitted(delegation)]


def _check_matter(command: CreateDelegation, kind: MatterKind | None, violations: Violations) -> None:
    """Details, attachments and officer; the per-kind rules only once the kind is known."""
    if command.details is not None and kind is not None:
        check_details(kind, command.details, "delegation.details", violations)
    if command.attachments is not None:
        check_attachments(command.attachments, "delegation.attachments", violations)
        if kind is not None:
            required = REQUIRED_ATTACHMENTS[kind]
            check_required_attachments(required, command.attachments, "delegation.attachments", violations, why=f"for {kind}")
    if command.officer is not None:
        command.officer.validate("delegation.officer", violations)
