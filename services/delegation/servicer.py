"""gRPC DelegationService: translates requests into handler calls and results into messages."""

from __future__ import annotations

import grpc
from rogatory.delegation.v1 import delegation_pb2 as pb
from rogatory.delegation.v1 import delegation_pb2_grpc

from delegation.matters import DelegationState, MatterKind
from registry.errors import NotFound
from services.delegation.handlers import DelegationHandlers
from services.delegation.messages import create_command, delegation_to_proto
from services.delegation.store import DelegationQuery
from services.plumbing.filtering import enum_term, parse_filter
from services.plumbing.names import parse_name
from services.plumbing.pagination import after_seq, encode_token, page_size

DELEGATION_FILTERS = {"entrusted_court": str, "matter_kind": str, "state": str, "case": str}


class DelegationServicer(delegation_pb2_grpc.DelegationServiceServicer):
    def __init__(self, handlers: DelegationHandlers):
        self.handlers = handlers

    async def CreateDelegation(self, request: pb.CreateDelegationRequest, context: grpc.aio.ServicerContext) -> pb.Delegation:
        stored = await self.handlers.create_delegation(create_command(request), request.request_id)
        return delegation_to_proto(stored.delegation)

    async def GetDelegation(self, request: pb.GetDelegationRequest, context: grpc.aio.ServicerContext) -> pb.Delegation:
        parse_name(request.name, "courts/{court}/delegations/{delegation}")
        return delegation_to_proto((await self.handlers.get_delegation(request.name)).delegation)

    async def ListDelegations(
        self, request: pb.ListDelegationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDelegationsResponse:
        court_id = parse_name(request.parent, "courts/{court}", "parent")["court"]
        if court_id != "-" and court_id not in self.handlers.courts:
            raise NotFound("court", request.parent)
        query = _query(None if court_id == "-" else court_id, parse_filter(request.filter, DELEGATION_FILTERS))
        fingerprint = f"{request.parent}|{request.filter}"
        after = after_seq(request.page_token, fingerprint)
        limit = page_size(request.page_size)
        found = await self.handlers.list_delegations(query, after, limit + 1)
        token = encode_token(fingerprint, found[limit - 1].seq) if len(found) > limit else ""
        return pb.ListDelegationsResponse(
            delegations=[delegation_to_proto(s.delegation) for s in found[:limit]], next_page_token=token
        )


def _query(requesting_court_id: str | None, terms: dict[str, str | int]) -> DelegationQuery:
    entrusted = terms.get("entrusted_court")
    return DelegationQuery(
        requesting_court_id=requesting_court_id,
        entrusted_court_id=parse_name(str(entrusted), "courts/{court}", "filter")["court"] if entrusted else None,
        matter_kind=enum_term(MatterKind, terms, "matter_kind"),
        state=enum_term(DelegationState, terms, "state"),
        case_name=str(terms["case"]) if "case" in terms else None,
    )
