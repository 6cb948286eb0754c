"""A court system drives the registry over gRPC and reads its events from JetStream."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.rpc import error_details_pb2
from google.type import money_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.aio.client import Client as NATS
from rogatory.events.v1 import events_pb2
from rogatory.registry.v1 import registry_pb2 as pb
from rogatory.registry.v1 import registry_pb2_grpc

from rogatory_client import AlreadyExists, AsyncClient, InvalidArgument, RogatoryError, error_from_rpc
from services.plumbing.auth import dev_credentials
from services.plumbing.subscriber import read_events
from services.tools.launcher import Stack
from tests.e2e.conftest import buf_binary

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def create_request(
    number: int, court: str = "zj0326", code: str = "浙0326", request_id: str | None = None
) -> pb.CreateCaseRequest:
    return pb.CreateCaseRequest(
        parent=f"courts/{court}",
        request_id=request_id or str(uuid.uuid4()),
        case=pb.Case(
            case_number=f"（2023）{code}执{number}号",
            parties=[
                pb.Party(role=pb.Party.APPLICANT, kind=pb.Party.ORGANIZATION, display_name="温州银行股份有限公司"),
                pb.Party(role=pb.Party.RESPONDENT, kind=pb.Party.PERSON, display_name="张三", id_number="11010519491231002X"),
            ],
            amount_owed=money_pb2.Money(currency_code="CNY", units=5416, nanos=690_000_000),
        ),
    )


def as_owner(request: pb.CreateCaseRequest) -> tuple[tuple[str, str], ...]:
    """The credential of the court a CreateCase request registers the case for."""
    return dev_credentials("court", request.parent.split("/")[1])


ADMIN = dev_credentials("admin", "tests")


def details(error: grpc.aio.AioRpcError) -> tuple[error_details_pb2.ErrorInfo, error_details_pb2.BadRequest]:
    """The ErrorInfo and BadRequest of a failed call, read as a court system reads them (rogatory_client)."""
    typed = error_from_rpc(error)
    status = typed.status
    assert status.details, "no google.rpc.Status in the trailers"
    assert (status.code, status.message) == (error.code().value[0], error.details()), "the Status and the call disagree"
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    for detail in typed.status_details:
        if isinstance(detail, error_details_pb2.ErrorInfo):
            info = detail
        elif isinstance(detail, error_details_pb2.BadRequest):
            bad = detail
    return info, bad


async def test_health_is_serving_for_every_service(stack: Stack) -> None:
    for service, name in (
        ("registry", "rogatory.registry.v1.RegistryService"),
        ("delegation", "rogatory.delegation.v1.DelegationService"),
        ("assistance", "rogatory.assistance.v1.AssistanceService"),
    ):
        async with grpc.aio.insecure_channel(stack.address(service)) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for checked in ("", name):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=checked))
                assert reply.status == health_pb2.HealthCheckResponse.SERVING, (service, checked)


def buf_curl(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [buf_binary(), "curl", "--protocol", "grpc", "--http2-prior-knowledge", *args]
    return subprocess.run(command[:-1] + [command[-1].replace("ADDR", address)], capture_output=True, text=True, timeout=60)


def test_reflection_lets_buf_curl_list_and_call(stack: Stack) -> None:
    listed = buf_curl(stack.address("registry"), "--list-methods", "http://ADDR")
    assert listed.returncode == 0, listed.stderr
    assert "rogatory.registry.v1.RegistryService/CreateCase" in listed.stdout.split()
    called = buf_curl(
        stack.address("registry"),
        "-H",
        "authorization: Bearer dev:court:zj0326",
        "-d",
        '{"name": "courts/zj0326"}',
        "http://ADDR/rogatory.registry.v1.RegistryService/ListCourtSuperiors",
    )
    assert called.returncode == 0, called.stderr
    assert [c["name"] for c in json.loads(called.stdout)["courts"]] == ["courts/zj03", "courts/zj", "courts/spc"]


async def test_created_case_is_evented_to_its_court_only(
    rogatory: AsyncClient, subscriber: NATS, sequence_numbers: Iterator[int]
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    registry = rogatory.registry
    traceparent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    request = create_request(next(sequence_numbers))
    case = await registry.CreateCase(request, metadata=(("traceparent", traceparent), *as_owner(request)))
    assert case.parties[1].id_number == "110105********002X"

    js = subscriber.jetstream()
    own = await read_events(js, "ROGATORY", "rogatory.v1.case.zj0326.>", since=since, until_count=1)
    event = next(e for e in own if e.parse(events_pb2.CaseRegistered).case.name == case.name)
    assert event.event_type == "rogatory.case.registered.v1"
    assert event.headers["Nats-Msg-Id"] == event.event_id
    assert event.source == "rogatory/registry"
    assert event.headers["traceparent"].split("-")[1] == TRACE_ID  # the caller's trace goes on
    assert b"11010519491231002X" not in event.data
    other_court = await read_events(js, "ROGATORY", "rogatory.v1.case.gd0112.>", since=since, timeout=1.0)
    assert all(e.parse(events_pb2.CaseRegistered).case.name != case.name for e in other_court)


async def test_retry_with_request_id_returns_the_same_case(rogatory: AsyncClient, sequence_numbers: Iterator[int]) -> None:
    registry = rogatory.registry
    request = create_request(next(sequence_numbers))
    first = await registry.CreateCase(request, metadata=as_owner(request))
    second = await registry.CreateCase(request, metadata=as_owner(request))
    assert second == first
    request.request_id = str(uuid.uuid4())
    with pytest.raises(AlreadyExists) as caught:
        await registry.CreateCase(request, metadata=as_owner(request))
    assert caught.value.reason == "CASE_ALREADY_REGISTERED"


async def test_bad_input_is_invalid_argument_with_field_violations(rogatory: AsyncClient) -> None:
    registry = rogatory.registry
    request = create_request(0)
    request.case.case_number = "(2023)蒙01执0号"
    request.case.parties[1].id_number = "123"
    with pytest.raises(InvalidArgument) as caught:
        await registry.CreateCase(request, metadata=as_owner(request))
    bad = caught.value
    assert bad.reason == "MONGOLIA_CODE" and bad.domain == "rogatory.gov.cn"  # the first violation's
    reasons = {(v.field, v.reason) for v in bad.field_violations}
    assert ("case.case_number", "MONGOLIA_CODE") in reasons
    assert ("case.parties[1].id_number", "BAD_ID_NUMBER") in reasons
    assert "Traceback" not in bad.message


@pytest.mark.parametrize(
    ("method", "request_message", "code"),
    [
        ("GetCase", pb.GetCaseRequest(name="courts/zj0326/cases/2023-enf-999999"), grpc.StatusCode.NOT_FOUND),
        ("GetCase", pb.GetCaseRequest(name="cases/1"), grpc.StatusCode.INVALID_ARGUMENT),
        ("GetCourt", pb.GetCourtRequest(name="courts/nowhere"), grpc.StatusCode.NOT_FOUND),
        ("GetAgency", pb.GetAgencyRequest(name="agencies/nobody"), grpc.StatusCode.NOT_FOUND),
        ("ListCases", pb.ListCasesRequest(parent="courts/zj0326", filter="colour = 1"), grpc.StatusCode.INVALID_ARGUMENT),
        ("ListCases", pb.ListCasesRequest(parent="courts/zj0326", page_token="forged"), grpc.StatusCode.INVALID_ARGUMENT),
        ("ListCourts", pb.ListCourtsRequest(page_size=-1), grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_errors_have_specific_codes_and_error_info(rogatory: AsyncClient, method: str, request_message, code) -> None:  # type: ignore[no-untyped-def]
    registry = rogatory.registry
    with pytest.raises(RogatoryError) as caught:
        await getattr(registry, method)(request_message, metadata=ADMIN)
    assert caught.value.code() == code
    assert caught.value.domain == "rogatory.gov.cn" and caught.value.reason


async def test_list_cases_pages_with_tokens(rogatory: AsyncClient, sequence_numbers: Iterator[int]) -> None:
    registry = rogatory.registry
    requests = [create_request(next(sequence_numbers), "gd0305", "粤0305") for _ in range(5)]
    created = [await registry.CreateCase(request, metadata=as_owner(request)) for request in requests]
    seen, token = [], ""
    while True:
        page = await registry.ListCases(
            pb.ListCasesRequest(parent="courts/gd0305", page_size=2, page_token=token, filter="year = 2023"),
            metadata=dev_credentials("court", "gd0305"),
        )
        seen += [c.name for c in page.cases]
        token = page.next_page_token
        if not token:
            break
    assert seen == [c.name for c in created]


async def test_reference_data_queries(rogatory: AsyncClient) -> None:
    registry = rogatory.registry
    any_agency = dev_credentials("agency", "tp-330300")  # reference data is for every authenticated party
    highs = await registry.ListCourts(pb.ListCourtsRequest(filter="level = HIGH", page_size=1000), metadata=any_agency)
    assert highs.total_size >= 33 and {"courts/zj", "courts/nm", "courts/gd"} <= {c.name for c in highs.courts}
    police_filter = 'kind = TRAFFIC_POLICE AND division_code = "330300"'
    police = await registry.ListAgencies(pb.ListAgenciesRequest(filter=police_filter), metadata=any_agency)
    assert [a.name for a in police.agencies] == ["agencies/tp-330300"]
    parsed = await registry.ParseCaseNumber(pb.ParseCaseNumberRequest(case_number="(2016)最高法执监408号"), metadata=any_agency)
    assert parsed.valid and parsed.parts.court == "courts/spc" and parsed.parts.type_code == "执监"
    refused = await registry.ParseCaseNumber(pb.ParseCaseNumberRequest(case_number="(2023)浙0326执行1234号"), metadata=any_agency)
    assert not refused.valid and refused.violations


async def code_of(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_who_may_register_and_read_a_courts_cases(stack: Stack, sequence_numbers: Iterator[int]) -> None:
    # Callers without a credential too: a bare channel, not a court system's client (which always sends one).
    async with grpc.aio.insecure_channel(stack.address("registry")) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        owner, superior, other = (dev_credentials("court", c) for c in ("zj0326", "zj03", "gd0112"))
        agency = dev_credentials("agency", "tp-330300")
        request = create_request(next(sequence_numbers))
        for caller, code in ((other, "PERMISSION_DENIED"), (superior, "PERMISSION_DENIED"), (ADMIN, "PERMISSION_DENIED"),
                             (agency, "PERMISSION_DENIED"), ((), "UNAUTHENTICATED")):  # fmt: skip
            assert (await code_of(registry.CreateCase(request, metadata=caller))).name == code
        case = await registry.CreateCase(request, metadata=owner)

        get = pb.GetCaseRequest(name=case.name)
        expected = {
            "owner": "OK",
            "superior": "OK",
            "admin": "OK",
            "other": "NOT_FOUND",
            "agency": "NOT_FOUND",
            "none": "UNAUTHENTICATED",
        }
        callers = {"owner": owner, "superior": superior, "admin": ADMIN, "other": other, "agency": agency, "none": ()}
        assert {who: (await code_of(registry.GetCase(get, metadata=c))).name for who, c in callers.items()} == expected
        listing = pb.ListCasesRequest(parent="courts/zj0326")
        expected.update(other="PERMISSION_DENIED", agency="PERMISSION_DENIED")
        assert {who: (await code_of(registry.ListCases(listing, metadata=c))).name for who, c in callers.items()} == expected
        every_court = pb.ListCasesRequest(parent="courts/-")
        assert (await code_of(registry.ListCases(every_court, metadata=owner))).name == "PERMISSION_DENIED"
        assert (await code_of(registry.ListCases(every_court, metadata=ADMIN))).name == "OK"
        assert (await code_of(registry.GetCourt(pb.GetCourtRequest(name="courts/zj0326")))).name == "UNAUTHENTICATED"
