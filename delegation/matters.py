"""Delegated matters (事项委托): a requesting court asks the court where the debtor or the
property is (the entrusted court) to carry out one enforcement matter of its case.

Pure domain: `create_delegation` validates a `CreateDelegation` command and returns the new
`Delegation` with the `DelegationSubmitted` event it records; persistence, idempotency and
publication are the service layer's job. Later lifecycle commands (acknowledge, complete,
return, withdraw) take a `Delegation` and return its next version with their events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from registry.access import check_case_access, check_case_name, court_id_of
from registry.courts import CourtCatalog
from registry.errors import Violations, parse_enum

MAX_DESCRIPTION_LENGTH = 2000


class MatterKind(StrEnum):
    """The delegable matters of DOMAIN.md; names match rogatory.delegation.v1.Delegation.MatterKind."""

    DEPOSITS = "DEPOSITS"
    EQUITY = "EQUITY"
    REAL_ESTATE_OR_REGISTERED_MOVABLES = "REAL_ESTATE_OR_REGISTERED_MOVABLES"
    PROPERTY_INVESTIGATION = "PROPERTY_INVESTIGATION"
    SERVICE_OF_DOCUMENTS = "SERVICE_OF_DOCUMENTS"
    CONTROL_MEASURES = "CONTROL_MEASURES"
    OTHER = "OTHER"


class DelegationState(StrEnum):
    """Names match rogatory.delegation.v1.Delegation.State; only domain commands change it."""

    SUBMITTED = "SUBMITTED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    IN_PROGRESS = "IN_PROGRESS"
    RETURNED_FOR_SUPPLEMENT = "RETURNED_FOR_SUPPLEMENT"
    COMPLETED = "COMPLETED"
    RETURNED = "RETURNED"
    WITHDRAWN = "WITHDRAWN"


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
    entrusted_id = court_id_of(command.entrusted_court, "delegation.entrusted_court", courts, violations)
    if requesting_id is not None and requesting_id == entrusted_id:
        violations.add("delegation.entrusted_court", "a court cannot delegate a matter to itself", "SELF_DELEGATION")
    kind = parse_enum(MatterKind, command.matter_kind, "delegation.matter_kind", violations)
    description = command.description.strip()
    if len(description) > MAX_DESCRIPTION_LENGTH:
        violations.add("delegation.description", f"at most {MAX_DESCRIPTION_LENGTH} characters", "TOO_LONG")
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
    )
    return delegation, [DelegationSubmitted(delegation)]
