"""The span attributes of a delegated matter, an assistance notice and a vehicle control, as an
event's payload carries them: the event catalog (services/contract/events.py) gives them to
the relay's and consumers' spans of each event about one, and the services set the same names
from the domain object on the calls' spans (services/delegation/tracing.py,
services/assistance/notice_tracing.py, services/assistance/vehicles/handlers.py), so every
span of one resource's trace says which resource it is about."""

from __future__ import annotations

from rogatory.assistance.v1 import assistance_pb2, vehicle_control_pb2
from rogatory.delegation.v1 import delegation_pb2 as pb

#: A delegated matter.
MATTER_NAME = "rogatory.delegation.name"
MATTER_ID = "rogatory.delegation.id"
MATTER_KIND = "rogatory.delegation.matter_kind"
CASE_NAME = "rogatory.case.name"
CASE_NUMBER = "rogatory.case.number"
REQUESTING_COURT = "rogatory.court.requesting"
ENTRUSTED_COURT = "rogatory.court.entrusted"
#: An assistance notice; COURT is also a vehicle control's.
NOTICE_NAME = "rogatory.assistance_notice.name"
NOTICE_KIND = "rogatory.assistance_notice.kind"
COURT = "rogatory.court"
AGENCY = "rogatory.agency"
#: A vehicle control.
VEHICLE_CONTROL_NAME = "rogatory.vehicle_control.name"


def _court_of(name: str) -> str:
    parts = name.split("/")  # courts/{court}/…
    return parts[1] if len(parts) > 1 else ""


def message_attributes(message: pb.Delegation) -> dict[str, str]:
    """The matter's span attributes, from the matter as an event carries it."""
    parts = message.name.split("/")  # courts/{requesting}/delegations/{id}
    return {
        MATTER_NAME: message.name,
        MATTER_ID: parts[-1],
        MATTER_KIND: pb.Delegation.MatterKind.Name(message.matter_kind),
        CASE_NAME: message.case,
        CASE_NUMBER: message.case_number,
        REQUESTING_COURT: _court_of(message.name),
        ENTRUSTED_COURT: message.entrusted_court.removeprefix("courts/"),
    }


def notice_message_attributes(message: assistance_pb2.AssistanceNotice) -> dict[str, str]:
    """The notice's span attributes, from the notice as an event carries it."""
    return {
        NOTICE_NAME: message.name,
        NOTICE_KIND: assistance_pb2.AssistanceNotice.Kind.Name(message.kind),
        CASE_NAME: message.case,
        COURT: _court_of(message.name),
        AGENCY: message.agency.removeprefix("agencies/"),
    }


def control_message_attributes(message: vehicle_control_pb2.VehicleControl) -> dict[str, str]:
    """The vehicle control's span attributes, from the control as an event carries it."""
    return {VEHICLE_CONTROL_NAME: message.name, CASE_NAME: message.case, COURT: _court_of(message.name)}
