"""Issue 15, point 1: a `request_id` is scoped to (caller, method, parent), for every mutating RPC.

Every mutating RPC of every service (found from the proto descriptors, so a new one cannot be
missed) is driven over gRPC against the real stack, all with the SAME request_id:

- the first call applies; the same caller retrying it gets the first answer and nothing is
  applied twice;
- the same caller sending a different body with that request_id gets ALREADY_EXISTS
  REQUEST_ID_IN_USE and changes nothing;
- a second caller using that request_id never gets the first caller's resource: a court
  creating its own resource gets its own, written; a caller acting on the first caller's
  resource is answered on its own rights.

Using one request_id for every method and target also proves the scope includes the method
and the parent: the same key on another method or another resource is another request.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from google.type import money_pb2
from rogatory.assistance.v1 import assistance_pb2 as asst
from rogatory.assistance.v1 import (
    assistance_pb2_grpc,
    property_query_pb2,
    property_query_pb2_grpc,
    vehicle_control_pb2,
    vehicle_control_pb2_grpc,
)
from rogatory.assistance.v1 import vehicle_control_pb2 as vc
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.delegation.v1 import delegation_pb2_grpc
from rogatory.registry.v1 import registry_pb2 as rg
from rogatory.registry.v1 import registry_pb2_grpc

from services.plumbing.auth import dev_credentials
from services.tools.demo import freeze_request, until_case_replicated
from services.tools.launcher import Stack
from tests.e2e.test_access_matrix import (
    COMPLETION,
    FROZEN,
    OFFICER,
    RULING,
    _answer,
    _extend,
    _for_supplement,
    _notice,
    _objection,
    _query,
    _return,
)
from tests.e2e.test_registry_e2e import create_request, details

RID = "i15-p1-shared-request-id"
Metadata = tuple[tuple[str, str], ...]

GD0112, ZJ0326, HA0122, HA01 = (dev_credentials("court", c) for c in ("gd0112", "zj0326", "ha0122", "ha01"))
ICBC, CCB, POLICE = (
    dev_credentials("agency", "bank-icbc"),
    dev_credentials("agency", "bank-ccb"),
    dev_credentials("agency", "tp-440100"),
)

# Read-only custom methods: every other method that is not a standard Get or List mutates.
READ_ONLY_CUSTOM = {
    "rogatory.registry.v1.RegistryService.ParseCaseNumber",
    "rogatory.delegation.v1.DelegationService.ComputeDeadline",
}


def mutating_methods() -> dict[str, MethodDescriptor]:
    services = [
        rg.DESCRIPTOR.services_by_name["RegistryService"],
        dg.DESCRIPTOR.services_by_name["DelegationService"],
        asst.DESCRIPTOR.services_by_name["AssistanceService"],
        vehicle_control_pb2.DESCRIPTOR.services_by_name["VehicleControlService"],
        property_query_pb2.DESCRIPTOR.services_by_name["PropertyQueryService"],
    ]
    return {
        m.full_name: m
        for s in services
        for m in s.methods
        if not m.name.startswith(("Get", "List")) and m.full_name not in READ_ONLY_CUSTOM
    }


@dataclass
class Stubs:
    registry: Any
    delegation: Any
    notices: Any
    vehicles: Any
    queries: Any


@dataclass
class World:
    stubs: Stubs
    cases: dict[str, str]  # court id → a case of that court, replicated to the other services
    numbers: Any

    def next_number(self) -> int:
        return next(self.numbers)


@dataclass(frozen=True)
class Scenario:
    """`prepare` makes a fresh target the first caller may act on; `request(target, variant)`
    builds the request (variant 1: a different body); `second` is the other caller and
    `second_request` what it sends with the same request_id (default: the first request)."""

    call: Callable[[Stubs], Callable[..., Awaitable[Any]]]
    first: Metadata
    second: Metadata
    prepare: Callable[[World], Awaitable[Any]]
    request: Callable[[World, Any, int], Message]
    second_request: Callable[[World, Any], Message] | None = None
    creates: bool = False


async def _nothing(w: World) -> None:
    return None


async def _a_number(w: World) -> int:
    return w.next_number()


async def _delegation(w: World, *steps: str) -> Any:
    """A fresh freeze delegated by gd0112 to ha0122, taken through `steps` by the right courts."""
    d = await w.stubs.delegation.CreateDelegation(freeze_request(w.cases["gd0112"]), metadata=GD0112)
    for step in steps:
        if step == "ack":
            d = await w.stubs.delegation.AcknowledgeDelegation(
                dg.AcknowledgeDelegationRequest(name=d.name, officer=OFFICER), metadata=HA0122
            )
        elif step == "start":
            d = await w.stubs.delegation.StartDelegation(dg.StartDelegationRequest(name=d.name), metadata=HA0122)
        elif step == "return_for_supplement":
            d = await w.stubs.delegation.ReturnDelegationForSupplement(_for_supplement(d.name), metadata=HA0122)
    return d


async def _notice_in(w: World, *steps: str) -> Any:
    n = await w.stubs.notices.CreateAssistanceNotice(_notice(w.cases["gd0112"], str(uuid.uuid4())), metadata=GD0112)
    for step in steps:
        if step == "receive":
            n = await w.stubs.notices.ReceiveAssistanceNotice(asst.ReceiveAssistanceNoticeRequest(name=n.name), metadata=ICBC)
        elif step == "object":
            n = await w.stubs.notices.ObjectToAssistanceNotice(_objection(n.name), metadata=ICBC)
    return n


def _plate(w: World) -> str:
    return f"粤A·{w.next_number() % 100_000:05d}"


def _control_request(w: World, court: str, plate: str, debtor: str = "张三") -> vc.CreateVehicleControlRequest:
    control = vc.VehicleControl(case=w.cases[court], debtor=debtor, vehicle=vc.ControlledVehicle(plate=plate))
    return vc.CreateVehicleControlRequest(parent=f"courts/{court}", vehicle_control=control)


async def _control(w: World, *steps: str) -> Any:
    c = await w.stubs.vehicles.CreateVehicleControl(_control_request(w, "gd0112", _plate(w)), metadata=GD0112)
    for step in steps:
        if step == "seize":
            seizure = vc.VehicleSeizure(location="天河区", custody="停车场")
            c = await w.stubs.vehicles.ReportVehicleSeizure(
                vc.ReportVehicleSeizureRequest(name=c.name, seizure=seizure), metadata=POLICE
            )
    return c


async def _query_of(w: World) -> Any:
    return await w.stubs.queries.CreatePropertyQuery(_query(w.cases["gd0112"]), metadata=GD0112)


def _case_request(w: World, court: str, code: str, variant: int = 0, number: int = 0) -> rg.CreateCaseRequest:
    request = create_request(number or w.next_number(), court, code)
    request.request_id = ""
    if variant:
        request.case.amount_owed.CopyFrom(money_pb2.Money(currency_code="CNY", units=99, nanos=0))
    return request


def _with(message: Message, variant: int, change: Callable[[Any], None]) -> Message:
    if variant:
        change(message)
    return message


def _delegation_of(w: World, court: str, variant: int) -> dg.CreateDelegationRequest:
    request = freeze_request(w.cases[court])
    request.parent, request.request_id = f"courts/{court}", ""
    if variant:
        request.delegation.deposits.amount_fen = 100
    return request


def _notice_of(w: World, court: str, variant: int) -> asst.CreateAssistanceNoticeRequest:
    request = _notice(w.cases[court], "")
    request.parent = f"courts/{court}"
    if variant:
        request.assistance_notice.target_details.deposit_account.amount_fen = 100
    return request


def _query_request(w: World, court: str, variant: int) -> property_query_pb2.CreatePropertyQueryRequest:
    request = _query(w.cases[court], "")
    request.parent, request.request_id = f"courts/{court}", ""
    if variant:
        request.property_query.categories.append(property_query_pb2.ONLINE_FUNDS)
    return request


def _reply(name: str, variant: int) -> property_query_pb2.ReplyPropertyQueryRequest:
    outcome = property_query_pb2.AgencyQueryResult.FAILED if variant else property_query_pb2.AgencyQueryResult.NO_PROPERTY
    return property_query_pb2.ReplyPropertyQueryRequest(
        name=name, agency="agencies/bank-icbc", outcome=outcome, failure_reason="系统维护" if variant else ""
    )


def scenarios() -> dict[str, Scenario]:
    D, A, V, Q = (
        "rogatory.delegation.v1.DelegationService",
        "rogatory.assistance.v1.AssistanceService",
        ("rogatory.assistance.v1.VehicleControlService"),
        "rogatory.assistance.v1.PropertyQueryService",
    )
    return {
        # --- creations: the second caller is another court creating its own resource ---
        "rogatory.registry.v1.RegistryService.CreateCase": Scenario(
            lambda s: s.registry.CreateCase, GD0112, ZJ0326, _a_number,
            lambda w, t, v: _case_request(w, "gd0112", "粤0112", v, number=t),
            lambda w, t: _case_request(w, "zj0326", "浙0326"), creates=True,
        ),
        f"{D}.CreateDelegation": Scenario(
            lambda s: s.delegation.CreateDelegation, GD0112, ZJ0326, _nothing,
            lambda w, t, v: _delegation_of(w, "gd0112", v), lambda w, t: _delegation_of(w, "zj0326", 0), creates=True,
        ),
        f"{A}.CreateAssistanceNotice": Scenario(
            lambda s: s.notices.CreateAssistanceNotice, GD0112, ZJ0326, _nothing,
            lambda w, t, v: _notice_of(w, "gd0112", v), lambda w, t: _notice_of(w, "zj0326", 0), creates=True,
        ),
        f"{V}.CreateVehicleControl": Scenario(
            lambda s: s.vehicles.CreateVehicleControl, GD0112, ZJ0326, _nothing,
            lambda w, t, v: _control_request(w, "gd0112", "粤A·61001", "李四" if v else "张三"),
            lambda w, t: _control_request(w, "zj0326", "浙C·61002"), creates=True,
        ),
        f"{Q}.CreatePropertyQuery": Scenario(
            lambda s: s.queries.CreatePropertyQuery, GD0112, ZJ0326, _nothing,
            lambda w, t, v: _query_request(w, "gd0112", v), lambda w, t: _query_request(w, "zj0326", 0), creates=True,
        ),
        # --- custom methods: the second caller sends the same request on the same resource ---
        "rogatory.registry.v1.RegistryService.CloseCase": Scenario(
            lambda s: s.registry.CloseCase, GD0112, ZJ0326,
            lambda w: w.stubs.registry.CreateCase(_case_request(w, "gd0112", "粤0112"), metadata=GD0112),
            lambda w, t, v: rg.CloseCaseRequest(name=t.name, outcome=rg.CaseClosure.EXECUTED_IN_FULL if v else rg.CaseClosure.WITHDRAWN),
        ),
        f"{D}.AcknowledgeDelegation": Scenario(
            lambda s: s.delegation.AcknowledgeDelegation, HA0122, GD0112, lambda w: _delegation(w),
            lambda w, t, v: dg.AcknowledgeDelegationRequest(
                name=t.name, officer=dg.Officer(display_name="王法官" if v else "李法官", phone="0371-62171234")
            ),
        ),
        f"{D}.StartDelegation": Scenario(
            lambda s: s.delegation.StartDelegation, HA0122, GD0112, lambda w: _delegation(w, "ack"),
            lambda w, t, v: dg.StartDelegationRequest(name=t.name, note="另一说明" if v else ""),
        ),
        f"{D}.CompleteDelegation": Scenario(
            lambda s: s.delegation.CompleteDelegation, HA0122, GD0112, lambda w: _delegation(w, "ack", "start"),
            lambda w, t, v: _with(
                dg.CompleteDelegationRequest(name=t.name, completion=COMPLETION), v,
                lambda r: setattr(r.completion, "amount_fen", 1),
            ),
        ),
        f"{D}.ReturnDelegationForSupplement": Scenario(
            lambda s: s.delegation.ReturnDelegationForSupplement, HA0122, GD0112, lambda w: _delegation(w, "ack"),
            lambda w, t, v: _with(_for_supplement(t.name), v, lambda r: r.supplement_request.missing_items.append("送达回证")),
        ),
        f"{D}.SupplementDelegation": Scenario(
            lambda s: s.delegation.SupplementDelegation, GD0112, HA0122,
            lambda w: _delegation(w, "ack", "return_for_supplement"),
            lambda w, t, v: _with(
                dg.SupplementDelegationRequest(name=t.name, attachments=[RULING]), v, lambda r: setattr(r, "note", "已补正")
            ),
        ),
        f"{D}.ReturnDelegation": Scenario(
            lambda s: s.delegation.ReturnDelegation, HA0122, GD0112, lambda w: _delegation(w, "ack"),
            lambda w, t, v: _with(_return(t.name), v, lambda r: setattr(r, "note", "另有原因")),
        ),
        f"{D}.WithdrawDelegation": Scenario(
            lambda s: s.delegation.WithdrawDelegation, GD0112, HA0122, lambda w: _delegation(w),
            lambda w, t, v: dg.WithdrawDelegationRequest(name=t.name, reason=dg.NO_LONGER_NEEDED if v else dg.SETTLED),
        ),
        f"{D}.UpdateDelegation": Scenario(
            lambda s: s.delegation.UpdateDelegation, GD0112, HA0122, lambda w: _delegation(w),
            lambda w, t, v: dg.UpdateDelegationRequest(
                delegation=dg.Delegation(name=t.name, description="更正说明" if v else "补正说明"),
                update_mask=field_mask_pb2.FieldMask(paths=["description"]),
            ),
        ),
        f"{D}.UrgeDelegation": Scenario(
            lambda s: s.delegation.UrgeDelegation, GD0112, HA0122, lambda w: _delegation(w),
            lambda w, t, v: dg.UrgeDelegationRequest(name=t.name, note="再次催办" if v else "请尽快办理"),
        ),
        f"{D}.ExtendDelegationDeadline": Scenario(
            lambda s: s.delegation.ExtendDelegationDeadline, HA01, GD0112, lambda w: _delegation(w, "ack"),
            lambda w, t, v: _with(_extend(t.name), v, lambda r: setattr(r, "amount", 5)),
        ),
        f"{A}.ReceiveAssistanceNotice": Scenario(
            lambda s: s.notices.ReceiveAssistanceNotice, ICBC, CCB, lambda w: _notice_in(w),
            lambda w, t, v: asst.ReceiveAssistanceNoticeRequest(name=t.name, note="另一说明" if v else ""),
        ),
        f"{A}.ReplyAssistanceNotice": Scenario(
            lambda s: s.notices.ReplyAssistanceNotice, ICBC, CCB, lambda w: _notice_in(w, "receive"),
            lambda w, t, v: _with(
                asst.ReplyAssistanceNoticeRequest(name=t.name, result=FROZEN), v, lambda r: setattr(r.result, "amount_fen", 1)
            ),
        ),
        f"{A}.ObjectToAssistanceNotice": Scenario(
            lambda s: s.notices.ObjectToAssistanceNotice, ICBC, CCB, lambda w: _notice_in(w, "receive"),
            lambda w, t, v: _with(_objection(t.name), v, lambda r: setattr(r.objection, "note", "另一理由")),
        ),
        f"{A}.AnswerAssistanceNoticeObjection": Scenario(
            lambda s: s.notices.AnswerAssistanceNoticeObjection, GD0112, ZJ0326, lambda w: _notice_in(w, "receive", "object"),
            lambda w, t, v: _with(_answer(t.name), v, lambda r: setattr(r.answer, "note", "另一答复")),
        ),
        f"{V}.ReportVehicleSighting": Scenario(
            lambda s: s.vehicles.ReportVehicleSighting, POLICE, CCB, lambda w: _control(w),
            lambda w, t, v: vc.ReportVehicleSightingRequest(
                name=t.name, sighting=vc.VehicleSighting(location="海珠区" if v else "天河区")
            ),
        ),
        f"{V}.ReportVehicleSeizure": Scenario(
            lambda s: s.vehicles.ReportVehicleSeizure, POLICE, CCB, lambda w: _control(w),
            lambda w, t, v: vc.ReportVehicleSeizureRequest(
                name=t.name, seizure=vc.VehicleSeizure(location="天河区", custody="另一停车场" if v else "停车场")
            ),
        ),
        f"{V}.RecordPostSeizureStep": Scenario(
            lambda s: s.vehicles.RecordPostSeizureStep, GD0112, ZJ0326, lambda w: _control(w, "seize"),
            lambda w, t, v: vc.RecordPostSeizureStepRequest(name=t.name, step=vc.STORED, note="二号库" if v else "一号库"),
        ),
        f"{V}.LiftVehicleControl": Scenario(
            lambda s: s.vehicles.LiftVehicleControl, GD0112, ZJ0326, lambda w: _control(w),
            lambda w, t, v: vc.LiftVehicleControlRequest(
                name=t.name, reason=vc.LiftVehicleControlRequest.NO_LONGER_NEEDED if v else vc.LiftVehicleControlRequest.PAID
            ),
        ),
        f"{Q}.ReplyPropertyQuery": Scenario(
            lambda s: s.queries.ReplyPropertyQuery, ICBC, CCB, _query_of, lambda w, t, v: _reply(t.name, v),
            lambda w, t: _with(_reply(t.name, 0), 1, lambda r: setattr(r, "agency", "agencies/bank-ccb")),
        ),
    }  # fmt: skip


@pytest.fixture(scope="module")
async def world(stack: Stack) -> AsyncIterator[World]:
    channels = {s: grpc.aio.insecure_channel(stack.address(s)) for s in ("registry", "delegation", "assistance")}
    stubs = Stubs(
        registry_pb2_grpc.RegistryServiceStub(channels["registry"]),
        delegation_pb2_grpc.DelegationServiceStub(channels["delegation"]),
        assistance_pb2_grpc.AssistanceServiceStub(channels["assistance"]),
        vehicle_control_pb2_grpc.VehicleControlServiceStub(channels["assistance"]),
        property_query_pb2_grpc.PropertyQueryServiceStub(channels["assistance"]),
    )
    w = World(stubs, {}, iter(range(7_600_001, 7_700_000)))
    for court, code, metadata in (("gd0112", "粤0112", GD0112), ("zj0326", "浙0326", ZJ0326)):
        w.cases[court] = (await stubs.registry.CreateCase(_case_request(w, court, code), metadata=metadata)).name
    for court, metadata in (("gd0112", GD0112), ("zj0326", ZJ0326)):  # both cases have reached both services
        await until_case_replicated(lambda: stubs.delegation.CreateDelegation(_delegation_of(w, court, 0), metadata=metadata))  # noqa: B023
        await until_case_replicated(lambda: stubs.queries.CreatePropertyQuery(_query_request(w, court, 0), metadata=metadata))  # noqa: B023
    try:
        yield w
    finally:
        for channel in channels.values():
            await channel.close()


def test_i15_p1_every_mutating_rpc_has_a_request_id_and_a_scenario() -> None:
    methods = mutating_methods()
    assert not [name for name, m in methods.items() if "request_id" not in m.input_type.fields_by_name], (
        "every mutating RPC takes a request_id (AIP-155)"
    )
    assert sorted(methods) == sorted(scenarios()), "a mutating RPC has no request_id scenario here"


async def _answer_or_error(call: Awaitable[Any]) -> Any:
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        return error


async def test_i15_p1_request_id_is_scoped_to_caller_method_and_parent(world: World) -> None:
    failures: list[str] = []
    for method, scenario in scenarios().items():
        failures.extend(f"{method.rsplit('.', 1)[1]}: {problem}" for problem in await _check(world, scenario))
    assert not failures, "\n" + "\n".join(failures)


async def _check(w: World, s: Scenario) -> list[str]:
    rpc = s.call(w.stubs)
    target = await s.prepare(w)
    if "request_id" not in s.request(w, target, 0).DESCRIPTOR.fields_by_name:
        return ["the request has no request_id"]

    def request(variant: int) -> Message:
        message = s.request(w, target, variant)
        message.request_id = RID  # type: ignore[attr-defined]
        return message

    first = await _answer_or_error(rpc(request(0), metadata=s.first))
    if isinstance(first, grpc.aio.AioRpcError):
        return [f"the first call failed: {first.code().name} {first.details()}"]
    problems = []
    again = await _answer_or_error(rpc(request(0), metadata=s.first))
    if isinstance(again, grpc.aio.AioRpcError):
        problems.append(f"the retry failed: {again.code().name} {again.details()}")
    elif again != first:
        problems.append(f"the retry got another answer:\n{again}\nfirst:\n{first}")
    changed = await _answer_or_error(rpc(request(1), metadata=s.first))
    if not isinstance(changed, grpc.aio.AioRpcError):
        problems.append("a different body with the same request_id was answered OK")
    elif changed.code() != grpc.StatusCode.ALREADY_EXISTS or details(changed)[0].reason != "REQUEST_ID_IN_USE":
        problems.append(f"a different body got {changed.code().name} {details(changed)[0].reason}, not REQUEST_ID_IN_USE")
    second_request = s.second_request(w, target) if s.second_request else request(0)
    second_request.request_id = RID  # type: ignore[attr-defined]
    second = await _answer_or_error(rpc(second_request, metadata=s.second))
    if s.creates:
        if isinstance(second, grpc.aio.AioRpcError):
            problems.append(f"another court's own creation failed: {second.code().name} {second.details()}")
        elif second.name == first.name or not second.name.startswith(second_request.parent + "/"):  # type: ignore[attr-defined]
            problems.append(f"another court got {second.name}, not a resource of its own")
    elif not isinstance(second, grpc.aio.AioRpcError) and second == first:
        problems.append("another caller got the first caller's answer")
    return problems
