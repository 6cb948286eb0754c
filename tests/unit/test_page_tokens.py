"""Page tokens are signed, bound to their list, query and caller, and range-checked (issue 15 point 10)."""

from __future__ import annotations

import base64
import contextvars
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.registry.v1 import registry_pb2 as rg

from registry.errors import InvalidArgument
from services.plumbing import auth, pagination
from services.plumbing.auth import Principal, PrincipalKind
from services.plumbing.pagination import after_seq, decode_token, encode_token

COURT = Principal(PrincipalKind.COURT, "zj0326")
OTHER = Principal(PrincipalKind.COURT, "gd0112")


@pytest.fixture(autouse=True)
def fixed_key() -> Iterator[None]:
    pagination.configure(b"k" * 32)
    yield
    pagination.configure(b"")  # back to a random key of the process's own


def as_caller(principal: Principal, action: Callable[[], Any]) -> Any:
    """Runs `action` with `principal` bound in a context of its own, as an RPC does."""

    def run() -> Any:
        auth.bind(principal)
        return action()

    return contextvars.copy_context().run(run)


def refused(request: Any, principal: Principal = COURT, decode: Callable[[Any], Any] = decode_token) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        as_caller(principal, lambda: decode(request))
    assert [(v.field, v.reason) for v in caught.value.violations] == [("page_token", "BAD_PAGE_TOKEN")]
    assert caught.value.reason == "BAD_PAGE_TOKEN"
    return caught.value


def cases(token: str = "", **fields: Any) -> rg.ListCasesRequest:
    return rg.ListCasesRequest(parent="courts/zj0326", filter="year = 2023", page_token=token, **fields)


def token_for(request: Any, cursor: Any, principal: Principal = COURT) -> str:
    return as_caller(principal, lambda: encode_token(request, cursor))


def test_i15_p10_a_token_resumes_its_own_query_whatever_the_page_size() -> None:
    token = token_for(cases(), 41)
    assert as_caller(COURT, lambda: after_seq(cases(token, page_size=7))) == 41
    assert as_caller(COURT, lambda: decode_token(cases(""))) is None
    assert len(token) < 100


@pytest.mark.parametrize(
    "misuse",
    [
        lambda token: rg.ListCasesRequest(parent="courts/zj0326", filter="year = 2024", page_token=token),
        lambda token: rg.ListCasesRequest(parent="courts/-", filter="year = 2023", page_token=token),
        lambda token: dg.ListDelegationsRequest(parent="courts/zj0326", filter="year = 2023", page_token=token),
    ],
    ids=["other filter", "other parent", "other list"],
)
def test_i15_p10_a_token_is_refused_for_another_query_or_list(misuse: Callable[[str], Any]) -> None:
    refused(misuse(token_for(cases(), 41)))


def test_i15_p10_a_token_is_refused_for_another_caller_and_under_another_key() -> None:
    token = token_for(cases(), 41)
    refused(cases(token), OTHER)
    pagination.configure(b"o" * 32)
    refused(cases(token))


def test_i15_p10_a_tampered_cursor_is_refused() -> None:
    token = token_for(cases(), 41)
    payload, mac = token.split(".")
    forged = base64.urlsafe_b64encode(json.dumps(10**30).encode()).decode().rstrip("=")
    refused(cases(f"{forged}.{mac}"))
    refused(cases(token[:-1] + ("A" if token[-1] != "A" else "B")))


@pytest.mark.parametrize(
    "token",
    [
        # the unsigned shape the service accepted before: base64 of {"q": query hash, "c": cursor}
        base64.urlsafe_b64encode(b'{"q":"0000000000000000","c":1000000000000000000000000000000}').decode(),
        "true",
        "x" * 5000,
        "a.b.c",
        ".",
        "日本.語",
    ],
)
def test_i15_p10_tokens_the_service_did_not_issue_are_refused(token: str) -> None:
    refused(cases(token))


@pytest.mark.parametrize("cursor", [10**30, 2**63, -1, True, 1.5, "41", None, [1]])
def test_i15_p10_keyset_cursors_are_range_checked_even_when_signed(cursor: Any) -> None:
    request = cases(token_for(cases(), cursor))
    if cursor is None:  # a signed null cursor is the first page
        assert as_caller(COURT, lambda: after_seq(request)) == 0
        return
    refused(request, decode=after_seq)


def test_i15_p10_the_largest_bigint_is_a_valid_cursor() -> None:
    assert as_caller(COURT, lambda: after_seq(cases(token_for(cases(), 2**63 - 1)))) == 2**63 - 1
