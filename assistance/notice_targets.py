"""What an assistance notice acts on, and the documents it must carry.

A `NoticeTarget` names the debtor (a respondent of the case) and, depending on the kind of
notice, one typed subject: a deposit account (and amount), a registered property (real
estate by certificate / unit number, a vehicle by plate / VIN, a ship or aircraft by
registration number), a share of a company, or income and who pays it.

The field rules are those of delegated matters (`delegation.details`): a notice to a bank
and a delegated deposit matter name an account the same way, so the checks are reused by
building the matching details object rather than restated here.

Pure domain: stdlib and the delegation/registry domain packages only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from delegation.details import (
    MAX_NAME_LENGTH,
    Attachment,
    AttachmentKind,
    DepositDetails,
    DepositMeasure,
    EquityDetails,
    EquityMeasure,
    PropertyKind,
    PropertyMeasure,
    RegisteredPropertyDetails,
    check_amount,
    check_attachments,
    check_required_attachments,
)
from registry.errors import Violations
from registry.text import check_text


@dataclass(frozen=True)
class DepositAccount:
    subject: ClassVar[str] = "deposit_account"

    account_number: str
    amount_fen: int | None = None


@dataclass(frozen=True)
class RegisteredProperty:
    subject: ClassVar[str] = "registered_property"

    property_kind: PropertyKind | str
    location: str = ""
    certificate_number: str = ""
    unit_number: str = ""
    plate: str = ""
    vin: str = ""
    registration_number: str = ""


@dataclass(frozen=True)
class Equity:
    subject: ClassVar[str] = "equity"

    company_name: str
    credit_code: str
    share_amount_fen: int | None = None
    share_percent: Decimal | None = None


@dataclass(frozen=True)
class Income:
    subject: ClassVar[str] = "income"

    payer: str
    amount_fen: int | None = None
    percent: Decimal | None = None


Subject = DepositAccount | RegisteredProperty | Equity | Income


@dataclass(frozen=True)
class NoticeTarget:
    """The debtor and the typed subject; `subject` None only where the kind allows (a query)."""

    debtor: str
    subject: Subject | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "debtor", self.debtor.strip())


# --- checking ------------------------------------------------------------------------------------


def check_subject(
    subject: Subject | None,
    expected: type[Subject] | None,
    optional: bool,
    measure: str,
    debtor: str,
    agency_name: str,
    path: str,
    violations: Violations,
) -> Subject | None:
    """The subject is of the type the kind takes and valid; returns it normalised.

    `measure` is the delegation measure name the kind corresponds to (FREEZE, SEAL…), which
    decides e.g. whether an amount is required.
    """
    if subject is None:
        if not optional and expected is not None:
            violations.add(f"{path}.{expected.subject}", "required for this kind of notice", "REQUIRED")
        return None
    if expected is None or not isinstance(subject, expected):
        wanted = expected.subject if expected is not None else "no subject"
        violations.add(f"{path}.{subject.subject}", f"this kind of notice takes {wanted}", "KIND_MISMATCH")
        return None
    sub = f"{path}.{subject.subject}"
    if isinstance(subject, DepositAccount):
        details = DepositDetails(
            agency_name or "-", subject.account_number, debtor or "-", _deposit_measure(measure), subject.amount_fen
        )
        _validate(details, sub, violations, {"measure", "bank_name", "account_holder"})
        return DepositAccount(details.account_number, subject.amount_fen)
    if isinstance(subject, RegisteredProperty):
        prop = RegisteredPropertyDetails(
            subject.property_kind,
            _property_measure(measure),
            debtor or "-",
            location=subject.location,
            certificate_number=subject.certificate_number,
            unit_number=subject.unit_number,
            plate=subject.plate,
            vin=subject.vin,
            registration_number=subject.registration_number,
        )
        _validate(prop, sub, violations, {"measure", "owner"})
        return RegisteredProperty(
            prop.property_kind,
            prop.location,
            prop.certificate_number,
            prop.unit_number,
            prop.plate,
            prop.vin,
            prop.registration_number,
        )
    if isinstance(subject, Equity):
        equity = EquityDetails(
            subject.company_name,
            subject.credit_code,
            debtor or "-",
            EquityMeasure.FREEZE,
            subject.share_amount_fen,
            subject.share_percent,
        )
        _validate(equity, sub, violations, {"measure", "shareholder"})
        return Equity(equity.company_name, equity.credit_code, subject.share_amount_fen, subject.share_percent)
    return _check_income(subject, sub, violations)


def _check_income(income: Income, path: str, violations: Violations) -> Income:
    payer = income.payer.strip()
    check_text(payer, f"{path}.payer", violations, max_length=MAX_NAME_LENGTH)
    if income.amount_fen is None and income.percent is None:
        violations.add(f"{path}.amount_fen", "state the amount, the percentage of each payment or both", "REQUIRED")
    check_amount(income.amount_fen, f"{path}.amount_fen", violations, required=False)
    if income.percent is not None and not Decimal(0) < income.percent <= Decimal(100):
        violations.add(f"{path}.percent", "must be more than 0 and at most 100", "BAD_PERCENT")
    return Income(payer, income.amount_fen, income.percent)


def _validate(details: object, path: str, violations: Violations, hidden: set[str]) -> None:
    """Runs the details' own checks, dropping those about fields the notice fills itself."""
    found = Violations()
    details.validate(path, found)  # type: ignore[attr-defined]
    for v in found.items:
        if v.field.removeprefix(f"{path}.") not in hidden:
            violations.add(v.field, v.description, v.reason)


def _deposit_measure(measure: str) -> DepositMeasure:
    # A query or a renewal restates no sum; only freezing and deducting must name one.
    return DepositMeasure(measure) if measure in ("FREEZE", "DEDUCT") else DepositMeasure.RENEW_FREEZE


def _property_measure(measure: str) -> PropertyMeasure:
    return PropertyMeasure(measure) if measure in PropertyMeasure.__members__ else PropertyMeasure.SEAL


# --- debtor --------------------------------------------------------------------------------------


def is_respondent(debtor: str, respondents: Iterable[str]) -> bool:
    """Names are compared as registered, ignoring surrounding blanks and full-width spaces."""
    wanted = _normalised(debtor)
    return any(_normalised(r) == wanted for r in respondents)


def _normalised(name: str) -> str:
    return "".join(name.split()).replace("\u3000", "")


# --- documents -----------------------------------------------------------------------------------


def check_documents(
    documents: tuple[Attachment, ...], required: frozenset[AttachmentKind], path: str, violations: Violations, *, why: str
) -> None:
    check_attachments(documents, path, violations)
    check_required_attachments(required, documents, path, violations, why=why)


# --- a stable key of the asset, for the seizure queue ---------------------------------------------------


def asset_key(agency_id: str, target: NoticeTarget) -> str:
    """Identifies the asset at one agency: notices and seizures on the same key queue (轮候)."""
    subject = target.subject
    if isinstance(subject, DepositAccount):
        return f"{agency_id}|account|{subject.account_number}"
    if isinstance(subject, RegisteredProperty):
        identifier = (
            subject.unit_number or subject.certificate_number or subject.vin or subject.plate or subject.registration_number
        )
        return f"{agency_id}|{str(subject.property_kind).lower()}|{identifier}"
    if isinstance(subject, Equity):
        return f"{agency_id}|equity|{subject.credit_code}|{_normalised(target.debtor)}"
    if isinstance(subject, Income):
        return f"{agency_id}|income|{_normalised(subject.payer)}|{_normalised(target.debtor)}"
    return f"{agency_id}|debtor|{_normalised(target.debtor)}"
