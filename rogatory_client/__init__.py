"""The Python client of Rogatory, for court systems, agencies and tools (rogatory_client/README.md).

Typed stubs of every service over channels that attach the credential, give each call a
deadline and a `request_id`, retry what is safe to retry, and raise typed exceptions with
the `google.rpc.Status` details. It imports the generated protobuf code (`rogatory.*`) and
nothing of the services (`make lint` checks it).
"""

from rogatory_client.client import AsyncClient, Client, Endpoints
from rogatory_client.credentials import Credentials
from rogatory_client.errors import (
    Aborted,
    AlreadyExists,
    Cancelled,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    Internal,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    ResourceInfo,
    RogatoryError,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
    error_from_rpc,
)
from rogatory_client.policy import DEFAULT_TIMEOUT, NO_RETRIES, RetryPolicy

__all__ = [
    "DEFAULT_TIMEOUT",
    "NO_RETRIES",
    "Aborted",
    "AlreadyExists",
    "AsyncClient",
    "Cancelled",
    "Client",
    "Credentials",
    "DataLoss",
    "DeadlineExceeded",
    "Endpoints",
    "FailedPrecondition",
    "FieldViolation",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "ResourceExhausted",
    "ResourceInfo",
    "RetryPolicy",
    "RogatoryError",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "error_from_rpc",
]
