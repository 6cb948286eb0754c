"""What a delegation asks for, per matter kind, and what it brings along.

One frozen dataclass per `MatterKind` holds the matter-specific details (account and amount,
company and share, property and its certificate / plate / VIN, documents and addressee,
person and place); `Attachment` describes a file sent with the delegation (the file itself
lives in a document store, addressed by sha256); `Officer` is a court's contact person.

Each type normalises itself on construction (trims text, upper-cases codes, turns enum names
into members) and reports every problem through `validate(path, violations)`, so the wire
layer can hand over names and text unparsed and the caller gets all violations at once.
Enum-typed fields therefore also accept a `str`: after a clean `validate` they hold members.

Pure domain: stdlib, python-stdnum and the registry only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar, TypeVar

from stdnum.cn import ric, uscc

from registry.cases import mask_id_number
from registry.errors import Violations, parse_enum
from registry.text import check_text

E = TypeVar("E", bound=StrEnum)

MAX_NAME_LENGTH = 200
MAX_TEXT_LENGTH = 2000
MAX_ADDRESS_LENGTH = 500
MAX_CODE_LENGTH = 100
MAX_LIST_ITEMS = 50
MAX_ATTACHMENTS = 50
MAX_ATTACHMENT_BYTES = 50 * 1024 * 1024
MAX_FILE_NAME_LENGTH = 255
MAX_PERCENT_PLACES = 6
#: Amounts are fen in a signed 64-bit column; anything near it is a typo, not a debt.
MAX_AMOUNT_FEN = 10**17 - 1


class MatterKind(StrEnum):
    """The delegable matters of DOMAIN.md; names match rogatory.delegation.v1.Delegation.MatterKind.

    Defined here beside the per-kind rules (and re-exported by delegation.matters) so the
    rules can be keyed by kind without an import cycle.
    """

    DEPOSITS = "DEPOSITS"
    EQUITY = "EQUITY"
    REAL_ESTATE_OR_REGISTERED_MOVABLES = "REAL_ESTATE_OR_REGISTERED_MOVABLES"
    PROPERTY_INVESTIGATION = "PROPERTY_INVESTIGATION"
    SERVICE_OF_DOCUMENTS = "SERVICE_OF_DOCUMENTS"
    CONTROL_MEASURES = "CONTROL_MEASURES"
    OTHER = "OTHER"


# --- shared field rules ------------------------------------------------------------------------


def _coerce(kind: type[E], value: E | str) -> E | str:
    """The member named `value` when there is one; otherwise `value` unchanged for validate() to report."""
    try:
        return kind(value)
    except ValueError:
        return value


def _set(instance: object, name: str, value: object) -> None:
    # Normalising in __post_init__ of a frozen dataclass is the one place a field may be reassigned.
    object.__setattr__(instance, name, value)


def _trim(value: str) -> str:
    return value.strip()


def _compact(value: str) -> str:
    """Upper-cased with blanks and the middle dot of plates (浙C·12345) removed."""
    return re.sub(r"[\s·•・-]", "", value).upper() if value else value


def check_enum(kind: type[E], value: E | str, path: str, violations: Violations) -> E | None:
    return parse_enum(kind, str(value), path, violations)


def check_amount(value: int | None, path: str, violations: Violations, *, required: bool) -> None:
    """Amounts are whole fen (0.01 元), positive and plausible."""
    if value is None:
        if required:
            violations.add(path, "required", "REQUIRED")
    elif value <= 0:
        violations.add(path, "must be a positive number of fen", "NOT_POSITIVE")
    elif value > MAX_AMOUNT_FEN:
        violations.add(path, "implausibly large", "TOO_LARGE")


_MOBILE = re.compile(r"(?:\+?86)?1[3-9][0-9]{9}")
_LANDLINE = re.compile(r"(?:\+?86)?0[1-9][0-9]{1,2}-?[0-9]{7,8}(?:-[0-9]{1,6})?")


def normalize_phone(value: str) -> str:
    return re.sub(r"[\s()（）]", "", value)


def check_phone(value: str, path: str, violations: Violations, *, required: bool = True) -> None:
    """A mainland mobile number (13812345678) or a landline with area code (0577-12345678[-123])."""
    if not value:
        if required:
            violations.add(path, "required", "REQUIRED")
    elif not (_MOBILE.fullmatch(value) or _LANDLINE.fullmatch(value)):
        violations.add(path, "not a mainland mobile number or a landline with area code", "BAD_PHONE")


def check_text_list(items: tuple[str, ...], path: str, violations: Violations, *, max_length: int) -> None:
    if not items:
        violations.add(path, "at least one item is required", "REQUIRED")
    elif len(items) > MAX_LIST_ITEMS:
        violations.add(path, f"at most {MAX_LIST_ITEMS} items", "TOO_MANY")
    else:
        for i, item in enumerate(items):
            check_text(item, f"{path}[{i}]", violations, max_length=max_length)


# --- officer and attachments -----------------------------------------------------------------------


@dataclass(frozen=True)
class Officer:
    """A court's officer in charge (承办人) and how to reach them."""

    name: str
    phone: str

    def __post_init__(self) -> None:
        _set(self, "name", _trim(self.name))
        _set(self, "phone", normalize_phone(self.phone))

    def validate(self, path: str, violations: Violations) -> None:
        check_text(self.name, f"{path}.name", violations, max_length=50)
        check_phone(self.phone, f"{path}.phone", violations)


