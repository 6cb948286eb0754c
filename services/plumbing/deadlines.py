"""The deadline of the call being served, and a cut-off that holds waits on the database to it.

`rpc.wrap_unary` binds each call's gRPC deadline here (task-local, like `auth.bind`), less a
margin for the reply to reach the caller. Database calls and waits on a batch writer are then
cut off at `min(that deadline, the database's own statement timeout)`, so a hung database costs
a caller a clear status before its own deadline, never the whole deadline or more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar
from types import TracebackType

#: The reply needs time to travel: answer by the deadline less 10 % of the time the call had, at
#: most 250 ms (a 3 s deadline is answered by 2.75 s, a 100 ms one by 90 ms).
MARGIN_SHARE = 0.1
MAX_MARGIN = 0.25
#: After a cut-off, the clean-up it triggers (rolling back, closing a connection to a database that
#: does not answer) is cancelled again at this interval until the caller is free.
RECANCEL_SECONDS = 0.05

_deadline: ContextVar[float | None] = ContextVar("rogatory_deadline", default=None)


class DeadlineExceeded(Exception):
    """The call's deadline (less the margin) passed while it waited for the database: DEADLINE_EXCEEDED."""


def bind(remaining: float | None) -> None:
    """Sets the current call's deadline, `remaining` seconds from now (None: the call has none)."""
    if remaining is None:
        _deadline.set(None)
        return
    _deadline.set(asyncio.get_running_loop().time() + remaining - min(MAX_MARGIN, remaining * MARGIN_SHARE))


def unbind() -> None:
    """For a task that a call starts but that serves others too (a batch writer): no call's deadline."""
    _deadline.set(None)


def current() -> float | None:
    """The current call's deadline in event-loop time, or None."""
    return _deadline.get()


class CutOff:
    """`async with CutOff(at, expired):` — the block is cancelled at loop time `at` (None: never)
    and leaves with `expired()` instead of what the cancellation caused.

    Unlike `asyncio.timeout`, it cancels again every RECANCEL_SECONDS until the block is left:
    cancelling a statement on a connection that does not answer makes SQLAlchemy close that
    connection gracefully, which waits up to 2 s more for the silent server; the second
    cancellation makes it close at once. A cancellation from outside the block is not hidden.
    """

    __slots__ = ("_at", "_expired", "_task", "_handle", "_fired", "_cancelling")

    def __init__(self, at: float | None, expired: Callable[[], BaseException]):
        self._at = at
        self._expired = expired
        self._fired = 0
        self._handle: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> None:
        if self._at is None:
            return
        loop = asyncio.get_running_loop()
        if self._at <= loop.time():
            raise self._expired()
        task = asyncio.current_task()
        assert task is not None
        self._task, self._cancelling = task, task.cancelling()
        self._handle = loop.call_at(self._at, self._fire)

    def _fire(self) -> None:
        self._fired += 1
        self._task.cancel()
        self._handle = asyncio.get_running_loop().call_later(RECANCEL_SECONDS, self._fire)

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._handle is None:
            return
        self._handle.cancel()
        if not self._fired:
            return
        for _ in range(self._fired):  # each one was delivered: the task is suspended whenever a timer runs
            self._task.uncancel()
        if error is not None and self._task.cancelling() <= self._cancelling:
            raise self._expired() from error
