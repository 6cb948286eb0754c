"""Domain errors → gRPC status with `google.rpc` details (AIP-193).

A DomainError becomes its status code with `ErrorInfo` (+ `BadRequest` field violations);
a database that cannot take the call becomes UNAVAILABLE (RESOURCE_EXHAUSTED when its disk
is full, DEADLINE_EXCEEDED when the call's deadline passed waiting for it); anything else is
logged with a reference id and becomes INTERNAL — never UNKNOWN, never a stack trace.
Applied to every handler by services/plumbing/rpc.py.
"""

from __future__ import annotations

import logging
from typing import Any

from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from registry.errors import (
    Aborted,
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)

log = logging.getLogger(__name__)
ERROR_DOMAIN = "rogatory.gov.cn"

_CODES: list[tuple[type[DomainError], int]] = [
    (InvalidArgument, code_pb2.INVALID_ARGUMENT),
    (NotFound, code_pb2.NOT_FOUND),
    (AlreadyExists, code_pb2.ALREADY_EXISTS),
    (FailedPrecondition, code_pb2.FAILED_PRECONDITION),
    (Aborted, code_pb2.ABORTED),
    (PermissionDenied, code_pb2.PERMISSION_DENIED),
    (Unauthenticated, code_pb2.UNAUTHENTICATED),
]


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


# The status travels in trailers, which gRPC clients refuse above 8 KiB by default (16 KiB
# hard); messages often echo the caller's value, which may be huge. So echoed text is clipped
# and BadRequest keeps the violations that fit a byte budget (ErrorInfo says how many were left
# out), keeping the whole status far below the limit whatever the request held.
MAX_MESSAGE_CHARS = 300
MAX_DETAIL_CHARS = 200
MAX_BAD_REQUEST_BYTES = 2500


def _clip(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bad_request(error: InvalidArgument, metadata: dict[str, str]) -> error_details_pb2.BadRequest:
    bad_request = error_details_pb2.BadRequest()
    for v in error.violations:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=_clip(v.field), description=_clip(v.description), reason=_clip(v.reason)
        )
        if bad_request.field_violations and bad_request.ByteSize() + violation.ByteSize() > MAX_BAD_REQUEST_BYTES:
            metadata["omitted_field_violations"] = str(len(error.violations) - len(bad_request.field_violations))
            break
        bad_request.field_violations.append(violation)
    return bad_request


def status_for(error: DomainError) -> status_pb2.Status:
    code = next((c for kind, c in _CODES if isinstance(error, kind)), code_pb2.FAILED_PRECONDITION)
    metadata = {_clip(k): _clip(v) for k, v in error.metadata.items()}
    bad_request = _bad_request(error, metadata) if isinstance(error, InvalidArgument) and error.violations else None
    details = [_pack(error_details_pb2.ErrorInfo(reason=_clip(error.reason), domain=ERROR_DOMAIN, metadata=metadata))]
    if bad_request is not None:
        details.append(_pack(bad_request))
    return status_pb2.Status(code=code, message=_clip(error.message, MAX_MESSAGE_CHARS), details=details)


def fault_status(code: int, reason: str, message: str) -> status_pb2.Status:
    """A failure of the service's infrastructure, not of the request (UNAVAILABLE, …)."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN)
    return status_pb2.Status(code=code, message=message, details=[_pack(info)])


def unavailable_status(reason: str, message: str) -> status_pb2.Status:
    return fault_status(code_pb2.UNAVAILABLE, reason, message)


def internal_status(reference: str) -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(reason="INTERNAL", domain=ERROR_DOMAIN, metadata={"reference": reference})
    return status_pb2.Status(code=code_pb2.INTERNAL, message=f"internal error; reference {reference}", details=[_pack(info)])
