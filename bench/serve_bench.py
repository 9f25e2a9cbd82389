"""`lmtailor serve` under load (issue 24): served throughput against in-process, latency, errors, memory, a fault.

    .venv/bin/python bench/serve_bench.py --student WORK/int8 --teacher WORK/teacher --out /tmp/serve-bench

WORK is a build of `recipes/legal-en.yaml` (the CUAD int8 student and its MiniLM teacher). Every request carries one
CUAD test clause (cycled over the 624), and every answer is checked against the label `lmtailor predict` gives the
same clause in-process, so "0 errors" means 0 failed *and* 0 wrong answers. The load generator is httpx's async
client (a real client library) with `concurrency` requests in flight; all traffic stays on 127.0.0.1, and every
phase is bounded in requests and in seconds. Phases:
1. in-process, same run: `lmtailor bench` (batch 32, 128 tokens) and `predict` over the clauses at batch 32;
2. the student served: concurrency 1, 8, 32 (the last one --requests long, RSS sampled after the first and last
   5,000 requests);
3. the teacher served the same way at concurrency 32 (shorter), for the student/teacher ratio of served req/s;
4. a fault: the student on two workers at concurrency 32; one worker is killed mid-load, the supervisor starts a
   new one; every answered request must still be right.
Results: `--out`/serve_bench.json and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
CUAD = REPO.parent / "shared" / "data" / "en-legal" / "cuad" / "clauses" / "test.jsonl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, model: Path, name: str, workers: int, threads: int, log: Path, max_batch: int = 32) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "lmtailor.cli", "serve", f"{name}={model}", "--port", str(self.port),
               "--workers", str(workers), "--threads", str(threads), "--max-batch", str(max_batch),
               "--max-wait-ms", "2", "--max-queue", "4096"]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT,
                                     env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})  # fmt: skip
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.3)
        raise SystemExit("server not ready in 180 s")

    def rss_mb(self) -> float:
        procs = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        return round(sum(p.memory_info().rss for p in procs if p.is_running()) / 1e6, 1)

    def workers(self) -> list[psutil.Process]:
        kids = psutil.Process(self.proc.pid).children(recursive=True)
        return [p for p in kids if "spawn_main" in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def load(url: str, name: str, texts: list[str], expected: list[str], requests: int, concurrency: int,
               max_seconds: float, on_request=None) -> dict:  # fmt: skip
    """`requests` classify requests of one text each, `concurrency` in flight; every answer checked."""
    latencies: list[float] = []
    status: dict[str, int] = {}
    wrong = 0
    issued = 0
    deadline = time.monotonic() + max_seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal issued, wrong
        while issued < requests and time.monotonic() < deadline:
            i = issued
            issued += 1
            if on_request is not None:
                on_request(i)
            t0 = time.perf_counter()
            try:
                r = await client.post(url + "/v1/classify", json={"model": name, "input": texts[i % len(texts)]})
            except httpx.TransportError as exc:
                status[type(exc).__name__] = status.get(type(exc).__name__, 0) + 1
                continue
            latencies.append(time.perf_counter() - t0)
            status[str(r.status_code)] = status.get(str(r.status_code), 0) + 1
            if r.status_code == 200 and r.json()["data"][0]["label"] != expected[i % len(texts)]:
                wrong += 1

    t0 = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        await asyncio.gather(*(one(client) for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    lat = sorted(latencies)
    ok = status.get("200", 0)
    return {"concurrency": concurrency, "requests": issued, "ok": ok, "wrong": wrong,
            "errors": issued - ok, "status": status, "seconds": round(seconds, 2),
            "req_per_s": round(ok / seconds, 1),
            "p50_ms": round(1000 * lat[len(lat) // 2], 2) if lat else None,
            "p99_ms": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2) if lat else None}  # fmt: skip


def in_process(model: Path, texts: list[str], out: Path, threads: int) -> dict:
    """`lmtailor bench` at batch 32 (128 tokens) and `predict` over the clauses at batch 32, in this run."""
    from lmtailor.export.config import BenchConfig
    from lmtailor.stages import run_stage
    from lmtailor.tasks.evaluate import predict_records
    from lmtailor.tasks.inference import load_task_model

    bench_dir = out / f"bench-{model.name}"
    run_stage("bench", BenchConfig(models=[str(model)], out_dir=bench_dir, overwrite=True, repeat=5,
                                   throughput_repeat=10, threads=threads, show_progress=False))  # fmt: skip
    measured = json.loads((bench_dir / "bench.json").read_text())["models"][0]
    m, tok, spec = load_task_model(model, threads=threads)
    import torch

    torch.set_num_threads(threads)
    predict_records(m, tok, spec, texts[:64], 32)  # warm-up
    t0 = time.perf_counter()
    labels = [r["label"] for r in predict_records(m, tok, spec, texts, 32)]
    seconds = time.perf_counter() - t0
    return {"bench_seq_per_s_b32": measured["throughput"]["sequences_per_s"],
            "predict_texts_per_s_b32": round(len(texts) / seconds, 1), "labels": labels}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--student", type=Path, required=True)
    ap.add_argument("--teacher", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--teacher-requests", type=int, default=1_500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-seconds", type=float, default=420)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    texts = [json.loads(line)["text"] for line in CUAD.read_text(encoding="utf-8").splitlines()]
    result: dict = {"command": " ".join(sys.argv), "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
                    "texts": len(texts)}  # fmt: skip

    for role, model in (("student", args.student), ("teacher", args.teacher)):
        inproc = in_process(model, texts, args.out, args.threads)
        expected = inproc.pop("labels")
        print(f"{role} in-process: {inproc}", flush=True)
        srv = Server(model, role, 1, args.threads, args.out / f"{role}.log")
        try:
            phases = []
            if role == "student":
                for conc, n in ((1, 500), (8, 2_000)):
                    phases.append(asyncio.run(load(srv.url, role, texts, expected, n, conc, args.max_seconds)))
                    print(phases[-1], flush=True)
                rss: dict[str, float] = {}

                def sample(i: int, srv=srv, rss=rss) -> None:
                    if i == 5_000:
                        rss["after_first_5000"] = srv.rss_mb()
                    if i == args.requests - 5_000:
                        rss["at_last_5000"] = srv.rss_mb()

                phases.append(asyncio.run(load(srv.url, role, texts, expected, args.requests, 32, args.max_seconds,
                                               sample)))  # fmt: skip
                rss["end"] = srv.rss_mb()
                phases[-1]["rss_mb"] = rss
            else:
                phases.append(asyncio.run(load(srv.url, role, texts, expected, args.teacher_requests, 32,
                                               args.max_seconds)))  # fmt: skip
            print(phases[-1], flush=True)
        finally:
            srv.stop()
        c32 = phases[-1]
        rate = c32["req_per_s"]
        result[role] = {"model": str(model), **inproc, "phases": phases,
                        "served_vs_bench": round(rate / inproc["bench_seq_per_s_b32"], 3),
                        "served_vs_predict": round(rate / inproc["predict_texts_per_s_b32"], 3)}  # fmt: skip
        result[f"{role}_expected"] = expected
    result["student_vs_teacher_served"] = round(
        result["student"]["phases"][-1]["req_per_s"] / result["teacher"]["phases"][-1]["req_per_s"], 2
    )

    # The fault: two workers (one thread each), one killed a third of the way through.
    expected = result.pop("student_expected")
    result.pop("teacher_expected")
    srv = Server(args.student, "student", 2, max(1, args.threads // 2), args.out / "fault.log")
    killed: dict = {}

    def kill(i: int) -> None:
        if i == 1_000 and not killed:
            victim = srv.workers()[0]
            killed["pid"] = victim.pid
            victim.kill()
            killed["at_request"] = i

    try:
        fault = asyncio.run(load(srv.url, "student", texts, expected, 4_000, 32, args.max_seconds, kill))
        time.sleep(2)
        fault["workers_after"] = len(srv.workers())
        fault["killed"] = killed
    finally:
        srv.stop()
    result["fault"] = fault
    print(fault, flush=True)
    (args.out / "serve_bench.json").write_text(json.dumps(result, indent=2) + "\n")
    s, t = result["student"], result["teacher"]
    print("\n| model | concurrency | requests | errors | wrong | req/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for role, r in (("student int8", s), ("teacher", t)):
        for p in r["phases"]:
            print(
                f"| {role} | {p['concurrency']} | {p['requests']} | {p['errors']} | {p['wrong']} | {p['req_per_s']} "
                f"| {p['p50_ms']} | {p['p99_ms']} |"
            )
    print(
        f"\nstudent: served c32 / bench b32 = {s['served_vs_bench']}, / predict b32 = {s['served_vs_predict']}; "
        f"teacher: {t['served_vs_bench']}, {t['served_vs_predict']}; student/teacher served = "
        f"{result['student_vs_teacher_served']}; RSS {s['phases'][-1].get('rss_mb')}"
    )
    print(f"fault: {fault}")


if __name__ == "__main__":
    main()