class AttachmentKind(StrEnum):
    RULING = "RULING"  # 执行裁定书
    DECISION = "DECISION"  # 决定书, e.g. 拘留决定书 for control measures
    ASSISTANCE_NOTICE = "ASSISTANCE_NOTICE"  # 协助执行通知书, handed to the bank / registry / regulator
    DELEGATION_LETTER = "DELEGATION_LETTER"  # 委托函
    DOCUMENT_TO_SERVE = "DOCUMENT_TO_SERVE"  # the legal document a service-of-documents matter delivers
    SERVICE_RECEIPT = "SERVICE_RECEIPT"  # 送达回证
    ASSISTANCE_RECEIPT = "ASSISTANCE_RECEIPT"  # 协助执行回执, the agency's feedback
    OFFICER_CREDENTIALS = "OFFICER_CREDENTIALS"  # 执行公务证件
    OTHER = "OTHER"


_SHA256 = re.compile(r"[0-9a-f]{64}")
#: Path separators and the line breaks and tabs the text rule allows in notes; the other
#: control and bidirectional-control characters (which make "invoice\u202efdp.exe" display
#: as "invoiceexe.pdf") are the text rule's (registry/text.py).
_BAD_FILE_NAME = re.compile(r"[/\\\t\n\r]")


@dataclass(frozen=True)
class Attachment:
    """Descriptor of a file sent along; the bytes travel separately and are matched by sha256."""

    kind: AttachmentKind | str
    name: str
    size_bytes: int
    sha256: str

    def __post_init__(self) -> None:
        _set(self, "kind", _coerce(AttachmentKind, self.kind))
        _set(self, "name", _trim(self.name))
        _set(self, "sha256", self.sha256.strip().lower())

    def validate(self, path: str, violations: Violations) -> None:
        check_enum(AttachmentKind, self.kind, f"{path}.kind", violations)
        check_text(self.name, f"{path}.name", violations, max_length=MAX_FILE_NAME_LENGTH)
        if self.name and _BAD_FILE_NAME.search(self.name):
            violations.add(
                f"{path}.name",
                "a file name on one line, without path separators",
                "BAD_FILE_NAME",
            )
        if not 1 <= self.size_bytes <= MAX_ATTACHMENT_BYTES:
            violations.add(f"{path}.size_bytes", f"must be 1 to {MAX_ATTACHMENT_BYTES} bytes (50 MiB)", "BAD_SIZE")
        if not _SHA256.fullmatch(self.sha256):
            violations.add(f"{path}.sha256", "must be 64 hexadecimal digits", "BAD_SHA256")


