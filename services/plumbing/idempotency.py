"""AIP-155 idempotency: one rule for every mutating RPC of every service.

A `request_id` is scoped to (caller, method, parent): `wrap_unary` (services/plumbing/rpc.py)
turns the request_id of every call into a `RequestKey` — a hash of the caller's name, the
method, the resource the call acts on or under (`parent`, else `name`) and the request_id —
with a fingerprint of the rest of the request. The write door (services/plumbing/unit_of_work.py,
`writer.run(work, request=key, …)`) records the key in `request_log`, in the write's own
transaction, with the resource it wrote. Then:

- the same caller sending the same request again gets the first answer: the resource the
  first call wrote, as it is now, and nothing is applied twice;
- the same caller sending a different request with that request_id gets ALREADY_EXISTS
  `REQUEST_ID_IN_USE`, and nothing changes;
- another caller, another method or another parent makes another key: another request, which
  never sees the first one's resource.

A call that failed wrote nothing, so its retry is decided afresh.
"""

from __future__ import annotations

import hashlib
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message

from registry.errors import FieldViolation, InvalidArgument
from services.plumbing.tables import RequestLogEntry

MAX_REQUEST_ID_LENGTH = 64
REQUEST_LOG = RequestLogEntry.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RequestKey:
    """A request_id in its scope, and what the request asked for."""

    request_id: str
    key: str  # request_log's primary key: 64 hex characters
    fingerprint: str  # the request without its request_id: 32 hex characters

    def log_row(self, resource: str) -> dict[str, Any]:
        return {"key": self.key, "fingerprint": self.fingerprint, "resource": resource, "created_at": datetime.now(UTC)}


def check_request_id(request_id: str) -> None:
    if len(request_id) > MAX_REQUEST_ID_LENGTH:
        raise InvalidArgument.of(
            [FieldViolation("request_id", f"at most {MAX_REQUEST_ID_LENGTH} characters (a UUID)", "TOO_LONG")]
        )


def key_of(caller: str, method: str, request: Message) -> RequestKey | None:
    """The request's key, or None when it carries no request_id (every call is then new)."""
    request_id = getattr(request, "request_id", "")
    if not request_id:
        return None
    target = getattr(request, "parent", "") or getattr(request, "name", "") or _updated_resource(request)
    body = type(request)()
    body.CopyFrom(request)
    body.ClearField("request_id")
    return scoped_key(caller, method, target, request_id, body.SerializeToString(deterministic=True))


def _updated_resource(request: Message) -> str:
    """An AIP-134 Update request names its resource inside it (`delegation.name`): its first field."""
    first = request.DESCRIPTOR.fields_by_number.get(1)
    if not request.DESCRIPTOR.name.startswith("Update") or first is None or first.message_type is None:
        return ""
    return str(getattr(getattr(request, first.name), "name", ""))


def scoped_key(caller: str, method: str, target: str, request_id: str, body: bytes) -> RequestKey:
    check_request_id(request_id)
    scope = "\x00".join((caller, method, target, request_id)).encode()
    return RequestKey(
        request_id,
        hashlib.blake2b(scope, digest_size=32).hexdigest(),
        hashlib.blake2b(body, digest_size=16).hexdigest(),
    )


_current: ContextVar[RequestKey | None] = ContextVar("rogatory_request_key", default=None)


def bind(key: RequestKey | None) -> None:
    """Set by wrap_unary for the call it runs (task-local)."""
    _current.set(key)


def current_request() -> RequestKey | None:
    """The key of the RPC being served; servicers hand it to the handler that writes."""
    return _current.get()
