"""Case numbers under arbitrary and near-valid input: only the domain's InvalidArgument, and valid numbers round-trip."""

from __future__ import annotations

import datetime

from hypothesis import given
from hypothesis import strategies as st

from registry.case_number import (
    CASE_TYPES,
    MAX_LENGTH,
    MAX_SEQUENCE,
    SPECIAL_TRIAL_CODES,
    parse_case_number,
    validate_case_number,
)
from registry.courts import CourtCatalog
from registry.errors import InvalidArgument

COURTS = CourtCatalog.default()
TODAY = datetime.date(2024, 6, 1)
COURT_CODES = sorted(c.code for c in COURTS)
REASONS = {
    "CASE_NUMBER_FORMAT",
    "UNKNOWN_COURT_CODE",
    "MONGOLIA_CODE",
    "UNKNOWN_TYPE_CODE",
    "SEQUENCE_NOT_POSITIVE",
    "SEQUENCE_TOO_LARGE",
    "IMPLAUSIBLE_YEAR",
}
BRACKETS = [("（", "）"), ("(", ")"), ("〔", "〕"), ("[", "]"), ("（", ")"), ("", ""), ("(", ""), ("", "）")]

valid_parts = st.tuples(
    st.integers(1949, TODAY.year),
    st.sampled_from(COURT_CODES),
    st.sampled_from(["", *SPECIAL_TRIAL_CODES]),
    st.sampled_from(sorted(CASE_TYPES)),
    st.integers(1, MAX_SEQUENCE),
    st.sampled_from(BRACKETS[:2]),
)


def render(year: object, court: str, special: str, type_code: str, sequence: object, brackets: tuple[str, str]) -> str:
    return f"{brackets[0]}{year}{brackets[1]}{court}{special}{type_code}{sequence}号"


@st.composite
def near_valid(draw: st.DrawFn) -> str:
    """A valid number with one or more parts broken the way people and OCR break them."""
    year, court, special, type_code, sequence, brackets = draw(valid_parts)
    year = draw(st.one_of(st.just(year), st.integers(-10_000, 100_000), st.sampled_from(["", "２０２３", "20２3", "0"])))
    court = draw(st.one_of(st.just(court), st.just("蒙" + court[1:]), st.sampled_from(["内", "蒙", "最高法01", "浙99", ""])))
    type_code = draw(st.one_of(st.just(type_code), st.sampled_from(["执行", "", "执执", "民", "知执", "金民初"])))
    sequence = draw(st.one_of(st.just(sequence), st.integers(-(10**30), 10**30), st.sampled_from(["", "0", "00", "１２"])))
    brackets = draw(st.one_of(st.just(brackets), st.sampled_from(BRACKETS)))
    text = render(year, court, special, type_code, sequence, brackets)
    if draw(st.booleans()):  # a stray character somewhere
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.characters(codec="utf-8")) + text[at:]
    if draw(st.booleans()):
        text = draw(st.sampled_from(["", " ", "\t", "\u3000"])) + text + draw(st.sampled_from(["", " ", "号", "\x00"]))
    return text


def check_only_domain_errors(text: str) -> None:
    violations = validate_case_number(text, COURTS, TODAY)
    assert all(v.reason in REASONS and v.field == "case_number" and v.description for v in violations), violations
    try:
        number = parse_case_number(text, COURTS, today=TODAY)
    except InvalidArgument as error:
        assert violations and error.violations == violations
        return
    assert not violations
    assert parse_case_number(number.text, COURTS, today=TODAY) == number  # canonical text parses back to itself


@given(st.text(max_size=200))
def test_arbitrary_text_only_gives_domain_violations(text: str) -> None:
    check_only_domain_errors(text)


@given(st.text(alphabet=st.sampled_from("()（）〔〕0123456789０１２号执恢保民初知金浙内蒙京粤最高法 \t\x00-"), max_size=40))
def test_case_number_alphabet_soup_only_gives_domain_violations(text: str) -> None:
    check_only_domain_errors(text)


@given(near_valid())
def test_near_valid_numbers_only_give_domain_violations(text: str) -> None:
    check_only_domain_errors(text)


@given(valid_parts)
def test_valid_numbers_round_trip(parts: tuple) -> None:  # type: ignore[type-arg]
    year, court, special, type_code, sequence, brackets = parts
    number = parse_case_number(render(*parts), COURTS, today=TODAY)
    assert (number.year, number.court_code, number.special_code, number.type_code, number.sequence) == (
        year,
        court,
        special,
        type_code,
        sequence,
    )
    assert parse_case_number(number.text, COURTS, today=TODAY) == number
    assert number.slug.isascii() and COURTS.get(number.court_id) is not None


@given(st.text(min_size=MAX_LENGTH + 1, max_size=5000))
def test_overlong_text_is_refused_with_the_limit(text: str) -> None:
    violations = validate_case_number(text, COURTS, TODAY)
    assert violations  # a number of > 64 characters is never valid, however it normalises
    if len(text.strip()) > 4 * MAX_LENGTH:
        assert violations[0].description == f"a case number has at most {MAX_LENGTH} characters"
