"""gRPC VehicleControlService: translates requests into handler calls and results into messages.

The caller comes from the credential (services/plumbing/auth.py): courts create, lift and
record post-seizure steps as `calling_court()`; agencies report as `calling_agency`.
"""

from __future__ import annotations

import grpc
from rogatory.assistance.v1 import vehicle_control_pb2 as pb
from rogatory.assistance.v1 import vehicle_control_pb2_grpc

from assistance.plates import normalize_plate, normalize_vin
from assistance.vehicles import ControlState
from registry.courts import CourtCatalog
from registry.errors import NotFound, PermissionDenied
from services.assistance.vehicles import messages as m
from services.assistance.vehicles.handlers import VehicleControlHandlers
from services.assistance.vehicles.store import ControlQuery, StoredControl
from services.plumbing.auth import Principal, PrincipalKind, calling_court, current_principal
from services.plumbing.filtering import enum_term, parse_filter
from services.plumbing.idempotency import current_request
from services.plumbing.names import parse_name, parse_parent
from services.plumbing.pagination import after_seq, encode_token, page_size

CONTROL_NAME = "courts/{court}/vehicleControls/{vehicle_control}"
CONTROL_FILTERS = {"state": str, "case": str, "plate": str, "vin": str}


class VehicleControlServicer(vehicle_control_pb2_grpc.VehicleControlServiceServicer):
    def __init__(self, handlers: VehicleControlHandlers):
        self.handlers = handlers

    def _proto(self, stored: StoredControl) -> pb.VehicleControl:
        return m.control_to_proto(stored.control, self.handlers.policy)

    async def CreateVehicleControl(
        self, request: pb.CreateVehicleControlRequest, context: grpc.aio.ServicerContext
    ) -> pb.VehicleControl:
        court_id = calling_court()
        parse_parent(request.parent)
        return self._proto(await self.handlers.create(m.create_command(request), court_id, current_request()))

    async def GetVehicleControl(
        self, request: pb.GetVehicleControlRequest, context: grpc.aio.ServicerContext
    ) -> pb.VehicleControl:
        parse_name(request.name, CONTROL_NAME)
        return self._proto(await self.handlers.get(request.name, current_principal()))

    async def ListVehicleControls(
        self, request: pb.ListVehicleControlsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListVehicleControlsResponse:
        court_id = parse_name(request.parent, "courts/{court}", "parent")["court"]
        if court_id != "-" and court_id not in self.handlers.courts:
            raise NotFound("court", request.parent)
        terms = parse_filter(request.filter, CONTROL_FILTERS)
        query = _query(current_principal(), None if court_id == "-" else court_id, terms, self.handlers.courts)
        after = after_seq(request)
        limit = page_size(request.page_size)
        found = await self.handlers.list(query, after, limit + 1)
        token = encode_token(request, found[limit - 1].seq) if len(found) > limit else ""
        return pb.ListVehicleControlsResponse(vehicle_controls=[self._proto(s) for s in found[:limit]], next_page_token=token)

    async def LiftVehicleControl(
        self, request: pb.LiftVehicleControlRequest, context: grpc.aio.ServicerContext
    ) -> pb.VehicleControl:
        court_id = calling_court()
        parse_name(request.name, CONTROL_NAME)
        return self._proto(await self.handlers.lift(request.name, court_id, m.lift_command(request), current_request()))

    async def ReportVehicleSighting(
        self, request: pb.ReportVehicleSightingRequest, context: grpc.aio.ServicerContext
    ) -> pb.VehicleControl:
        agency_id = calling_agency()
        parse_name(request.name, CONTROL_NAME)
        stored = await self.handlers.report_sighting(request.name, agency_id, m.sighting_command(request), current_request())
        return self._proto(stored)

    async def ReportVehicleSeizure(
        self, request: pb.ReportVehicleSeizureRequest, context: grpc.aio.ServicerContext
    ) -> pb.VehicleControl:
        agency_id = calling_agency()
        parse_name(request.name, CONTROL_NAME)
        stored = await self.handlers.report_seizure(request.name, agency_id, m.seizure_command(request), current_request())
        return self._proto(stored)

    async def RecordPostSeizureStep(
        self, request: pb.RecordPostSeizureStepRequest, context: grpc.aio.ServicerContext
    ) -> pb.VehicleControl:
        court_id = calling_court()
        parse_name(request.name, CONTROL_NAME)
        stored = await self.handlers.record_step(request.name, court_id, m.step_command(request), current_request())
        return self._proto(stored)


def calling_agency() -> str:
    """The id of the calling agency; PERMISSION_DENIED for courts and admins."""
    principal = current_principal()
    if principal.kind is not PrincipalKind.AGENCY:
        raise PermissionDenied(f"{principal.name} is not an agency", reason="NOT_AN_AGENCY")
    return principal.id


def _query(principal: Principal, court_id: str | None, terms: dict[str, str | int], courts: CourtCatalog) -> ControlQuery:
    """What `principal` may list under `courts/{court_id}` (None: `courts/-`)."""
    agency_id = None
    if principal.kind is PrincipalKind.COURT:
        supervised = court_id is not None and principal.id in courts and courts.is_superior_of(principal.id, court_id)
        if court_id not in (None, principal.id) and not supervised:
            raise PermissionDenied(
                f"courts/{principal.id} may list only its own vehicle controls and those of the courts it supervises",
                reason="NOT_CONTROLLING_COURT",
                metadata={"parent": f"courts/{court_id}"},
            )
        court_id = court_id or principal.id
    elif principal.kind is PrincipalKind.AGENCY:
        agency_id = principal.id  # its watch list: addressed to it, on the list
    return ControlQuery(
        court_id=court_id,
        agency_id=agency_id,
        state=enum_term(ControlState, terms, "state"),
        case_name=str(terms["case"]) if "case" in terms else None,
        plate=normalize_plate(str(terms["plate"])) if "plate" in terms else None,
        vin=normalize_vin(str(terms["vin"])) if "vin" in terms else None,
    )
