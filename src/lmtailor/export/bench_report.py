"""The benchmark's comparisons and its Markdown table: ratios against the first entry, the fastest entry, bench.md.

Kept apart from `bench` (which runs things) so the way results are compared and shown can be read, and tested, on
its own.
"""

from __future__ import annotations


def _ratio(num: float | None, den: float | None) -> float | None:
    return round(num / den, 3) if num and den else None


def add_ratios(results: list[dict]) -> None:
    """Add `vs_baseline` to every result: p50 speed-up at the first latency batch size (baseline p50 / this p50),
    throughput and size ratios (this / baseline), and the largest output difference on the batch-1 sample."""
    base = results[0]
    for r in results:
        if "error" in r or "error" in base:
            r["vs_baseline"] = None
            continue
        first = next(iter(base["latency"]))
        sample, base_sample = r.get("output_sample") or {}, base.get("output_sample") or {}
        diff = None
        if sample.get("shape") == base_sample.get("shape") and sample.get("values"):
            diff = round(max(abs(a - b) for a, b in zip(sample["values"], base_sample["values"], strict=True)), 6)
        r["vs_baseline"] = {
            "latency_batch": int(first),
            "p50_speedup": _ratio(base["latency"][first]["p50_ms"], r["latency"][first]["p50_ms"]),
            "throughput_ratio": _ratio(r["throughput"]["sequences_per_s"], base["throughput"]["sequences_per_s"]),
            "size_ratio": _ratio(r.get("size_mb"), base.get("size_mb")),
            "max_output_diff": diff,
        }


def fastest(results: list[dict]) -> dict | None:
    """The entry with the most sequences/s at the throughput batch (None when every entry failed)."""
    ok = [r for r in results if "error" not in r]
    if not ok:
        return None
    best = max(ok, key=lambda r: r["throughput"]["sequences_per_s"])
    return {"entry": best["entry"], "model": best["model"], "runtime": best["runtime"],
            "sequences_per_s": best["throughput"]["sequences_per_s"], "batch": best["throughput"]["batch"]}  # fmt: skip


def _count(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}K" if n >= 1e3 else str(n)


def _num(x: float | None, places: int = 1) -> str:
    return "–" if x is None else f"{x:.{places}f}"


def _row(r: dict, batch_sizes: list[str]) -> str:
    if "error" in r:
        return f"| {r['model']} | {r['runtime']} | {_count(r.get('params'))} | {_num(r.get('size_mb'))} | failed: " + (
            r["error"].replace("|", "/")[:100] + " |"
        )
    ratios = r["vs_baseline"] or {}
    cells = [r["model"], r["runtime"], _count(r.get("params")), _num(r.get("size_mb"))]
    for bs in batch_sizes:
        cells += [_num(r["latency"][bs]["p50_ms"], 2), _num(r["latency"][bs]["p95_ms"], 2)]
    cells += [_num(r["throughput"]["sequences_per_s"]), _num(r.get("peak_rss_mb"), 0)]
    cells += [_num(ratios.get(k), 2) for k in ("p50_speedup", "throughput_ratio", "size_ratio")]
    return "| " + " | ".join(cells) + " |"


def markdown(bench: dict) -> str:
    """bench.md: what was measured, on what, and one table row per entry."""
    m = bench["machine"]
    bss = [str(b) for b in bench["batch_sizes"]]
    tb = bench["throughput_batch"]
    head = ["model", "runtime", "params", "size MB"]
    for bs in bss:
        head += [f"p50 ms (b{bs})", f"p95 ms (b{bs})"]
    head += [f"seq/s (b{tb})", "peak RSS MB", "p50 speed-up", "throughput ×", "size ×"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    lines = [
        f"# Benchmark: {len(bench['models'])} models, seq_len {bench['seq_len']}, {bench['threads']} threads",
        "",
        f"- Machine: {m['cpu']}, {m['physical_cores']} physical / {m['logical_cores']} logical cores, "
        f"{m['memory_gb']} GB; native bf16: {'yes' if m['native_bf16'] else 'no'}; "
        f"flags: {', '.join(m['cpu_flags']) or 'none of note'}; load average at start: {m['load_average_at_start']}.",
        f"- Date: {m['date']}. {versions}.",
        f"- Latency: batch {', '.join(bss)}, {bench['warmup']} warm-up + {bench['repeat']} timed runs. Throughput: "
        f"batch {tb}, {bench['throughput_repeat']} timed runs. Threads: {bench['threads']} "
        f"({bench['threads_source']}). Each model in its own process.",
        "- Ratios are against the first row: p50 speed-up = baseline p50 / p50 (> 1 is faster), throughput × = "
        "seq/s / baseline's, size × = size / baseline's.",
        "- Size MB is the weight files on disk (not tokenizer or config); @bf16 and @torch-int8 convert at load, "
        "so their size on disk is the folder's (bench.json has `weights_mb_in_memory`). Peak RSS includes the "
        "runtime's own libraries (`rss_before_load_mb` in bench.json).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|",
        *(_row(r, bss) for r in bench["models"]),
        "",
    ]
    best = bench.get("fastest")
    if best:
        lines.append(
            f"Fastest at batch {tb}: **{best['entry']}** ({best['runtime']}, {best['sequences_per_s']} seq/s)."
        )
    load = (m.get("load_average_at_start") or [0.0])[0]
    if load > 0.5 * (m["logical_cores"] or 1):
        lines.append(f"The machine was busy when this started (load average {load} on {m['logical_cores']} cores): the "
                     "timings include contention with other processes.")  # fmt: skip
    if not m["native_bf16"] and any(r["runtime"] == "bf16" for r in bench["models"]):
        lines.append("This CPU has no native bf16 (AMX/AVX512-BF16): PyTorch emulates bf16 matmuls here.")
    return "\n".join(lines) + "\n"