def check_attachments(attachments: tuple[Attachment, ...], path: str, violations: Violations, *, already: int = 0) -> None:
    """Each descriptor is valid and, with `already` attached before, there are at most MAX_ATTACHMENTS."""
    if already + len(attachments) > MAX_ATTACHMENTS:
        violations.add(path, f"at most {MAX_ATTACHMENTS} attachments per delegation", "TOO_MANY")
        return
    for i, attachment in enumerate(attachments):
        attachment.validate(f"{path}[{i}]", violations)


_LETTER = frozenset({AttachmentKind.DELEGATION_LETTER})
_MEASURE_ON_PROPERTY = _LETTER | {AttachmentKind.RULING, AttachmentKind.ASSISTANCE_NOTICE}

#: What the entrusted court needs to act, per kind. Always the delegation letter; measures an
#: agency carries out also need the ruling and the assistance notice handed to the agency;
#: service needs the documents to serve (a ruling there would be one of them); detention or
#: summons needs the decision ordering it. A table, so a province's practice is a data change.
REQUIRED_ATTACHMENTS: dict[MatterKind, frozenset[AttachmentKind]] = {
    MatterKind.DEPOSITS: _MEASURE_ON_PROPERTY,
    MatterKind.EQUITY: _MEASURE_ON_PROPERTY,
    MatterKind.REAL_ESTATE_OR_REGISTERED_MOVABLES: _MEASURE_ON_PROPERTY,
    MatterKind.PROPERTY_INVESTIGATION: _LETTER | {AttachmentKind.RULING},
    MatterKind.SERVICE_OF_DOCUMENTS: _LETTER | {AttachmentKind.DOCUMENT_TO_SERVE},
    MatterKind.CONTROL_MEASURES: _LETTER | {AttachmentKind.DECISION},
    MatterKind.OTHER: _LETTER | {AttachmentKind.RULING},
}


def check_required_attachments(
    required: Iterable[AttachmentKind], attachments: tuple[Attachment, ...], path: str, violations: Violations, *, why: str
) -> None:
    """One MISSING_ATTACHMENT violation per required kind with no attachment of that kind."""
    present = {a.kind for a in attachments}
    for kind in sorted(set(required) - present):
        violations.add(path, f"a {kind} attachment is required {why}", "MISSING_ATTACHMENT")


# --- matter details, one class per kind ----------------------------------------------------------


class DepositMeasure(StrEnum):
    FREEZE = "FREEZE"
    RENEW_FREEZE = "RENEW_FREEZE"
    UNFREEZE = "UNFREEZE"
    DEDUCT = "DEDUCT"


#: Measures that move or block a sum, so the sum must be stated; renewals and unfreezing
#: refer to an existing freeze and may restate it.
_AMOUNT_REQUIRED = frozenset({DepositMeasure.FREEZE, DepositMeasure.DEDUCT})
_ACCOUNT_NUMBER = re.compile(r"[0-9A-Z]{6,40}")


@dataclass(frozen=True)
class DepositDetails:
    """Freeze / renew / unfreeze / deduct deposits or wealth products at one bank account."""

    matter_kind: ClassVar[MatterKind] = MatterKind.DEPOSITS

    bank_name: str
    account_number: str
    account_holder: str
    measure: DepositMeasure | str
    amount_fen: int | None = None

    def __post_init__(self) -> None:
        _set(self, "bank_name", _trim(self.bank_name))
        _set(self, "account_number", _compact(self.account_number))
        _set(self, "account_holder", _trim(self.account_holder))
        _set(self, "measure", _coerce(DepositMeasure, self.measure))

    def validate(self, path: str, violations: Violations) -> None:
        check_text(self.bank_name, f"{path}.bank_name", violations, max_length=MAX_NAME_LENGTH)
        if not self.account_number:
            violations.add(f"{path}.account_number", "required", "REQUIRED")
        elif not _ACCOUNT_NUMBER.fullmatch(self.account_number):
            violations.add(f"{path}.account_number", "6 to 40 digits or letters", "BAD_ACCOUNT_NUMBER")
        check_text(self.account_holder, f"{path}.account_holder", violations, max_length=MAX_NAME_LENGTH)
        measure = check_enum(DepositMeasure, self.measure, f"{path}.measure", violations)
        check_amount(self.amount_fen, f"{path}.amount_fen", violations, required=measure in _AMOUNT_REQUIRED)


