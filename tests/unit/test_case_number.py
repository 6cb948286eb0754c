"""Case numbers (案号): parsing, validation, canonical text and slug (registry/case_number.py)."""

from __future__ import annotations

import datetime
import re

import pytest

from registry.case_number import (
    CASE_TYPES,
    ENFORCEMENT_TYPE_CODES,
    OTHER_TYPE_CODES,
    SPECIAL_TRIAL_CODES,
    CaseNumber,
    china_today,
    parse_case_number,
    validate_case_number,
)
from registry.courts import CourtCatalog
from registry.errors import InvalidArgument

TODAY = datetime.date(2024, 6, 1)


@pytest.fixture(scope="module")
def courts() -> CourtCatalog:
    return CourtCatalog.default()


def parse(text: str, courts: CourtCatalog, **kwargs: object) -> CaseNumber:
    return parse_case_number(text, courts, today=TODAY, **kwargs)  # type: ignore[arg-type]


def reasons(text: str, courts: CourtCatalog, today: datetime.date = TODAY) -> list[str]:
    return [v.reason for v in validate_case_number(text, courts, today)]


# --- valid numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "year", "court_code", "court_id", "special", "type_code", "sequence", "enforcement"),
    [
        ("（2023）浙0326执1234号", 2023, "浙0326", "zj0326", "", "执", 1234, True),
        ("(2018)京0108执16681号", 2018, "京0108", "bj0108", "", "执", 16681, True),
        ("(2016)最高法执监408号", 2016, "最高法", "spc", "", "执监", 408, True),
        ("(2020)浙01知民初277号", 2020, "浙01", "zj01", "知", "民初", 277, False),
        ("(2020)粤0112执恢12号", 2020, "粤0112", "gd0112", "", "执恢", 12, True),
        ("(2021)粤0192执保3号", 2021, "粤0192", "gd0192", "", "执保", 3, True),
        ("(2022)浙72执异5号", 2022, "浙72", "zj72", "", "执异", 5, True),
        ("(2022)浙执复9号", 2022, "浙", "zj", "", "执复", 9, True),
        ("(2020)豫0122执协1号", 2020, "豫0122", "ha0122", "", "执协", 1, True),
        ("(2019)沪74执他2号", 2019, "沪74", "sh74", "", "执他", 2, True),
        ("(2021)沪74金民初88号", 2021, "沪74", "sh74", "金", "民初", 88, False),
        ("(2021)京73民终4号", 2021, "京73", "bj73", "", "民终", 4, False),
        ("(2023)内执1号", 2023, "内", "nm", "", "执", 1, True),
        ("(2023)军执1号", 2023, "军", "mil", "", "执", 1, True),
        ("(2019)浙0681破3号", 2019, "浙0681", "zj0681", "", "破", 3, False),
        ("(2020)粤01民辖终7号", 2020, "粤01", "gd01", "", "民辖终", 7, False),
    ],
)
def test_valid_numbers_parse_into_their_parts(
    courts: CourtCatalog,
    text: str,
    year: int,
    court_code: str,
    court_id: str,
    special: str,
    type_code: str,
    sequence: int,
    enforcement: bool,
) -> None:
    number = parse(text, courts)
    assert number == CaseNumber(year, court_code, court_id, special, type_code, sequence)
    assert number.is_enforcement is enforcement
    assert validate_case_number(text, courts, TODAY) == []


@pytest.mark.parametrize(
    "text",
    [
        "（2023）浙0326执1234号",
        "(2023)浙0326执1234号",
        "（2023)浙0326执1234号",
        "(2023）浙0326执1234号",
        "（２０２３）浙０３２６执１２３４号",  # full-width digits
        "  (2023)浙0326执1234号\n",
        "\u3000（2023）浙0326执1234号\u3000",  # ideographic spaces
        "\t(2023)浙0326执1234号 ",
    ],
)
def test_bracket_width_digit_width_and_surrounding_whitespace_do_not_matter(courts: CourtCatalog, text: str) -> None:
    number = parse(text, courts)
    assert number.text == "（2023）浙0326执1234号"
    assert number.court_id == "zj0326"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("(2018)京0108执16681号", "（2018）京0108执16681号"),
        ("(2016)最高法执监408号", "（2016）最高法执监408号"),
        ("(2020)浙01知民初277号", "（2020）浙01知民初277号"),
        ("（2023）浙0326执1234号", "（2023）浙0326执1234号"),
    ],
)
def test_canonical_text_round_trips(courts: CourtCatalog, text: str, canonical: str) -> None:
    number = parse(text, courts)
    assert number.text == canonical
    assert str(number) == canonical
    assert parse(number.text, courts) == number


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("（2023）浙0326执1234号", "2023-enf-1234"),
        ("(2020)浙0326执恢1234号", "2020-enf-resume-1234"),
        ("(2020)浙0326执保1号", "2020-enf-preserve-1"),
        ("(2020)浙0326执异1号", "2020-enf-objection-1"),
        ("(2020)浙0326执复1号", "2020-enf-review-1"),
        ("(2016)最高法执监408号", "2016-enf-supervision-408"),
        ("(2020)浙0326执协1号", "2020-enf-coord-1"),
        ("(2020)浙0326执他1号", "2020-enf-other-1"),
        ("(2020)浙01知民初277号", "2020-ip-civ-first-277"),
        ("(2021)沪74金民初88号", "2021-fin-civ-first-88"),
        ("(2020)浙01民初277号", "2020-civ-first-277"),
    ],
)
def test_slug(courts: CourtCatalog, text: str, slug: str) -> None:
    number = parse(text, courts)
    assert number.slug == slug
    assert re.fullmatch(r"[0-9]{4}(-[a-z]+)+-[0-9]+", number.slug)


