"""Domain errors → gRPC status with `google.rpc` details (AIP-193).

A DomainError becomes its status code with `ErrorInfo` (+ `BadRequest` field violations);
a lost database becomes UNAVAILABLE; anything else is logged with a reference id and
becomes INTERNAL — never UNKNOWN, never a stack trace. Applied to every handler by
services/plumbing/rpc.py.
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


def status_for(error: DomainError) -> status_pb2.Status:
    code = next((c for kind, c in _CODES if isinstance(error, kind)), code_pb2.FAILED_PRECONDITION)
    details = [_pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata))]
    if isinstance(error, InvalidArgument) and error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description, reason=v.reason)
                for v in error.violations
            ]
        )
        details.append(_pack(bad_request))
    return status_pb2.Status(code=code, message=error.message, details=details)


def unavailable_status(reason: str, message: str) -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN)
    return status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message, details=[_pack(info)])


def internal_status(reference: str) -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(reason="INTERNAL", domain=ERROR_DOMAIN, metadata={"reference": reference})
    return status_pb2.Status(code=code_pb2.INTERNAL, message=f"internal error; reference {reference}", details=[_pack(info)])