class EquityMeasure(StrEnum):
    FREEZE = "FREEZE"  # 公示冻结
    RENEW_FREEZE = "RENEW_FREEZE"
    UNFREEZE = "UNFREEZE"


@dataclass(frozen=True)
class EquityDetails:
    """Publicise-freeze / renew / unfreeze a shareholder's equity in one company.

    The share is named by subscribed capital (fen), by percentage, or both; every measure
    needs it, since a shareholder may hold several separately frozen stakes.
    """

    matter_kind: ClassVar[MatterKind] = MatterKind.EQUITY

    company_name: str
    credit_code: str  # the company's unified social credit code (GB 32100)
    shareholder: str
    measure: EquityMeasure | str
    share_amount_fen: int | None = None
    share_percent: Decimal | None = None

    def __post_init__(self) -> None:
        _set(self, "company_name", _trim(self.company_name))
        _set(self, "credit_code", _compact(self.credit_code))
        _set(self, "shareholder", _trim(self.shareholder))
        _set(self, "measure", _coerce(EquityMeasure, self.measure))

    def validate(self, path: str, violations: Violations) -> None:
        check_text(self.company_name, f"{path}.company_name", violations, max_length=MAX_NAME_LENGTH)
        if not self.credit_code:
            violations.add(f"{path}.credit_code", "required", "REQUIRED")
        elif not uscc.is_valid(self.credit_code):
            violations.add(f"{path}.credit_code", "not a valid unified social credit code (GB 32100)", "BAD_CREDIT_CODE")
        check_text(self.shareholder, f"{path}.shareholder", violations, max_length=MAX_NAME_LENGTH)
        check_enum(EquityMeasure, self.measure, f"{path}.measure", violations)
        self._validate_share(path, violations)

    def _validate_share(self, path: str, violations: Violations) -> None:
        if self.share_amount_fen is None and self.share_percent is None:
            violations.add(f"{path}.share_amount_fen", "state the share as an amount, a percentage or both", "REQUIRED")
        check_amount(self.share_amount_fen, f"{path}.share_amount_fen", violations, required=False)
        if self.share_percent is not None and not Decimal(0) < self.share_percent <= Decimal(100):
            violations.add(f"{path}.share_percent", "must be more than 0 and at most 100", "BAD_PERCENT")
        elif self.share_percent is not None and _decimal_places(self.share_percent) > MAX_PERCENT_PLACES:
            # 1e-5000000 is in range, but written out it is megabytes in the row, the event and every answer.
            violations.add(f"{path}.share_percent", f"at most {MAX_PERCENT_PLACES} decimal places", "BAD_PERCENT")


def _decimal_places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


class PropertyKind(StrEnum):
    REAL_ESTATE = "REAL_ESTATE"
    VEHICLE = "VEHICLE"
    SHIP = "SHIP"
    AIRCRAFT = "AIRCRAFT"


class PropertyMeasure(StrEnum):
    SEAL = "SEAL"  # 查封
    RENEW_SEAL = "RENEW_SEAL"
    UNSEAL = "UNSEAL"
    TRANSFER = "TRANSFER"  # 过户