def test_slugs_are_unique_per_court() -> None:
    # Every (special code, type code) pair must give a distinct slug stem, or two cases would collide.
    stems = [f"{s}-{t.slug}" if s else t.slug for s in ["", *(v[0] for v in SPECIAL_TRIAL_CODES.values())]
             for t in CASE_TYPES.values()]  # fmt: skip
    assert len(stems) == len(set(stems))
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", stem) for stem in stems)


@pytest.mark.parametrize(
    ("code", "slug"),
    [
        ("执", "enf"),
        ("执恢", "enf-resume"),
        ("执保", "enf-preserve"),
        ("执异", "enf-objection"),
        ("执复", "enf-review"),
        ("执监", "enf-supervision"),
        ("执协", "enf-coord"),
        ("执他", "enf-other"),
    ],
)
def test_enforcement_type_table(code: str, slug: str) -> None:
    case_type = ENFORCEMENT_TYPE_CODES[code]
    assert (case_type.code, case_type.slug, case_type.enforcement) == (code, slug, True)
    assert case_type.label


def test_enforcement_table_is_exactly_the_eight_codes() -> None:
    assert set(ENFORCEMENT_TYPE_CODES) == {"执", "执恢", "执保", "执异", "执复", "执监", "执协", "执他"}


@pytest.mark.parametrize("code", ["民初", "民终", "民申", "民再", "刑初", "刑终", "行初", "行终", "破", "财保", "民特"])
def test_common_other_types_are_not_enforcement(code: str) -> None:
    assert OTHER_TYPE_CODES[code].enforcement is False
    assert code not in ENFORCEMENT_TYPE_CODES


def test_special_codes_include_ip_and_financial() -> None:
    assert {"知", "金"} <= set(SPECIAL_TRIAL_CODES)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("（2023）浙0326执1234号", "first enforcement"),
        ("(2016)最高法执监408号", "enforcement supervision"),
        ("(2020)浙01知民初277号", "civil, first instance (intellectual property)"),
    ],
)
def test_type_label(courts: CourtCatalog, text: str, label: str) -> None:
    assert parse(text, courts).type_label == label


# --- invalid numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason", "words"),
    [
        ("(2023)蒙01执1号", "MONGOLIA_CODE", "内"),
        ("(2023)浙0326执0号", "SEQUENCE_NOT_POSITIVE", "1 or more"),
        ("(2023)浙0326执000号", "SEQUENCE_NOT_POSITIVE", "1 or more"),
        ("2023浙0326执1234号", "CASE_NUMBER_FORMAT", "brackets"),
        ("(2023)浙0326执行1234号", "UNKNOWN_TYPE_CODE", "执行"),
        ("(2023)浙0326执1234", "CASE_NUMBER_FORMAT", "号"),
        ("(2023)浙0326执号", "CASE_NUMBER_FORMAT", "sequence"),
        ("(2023)浙0399执1号", "UNKNOWN_COURT_CODE", "浙0399"),
        ("(2023)江01执1号", "UNKNOWN_COURT_CODE", "江01"),
        ("(2023)浙032执1号", "UNKNOWN_COURT_CODE", "浙032"),
        ("(2023)最高法01执1号", "UNKNOWN_COURT_CODE", "最高法"),
        ("(2023)执1号", "CASE_NUMBER_FORMAT", "court code"),
        ("(2023)浙0326海民初1号", "UNKNOWN_TYPE_CODE", "海民初"),
        ("(2023)浙0326知执行1号", "UNKNOWN_TYPE_CODE", "知执行"),
        ("(2025)浙0326执1号", "IMPLAUSIBLE_YEAR", "2025"),
        ("(1948)浙0326执1号", "IMPLAUSIBLE_YEAR", "1948"),
        ("(23)浙0326执1号", "CASE_NUMBER_FORMAT", "four digits"),
        ("()浙0326执1号", "CASE_NUMBER_FORMAT", "year"),
        ("(2023浙0326执1号", "CASE_NUMBER_FORMAT", "closing bracket"),
        ("2023)浙0326执1号", "CASE_NUMBER_FORMAT", "opening bracket"),
        ("〔2023〕浙0326执1号", "CASE_NUMBER_FORMAT", "not a case number"),
        ("(2023)浙0326 执1号", "CASE_NUMBER_FORMAT", "spaces"),
        ("(2023)浙0326执99999999999号", "SEQUENCE_TOO_LARGE", "too large"),
        ("", "CASE_NUMBER_FORMAT", "required"),
        ("   ", "CASE_NUMBER_FORMAT", "required"),
        ("hello", "CASE_NUMBER_FORMAT", "not a case number"),
        ("(2023)浙0326执1号" * 5, "CASE_NUMBER_FORMAT", "at most"),
    ],
)
def test_invalid_numbers_say_why(courts: CourtCatalog, text: str, reason: str, words: str) -> None:
    violations = validate_case_number(text, courts, TODAY)
    assert [v.reason for v in violations] == [reason]
    assert words in violations[0].description
    assert violations[0].field == "case_number"
    with pytest.raises(InvalidArgument) as raised:
        parse(text, courts)
    assert raised.value.violations == violations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "(2031)蒙01执行0号",
            ["IMPLAUSIBLE_YEAR", "MONGOLIA_CODE", "UNKNOWN_TYPE_CODE", "SEQUENCE_NOT_POSITIVE"],
        ),
        ("2023浙0399执行1234", ["CASE_NUMBER_FORMAT", "UNKNOWN_COURT_CODE", "UNKNOWN_TYPE_CODE", "CASE_NUMBER_FORMAT"]),
        ("(2023)浙0326 执行1号", ["CASE_NUMBER_FORMAT", "UNKNOWN_TYPE_CODE"]),
        ("(2023)浙0326号", ["CASE_NUMBER_FORMAT", "CASE_NUMBER_FORMAT"]),  # no type code, no sequence
        ("(2023)浙03261号", ["UNKNOWN_COURT_CODE", "CASE_NUMBER_FORMAT", "CASE_NUMBER_FORMAT"]),
    ],
)
def test_every_problem_is_reported(courts: CourtCatalog, text: str, expected: list[str]) -> None:
    assert reasons(text, courts) == expected


