"""AIP-158 page tokens: opaque, bound to the request's parent and filter."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from registry.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument.of([FieldViolation("page_size", "must not be negative", "BAD_PAGE_SIZE")])
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _fingerprint(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:16]


def encode_token(query: str, cursor: Any) -> str:
    raw = json.dumps({"q": _fingerprint(query), "c": cursor}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, query: str) -> Any:
    """Returns the cursor, or None for the first page; a foreign token is INVALID_ARGUMENT."""
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data["q"] == _fingerprint(query):
            return data["c"]
    except (ValueError, KeyError, TypeError):
        pass
    raise InvalidArgument.of(
        [FieldViolation("page_token", "not a token of this list with this parent and filter", "BAD_PAGE_TOKEN")]
    )


def after_seq(token: str, fingerprint: str) -> int:
    """The `seq` a keyset page starts after: 0 for the first page."""
    after = decode_token(token, fingerprint) or 0
    if not isinstance(after, int) or after < 0:  # a forged token must not reach SQL as INTERNAL
        raise InvalidArgument.of([FieldViolation("page_token", "corrupt", "BAD_PAGE_TOKEN")])
    return after
