"""The agency half of `make demo`, with the simulated agencies (services/tools/agency_simulator/)
playing a bank, the query network and the Wenzhou traffic police:

- the seed's freeze as an assistance notice to 中国工商银行, answered by the simulated
  bank desk; the freeze becomes a seizure with its one-year term;
- a property query (网络查控) of the debtor's deposits and online funds, fanned out to every
  agency that holds them and aggregated as the simulated agencies reply;
- scenario 1 of the article: 平阳县法院 puts a debtor's car under control, the traffic
  police find and seize it (two days later in the article; at once here, on the wall
  clock), the court is told, and the car is stored, inspected, valued and listed for
  auction within five working days.
"""

from __future__ import annotations

import asyncio

from google.protobuf.duration_pb2 import Duration
from google.type import money_pb2
from rogatory.assistance.v1 import assistance_pb2 as asst
from rogatory.assistance.v1 import property_query_pb2
from rogatory.assistance.v1 import vehicle_control_pb2 as vc
from rogatory.registry.v1 import registry_pb2 as rg

from registry.agencies import AgencyCatalog, AgencyKind
from rogatory_client import AsyncClient
from services.assistance.notice_examples import freeze_request as notice_freeze_request
from services.tools.agency_simulator.notice_desk import NoticeDesk
from services.tools.agency_simulator.query_responder import SimulatedQueryResponder
from services.tools.agency_simulator.traffic_police import TrafficPoliceSimulator

SEED_DEBTOR = "河南某建设工程有限公司"


async def freeze_at_the_bank(huangpu: AsyncClient, nats_url: str, case_name: str) -> None:
    desk = NoticeDesk(nats_url, huangpu.endpoints.assistance)
    await desk.start(["bank-icbc"])
    try:
        notice = await huangpu.assistance.CreateAssistanceNotice(notice_freeze_request("gd0112", case_name, SEED_DEBTOR))
        print(f"\nAssistance notice (freeze 7,000,000 元) to {notice.agency}: {notice.name}")
        answered = await desk.wait_for_answer(notice.name, timeout=30)
        result = answered.result
        print(
            f"  the simulated bank acknowledged and replied {asst.NoticeResult.Kind.Name(result.kind)}: {result.amount_fen / 100:,.2f} 元"
        )
        if answered.resulting_seizure:
            seizure = await huangpu.assistance.GetSeizure(asst.GetSeizureRequest(name=answered.resulting_seizure))
            print(f"  seizure {seizure.name} runs until {seizure.expire_time.ToDatetime():%Y-%m-%d} (deposits: 1 year)")
    finally:
        await desk.stop()


async def query_the_network(huangpu: AsyncClient, nats_url: str, case_name: str) -> None:
    holders = [a.id for a in AgencyCatalog.default() if a.kind in (AgencyKind.BANK, AgencyKind.ONLINE_PAYMENT)]
    responder = await SimulatedQueryResponder(nats_url, holders, seed=7).start()
    try:
        query = property_query_pb2.PropertyQuery(
            case=case_name,
            debtor=SEED_DEBTOR,
            categories=[property_query_pb2.DEPOSITS, property_query_pb2.ONLINE_FUNDS],
            response_window=Duration(seconds=60),
        )
        request = property_query_pb2.CreatePropertyQueryRequest(parent="courts/gd0112", property_query=query)
        created = await huangpu.property_queries.CreatePropertyQuery(request)
        print(f"\nProperty query {created.name}: sent to {created.agency_count} agencies")
        answer = await _until_complete(huangpu, created.name)
        found = [r for r in answer.agency_results if r.items]
        print(
            f"  {property_query_pb2.PropertyQuery.State.Name(answer.state)}: {len(answer.agency_results)} replies, {len(found)} with property"
        )
        for result in found[:3]:
            print(f"    {result.agency}: {len(result.items)} item(s)")
    finally:
        await responder.stop()


async def _until_complete(court: AsyncClient, name: str) -> property_query_pb2.PropertyQuery:
    for _ in range(300):
        query = await court.property_queries.GetPropertyQuery(property_query_pb2.GetPropertyQueryRequest(name=name))
        if query.state == property_query_pb2.PropertyQuery.COMPLETED:
            return query
        await asyncio.sleep(0.1)  # the simulated agencies answer within moments
    return query


def demo_plate(sequence: int) -> str:
    """A plate of its own for each demo run: a court controls a vehicle once at a time, and
    the seized car of an earlier run is still under control."""
    return f"浙C·A{sequence % 10_000:04d}"


async def control_and_seize_a_car(pingyang: AsyncClient, nats_url: str, sequence: int) -> None:
    plate = demo_plate(sequence)
    case = await pingyang.registry.CreateCase(pingyang_case(sequence))
    print(f"\nScenario 1: 平阳县人民法院 registered {case.case_number}")
    police = TrafficPoliceSimulator(nats_url, pingyang.endpoints.assistance, ["tp-330300"])
    await police.start()
    try:
        control = vc.VehicleControl(
            case=case.name, debtor="张三", vehicle=vc.ControlledVehicle(plate=plate, description="黑色轿车")
        )
        request = vc.CreateVehicleControlRequest(parent="courts/zj0326", vehicle_control=control)
        created = await pingyang.vehicle_controls.CreateVehicleControl(request)  # CASE_NOT_REGISTERED: retried by the client
        print(f"  car {plate} under control: {created.name}, watch list sent to {', '.join(created.agencies)}")
        await police.wait_for_plate(plate, timeout=30)
        seized = await police.find(plate, agency_id="tp-330300")
        print(f"  温州市公安局交通警察支队 (simulated) reported it seized: {vc.VehicleControl.State.Name(seized.state)}")
        notified = await pingyang.vehicle_controls.GetVehicleControl(vc.GetVehicleControlRequest(name=created.name))
        target = notified.post_seizure_target
        print(
            f"  the court sees it at once; auction listing due by {target.due_time.ToDatetime():%Y-%m-%d %H:%M} UTC (5 working days)"
        )
        for step in (vc.STORED, vc.INSPECTED, vc.VALUED, vc.LISTED_FOR_AUCTION):
            valuation = money_pb2.Money(currency_code="CNY", units=86_000) if step == vc.VALUED else None
            step_request = vc.RecordPostSeizureStepRequest(name=created.name, step=step, valuation=valuation)
            notified = await pingyang.vehicle_controls.RecordPostSeizureStep(step_request)
        status = vc.PostSeizureTarget.Status.Name(notified.post_seizure_target.status)
        print(f"  stored, inspected, valued and listed for auction: target {status}")
    finally:
        await police.stop()


def pingyang_case(sequence: int) -> rg.CreateCaseRequest:
    """平阳县法院's case; the client gives it its request_id."""
    return rg.CreateCaseRequest(
        parent="courts/zj0326",
        case=rg.Case(
            case_number=f"（2023）浙0326执{sequence}号",
            parties=[
                rg.Party(role=rg.Party.APPLICANT, kind=rg.Party.ORGANIZATION, display_name="平阳县某小额贷款股份有限公司"),
                rg.Party(role=rg.Party.RESPONDENT, kind=rg.Party.PERSON, display_name="张三", id_number="11010519491231002X"),
            ],
            amount_owed=money_pb2.Money(currency_code="CNY", units=286_000),
        ),
    )
