"""Registering a case: validation of number, court, parties, amount; ID numbers masked."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from registry.cases import CaseState, CloseCase, PartyInput, RegisterCase, close_case, mask_id_number, register_case
from registry.courts import CourtCatalog
from registry.errors import InvalidArgument

NOW = datetime(2023, 8, 31, 9, 0, tzinfo=UTC)
COURTS = CourtCatalog.default()
APPLICANT = PartyInput("APPLICANT", "ORGANIZATION", "温州银行股份有限公司", "91110000600037341L")
RESPONDENT = PartyInput("RESPONDENT", "PERSON", "张三", "11010519491231002X")


def command(**overrides) -> RegisterCase:  # type: ignore[no-untyped-def]
    values = dict(
        parent="courts/zj0326",
        case_number="（2023）浙0326执1234号",
        parties=(APPLICANT, RESPONDENT),
        amount_owed=Decimal("5416.69"),
    )
    values.update(overrides)
    return RegisterCase(**values)  # type: ignore[arg-type]


def reasons(cmd: RegisterCase) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        register_case(cmd, COURTS, NOW)
    return {v.field: v.reason for v in caught.value.violations}


def test_registers_a_valid_case() -> None:
    case, events = register_case(command(), COURTS, NOW)
    assert case.name == "courts/zj0326/cases/2023-enf-1234"
    assert case.number.text == "（2023）浙0326执1234号"
    assert case.amount_owed_fen == 541669
    assert [p.display_name for p in case.respondents] == ["张三"]
    assert len(events) == 1 and events[0].case is case


def test_ascii_brackets_are_canonicalised() -> None:
    case, _ = register_case(command(case_number="(2023)浙0326执1234号"), COURTS, NOW)
    assert case.number.text == "（2023）浙0326执1234号"


def test_case_number_must_name_the_parent_court() -> None:
    assert reasons(command(parent="courts/zj03")) == {"parent": "COURT_MISMATCH"}


def test_unknown_parent_court() -> None:
    assert reasons(command(parent="courts/xx9999"))["parent"] == "UNKNOWN_COURT"


def test_non_enforcement_case_is_refused() -> None:
    assert reasons(command(parent="courts/zj01", case_number="(2020)浙01知民初277号")) == {
        "case.case_number": "NOT_ENFORCEMENT_CASE"
    }


def test_every_problem_is_reported_at_once() -> None:
    found = reasons(
        command(
            case_number="(2023)蒙01执0号",
            parties=(PartyInput("RESPONDENT", "PERSON", "", "123"),),
            amount_owed=Decimal("-1"),
        )
    )
    assert found["case.case_number"] in {"MONGOLIA_CODE", "SEQUENCE_NOT_POSITIVE"}
    assert found["case.parties[0].display_name"] == "REQUIRED"
    assert found["case.parties[0].id_number"] == "BAD_ID_NUMBER"
    assert found["case.amount_owed"] == "NEGATIVE_AMOUNT"


@pytest.mark.parametrize(
    ("parties", "field", "reason"),
    [
        ((APPLICANT,), "case.parties", "MISSING_PARTY"),
        ((RESPONDENT,), "case.parties", "MISSING_PARTY"),
        ((PartyInput("JUDGE", "PERSON", "x"), RESPONDENT), "case.parties[0].role", "BAD_VALUE"),
        ((PartyInput("APPLICANT", "", "x"), RESPONDENT), "case.parties[0].kind", "REQUIRED"),
        (
            (APPLICANT, PartyInput("RESPONDENT", "ORGANIZATION", "某公司", "91110000600037341X")),
            "case.parties[1].id_number",
            "BAD_ID_NUMBER",
        ),
    ],
)
def test_party_rules(parties, field: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    assert reasons(command(parties=parties))[field] == reason


@pytest.mark.parametrize(("amount", "reason"), [(Decimal("0.001"), "PRECISION"), (Decimal("1e20"), "TOO_LARGE")])
def test_amount_rules(amount: Decimal, reason: str) -> None:
    assert reasons(command(amount_owed=amount))["case.amount_owed"] == reason


def test_currency_must_be_cny() -> None:
    assert reasons(command(currency="USD"))["case.amount_owed.currency_code"] == "CURRENCY"


def test_id_numbers_are_masked_and_never_printed() -> None:
    assert mask_id_number("11010519491231002X") == "110105********002X"
    assert mask_id_number("123") == "***"
    case, _ = register_case(command(), COURTS, NOW)
    assert "11010519491231002X" not in repr(case)
    assert case.respondents[0].masked_id_number == "110105********002X"


@pytest.mark.parametrize(
    ("name", "reason"), [("\u202e三张", "BAD_CHARACTER"), ("张\x00三", "BAD_CHARACTER"), ("\u200b\u200b", "INVISIBLE_TEXT")]
)
def test_i15_p11_party_names_description_and_close_reason_follow_the_text_rule(name: str, reason: str) -> None:
    respondent = PartyInput("RESPONDENT", "PERSON", name, "11010519491231002X")
    assert reasons(command(parties=(APPLICANT, respondent))) == {"case.parties[1].display_name": reason}
    assert reasons(command(description=name)) == {"case.description": reason}
    with pytest.raises(InvalidArgument) as caught:
        close_case("courts/zj0326/cases/2023-enf-1", "zj0326", CaseState.OPEN, 1, "zj0326", CloseCase("WITHDRAWN", name), NOW)
    assert [(v.field, v.reason) for v in caught.value.violations] == [("reason", reason)]
