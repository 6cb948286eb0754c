"""The Python client (rogatory_client) as a court system uses it, against the real stack on
SQLite and PostgreSQL: a create whose answer is lost is retried with the same request_id and
returns the one case it wrote; a bad case raises InvalidArgument with its reason and every
field violation; a matter delegated right after its case is registered waits out
CASE_NOT_REGISTERED by itself; another court's case is NotFound; the synchronous client
makes the same calls."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import grpc
import pytest
from google.type import money_pb2
from grpc import aio
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.registry.v1 import registry_pb2 as pb

from rogatory_client import AlreadyExists, AsyncClient, Client, Credentials, Endpoints, InvalidArgument, NotFound
from services.tools.demo import freeze_request
from services.tools.launcher import Stack

GD0112 = Credentials.dev_token("court:gd0112")


def endpoints(stack: Stack) -> Endpoints:
    return Endpoints(stack.address("registry"), stack.address("delegation"), stack.address("assistance"))


def case_request(sequence: int, request_id: str = "") -> pb.CreateCaseRequest:
    return pb.CreateCaseRequest(
        parent="courts/gd0112",
        request_id=request_id,
        case=pb.Case(
            case_number=f"（2023）粤0112执{sequence}号",
            parties=[
                pb.Party(role=pb.Party.APPLICANT, kind=pb.Party.ORGANIZATION, display_name="广州某科技有限公司"),
                pb.Party(
                    role=pb.Party.RESPONDENT,
                    kind=pb.Party.ORGANIZATION,
                    display_name="河南某建设工程有限公司",
                    id_number="91110000600037341L",
                ),
            ],
            amount_owed=money_pb2.Money(currency_code="CNY", units=7_000_000),
        ),
    )


class LoseTheFirstAnswer(aio.UnaryUnaryClientInterceptor):
    """The network between the client and the service: the first answer to `method` is lost after
    the service wrote it (the call fails UNAVAILABLE, as with a connection reset)."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.request_ids: list[str] = []

    async def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Awaitable[Any]], client_call_details: Any, request: Any
    ) -> Any:
        response = await (await continuation(client_call_details, request))
        if client_call_details.method.decode().endswith(self.method):
            self.request_ids.append(request.request_id)
            if len(self.request_ids) == 1:
                raise aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, aio.Metadata(), aio.Metadata(), "connection reset")
        return response


async def test_a_create_whose_answer_was_lost_is_retried_and_returns_the_case_it_wrote(
    stack: Stack, sequence_numbers: Iterator[int]
) -> None:
    network = LoseTheFirstAnswer("/CreateCase")
    sequence = next(sequence_numbers)
    async with AsyncClient(GD0112, endpoints(stack), interceptors=[network]) as rogatory:
        case = await rogatory.registry.CreateCase(case_request(sequence))
        listed = await rogatory.registry.ListCases(
            pb.ListCasesRequest(parent="courts/gd0112", filter="year = 2023", page_size=500)
        )
        # the same request_id with another body is refused: the client did send one, twice
        changed = case_request(sequence, network.request_ids[0])
        changed.case.description = "another body"
        with pytest.raises(AlreadyExists) as reused:
            await rogatory.registry.CreateCase(changed)
    assert len(network.request_ids) == 2 and network.request_ids[0] == network.request_ids[1] != ""
    assert case.case_number == f"（2023）粤0112执{sequence}号"
    assert [c.name for c in listed.cases if c.case_number == case.case_number] == [case.name]
    assert reused.value.reason == "REQUEST_ID_IN_USE"


async def test_a_bad_case_raises_invalid_argument_with_its_reason_and_field_violations(
    stack: Stack, sequence_numbers: Iterator[int]
) -> None:
    bad = case_request(next(sequence_numbers))
    bad.case.case_number = bad.case.case_number.replace("执", "执0")  # a sequence with a leading zero
    bad.case.parties[1].id_number = "91110000600037341X"  # a wrong check character
    async with AsyncClient(GD0112, endpoints(stack)) as rogatory:
        with pytest.raises(InvalidArgument) as invalid:
            await rogatory.registry.CreateCase(bad)
    assert (invalid.value.reason, invalid.value.domain) == ("SEQUENCE_LEADING_ZERO", "rogatory.gov.cn")
    assert [(v.field, v.reason) for v in invalid.value.field_violations] == [
        ("case.case_number", "SEQUENCE_LEADING_ZERO"),
        ("case.parties[1].id_number", "BAD_ID_NUMBER"),
    ]


async def test_a_matter_delegated_at_once_waits_for_its_case_and_others_cannot_see_it(
    stack: Stack, sequence_numbers: Iterator[int]
) -> None:
    async with (
        AsyncClient(GD0112, endpoints(stack)) as huangpu,
        AsyncClient(Credentials.dev_token("court:zj0326"), endpoints(stack)) as pingyang,
    ):
        case = await huangpu.registry.CreateCase(case_request(next(sequence_numbers)))
        # no wait for the case to reach the delegation service: CASE_NOT_REGISTERED is retried
        request = freeze_request(case.name)
        request.request_id = ""
        matter = await huangpu.delegation.CreateDelegation(request)
        with pytest.raises(NotFound) as hidden:
            await pingyang.registry.GetCase(pb.GetCaseRequest(name=case.name))
    assert matter.case == case.name and matter.state == dg.Delegation.SUBMITTED
    assert hidden.value.code() is grpc.StatusCode.NOT_FOUND and hidden.value.reason


async def test_the_synchronous_client(stack: Stack, sequence_numbers: Iterator[int]) -> None:
    sequence = next(sequence_numbers)

    def court_system() -> tuple[pb.Court, pb.Case, pb.Case]:
        with Client(GD0112, endpoints(stack)) as rogatory:
            court = rogatory.registry.GetCourt(pb.GetCourtRequest(name="courts/gd0112"))
            request = case_request(sequence, str(uuid.uuid4()))
            return court, rogatory.registry.CreateCase(request), rogatory.registry.CreateCase(request, timeout=10)

    court, case, again = await asyncio.to_thread(court_system)
    assert court.code == "粤0112"
    assert again == case
