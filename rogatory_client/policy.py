"""What every call goes through: the credential, a deadline, a `request_id`, retries, typed errors.

It is one gRPC asyncio client interceptor on each of the client's channels, so the typed
stubs generated from the protos (`rogatory.*_pb2_grpc`) are the client's methods, and the
synchronous client (rogatory_client/_sync.py) runs the very same calls.

**Retries** are tenacity's `AsyncRetrying`, not gRPC's retry service config: gRPC's policy
can only match status codes, and here the reason decides — `FAILED_PRECONDITION`
`CASE_NOT_REGISTERED` (a case registered a moment ago is still on its way to the other
services) is worth retrying, `ABORTED` `VERSION_MISMATCH` (a stale `etag`) never is, since
sending it again unchanged fails the same way. tenacity gives the backoff with jitter, the
stop conditions and the retry log without a hand-written loop.

**A retry is the same request.** Every mutating RPC takes a `request_id` (AIP-155; docs/clients.md):
the client gives a request without one a fresh UUID once, before the first attempt, and
every retry sends those same bytes, so the service applies the change at most once and a
retry whose first attempt was written gets the resource it wrote. Reads carry no
`request_id` and are safe to retry as they are.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from grpc import aio
from tenacity import AsyncRetrying, before_sleep_log, retry_if_exception, stop_after_attempt, stop_before_delay
from tenacity.wait import wait_exponential_jitter

from rogatory_client.errors import RogatoryError, error_from_rpc

log = logging.getLogger("rogatory_client")

DEFAULT_TIMEOUT = 30.0  # seconds for a whole call, retries included, when the caller names none

RETRIED_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED})
# Reasons that decide against the code: retried although FAILED_PRECONDITION, or never although ABORTED.
RETRIED_REASONS = frozenset({"CASE_NOT_REGISTERED"})
NEVER_RETRIED_REASONS = frozenset({"VERSION_MISMATCH"})

Request = TypeVar("Request")
M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class RetryPolicy:
    """When and how often a failed call is sent again (always unchanged, `request_id` included).

    Attempts stop at `max_attempts` or when the next would start past the call's deadline.
    The waits grow from `initial_backoff` by `backoff_multiplier` up to `max_backoff`, plus up to
    `jitter` seconds at random, so many clients that failed together do not retry together.
    """

    max_attempts: int = 8
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    backoff_multiplier: float = 2.0
    jitter: float = 0.1
    codes: Collection[grpc.StatusCode] = field(default=RETRIED_CODES)
    reasons: Collection[str] = field(default=RETRIED_REASONS)
    never_reasons: Collection[str] = field(default=NEVER_RETRIED_REASONS)

    def retries(self, error: BaseException) -> bool:
        """Whether `error` is worth the same request again."""
        if not isinstance(error, RogatoryError) or error.reason in self.never_reasons:
            return False
        return error.code() in self.codes or error.reason in self.reasons

    def attempts(self, budget: float) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts) | stop_before_delay(budget),
            wait=wait_exponential_jitter(
                multiplier=self.initial_backoff, exp_base=self.backoff_multiplier, max=self.max_backoff, jitter=self.jitter
            ),
            retry=retry_if_exception(self.retries),
            before_sleep=before_sleep_log(log, logging.INFO),
            reraise=True,
        )


NO_RETRIES = RetryPolicy(max_attempts=1)


def with_request_id(request: M) -> M:
    """`request` with a fresh `request_id` if it has that field and it is empty; else `request` itself.
    The caller's message is never changed: it may be sent again on purpose, as a new request."""
    field = request.DESCRIPTOR.fields_by_name.get("request_id")  # every mutating RPC's (AIP-155)
    if field is None or getattr(request, field.name):
        return request
    copy = type(request)()
    copy.CopyFrom(request)
    setattr(copy, field.name, str(uuid.uuid4()))
    return copy


class CallPolicy(aio.UnaryUnaryClientInterceptor):
    """The interceptor: the credential's metadata, the default deadline, `request_id`, retries, typed errors."""

    def __init__(self, metadata: tuple[tuple[str, str], ...], timeout: float, retry: RetryPolicy) -> None:
        self.metadata = metadata
        self.timeout = timeout
        self.retry = retry

    async def intercept_unary_unary(
        self,
        continuation: Callable[[aio.ClientCallDetails, Request], Awaitable[aio.UnaryUnaryCall[Request, Any]]],
        client_call_details: aio.ClientCallDetails,
        request: Request,
    ) -> Any:
        sent = with_request_id(request) if isinstance(request, Message) else request
        metadata = self._with_credential(client_call_details.metadata)
        loop = asyncio.get_running_loop()
        budget = client_call_details.timeout if client_call_details.timeout is not None else self.timeout
        deadline = loop.time() + budget
        async for attempt in self.retry.attempts(budget):
            with attempt:
                details = aio.ClientCallDetails(
                    client_call_details.method,
                    max(deadline - loop.time(), 0.0),  # each attempt gets what is left of the call's deadline
                    metadata,
                    client_call_details.credentials,
                    client_call_details.wait_for_ready,
                )
                try:  # inner interceptors may fail the call before it returns (or as it does)
                    call = await continuation(details, sent)  # the same message, maybe with its request_id
                    return await call
                except aio.AioRpcError as error:
                    raise error_from_rpc(error) from None
        raise AssertionError("tenacity either returns, or re-raises the last error")

    def _with_credential(self, metadata: aio.Metadata | None) -> aio.Metadata:
        """The call's own metadata, with the client's credential unless the call names one itself
        (a test or a tool acting for several parties over one client)."""
        merged = aio.Metadata(*(metadata or ()))
        for key, value in self.metadata:
            if key not in merged.keys():
                merged.add(key, value)
        return merged
