"""What a delegation asks for, per matter kind, and what it brings along.

One frozen dataclass per `MatterKind` holds the matter-specific details (account and amount,
company and share, property and its certificate / plate / VIN, documents and addressee,
person and place); `Attachment` describes a file sent with the delegation (the file itself
lives in a document store, addressed by sha256); `Officer` is a court's contact person.

Each type normalises itself on construction (trims text, upper-cases codes, turns enum names
into members) and reports every problem through `validate(path, violations)`, so the wire
layer can hand over names and text unparsed and the caller gets all violations at once.
Enum-typed fields therefore also accept a `str`: after a clean `validate` they hold members.

What each details field must hold is a table, `FIELDS` on each type (`delegation.fields`):
`validate` checks it, and the form of each kind (`delegation.forms`, GetMatterKind) is read
from it, together with `REQUIRED_ATTACHMENTS`, so what the service asks for and what it
accepts are one thing.

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

from delegation.fields import (
    MAX_AMOUNT_FEN,
    MAX_LIST_ITEMS,
    MAX_PERCENT_PLACES,
    FieldRule,
    Format,
    ValueType,
    check_amount,
    check_fields,
    check_phone,
    check_text_list,
    normalize_phone,
    pattern,
    when,
)
from registry.cases import mask_id_number
from registry.errors import Violations, parse_enum
from registry.text import check_text

__all__ = ["MAX_AMOUNT_FEN", "MAX_LIST_ITEMS", "MAX_PERCENT_PLACES", "check_amount", "check_phone", "check_text_list"]

E = TypeVar("E", bound=StrEnum)

MAX_NAME_LENGTH = 200
MAX_TEXT_LENGTH = 2000
MAX_ADDRESS_LENGTH = 500
MAX_CODE_LENGTH = 100
MAX_ATTACHMENTS = 50
MAX_ATTACHMENT_BYTES = 50 * 1024 * 1024
MAX_FILE_NAME_LENGTH = 255


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
_ACCOUNT_NUMBER = Format("ACCOUNT_NUMBER", "6 to 40 digits or letters", "BAD_ACCOUNT_NUMBER", pattern(r"[0-9A-Z]{6,40}"))


@dataclass(frozen=True)
class DepositDetails:
    """Freeze / renew / unfreeze / deduct deposits or wealth products at one bank account."""

    matter_kind: ClassVar[MatterKind] = MatterKind.DEPOSITS
    FIELDS: ClassVar[tuple[FieldRule, ...]] = (
        FieldRule("bank_name", ValueType.TEXT, "开户银行 (the bank, branch included)", max_length=MAX_NAME_LENGTH),
        FieldRule("account_number", ValueType.CODE, "账号 (account number)", formats=(_ACCOUNT_NUMBER,)),
        FieldRule("account_holder", ValueType.TEXT, "户名 (account holder)", max_length=MAX_NAME_LENGTH),
        FieldRule("measure", ValueType.ENUM, "措施 (freeze, renew, unfreeze or deduct)", values=DepositMeasure),
        FieldRule(
            "amount_fen",
            ValueType.AMOUNT_FEN,
            "金额, fen (to freeze or deduct; a renewal or unfreezing may restate it)",
            required_when=when("measure", *_AMOUNT_REQUIRED),
        ),
    )

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
        check_fields(self, self.FIELDS, path, violations)


_CREDIT_CODE = Format("USCC", "not a valid unified social credit code (GB 32100)", "BAD_CREDIT_CODE", uscc.is_valid)
_SHARE_MISSING = "state the share as an amount, a percentage or both"


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
    FIELDS: ClassVar[tuple[FieldRule, ...]] = (
        FieldRule("company_name", ValueType.TEXT, "公司名称 (the company)", max_length=MAX_NAME_LENGTH),
        FieldRule("credit_code", ValueType.CODE, "统一社会信用代码 (the company's credit code)", formats=(_CREDIT_CODE,)),
        FieldRule("shareholder", ValueType.TEXT, "股东 (the shareholder whose equity)", max_length=MAX_NAME_LENGTH),
        FieldRule("measure", ValueType.ENUM, "措施 (freeze, renew or unfreeze)", values=EquityMeasure),
        FieldRule("share_amount_fen", ValueType.AMOUNT_FEN, "认缴出资额, fen", one_of="share", missing=_SHARE_MISSING),
        FieldRule("share_percent", ValueType.PERCENT, "持股比例, percent", one_of="share", missing=_SHARE_MISSING),
    )

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
        check_fields(self, self.FIELDS, path, violations)


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
_PLATE = Format(
    "PLATE",
    "not a mainland plate such as 浙C12345 or 粤BD12345",
    "BAD_PLATE",
    pattern(
        f"[{_PLATE_PROVINCES}]{_PLATE_LETTER}"
        f"(?:{_PLATE_SERIAL}{{4}}[A-HJ-NP-Z0-9挂学警港澳]|[A-HJK]{_PLATE_SERIAL}[0-9]{{4}}|[0-9]{{5}}[DF])"
    ),
)
#: ISO 3779 characters (no I, O, Q). The North American check digit (position 9) is not
#: checked: vehicles made for the Chinese market need not carry one.
_VIN = Format("VIN", "17 characters, digits and letters other than I, O and Q", "BAD_VIN", pattern(r"[A-HJ-NPR-Z0-9]{17}"))
#: GB/T 37346 不动产单元号: 12-digit division + cadastral area, 2-letter parcel type, 5-digit
#: parcel number, F/L/Q/W fixture type, 8 digits.
_UNIT_NUMBER = Format(
    "REAL_ESTATE_UNIT_NUMBER",
    "a 28-character real estate unit number (GB/T 37346)",
    "BAD_UNIT_NUMBER",
    pattern(r"[0-9]{12}[GJZ][A-Z][0-9]{5}[FLQW][0-9]{8}"),
)
_AIRCRAFT_MARK = Format(
    "AIRCRAFT_REGISTRATION_MARK",
    "a Chinese aircraft registration mark such as B-1234",
    "BAD_REGISTRATION_NUMBER",
    pattern(r"B-?[0-9A-Z]{4}"),
    only_when=when("property_kind", PropertyKind.AIRCRAFT),
)
#: The identification fields each kind of property uses (`applies_when`); the others must stay empty.
_REAL_ESTATE = when("property_kind", PropertyKind.REAL_ESTATE)
_VEHICLE = when("property_kind", PropertyKind.VEHICLE)
_SHIP_OR_AIRCRAFT = when("property_kind", PropertyKind.SHIP, PropertyKind.AIRCRAFT)
_VEHICLE_ID_MISSING = "a vehicle needs its plate, its VIN or both"


@dataclass(frozen=True)
class RegisteredPropertyDetails:
    """Seal / renew / unseal / transfer real estate or a registered movable (vehicle, ship, aircraft)."""

    matter_kind: ClassVar[MatterKind] = MatterKind.REAL_ESTATE_OR_REGISTERED_MOVABLES
    FIELDS: ClassVar[tuple[FieldRule, ...]] = (
        FieldRule("property_kind", ValueType.ENUM, "财产种类 (real estate, vehicle, ship or aircraft)", values=PropertyKind),
        FieldRule("measure", ValueType.ENUM, "措施 (seal, renew, unseal or transfer)", values=PropertyMeasure),
        FieldRule("owner", ValueType.TEXT, "权利人 (the registered owner)", max_length=MAX_NAME_LENGTH),
        FieldRule(
            "location",
            ValueType.TEXT,
            "坐落 (where the real estate is)",
            max_length=MAX_ADDRESS_LENGTH,
            applies_when=_REAL_ESTATE,
        ),
        FieldRule(
            "certificate_number",
            ValueType.TEXT,
            "不动产权证号 (any era's or province's format)",
            max_length=MAX_CODE_LENGTH,
            applies_when=_REAL_ESTATE,
        ),
        FieldRule(
            "unit_number",
            ValueType.CODE,
            "不动产单元号 (GB/T 37346)",
            required=False,
            applies_when=_REAL_ESTATE,
            formats=(_UNIT_NUMBER,),
        ),
        FieldRule(
            "plate",
            ValueType.CODE,
            "号牌 (plate)",
            one_of="vehicle",
            missing=_VEHICLE_ID_MISSING,
            applies_when=_VEHICLE,
            formats=(_PLATE,),
        ),
        FieldRule(
            "vin",
            ValueType.CODE,
            "车辆识别代号 (VIN)",
            one_of="vehicle",
            missing=_VEHICLE_ID_MISSING,
            applies_when=_VEHICLE,
            formats=(_VIN,),
        ),
        FieldRule(
            "registration_number",
            ValueType.TEXT,
            "船舶登记号 / 航空器国籍和登记标志 (ship registration number; aircraft mark such as B-1234)",
            max_length=MAX_CODE_LENGTH,
            applies_when=_SHIP_OR_AIRCRAFT,
            formats=(_AIRCRAFT_MARK,),
        ),
    )

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
        check_fields(self, self.FIELDS, path, violations)


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
    FIELDS: ClassVar[tuple[FieldRule, ...]] = (
        FieldRule("scope", ValueType.ENUM_LIST, "property category", values=PropertyCategory),
        # OTHER says nothing by itself: the note must say what to look for.
        FieldRule(
            "note",
            ValueType.TEXT,
            "说明 (what to look for; required when the scope names OTHER)",
            max_length=MAX_TEXT_LENGTH,
            required_when=when("scope", PropertyCategory.OTHER),
        ),
    )

    scope: tuple[PropertyCategory | str, ...]
    note: str = ""

    def __post_init__(self) -> None:
        _set(self, "scope", tuple(_coerce(PropertyCategory, c) for c in self.scope))
        _set(self, "note", _trim(self.note))

    def validate(self, path: str, violations: Violations) -> None:
        check_fields(self, self.FIELDS, path, violations)


@dataclass(frozen=True)
class ServiceOfDocumentsDetails:
    """Serve the listed documents on the addressee at the address."""

    matter_kind: ClassVar[MatterKind] = MatterKind.SERVICE_OF_DOCUMENTS
    FIELDS: ClassVar[tuple[FieldRule, ...]] = (
        FieldRule("documents", ValueType.TEXT_LIST, "文书 (titles of the documents to serve)", max_length=MAX_NAME_LENGTH),
        FieldRule("addressee", ValueType.TEXT, "受送达人 (the addressee)", max_length=MAX_NAME_LENGTH),
        FieldRule("address", ValueType.TEXT, "送达地址 (where to serve)", max_length=MAX_ADDRESS_LENGTH),
        FieldRule("phone", ValueType.PHONE, "联系电话 (the addressee's phone)", required=False),
    )

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
        check_fields(self, self.FIELDS, path, violations)


_ID_NUMBER = Format("RESIDENT_ID_NUMBER", "not a valid resident identity card number (GB 11643)", "BAD_ID_NUMBER", ric.is_valid)


class ControlMeasure(StrEnum):
    DETENTION = "DETENTION"  # 司法拘留
    COMPULSORY_SUMMONS = "COMPULSORY_SUMMONS"  # 拘传


@dataclass(frozen=True)
class ControlMeasureDetails:
    """Take a located debtor into control. The full ID number is kept for the officers who
    act; `masked_id_number` is what lists, events for third parties and logs show."""

    matter_kind: ClassVar[MatterKind] = MatterKind.CONTROL_MEASURES
    FIELDS: ClassVar[tuple[FieldRule, ...]] = (
        FieldRule("person", ValueType.TEXT, "被执行人 (the person)", max_length=MAX_NAME_LENGTH),
        FieldRule("id_number", ValueType.CODE, "身份证号 (resident identity card number)", formats=(_ID_NUMBER,)),
        FieldRule("location", ValueType.TEXT, "所在地 (where the person was located)", max_length=MAX_ADDRESS_LENGTH),
        FieldRule("measure", ValueType.ENUM, "措施 (detention or compulsory summons)", values=ControlMeasure),
    )

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
        check_fields(self, self.FIELDS, path, violations)


@dataclass(frozen=True)
class OtherDetails:
    matter_kind: ClassVar[MatterKind] = MatterKind.OTHER
    FIELDS: ClassVar[tuple[FieldRule, ...]] = (
        FieldRule("description", ValueType.TEXT, "事项 (what the entrusted court is asked to do)", max_length=MAX_TEXT_LENGTH),
    )

    description: str

    def __post_init__(self) -> None:
        _set(self, "description", _trim(self.description))

    def validate(self, path: str, violations: Violations) -> None:
        check_fields(self, self.FIELDS, path, violations)


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
