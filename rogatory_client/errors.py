"""Failed calls as typed exceptions, with the `google.rpc.Status` details the services send.

Every error a Rogatory service returns carries a `google.rpc.Status` in the
`grpc-status-details-bin` trailer (AIP-193): `ErrorInfo` (the `reason` to branch on, domain
`rogatory.gov.cn`, metadata) and, for INVALID_ARGUMENT, `BadRequest` with every bad field.
`error_from_rpc` turns a gRPC error into the exception of its code, with those details
unpacked:

    try:
        await rogatory.registry.CreateCase(request)
    except InvalidArgument as error:
        for violation in error.field_violations:
            print(violation.field, violation.reason, violation.description)
    except AlreadyExists as error:
        if error.reason == "REQUEST_ID_IN_USE": ...

Each exception is also a `grpc.aio.AioRpcError` (so a `grpc.RpcError`): code that catches
those, or calls `.code()` and `.details()`, keeps working.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2
from grpc import aio

STATUS_DETAILS_KEY = "grpc-status-details-bin"  # the wire name of the google.rpc.Status trailer


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request (`google.rpc.BadRequest.FieldViolation`)."""

    field: str  # a path into the request, e.g. `case.parties[1].id_number`
    reason: str  # e.g. `BAD_ID_NUMBER`
    description: str


@dataclass(frozen=True)
class ResourceInfo:
    """The resource an error is about (`google.rpc.ResourceInfo`)."""

    resource_type: str
    resource_name: str
    owner: str
    description: str


class RogatoryError(aio.AioRpcError):
    """A call a Rogatory service answered with an error (or that could not reach it).

    `code` is the gRPC status code; `reason`, `domain` and `metadata` come from `ErrorInfo`,
    `field_violations` from `BadRequest`, `resource_info` from `ResourceInfo`; `status` is
    the whole `google.rpc.Status` (an empty one when the answer carried none, e.g. a
    connection that failed before any service answered) and `status_details` its details, unpacked.
    """

    #: the gRPC code this class stands for (the base class takes any)
    CODE: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        status: status_pb2.Status | None = None,
        initial_metadata: aio.Metadata | None = None,
        trailing_metadata: aio.Metadata | None = None,
        debug_error_string: str | None = None,
    ) -> None:
        super().__init__(
            code, initial_metadata or aio.Metadata(), trailing_metadata or aio.Metadata(), message, debug_error_string
        )
        self.status = status if status is not None else status_pb2.Status(code=code.value[0], message=message)
        self.status_details = unpacked(self.status.details)
        info = next((d for d in self.status_details if isinstance(d, error_details_pb2.ErrorInfo)), None)
        self.reason: str = info.reason if info else ""
        self.domain: str = info.domain if info else ""
        self.metadata: Mapping[str, str] = dict(info.metadata) if info else {}
        self.field_violations: tuple[FieldViolation, ...] = tuple(
            FieldViolation(v.field, v.reason, v.description)
            for d in self.status_details
            if isinstance(d, error_details_pb2.BadRequest)
            for v in d.field_violations
        )
        self.resource_info: ResourceInfo | None = next(
            (
                ResourceInfo(d.resource_type, d.resource_name, d.owner, d.description)
                for d in self.status_details
                if isinstance(d, error_details_pb2.ResourceInfo)
            ),
            None,
        )

    @property
    def message(self) -> str:
        return self.details() or ""

    def __str__(self) -> str:
        text = f"{self.code().name}"
        if self.reason:
            text += f" {self.reason}"
        text += f": {self.message}"
        for violation in self.field_violations:
            text += f"\n  {violation.field}: {violation.reason} {violation.description}"
        return text


# One class per gRPC code, named as the code (AIP-193's canonical codes).
class Cancelled(RogatoryError):
    CODE = grpc.StatusCode.CANCELLED


class Unknown(RogatoryError):
    CODE = grpc.StatusCode.UNKNOWN


class InvalidArgument(RogatoryError):
    CODE = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(RogatoryError):
    CODE = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(RogatoryError):
    CODE = grpc.StatusCode.NOT_FOUND


class AlreadyExists(RogatoryError):
    CODE = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(RogatoryError):
    CODE = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(RogatoryError):
    CODE = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(RogatoryError):
    CODE = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(RogatoryError):
    CODE = grpc.StatusCode.ABORTED


class OutOfRange(RogatoryError):
    CODE = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(RogatoryError):
    CODE = grpc.StatusCode.UNIMPLEMENTED


class Internal(RogatoryError):
    CODE = grpc.StatusCode.INTERNAL


class Unavailable(RogatoryError):
    CODE = grpc.StatusCode.UNAVAILABLE


class DataLoss(RogatoryError):
    CODE = grpc.StatusCode.DATA_LOSS


class Unauthenticated(RogatoryError):
    CODE = grpc.StatusCode.UNAUTHENTICATED


ERROR_CLASSES: Mapping[grpc.StatusCode, type[RogatoryError]] = {
    cls.CODE: cls
    for cls in (
        Cancelled,
        Unknown,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Unimplemented,
        Internal,
        Unavailable,
        DataLoss,
        Unauthenticated,
    )
}

# The detail types google/rpc/error_details.proto defines, by their Any type name.
_DETAIL_TYPES: Mapping[str, type[Message]] = {
    t.DESCRIPTOR.full_name: t
    for t in (
        error_details_pb2.ErrorInfo,
        error_details_pb2.RetryInfo,
        error_details_pb2.DebugInfo,
        error_details_pb2.QuotaFailure,
        error_details_pb2.PreconditionFailure,
        error_details_pb2.BadRequest,
        error_details_pb2.RequestInfo,
        error_details_pb2.ResourceInfo,
        error_details_pb2.Help,
        error_details_pb2.LocalizedMessage,
    )
}


def unpacked(details: Iterable[any_pb2.Any]) -> tuple[Message, ...]:
    """The details of a Status as messages; one of a type this client does not know stays an Any."""
    out: list[Message] = []
    for detail in details:
        kind = _DETAIL_TYPES.get(detail.TypeName())
        message = kind() if kind else None
        out.append(message if message is not None and detail.Unpack(message) else detail)
    return tuple(out)


def status_of(error: grpc.RpcError | aio.AioRpcError) -> status_pb2.Status | None:
    """The `google.rpc.Status` an error carries in its trailer, or None (or an unreadable one)."""
    trailers = error.trailing_metadata() if isinstance(error, aio.AioRpcError | grpc.Call) else None
    for key, value in trailers or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except DecodeError:
                return None
    return None


def error_from_rpc(error: aio.AioRpcError) -> RogatoryError:
    """The typed exception for a failed call: the class of its code, with its details."""
    if isinstance(error, RogatoryError):
        return error
    code = error.code()
    cls = ERROR_CLASSES.get(code, Unknown)
    return cls(
        code,
        error.details() or "",
        status_of(error),
        initial_metadata=error.initial_metadata(),
        trailing_metadata=error.trailing_metadata(),
        debug_error_string=error.debug_error_string(),
    )
