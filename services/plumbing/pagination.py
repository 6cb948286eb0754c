"""AIP-158 page tokens: opaque, tamper-evident, bound to the list, the query and the caller.

A token is `base64url(JSON cursor) "." base64url(HMAC-SHA256)[:16 bytes]`. The MAC covers the
request type, every request field but `page_token` and `page_size` (so a token is only good
for the same List call with the same parent, filter, view, …), the caller and the cursor, under
the deployment's key (`ROGATORY_PAGE_TOKEN_KEY`, or one kept in the data directory:
services/plumbing/config.py). A token the service did not issue for this very query is
INVALID_ARGUMENT `BAD_PAGE_TOKEN` before its cursor is even read; cursors are range-checked
as well, so nothing a client sends reaches SQL as an out-of-range number.

Every List RPC of every service pages through this module: `page_size`, then `after_seq`
(keyset lists) or `decode_token` (other cursors), and `encode_token` for the next page;
`offset_page` does all of it for a fixed list of reference data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from typing import Any, TypeVar

from google.protobuf.message import Message

from registry.errors import FieldViolation, InvalidArgument
from services.plumbing import auth

T = TypeVar("T")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_TOKEN_LENGTH = 512  # ours are under 150 characters; longer is not worth decoding
MAX_SEQ = 2**63 - 1  # keyset cursors are BIGINT primary keys
_MAC_BYTES = 16
_UNPAGED_FIELDS = ("page_token", "page_size")

# The process's key: set once at start-up by the service host; a process that never sets it
# (a test serving a servicer directly) gets a random one, good for its own lifetime.
_key: bytes = b""


def configure(key: bytes) -> None:
    """Sets the key every token of this process is signed and checked with."""
    global _key  # noqa: PLW0603 - one key per process, like the process's telemetry providers
    _key = key


def _signing_key() -> bytes:
    global _key  # noqa: PLW0603
    if not _key:
        _key = secrets.token_bytes(32)
    return _key


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument.of([FieldViolation("page_size", "must not be negative", "BAD_PAGE_SIZE")])
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_token(request: Message, cursor: Any) -> str:
    """The next page's token for `request`'s query, resuming after `cursor` (JSON-able)."""
    payload = json.dumps(cursor, separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_mac(request, payload))}"


def decode_token(request: Message) -> Any:
    """The cursor of `request.page_token`, or None for the first page; BAD_PAGE_TOKEN for any
    token this deployment did not issue for this list, query and caller."""
    token: str = request.page_token  # type: ignore[attr-defined]
    if not token:
        return None
    if len(token) <= MAX_TOKEN_LENGTH and token.count(".") == 1:
        encoded_payload, encoded_mac = token.split(".")
        payload, mac = _unb64(encoded_payload), _unb64(encoded_mac)
        if payload is not None and mac is not None and hmac.compare_digest(mac, _mac(request, payload)):
            return json.loads(payload)  # ours: the MAC says so
    raise bad_token("not a page token of this list for this query and caller; start again without one")


def after_seq(request: Message) -> int:
    """The `seq` a keyset page starts after: 0 for the first page."""
    after = decode_token(request)
    if after is None:
        return 0
    if type(after) is not int or not 0 <= after <= MAX_SEQ:  # bool is an int: excluded on purpose
        raise bad_token("corrupt cursor")
    return after


def offset_page(items: Sequence[T], request: Message) -> tuple[Sequence[T], str]:
    """One page of a fixed list (reference data: an offset is stable) and the next page's token."""
    offset = after_seq(request)
    size = page_size(request.page_size)  # type: ignore[attr-defined]
    next_token = encode_token(request, offset + size) if offset + size < len(items) else ""
    return items[offset : offset + size], next_token


def bad_token(description: str) -> InvalidArgument:
    return InvalidArgument.of([FieldViolation("page_token", description, "BAD_PAGE_TOKEN")])


def _mac(request: Message, payload: bytes) -> bytes:
    query = type(request)()
    query.CopyFrom(request)
    for name in _UNPAGED_FIELDS:
        query.ClearField(name)
    mac = hmac.new(_signing_key(), digestmod=hashlib.sha256)
    for part in (request.DESCRIPTOR.full_name.encode(), _caller(), query.SerializeToString(deterministic=True), payload):
        mac.update(len(part).to_bytes(4, "big") + part)  # length-prefixed: no two inputs concatenate alike
    return mac.digest()[:_MAC_BYTES]


def _caller() -> bytes:
    return auth.current_principal().name.encode()  # every List RPC has a caller (else UNAUTHENTICATED)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
