"""Dynamic batching: the texts of concurrent requests to one model are answered by one inference.

A request's texts join the model's queue; the first waiting request opens a batch that closes when it holds
`max_batch` texts or `max_wait` has passed, whichever comes first, and the batch runs on the worker's one inference
thread (so two batches never fight over the cores). The queue is bounded in texts: a request that would overfill it
is refused at once (`Overloaded`, a 503 with Retry-After), never parked. A request that gave up (its timeout) is
dropped before its batch runs. Hand-written because it is the heart of the server and small: the libraries that do
this (Triton, Ray Serve, TEI) are whole servers, not pieces to embed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


class Overloaded(Exception):
    """The model's queue is full: come back later."""


@dataclass
class Job:
    texts: list[str]
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    """The queue and batching loop of one model; `infer(texts) -> list` runs on `executor`."""

    def __init__(self, infer: Callable[[list[str]], list], executor: Executor, max_batch: int, max_wait_s: float,
                 max_queue: int, observe: Callable[[int, float, int], None] | None = None) -> None:  # fmt: skip
        self.infer, self.executor = infer, executor
        self.max_batch, self.max_wait_s, self.max_queue = max_batch, max_wait_s, max_queue
        self.observe = observe  # (batch texts, inference seconds, texts still queued) -> None, for the metrics
        self.pending: deque[Job] = deque()
        self.queued = 0  # texts in `pending`
        self._arrival = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for job in self.pending:
            if not job.future.done():
                job.future.set_exception(Overloaded())
        self.pending.clear()

    async def submit(self, texts: list[str]) -> list:
        """The answers for `texts`, in order; raises Overloaded when the queue has no room for them."""
        if self.queued + len(texts) > self.max_queue:
            raise Overloaded()
        job = Job(texts, asyncio.get_running_loop().create_future())
        self.pending.append(job)
        self.queued += len(texts)
        self._arrival.set()
        return await job.future

    async def _loop(self) -> None:
        while True:
            while not self.pending:
                self._arrival.clear()
                await self._arrival.wait()
            await self._fill()
            batch = self._take()
            if batch:
                await self._run(batch)

    async def _fill(self) -> None:
        """Wait until `max_batch` texts are queued or the oldest request has waited `max_wait`."""
        deadline = self.pending[0].arrived + self.max_wait_s
        while self.queued < self.max_batch:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._arrival.clear()
            try:
                await asyncio.wait_for(self._arrival.wait(), left)
            except TimeoutError:
                return

    def _take(self) -> list[Job]:
        """Whole requests from the front of the queue up to `max_batch` texts (at least one request, which may hold
        more; the model then splits it into `max_batch` pieces); requests that gave up are dropped."""
        batch: list[Job] = []
        size = 0
        while self.pending:
            job = self.pending[0]
            if job.future.done():  # cancelled by its request's timeout
                self.pending.popleft()
                self.queued -= len(job.texts)
                continue
            if batch and size + len(job.texts) > self.max_batch:
                break
            self.pending.popleft()
            self.queued -= len(job.texts)
            batch.append(job)
            size += len(job.texts)
        return batch

    async def _run(self, batch: list[Job]) -> None:
        texts = [t for job in batch for t in job.texts]
        t0 = time.perf_counter()
        try:
            results = await asyncio.get_running_loop().run_in_executor(self.executor, self.infer, texts)
        except Exception as exc:  # a bug or a broken model: these requests fail (500), the server goes on
            log.exception("inference failed on a batch of %d texts", len(texts))
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        if self.observe is not None:
            self.observe(len(texts), time.perf_counter() - t0, self.queued)
        start = 0
        for job in batch:
            if not job.future.done():
                job.future.set_result(results[start : start + len(job.texts)])
            start += len(job.texts)
