"""Input is validated, never turned into INTERNAL nor silently normalised (issue 15, points 10-11).

Every RPC is found from the protobuf descriptors (every `*_pb2` module under `rogatory`), so a
new List, Create or free-text field cannot be missed: List RPCs are those whose request has a
`page_token`, Create RPCs those named `Create*`, and every string field of every request is
tried with forbidden text. Calls go over real gRPC to the three service processes (SQLite and
PostgreSQL, `tests/e2e/conftest.py`).
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import pkgutil
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
import rogatory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from google.type import money_pb2
from rogatory.registry.v1 import registry_pb2 as pb

from services.plumbing.auth import dev_credentials
from services.tools.launcher import Stack
from tests.e2e.test_registry_e2e import create_request, details

COURT = "gd0112"
AS_COURT = dev_credentials("court", COURT)


def all_services() -> list[ServiceDescriptor]:
    found: list[ServiceDescriptor] = []
    for module in pkgutil.walk_packages(rogatory.__path__, "rogatory."):
        if module.name.endswith("_pb2"):
            found += importlib.import_module(module.name).DESCRIPTOR.services_by_name.values()
    return sorted(found, key=lambda s: s.full_name)


def all_methods() -> list[tuple[ServiceDescriptor, MethodDescriptor]]:
    return [(service, method) for service in all_services() for method in service.methods]


def _has(method: MethodDescriptor, field: str) -> bool:
    return field in method.input_type.fields_by_name


LIST_METHODS = [(s, m) for s, m in all_methods() if _has(m, "page_token")]
FILTER_METHODS = [(s, m) for s, m in all_methods() if _has(m, "filter")]
CREATE_METHODS = [(s, m) for s, m in all_methods() if m.name.startswith("Create")]


def params(pairs: list[tuple[ServiceDescriptor, MethodDescriptor]]) -> list[Any]:
    return [pytest.param(service, method, id=method.name) for service, method in pairs]


class Channels:
    """One channel per service process, opened on first use and closed by the fixture."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.open: dict[str, grpc.aio.Channel] = {}

    def to(self, service: ServiceDescriptor) -> grpc.aio.Channel:
        process = service.full_name.split(".")[1]  # rogatory.{registry|delegation|assistance}.v1
        if process not in self.open:
            self.open[process] = grpc.aio.insecure_channel(self.stack.address(process))
        return self.open[process]

    async def close(self) -> None:
        for channel in self.open.values():
            await channel.close()


@pytest.fixture
async def channels(stack: Stack) -> AsyncIterator[Channels]:
    opened = Channels(stack)
    yield opened
    await opened.close()


async def call(
    channels: Channels, service: ServiceDescriptor, method: MethodDescriptor, request: Message, metadata: Any
) -> Message:
    """Calls `method` over gRPC, built from the descriptors alone."""
    stub = channels.to(service).unary_unary(
        f"/{service.full_name}/{method.name}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=GetMessageClass(method.output_type).FromString,
    )
    return await stub(request, metadata=metadata, timeout=30)


def new_request(method: MethodDescriptor, **fields: Any) -> Message:
    """A request of `method` with `parent` set to the calling court's own name when it has one."""
    request = GetMessageClass(method.input_type)()
    if _has(method, "parent"):
        request.parent = f"courts/{COURT}"
    for name, value in fields.items():
        setattr(request, name, value)
    return request


