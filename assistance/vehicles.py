"""The vehicle watch list (布控): a court puts a debtor's vehicle under control, traffic police
look out for it, report sightings and the seizure, and the court takes it through storage,
inspection, valuation and auction listing.

Pure domain: each function takes the current `VehicleControl`, a command, who acts and the
time, and returns the next version with the domain events it records. Checks run in this
order (as in delegation.lifecycle): the actor, the arguments (every violation at once), the
etag (`expected_version`, Aborted), the state (FailedPrecondition).

States (only these functions change them):

    ACTIVE ─report_sighting→ SIGHTED ─report_sighting→ SIGHTED
    ACTIVE | SIGHTED ─report_seizure→ SEIZED ─record_step×4→ SEIZED (steps in order)
    ACTIVE | SIGHTED | SEIZED ─lift→ LIFTED             (the court)
    ACTIVE | SIGHTED | SEIZED ─close_for_case→ CASE_CLOSED (the case was closed)
    ACTIVE | SIGHTED ─expire→ EXPIRED                  (the control term ran out)

ACTIVE and SIGHTED are "on the watch list": the addressed agencies look for the vehicle and
may report on it. A seizure takes it off the list (the vehicle is in custody) and starts the
post-seizure target: storage, inspection, valuation and auction listing by the end of the
N-th working day after the seizure day (`VehicleControlPolicy.post_seizure_working_days`).

Times reported from outside (when a patrol saw or seized the vehicle, when it was stored…)
are when it happened, which may be earlier than the report; they may not lie in the future
(beyond `report_skew`, for clocks that disagree) nor before what they follow.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from assistance.plates import normalize_plate, normalize_vin, plate_kind, vin_problem
from delegation.calendar import CHINA_TZ, WorkingCalendar
from delegation.deadlines import add_months
from registry.access import check_case_access, check_case_name, court_id_of
from registry.agencies import AgencyCatalog, AgencyKind
from registry.courts import CourtCatalog
from registry.errors import (
    Aborted,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
    Violations,
    parse_enum,
)
from registry.text import check_text

MAX_TEXT = 500
MAX_SIGHTINGS = 200  # a vehicle seen this often is not hidden; keeps the document bounded
STATUTE_485 = "最高人民法院关于适用《中华人民共和国民事诉讼法》的解释 art. 485"


class ControlScope(StrEnum):
    """Who receives the watch list; names match rogatory.assistance.v1.VehicleControl.Scope."""

    REGION = "REGION"  # traffic police serving the court's region (GB/T 2260 containment)
    NATIONWIDE = "NATIONWIDE"  # every traffic-police agency


class ControlState(StrEnum):
    ACTIVE = "ACTIVE"
    SIGHTED = "SIGHTED"
    SEIZED = "SEIZED"
    LIFTED = "LIFTED"
    CASE_CLOSED = "CASE_CLOSED"
    EXPIRED = "EXPIRED"


ON_WATCH_LIST = frozenset({ControlState.ACTIVE, ControlState.SIGHTED})
ENDED = frozenset({ControlState.LIFTED, ControlState.CASE_CLOSED, ControlState.EXPIRED})


class PostSeizureStep(StrEnum):
    """In the order they must happen."""

    STORED = "STORED"  # 入库
    INSPECTED = "INSPECTED"  # 检验
    VALUED = "VALUED"  # 评估
    LISTED_FOR_AUCTION = "LISTED_FOR_AUCTION"  # 挂拍


STEP_ORDER: tuple[PostSeizureStep, ...] = tuple(PostSeizureStep)


class TargetStatus(StrEnum):
    ON_TRACK = "ON_TRACK"
    MET = "MET"  # listed for auction by the target
    MISSED = "MISSED"  # not listed by the target (listed late, or not yet)


class LiftReason(StrEnum):
    PAID = "PAID"  # the debt was paid or settled
    WRONG_VEHICLE = "WRONG_VEHICLE"  # not the debtor's, or entered in error
    OBJECTION_UPHELD = "OBJECTION_UPHELD"  # a third party's objection (案外人异议) succeeded
    NO_LONGER_NEEDED = "NO_LONGER_NEEDED"
    OTHER = "OTHER"


@dataclass(frozen=True)
class VehicleControlPolicy:
    """Configuration with its sources; the service reads it from the environment.

    - `term_months`: how long a control stays on the watch list. No rule for the watch list
      itself was found [unverified]; 24 months is the longest seizure term for movables
      (STATUTE_485: 查封、扣押动产的期限不得超过二年), which a control of a vehicle serves.
    - `post_seizure_working_days`: seizure → stored, inspected, valued, listed for auction.
      Five working days is what the seed article reports for 平阳县法院 (practice, not a
      statute) [unverified as a rule].
    - `report_skew`: how far in the future a reported time may lie (clocks disagree).
    """

    term_months: int = 24
    post_seizure_working_days: int = 5
    report_skew: timedelta = timedelta(minutes=5)
    tz: tzinfo = CHINA_TZ

    def __post_init__(self) -> None:
        if self.term_months < 1 or self.post_seizure_working_days < 1:
            raise ValueError("term_months and post_seizure_working_days must be at least 1")


def control_name(court_id: str, control_id: str) -> str:
    return f"courts/{court_id}/vehicleControls/{control_id}"


# --- the aggregate ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vehicle:
    plate: str = ""  # normalised, e.g. 浙C12345; "" when only the VIN is known
    vin: str = ""  # 17 characters; "" when only the plate is known
    description: str = ""  # make, model, colour: helps a patrol recognise it


@dataclass(frozen=True)
class Sighting:
    agency_id: str
    at: datetime  # when it was seen
    location: str
    note: str
    reported_at: datetime


@dataclass(frozen=True)
class Seizure:
    agency_id: str
    at: datetime  # when it was seized
    location: str
    custody: str  # where the vehicle is held (停车场…)
    note: str
    reported_at: datetime


@dataclass(frozen=True)
class StepRecord:
    step: PostSeizureStep
    at: datetime  # when it was done
    note: str
    recorded_at: datetime
    valuation_fen: int | None = None  # VALUED only


@dataclass(frozen=True)
class PostSeizureTarget:
    due: datetime  # last instant of the N-th working day after the seizure day
    status: TargetStatus = TargetStatus.ON_TRACK
    missed_at: datetime | None = None  # when the scanner (or a late listing) found it missed


@dataclass(frozen=True)
class VehicleControl:
    id: str
    court_id: str
    case_name: str
    debtor: str  # display name of a respondent of the case
    vehicle: Vehicle
    scope: ControlScope
    agency_ids: tuple[str, ...]  # the traffic police addressed, fixed at creation
    note: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    state: ControlState = ControlState.ACTIVE
    version: int = 1
    sightings: tuple[Sighting, ...] = ()
    seizure: Seizure | None = None
    steps: tuple[StepRecord, ...] = ()
    target: PostSeizureTarget | None = None
    ended_at: datetime | None = None
    end_reason: str = ""  # a LiftReason for LIFTED; the state says the rest
    end_note: str = ""

    @property
    def name(self) -> str:
        return control_name(self.court_id, self.id)

    @property
    def on_watch_list(self) -> bool:
        return self.state in ON_WATCH_LIST

    def step(self, step: PostSeizureStep) -> StepRecord | None:
        return next((s for s in self.steps if s.step is step), None)


# --- events ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ControlCreated:
    control: VehicleControl  # the agencies in `agency_ids` get it on their watch lists


@dataclass(frozen=True)
class VehicleSighted:
    control: VehicleControl
    sighting: Sighting


@dataclass(frozen=True)
class VehicleSeized:
    control: VehicleControl  # off the watch lists of every addressed agency


@dataclass(frozen=True)
class StepRecorded:
    control: VehicleControl
    record: StepRecord


@dataclass(frozen=True)
class TargetMissed:
    control: VehicleControl


@dataclass(frozen=True)
class ControlEnded:
    control: VehicleControl
    was_on_watch_list: bool  # the agencies must drop it


VehicleEvent = ControlCreated | VehicleSighted | VehicleSeized | StepRecorded | TargetMissed | ControlEnded
Result = tuple[VehicleControl, list[VehicleEvent]]


# --- creating ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFacts:
    """What the service knows of the case: its court, its respondents, whether it is closed."""

    court_id: str
    respondents: tuple[str, ...]
    closed: bool = False


@dataclass(frozen=True)
class CreateVehicleControl:
    parent: str  # courts/{court}
    case: str  # courts/{court}/cases/{case}
    debtor: str  # a respondent's display name
    plate: str = ""
    vin: str = ""
    description: str = ""
    scope: str = ""  # a ControlScope name; "" = REGION
    expire_time: datetime | None = None  # earlier than the policy's term, if the court wants
    note: str = ""


def create_control(
    command: CreateVehicleControl,
    courts: CourtCatalog,
    agencies: AgencyCatalog,
    case: CaseFacts | None,
    policy: VehicleControlPolicy,
    now: datetime,
    *,
    control_id: str,
) -> Result:
    """Validates the command and returns the control (ACTIVE) and its ControlCreated event.

    Raises InvalidArgument (every field at once), then PermissionDenied NOT_CASE_OWNER,
    FailedPrecondition CASE_NOT_REGISTERED / CASE_CLOSED / NO_TRAFFIC_POLICE_IN_REGION, and
    InvalidArgument NOT_A_RESPONDENT when the debtor is not a respondent of the case.
    """
    violations = Violations()
    court_id = court_id_of(command.parent, "parent", courts, violations)
    check_case_name(command.case, "vehicle_control.case", violations)
    debtor = command.debtor.strip()
    _text(debtor, "vehicle_control.debtor", violations, required=True)
    vehicle = _vehicle(command, violations)
    scope = (
        ControlScope.REGION if not command.scope else parse_enum(ControlScope, command.scope, "vehicle_control.scope", violations)
    )
    term_end = _end_of_day(add_months(now.astimezone(policy.tz).date(), policy.term_months), policy.tz)
    expires_at = _expiry(command.expire_time, now, term_end, violations)
    note = command.note.strip()
    _text(note, "vehicle_control.note", violations)
    violations.raise_if_any()
    assert court_id is not None and scope is not None
    check_case_access(court_id, command.case, case.court_id if case else None)
    assert case is not None
    if case.closed:
        raise FailedPrecondition(f"case {command.case} is closed", reason="CASE_CLOSED", metadata={"case": command.case})
    if debtor not in case.respondents:
        raise _not_a_respondent(debtor, command.case)
    agency_ids = addressed_agencies(court_id, scope, courts, agencies)
    control = VehicleControl(
        id=control_id,
        court_id=court_id,
        case_name=command.case,
        debtor=debtor,
        vehicle=vehicle,
        scope=scope,
        agency_ids=agency_ids,
        note=note,
        created_at=now,
        updated_at=now,
        expires_at=expires_at,
    )
    return control, [ControlCreated(control)]


def addressed_agencies(court_id: str, scope: ControlScope, courts: CourtCatalog, agencies: AgencyCatalog) -> tuple[str, ...]:
    """REGION: the traffic police whose area contains the court's GB/T 2260 region
    (`Agency.serves`: the county's own unit, the prefecture's 支队, the province's 总队 and the
    national 公安部交通管理局); NATIONWIDE: every traffic-police agency."""
    traffic = [AgencyKind.TRAFFIC_POLICE]
    if scope is ControlScope.NATIONWIDE:
        return tuple(sorted(a.id for a in agencies if a.kind is AgencyKind.TRAFFIC_POLICE))
    court = courts.get(court_id)
    division = court.division_code if court else ""
    found = agencies.serving(division, traffic) if division else []
    if not any(a.division_code for a in found):  # only national agencies, or a court without a region
        raise FailedPrecondition(
            f"no regional traffic police serve courts/{court_id}'s region {division or '(none)'}; ask for scope NATIONWIDE",
            reason="NO_TRAFFIC_POLICE_IN_REGION",
            metadata={"court": f"courts/{court_id}", "division_code": division},
        )
    return tuple(a.id for a in found)


def _vehicle(command: CreateVehicleControl, violations: Violations) -> Vehicle:
    plate = normalize_plate(command.plate)
    vin = normalize_vin(command.vin)
    if not plate and not vin:
        violations.add("vehicle_control.vehicle", "give the plate, the VIN or both", "REQUIRED")
    if plate and plate_kind(plate) is None:
        violations.add(
            "vehicle_control.vehicle.plate",
            f"{command.plate!r} is not a Chinese number plate (e.g. 浙C12345, new-energy 浙CD12345 or 浙C12345D)",
            "BAD_PLATE",
        )
    if vin and (problem := vin_problem(vin)):
        violations.add("vehicle_control.vehicle.vin", problem, "BAD_VIN")
    description = command.description.strip()
    _text(description, "vehicle_control.vehicle.description", violations)
    return Vehicle(plate, vin, description)


def _expiry(requested: datetime | None, now: datetime, term_end: datetime, violations: Violations) -> datetime:
    if requested is None:
        return term_end
    if requested <= now:
        violations.add("vehicle_control.expire_time", "must be in the future", "IN_THE_PAST")
    elif requested > term_end:
        violations.add("vehicle_control.expire_time", f"at most the control term, until {term_end.isoformat()}", "TOO_LATE")
    return requested


def _not_a_respondent(debtor: str, case_name: str) -> InvalidArgument:
    return InvalidArgument.of(
        [
            FieldViolation(
                "vehicle_control.debtor", f"{debtor!r} is not a respondent (被执行人) of {case_name}", "NOT_A_RESPONDENT"
            )
        ],
        reason="NOT_A_RESPONDENT",
    )


# --- agencies report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportSighting:
    at: datetime | None  # None: now
    location: str
    note: str = ""
    expected_version: int | None = None


@dataclass(frozen=True)
class ReportSeizure:
    at: datetime | None
    location: str
    custody: str
    note: str = ""
    expected_version: int | None = None


def report_sighting(
    control: VehicleControl, agency_id: str, command: ReportSighting, policy: VehicleControlPolicy, now: datetime
) -> Result:
    _check_addressed(control, agency_id)
    violations = Violations()
    at = _reported_time(command.at, control.created_at, now, policy, "sighting.observe_time", violations)
    location = command.location.strip()
    _text(location, "sighting.location", violations, required=True)
    note = command.note.strip()
    _text(note, "sighting.note", violations)
    violations.raise_if_any()
    _check_version(control, command.expected_version)
    _check_on_watch_list(control, "report a sighting")
    sighting = Sighting(agency_id, at, location, note, now)
    updated = _next(control, now, state=ControlState.SIGHTED, sightings=(*control.sightings, sighting)[-MAX_SIGHTINGS:])
    return updated, [VehicleSighted(updated, sighting)]


def report_seizure(
    control: VehicleControl,
    agency_id: str,
    command: ReportSeizure,
    policy: VehicleControlPolicy,
    calendar: WorkingCalendar,
    now: datetime,
) -> Result:
    _check_addressed(control, agency_id)
    violations = Violations()
    at = _reported_time(command.at, control.created_at, now, policy, "seizure.seize_time", violations)
    location, custody, note = command.location.strip(), command.custody.strip(), command.note.strip()
    _text(location, "seizure.location", violations, required=True)
    _text(custody, "seizure.custody", violations, required=True)
    _text(note, "seizure.note", violations)
    violations.raise_if_any()
    _check_version(control, command.expected_version)
    _check_on_watch_list(control, "report a seizure")
    seizure = Seizure(agency_id, at, location, custody, note, now)
    target = PostSeizureTarget(post_seizure_due(at, policy, calendar))
    updated = _next(control, now, state=ControlState.SEIZED, seizure=seizure, target=target)
    return updated, [VehicleSeized(updated)]


def post_seizure_due(seized_at: datetime, policy: VehicleControlPolicy, calendar: WorkingCalendar) -> datetime:
    """End of the N-th working day after the seizure day (CPL art. 85: the first day is not
    counted). A year without a holiday notice counts weekends only (the delegation
    deadlines mark such dates provisional; here the target is an internal goal)."""
    seize_day = seized_at.astimezone(policy.tz).date()
    due_day = calendar.with_weekend_fallback().add_working_days(seize_day, policy.post_seizure_working_days)
    return _end_of_day(due_day, policy.tz)


def _check_addressed(control: VehicleControl, agency_id: str) -> None:
    if agency_id not in control.agency_ids:
        raise PermissionDenied(
            f"agencies/{agency_id} is not addressed by {control.name}",
            reason="AGENCY_NOT_ADDRESSED",
            metadata={"vehicle_control": control.name, "agency": f"agencies/{agency_id}"},
        )


def _check_on_watch_list(control: VehicleControl, action: str) -> None:
    if not control.on_watch_list:
        raise FailedPrecondition(
            f"cannot {action} on {control.name}: it is {control.state}, no longer on the watch list",
            reason="NOT_ON_WATCH_LIST",
            metadata={"vehicle_control": control.name, "state": str(control.state)},
        )


def _reported_time(
    at: datetime | None, earliest: datetime, now: datetime, policy: VehicleControlPolicy, field: str, violations: Violations
) -> datetime:
    if at is None:
        return now
    if at > now + policy.report_skew:
        violations.add(field, "lies in the future", "IN_THE_FUTURE")
    elif at < earliest:
        violations.add(field, f"before {earliest.isoformat()}, which it must follow", "TOO_EARLY")
    return at


# --- the court after the seizure -------------------------------------------------------------


@dataclass(frozen=True)
class RecordStep:
    step: str  # a PostSeizureStep name
    at: datetime | None = None
    note: str = ""
    valuation_fen: int | None = None
    expected_version: int | None = None


def record_step(
    control: VehicleControl, court_id: str, command: RecordStep, policy: VehicleControlPolicy, now: datetime
) -> Result:
    """Records the next post-seizure step; LISTED_FOR_AUCTION settles the target (MET, or MISSED if late)."""
    _check_owner(control, court_id)
    violations = Violations()
    step = parse_enum(PostSeizureStep, command.step, "step", violations)
    at = command.at or now
    if command.at is not None and command.at > now + policy.report_skew:
        violations.add("complete_time", "lies in the future", "IN_THE_FUTURE")
    note = command.note.strip()
    _text(note, "note", violations)
    if step is PostSeizureStep.VALUED and (command.valuation_fen is None or command.valuation_fen <= 0):
        violations.add("valuation", "the appraised value is required and positive for VALUED", "REQUIRED")
    if step is not PostSeizureStep.VALUED and command.valuation_fen is not None:
        violations.add("valuation", "only for VALUED", "NOT_ALLOWED")
    violations.raise_if_any()
    assert step is not None
    _check_version(control, command.expected_version)
    if control.state is not ControlState.SEIZED or control.seizure is None or control.target is None:
        raise FailedPrecondition(
            f"{control.name} is {control.state}; post-seizure steps follow a seizure",
            reason="NOT_SEIZED",
            metadata={"vehicle_control": control.name, "state": str(control.state)},
        )
    expected = STEP_ORDER[len(control.steps)] if len(control.steps) < len(STEP_ORDER) else None
    if step is not expected:
        raise FailedPrecondition(
            f"{step} cannot be recorded now: " + (f"{expected} comes next" if expected else "every step is recorded"),
            reason="STEP_OUT_OF_ORDER",
            metadata={"vehicle_control": control.name, "step": str(step), "expected": str(expected or "")},
        )
    previous = control.steps[-1].at if control.steps else control.seizure.at
    if at < previous:
        raise FailedPrecondition(
            f"{step} at {at.isoformat()} is before the previous step ({previous.isoformat()})",
            reason="STEP_BEFORE_PREVIOUS",
            metadata={"vehicle_control": control.name, "step": str(step)},
        )
    record = StepRecord(step, at, note, now, command.valuation_fen)
    target = control.target
    if step is PostSeizureStep.LISTED_FOR_AUCTION and target.status is TargetStatus.ON_TRACK:
        target = (
            replace(target, status=TargetStatus.MET)
            if at <= target.due
            else replace(target, status=TargetStatus.MISSED, missed_at=now)
        )
    updated = _next(control, now, steps=(*control.steps, record), target=target)
    return updated, [StepRecorded(updated, record)]


def miss_target(control: VehicleControl, now: datetime) -> Result:
    """The scanner: a seized vehicle not listed for auction by the target. No event otherwise."""
    target = control.target
    if (
        control.state is not ControlState.SEIZED
        or target is None
        or target.status is not TargetStatus.ON_TRACK
        or now <= target.due
    ):
        return control, []
    updated = _next(control, now, target=replace(target, status=TargetStatus.MISSED, missed_at=now))
    return updated, [TargetMissed(updated)]


# --- ending ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiftControl:
    reason: str  # a LiftReason name
    note: str = ""
    expected_version: int | None = None


def lift(control: VehicleControl, court_id: str, command: LiftControl, now: datetime) -> Result:
    _check_owner(control, court_id)
    violations = Violations()
    reason = parse_enum(LiftReason, command.reason, "reason", violations)
    note = command.note.strip()
    _text(note, "note", violations, required=reason is LiftReason.OTHER)
    violations.raise_if_any()
    _check_version(control, command.expected_version)
    if control.state in ENDED:
        raise FailedPrecondition(
            f"{control.name} has already ended ({control.state})",
            reason="CONTROL_ENDED",
            metadata={"vehicle_control": control.name, "state": str(control.state)},
        )
    return _end(control, ControlState.LIFTED, now, str(reason), note)


def close_for_case(control: VehicleControl, now: datetime, note: str = "") -> Result:
    """The case was closed: every control of it that has not ended ends. Idempotent."""
    if control.state in ENDED:
        return control, []
    return _end(control, ControlState.CASE_CLOSED, now, "", note)


def expire(control: VehicleControl, now: datetime) -> Result:
    """The term ran out while the vehicle was still on the watch list. No-op otherwise:
    a seized vehicle is held under the seizure, whose term the court manages."""
    if not control.on_watch_list or now < control.expires_at:
        return control, []
    return _end(control, ControlState.EXPIRED, now, "", "")


def _end(control: VehicleControl, state: ControlState, now: datetime, reason: str, note: str) -> Result:
    updated = _next(control, now, state=state, ended_at=now, end_reason=reason, end_note=note)
    return updated, [ControlEnded(updated, was_on_watch_list=control.on_watch_list)]


# --- helpers --------------------------------------------------------------------------------------


def _check_owner(control: VehicleControl, court_id: str) -> None:
    if court_id != control.court_id:
        raise PermissionDenied(
            f"only courts/{control.court_id} may act on {control.name}",
            reason="NOT_CONTROLLING_COURT",
            metadata={"vehicle_control": control.name, "court": f"courts/{court_id}"},
        )


def _check_version(control: VehicleControl, expected: int | None) -> None:
    if expected is not None and expected != control.version:
        raise Aborted(
            f"{control.name} changed: it is at version {control.version}, the request expected {expected}",
            reason="VERSION_MISMATCH",
            metadata={"vehicle_control": control.name, "current_version": str(control.version)},
        )


def _next(control: VehicleControl, now: datetime, **changes: object) -> VehicleControl:
    return replace(control, version=control.version + 1, updated_at=now, **changes)  # type: ignore[arg-type]


def _text(value: str, field: str, violations: Violations, *, required: bool = False) -> None:
    check_text(value, field, violations, max_length=MAX_TEXT, required=required)


def _end_of_day(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time.max, tzinfo=tz)
