"""gRPC DelegationService: translates requests into handler calls and results into messages.

The caller comes from the credential (services/plumbing/auth.py), never from the request:
writes act as `calling_court()`, reads are filtered by `current_principal()`.
GetTurnaroundStatistics reads the turnaround read model (services/delegation/turnaround.py) from the
turnaround projector's database (projector.py);
ComputeDeadline counts on the deadline book every matter's deadlines use (calculator.py);
ListMatterKinds / GetMatterKind serve each kind's form from the validation tables (forms.py).
"""

from __future__ import annotations

from datetime import datetime

import grpc
from rogatory.delegation.v1 import delegation_pb2 as pb
from rogatory.delegation.v1 import delegation_pb2_grpc

from delegation import lifecycle
from delegation.matters import DelegationState, MatterKind
from registry.errors import NotFound
from services.delegation import calculator, forms
from services.delegation import messages as m
from services.delegation.handlers import DelegationHandlers
from services.delegation.store import DelegationQuery
from services.delegation.turnaround import turnaround_statistics
from services.plumbing.auth import calling_court, current_principal
from services.plumbing.fields import enum_name, parse_etag
from services.plumbing.filtering import enum_term, parse_filter
from services.plumbing.idempotency import current_request
from services.plumbing.names import parse_name, parse_parent
from services.plumbing.pagination import after_seq, bad_token, decode_token, encode_token, page_size
from services.plumbing.unit_of_work import Reader

DELEGATION_FILTERS = {"entrusted_court": str, "matter_kind": str, "state": str, "case": str}
DELEGATION_NAME = "courts/{court}/delegations/{delegation}"


