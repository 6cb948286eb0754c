"""The one text rule (registry/text.py) and its use on whole requests (issue 15 point 11)."""

from __future__ import annotations

import pytest
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.registry.v1 import registry_pb2 as rg

from delegation.details import Attachment
from registry.errors import InvalidArgument, Violations
from registry.text import BAD_CHARACTER, INVISIBLE_TEXT, check_text, text_problem
from services.plumbing.request_text import check_request_text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "张三",
        "温州银行股份有限公司",
        "O'Brien & Co., Ltd.",
        "第一行\n第二行\r\n\t缩进",
        "emoji 👨‍👩‍👧 with joiners",
        "Straße ＡＢＣ　全角",
        "a\u200bb",  # a zero-width space between visible characters is text
    ],
)
def test_i15_p11_ordinary_text_passes(text: str) -> None:
    assert text_problem(text) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("\u202e三张", BAD_CHARACTER),
        ("张\x00三", BAD_CHARACTER),
        ("bell\x07", BAD_CHARACTER),
        ("esc\x1b[31m", BAD_CHARACTER),
        ("del\x7f", BAD_CHARACTER),
        ("c1\x85", BAD_CHARACTER),
        ("\u2066isolate\u2069", BAD_CHARACTER),
        ("mark\u200f", BAD_CHARACTER),
        ("arabic mark\u061c", BAD_CHARACTER),
        ("\u200b", INVISIBLE_TEXT),
        ("\u200b\u200c\u200d", INVISIBLE_TEXT),
        (" \ufeff ", INVISIBLE_TEXT),
        ("\u3164", INVISIBLE_TEXT),  # Hangul filler: a letter that shows nothing
        ("\u2800\u2800", INVISIBLE_TEXT),  # Braille blank
        ("\u2060\u180e", INVISIBLE_TEXT),
    ],
)
def test_i15_p11_control_bidi_and_invisible_only_text_is_refused(text: str, reason: str) -> None:
    problem = text_problem(text)
    assert problem is not None and problem[0] == reason
    found = Violations()
    check_text(text, "note", found, max_length=100, required=False)
    assert [(v.field, v.reason) for v in found.items] == [("note", reason)]


def test_i15_p11_check_text_adds_presence_and_length() -> None:
    found = Violations()
    check_text("", "a", found, max_length=5)
    check_text("  ", "b", found, max_length=5)
    check_text("", "c", found, max_length=5, required=False)
    check_text("123456", "d", found, max_length=5)
    check_text("12345", "e", found, max_length=5)
    assert [(v.field, v.reason) for v in found.items] == [("a", "REQUIRED"), ("b", "REQUIRED"), ("d", "TOO_LONG")]


def test_i15_p11_attachment_names_follow_the_same_rule_plus_no_path_separators() -> None:
    def reasons(name: str) -> list[str]:
        found = Violations()
        Attachment("RULING", name, 10, "a" * 64).validate("d", found)
        return [v.reason for v in found.items]

    assert reasons("invoice\u202efdp.exe") == [BAD_CHARACTER]
    assert reasons("\u200b.pdf") == []  # something visible
    assert reasons("\u200b") == [INVISIBLE_TEXT]
    assert reasons("a/b.pdf") == ["BAD_FILE_NAME"]


def test_i15_p11_every_string_of_a_request_is_checked_with_its_path() -> None:
    request = rg.CreateCaseRequest(
        parent="courts/zj0326\x00",
        case=rg.Case(
            case_number="（2023）浙0326执1号",
            parties=[rg.Party(display_name="张三"), rg.Party(display_name="\u202e三张")],
            description="\u200b",
        ),
    )
    with pytest.raises(InvalidArgument) as caught:
        check_request_text(request)
    assert [(v.field, v.reason) for v in caught.value.violations] == [
        ("parent", BAD_CHARACTER),
        ("case.parties[1].display_name", BAD_CHARACTER),
        ("case.description", INVISIBLE_TEXT),
    ]
    assert caught.value.reason == BAD_CHARACTER  # the first violation's


def test_i15_p11_repeated_strings_are_checked_one_by_one() -> None:
    request = dg.ReturnDelegationForSupplementRequest(
        supplement_request=dg.SupplementRequest(missing_items=["户籍证明", "\x00"], note="请补充")
    )
    with pytest.raises(InvalidArgument) as caught:
        check_request_text(request)
    assert [(v.field, v.reason) for v in caught.value.violations] == [("supplement_request.missing_items[1]", BAD_CHARACTER)]
    check_request_text(dg.ReturnDelegationForSupplementRequest(supplement_request=dg.SupplementRequest(missing_items=["a"])))
