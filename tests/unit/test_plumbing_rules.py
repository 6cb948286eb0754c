"""Pure rules of the shared plumbing: filters, page tokens, resource names, error mapping, the one consumer class, the doors."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import code_pb2, error_details_pb2
from google.type import money_pb2

from registry.errors import AlreadyExists, FieldViolation, InvalidArgument, NotFound, Violations
from services.plumbing.consumer import Consumer
from services.plumbing.errors import status_for
from services.plumbing.events import subject
from services.plumbing.filtering import IntRange, parse_filter
from services.plumbing.ids import new_id
from services.plumbing.money import fen_of, money_from_fen, yuan_of
from services.plumbing.names import parse_name, parse_parent
from services.plumbing.pagination import MAX_PAGE_SIZE, page_size
from services.plumbing.times import datetime_of, timedelta_of

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
    assert details["info"].reason == "CASE_NUMBER_FORMAT" and details["info"].domain == "rogatory.gov.cn"
    assert [(v.field, v.reason) for v in details["bad"].field_violations] == [("case.case_number", "CASE_NUMBER_FORMAT")]


@pytest.mark.parametrize(
    ("error", "code"),
    [(NotFound("case", "courts/x/cases/y"), code_pb2.NOT_FOUND), (AlreadyExists("dup"), code_pb2.ALREADY_EXISTS)],
)
def test_domain_errors_map_to_codes(error, code) -> None:  # type: ignore[no-untyped-def]
    status = status_for(error)
    assert status.code == code
    assert _details(status)["info"].reason == error.reason


# --- issue 15 point 11: ErrorInfo.reason is the specific reason -------------------------------------


@pytest.mark.parametrize(
    ("violations", "given", "expected"),
    [
        ([FieldViolation("a", "x", "TOO_LONG")], None, "TOO_LONG"),
        (
            [FieldViolation("a", "x", ""), FieldViolation("b", "y", "BAD_CHARACTER"), FieldViolation("c", "z", "REQUIRED")],
            None,
            "BAD_CHARACTER",
        ),
        ([FieldViolation("a", "x", "")], None, "INVALID_ARGUMENT"),
        ([], None, "INVALID_ARGUMENT"),
        ([FieldViolation("a", "x", "TOO_LONG")], "REQUEST_ID_FORMAT", "REQUEST_ID_FORMAT"),
    ],
)
def test_i15_p11_error_info_reason_is_the_first_violation_reason_unless_one_is_given(violations, given, expected) -> None:  # type: ignore[no-untyped-def]
    error = InvalidArgument.of(violations, reason=given)
    assert error.reason == expected
    assert _details(status_for(error))["info"].reason == expected
    assert Violations(list(violations)).items == violations
    if violations:
        with pytest.raises(InvalidArgument) as raised:
            Violations(list(violations)).raise_if_any(given)
        assert raised.value.reason == expected


# --- issue 15 point 10: numbers in filters are range-checked ----------------------------------------

RANGED = {"year": IntRange(1949, 9999), "count": int, "code": str}


@pytest.mark.parametrize(
    "text",
    [
        "year = 99999999999999999999",
        "year = -99999999999999999999",
        "year = 1948",
        "year = 10000",
        "count = 9223372036854775808",
        "count = -9223372036854775809",
        "count = 123456789012345678901234567890",
        "year = ٢٠٢٣",  # Arabic-Indic digits: not a number here
        'year = "2023 "',
        'year = "1_999"',
    ],
)
def test_i15_p10_numbers_out_of_the_field_range_are_bad_filters(text: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_filter(text, RANGED)
    assert [(v.field, v.reason) for v in caught.value.violations] == [("filter", "BAD_FILTER")]
    assert caught.value.reason == "BAD_FILTER"


def test_i15_p10_numbers_in_range_and_text_values_are_kept_as_written() -> None:
    assert parse_filter("year = 1949 AND count = -9223372036854775808", RANGED) == {"year": 1949, "count": -(2**63)}
    assert parse_filter('year = "9999" AND count = 9223372036854775807', RANGED) == {"year": 9999, "count": 2**63 - 1}
    assert parse_filter("code = 007", RANGED) == {"code": "007"}  # not read as the number 7


# --- issue 15 point 11: one Money conversion ----------------------------------------------------------


@pytest.mark.parametrize(
    ("units", "nanos", "fen"),
    [(0, 0, 0), (1, 10_000_000, 101), (5416, 690_000_000, 541669), (-1, -500_000_000, -150), (0, -10_000_000, -1)],
)
def test_i15_p11_money_round_trips_through_whole_fen(units: int, nanos: int, fen: int) -> None:
    money = money_pb2.Money(currency_code="CNY", units=units, nanos=nanos)
    assert fen_of(money, "valuation") == fen
    assert yuan_of(money, "valuation") == Decimal(fen) / 100
    assert money_from_fen(fen) == money


@pytest.mark.parametrize(
    ("units", "nanos", "currency", "reason"),
    [
        (1, 2_000_000_000, "CNY", "MONEY_NANOS_RANGE"),
        (0, -1_000_000_000, "", "MONEY_NANOS_RANGE"),
        (1, -500_000_000, "CNY", "MONEY_SIGN"),
        (-1, 500_000_000, "CNY", "MONEY_SIGN"),
        (1, 5_000_000, "CNY", "PRECISION"),
        (2**63 - 1, 0, "CNY", "TOO_LARGE"),
        (1, 0, "USD", "CURRENCY"),
    ],
)
def test_i15_p11_money_is_refused_never_normalised(units: int, nanos: int, currency: str, reason: str) -> None:
    money = money_pb2.Money(currency_code=currency, units=units, nanos=nanos)
    with pytest.raises(InvalidArgument) as caught:
        fen_of(money, "valuation")
    assert caught.value.reason == reason
    if reason.startswith("MONEY_"):
        with pytest.raises(InvalidArgument):
            yuan_of(money, "case.amount_owed")


# --- issue 15 point 11: a Create method's parent --------------------------------------------------------


@pytest.mark.parametrize("parent", ["", "courts/-", "courts", "courts/zj0326/cases/x", "cases/zj0326", "courts/a b"])
def test_i15_p11_a_missing_or_malformed_parent_is_a_field_violation(parent: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_parent(parent)
    assert [(v.field, v.reason) for v in caught.value.violations] == [("parent", "RESOURCE_NAME")]
    assert parse_parent("courts/zj0326") == "zj0326"


# --- issue 15 point 10: times and durations are range-checked ------------------------------------------


@pytest.mark.parametrize(
    "stamp", [Timestamp(seconds=10**15), Timestamp(seconds=-(10**15)), Timestamp(seconds=253_402_300_800), Timestamp(nanos=-1)]
)
def test_i15_p10_timestamps_outside_the_type_range_are_invalid_argument(stamp: Timestamp) -> None:
    with pytest.raises(InvalidArgument) as caught:
        datetime_of(stamp, "sighting.observe_time")
    assert [(v.field, v.reason) for v in caught.value.violations] == [("sighting.observe_time", "TIME_OUT_OF_RANGE")]


def test_i15_p10_timestamps_in_range_are_utc_datetimes() -> None:
    assert datetime_of(Timestamp(seconds=253_402_300_799), "t") == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    "duration",
    [Duration(seconds=10**15), Duration(seconds=315_576_000_001), Duration(seconds=1, nanos=-1), Duration(nanos=1_000_000_000)],
)
def test_i15_p10_durations_outside_the_type_range_are_invalid_argument(duration: Duration) -> None:
    with pytest.raises(InvalidArgument) as caught:
        timedelta_of(duration, "property_query.response_window")
    assert caught.value.reason == "DURATION_OUT_OF_RANGE"
    assert timedelta_of(Duration(seconds=86_400, nanos=5_000), "d") == timedelta(days=1, microseconds=5)


def test_i16_p2_the_consumer_is_extended_by_its_hooks_not_by_subclassing() -> None:
    """One consumer class: a component that needs more passes a handler and ConsumerHooks;
    overriding the consumer's private methods (the audit's `_pull_loop` once) is refused."""
    with pytest.raises(TypeError, match="Consumer is not subclassed"):

        class PullingItsOwnWay(Consumer):  # type: ignore[misc]
            async def _pull(self) -> None: ...


ROOT = Path(__file__).resolve().parents[2]
#: The modules that reach the database without the doors: the database itself, the write and read
#: doors, the relay (the write door's other half: it reads outbox rows and marks them sent) and
#: the schema migrations.
DATABASE_OWNERS = {
    "services/plumbing/db.py",
    "services/plumbing/unit_of_work.py",
    "services/plumbing/relay.py",
    "services/plumbing/migrations.py",
}
_OWN_ACCESS = re.compile(r"\.run_transaction\(|\.transaction\(\)|\.run_read\(|\bdb\.read\(\)|\.engine\.(begin|connect)\(")


def test_i16_p1_only_the_doors_reach_the_database() -> None:
    """One write door, one read door: no service, consumer, scanner or tool opens a transaction or
    a connection of its own (every write is a unit of `Writer.run`, every read `Reader.run`)."""
    ways_in = ("await db.run_transaction(work)", "async with self.db.transaction() as conn:", "await db.run_read(read)")
    assert all(_OWN_ACCESS.search(line) for line in (*ways_in, "async with db.read() as conn:", "db.engine.begin()"))
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((ROOT / "services").rglob("*.py"))
        if path.relative_to(ROOT).as_posix() not in DATABASE_OWNERS
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _OWN_ACCESS.search(line)
    ]
    assert offenders == []