class DelegationServicer(delegation_pb2_grpc.DelegationServiceServicer):
    def __init__(self, handlers: DelegationHandlers, turnaround: Reader):
        self.handlers = handlers
        self.turnaround = turnaround  # the turnaround projector's database (services/delegation/projector.py)

    # --- standard methods --------------------------------------------------------------------

    async def CreateDelegation(self, request: pb.CreateDelegationRequest, context: grpc.aio.ServicerContext) -> pb.Delegation:
        court_id = calling_court()
        parse_parent(request.parent)
        with m.proto_paths(m.create_paths(request)):
            stored = await self.handlers.create_delegation(
                m.create_command(request), court_id, current_request(), tuple(request.handed_over_seizures)
            )
        return m.stored_to_proto(stored)

    async def GetDelegation(self, request: pb.GetDelegationRequest, context: grpc.aio.ServicerContext) -> pb.Delegation:
        parse_name(request.name, DELEGATION_NAME)
        return m.stored_to_proto(await self.handlers.get_delegation(request.name, current_principal()))

    async def ListDelegations(
        self, request: pb.ListDelegationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDelegationsResponse:
        court_id = parse_name(request.parent, "courts/{court}", "parent")["court"]
        if court_id != "-" and court_id not in self.handlers.courts:
            raise NotFound("court", request.parent)
        principal = current_principal()
        query = _query(None if court_id == "-" else court_id, parse_filter(request.filter, DELEGATION_FILTERS))
        after = after_seq(request)
        limit = page_size(request.page_size)
        found = await self.handlers.list_delegations(query, after, limit + 1, principal)
        token = encode_token(request, found[limit - 1].seq) if len(found) > limit else ""
        return pb.ListDelegationsResponse(delegations=[m.stored_to_proto(s) for s in found[:limit]], next_page_token=token)

    # --- lifecycle (AIP-136 custom methods) -------------------------------------------------------

    async def AcknowledgeDelegation(
        self, request: pb.AcknowledgeDelegationRequest, context: grpc.aio.ServicerContext
    ) -> pb.Delegation:
        name, court_id = _target(request.name)
        with m.proto_paths(m.OFFICER_PATHS):
            stored = await self.handlers.acknowledge(name, court_id, m.acknowledge_command(request), current_request())
        return m.stored_to_proto(stored)

    async def StartDelegation(self, request: pb.StartDelegationRequest, context: grpc.aio.ServicerContext) -> pb.Delegation:
        name, court_id = _target(request.name)
        return m.stored_to_proto(await self.handlers.start(name, court_id, m.start_command(request), current_request()))

    async def CompleteDelegation(self, request: pb.CompleteDelegationRequest, context: grpc.aio.ServicerContext) -> pb.Delegation:
        name, court_id = _target(request.name)
        with m.proto_paths(m.COMPLETION_PATHS):
            stored = await self.handlers.complete(name, court_id, m.complete_command(request), current_request())
        return m.stored_to_proto(stored)

    async def ReturnDelegationForSupplement(
        self, request: pb.ReturnDelegationForSupplementRequest, context: grpc.aio.ServicerContext
    ) -> pb.Delegation:
        name, court_id = _target(request.name)
        command = m.return_for_supplement_command(request)
        with m.proto_paths(m.SUPPLEMENT_REQUEST_PATHS):
            stored = await self.handlers.return_for_supplement(name, court_id, command, current_request())
        return m.stored_to_proto(stored)

    async def SupplementDelegation(
        self, request: pb.SupplementDelegationRequest, context: grpc.aio.ServicerContext
    ) -> pb.Delegation:
        name, court_id = _target(request.name)
        return m.stored_to_proto(await self.handlers.supplement(name, court_id, m.supplement_command(request), current_request()))

    async def ReturnDelegation(self, request: pb.ReturnDelegationRequest, context: grpc.aio.ServicerContext) -> pb.Delegation:
        name, court_id = _target(request.name)
        stored = await self.handlers.return_delegation(name, court_id, m.return_command(request), current_request())
        return m.stored_to_proto(stored)

    async def WithdrawDelegation(self, request: pb.WithdrawDelegationRequest, context: grpc.aio.ServicerContext) -> pb.Delegation:
        name, court_id = _target(request.name)
        return m.stored_to_proto(await self.handlers.withdraw(name, court_id, m.withdraw_command(request), current_request()))

    async def UpdateDelegation(self, request: pb.UpdateDelegationRequest, context: grpc.aio.ServicerContext) -> pb.Delegation:
        name, court_id = _target(request.delegation.name)
        given = request.delegation
        officer = m.officer_from_proto(given.requesting_officer) if given.HasField("requesting_officer") else None
        paths = tuple(request.update_mask.paths)
        command = lifecycle.UpdateDelegation(paths, given.description, officer, parse_etag(given.etag))
        return m.stored_to_proto(await self.handlers.update(name, court_id, command, current_request()))

    async def UrgeDelegation(self, request: pb.UrgeDelegationRequest, context: grpc.aio.ServicerContext) -> pb.Delegation:
        name, court_id = _target(request.name)
        return m.stored_to_proto(await self.handlers.urge(name, court_id, request.note, current_request()))

    async def ExtendDelegationDeadline(
        self, request: pb.ExtendDelegationDeadlineRequest, context: grpc.aio.ServicerContext
    ) -> pb.Delegation:
        name, court_id = _target(request.name)
        step = enum_name(pb.Deadline.Step, request.step)
        stored = await self.handlers.extend_deadline(
            name, court_id, step, request.amount, request.unit, request.reason, current_request()
        )
        return m.stored_to_proto(stored)

    # --- supervision -----------------------------------------------------------------------------

    async def GetDelegationTimeline(
        self, request: pb.GetDelegationTimelineRequest, context: grpc.aio.ServicerContext
    ) -> pb.DelegationTimeline:
        parse_name(request.name, DELEGATION_NAME)
        stored, entries = await self.handlers.get_timeline(request.name, current_principal())
        submitted_at = stored.delegation.created_at
        calendar = self.handlers.elapsed_calendar
        return pb.DelegationTimeline(
            delegation=stored.delegation.name,
            entries=[m.entry_to_proto(e, submitted_at, calendar) for e in entries],
            deadlines=[m.deadline_to_proto(d) for d in stored.deadlines],
        )

    async def ListOverdueDelegations(
        self, request: pb.ListOverdueDelegationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListOverdueDelegationsResponse:
        court_id = parse_name(request.parent, "courts/{court}", "parent")["court"]
        principal = current_principal()
        after = _overdue_cursor(request)
        limit = page_size(request.page_size)
        found = await self.handlers.list_overdue(court_id, principal, after, limit + 1)
        token = ""
        if len(found) > limit:
            last, due = found[limit - 1]
            token = encode_token(request, [due.isoformat(), last.delegation.name])
        return pb.ListOverdueDelegationsResponse(
            delegations=[m.stored_to_proto(s) for s, _ in found[:limit]], next_page_token=token
        )

    async def GetTurnaroundStatistics(
        self, request: pb.GetTurnaroundStatisticsRequest, context: grpc.aio.ServicerContext
    ) -> pb.TurnaroundStatistics:
        current_principal()  # any authenticated court, agency or admin: aggregates only, no matter or party data
        return await turnaround_statistics(self.turnaround, request.filter, request.group_by, request.include_distributions)

    # --- the deadline calculator (stateless) -------------------------------------------------------

    async def ComputeDeadline(
        self, request: pb.ComputeDeadlineRequest, context: grpc.aio.ServicerContext
    ) -> pb.ComputeDeadlineResponse:
        current_principal()  # any authenticated court, agency or admin: public rules, no matter data
        return calculator.compute(request, self.handlers.book)

    # --- forms: the kinds of matter (reference data) -------------------------------------------------

    async def ListMatterKinds(
        self, request: pb.ListMatterKindsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListMatterKindsResponse:
        current_principal()  # reference data is for authenticated courts, agencies and admins
        return forms.list_matter_kinds(request, self.handlers.rules)

    async def GetMatterKind(self, request: pb.GetMatterKindRequest, context: grpc.aio.ServicerContext) -> pb.MatterKind:
        current_principal()  # reference data is for authenticated courts, agencies and admins
        return forms.get_matter_kind(request, self.handlers.rules)


def _target(name: str) -> tuple[str, str]:
    """The delegation a custom method acts on and the court that calls it."""
    court_id = calling_court()
    parse_name(name, DELEGATION_NAME)
    return name, court_id


def _overdue_cursor(request: pb.ListOverdueDelegationsRequest) -> tuple[datetime, str] | None:
    cursor = decode_token(request)
    if cursor is None:
        return None
    try:
        due, name = cursor
        return datetime.fromisoformat(due), str(name)
    except (TypeError, ValueError):  # signed by us, so never expected; still never INTERNAL
        raise bad_token("corrupt cursor") from None


def _query(requesting_court_id: str | None, terms: dict[str, str | int]) -> DelegationQuery:
    entrusted = terms.get("entrusted_court")
    return DelegationQuery(
        requesting_court_id=requesting_court_id,
        entrusted_court_id=parse_name(str(entrusted), "courts/{court}", "filter")["court"] if entrusted else None,
        matter_kind=enum_term(MatterKind, terms, "matter_kind"),
        state=enum_term(DelegationState, terms, "state"),
        case_name=str(terms["case"]) if "case" in terms else None,
    )
