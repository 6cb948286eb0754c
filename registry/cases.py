"""Enforcement cases: registering one checks its case number, court, parties and amount.

Pure domain: returns a `Case` and the `CaseRegistered` event it records; persistence,
idempotency and publication are the service layer's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from stdnum.cn import ric, uscc

from registry.access import court_id_of
from registry.case_number import CaseNumber, parse_case_number
from registry.courts import CourtCatalog
from registry.errors import Aborted, FailedPrecondition, InvalidArgument, PermissionDenied, Violations, parse_enum
from registry.text import check_text

MAX_PARTIES = 50
MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 2000
FEN_PER_YUAN = 100
CURRENCY = "CNY"


class PartyRole(StrEnum):
    APPLICANT = "APPLICANT"
    RESPONDENT = "RESPONDENT"


class PartyKind(StrEnum):
    PERSON = "PERSON"
    ORGANIZATION = "ORGANIZATION"


def mask_id_number(id_number: str) -> str:
    """Keeps the region prefix and the last four characters: `330326********1234`."""
    if not id_number:
        return ""
    if len(id_number) <= 10:
        return "*" * len(id_number)
    return id_number[:6] + "*" * (len(id_number) - 10) + id_number[-4:]


@dataclass(frozen=True)
class Party:
    role: PartyRole
    kind: PartyKind
    display_name: str
    id_number: str = field(default="", repr=False)  # never printed: repr would reach logs

    @property
    def masked_id_number(self) -> str:
        return mask_id_number(self.id_number)


@dataclass(frozen=True)
class Case:
    court_id: str
    number: CaseNumber
    parties: tuple[Party, ...]
    amount_owed_fen: int | None
    description: str
    registered_at: datetime

    @property
    def name(self) -> str:
        return case_name(self.court_id, self.number.slug)

    @property
    def respondents(self) -> tuple[Party, ...]:
        return tuple(p for p in self.parties if p.role is PartyRole.RESPONDENT)


@dataclass(frozen=True)
class CaseRegistered:
    case: Case


@dataclass(frozen=True)
class PartyInput:
    role: str
    kind: str
    display_name: str
    id_number: str = field(default="", repr=False)


@dataclass(frozen=True)
class RegisterCase:
    """The command: what a court system sends, still unvalidated."""

    parent: str  # courts/{court}
    case_number: str
    parties: tuple[PartyInput, ...]
    amount_owed: Decimal | None = None  # yuan
    currency: str = CURRENCY
    description: str = ""


def case_name(court_id: str, slug: str) -> str:
    return f"courts/{court_id}/cases/{slug}"


def register_case(command: RegisterCase, courts: CourtCatalog, now: datetime) -> tuple[Case, list[CaseRegistered]]:
    """Validates every field at once and returns the case and its event, or raises InvalidArgument."""
    violations = Violations()
    number = _check_case_number(command, courts, violations)
    court_id = _check_parent(command.parent, number, courts, violations)
    parties = _check_parties(command.parties, violations)
    amount_fen = _check_amount(command.amount_owed, command.currency, violations)
    check_text(command.description.strip(), "case.description", violations, max_length=MAX_DESCRIPTION_LENGTH, required=False)
    violations.raise_if_any()
    assert number is not None and court_id is not None
    case = Case(court_id, number, parties, amount_fen, command.description.strip(), now)
    return case, [CaseRegistered(case)]


def _check_case_number(command: RegisterCase, courts: CourtCatalog, violations: Violations) -> CaseNumber | None:
    try:  # one analysis of the text: every problem it has, or the number
        number = parse_case_number(command.case_number, courts, field="case.case_number")
    except InvalidArgument as invalid:
        violations.extend(invalid.violations)
        return None
    if not number.is_enforcement:
        violations.add(
            "case.case_number",
            f"type code {number.type_code!r} is not an enforcement type (执, 执恢, 执保, 执异, 执复, 执监, 执协, 执他)",
            "NOT_ENFORCEMENT_CASE",
        )
        return None
    return number


def _check_parent(parent: str, number: CaseNumber | None, courts: CourtCatalog, violations: Violations) -> str | None:
    court_id = court_id_of(parent, "parent", courts, violations)
    if court_id is not None and number is not None and number.court_id != court_id:
        violations.add("parent", f"the case number names court {number.court_code} (courts/{number.court_id})", "COURT_MISMATCH")
        return None
    return court_id


def _check_parties(inputs: tuple[PartyInput, ...], violations: Violations) -> tuple[Party, ...]:
    if len(inputs) > MAX_PARTIES:
        violations.add("case.parties", f"at most {MAX_PARTIES} parties", "TOO_MANY")
        return ()
    parties = tuple(p for i, item in enumerate(inputs) if (p := _check_party(item, f"case.parties[{i}]", violations)))
    roles = {p.role for p in parties}
    if len(parties) == len(inputs):
        for role, label in ((PartyRole.APPLICANT, "applicant"), (PartyRole.RESPONDENT, "respondent")):
            if role not in roles:
                violations.add("case.parties", f"at least one {label} is required", "MISSING_PARTY")
    return parties


def _check_party(item: PartyInput, path: str, violations: Violations) -> Party | None:
    before = len(violations.items)
    role = parse_enum(PartyRole, item.role, f"{path}.role", violations)
    kind = parse_enum(PartyKind, item.kind, f"{path}.kind", violations)
    name = item.display_name.strip()
    check_text(name, f"{path}.display_name", violations, max_length=MAX_NAME_LENGTH)
    id_number = item.id_number.strip().upper()
    if id_number and kind is PartyKind.PERSON and not ric.is_valid(id_number):
        violations.add(f"{path}.id_number", "not a valid resident identity card number (GB 11643)", "BAD_ID_NUMBER")
    if id_number and kind is PartyKind.ORGANIZATION and not uscc.is_valid(id_number):
        violations.add(f"{path}.id_number", "not a valid unified social credit code (GB 32100)", "BAD_ID_NUMBER")
    if len(violations.items) > before or role is None or kind is None:
        return None
    return Party(role, kind, name, id_number)


def _check_amount(amount: Decimal | None, currency: str, violations: Violations) -> int | None:
    if amount is None:
        return None
    if currency not in ("", CURRENCY):
        violations.add("case.amount_owed.currency_code", f"must be {CURRENCY}", "CURRENCY")
    if amount < 0:
        violations.add("case.amount_owed", "must not be negative", "NEGATIVE_AMOUNT")
        return None
    fen = amount * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        violations.add("case.amount_owed", "must be a whole number of fen (0.01 元)", "PRECISION")
        return None
    if fen >= 10**17:
        violations.add("case.amount_owed", "implausibly large", "TOO_LARGE")
        return None
    return int(fen)


# --- closing a case (结案) ------------------------------------------------------------------------


class CaseState(StrEnum):
    """Names match rogatory.registry.v1.Case.State; only `close_case` changes it."""

    OPEN = "OPEN"
    CLOSED = "CLOSED"


class CloseOutcome(StrEnum):
    """How an enforcement case closes (法发〔2014〕26号 关于执行案件立案、结案若干问题的意见 art. 15);
    names match rogatory.registry.v1.CaseClosure.Outcome."""

    EXECUTED_IN_FULL = "EXECUTED_IN_FULL"  # 执行完毕
    TERMINATED_THIS_ROUND = "TERMINATED_THIS_ROUND"  # 终结本次执行程序
    TERMINATED = "TERMINATED"  # 终结执行
    WITHDRAWN = "WITHDRAWN"  # 销案
    NOT_ENFORCED = "NOT_ENFORCED"  # 不予执行
    APPLICATION_REJECTED = "APPLICATION_REJECTED"  # 驳回申请


@dataclass(frozen=True)
class CloseCase:
    """The command: unvalidated. `expected_version` comes from the etag (None: no check)."""

    outcome: str
    reason: str = ""
    expected_version: int | None = None


@dataclass(frozen=True)
class CaseClosure:
    outcome: CloseOutcome
    reason: str
    closed_at: datetime


def close_case(
    name: str, owner_court_id: str, state: CaseState, version: int, caller_court_id: str, command: CloseCase, now: datetime
) -> CaseClosure:
    """Decides whether `caller_court_id` may close the case and how.

    Checks in order: the caller owns the case (PermissionDenied NOT_CASE_OWNER); the arguments
    (InvalidArgument); the etag (Aborted VERSION_MISMATCH); the state (FailedPrecondition
    CASE_ALREADY_CLOSED).
    """
    if caller_court_id != owner_court_id:
        raise PermissionDenied(
            f"only courts/{owner_court_id} may close {name}",
            reason="NOT_CASE_OWNER",
            metadata={"case": name, "court": f"courts/{caller_court_id}"},
        )
    violations = Violations()
    outcome = parse_enum(CloseOutcome, command.outcome, "outcome", violations)
    reason = command.reason.strip()
    check_text(reason, "reason", violations, max_length=MAX_DESCRIPTION_LENGTH, required=False)
    violations.raise_if_any()
    assert outcome is not None
    if command.expected_version is not None and command.expected_version != version:
        raise Aborted(
            f"{name} changed: it is at version {version}, the request expected {command.expected_version}",
            reason="VERSION_MISMATCH",
            metadata={"case": name, "current_version": str(version)},
        )
    if state is CaseState.CLOSED:
        raise FailedPrecondition(f"{name} is already closed", reason="CASE_ALREADY_CLOSED", metadata={"case": name})
    return CaseClosure(outcome, reason, now)