#: Plates use 蒙 and 贵 where court codes use 内 and 黔.
_PLATE_PROVINCES = "京津冀晋蒙辽吉黑沪苏浙皖闽赣鲁豫鄂湘粤桂琼渝川贵云藏陕甘青宁新"
_PLATE_LETTER = "[A-HJ-NP-Z]"  # I and O are never used
_PLATE_SERIAL = "[A-HJ-NP-Z0-9]"
#: Ordinary plates (浙C12345, 浙C1234学) and new-energy plates: small cars have a D/F-like
#: letter first (粤BD12345; A-K without I since 2021), large vehicles D/F last (粤B12345D).
_PLATE = re.compile(
    f"[{_PLATE_PROVINCES}]{_PLATE_LETTER}"
    f"(?:{_PLATE_SERIAL}{{4}}[A-HJ-NP-Z0-9挂学警港澳]|[A-HJK]{_PLATE_SERIAL}[0-9]{{4}}|[0-9]{{5}}[DF])"
)
#: ISO 3779 characters (no I, O, Q). The North American check digit (position 9) is not
#: checked: vehicles made for the Chinese market need not carry one.
_VIN = re.compile(r"[A-HJ-NPR-Z0-9]{17}")
#: GB/T 37346 不动产单元号: 12-digit division + cadastral area, 2-letter parcel type, 5-digit
#: parcel number, F/L/Q/W fixture type, 8 digits.
_UNIT_NUMBER = re.compile(r"[0-9]{12}[GJZ][A-Z][0-9]{5}[FLQW][0-9]{8}")
_AIRCRAFT_MARK = re.compile(r"B-?[0-9A-Z]{4}")

#: The identification fields each kind of property uses; the others must stay empty.
_IDENTIFIERS: dict[PropertyKind, frozenset[str]] = {
    PropertyKind.REAL_ESTATE: frozenset({"location", "certificate_number", "unit_number"}),
    PropertyKind.VEHICLE: frozenset({"plate", "vin"}),
    PropertyKind.SHIP: frozenset({"registration_number"}),
    PropertyKind.AIRCRAFT: frozenset({"registration_number"}),
}
_ALL_IDENTIFIERS = frozenset().union(*_IDENTIFIERS.values())


@dataclass(frozen=True)
class RegisteredPropertyDetails:
    """Seal / renew / unseal / transfer real estate or a registered movable (vehicle, ship, aircraft)."""

    matter_kind: ClassVar[MatterKind] = MatterKind.REAL_ESTATE_OR_REGISTERED_MOVABLES

    property_kind: PropertyKind | str
    measure: PropertyMeasure | str
    owner: str
    location: str = ""  # real estate: 坐落
    certificate_number: str = ""  # real estate: 不动产权证号, e.g. 浙(2019)平阳县不动产权第0001234号
    unit_number: str = ""  # real estate, optional: 不动产单元号 (GB/T 37346)
    plate: str = ""  # vehicle: plate and/or VIN
    vin: str = ""
    registration_number: str = ""  # ship: 船舶登记号; aircraft: nationality and registration mark (B-1234)

    def __post_init__(self) -> None:
        _set(self, "property_kind", _coerce(PropertyKind, self.property_kind))
        _set(self, "measure", _coerce(PropertyMeasure, self.measure))
        for name in ("owner", "location", "certificate_number"):
            _set(self, name, _trim(getattr(self, name)))
        for name in ("unit_number", "plate", "vin"):
            _set(self, name, _compact(getattr(self, name)))
        _set(self, "registration_number", self.registration_number.strip().upper())

    def validate(self, path: str, violations: Violations) -> None:
        kind = check_enum(PropertyKind, self.property_kind, f"{path}.property_kind", violations)
        check_enum(PropertyMeasure, self.measure, f"{path}.measure", violations)
        check_text(self.owner, f"{path}.owner", violations, max_length=MAX_NAME_LENGTH)
        if kind is None:
            return
        for name in sorted(_ALL_IDENTIFIERS - _IDENTIFIERS[kind]):
            if getattr(self, name):
                violations.add(f"{path}.{name}", f"does not apply to {kind}", "NOT_APPLICABLE")
        if kind is PropertyKind.REAL_ESTATE:
            self._validate_real_estate(path, violations)
        elif kind is PropertyKind.VEHICLE:
            self._validate_vehicle(path, violations)
        else:
            self._validate_ship_or_aircraft(kind, path, violations)

    def _validate_real_estate(self, path: str, violations: Violations) -> None:
        check_text(self.location, f"{path}.location", violations, max_length=MAX_ADDRESS_LENGTH)
        # Formats of certificate numbers differ by era and province (房产证, 土地证, 不动产权证), so
        # only presence is checked; the unit number has one national format.
        check_text(self.certificate_number, f"{path}.certificate_number", violations, max_length=MAX_CODE_LENGTH)
        if self.unit_number and not _UNIT_NUMBER.fullmatch(self.unit_number):
            violations.add(f"{path}.unit_number", "a 28-character real estate unit number (GB/T 37346)", "BAD_UNIT_NUMBER")

    def _validate_vehicle(self, path: str, violations: Violations) -> None:
        if not self.plate and not self.vin:
            violations.add(f"{path}.plate", "a vehicle needs its plate, its VIN or both", "REQUIRED")
        if self.plate and not _PLATE.fullmatch(self.plate):
            violations.add(f"{path}.plate", "not a mainland plate such as 浙C12345 or 粤BD12345", "BAD_PLATE")
        if self.vin and not _VIN.fullmatch(self.vin):
            violations.add(f"{path}.vin", "17 characters, digits and letters other than I, O and Q", "BAD_VIN")

    def _validate_ship_or_aircraft(self, kind: PropertyKind, path: str, violations: Violations) -> None:
        field_path = f"{path}.registration_number"
        check_text(self.registration_number, field_path, violations, max_length=MAX_CODE_LENGTH)
        if kind is PropertyKind.AIRCRAFT and self.registration_number and not _AIRCRAFT_MARK.fullmatch(self.registration_number):
            violations.add(field_path, "a Chinese aircraft registration mark such as B-1234", "BAD_REGISTRATION_NUMBER")