async def refusal(
    channels: Channels, service: ServiceDescriptor, method: MethodDescriptor, request: Message
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(channels, service, method, request, AS_COURT)
    return caught.value


# --- point 10: page tokens and filters -------------------------------------------------------------


def _old_style_tokens(cursor: object, parent: str) -> Iterator[str]:
    """Tokens as the pre-fix code accepted them: unsigned base64 JSON bound by a guessable hash
    of the query, for each query shape it used (`{parent}|{filter}`, `seizures|…`, `overdue|…`,
    the bare filter of reference-data lists)."""
    for query in (f"{parent}|", f"seizures|{parent}|", f"overdue|{parent}", ""):
        fingerprint = hashlib.sha256(query.encode()).hexdigest()[:16]
        raw = json.dumps({"q": fingerprint, "c": cursor}, separators=(",", ":")).encode()
        yield base64.urlsafe_b64encode(raw).decode().rstrip("=")


FORGED_CURSORS = [10**30, 2**63, True, -1, "x", [None, None], 1.5]


def test_i15_p10_the_list_rpcs_are_found() -> None:
    names = {m.name for _, m in LIST_METHODS}
    assert {"ListCases", "ListDelegations", "ListCourts", "ListAgencies", "ListOverdueDelegations"} <= names
    assert {m.name for _, m in CREATE_METHODS} >= {"CreateCase", "CreateDelegation", "CreateAssistanceNotice"}


@pytest.mark.parametrize(("service", "method"), params(LIST_METHODS))
async def test_i15_p10_forged_page_tokens_are_invalid_argument(
    channels: Channels, service: ServiceDescriptor, method: MethodDescriptor
) -> None:
    forged = [token for cursor in FORGED_CURSORS for token in _old_style_tokens(cursor, f"courts/{COURT}")]
    forged += ["true", "!!!", "a.b", "x" * 5000, base64.urlsafe_b64encode(b"\xff\xfe").decode()]
    for token in forged:
        error = await refusal(channels, service, method, new_request(method, page_token=token))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (token, error.code(), error.details())
        info, bad = details(error)
        assert info.reason == "BAD_PAGE_TOKEN", token
        assert [v.field for v in bad.field_violations] == ["page_token"]


async def test_i15_p10_genuine_page_tokens_work_only_for_their_own_list_query_and_caller(channels: Channels) -> None:
    (service,) = [s for s in all_services() if s.name == "RegistryService"]
    list_courts, list_agencies = service.methods_by_name["ListCourts"], service.methods_by_name["ListAgencies"]
    first = await call(channels, service, list_courts, pb.ListCourtsRequest(page_size=2), AS_COURT)
    token = first.next_page_token  # type: ignore[attr-defined]
    assert token
    second = await call(channels, service, list_courts, pb.ListCourtsRequest(page_size=5, page_token=token), AS_COURT)
    assert second.courts and second.courts[0].name not in {c.name for c in first.courts}  # type: ignore[attr-defined]
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    misuses = [
        (list_courts, pb.ListCourtsRequest(page_token=tampered), AS_COURT),
        (list_courts, pb.ListCourtsRequest(page_token=token, filter='province = "浙江"'), AS_COURT),
        (list_courts, pb.ListCourtsRequest(page_token=token), dev_credentials("court", "zj0326")),
        (list_agencies, pb.ListAgenciesRequest(page_token=token), AS_COURT),
    ]
    for method, request, caller in misuses:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(channels, service, method, request, caller)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (method.name, request)
        assert details(caught.value)[0].reason == "BAD_PAGE_TOKEN"


async def test_i15_p10_page_tokens_survive_a_restart_through_the_data_directory_key(stack: Stack) -> None:
    (service,) = [s for s in all_services() if s.name == "RegistryService"]
    list_courts = service.methods_by_name["ListCourts"]
    before = Channels(stack)
    first = await call(before, service, list_courts, pb.ListCourtsRequest(page_size=3), AS_COURT)
    await before.close()
    registry = stack.processes["registry"]
    assert registry.stop() == 0
    registry.start()
    after = Channels(stack)
    try:
        request = pb.ListCourtsRequest(page_size=3, page_token=first.next_page_token)  # type: ignore[attr-defined]
        second = await call(after, service, list_courts, request, AS_COURT)
    finally:
        await after.close()
    assert second.courts and not {c.name for c in second.courts} & {c.name for c in first.courts}  # type: ignore[attr-defined]
    if "ROGATORY_PAGE_TOKEN_KEY" not in stack.base_env:
        assert (stack.data_dir / "page-token.key").is_file()


@pytest.mark.parametrize(("service", "method"), params(FILTER_METHODS))
async def test_i15_p10_out_of_range_numbers_in_filters_are_invalid_argument(
    channels: Channels, service: ServiceDescriptor, method: MethodDescriptor
) -> None:
    for number in ("99999999999999999999", "-99999999999999999999", "9223372036854775808", "99999", "٢٠٢٣"):
        error = await refusal(channels, service, method, new_request(method, filter=f"year = {number}"))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (number, error.code(), error.details())
        info, bad = details(error)
        assert info.reason == "BAD_FILTER" and [v.field for v in bad.field_violations] == ["filter"], number


async def test_i15_p10_a_year_in_range_still_filters_cases(channels: Channels) -> None:
    (service,) = [s for s in all_services() if s.name == "RegistryService"]
    method = service.methods_by_name["ListCases"]
    answer = await call(channels, service, method, new_request(method, filter="year = 2023"), AS_COURT)
    assert all(c.case_number_parts.year == 2023 for c in answer.cases)  # type: ignore[attr-defined]


# --- point 11: values are validated, not normalised -------------------------------------------------


async def _create_case_refusal(channels: Channels, request: pb.CreateCaseRequest) -> tuple[Any, Any]:
    (service,) = [s for s in all_services() if s.name == "RegistryService"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(channels, service, service.methods_by_name["CreateCase"], request, dev_credentials("court", "zj0326"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    return details(caught.value)


async def test_i15_p11_a_sequence_with_a_leading_zero_is_refused_with_its_own_reason(channels: Channels) -> None:
    request = create_request(1)
    request.case.case_number = "（2023）浙0326执01号"
    info, bad = await _create_case_refusal(channels, request)
    assert [(v.field, v.reason) for v in bad.field_violations] == [("case.case_number", "SEQUENCE_LEADING_ZERO")]
    assert info.reason == "SEQUENCE_LEADING_ZERO"  # ErrorInfo carries the specific reason too


@pytest.mark.parametrize(
    ("units", "nanos", "reason"),
    [(1, 2_000_000_000, "MONEY_NANOS_RANGE"), (1, -500_000_000, "MONEY_SIGN"), (-1, 500_000_000, "MONEY_SIGN")],
)
async def test_i15_p11_money_with_nanos_out_of_range_or_of_the_other_sign_is_refused(
    channels: Channels, units: int, nanos: int, reason: str
) -> None:
    request = create_request(2)
    request.case.amount_owed.CopyFrom(money_pb2.Money(currency_code="CNY", units=units, nanos=nanos))
    info, bad = await _create_case_refusal(channels, request)
    assert ("case.amount_owed", reason) in {(v.field, v.reason) for v in bad.field_violations}
    assert info.reason == reason


@pytest.mark.parametrize(
    ("name", "reason"),
    [("\u202e三张", "BAD_CHARACTER"), ("张\x00三", "BAD_CHARACTER"), ("\u200b\u200b", "INVISIBLE_TEXT")],
)
async def test_i15_p11_party_names_follow_the_text_rule(channels: Channels, name: str, reason: str) -> None:
    request = create_request(3)
    request.case.parties[1].display_name = name
    info, bad = await _create_case_refusal(channels, request)
    assert [(v.field, v.reason) for v in bad.field_violations] == [("case.parties[1].display_name", reason)]
    assert info.reason == reason


def _string_paths(descriptor: Descriptor, depth: int = 0) -> Iterator[tuple[str, tuple[FieldDescriptor, ...]]]:
    """(violation path, field chain) of every string field reachable from `descriptor`."""
    for field in descriptor.fields:
        index = "[0]" if field.is_repeated else ""
        if field.type == FieldDescriptor.TYPE_STRING:
            yield f"{field.name}{index}", (field,)
        elif field.type == FieldDescriptor.TYPE_MESSAGE and depth < 4 and not field.message_type.GetOptions().map_entry:
            for path, chain in _string_paths(field.message_type, depth + 1):
                yield f"{field.name}{index}.{path}", (field, *chain)


def _with_text(method: MethodDescriptor, chain: tuple[FieldDescriptor, ...], text: str) -> Message:
    request = GetMessageClass(method.input_type)()
    message = request
    for field in chain[:-1]:
        message = getattr(message, field.name).add() if field.is_repeated else getattr(message, field.name)
    last = chain[-1]
    if last.is_repeated:
        getattr(message, last.name).append(text)
    else:
        setattr(message, last.name, text)
    return request


BAD_TEXT = [("\u202e", "BAD_CHARACTER"), ("a\x00b", "BAD_CHARACTER"), ("\u200b\ufeff", "INVISIBLE_TEXT")]


@pytest.mark.parametrize(("service", "method"), params([p for p in all_methods() if any(_string_paths(p[1].input_type))]))
async def test_i15_p11_every_string_field_of_every_request_follows_the_text_rule(
    channels: Channels, service: ServiceDescriptor, method: MethodDescriptor
) -> None:
    for path, chain in _string_paths(method.input_type):
        for text, reason in BAD_TEXT:
            error = await refusal(channels, service, method, _with_text(method, chain, text))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (path, text, error.code(), error.details())
            info, bad = details(error)
            assert (path, reason) in {(v.field, v.reason) for v in bad.field_violations}, (path, text, bad)
            assert info.reason == reason


@pytest.mark.parametrize(("service", "method"), params(CREATE_METHODS))
async def test_i15_p11_a_missing_or_malformed_parent_is_invalid_argument(
    channels: Channels, service: ServiceDescriptor, method: MethodDescriptor
) -> None:
    for parent in ("", "courts/-", "courts", "cases/gd0112", f"courts/{COURT}/x"):
        request = new_request(method, parent=parent, request_id=str(uuid.uuid4()))
        error = await refusal(channels, service, method, request)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (parent, error.code(), error.details())
        info, bad = details(error)
        assert [v.field for v in bad.field_violations] == ["parent"], parent
        assert info.reason == bad.field_violations[0].reason == "RESOURCE_NAME"


async def test_i15_p11_create_case_with_nothing_set_names_the_missing_parent(channels: Channels) -> None:
    info, bad = await _create_case_refusal(channels, pb.CreateCaseRequest())
    assert [v.field for v in bad.field_violations] == ["parent"]
    assert "cannot register cases for" not in (bad.field_violations[0].description + info.reason)


async def test_i15_p11_error_info_reason_is_the_first_field_violation_reason(channels: Channels) -> None:
    request = create_request(0)
    request.case.case_number = "(2023)蒙01执0号"
    request.case.parties[1].id_number = "123"
    info, bad = await _create_case_refusal(channels, request)
    assert len(bad.field_violations) > 1
    assert info.reason == bad.field_violations[0].reason == "MONGOLIA_CODE"


def _paths_of(descriptor: Descriptor, kinds: set[str], depth: int = 0) -> Iterator[tuple[FieldDescriptor, ...]]:
    """Field chains from `descriptor` to every message field of one of the `kinds` (full names)."""
    for field in descriptor.fields:
        if field.type != FieldDescriptor.TYPE_MESSAGE or field.message_type.GetOptions().map_entry:
            continue
        if field.message_type.full_name in kinds:
            yield (field,)
        elif depth < 4:
            for chain in _paths_of(field.message_type, kinds, depth + 1):
                yield (field, *chain)


def _with_seconds(method: MethodDescriptor, chain: tuple[FieldDescriptor, ...], seconds: int) -> Message:
    request = new_request(method)
    message = request
    for field in chain:
        message = getattr(message, field.name).add() if field.is_repeated else getattr(message, field.name)
    message.seconds = seconds  # type: ignore[attr-defined]
    return request


TIME_KINDS = {"google.protobuf.Timestamp", "google.protobuf.Duration"}
TIME_METHODS = [(s, m) for s, m in all_methods() if any(_paths_of(m.input_type, TIME_KINDS))]
CALLERS = [AS_COURT, dev_credentials("agency", "tp-440100"), dev_credentials("agency", "bank-icbc")]


@pytest.mark.parametrize(("service", "method"), params(TIME_METHODS))
async def test_i15_p10_out_of_range_times_and_durations_are_invalid_argument(
    channels: Channels, service: ServiceDescriptor, method: MethodDescriptor
) -> None:
    for chain in _paths_of(method.input_type, TIME_KINDS):
        for seconds in (10**15, -(10**15), 2**63 - 1, 253_402_300_799, -62_135_596_800, 315_576_000_000):  # and the bounds
            for caller in CALLERS:
                try:
                    await call(channels, service, method, _with_seconds(method, chain, seconds), caller)
                except grpc.aio.AioRpcError as error:
                    path = ".".join(f.name for f in chain)
                    assert error.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (
                        path,
                        seconds,
                        error.details(),
                    )
