"""Numbers in client input are written in ASCII digits 0-9, and nothing else.

Python's int(), Decimal() and str.isdigit() take every script's decimal digits — Arabic-Indic
٣, full-width ３, Devanagari ३ — and Decimal also `1_000`, so each parser of a number a client
sends checks the characters itself and refuses the others with its own reason: percentages
(BAD_PERCENT, BAD_DECIMAL), etags (BAD_ETAG, on every service), division codes
(BAD_DIVISION_CODE), case-number years and sequences (CASE_NUMBER_FORMAT), filters
(BAD_FILTER) and `rogatory deadline --period`. Case numbers alone fold full-width forms
(（２０２３）) to ASCII first, the same characters in another width, as documented.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from rogatory.assistance.v1 import assistance_pb2 as apb
from rogatory.assistance.v1 import vehicle_control_pb2 as vpb
from rogatory.delegation.v1 import delegation_pb2 as dpb
from rogatory.registry.v1 import registry_pb2 as rpb

from registry.case_number import validate_case_number
from registry.courts import CourtCatalog
from registry.errors import InvalidArgument
from services.assistance import messages as assistance_messages
from services.assistance.vehicles import messages as vehicle_messages
from services.delegation import messages as delegation_messages
from services.plumbing.fields import parse_decimal
from services.plumbing.filtering import IntRange, parse_filter
from services.registry import messages as registry_messages
from services.tools.cli import main as rogatory_main
from tests.unit.test_delegation_domain import FULL_COMMAND, create

#: Three in other scripts' digits: Arabic-Indic, Extended Arabic-Indic, full-width, Devanagari, Bengali.
FOREIGN_THREES = ["٣", "۳", "３", "३", "৩"]


def reasons(error: InvalidArgument) -> set[tuple[str, str]]:
    return {(v.field, v.reason) for v in error.violations}


@pytest.mark.parametrize("three", FOREIGN_THREES)
def test_a_share_percent_in_other_digits_is_bad_percent(three: str) -> None:
    for text in (three, f"1{three}.5", f"12.{three}"):
        with pytest.raises(InvalidArgument) as caught:
            delegation_messages.details_from_proto(dpb.Delegation(equity=dpb.EquityDetails(share_percent=text)))
        assert reasons(caught.value) == {("delegation.equity.share_percent", "BAD_PERCENT")}, text


@pytest.mark.parametrize("three", FOREIGN_THREES)
def test_a_notice_percent_in_other_digits_is_bad_decimal(three: str) -> None:
    for target in (
        apb.NoticeTarget(income=apb.NoticeTarget.Income(payer="某公司", percent=f"{three}0")),
        apb.NoticeTarget(equity=apb.NoticeTarget.Equity(company_name="某公司", credit_code="x", share_percent=three)),
    ):
        with pytest.raises(InvalidArgument) as caught:
            assistance_messages.target_from_proto(target)
        assert {reason for _, reason in reasons(caught.value)} == {"BAD_DECIMAL"}, target


@pytest.mark.parametrize(
    "text", ["1_000", "NaN", "Infinity", "-inf", "12,5", "1.2.3", "", " ", "+", ".", "e5", "１２.５", "12.5%"]
)
def test_only_decimal_notation_in_ascii_digits_is_a_decimal(text: str) -> None:
    if not text.strip():
        assert parse_decimal(text, "p", "BAD") is None  # not given
        return
    with pytest.raises(InvalidArgument) as caught:
        parse_decimal(text, "p", "BAD")
    assert reasons(caught.value) == {("p", "BAD")}


@pytest.mark.parametrize(
    ("text", "value"),
    [("12.5", "12.5"), (" 30 ", "30"), ("0.5", "0.5"), (".5", "0.5"), ("5.", "5"), ("+3", "3"), ("-3", "-3"), ("1E+1", "10")],
)
def test_decimal_notation_in_ascii_digits_still_parses(text: str, value: str) -> None:
    assert parse_decimal(text, "p", "BAD") == Decimal(value)


@pytest.mark.parametrize("three", FOREIGN_THREES)
def test_an_etag_in_other_digits_is_bad_etag_on_every_service(three: str) -> None:
    for etag in (f'W/"{three}"', f'"{three}"', f'W/"1{three}"'):
        for parse in (
            lambda e: registry_messages.close_command(rpb.CloseCaseRequest(name="courts/gd0112/cases/x", etag=e)),
            lambda e: vehicle_messages.lift_command(vpb.LiftVehicleControlRequest(name="x", etag=e)),
            lambda e: delegation_messages.parse_etag(e),
            lambda e: assistance_messages.parse_etag(e),
        ):
            with pytest.raises(InvalidArgument) as caught:
                parse(etag)
            assert reasons(caught.value) == {("etag", "BAD_ETAG")}, etag
    assert registry_messages.close_command(rpb.CloseCaseRequest(name="x", etag='W/"3"')).expected_version == 3


@pytest.mark.parametrize("three", FOREIGN_THREES)
def test_a_division_code_in_other_digits_is_bad_division_code(three: str) -> None:
    courts = CourtCatalog.default()
    for code in (f"41012{three}", three * 6):
        with pytest.raises(InvalidArgument) as caught:
            create(courts, replace(FULL_COMMAND, entrusted_court="", property_division_code=code))
        assert {v.field: v.reason for v in caught.value.violations}["delegation.property_division_code"] == "BAD_DIVISION_CODE"


@pytest.mark.parametrize("digit", ["٣", "۳", "३", "৩", "①", "¹", "三", "〇"])
def test_a_case_number_with_other_digits_says_digits_are_0_to_9(digit: str) -> None:
    courts = CourtCatalog.default()
    for text in (f"（2023）粤0112执{digit}号", f"（202{digit}）粤0112执3号", f"（2023）粤011{digit}执3号"):
        violations = validate_case_number(text, courts)
        assert [(v.reason, "0–9" in v.description) for v in violations] == [("CASE_NUMBER_FORMAT", True)], violations


def test_a_case_number_in_full_width_digits_is_the_same_number() -> None:
    assert validate_case_number("（２０２３）粤０１１２执３号", CourtCatalog.default()) == []


@pytest.mark.parametrize("three", FOREIGN_THREES)
def test_a_filter_number_in_other_digits_is_bad_filter(three: str) -> None:
    for text in (f"year = {three}", f'year = "{three}"', f"year = 202{three}"):
        with pytest.raises(InvalidArgument) as caught:
            parse_filter(text, {"year": IntRange(1949, 9999)})
        assert reasons(caught.value) == {("filter", "BAD_FILTER")}, text


@pytest.mark.parametrize("three", FOREIGN_THREES)
def test_rogatory_deadline_takes_a_period_in_ascii_digits_only(three: str, capsys: pytest.CaptureFixture[str]) -> None:
    command = ["deadline", "--court", "gd0112", "--start", "2023-09-15", "--unit", "CALENDAR_DAY", "--period"]
    with pytest.raises(SystemExit) as leaving:
        rogatory_main([*command, three])
    assert leaving.value.code == 2
    assert "digits 0-9" in capsys.readouterr().err
    rogatory_main([*command, "3"])  # answered, no exit status
    assert "2023-09-18" in capsys.readouterr().out
