"""gRPC RegistryService: translates requests into handler calls and results into messages."""

from __future__ import annotations

import grpc
from rogatory.registry.v1 import registry_pb2 as pb
from rogatory.registry.v1 import registry_pb2_grpc

from registry.agencies import Agency
from registry.case_number import EARLIEST_YEAR, parse_case_number, validate_case_number
from registry.courts import Court
from registry.errors import NotFound, PermissionDenied
from services.plumbing.auth import Principal, PrincipalKind, calling_court, current_principal
from services.plumbing.filtering import IntRange, parse_filter
from services.plumbing.idempotency import current_request
from services.plumbing.names import parse_name, parse_parent
from services.plumbing.pagination import after_seq, encode_token, offset_page, page_size
from services.registry.handlers import RegistryHandlers
from services.registry.messages import (
    agency_to_proto,
    case_number_parts,
    case_to_proto,
    close_command,
    court_to_proto,
    register_command,
)
from services.registry.store import CaseQuery

COURT_FILTERS = {"province": str, "level": str, "parent": str, "special_kind": str, "division_code": str}
AGENCY_FILTERS = {"kind": str, "scope": str, "division_code": str}
#: A case number's year has four digits and is 1949 or later (registry/case_number.py).
CASE_FILTERS = {"year": IntRange(EARLIEST_YEAR, 9999), "type_code": str, "party": str}


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    def __init__(self, handlers: RegistryHandlers):
        self.handlers = handlers
        self.courts = handlers.courts
        self.agencies = handlers.agencies

    async def GetCourt(self, request: pb.GetCourtRequest, context: grpc.aio.ServicerContext) -> pb.Court:
        current_principal()  # reference data is for authenticated courts, agencies and admins
        return court_to_proto(self._court(request.name))

    async def ListCourts(self, request: pb.ListCourtsRequest, context: grpc.aio.ServicerContext) -> pb.ListCourtsResponse:
        current_principal()  # reference data is for authenticated courts, agencies and admins
        terms = parse_filter(request.filter, COURT_FILTERS)
        matches = [c for c in self.courts if _court_matches(c, terms)]
        page, token = offset_page(matches, request)
        return pb.ListCourtsResponse(courts=[court_to_proto(c) for c in page], next_page_token=token, total_size=len(matches))

    async def ListCourtSuperiors(
        self, request: pb.ListCourtSuperiorsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListCourtSuperiorsResponse:
        current_principal()  # reference data is for authenticated courts, agencies and admins
        court = self._court(request.name)
        return pb.ListCourtSuperiorsResponse(courts=[court_to_proto(c) for c in self.courts.superiors(court.id)])

    async def GetAgency(self, request: pb.GetAgencyRequest, context: grpc.aio.ServicerContext) -> pb.Agency:
        current_principal()  # reference data is for authenticated courts, agencies and admins
        agency_id = parse_name(request.name, "agencies/{agency}")["agency"]
        agency = self.agencies.get(agency_id)
        if agency is None:
            raise NotFound("agency", request.name)
        return agency_to_proto(agency)

    async def ListAgencies(self, request: pb.ListAgenciesRequest, context: grpc.aio.ServicerContext) -> pb.ListAgenciesResponse:
        current_principal()  # reference data is for authenticated courts, agencies and admins
        terms = parse_filter(request.filter, AGENCY_FILTERS)
        matches = [a for a in self.agencies if _agency_matches(a, terms)]
        page, token = offset_page(matches, request)
        return pb.ListAgenciesResponse(
            agencies=[agency_to_proto(a) for a in page], next_page_token=token, total_size=len(matches)
        )

    async def CreateCase(self, request: pb.CreateCaseRequest, context: grpc.aio.ServicerContext) -> pb.Case:
        court_id = calling_court()  # a court registers its own cases; admins supervise, they do not act
        if parse_parent(request.parent) != court_id:
            raise PermissionDenied(
                f"courts/{court_id} cannot register cases for {request.parent}",
                reason="NOT_CASE_COURT",
                metadata={"parent": request.parent, "court": f"courts/{court_id}"},
            )
        view = await self.handlers.create_case(register_command(request), current_request())
        return case_to_proto(view)

    async def GetCase(self, request: pb.GetCaseRequest, context: grpc.aio.ServicerContext) -> pb.Case:
        owner = parse_name(request.name, "courts/{court}/cases/{case}")["court"]
        if not self._may_read_cases_of(current_principal(), owner):
            raise NotFound("case", request.name)  # whether another court's case exists is not revealed
        return case_to_proto(await self.handlers.get_case(request.name))

    async def ListCases(self, request: pb.ListCasesRequest, context: grpc.aio.ServicerContext) -> pb.ListCasesResponse:
        principal = current_principal()
        court_id = parse_name(request.parent, "courts/{court}", "parent")["court"]
        if court_id != "-":
            self._court(request.parent, field="parent")
        if not self._may_read_cases_of(principal, court_id):
            raise PermissionDenied(
                f"{principal.name} may not list the cases of {request.parent}",
                reason="NOT_SUPERVISING_COURT",
                metadata={"parent": request.parent, "caller": principal.name},
            )
        terms = parse_filter(request.filter, CASE_FILTERS)
        query = CaseQuery(
            court_id=None if court_id == "-" else court_id,
            year=terms.get("year"),  # type: ignore[arg-type]
            type_code=terms.get("type_code"),  # type: ignore[arg-type]
            party=terms.get("party"),  # type: ignore[arg-type]
        )
        limit = page_size(request.page_size)
        views = await self.handlers.list_cases(query, after_seq(request), limit + 1)
        token = encode_token(request, views[limit - 1].seq) if len(views) > limit else ""
        return pb.ListCasesResponse(cases=[case_to_proto(v) for v in views[:limit]], next_page_token=token)

    async def CloseCase(self, request: pb.CloseCaseRequest, context: grpc.aio.ServicerContext) -> pb.Case:
        court_id = calling_court()  # only the case's own court; the handler checks ownership
        parse_name(request.name, "courts/{court}/cases/{case}")
        return case_to_proto(await self.handlers.close_case(request.name, court_id, close_command(request), current_request()))

    async def ParseCaseNumber(
        self, request: pb.ParseCaseNumberRequest, context: grpc.aio.ServicerContext
    ) -> pb.ParseCaseNumberResponse:
        current_principal()  # reference data is for authenticated courts, agencies and admins
        violations = validate_case_number(request.case_number, self.courts)
        if violations:
            return pb.ParseCaseNumberResponse(
                valid=False,
                violations=[pb.ParseCaseNumberResponse.Violation(reason=v.reason, description=v.description) for v in violations],
            )
        number = parse_case_number(request.case_number, self.courts)
        return pb.ParseCaseNumberResponse(valid=True, parts=case_number_parts(number))

    def _may_read_cases_of(self, principal: Principal, court_id: str) -> bool:
        """A court's cases: the court itself, its superior courts and admins (`-`: admins only)."""
        if principal.kind is PrincipalKind.ADMIN:
            return True
        if principal.kind is not PrincipalKind.COURT or court_id == "-":
            return False
        return principal.id == court_id or (court_id in self.courts and self.courts.is_superior_of(principal.id, court_id))

    def _court(self, name: str, field: str = "name") -> Court:
        court_id = parse_name(name, "courts/{court}", field)["court"]
        court = self.courts.get(court_id)
        if court is None:
            raise NotFound("court", name)
        return court


def _court_matches(court: Court, terms: dict[str, str | int]) -> bool:
    values = {
        "province": court.province,
        "level": str(court.level),
        "parent": f"courts/{court.parent_id}" if court.parent_id else "",
        "special_kind": str(court.special_kind),
        "division_code": court.division_code,
    }
    return all(values[k] == v for k, v in terms.items())


def _agency_matches(agency: Agency, terms: dict[str, str | int]) -> bool:
    values = {"kind": str(agency.kind), "scope": str(agency.scope), "division_code": agency.division_code}
    return all(values[k] == v for k, v in terms.items())
