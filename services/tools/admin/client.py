"""The admin tool's gRPC client of the delegation service: credentials, paging, and finding
a matter from what an admin has at hand (a resource name, a bare id, a case or a case number).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import grpc
from rogatory.delegation.v1 import delegation_pb2 as pb
from rogatory.delegation.v1 import delegation_pb2_grpc

from registry.case_number import parse_case_number
from registry.cases import case_name
from registry.courts import CourtCatalog

DEFAULT_DELEGATION_ADDR = "127.0.0.1:50052"  # as `make run` (services/plumbing/config.py)
DEFAULT_CREDENTIAL = "admin:admin"
PAGE_SIZE = 500

_DELEGATION_NAME = re.compile(r"^courts/[^/]+/delegations/[^/]+$")
_CASE_NAME = re.compile(r"^courts/([^/]+)/cases/[^/]+$")
_DEV_TOKEN = re.compile(r"^(dev:)?(court|agency|admin):[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

OnPage = Callable[[int], None]  # told how many items a page brought


def bearer(credential: str) -> str:
    """`admin:ops`, `court:ha13` or a full `dev:admin:ops` token → the authorization value."""
    if not _DEV_TOKEN.match(credential):
        raise ValueError(f"credential {credential!r}: use admin:NAME, court:ID (or dev:admin:NAME, dev:court:ID)")
    return "Bearer " + (credential if credential.startswith("dev:") else f"dev:{credential}")


def looks_like_case_number(text: str) -> bool:
    """案号 carry brackets around the year and end in 号: （2023）浙0326执1234号."""
    return "号" in text or text.startswith(("(", "（"))


@dataclass(frozen=True)
class MatterQuery:
    """How `resolve` reads what the admin typed."""

    kind: str  # "name", "case", "id"
    value: str  # a delegation name, a case name or a bare delegation id


def matter_query(text: str, courts: CourtCatalog) -> MatterQuery:
    """A delegation name, a case name, a case number (案号, parsed against the court table)
    or a bare delegation id. InvalidArgument (registry.errors) for a malformed case number."""
    text = text.strip()
    if _DELEGATION_NAME.match(text):
        return MatterQuery("name", text)
    if _CASE_NAME.match(text):
        return MatterQuery("case", text)
    if looks_like_case_number(text):
        number = parse_case_number(text, courts)
        return MatterQuery("case", case_name(number.court_id, number.slug))
    return MatterQuery("id", text)


class AdminClient:
    """Reads from the delegation service as the given principal (async context manager)."""

    def __init__(self, address: str = DEFAULT_DELEGATION_ADDR, credential: str = DEFAULT_CREDENTIAL, page_size: int = PAGE_SIZE):
        self.address = address
        self.metadata = (("authorization", bearer(credential)),)
        self.page_size = page_size
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None

    async def __aenter__(self) -> AdminClient:
        self._channel = grpc.aio.insecure_channel(self.address)
        self._stub = delegation_pb2_grpc.DelegationServiceStub(self._channel)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._channel is not None:
            await self._channel.close()

    async def delegation(self, name: str) -> pb.Delegation:
        return await self._stub.GetDelegation(pb.GetDelegationRequest(name=name), metadata=self.metadata)

    async def timeline(self, name: str) -> pb.DelegationTimeline:
        return await self._stub.GetDelegationTimeline(pb.GetDelegationTimelineRequest(name=name), metadata=self.metadata)

    async def delegations(
        self, parent: str = "courts/-", filter_text: str = "", on_page: OnPage | None = None
    ) -> AsyncIterator[pb.Delegation]:
        """Every delegation under `parent` matching the filter, page after page."""
        token = ""
        while True:
            request = pb.ListDelegationsRequest(parent=parent, filter=filter_text, page_size=self.page_size, page_token=token)
            page = await self._stub.ListDelegations(request, metadata=self.metadata)
            if on_page:
                on_page(len(page.delegations))
            for delegation in page.delegations:
                yield delegation
            token = page.next_page_token
            if not token:
                return

    async def overdue(self, court: str, on_page: OnPage | None = None) -> list[pb.Delegation]:
        """Overdue matters entrusted to `court` (`courts/{id}`) or its subordinate courts, longest overdue first."""
        found: list[pb.Delegation] = []
        token = ""
        while True:
            request = pb.ListOverdueDelegationsRequest(parent=court, page_size=self.page_size, page_token=token)
            page = await self._stub.ListOverdueDelegations(request, metadata=self.metadata)
            found.extend(page.delegations)
            if on_page:
                on_page(len(page.delegations))
            token = page.next_page_token
            if not token:
                return found

    async def statistics(
        self, filter_text: str = "", group_by: tuple[str, ...] | list[str] = (), include_distributions: bool = False
    ) -> pb.TurnaroundStatistics:
        request = pb.GetTurnaroundStatisticsRequest(
            filter=filter_text, group_by=list(group_by), include_distributions=include_distributions
        )
        return await self._stub.GetTurnaroundStatistics(request, metadata=self.metadata)

    async def resolve(self, query: MatterQuery, on_page: OnPage | None = None) -> list[str]:
        """Delegation names for a matter query; [] when none is visible to the caller."""
        if query.kind == "name":
            return [query.value]
        if query.kind == "case":
            court = "courts/" + query.value.split("/")[1]
            filter_text = f'case = "{query.value}"'
            return [d.name async for d in self.delegations(court, filter_text, on_page)]
        # A bare id says nothing of its court: look through every matter the caller may see.
        suffix = f"/delegations/{query.value}"
        async for delegation in self.delegations("courts/-", "", on_page):
            if delegation.name.endswith(suffix):
                return [delegation.name]
        return []
