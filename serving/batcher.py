"""Server-side micro-batching: concurrent requests share one model call.

KServe's Python server runs each request's `predict` on its own; for a convolutional network
one call on 8 images costs far less than 8 calls on one. The batcher queues the instances of
concurrent requests, runs them as one batch of at most `max_batch_size` on one worker thread,
and hands every request its own slice of the results. A request larger than
`max_batch_size` runs as a batch of its own; it is never split.

How long to wait for a batch to fill adapts to the load: the batcher expects as many rows as
its previous batch had, and waits at most `max_wait_ms` for them. A lone client therefore
never waits, while concurrent clients whose requests arrive a few milliseconds apart get
batches of that size, not a trickle of partial ones. Under steady load the model is never
idle: one batch fills while the previous one runs.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class MicroBatcher(Generic[Item, Result]):
    def __init__(
        self,
        run: Callable[[list[Item]], Sequence[Result]],
        max_batch_size: int = 8,
        max_wait_ms: float = 10.0,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size: must be at least 1, got {max_batch_size}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms: must not be negative, got {max_wait_ms}")
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self._run = run
        # One thread: batches run one after another, and the next one fills meanwhile.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="micro-batch")
        self._pending: collections.deque[tuple[list[Item], asyncio.Future]] = collections.deque()
        self._arrived: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._expected_rows = 1

    async def submit(self, items: list[Item]) -> list[Result]:
        """The results for `items`, in order, computed together with concurrent submissions."""
        if not items:
            return []
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done():
            self._arrived = asyncio.Event()
            self._worker = loop.create_task(self._work())
        future = loop.create_future()
        self._pending.append((items, future))
        self._arrived.set()
        return await future

    def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _queued_rows(self) -> int:
        return sum(len(items) for items, _ in self._pending)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            deadline = loop.time() + self.max_wait
            while self._queued_rows() < min(self.max_batch_size, self._expected_rows):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    break
            batch = self._take_batch()
            flat = [item for items, _ in batch for item in items]
            self._expected_rows = len(flat)
            try:
                results = await loop.run_in_executor(self._executor, self._run, flat)
                if len(results) != len(flat):
                    raise RuntimeError(f"batch of {len(flat)} gave {len(results)} results")
            except Exception as error:  # every caller in the batch gets the same error
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            start = 0
            for items, future in batch:
                if not future.done():  # the client may have gone away
                    future.set_result(list(results[start : start + len(items)]))
                start += len(items)

    def _take_batch(self) -> list[tuple[list[Item], asyncio.Future]]:
        batch = [self._pending.popleft()]
        rows = len(batch[0][0])
        while self._pending and rows + len(self._pending[0][0]) <= self.max_batch_size:
            items_and_future = self._pending.popleft()
            rows += len(items_and_future[0])
            batch.append(items_and_future)
        return batch
