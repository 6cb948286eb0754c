"""Translation between vehicle-control protobuf messages and the domain (assistance/vehicles.py)."""

from __future__ import annotations

from rogatory.assistance.v1 import vehicle_control_pb2 as pb

from assistance import vehicles as v
from services.plumbing.fields import enum_name, parse_etag
from services.plumbing.money import fen_of, money_from_fen
from services.plumbing.times import datetime_of, timestamp


def control_to_proto(c: v.VehicleControl, policy: v.VehicleControlPolicy | None = None) -> pb.VehicleControl:
    message = pb.VehicleControl(
        name=c.name,
        case=c.case_name,
        debtor=c.debtor,
        vehicle=pb.ControlledVehicle(plate=c.vehicle.plate, vin=c.vehicle.vin, description=c.vehicle.description),
        scope=pb.VehicleControl.Scope.Value(str(c.scope)),
        agencies=[f"agencies/{a}" for a in c.agency_ids],
        note=c.note,
        state=pb.VehicleControl.State.Value(str(c.state)),
        expire_time=timestamp(c.expires_at),
        sightings=[sighting_to_proto(s) for s in c.sightings],
        post_seizure_steps=[step_to_proto(s) for s in c.steps],
        end_reason=c.end_reason,
        end_note=c.end_note,
        create_time=timestamp(c.created_at),
        update_time=timestamp(c.updated_at),
        etag=f'W/"{c.version}"',
    )
    if c.seizure is not None:
        s = c.seizure
        message.seizure.CopyFrom(
            pb.VehicleSeizure(
                agency=f"agencies/{s.agency_id}",
                seize_time=timestamp(s.at),
                location=s.location,
                custody=s.custody,
                note=s.note,
                report_time=timestamp(s.reported_at),
            )
        )
    if c.target is not None:
        target = message.post_seizure_target
        target.due_time.CopyFrom(timestamp(c.target.due))
        target.working_days = (policy or v.VehicleControlPolicy()).post_seizure_working_days
        target.status = pb.PostSeizureTarget.Status.Value(str(c.target.status))
        if c.target.missed_at:
            target.miss_time.CopyFrom(timestamp(c.target.missed_at))
    if c.ended_at:
        message.end_time.CopyFrom(timestamp(c.ended_at))
    return message


def sighting_to_proto(s: v.Sighting) -> pb.VehicleSighting:
    return pb.VehicleSighting(
        agency=f"agencies/{s.agency_id}",
        observe_time=timestamp(s.at),
        location=s.location,
        note=s.note,
        report_time=timestamp(s.reported_at),
    )


def step_to_proto(s: v.StepRecord) -> pb.PostSeizureStepRecord:
    record = pb.PostSeizureStepRecord(
        step=pb.PostSeizureStep.Value(str(s.step)),
        complete_time=timestamp(s.at),
        note=s.note,
        record_time=timestamp(s.recorded_at),
    )
    if s.valuation_fen is not None:
        record.valuation.CopyFrom(money_from_fen(s.valuation_fen))
    return record


# --- requests → commands -------------------------------------------------------------------------


def create_command(request: pb.CreateVehicleControlRequest) -> v.CreateVehicleControl:
    c = request.vehicle_control
    return v.CreateVehicleControl(
        parent=request.parent,
        case=c.case,
        debtor=c.debtor,
        plate=c.vehicle.plate,
        vin=c.vehicle.vin,
        description=c.vehicle.description,
        scope=enum_name(pb.VehicleControl.Scope, c.scope),
        expire_time=datetime_of(c.expire_time, "vehicle_control.expire_time") if c.HasField("expire_time") else None,
        note=c.note,
    )


def sighting_command(request: pb.ReportVehicleSightingRequest) -> v.ReportSighting:
    s = request.sighting
    at = datetime_of(s.observe_time, "sighting.observe_time") if s.HasField("observe_time") else None
    return v.ReportSighting(at, s.location, s.note, parse_etag(request.etag))


def seizure_command(request: pb.ReportVehicleSeizureRequest) -> v.ReportSeizure:
    s = request.seizure
    at = datetime_of(s.seize_time, "seizure.seize_time") if s.HasField("seize_time") else None
    return v.ReportSeizure(at, s.location, s.custody, s.note, parse_etag(request.etag))


def step_command(request: pb.RecordPostSeizureStepRequest) -> v.RecordStep:
    at = datetime_of(request.complete_time, "complete_time") if request.HasField("complete_time") else None
    fen = fen_of(request.valuation, "valuation") if request.HasField("valuation") else None
    return v.RecordStep(enum_name(pb.PostSeizureStep, request.step), at, request.note, fen, parse_etag(request.etag))


def lift_command(request: pb.LiftVehicleControlRequest) -> v.LiftControl:
    return v.LiftControl(enum_name(pb.LiftVehicleControlRequest.Reason, request.reason), request.note, parse_etag(request.etag))
