"""The vehicle watch list (assistance/vehicles.py, assistance/plates.py): plates and VINs, who
receives a control, agency reports, post-seizure steps against the working-day target, endings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from assistance import vehicles as v
from assistance.plates import PlateKind, normalize_plate, plate_kind, vin_check_digit, vin_problem
from delegation.calendar import CHINA_TZ, WorkingCalendar
from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from registry.errors import Aborted, FailedPrecondition, InvalidArgument, PermissionDenied

# Mon 2023-09-25 09:00 CST: the 国庆 break (09-29..10-06, Sat 10-07 and Sun 10-08 worked) follows.
NOW = datetime(2023, 9, 25, 1, 0, tzinfo=UTC)
CASE = "courts/zj0326/cases/2023-enf-1234"
FACTS = v.CaseFacts("zj0326", ("张三", "温州某某贸易有限公司"))
POLICY = v.VehicleControlPolicy()
VIN = "LSVAU2180N218329" + "0"
VIN = VIN[:8] + vin_check_digit(VIN) + VIN[9:]
COMMAND = v.CreateVehicleControl(parent="courts/zj0326", case=CASE, debtor="张三", plate="浙C·12345", vin=VIN.lower())


@pytest.fixture(scope="module")
def courts() -> CourtCatalog:
    return CourtCatalog.default()


@pytest.fixture(scope="module")
def agencies() -> AgencyCatalog:
    return AgencyCatalog.default()


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return WorkingCalendar.default()


def create(
    courts: CourtCatalog, agencies: AgencyCatalog, command: v.CreateVehicleControl = COMMAND, facts: v.CaseFacts | None = FACTS
) -> v.Result:
    return v.create_control(command, courts, agencies, facts, POLICY, NOW, control_id="c1")


def violations(courts: CourtCatalog, agencies: AgencyCatalog, command: v.CreateVehicleControl) -> set[tuple[str, str]]:
    with pytest.raises(InvalidArgument) as raised:
        create(courts, agencies, command)
    return {(x.field, x.reason) for x in raised.value.violations}


# --- plates and VINs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("浙C12345", PlateKind.ORDINARY),
        ("浙c·a1b2c", PlateKind.ORDINARY),
        ("浙CD12345", PlateKind.NEW_ENERGY),  # small new-energy: D + 1 + 4 digits
        ("浙CFA1234", PlateKind.NEW_ENERGY),
        ("粤B12345D", PlateKind.NEW_ENERGY),  # large new-energy: 5 digits + D/F
        ("蒙A12345", PlateKind.ORDINARY),  # plates say 蒙 (courts say 内)
        ("浙C1234挂", PlateKind.SPECIAL_USE),
        ("粤Z1234港", PlateKind.SPECIAL_USE),
    ],
)
def test_valid_plates(text: str, kind: PlateKind) -> None:
    assert plate_kind(normalize_plate(text)) is kind


@pytest.mark.parametrize(
    "text", ["浙C1234", "浙CI2345", "浙CO2345", "内A12345", "黔A12345", "浙CX12345", "浙C123456", "C12345", "浙12345"]
)
def test_invalid_plates(text: str) -> None:
    assert plate_kind(normalize_plate(text)) is None


def test_vin_check_digit() -> None:
    assert vin_problem("1M8GDM9AXKP042788") is None  # the 49 CFR 565 worked example (check digit X)
    assert vin_problem(VIN) is None
    wrong = VIN[:8] + ("0" if VIN[8] != "0" else "1") + VIN[9:]
    assert "check digit" in (vin_problem(wrong) or "")
    assert "17" in (vin_problem(VIN[:16]) or "")
    assert "without I, O and Q" in (vin_problem("1M8GDM9AXKP04278O") or "")


# --- creating ---------------------------------------------------------------------------------------


def test_creates_an_active_control_for_the_regions_traffic_police(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    control, events = create(courts, agencies)
    assert control.name == "courts/zj0326/vehicleControls/c1"
    assert control.vehicle == v.Vehicle("浙C12345", VIN, "")
    assert control.state is v.ControlState.ACTIVE and control.version == 1
    # 平阳县 (330326): its county unit, Wenzhou's 支队 (330300) and the national bureau; not Hangzhou's.
    assert control.agency_ids == ("tp-330326", "tp-330300", "tp-mps")
    assert control.expires_at == datetime(2025, 9, 25, 23, 59, 59, 999999, tzinfo=CHINA_TZ)  # 24 months
    assert events == [v.ControlCreated(control)]


def test_nationwide_addresses_every_traffic_police_agency(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    control, _ = create(courts, agencies, replace(COMMAND, scope="NATIONWIDE"))
    assert "tp-440100" in control.agency_ids and "tp-330100" in control.agency_ids
    assert all(a.startswith("tp-") for a in control.agency_ids)


def test_every_bad_field_at_once(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    bad = v.CreateVehicleControl(parent="courts/nowhere", case="cases/1", debtor=" ", plate="浙C1234", vin="123", scope="MOON")
    assert violations(courts, agencies, bad) == {
        ("parent", "UNKNOWN_COURT"),
        ("vehicle_control.case", "RESOURCE_NAME"),
        ("vehicle_control.debtor", "REQUIRED"),
        ("vehicle_control.vehicle.plate", "BAD_PLATE"),
        ("vehicle_control.vehicle.vin", "BAD_VIN"),
        ("vehicle_control.scope", "BAD_VALUE"),
    }
    assert ("vehicle_control.vehicle", "REQUIRED") in violations(courts, agencies, replace(COMMAND, plate="", vin=""))


def test_plate_alone_or_vin_alone_is_enough(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    assert create(courts, agencies, replace(COMMAND, vin=""))[0].vehicle.vin == ""
    assert create(courts, agencies, replace(COMMAND, plate=""))[0].vehicle.plate == ""


def test_expire_time_within_the_term(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    soon = NOW + timedelta(days=90)
    assert create(courts, agencies, replace(COMMAND, expire_time=soon))[0].expires_at == soon
    assert ("vehicle_control.expire_time", "TOO_LATE") in violations(
        courts, agencies, replace(COMMAND, expire_time=NOW + timedelta(days=800))
    )
    assert ("vehicle_control.expire_time", "IN_THE_PAST") in violations(courts, agencies, replace(COMMAND, expire_time=NOW))


def test_only_the_cases_court_and_only_against_a_respondent(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    with pytest.raises(PermissionDenied) as raised:
        create(courts, agencies, replace(COMMAND, parent="courts/gd0112"))
    assert raised.value.reason == "NOT_CASE_OWNER"
    with pytest.raises(FailedPrecondition) as raised:
        create(courts, agencies, facts=None)
    assert raised.value.reason == "CASE_NOT_REGISTERED"
    with pytest.raises(FailedPrecondition) as raised:
        create(courts, agencies, facts=replace(FACTS, closed=True))
    assert raised.value.reason == "CASE_CLOSED"
    with pytest.raises(InvalidArgument) as raised:
        create(courts, agencies, replace(COMMAND, debtor="李四"))
    assert raised.value.reason == "NOT_A_RESPONDENT"


# --- agencies report -----------------------------------------------------------------------------


def seized(courts: CourtCatalog, agencies: AgencyCatalog, calendar: WorkingCalendar, at: datetime) -> v.VehicleControl:
    control, _ = create(courts, agencies)
    command = v.ReportSeizure(at=at, location="温州市鹿城区车站大道", custody="温州市法院涉案车辆停车场")
    return v.report_seizure(control, "tp-330300", command, POLICY, calendar, at)[0]


def test_sighting_then_seizure(courts: CourtCatalog, agencies: AgencyCatalog, calendar: WorkingCalendar) -> None:
    control, _ = create(courts, agencies)
    later = NOW + timedelta(days=1)
    sighted, events = v.report_sighting(control, "tp-330300", v.ReportSighting(at=None, location="104国道"), POLICY, later)
    assert sighted.state is v.ControlState.SIGHTED and sighted.version == 2
    assert events == [v.VehicleSighted(sighted, sighted.sightings[0])]
    assert sighted.sightings[0].at == later
    seize_at = NOW + timedelta(days=2)
    command = v.ReportSeizure(at=seize_at, location="鹿城区", custody="停车场", expected_version=2)
    after, events = v.report_seizure(sighted, "tp-330300", command, POLICY, calendar, seize_at + timedelta(hours=1))
    assert after.state is v.ControlState.SEIZED and not after.on_watch_list
    assert after.seizure is not None and after.seizure.at == seize_at
    assert events == [v.VehicleSeized(after)]
    with pytest.raises(FailedPrecondition) as raised:
        v.report_sighting(after, "tp-330300", v.ReportSighting(at=None, location="x"), POLICY, seize_at)
    assert raised.value.reason == "NOT_ON_WATCH_LIST"


def test_only_an_addressed_agency_reports(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    control, _ = create(courts, agencies)
    with pytest.raises(PermissionDenied) as raised:
        v.report_sighting(control, "tp-440100", v.ReportSighting(at=None, location="广州"), POLICY, NOW)
    assert raised.value.reason == "AGENCY_NOT_ADDRESSED"


def test_reported_times_checked(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    control, _ = create(courts, agencies)
    for at, reason in ((NOW + timedelta(hours=1), "IN_THE_FUTURE"), (NOW - timedelta(days=1), "TOO_EARLY")):
        with pytest.raises(InvalidArgument) as raised:
            v.report_sighting(control, "tp-330300", v.ReportSighting(at=at, location="x"), POLICY, NOW)
        assert {(x.field, x.reason) for x in raised.value.violations} == {("sighting.observe_time", reason)}
    with pytest.raises(Aborted):
        v.report_sighting(control, "tp-330300", v.ReportSighting(at=None, location="x", expected_version=7), POLICY, NOW)


def test_seizure_target_is_five_working_days_across_the_holiday(calendar: WorkingCalendar) -> None:
    # Seized Wed 2023-09-27: working days 09-28 (Thu), then 国庆 09-29..10-06, 10-07 (Sat, worked),
    # 10-08 (Sun, worked), 10-09 (Mon), 10-10 (Tue) → the 5th is Tue 10-10.
    due = v.post_seizure_due(datetime(2023, 9, 27, 14, 0, tzinfo=CHINA_TZ), POLICY, calendar)
    assert due == datetime(2023, 10, 10, 23, 59, 59, 999999, tzinfo=CHINA_TZ)
    # An ordinary week: seized Mon 2023-11-06 → Mon 11-13.
    assert v.post_seizure_due(datetime(2023, 11, 6, 10, tzinfo=CHINA_TZ), POLICY, calendar).date().isoformat() == "2023-11-13"


# --- post-seizure steps and the target --------------------------------------------------------


def test_steps_in_order_meet_the_target(courts: CourtCatalog, agencies: AgencyCatalog, calendar: WorkingCalendar) -> None:
    control = seized(courts, agencies, calendar, datetime(2023, 11, 6, 10, tzinfo=CHINA_TZ))
    at = datetime(2023, 11, 7, 9, tzinfo=CHINA_TZ)
    with pytest.raises(FailedPrecondition) as raised:
        v.record_step(control, "zj0326", v.RecordStep("VALUED", at, valuation_fen=1), POLICY, at)
    assert raised.value.reason == "STEP_OUT_OF_ORDER"
    for i, step in enumerate(v.STEP_ORDER):
        value = 8_500_000 if step is v.PostSeizureStep.VALUED else None
        control, events = v.record_step(
            control,
            "zj0326",
            v.RecordStep(str(step), at + timedelta(days=i), valuation_fen=value),
            POLICY,
            at + timedelta(days=i),
        )
        assert events == [v.StepRecorded(control, control.steps[-1])]
    assert [s.step for s in control.steps] == list(v.STEP_ORDER)
    assert control.target is not None and control.target.status is v.TargetStatus.MET
    assert control.step(v.PostSeizureStep.VALUED).valuation_fen == 8_500_000  # type: ignore[union-attr]
    with pytest.raises(FailedPrecondition):
        v.record_step(control, "zj0326", v.RecordStep("STORED", at), POLICY, at)


def test_step_rules(courts: CourtCatalog, agencies: AgencyCatalog, calendar: WorkingCalendar) -> None:
    control, _ = create(courts, agencies)
    with pytest.raises(FailedPrecondition) as raised:
        v.record_step(control, "zj0326", v.RecordStep("STORED"), POLICY, NOW)
    assert raised.value.reason == "NOT_SEIZED"
    seize_at = datetime(2023, 11, 6, 10, tzinfo=CHINA_TZ)
    control = seized(courts, agencies, calendar, seize_at)
    with pytest.raises(PermissionDenied):
        v.record_step(control, "zj03", v.RecordStep("STORED"), POLICY, seize_at)
    with pytest.raises(FailedPrecondition) as raised:
        v.record_step(control, "zj0326", v.RecordStep("STORED", seize_at - timedelta(hours=1)), POLICY, seize_at)
    assert raised.value.reason == "STEP_BEFORE_PREVIOUS"
    with pytest.raises(InvalidArgument) as raised:
        v.record_step(control, "zj0326", v.RecordStep("STORED", valuation_fen=5), POLICY, seize_at)
    assert {x.reason for x in raised.value.violations} == {"NOT_ALLOWED"}


def test_scanner_flags_a_missed_target_once(courts: CourtCatalog, agencies: AgencyCatalog, calendar: WorkingCalendar) -> None:
    control = seized(courts, agencies, calendar, datetime(2023, 11, 6, 10, tzinfo=CHINA_TZ))
    assert control.target is not None
    assert v.miss_target(control, control.target.due) == (control, [])  # the due instant is still in time
    late = control.target.due + timedelta(seconds=1)
    missed, events = v.miss_target(control, late)
    assert missed.target is not None and missed.target.status is v.TargetStatus.MISSED and missed.target.missed_at == late
    assert events == [v.TargetMissed(missed)]
    assert v.miss_target(missed, late + timedelta(days=1)) == (missed, [])


def test_listing_after_the_target_is_missed(courts: CourtCatalog, agencies: AgencyCatalog, calendar: WorkingCalendar) -> None:
    control = seized(courts, agencies, calendar, datetime(2023, 11, 6, 10, tzinfo=CHINA_TZ))
    at = datetime(2023, 11, 20, 9, tzinfo=CHINA_TZ)
    for step in v.STEP_ORDER:
        control, _ = v.record_step(
            control,
            "zj0326",
            v.RecordStep(str(step), at, valuation_fen=1 if step is v.PostSeizureStep.VALUED else None),
            POLICY,
            at,
        )
    assert control.target is not None and control.target.status is v.TargetStatus.MISSED


# --- endings -------------------------------------------------------------------------------------------


def test_lift_ends_the_control_and_tells_the_agencies(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    control, _ = create(courts, agencies)
    with pytest.raises(InvalidArgument):
        v.lift(control, "zj0326", v.LiftControl("OTHER"), NOW)  # OTHER needs a note
    lifted, events = v.lift(control, "zj0326", v.LiftControl("PAID", "已履行"), NOW)
    assert lifted.state is v.ControlState.LIFTED and lifted.end_reason == "PAID" and lifted.ended_at == NOW
    assert events == [v.ControlEnded(lifted, was_on_watch_list=True)]
    with pytest.raises(FailedPrecondition) as raised:
        v.lift(lifted, "zj0326", v.LiftControl("PAID"), NOW)
    assert raised.value.reason == "CONTROL_ENDED"
    with pytest.raises(PermissionDenied):
        v.lift(control, "gd0112", v.LiftControl("PAID"), NOW)


def test_case_closing_ends_seized_and_listed_controls(
    courts: CourtCatalog, agencies: AgencyCatalog, calendar: WorkingCalendar
) -> None:
    control, _ = create(courts, agencies)
    closed, events = v.close_for_case(control, NOW)
    assert closed.state is v.ControlState.CASE_CLOSED and events[0].was_on_watch_list  # type: ignore[union-attr]
    assert v.close_for_case(closed, NOW) == (closed, [])
    taken = seized(courts, agencies, calendar, NOW + timedelta(days=2))
    after, events = v.close_for_case(taken, NOW + timedelta(days=3))
    assert after.state is v.ControlState.CASE_CLOSED and events == [v.ControlEnded(after, was_on_watch_list=False)]


def test_expiry_only_on_the_watch_list(courts: CourtCatalog, agencies: AgencyCatalog, calendar: WorkingCalendar) -> None:
    control, _ = create(courts, agencies)
    assert v.expire(control, control.expires_at - timedelta(seconds=1)) == (control, [])
    expired, events = v.expire(control, control.expires_at)
    assert expired.state is v.ControlState.EXPIRED and events == [v.ControlEnded(expired, was_on_watch_list=True)]
    taken = seized(courts, agencies, calendar, NOW + timedelta(days=2))
    assert v.expire(taken, taken.expires_at + timedelta(days=1)) == (taken, [])
