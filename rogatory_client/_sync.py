"""The synchronous client runs the asynchronous one: one implementation of every call.

A `Client` owns an event loop on a thread of its own; its channels are `grpc.Channel`s whose
calls are the asyncio channel's calls (interceptor, retries and typed errors included), run on
that loop while the caller's thread waits. The generated stubs accept them as any channel,
so `Client.registry` is the typed synchronous `RegistryServiceStub`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar

import grpc
from grpc import aio

T = TypeVar("T")
Req = TypeVar("Req")
Resp = TypeVar("Resp")

if TYPE_CHECKING:
    _UnaryUnary = grpc.UnaryUnaryMultiCallable
else:  # generic in the type stubs only

    class _UnaryUnary(grpc.UnaryUnaryMultiCallable, Generic[Req, Resp]):
        pass


class LoopThread:
    """An asyncio event loop on a daemon thread; `run` waits for a coroutine on it."""

    def __init__(self, name: str = "rogatory-client") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl-C in the caller's thread ends the call too
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class SyncUnaryUnary(_UnaryUnary[Req, Resp]):
    """A unary method of an asyncio channel, called synchronously."""

    def __init__(self, loop: LoopThread, method: aio.UnaryUnaryMultiCallable[Req, Resp]) -> None:
        self._loop = loop
        self._method = method

    def __call__(
        self,
        request: Req,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Resp:
        async def call() -> Resp:  # the call object must be made on the loop's thread
            return await self._method(
                request,
                timeout=timeout,
                metadata=metadata,
                credentials=credentials,
                wait_for_ready=wait_for_ready,
                compression=compression,
            )

        return self._loop.run(call())

    def with_call(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError("the Rogatory client returns the response; use the asynchronous client for the call object")

    def future(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError("the Rogatory client returns the response; use the asynchronous client for futures")


class SyncChannel(grpc.Channel):
    """A `grpc.Channel` over an asyncio channel (unary methods: every Rogatory RPC is unary)."""

    def __init__(self, loop: LoopThread, channel: aio.Channel) -> None:
        self._loop = loop
        self._channel = channel

    def unary_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool = False,
    ) -> SyncUnaryUnary[Any, Any]:
        return SyncUnaryUnary(self._loop, self._channel.unary_unary(method, request_serializer, response_deserializer))

    def unary_stream(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError("Rogatory has no streaming RPCs")

    def stream_unary(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError("Rogatory has no streaming RPCs")

    def stream_stream(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError("Rogatory has no streaming RPCs")

    def subscribe(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError("connectivity is the asynchronous channel's")

    def unsubscribe(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError("connectivity is the asynchronous channel's")

    def close(self) -> None:
        """The client closes the asyncio channel (`Client.close`)."""
