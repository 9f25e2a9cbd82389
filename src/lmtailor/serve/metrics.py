"""The server's Prometheus metrics (prometheus-client): requests, errors, latency, batch sizes, queue depth.

With several worker processes each one writes its samples to files in `PROMETHEUS_MULTIPROC_DIR` (set by `lmtailor
serve` before the workers start) and /metrics adds them up, so a scrape sees the whole server whichever worker
answers it. With one process the metrics live in the app's own registry, so several apps (the tests) never clash.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
disable_created_metrics()  # the `_created` timestamp series double a scrape's size and no dashboard reads them


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("lmtailor_requests", "HTTP requests by route and status.", ["route", "status"],
                                registry=r)  # fmt: skip
        self.latency = Histogram("lmtailor_request_seconds", "Time from request to answer, by route.", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.texts = Counter("lmtailor_texts", "Texts answered, by model.", ["model"], registry=r)
        self.batch = Histogram("lmtailor_batch_texts", "Texts per inference (dynamic batching), by model.", ["model"],
                               buckets=BATCH_BUCKETS, registry=r)  # fmt: skip
        self.inference = Histogram("lmtailor_inference_seconds", "Time of one batched inference, by model.",
                                   ["model"], buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.queue = Gauge("lmtailor_queue_texts", "Texts waiting for inference, by model.", ["model"],
                           multiprocess_mode="livesum", registry=r)  # fmt: skip

    def observer(self, model: str):
        """The batcher's callback for `model`: (texts in the batch, inference seconds, texts still queued)."""

        def observe(texts: int, seconds: float, queued: int) -> None:
            self.texts.labels(model).inc(texts)
            self.batch.labels(model).observe(texts)
            self.inference.labels(model).observe(seconds)
            self.queue.labels(model).set(queued)

        return observe

    def exposition(self) -> tuple[bytes, str]:
        """The text a scrape gets: this process's registry, or every worker's samples when there are several."""
        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
