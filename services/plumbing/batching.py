"""Coalescing concurrent requests into batches, served by one worker task.

Under load, many requests wait on the database at once. Serving them as one batch (one
transaction for writes, one `IN (…)` query for reads) costs one round trip and one
statement's overhead instead of one per request; with a single request in flight the
batch has one item and nothing waits longer than it would have anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from services.plumbing import deadlines

Item = TypeVar("Item")
Result = TypeVar("Result")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BatchWorker(Generic[Item, Result]):
    """Queues items; a worker task hands every queued item (up to `max_batch`) to `process`.

    With `concurrency` > 1, that many worker tasks take batches: one batch waiting on a slow
    database does not hold up the items queued behind it (PostgreSQL runs transactions side
    by side; SQLite has one writer, so its writers keep one)."""

    def __init__(self, name: str, *, max_batch: int = 256, concurrency: int = 1):
        self.name = name
        self.max_batch = max_batch
        self.concurrency = concurrency
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0
        self.batches = 0

    async def submit(self, item: Item) -> Result:
        self._tasks = [task for task in self._tasks if not task.done()]
        if len(self._tasks) < self.concurrency and self._busy == len(self._tasks):  # every worker busy (or none yet)
            self._tasks.append(asyncio.create_task(self._work_forever(), name=self.name))
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._wakeup.set()
        # A slow batch does not hold a caller past its deadline. A caller that leaves (cut off,
        # cancelled) cancels its future, so its item is dropped if its batch has not run it yet
        # (BatchWorker, unit_of_work): it is not written after the caller was told it failed.
        try:
            async with deadlines.CutOff(deadlines.current(), deadlines.DeadlineExceeded):
                return await future
        finally:
            future.cancel()  # no-op once it has its result

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _work_forever(self) -> None:
        deadlines.unbind()  # started by one caller, serves all: bounded by the database's own timeout
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._waiting:
                batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
                batch = [(item, future) for item, future in batch if not future.done()]  # callers cut off meanwhile
                if not batch:
                    continue
                if self._waiting:
                    self._wakeup.set()  # more than one batch waits: an idle worker takes the next
                self._busy += 1
                try:
                    await self.process(batch)
                except Exception as error:  # noqa: BLE001 - every waiter of the batch gets the failure
                    settle(batch, error=error)
                finally:
                    self._busy -= 1
                self.batches += 1

    async def process(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        raise NotImplementedError


def settle(batch: list[tuple[Item, asyncio.Future[Result]]], *, error: BaseException | None = None, value: object = None) -> None:
    for _, future in batch:
        if future.done():
            continue
        if error is None:
            future.set_result(value)  # type: ignore[arg-type]
        else:
            future.set_exception(error)


class BatchLoader(BatchWorker[K, V | None]):
    """`await loader.load(key)`; concurrent loads become one `load_many(keys)` call."""

    def __init__(self, name: str, load_many: Callable[[list[K]], Awaitable[dict[K, V]]], *, max_batch: int = 256):
        super().__init__(name, max_batch=max_batch)
        self.load_many = load_many

    async def load(self, key: K) -> V | None:
        return await self.submit(key)

    async def process(self, batch: list[tuple[K, asyncio.Future[V | None]]]) -> None:
        found = await self.load_many(list({key for key, _ in batch}))
        for key, future in batch:
            if not future.done():
                future.set_result(found.get(key))