def test_field_path_is_the_callers(courts: CourtCatalog) -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse("(2023)蒙01执1号", courts, field="matter.case_number")
    assert [v.field for v in raised.value.violations] == ["matter.case_number"]
    assert validate_case_number("(2023)蒙01执1号", courts, TODAY, field="x")[0].field == "x"


def test_mongolia_hint_names_the_right_code(courts: CourtCatalog) -> None:
    (violation,) = validate_case_number("(2023)蒙01执1号", courts, TODAY)
    assert "内01" in violation.description


# --- the year boundary ----------------------------------------------------------------------------


@pytest.mark.parametrize(("year", "valid"), [(1948, False), (1949, True), (2016, True), (2024, True), (2025, False)])
def test_year_bounds(courts: CourtCatalog, year: int, valid: bool) -> None:
    assert (reasons(f"({year})浙0326执1号", courts) == []) is valid


def test_default_today_accepts_this_year_and_rejects_next(courts: CourtCatalog) -> None:
    this_year = china_today().year
    assert validate_case_number(f"({this_year})浙0326执1号", courts) == []
    assert reasons(f"({this_year + 1})浙0326执1号", courts, china_today()) == ["IMPLAUSIBLE_YEAR"]
    with pytest.raises(InvalidArgument):
        parse_case_number(f"({this_year + 1})浙0326执1号", courts)


def test_court_must_be_in_the_catalog_even_if_the_code_is_well_formed() -> None:
    small = CourtCatalog([c for c in CourtCatalog.default() if c.id in {"spc", "zj", "zj03"}])
    assert reasons("(2023)浙03执1号", small) == []
    assert reasons("(2023)浙0326执1号", small) == ["UNKNOWN_COURT_CODE"]


# --- issue 15 point 11: validated, never rewritten into another number ----------------------------


@pytest.mark.parametrize(
    "text", ["（2023）浙0326执01号", "(2023)浙0326执0001234号", "（2023）浙0326执０１号", "(2020)浙01知民初0277号"]
)
def test_i15_p11_a_sequence_with_a_leading_zero_is_refused_with_its_own_reason(courts: CourtCatalog, text: str) -> None:
    violations = validate_case_number(text, courts, TODAY)
    assert [(v.field, v.reason) for v in violations] == [("case_number", "SEQUENCE_LEADING_ZERO")]
    assert "must not start with 0" in violations[0].description
    with pytest.raises(InvalidArgument):
        parse(text, courts)


@pytest.mark.parametrize("text", ["(2023)浙0326执①号", "(2023)浙0326执¹号", "⑵⑳⑵⑶浙0326执1号", "(2023)浙0326执1⁰号"])
def test_i15_p11_look_alike_digits_are_not_read_as_digits(courts: CourtCatalog, text: str) -> None:
    assert "CASE_NUMBER_FORMAT" in reasons(text, courts)  # NFKC would have read them as 1, 2023, 10


def test_i15_p11_full_width_digits_are_the_same_digits() -> None:
    assert parse("(２０２３)浙0326执1号", CourtCatalog.default()).text == "（2023）浙0326执1号"
