"""The micro-batcher on plain Python functions: grouping, routing, limits and errors; and
the server options it is configured from."""

import asyncio
import threading

import pytest

from serving.batcher import MicroBatcher


class Recorder:
    """A batch function that blocks until released, so tests decide when batches run."""

    def __init__(self):
        self.batches = []
        self.release = threading.Event()

    def __call__(self, items):
        self.release.wait(10)
        self.batches.append(list(items))
        return [item * 10 for item in items]


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 20))


def test_concurrent_requests_share_batches_and_get_their_own_results():
    recorder = Recorder()
    batcher = MicroBatcher(recorder, max_batch_size=4, max_wait_ms=50)

    async def scenario():
        first = asyncio.ensure_future(batcher.submit([0]))
        await asyncio.sleep(0.2)  # the first batch is now running and blocked
        rest = [asyncio.ensure_future(batcher.submit([i, i + 100])) for i in range(1, 6)]
        await asyncio.sleep(0.1)
        recorder.release.set()
        return await first, await asyncio.gather(*rest)

    first, rest = run(scenario())
    assert first == [0]
    assert rest == [[i * 10, (i + 100) * 10] for i in range(1, 6)]
    assert recorder.batches[0] == [0]
    # Five two-image requests, at most four images a batch: three batches, not five calls.
    assert [len(batch) for batch in recorder.batches[1:]] == [4, 4, 2]


def test_a_request_larger_than_the_batch_runs_in_chunks_with_its_results_in_order():
    recorder = Recorder()
    recorder.release.set()
    batcher = MicroBatcher(recorder, max_batch_size=2, max_wait_ms=0)

    assert run(batcher.submit([1, 2, 3, 4, 5])) == [10, 20, 30, 40, 50]
    assert recorder.batches == [[1, 2], [3, 4], [5]]


def test_a_batch_holds_at_most_its_cost_and_a_costlier_item_runs_alone():
    recorder = Recorder()
    recorder.release.set()
    batcher = MicroBatcher(
        recorder, max_batch_size=8, max_wait_ms=0, max_batch_cost=10, cost=lambda item: item
    )

    assert run(batcher.submit([4, 5, 30, 1, 9])) == [40, 50, 300, 10, 90]
    assert recorder.batches == [[4, 5], [30], [1, 9]]


class Gate:
    """A batch function that runs one batch per `step()`, recording each batch."""

    def __init__(self):
        self.batches = []
        self.steps = threading.Semaphore(0)

    def __call__(self, items):
        assert self.steps.acquire(timeout=10)
        self.batches.append(list(items))
        return [item * 10 for item in items]

    async def step(self):
        done = len(self.batches)
        self.steps.release()
        while len(self.batches) == done:
            await asyncio.sleep(0.01)


def test_a_new_request_goes_before_the_rest_of_a_large_one_which_still_finishes():
    gate = Gate()
    batcher = MicroBatcher(gate, max_batch_size=2, max_wait_ms=0)

    async def scenario():
        large = asyncio.ensure_future(batcher.submit(list(range(100, 110))))
        await asyncio.sleep(0.05)  # its first chunk is running, held by the gate
        small = [asyncio.ensure_future(batcher.submit([index])) for index in (1, 2, 3, 4, 5)]
        await asyncio.sleep(0.05)
        while not large.done():
            await gate.step()
        return await large, await asyncio.gather(*small)

    large, small = run(scenario())
    assert large == [index * 10 for index in range(100, 110)]
    assert small == [[10], [20], [30], [40], [50]]
    # The small requests wait for the running chunk only, then take turns with the large one.
    assert gate.batches == [
        [100, 101],
        [1, 2],
        [102, 103],
        [3, 4],
        [104, 105],
        [5],
        [106, 107],
        [108, 109],
    ]


def test_a_full_batch_does_not_wait_for_max_wait():
    recorder = Recorder()
    recorder.release.set()
    batcher = MicroBatcher(recorder, max_batch_size=2, max_wait_ms=60_000)

    async def scenario():
        return await asyncio.gather(batcher.submit([1]), batcher.submit([2]))

    # With a one-minute max wait, only a full batch can finish within run()'s 20 s guard.
    assert run(scenario()) == [[10], [20]]
    assert recorder.batches == [[1, 2]]


def test_an_error_reaches_every_caller_of_that_batch_only():
    calls = []

    def flaky(items):
        calls.append(list(items))
        if len(calls) == 1:
            raise RuntimeError("device lost")
        return items

    batcher = MicroBatcher(flaky, max_batch_size=8, max_wait_ms=20)

    async def scenario():
        failed = await asyncio.gather(
            batcher.submit([1]), batcher.submit([2]), return_exceptions=True
        )
        return failed, await batcher.submit([3])

    failed, after = run(scenario())
    assert [str(error) for error in failed] == ["device lost", "device lost"]
    assert after == [3]


def test_a_batch_function_returning_the_wrong_count_is_an_error():
    batcher = MicroBatcher(lambda items: items[:-1], max_batch_size=4, max_wait_ms=0)
    with pytest.raises(RuntimeError, match="batch of 2 gave 1 results"):
        run(batcher.submit([1, 2]))


def test_a_caller_that_goes_away_does_not_disturb_the_others():
    recorder = Recorder()
    batcher = MicroBatcher(recorder, max_batch_size=4, max_wait_ms=20)

    async def scenario():
        gone = asyncio.ensure_future(batcher.submit([1]))
        kept = asyncio.ensure_future(batcher.submit([2]))
        await asyncio.sleep(0.1)
        gone.cancel()
        recorder.release.set()
        return await kept

    assert run(scenario()) == [20]


def test_empty_submission_needs_no_batch():
    batcher = MicroBatcher(Recorder(), max_batch_size=4)
    assert run(batcher.submit([])) == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"max_wait_ms": -1}, "max_wait_ms"),
        ({"max_batch_cost": 0}, "max_batch_cost"),
    ],
)
def test_invalid_settings_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        MicroBatcher(Recorder(), **kwargs)


def test_a_lone_client_never_waits_for_a_batch_to_fill():
    recorder = Recorder()
    recorder.release.set()
    batcher = MicroBatcher(recorder, max_batch_size=8, max_wait_ms=60_000)

    async def scenario():
        return [await batcher.submit([index]) for index in range(3)]

    # Waiting out the one-minute max wait even once would trip run()'s 20 s guard.
    assert run(scenario()) == [[0], [10], [20]]
    assert recorder.batches == [[0], [1], [2]]


def test_after_a_batch_of_four_the_next_waits_for_four():
    recorder = Recorder()
    recorder.release.set()
    batcher = MicroBatcher(recorder, max_batch_size=8, max_wait_ms=60_000)

    async def scenario():
        await batcher.submit([1, 2, 3, 4])  # one request of four rows sets the expectation
        pending = []
        for index in range(4):  # four one-row requests, arriving 50 ms apart
            pending.append(asyncio.ensure_future(batcher.submit([index])))
            await asyncio.sleep(0.05)
        return await asyncio.gather(*pending)

    assert run(scenario()) == [[0], [10], [20], [30]]
    assert recorder.batches == [[1, 2, 3, 4], [0, 1, 2, 3]]


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_instances", 0), ("max_body_mb", 0), ("max_batch_size", 0), ("poll_seconds", -1)],
)
def test_server_options_name_the_bad_field(field, value):
    from serving.options import ServingOptions

    with pytest.raises(ValueError, match=f"^{field}: must"):
        ServingOptions(serving_dir="/tmp/none", **{field: value})
