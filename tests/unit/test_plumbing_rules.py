"""Pure rules of the shared plumbing: filters, page tokens, resource names, error mapping."""

from __future__ import annotations

import pytest
from google.rpc import code_pb2, error_details_pb2

from registry.errors import AlreadyExists, FieldViolation, InvalidArgument, NotFound
from services.plumbing.errors import status_for
from services.plumbing.events import subject
from services.plumbing.filtering import parse_filter
from services.plumbing.ids import new_id
from services.plumbing.names import parse_name
from services.plumbing.pagination import MAX_PAGE_SIZE, decode_token, encode_token, page_size

FIELDS = {"year": int, "type_code": str, "party": str, "level": str}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("year = 2023", {"year": 2023}),
        ('year=2023 AND type_code = "执"', {"year": 2023, "type_code": "执"}),
        ('party = "张\\"三"', {"party": '张"三'}),
        ("level = BASIC", {"level": "BASIC"}),
        ('party : "张"', {"party": "张"}),
    ],
)
def test_filter_accepts(text: str, expected: dict) -> None:  # type: ignore[type-arg]
    assert parse_filter(text, FIELDS) == expected


@pytest.mark.parametrize(
    "text", ["nope = 1", 'year = "x"', "year = 1 OR year = 2", "year = 1 AND year = 2", "year >= 3", "x" * 1001]
)
def test_filter_rejects_with_field_violation(text: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_filter(text, FIELDS)
    assert caught.value.violations[0].field == "filter"


def test_page_token_round_trip_and_binding() -> None:
    token = encode_token("courts/zj0326|year = 2023", 41)
    assert decode_token(token, "courts/zj0326|year = 2023") == 41
    assert decode_token("", "anything") is None
    with pytest.raises(InvalidArgument):
        decode_token(token, "courts/zj0326|year = 2024")  # a token from another query
    with pytest.raises(InvalidArgument):
        decode_token("garbage!!", "q")


def test_page_size_defaults_and_caps() -> None:
    assert page_size(0) == 50
    assert page_size(5000) == MAX_PAGE_SIZE
    with pytest.raises(InvalidArgument):
        page_size(-1)


def test_resource_names() -> None:
    assert parse_name("courts/zj0326/cases/2023-enf-1", "courts/{court}/cases/{case}") == {
        "court": "zj0326",
        "case": "2023-enf-1",
    }
    for bad in ("courts/zj0326/x/1", "court/zj0326", "courts/", "courts/a b", "courts/zj0326/cases"):
        with pytest.raises(InvalidArgument):
            parse_name(bad, "courts/{court}/cases/{case}")


def test_subjects_refuse_unsafe_tokens() -> None:
    assert subject("case", "zj0326", "registered") == "rogatory.v1.case.zj0326.registered"
    for bad in ("a.b", "*", ">", "", "a b"):
        with pytest.raises(ValueError):
            subject("case", bad, "registered")


def test_ids_are_time_ordered_uuid7() -> None:
    ids = [new_id() for _ in range(200)]
    assert all(len(i) == 36 and i[14] == "7" for i in ids)
    assert len(set(ids)) == 200
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)  # millisecond prefix never goes back


def _details(status):  # type: ignore[no-untyped-def]
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    found = {}
    for detail in status.details:
        if detail.Is(info.DESCRIPTOR):
            detail.Unpack(info)
            found["info"] = info
        elif detail.Is(bad.DESCRIPTOR):
            detail.Unpack(bad)
            found["bad"] = bad
    return found


def test_invalid_argument_carries_error_info_and_field_violations() -> None:
    error = InvalidArgument.of([FieldViolation("case.case_number", "bad", "CASE_NUMBER_FORMAT")])
    status = status_for(error)
    details = _details(status)
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert details["info"].reason == "INVALID_ARGUMENT" and details["info"].domain == "rogatory.gov.cn"
    assert [(v.field, v.reason) for v in details["bad"].field_violations] == [("case.case_number", "CASE_NUMBER_FORMAT")]


@pytest.mark.parametrize(
    ("error", "code"),
    [(NotFound("case", "courts/x/cases/y"), code_pb2.NOT_FOUND), (AlreadyExists("dup"), code_pb2.ALREADY_EXISTS)],
)
def test_domain_errors_map_to_codes(error, code) -> None:  # type: ignore[no-untyped-def]
    status = status_for(error)
    assert status.code == code
    assert _details(status)["info"].reason == error.reason
