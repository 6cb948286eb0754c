"""Who may do what, RPC by RPC (issue 6): every method of every service is called by seven
callers — the court that owns the resource, another court, the owner's superior court, the
party the resource is addressed to (the entrusted court, the agency notified or watching),
another agency, an admin, and no credential — and each answer must be the one the rules
give. Mutations run for the refused callers first, then once for the caller who may.

The rules, in one place (docs/access.md has them as prose):
- reference data (courts, agencies, case-number parsing): any authenticated party;
- a court acts only on its own cases and on matters where it is a party; a superior court
  reads (and supervises) its subordinates' cases and matters; an admin reads everything and
  acts on nothing; an agency acts only on what is addressed to it;
- the wrong kind of caller (an agency where only a court acts, a court where only an agency
  reports, an admin anywhere it would act) gets PERMISSION_DENIED, decided before any
  look-up; a caller of the right kind who may not see the resource gets NOT_FOUND, so no call
  reveals that it exists (or PERMISSION_DENIED decided from the resource name alone); who
  may see it but not do that gets PERMISSION_DENIED; no credential is UNAUTHENTICATED;
- property-query results go to the querying court only (issue 4): not to its superior, not
  to admins.

The matrix cannot fall behind the protos: a test that needs no stack finds every RPC of every
service in the generated modules and fails naming each one without a row, each row whose call
is not the RPC it names, and each row for an RPC the protos no longer have.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, fields
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import rogatory
from google.protobuf import field_mask_pb2
from google.protobuf.duration_pb2 import Duration
from rogatory.assistance.v1 import assistance_pb2 as asst
from rogatory.assistance.v1 import assistance_pb2_grpc, property_query_pb2, property_query_pb2_grpc, vehicle_control_pb2_grpc
from rogatory.assistance.v1 import vehicle_control_pb2 as vc
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.delegation.v1 import delegation_pb2_grpc
from rogatory.registry.v1 import registry_pb2 as rg
from rogatory.registry.v1 import registry_pb2_grpc

from services.assistance.notice_examples import freeze_request as notice_freeze_request
from services.plumbing.auth import dev_credentials
from services.tools.demo import freeze_request, until_case_replicated
from services.tools.launcher import Stack
from tests.e2e.test_registry_e2e import create_request

ROLES = ("owner", "other", "superior", "addressed", "other_agency", "admin", "none")
Metadata = tuple[tuple[str, str], ...]
OK, NF, PD, UA, FP = "OK", "NOT_FOUND", "PERMISSION_DENIED", "UNAUTHENTICATED", "FAILED_PRECONDITION"


def caller(kind: str, principal_id: str) -> Metadata:
    return dev_credentials(kind, principal_id)


OWNER, OTHER, SUPERIOR = caller("court", "gd0112"), caller("court", "zj0326"), caller("court", "gd01")
ENTRUSTED, BANK, POLICE = caller("court", "ha0122"), caller("agency", "bank-icbc"), caller("agency", "tp-440100")
OTHER_AGENCY, ADMIN = caller("agency", "re-110000"), caller("admin", "tests")


@dataclass
class World:
    """The resources every row acts on, all of court gd0112 (广州市黄埔区人民法院)."""

    case: str = ""
    case_to_close: str = ""
    delegation: Any = None
    withdrawable: Any = None
    returnable: Any = None
    notice: Any = None
    seizure: str = ""
    control: Any = None
    query: Any = None


@dataclass
class Stubs:
    registry: Any
    delegation: Any
    notices: Any
    vehicles: Any
    queries: Any


def stubs_on(channels: dict[str, Any]) -> Stubs:
    return Stubs(
        registry_pb2_grpc.RegistryServiceStub(channels["registry"]),
        delegation_pb2_grpc.DelegationServiceStub(channels["delegation"]),
        assistance_pb2_grpc.AssistanceServiceStub(channels["assistance"]),
        vehicle_control_pb2_grpc.VehicleControlServiceStub(channels["assistance"]),
        property_query_pb2_grpc.PropertyQueryServiceStub(channels["assistance"]),
    )


@dataclass(frozen=True)
class Row:
    method: str
    call: Callable[[Stubs, World, Metadata], Awaitable[Any]]
    expected: dict[str, str]  # role → status code name
    addressed: Metadata = BANK  # who "addressed" is for this resource


def expect(
    owner: str, other: str, superior: str, addressed: str, other_agency: str, admin: str, none: str = UA
) -> dict[str, str]:
    return dict(zip(ROLES, (owner, other, superior, addressed, other_agency, admin, none), strict=True))


EVERYONE = expect(OK, OK, OK, OK, OK, OK)
COURT_ACTS = expect(OK, PD, PD, PD, PD, PD)  # a court's own act on a resource it may create


def rows() -> list[Row]:
    def r(
        method: str,
        call: Callable[[Stubs, World, Metadata], Awaitable[Any]],
        expected: dict[str, str],
        addressed: Metadata = BANK,
    ) -> Row:
        return Row(method, call, expected, addressed)

    return [
        # --- registry: reference data ---
        r("GetCourt", lambda s, w, m: s.registry.GetCourt(rg.GetCourtRequest(name="courts/gd0112"), metadata=m), EVERYONE),
        r("ListCourts", lambda s, w, m: s.registry.ListCourts(rg.ListCourtsRequest(), metadata=m), EVERYONE),
        r("ListCourtSuperiors", lambda s, w, m: s.registry.ListCourtSuperiors(rg.ListCourtSuperiorsRequest(name="courts/gd0112"), metadata=m), EVERYONE),
        r("GetAgency", lambda s, w, m: s.registry.GetAgency(rg.GetAgencyRequest(name="agencies/bank-icbc"), metadata=m), EVERYONE),
        r("ListAgencies", lambda s, w, m: s.registry.ListAgencies(rg.ListAgenciesRequest(), metadata=m), EVERYONE),
        r("ParseCaseNumber", lambda s, w, m: s.registry.ParseCaseNumber(rg.ParseCaseNumberRequest(case_number="(2020)粤0112执1号"), metadata=m), EVERYONE),
        # --- registry: cases ---
        r("CreateCase", lambda s, w, m: s.registry.CreateCase(create_request(990_001, "gd0112", "粤0112", request_id="matrix-case"), metadata=m), COURT_ACTS),
        r("GetCase", lambda s, w, m: s.registry.GetCase(rg.GetCaseRequest(name=w.case), metadata=m), expect(OK, NF, OK, NF, NF, OK)),
        r("ListCases", lambda s, w, m: s.registry.ListCases(rg.ListCasesRequest(parent="courts/gd0112"), metadata=m), expect(OK, PD, OK, PD, PD, OK)),
        r("CloseCase", lambda s, w, m: s.registry.CloseCase(rg.CloseCaseRequest(name=w.case_to_close, outcome=rg.CaseClosure.WITHDRAWN), metadata=m), expect(OK, PD, PD, PD, PD, PD)),
        # --- delegation: "addressed" is the entrusted court, 中牟县法院 ---
        r("CreateDelegation", lambda s, w, m: s.delegation.CreateDelegation(_freeze(w.case, "matrix-delegation"), metadata=m), COURT_ACTS, ENTRUSTED),
        r("GetDelegation", lambda s, w, m: s.delegation.GetDelegation(dg.GetDelegationRequest(name=w.delegation.name), metadata=m), expect(OK, NF, OK, OK, NF, OK), ENTRUSTED),
        r("ListDelegations", lambda s, w, m: _visible(s.delegation.ListDelegations(dg.ListDelegationsRequest(parent="courts/gd0112"), metadata=m), w.delegation.name), expect(OK, NF, OK, OK, NF, OK), ENTRUSTED),
        r("GetDelegationTimeline", lambda s, w, m: s.delegation.GetDelegationTimeline(dg.GetDelegationTimelineRequest(name=w.delegation.name), metadata=m), expect(OK, NF, OK, OK, NF, OK), ENTRUSTED),
        r("UrgeDelegation", lambda s, w, m: s.delegation.UrgeDelegation(dg.UrgeDelegationRequest(name=w.delegation.name, note="请尽快办理"), metadata=m), expect(OK, NF, PD, PD, PD, PD), ENTRUSTED),
        r("UpdateDelegation", lambda s, w, m: s.delegation.UpdateDelegation(dg.UpdateDelegationRequest(delegation=dg.Delegation(name=w.delegation.name, description="更正说明"), update_mask=field_mask_pb2.FieldMask(paths=["description"])), metadata=m), expect(OK, NF, PD, PD, PD, PD), ENTRUSTED),
        r("AcknowledgeDelegation", lambda s, w, m: s.delegation.AcknowledgeDelegation(dg.AcknowledgeDelegationRequest(name=w.delegation.name, officer=OFFICER), metadata=m), expect(PD, NF, PD, OK, PD, PD), ENTRUSTED),
        r("StartDelegation", lambda s, w, m: s.delegation.StartDelegation(dg.StartDelegationRequest(name=w.delegation.name), metadata=m), expect(PD, NF, PD, OK, PD, PD), ENTRUSTED),
        r("ExtendDelegationDeadline", lambda s, w, m: s.delegation.ExtendDelegationDeadline(_extend(w.delegation.name), metadata=m), expect(PD, NF, PD, PD, PD, PD), ENTRUSTED),
        r("ReturnDelegationForSupplement", lambda s, w, m: s.delegation.ReturnDelegationForSupplement(_for_supplement(w.delegation.name), metadata=m), expect(PD, NF, PD, OK, PD, PD), ENTRUSTED),
        r("SupplementDelegation", lambda s, w, m: s.delegation.SupplementDelegation(dg.SupplementDelegationRequest(name=w.delegation.name, attachments=[RULING]), metadata=m), expect(OK, NF, PD, PD, PD, PD), ENTRUSTED),
        r("CompleteDelegation", lambda s, w, m: s.delegation.CompleteDelegation(dg.CompleteDelegationRequest(name=w.delegation.name, completion=COMPLETION), metadata=m), expect(PD, NF, PD, OK, PD, PD), ENTRUSTED),
        r("WithdrawDelegation", lambda s, w, m: s.delegation.WithdrawDelegation(dg.WithdrawDelegationRequest(name=w.withdrawable.name, reason=dg.SETTLED), metadata=m), expect(OK, NF, PD, PD, PD, PD), ENTRUSTED),
        r("ReturnDelegation", lambda s, w, m: s.delegation.ReturnDelegation(_return(w.returnable.name), metadata=m), expect(PD, NF, PD, OK, PD, PD), ENTRUSTED),
        r("ListOverdueDelegations", lambda s, w, m: s.delegation.ListOverdueDelegations(dg.ListOverdueDelegationsRequest(parent="courts/gd0112"), metadata=m), expect(OK, PD, OK, PD, PD, OK), ENTRUSTED),
        r("GetTurnaroundStatistics", lambda s, w, m: s.delegation.GetTurnaroundStatistics(dg.GetTurnaroundStatisticsRequest(), metadata=m), EVERYONE, ENTRUSTED),
        r("ComputeDeadline", lambda s, w, m: s.delegation.ComputeDeadline(_deadline_question(), metadata=m), EVERYONE, ENTRUSTED),
        r("ListMatterKinds", lambda s, w, m: s.delegation.ListMatterKinds(dg.ListMatterKindsRequest(), metadata=m), EVERYONE, ENTRUSTED),
        r("GetMatterKind", lambda s, w, m: s.delegation.GetMatterKind(dg.GetMatterKindRequest(name="matterKinds/DEPOSITS"), metadata=m), EVERYONE, ENTRUSTED),
        # --- assistance notices: "addressed" is the bank notified, 中国工商银行 ---
        r("CreateAssistanceNotice", lambda s, w, m: s.notices.CreateAssistanceNotice(_notice(w.case, "matrix-notice"), metadata=m), COURT_ACTS),
        r("GetAssistanceNotice", lambda s, w, m: s.notices.GetAssistanceNotice(asst.GetAssistanceNoticeRequest(name=w.notice.name), metadata=m), expect(OK, NF, OK, OK, NF, OK)),
        r("ListAssistanceNotices", lambda s, w, m: _visible(s.notices.ListAssistanceNotices(asst.ListAssistanceNoticesRequest(parent="courts/gd0112"), metadata=m), w.notice.name, "assistance_notices"), expect(OK, PD, OK, OK, NF, OK)),
        r("GetAssistanceNoticeTimeline", lambda s, w, m: s.notices.GetAssistanceNoticeTimeline(asst.GetAssistanceNoticeTimelineRequest(name=w.notice.name), metadata=m), expect(OK, NF, OK, OK, NF, OK)),
        r("ReceiveAssistanceNotice", lambda s, w, m: s.notices.ReceiveAssistanceNotice(asst.ReceiveAssistanceNoticeRequest(name=w.notice.name), metadata=m), expect(PD, NF, PD, OK, NF, PD)),
        r("ReplyAssistanceNotice", lambda s, w, m: s.notices.ReplyAssistanceNotice(asst.ReplyAssistanceNoticeRequest(name=w.notice.name, result=FROZEN), metadata=m), expect(PD, NF, PD, OK, NF, PD)),
        r("ObjectToAssistanceNotice", lambda s, w, m: s.notices.ObjectToAssistanceNotice(_objection(w.notice.name), metadata=m), expect(PD, NF, PD, FP, NF, PD)),
        r("AnswerAssistanceNoticeObjection", lambda s, w, m: s.notices.AnswerAssistanceNoticeObjection(_answer(w.notice.name), metadata=m), expect(FP, NF, PD, PD, NF, PD)),
        r("GetSeizure", lambda s, w, m: s.notices.GetSeizure(asst.GetSeizureRequest(name=w.seizure), metadata=m), expect(OK, NF, OK, OK, NF, OK)),
        r("ListSeizures", lambda s, w, m: _visible(s.notices.ListSeizures(asst.ListSeizuresRequest(parent="courts/gd0112"), metadata=m), w.seizure, "seizures"), expect(OK, PD, OK, OK, NF, OK)),
        r("GetAgencyTurnaroundStatistics", lambda s, w, m: s.notices.GetAgencyTurnaroundStatistics(asst.GetAgencyTurnaroundStatisticsRequest(), metadata=m), EVERYONE),
        # --- vehicle watch list: "addressed" is 广州市公安局交通警察支队 ---
        r("CreateVehicleControl", lambda s, w, m: s.vehicles.CreateVehicleControl(_control(w.case, "粤A·D2345", "matrix-control"), metadata=m), COURT_ACTS, POLICE),
        r("GetVehicleControl", lambda s, w, m: s.vehicles.GetVehicleControl(vc.GetVehicleControlRequest(name=w.control.name), metadata=m), expect(OK, NF, OK, OK, NF, OK), POLICE),
        r("ListVehicleControls", lambda s, w, m: _visible(s.vehicles.ListVehicleControls(vc.ListVehicleControlsRequest(parent="courts/gd0112"), metadata=m), w.control.name, "vehicle_controls"), expect(OK, PD, OK, OK, NF, OK), POLICE),
        r("ReportVehicleSighting", lambda s, w, m: s.vehicles.ReportVehicleSighting(vc.ReportVehicleSightingRequest(name=w.control.name, sighting=vc.VehicleSighting(location="天河区")), metadata=m), expect(PD, PD, PD, OK, NF, PD), POLICE),
        r("ReportVehicleSeizure", lambda s, w, m: s.vehicles.ReportVehicleSeizure(vc.ReportVehicleSeizureRequest(name=w.control.name, seizure=vc.VehicleSeizure(location="天河区", custody="停车场")), metadata=m), expect(PD, PD, PD, OK, NF, PD), POLICE),
        r("RecordPostSeizureStep", lambda s, w, m: s.vehicles.RecordPostSeizureStep(vc.RecordPostSeizureStepRequest(name=w.control.name, step=vc.STORED), metadata=m), expect(OK, NF, PD, PD, PD, PD), POLICE),
        r("LiftVehicleControl", lambda s, w, m: s.vehicles.LiftVehicleControl(vc.LiftVehicleControlRequest(name=w.control.name, reason=vc.LiftVehicleControlRequest.PAID), metadata=m), expect(OK, NF, PD, PD, PD, PD), POLICE),
        # --- property queries: "addressed" is a bank asked ---
        r("CreatePropertyQuery", lambda s, w, m: s.queries.CreatePropertyQuery(_query(w.case, "matrix-query"), metadata=m), COURT_ACTS),
        r("GetPropertyQuery", lambda s, w, m: s.queries.GetPropertyQuery(property_query_pb2.GetPropertyQueryRequest(name=w.query.name), metadata=m), expect(OK, PD, PD, PD, PD, PD)),
        r("ListPropertyQueries", lambda s, w, m: s.queries.ListPropertyQueries(property_query_pb2.ListPropertyQueriesRequest(parent="courts/gd0112"), metadata=m), expect(OK, PD, PD, PD, PD, PD)),
        r("ReplyPropertyQuery", lambda s, w, m: s.queries.ReplyPropertyQuery(_query_reply(w.query.name), metadata=m), expect(PD, PD, PD, OK, PD, PD)),
    ]  # fmt: skip


OFFICER = dg.Officer(display_name="李法官", phone="0371-62171234")
RULING = dg.Attachment(kind=dg.Attachment.RULING, name="执行裁定书.pdf", size_bytes=2048, sha256="ab" * 32)
COMPLETION = dg.Completion(
    outcome=dg.Completion.EXECUTED,
    amount_fen=700_000_000,
    result_documents=[dg.Attachment(kind=dg.Attachment.ASSISTANCE_RECEIPT, name="回执.pdf", size_bytes=4096, sha256="ef" * 32)],
)
FROZEN = asst.NoticeResult(kind=asst.NoticeResult.FROZEN, amount_fen=500_000_000, reference="冻字第1号")


def _freeze(case: str, request_id: str) -> dg.CreateDelegationRequest:
    request = freeze_request(case)
    request.request_id = request_id
    return request


def _deadline_question() -> dg.ComputeDeadlineRequest:
    """Public rules, no matter data: any authenticated caller may ask."""
    request = dg.ComputeDeadlineRequest(court="courts/ha0122", matter_kind=dg.Delegation.DEPOSITS, step=dg.Deadline.START)
    request.start_time.FromSeconds(1_694_743_200)  # 2023-09-15 10:00 China time
    return request


def _extend(name: str) -> dg.ExtendDelegationDeadlineRequest:
    return dg.ExtendDelegationDeadlineRequest(
        name=name, step=dg.Deadline.FINISH, amount=10, unit="CALENDAR_DAY", reason="案情复杂"
    )


def _for_supplement(name: str) -> dg.ReturnDelegationForSupplementRequest:
    missing = dg.SupplementRequest(reason=dg.SupplementRequest.MISSING_RULING, missing_items=["执行裁定书"])
    return dg.ReturnDelegationForSupplementRequest(name=name, supplement_request=missing)


def _return(name: str) -> dg.ReturnDelegationRequest:
    return dg.ReturnDelegationRequest(
        name=name,
        reason=dg.NOT_WITHIN_JURISDICTION,
        note="不属本院辖区",
        approval_court="courts/ha",
        approval_reference="豫高法〔2026〕1号",
    )


def _notice(case: str, request_id: str) -> asst.CreateAssistanceNoticeRequest:
    request = notice_freeze_request("gd0112", case, "张三")
    request.request_id = request_id
    return request


def _objection(name: str) -> asst.ObjectToAssistanceNoticeRequest:
    return asst.ObjectToAssistanceNoticeRequest(
        name=name, objection=asst.Objection(reason=asst.Objection.NOT_DEBTORS_PROPERTY, note="账户属案外人")
    )


def _answer(name: str) -> asst.AnswerAssistanceNoticeObjectionRequest:
    answer = asst.ObjectionAnswer(decision=asst.ObjectionAnswer.MAINTAIN, note="冻结的是被执行人账户")
    return asst.AnswerAssistanceNoticeObjectionRequest(name=name, answer=answer)


def _control(case: str, plate: str, request_id: str = "") -> vc.CreateVehicleControlRequest:
    control = vc.VehicleControl(case=case, debtor="张三", vehicle=vc.ControlledVehicle(plate=plate))
    return vc.CreateVehicleControlRequest(
        parent="courts/gd0112", vehicle_control=control, request_id=request_id or str(uuid.uuid4())
    )


def _query(case: str, request_id: str = "") -> property_query_pb2.CreatePropertyQueryRequest:
    query = property_query_pb2.PropertyQuery(
        case=case, debtor="张三", categories=[property_query_pb2.DEPOSITS], response_window=Duration(seconds=3600)
    )
    return property_query_pb2.CreatePropertyQueryRequest(
        parent="courts/gd0112", property_query=query, request_id=request_id or str(uuid.uuid4())
    )


def _query_reply(name: str) -> property_query_pb2.ReplyPropertyQueryRequest:
    return property_query_pb2.ReplyPropertyQueryRequest(
        name=name, agency="agencies/bank-icbc", outcome=property_query_pb2.AgencyQueryResult.NO_PROPERTY
    )


async def _visible(call: Awaitable[Any], name: str, field: str = "delegations") -> Any:
    """A list answers OK either way; who may not see the resource does not find it in the list."""
    answer = await call
    if name not in [item.name for item in getattr(answer, field)]:
        raise _NotInList()
    return answer


class _NotInList(Exception):
    pass


async def outcome(call: Awaitable[Any]) -> str:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code().name
    except _NotInList:
        return NF
    return OK


@pytest.fixture(scope="module")
async def world(stack: Stack) -> AsyncIterator[tuple[Stubs, World]]:
    channels = {s: grpc.aio.insecure_channel(stack.address(s)) for s in ("registry", "delegation", "assistance")}
    stubs = stubs_on(channels)
    w = World()
    w.case = (await stubs.registry.CreateCase(create_request(990_101, "gd0112", "粤0112"), metadata=OWNER)).name
    w.case_to_close = (await stubs.registry.CreateCase(create_request(990_102, "gd0112", "粤0112"), metadata=OWNER)).name
    w.delegation = await until_case_replicated(lambda: stubs.delegation.CreateDelegation(freeze_request(w.case), metadata=OWNER))
    w.withdrawable = await stubs.delegation.CreateDelegation(freeze_request(w.case), metadata=OWNER)
    w.returnable = await stubs.delegation.CreateDelegation(freeze_request(w.case), metadata=OWNER)
    await stubs.delegation.AcknowledgeDelegation(
        dg.AcknowledgeDelegationRequest(name=w.returnable.name, officer=OFFICER), metadata=ENTRUSTED
    )
    w.notice = await until_case_replicated(lambda: stubs.notices.CreateAssistanceNotice(_notice(w.case, ""), metadata=OWNER))
    seized = await stubs.notices.CreateAssistanceNotice(_notice(w.case, str(uuid.uuid4())), metadata=OWNER)
    await stubs.notices.ReceiveAssistanceNotice(asst.ReceiveAssistanceNoticeRequest(name=seized.name), metadata=BANK)
    answered = await stubs.notices.ReplyAssistanceNotice(
        asst.ReplyAssistanceNoticeRequest(name=seized.name, result=FROZEN), metadata=BANK
    )
    w.seizure = answered.resulting_seizure
    w.control = await until_case_replicated(
        lambda: stubs.vehicles.CreateVehicleControl(_control(w.case, "粤A·12345"), metadata=OWNER)
    )
    w.query = await until_case_replicated(lambda: stubs.queries.CreatePropertyQuery(_query(w.case), metadata=OWNER))
    try:
        yield stubs, w
    finally:
        for channel in channels.values():
            await channel.close()


async def test_every_rpc_answers_each_caller_as_the_rules_say(world: tuple[Stubs, World]) -> None:
    stubs, w = world
    mismatches = []
    for row in rows():
        callers = {
            "owner": OWNER, "other": OTHER, "superior": SUPERIOR, "addressed": row.addressed,
            "other_agency": OTHER_AGENCY, "admin": ADMIN, "none": (),
        }  # fmt: skip
        allowed = [role for role in ROLES if row.expected[role] == OK]
        refused = [role for role in ROLES if role not in allowed]
        for role in (*refused, *allowed):  # refusals first: they must change nothing the allowed call needs
            actual = await outcome(row.call(stubs, w, callers[role]))
            if actual != row.expected[role]:
                mismatches.append(f"{row.method:<32} {role:<13} expected {row.expected[role]:<20} got {actual}")
    assert not mismatches, "\n" + "\n".join(mismatches)


# --- the matrix is complete: every RPC in the protos has exactly one row (no stack needed) ---


def rpcs_in_the_protos() -> set[str]:
    """Every method of every service in every generated module, as its gRPC path."""
    paths = set()
    for module in pkgutil.walk_packages(rogatory.__path__, "rogatory."):
        if module.name.endswith("_pb2"):
            for service in importlib.import_module(module.name).DESCRIPTOR.services_by_name.values():
                paths |= {f"/{service.full_name}/{method.name}" for method in service.methods}
    return paths


class _RecordingChannel:
    """Stands in for a channel: each stub method records its gRPC path when called."""

    def __init__(self, called: list[str]):
        self.called = called

    def unary_unary(self, path: str, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return lambda *a, **k: self.called.append(path)


def rpc_called_by(row: Row) -> list[str]:
    called: list[str] = []
    channel = _RecordingChannel(called)
    stubs = stubs_on({"registry": channel, "delegation": channel, "assistance": channel})
    named = SimpleNamespace(name="courts/gd0112/x/1")  # a created resource: rows read its name
    world = World(**{f.name: "courts/gd0112/x/1" if f.type == "str" else named for f in fields(World)})
    result = row.call(stubs, world, ())
    if inspect.iscoroutine(result):
        result.close()  # _visible: the stub was called while its arguments were built
    return called


def test_every_rpc_in_the_protos_has_one_row_in_the_matrix() -> None:
    rpcs = rpcs_in_the_protos()
    problems, covered = [], []
    for row in rows():
        try:
            called = rpc_called_by(row)
        except AttributeError as error:  # the stub has no such method: the protos lost it
            problems.append(f"row {row.method}: calls an RPC that is not in the protos ({error})")
            continue
        if len(called) != 1 or called[0].rsplit("/", 1)[1] != row.method:
            problems.append(f"row {row.method}: calls {called}, not one RPC of that name")
        covered += called
    problems += [f"{path}: no row in rows()" for path in sorted(rpcs - set(covered))]
    problems += [f"{path}: more than one row" for path in sorted({p for p in covered if covered.count(p) > 1})]
    assert rpcs, "no RPC found in the generated modules"
    assert not problems, "\n" + "\n".join(problems)
