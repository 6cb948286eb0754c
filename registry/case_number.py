"""Case numbers (案号) as defined by 法〔2015〕137号, amended by 法〔2018〕335号.

Shape: `（year）` + court code + optional one-character special-trial code + case-type code
+ sequence + `号`, e.g. `（2023）浙0326执1234号` or `(2020)浙01知民初277号`.

Parsing is two-staged so a caller learns every problem at once: a permissive regex splits
the text into its parts (each part optional), then each part is checked on its own.

Year policy: 1949 ≤ year ≤ the current year in China (UTC+8). The format itself dates from
2016, but numbers may have been normalised into it from older records, so only years that
cannot be real are rejected; "today" is Chinese civil time because courts docket in it.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from registry.courts import COURT_CODE_PREFIXES, SUPREME_COURT_CODE, CourtCatalog, split_court_code
from registry.errors import FieldViolation, InvalidArgument, Violations

EARLIEST_YEAR = 1949
MAX_SEQUENCE = 2**31 - 1  # fits an int32 proto field and any SQL INTEGER column
MAX_LENGTH = 64  # real numbers are ~20 characters; bounds the work done on hostile input
CHINA_TZ = datetime.timezone(datetime.timedelta(hours=8), "CST")

# Reason codes a client can switch on (FieldViolation.reason).
CASE_NUMBER_FORMAT = "CASE_NUMBER_FORMAT"
UNKNOWN_COURT_CODE = "UNKNOWN_COURT_CODE"
MONGOLIA_CODE = "MONGOLIA_CODE"
UNKNOWN_TYPE_CODE = "UNKNOWN_TYPE_CODE"
SEQUENCE_NOT_POSITIVE = "SEQUENCE_NOT_POSITIVE"
SEQUENCE_TOO_LARGE = "SEQUENCE_TOO_LARGE"
SEQUENCE_LEADING_ZERO = "SEQUENCE_LEADING_ZERO"
IMPLAUSIBLE_YEAR = "IMPLAUSIBLE_YEAR"


@dataclass(frozen=True)
class CaseType:
    code: str  # e.g. 执恢
    slug: str  # ASCII, used in resource ids
    label: str  # English
    enforcement: bool


def _table(enforcement: bool, *rows: tuple[str, str, str]) -> dict[str, CaseType]:
    return {code: CaseType(code, slug, label, enforcement) for code, slug, label in rows}


ENFORCEMENT_TYPE_CODES: dict[str, CaseType] = _table(
    True,
    ("执", "enf", "first enforcement"),
    ("执恢", "enf-resume", "resumed enforcement"),
    ("执保", "enf-preserve", "preservation enforcement"),
    ("执异", "enf-objection", "enforcement objection"),
    ("执复", "enf-review", "enforcement reconsideration"),
    ("执监", "enf-supervision", "enforcement supervision"),
    ("执协", "enf-coord", "enforcement coordination"),
    ("执他", "enf-other", "other enforcement matter"),
)

#: Common non-enforcement type codes: such numbers are valid but `is_enforcement` is False.
OTHER_TYPE_CODES: dict[str, CaseType] = _table(
    False,
    ("民初", "civ-first", "civil, first instance"),
    ("民终", "civ-appeal", "civil, second instance"),
    ("民申", "civ-retrial-petition", "civil, retrial petition"),
    ("民再", "civ-retrial", "civil, retrial"),
    ("民特", "civ-special", "civil, special procedure"),
    ("民督", "civ-payment-order", "civil, payment order"),
    ("民催", "civ-public-summons", "civil, public summons"),
    ("民辖", "civ-jurisdiction", "civil, jurisdiction"),
    ("民辖终", "civ-jurisdiction-appeal", "civil, jurisdiction appeal"),
    ("民他", "civ-other", "civil, other"),
    ("刑初", "crim-first", "criminal, first instance"),
    ("刑终", "crim-appeal", "criminal, second instance"),
    ("刑申", "crim-retrial-petition", "criminal, retrial petition"),
    ("刑再", "crim-retrial", "criminal, retrial"),
    ("行初", "adm-first", "administrative, first instance"),
    ("行终", "adm-appeal", "administrative, second instance"),
    ("行申", "adm-retrial-petition", "administrative, retrial petition"),
    ("行再", "adm-retrial", "administrative, retrial"),
    ("行审", "adm-enf-review", "administrative, review of a non-litigation enforcement application"),
    ("破申", "bankruptcy-petition", "bankruptcy petition"),
    ("破", "bankruptcy", "bankruptcy"),
    ("强清", "liquidation", "compulsory liquidation"),
    ("财保", "pre-suit-preserve", "pre-litigation property preservation"),
)

CASE_TYPES: dict[str, CaseType] = {**ENFORCEMENT_TYPE_CODES, **OTHER_TYPE_CODES}

#: One-character special-trial codes placed between court code and type code → (slug, label).
SPECIAL_TRIAL_CODES: dict[str, tuple[str, str]] = {
    "知": ("ip", "intellectual property"),
    "金": ("fin", "financial"),
}

# Every part optional so that a malformed number still yields per-part diagnostics.
# Runs on width-folded text: full-width brackets and digits are ASCII by then.
# A court code is 最高法, a known prefix (or 蒙, to explain it), or any other letter followed
# by at least two digits; anything else (e.g. the 执 of "(2023)执1号") means "court code missing".
_COURT_CHARS = "".join(sorted(COURT_CODE_PREFIXES)) + "蒙"
_SHAPE = re.compile(
    r"(?P<open>\()?(?P<year>[0-9]*)(?P<close>\))?"
    rf"(?P<court>{SUPREME_COURT_CODE}|[{_COURT_CHARS}]|[^\W\d_](?=[0-9]{{2}}))?(?P<digits>[0-9]*)"
    r"(?P<kind>[^\W\d_]*?)(?P<seq>[0-9]*)(?P<hao>号)?"
)
_WHITESPACE = re.compile(r"\s+")
#: Full-width ASCII forms (（２０２３）) and the ideographic space to their ASCII twins: the same
#: character in another width. Not NFKC, which would also read ① or ¹ as 1 and accept a
#: number as another one.
_HALF_WIDTH = {0xFF01 + i: 0x21 + i for i in range(94)} | {0x3000: 0x20}


@dataclass(frozen=True)
class CaseNumber:
    year: int
    court_code: str
    court_id: str
    special_code: str  # "" or a key of SPECIAL_TRIAL_CODES
    type_code: str  # a key of CASE_TYPES
    sequence: int

    @property
    def text(self) -> str:
        """Canonical form, full-width brackets: （2023）浙0326执1234号."""
        return f"（{self.year}）{self.court_code}{self.special_code}{self.type_code}{self.sequence}号"

    @property
    def case_type(self) -> CaseType:
        return CASE_TYPES[self.type_code]

    @property
    def is_enforcement(self) -> bool:
        return self.case_type.enforcement

    @property
    def slug(self) -> str:
        """ASCII id unique within one court: 2023-enf-1234, 2020-ip-civ-first-277."""
        special = f"{SPECIAL_TRIAL_CODES[self.special_code][0]}-" if self.special_code else ""
        return f"{self.year}-{special}{self.case_type.slug}-{self.sequence}"

    @property
    def type_label(self) -> str:
        label = self.case_type.label
        return f"{label} ({SPECIAL_TRIAL_CODES[self.special_code][1]})" if self.special_code else label

    def __str__(self) -> str:
        return self.text


def parse_case_number(
    text: str,
    courts: CourtCatalog,
    *,
    today: datetime.date | None = None,
    field: str = "case_number",
) -> CaseNumber:
    """Parse and validate a case number; InvalidArgument lists every problem found."""
    case_number, violations = _analyse(text, courts, today, field)
    if violations or case_number is None:
        raise InvalidArgument.of(violations.items)
    return case_number


def validate_case_number(
    text: str,
    courts: CourtCatalog,
    today: datetime.date | None = None,
    *,
    field: str = "case_number",
) -> list[FieldViolation]:
    """Every problem of `text` as a case number; empty when it is valid."""
    return _analyse(text, courts, today, field)[1].items


def china_today() -> datetime.date:
    return datetime.datetime.now(CHINA_TZ).date()


def _analyse(text: str, courts: CourtCatalog, today: datetime.date | None, field: str) -> tuple[CaseNumber | None, Violations]:
    found = Violations()
    normalised = (text or "").translate(_HALF_WIDTH).strip()
    if not normalised:
        found.add(field, "a case number is required, e.g. （2023）浙0326执1234号", CASE_NUMBER_FORMAT)
        return None, found
    if len(normalised) > MAX_LENGTH:
        found.add(field, f"a case number has at most {MAX_LENGTH} characters", CASE_NUMBER_FORMAT)
        return None, found
    if other_digits := sorted({c for c in normalised if c.isnumeric() and not c.isascii() and c not in COURT_CODE_PREFIXES}):
        # ٣, ①, 三 … are no digits of a case number: say so rather than "not a case number".
        # A province abbreviation is none either, though Unicode 15.1 (Python 3.13) gave 京 a
        # numeric value (10^16).
        shown = ", ".join(repr(c) for c in other_digits)
        found.add(field, f"digits must be 0–9 (ASCII or full-width): {shown} not", CASE_NUMBER_FORMAT)
        return None, found
    if _WHITESPACE.search(normalised):
        found.add(field, f"case number {text!r} must not contain spaces", CASE_NUMBER_FORMAT)
        normalised = _WHITESPACE.sub("", normalised)  # keep going to report the other problems too
    shape = _SHAPE.fullmatch(normalised)
    # Without year, court and 号 there is nothing case-number-like to comment on part by part.
    if shape is None or not (shape["year"] or shape["court"] or shape["hao"]):
        found.add(
            field,
            f"{text!r} is not a case number: expected （year）court code + case type + sequence + 号, "
            "e.g. （2023）浙0326执1234号",
            CASE_NUMBER_FORMAT,
        )
        return None, found
    year = _check_year(shape, today or china_today(), field, found)
    court_code = (shape["court"] or "") + shape["digits"]
    court_id = _check_court(court_code, courts, field, found)
    special, type_code = _check_type(shape["kind"], field, found)
    sequence = _check_sequence(shape, field, found)
    if found or year is None or court_id is None or type_code is None or sequence is None:
        return None, found
    return CaseNumber(year, court_code, court_id, special, type_code, sequence), found


def _check_year(shape: re.Match[str], today: datetime.date, field: str, found: Violations) -> int | None:
    opened, closed, digits = bool(shape["open"]), bool(shape["close"]), shape["year"]
    if not digits:
        found.add(field, "the year in brackets is missing, e.g. （2023）", CASE_NUMBER_FORMAT)
        return None
    if not (opened and closed):
        missing = "brackets" if not (opened or closed) else "the opening bracket" if closed else "the closing bracket"
        found.add(field, f"the year must be in brackets, e.g. （{digits}）: {missing} missing", CASE_NUMBER_FORMAT)
    if len(digits) != 4:
        found.add(field, f"the year must have four digits, got {digits!r}", CASE_NUMBER_FORMAT)
        return None
    year = int(digits)
    if not EARLIEST_YEAR <= year <= today.year:
        found.add(field, f"year {year} is implausible: it must be {EARLIEST_YEAR}–{today.year}", IMPLAUSIBLE_YEAR)
        return None
    return year


def _check_court(code: str, courts: CourtCatalog, field: str, found: Violations) -> str | None:
    if not code:
        found.add(field, "the court code (e.g. 浙0326) is missing", CASE_NUMBER_FORMAT)
        return None
    if code.startswith("蒙"):
        found.add(field, f"Inner Mongolia's court code is 内, never 蒙: write {'内' + code[1:]}", MONGOLIA_CODE)
        return None
    try:
        split_court_code(code)
    except ValueError as exc:
        hint = f"{SUPREME_COURT_CODE} takes no digits" if code.startswith(SUPREME_COURT_CODE) else str(exc)
        found.add(field, f"unknown court code {code!r}: {hint}", UNKNOWN_COURT_CODE)
        return None
    court = courts.by_code(code)
    if court is None:
        found.add(field, f"unknown court code {code!r}: no such court in the court registry", UNKNOWN_COURT_CODE)
        return None
    return court.id


def _check_type(kind: str, field: str, found: Violations) -> tuple[str, str | None]:
    """Split `知民初` into special code 知 and type code 民初; a whole known type code wins."""
    if not kind:
        found.add(field, "the case-type code (e.g. 执) is missing", CASE_NUMBER_FORMAT)
        return "", None
    if kind in CASE_TYPES:
        return "", kind
    if kind[0] in SPECIAL_TRIAL_CODES and kind[1:] in CASE_TYPES:
        return kind[0], kind[1:]
    hint = "first enforcement is 执" if kind == "执行" else "enforcement types are " + "、".join(ENFORCEMENT_TYPE_CODES)
    found.add(field, f"unknown case-type code {kind!r}: {hint}", UNKNOWN_TYPE_CODE)
    return "", None


def _check_sequence(shape: re.Match[str], field: str, found: Violations) -> int | None:
    digits, has_hao = shape["seq"], bool(shape["hao"])
    if not has_hao:
        found.add(field, "a case number ends with 号", CASE_NUMBER_FORMAT)
    if not digits:
        found.add(field, "the sequence number before 号 is missing", CASE_NUMBER_FORMAT)
        return None
    sequence = int(digits)
    if sequence < 1:
        found.add(field, f"the sequence number must be 1 or more, got {digits}", SEQUENCE_NOT_POSITIVE)
        return None
    if digits.startswith("0"):  # 执01号 is not 执1号: a number is refused, never rewritten into another
        found.add(field, f"the sequence number must not start with 0, got {digits}", SEQUENCE_LEADING_ZERO)
        return None
    if sequence > MAX_SEQUENCE:
        found.add(field, f"the sequence number {sequence} is too large (at most {MAX_SEQUENCE})", SEQUENCE_TOO_LARGE)
        return None
    return sequence