class PropertyCategory(StrEnum):
    DEPOSITS = "DEPOSITS"
    WEALTH_PRODUCTS = "WEALTH_PRODUCTS"
    SECURITIES = "SECURITIES"
    EQUITY = "EQUITY"
    REAL_ESTATE = "REAL_ESTATE"
    VEHICLES = "VEHICLES"
    SHIPS = "SHIPS"
    AIRCRAFT = "AIRCRAFT"
    RECEIVABLES = "RECEIVABLES"
    ONLINE_PAYMENT = "ONLINE_PAYMENT"
    HOUSING_FUND = "HOUSING_FUND"
    INSURANCE = "INSURANCE"
    INCOME = "INCOME"
    OTHER = "OTHER"


@dataclass(frozen=True)
class PropertyInvestigationDetails:
    """Investigate the debtor's property of the listed categories (the debtor is the case's)."""

    matter_kind: ClassVar[MatterKind] = MatterKind.PROPERTY_INVESTIGATION

    scope: tuple[PropertyCategory | str, ...]
    note: str = ""

    def __post_init__(self) -> None:
        _set(self, "scope", tuple(_coerce(PropertyCategory, c) for c in self.scope))
        _set(self, "note", _trim(self.note))

    def validate(self, path: str, violations: Violations) -> None:
        if not self.scope:
            violations.add(f"{path}.scope", "name at least one property category", "REQUIRED")
        if len(self.scope) > len(PropertyCategory):  # more than every category once: one violation, not one per item
            violations.add(f"{path}.scope", f"at most {len(PropertyCategory)} categories, each once", "TOO_MANY")
            return
        for i, category in enumerate(self.scope):
            check_enum(PropertyCategory, category, f"{path}.scope[{i}]", violations)
        if len(set(self.scope)) < len(self.scope):
            violations.add(f"{path}.scope", "each category at most once", "DUPLICATE")
        # OTHER says nothing by itself: the note must say what to look for.
        required = PropertyCategory.OTHER in self.scope
        check_text(self.note, f"{path}.note", violations, max_length=MAX_TEXT_LENGTH, required=required)


