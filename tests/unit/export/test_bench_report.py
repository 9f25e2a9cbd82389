"""Ratios, the fastest entry and the Markdown table of a benchmark, on hand-written results."""

from __future__ import annotations

from lmtailor.export.bench_report import add_ratios, fastest, markdown


def _result(entry: str, runtime: str, p50: float, sps: float, size: float, values: list[float]) -> dict:
    return {"entry": entry, "model": entry, "runtime": runtime, "params": 22_700_000, "size_mb": size,
            "latency": {"1": {"p50_ms": p50, "p95_ms": p50 * 1.5}}, "throughput": {"batch": 32, "sequences_per_s": sps},
            "peak_rss_mb": 500.0, "output_sample": {"shape": [1, 2], "values": values}}  # fmt: skip


def _bench(models: list[dict]) -> dict:
    machine = {"cpu": "Test CPU", "physical_cores": 2, "logical_cores": 2, "memory_gb": 8.0, "native_bf16": False,
               "cpu_flags": ["avx2"], "load_average_at_start": [0.1, 0.1, 0.1], "date": "2026-01-01T00:00:00+00:00",
               "versions": {"torch": "2.13.0"}}  # fmt: skip
    return {"machine": machine, "seq_len": 128, "threads": 2, "threads_source": "config", "batch_sizes": [1],
            "throughput_batch": 32, "warmup": 3, "repeat": 20, "throughput_repeat": 5, "models": models,
            "fastest": fastest(models)}  # fmt: skip


def test_ratios_against_the_first_entry() -> None:
    rows = [_result("base", "fp32", 20.0, 100.0, 90.0, [0.5, -0.5]),
            _result("int8", "onnx-int8", 5.0, 400.0, 22.5, [0.25, -0.5])]  # fmt: skip
    add_ratios(rows)
    assert rows[0]["vs_baseline"] == {"latency_batch": 1, "p50_speedup": 1.0, "throughput_ratio": 1.0,
                                      "size_ratio": 1.0, "max_output_diff": 0.0}  # fmt: skip
    assert rows[1]["vs_baseline"] == {"latency_batch": 1, "p50_speedup": 4.0, "throughput_ratio": 4.0,
                                      "size_ratio": 0.25, "max_output_diff": 0.25}  # fmt: skip
    assert fastest(rows)["entry"] == "int8"


def test_failed_entries_get_no_ratios_and_a_row_saying_so() -> None:
    rows = [_result("base", "fp32", 20.0, 100.0, 90.0, [0.0]), {"entry": "bad", "model": "bad", "runtime": "bf16",
            "size_mb": 90.0, "error": "RuntimeError: no | kernel"}]  # fmt: skip
    add_ratios(rows)
    assert rows[1]["vs_baseline"] is None and fastest(rows)["entry"] == "base"
    md = markdown(_bench(rows))
    assert "| bad | bf16 | ? | 90.0 | failed: RuntimeError: no / kernel |" in md
    assert "| base | fp32 | 22.7M | 90.0 | 20.00 | 30.00 | 100.0 | 500 | 1.00 | 1.00 | 1.00 |" in md
    assert "Fastest at batch 32: **base**" in md and "busy" not in md
