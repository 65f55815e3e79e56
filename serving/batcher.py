"""Server-side micro-batching: concurrent requests share one model call, and a large request
cannot hold the others back.

KServe's Python server runs each request's `predict` on its own; for a convolutional network
one call on 8 images costs far less than 8 calls on one. The batcher queues the instances of
concurrent requests, runs them as one batch on one worker thread, and hands every request
its own slice of the results.

A batch is bounded twice: at most `max_batch_size` images, and at most `max_batch_cost`
work (the server counts pixels, since decoding and resizing dominate for large photos). A
request beyond either bound is cut into chunks that run one batch at a time, and a request
that has had no turn yet goes before the remaining chunks of one that has: a one-image
request waits for at most the chunk already running, not for a 64-photo request to end.
The partly served requests still get every other batch, so they cannot starve.

How long to wait for a batch to fill adapts to the load: the batcher expects as many rows as
its previous batch had, and waits at most `max_wait_ms` for them. A lone client therefore
never waits, while concurrent clients whose requests arrive a few milliseconds apart get
batches of that size, not a trickle of partial ones. Under steady load the model is never
idle: one batch fills while the previous one runs.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclasses.dataclass
class _Request(Generic[Item, Result]):
    chunks: collections.deque[list[Item]]
    future: asyncio.Future
    results: list[Result] = dataclasses.field(default_factory=list)


class MicroBatcher(Generic[Item, Result]):
    def __init__(
        self,
        run: Callable[[list[Item]], Sequence[Result]],
        max_batch_size: int = 8,
        max_wait_ms: float = 10.0,
        max_batch_cost: float = float("inf"),
        cost: Callable[[Item], float] = lambda item: 1,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size: must be at least 1, got {max_batch_size}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms: must not be negative, got {max_wait_ms}")
        if max_batch_cost <= 0:
            raise ValueError(f"max_batch_cost: must be positive, got {max_batch_cost}")
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.max_batch_cost = max_batch_cost
        self._run = run
        self._cost = cost
        # One thread: batches run one after another, and the next one fills meanwhile.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="micro-batch")
        self._waiting: collections.deque[_Request] = collections.deque()  # no turn yet
        self._started: collections.deque[_Request] = collections.deque()  # chunks left
        self._started_had_a_turn = False
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
        self._waiting.append(_Request(collections.deque(self._chunks(items)), future))
        self._arrived.set()
        return await future

    def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _chunks(self, items: list[Item]) -> list[list[Item]]:
        chunks: list[list[Item]] = [[]]
        cost = 0.0
        for item in items:
            item_cost = self._cost(item)
            if chunks[-1] and (
                len(chunks[-1]) == self.max_batch_size or cost + item_cost > self.max_batch_cost
            ):
                chunks.append([])
                cost = 0.0
            chunks[-1].append(item)
            cost += item_cost
        return chunks

    def _queued_rows(self) -> int:
        queued = (*self._waiting, *self._started)
        return sum(len(chunk) for request in queued for chunk in request.chunks)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not (self._waiting or self._started):
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
            if not batch:  # every queued client went away
                continue
            flat = [item for _, chunk in batch for item in chunk]
            self._expected_rows = len(flat)
            try:
                results = await loop.run_in_executor(self._executor, self._run, flat)
                if len(results) != len(flat):
                    raise RuntimeError(f"batch of {len(flat)} gave {len(results)} results")
            except Exception as error:  # every caller in the batch gets the same error
                for request, _ in batch:
                    if request in self._started:
                        self._started.remove(request)
                    if not request.future.done():
                        request.future.set_exception(error)
                continue
            start = 0
            for request, chunk in batch:
                request.results.extend(results[start : start + len(chunk)])
                start += len(chunk)
                if not request.chunks and not request.future.done():  # the client may be gone
                    request.future.set_result(request.results)

    def _take_batch(self) -> list[tuple[_Request, list[Item]]]:
        # Requests whose client has gone away are not run further.
        for queue in (self._waiting, self._started):
            for request in [request for request in queue if request.future.done()]:
                queue.remove(request)
        # Requests with no turn yet go first, except right after a batch that served no
        # request of several chunks: then the partly served go first, so they always finish.
        queues = [self._waiting, self._started]
        if self._started and not self._started_had_a_turn:
            queues.reverse()
        batch: list[tuple[_Request, list[Item]]] = []
        rows, cost, served_a_large_one = 0, 0.0, False
        for queue in queues:
            while queue:
                chunk_cost = sum(map(self._cost, queue[0].chunks[0]))
                too_big = (
                    rows + len(queue[0].chunks[0]) > self.max_batch_size
                    or cost + chunk_cost > self.max_batch_cost
                )
                if batch and too_big:
                    break
                request = queue.popleft()
                chunk = request.chunks.popleft()
                batch.append((request, chunk))
                rows, cost = rows + len(chunk), cost + chunk_cost
                served_a_large_one |= queue is self._started or bool(request.chunks)
        self._started.extend(request for request, _ in batch if request.chunks)
        self._started_had_a_turn = served_a_large_one
        return batch
