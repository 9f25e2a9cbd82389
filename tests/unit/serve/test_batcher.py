"""The dynamic batcher: concurrent requests share one inference, the queue is bounded, a failure stays local."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from lmtailor.serve.batcher import Batcher, Overloaded


class Recorder:
    """An `infer` that answers each text with its upper-case form and remembers every batch it was given."""

    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.delay, self.fail_on = delay, fail_on
        self.lock = threading.Lock()

    def __call__(self, texts: list[str]) -> list[str]:
        with self.lock:
            self.batches.append(list(texts))
        time.sleep(self.delay)
        if self.fail_on in texts:
            raise RuntimeError("model broke")
        return [t.upper() for t in texts]


def _run(coro):
    return asyncio.run(coro)


def _batcher(infer, **kw) -> Batcher:
    settings = {"max_batch": 8, "max_wait_s": 0.05, "max_queue": 64, **kw}
    return Batcher(infer, ThreadPoolExecutor(1), observe=None, **settings)


def test_concurrent_requests_share_one_inference_and_get_their_own_answers():
    infer = Recorder()

    async def main():
        b = _batcher(infer)
        b.start()
        answers = await asyncio.gather(b.submit(["a", "b"]), b.submit(["c"]), b.submit(["d", "e", "f"]))
        await b.stop()
        return answers

    assert _run(main()) == [["A", "B"], ["C"], ["D", "E", "F"]]
    assert infer.batches == [["a", "b", "c", "d", "e", "f"]]


def test_a_batch_closes_at_max_batch_texts_without_splitting_a_request():
    infer = Recorder()

    async def main():
        b = _batcher(infer, max_batch=4, max_wait_s=1.0)
        b.start()
        answers = await asyncio.gather(*(b.submit([f"{i}a", f"{i}b"]) for i in range(3)))
        await b.stop()
        return answers

    assert _run(main()) == [["0A", "0B"], ["1A", "1B"], ["2A", "2B"]]
    assert [len(batch) for batch in infer.batches] == [4, 2]


def test_a_full_queue_refuses_at_once_instead_of_waiting():
    infer = Recorder(delay=0.2)

    async def main():
        b = _batcher(infer, max_batch=2, max_queue=4, max_wait_s=0.0)
        b.start()
        first = asyncio.ensure_future(b.submit(["a", "b"]))  # taken into inference at once
        await asyncio.sleep(0.05)
        queued = asyncio.ensure_future(b.submit(["c", "d", "e", "f"]))  # fills the queue
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):
            await b.submit(["g"])
        result = await asyncio.gather(first, queued)
        await b.stop()
        return result

    assert _run(main()) == [["A", "B"], ["C", "D", "E", "F"]]


def test_a_request_that_gave_up_is_dropped_before_inference():
    infer = Recorder(delay=0.2)

    async def main():
        b = _batcher(infer, max_batch=1, max_wait_s=0.0)
        b.start()
        busy = asyncio.ensure_future(b.submit(["busy"]))
        await asyncio.sleep(0.05)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(b.submit(["abandoned"]), 0.05)
        later = await b.submit(["later"])
        await busy
        await b.stop()
        return later

    assert _run(main()) == ["LATER"]
    assert ["abandoned"] not in infer.batches


def test_a_failing_batch_fails_its_requests_and_the_next_batch_is_served():
    infer = Recorder(fail_on="bad")

    async def main():
        b = _batcher(infer, max_wait_s=0.0)
        b.start()
        with pytest.raises(RuntimeError, match="model broke"):
            await b.submit(["bad"])
        good = await b.submit(["good"])
        await b.stop()
        return good

    assert _run(main()) == ["GOOD"]
