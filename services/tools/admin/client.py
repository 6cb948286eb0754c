"""The admin tool's reads of the delegation service, through the Python client
(rogatory_client: the credential, deadlines, retries, typed errors): paging, and finding a
matter from what an admin has at hand (a resource name, a bare id, a case or a case number).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType

from rogatory.delegation.v1 import delegation_pb2 as pb
from rogatory.delegation.v1 import delegation_pb2_grpc

from registry.case_number import parse_case_number
from registry.cases import case_name
from registry.courts import CourtCatalog
from rogatory_client import AsyncClient, Credentials, Endpoints

DEFAULT_DELEGATION_ADDR = "127.0.0.1:50052"  # as `make run` (services/plumbing/config.py)
DEFAULT_CREDENTIAL = "admin:admin"
PAGE_SIZE = 500

_DELEGATION_NAME = re.compile(r"^courts/[^/]+/delegations/[^/]+$")
_CASE_NAME = re.compile(r"^courts/([^/]+)/cases/[^/]+$")

OnPage = Callable[[int], None]  # told how many items a page brought


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
    """Reads from the delegation service as the given principal (async context manager).
    `credential`: `admin:ops`, `court:ha13` or a full `dev:admin:ops` token (ValueError otherwise)."""

    def __init__(self, address: str = DEFAULT_DELEGATION_ADDR, credential: str = DEFAULT_CREDENTIAL, page_size: int = PAGE_SIZE):
        self.address = address
        self.credentials = Credentials.dev_token(credential)
        self.page_size = page_size
        self._rogatory: AsyncClient | None = None

    async def __aenter__(self) -> AdminClient:
        self._rogatory = AsyncClient(self.credentials, Endpoints(delegation=self.address))
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._rogatory is not None:
            await self._rogatory.close()

    @property
    def _stub(self) -> delegation_pb2_grpc.DelegationServiceAsyncStub:
        assert self._rogatory is not None, "use AdminClient as an async context manager"
        return self._rogatory.delegation

    async def delegation(self, name: str) -> pb.Delegation:
        return await self._stub.GetDelegation(pb.GetDelegationRequest(name=name))

    async def timeline(self, name: str) -> pb.DelegationTimeline:
        return await self._stub.GetDelegationTimeline(pb.GetDelegationTimelineRequest(name=name))

    async def delegations(
        self, parent: str = "courts/-", filter_text: str = "", on_page: OnPage | None = None
    ) -> AsyncIterator[pb.Delegation]:
        """Every delegation under `parent` matching the filter, page after page."""
        token = ""
        while True:
            request = pb.ListDelegationsRequest(parent=parent, filter=filter_text, page_size=self.page_size, page_token=token)
            page = await self._stub.ListDelegations(request)
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
            page = await self._stub.ListOverdueDelegations(request)
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
        return await self._stub.GetTurnaroundStatistics(request)

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