@dataclass(frozen=True)
class ServiceOfDocumentsDetails:
    """Serve the listed documents on the addressee at the address."""

    matter_kind: ClassVar[MatterKind] = MatterKind.SERVICE_OF_DOCUMENTS

    documents: tuple[str, ...]  # titles, e.g. 执行通知书, 报告财产令
    addressee: str
    address: str
    phone: str = ""

    def __post_init__(self) -> None:
        _set(self, "documents", tuple(_trim(d) for d in self.documents))
        _set(self, "addressee", _trim(self.addressee))
        _set(self, "address", _trim(self.address))
        _set(self, "phone", normalize_phone(self.phone))

    def validate(self, path: str, violations: Violations) -> None:
        check_text_list(self.documents, f"{path}.documents", violations, max_length=MAX_NAME_LENGTH)
        check_text(self.addressee, f"{path}.addressee", violations, max_length=MAX_NAME_LENGTH)
        check_text(self.address, f"{path}.address", violations, max_length=MAX_ADDRESS_LENGTH)
        check_phone(self.phone, f"{path}.phone", violations, required=False)


class ControlMeasure(StrEnum):
    DETENTION = "DETENTION"  # 司法拘留
    COMPULSORY_SUMMONS = "COMPULSORY_SUMMONS"  # 拘传


@dataclass(frozen=True)
class ControlMeasureDetails:
    """Take a located debtor into control. The full ID number is kept for the officers who
    act; `masked_id_number` is what lists, events for third parties and logs show."""

    matter_kind: ClassVar[MatterKind] = MatterKind.CONTROL_MEASURES

    person: str
    id_number: str = field(repr=False)  # never printed: repr would reach logs
    location: str
    measure: ControlMeasure | str

    def __post_init__(self) -> None:
        _set(self, "person", _trim(self.person))
        _set(self, "id_number", self.id_number.strip().upper())
        _set(self, "location", _trim(self.location))
        _set(self, "measure", _coerce(ControlMeasure, self.measure))

    @property
    def masked_id_number(self) -> str:
        return mask_id_number(self.id_number)

    def validate(self, path: str, violations: Violations) -> None:
        check_text(self.person, f"{path}.person", violations, max_length=MAX_NAME_LENGTH)
        if not self.id_number:
            violations.add(f"{path}.id_number", "required", "REQUIRED")
        elif not ric.is_valid(self.id_number):
            violations.add(f"{path}.id_number", "not a valid resident identity card number (GB 11643)", "BAD_ID_NUMBER")
        check_text(self.location, f"{path}.location", violations, max_length=MAX_ADDRESS_LENGTH)
        check_enum(ControlMeasure, self.measure, f"{path}.measure", violations)


@dataclass(frozen=True)
class OtherDetails:
    matter_kind: ClassVar[MatterKind] = MatterKind.OTHER

    description: str

    def __post_init__(self) -> None:
        _set(self, "description", _trim(self.description))

    def validate(self, path: str, violations: Violations) -> None:
        check_text(self.description, f"{path}.description", violations, max_length=MAX_TEXT_LENGTH)


MatterDetails = (
    DepositDetails
    | EquityDetails
    | RegisteredPropertyDetails
    | PropertyInvestigationDetails
    | ServiceOfDocumentsDetails
    | ControlMeasureDetails
    | OtherDetails
)

DETAILS_TYPES: dict[MatterKind, type[MatterDetails]] = {
    cls.matter_kind: cls
    for cls in (
        DepositDetails,
        EquityDetails,
        RegisteredPropertyDetails,
        PropertyInvestigationDetails,
        ServiceOfDocumentsDetails,
        ControlMeasureDetails,
        OtherDetails,
    )
}


def check_details(kind: MatterKind, details: MatterDetails, path: str, violations: Violations) -> None:
    """The details are of `kind`'s type and valid; a mismatch is reported alone (the rules would not fit)."""
    if details.matter_kind is not kind:
        expected = DETAILS_TYPES[kind].__name__
        violations.add(path, f"a {kind} matter takes {expected}, got {type(details).__name__}", "KIND_MISMATCH")
        return
    details.validate(path, violations)
