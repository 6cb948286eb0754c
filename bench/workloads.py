"""What the load generator calls: raw echo, CreateCase and GetCase."""

from __future__ import annotations

import itertools
import os
import random
import uuid
from typing import Any

from google.type import money_pb2
from rogatory.registry.v1 import registry_pb2 as pb
from rogatory.registry.v1 import registry_pb2_grpc

from bench.echo_server import METHOD as ECHO_METHOD
from bench.load import Call, ChannelPool

COURT = "courts/zj0326"
CREDENTIAL = (("authorization", "Bearer dev:court:zj0326"),)  # the court whose cases these are
CASE_NUMBER = "（2023）浙0326执{n}号"
APPLICANT_USCC = "91330326MA2H4B1C05"  # valid unified social credit code (GB 32100 check digit)
RESPONDENT_RIC = "11010519491231002X"  # valid resident identity card number (GB 11643)


def create_case_request(n: int) -> pb.CreateCaseRequest:
    """A valid, realistic request; `n` makes the case number unique."""
    applicant = pb.Party(
        role=pb.Party.APPLICANT,
        kind=pb.Party.ORGANIZATION,
        display_name="平阳县农村商业银行股份有限公司",
        id_number=APPLICANT_USCC,
    )
    respondent = pb.Party(role=pb.Party.RESPONDENT, kind=pb.Party.PERSON, display_name="张三", id_number=RESPONDENT_RIC)
    case = pb.Case(
        case_number=CASE_NUMBER.format(n=n),
        parties=[applicant, respondent],
        amount_owed=money_pb2.Money(currency_code="CNY", units=125_000 + n, nanos=500_000_000),
        description="借款合同纠纷，（2022）浙0326民初1234号民事判决书",
    )
    return pb.CreateCaseRequest(parent=COURT, case=case, request_id=str(uuid.uuid4()))


def echo_payload() -> bytes:
    """Random bytes as long as a typical CreateCase request, so echo carries the same bytes."""
    return os.urandom(create_case_request(10**6).ByteSize())


def echo_call(pool: ChannelPool) -> Call:
    methods = pool.round_robin(lambda channel: channel.unary_unary(ECHO_METHOD))  # bytes pass through untouched
    payload = echo_payload()

    def call() -> Any:
        return next(methods)(payload)

    return call


class RegistryWorkload:
    """CreateCase with case numbers unique across the run; GetCase over the cases created."""

    def __init__(self, pool: ChannelPool):
        self.stubs = pool.round_robin(registry_pb2_grpc.RegistryServiceStub)
        self.numbers = itertools.count(1)
        self.names: list[str] = []

    async def create_case(self) -> None:
        reply = await next(self.stubs).CreateCase(create_case_request(next(self.numbers)), metadata=CREDENTIAL)
        self.names.append(reply.name)

    async def get_case(self) -> None:
        await next(self.stubs).GetCase(pb.GetCaseRequest(name=random.choice(self.names)), metadata=CREDENTIAL)

    @property
    def created(self) -> int:
        return len(self.names)
