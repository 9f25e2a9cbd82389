"""`lmtailor serve` under load (issue 24): served throughput against in-process, latency, errors, memory, a fault.

    .venv/bin/python bench/serve_bench.py --student WORK/int8 --teacher WORK/teacher --out /tmp/serve-bench

WORK is a build of `recipes/legal-en.yaml` (the CUAD int8 student and its MiniLM teacher). Every request carries one
CUAD test clause (cycled over the 624), and every answer's label is compared with the one `lmtailor predict` gives the
same clause in-process at batch 32 ("differ"). For a PyTorch or fp32 ONNX model they must agree; an int8 ONNX model
quantises its activations with one scale per batch tensor (ONNX Runtime's dynamic int8), so its answer to a text
moves with the texts and the padding it is batched with, in the server as in `predict`, and a few near-ties flip.
The load generator is aiohttp's client (or httpx's, `--client httpx`) with `concurrency` requests in flight, on the
same 2 cores as the server (its CPU time per request is reported beside the server's); all traffic stays on
127.0.0.1, and every phase is bounded in requests and in seconds. Phases:
1. in-process, same run: `lmtailor bench` (batch 32, 128 tokens) and `predict` over the clauses at batch 32;
2. the student served: concurrency 1, 8, 32 (the last one --requests long, RSS sampled after the first and last
   5,000 requests);
3. the teacher served the same way at concurrency 32 (shorter), for the student/teacher ratio of served req/s;
4. a fault: the student's fp32 ONNX on two workers at concurrency 32; one worker is killed mid-load, the
   supervisor starts a new one; every answered request must still be right.
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

import aiohttp
import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
CUAD = REPO.parent / "shared" / "data" / "en-legal" / "cuad" / "clauses" / "test.jsonl"
CLIENT = {"name": "aiohttp"}  # the load generator's library (--client)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(
        self, model: Path, name: str, workers: int, threads: int, log: Path, max_batch: int = 32, forward_batch: int = 8
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "lmtailor.cli", "serve", f"{name}={model}", "--port", str(self.port),
               "--workers", str(workers), "--threads", str(threads), "--max-batch", str(max_batch),
               "--forward-batch", str(forward_batch),
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (the server and its workers)."""
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


async def load(url: str, name: str, texts: list[str], expected: list[str], requests: int, concurrency: int,
               max_seconds: float, on_request=None, server_pid: int | None = None) -> dict:  # fmt: skip
    """`requests` classify requests of one text each, `concurrency` in flight; every answer checked."""
    latencies: list[float] = []
    status: dict[str, int] = {}
    differ = 0
    issued = 0
    deadline = time.monotonic() + max_seconds

    async def post(session, body: dict) -> tuple[int, dict | None]:
        if CLIENT["name"] == "httpx":
            r = await session.post(url + "/v1/classify", json=body)
            return r.status_code, r.json() if r.status_code == 200 else None
        async with session.post(url + "/v1/classify", json=body) as r:
            return r.status, await r.json() if r.status == 200 else None

    async def one(session) -> None:
        nonlocal issued, differ
        while issued < requests and time.monotonic() < deadline:
            i = issued
            issued += 1
            if on_request is not None:
                on_request(i)
            t0 = time.perf_counter()
            try:
                code, body = await post(session, {"model": name, "input": texts[i % len(texts)]})
            except (httpx.TransportError, aiohttp.ClientError) as exc:
                status[type(exc).__name__] = status.get(type(exc).__name__, 0) + 1
                continue
            latencies.append(time.perf_counter() - t0)
            status[str(code)] = status.get(str(code), 0) + 1
            if code == 200 and body["data"][0]["label"] != expected[i % len(texts)]:
                differ += 1

    t0, client0 = time.perf_counter(), time.process_time()
    server0 = cpu_seconds(server_pid) if server_pid else 0.0
    if CLIENT["name"] == "httpx":
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        session = httpx.AsyncClient(limits=limits, timeout=60)
    else:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                        timeout=aiohttp.ClientTimeout(total=60))  # fmt: skip
    async with session:
        await asyncio.gather(*(one(session) for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    client_cpu = time.process_time() - client0
    server_cpu = cpu_seconds(server_pid) - server0 if server_pid else None
    lat = sorted(latencies)
    ok = status.get("200", 0)
    return {"concurrency": concurrency, "requests": issued, "ok": ok, "differ": differ,
            "errors": issued - ok, "status": status, "seconds": round(seconds, 2),
            "req_per_s": round(ok / seconds, 1),
            "p50_ms": round(1000 * lat[len(lat) // 2], 2) if lat else None,
            "p99_ms": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2) if lat else None,
            "client_cpu_ms_per_request": round(1000 * client_cpu / max(issued, 1), 2),
            "server_cpu_ms_per_request": round(1000 * (server_cpu or 0) / max(issued, 1), 2)}  # fmt: skip


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


def serve_phases(model: Path, role: str, texts: list[str], args, rss_check: bool) -> dict:
    """In-process reference, then the model served at each concurrency of `args`."""
    inproc = in_process(model, texts, args.out, args.threads)
    expected = inproc.pop("labels")
    print(f"{role} in-process: {inproc}", flush=True)
    srv = Server(model, role, 1, args.threads, args.out / f"{role}.log", forward_batch=args.forward_batch)
    phases, rss = [], {}

    def sample(i: int) -> None:
        if i == 5_000:
            rss["after_first_5000"] = srv.rss_mb()
        if i == args.requests - 5_000:
            rss["at_last_5000"] = srv.rss_mb()

    try:
        if role == "student":
            for conc, n in args.warm_phases:
                phases.append(asyncio.run(load(srv.url, role, texts, expected, n, conc, args.max_seconds,
                                               server_pid=srv.proc.pid)))  # fmt: skip
                print(phases[-1], flush=True)
        n = args.requests if role == "student" else args.teacher_requests
        phases.append(asyncio.run(load(srv.url, role, texts, expected, n, 32, args.max_seconds,
                                       sample if rss_check else None, server_pid=srv.proc.pid)))  # fmt: skip
        if rss_check:
            rss["end"] = srv.rss_mb()
            phases[-1]["rss_mb"] = rss
        print(phases[-1], flush=True)
    finally:
        srv.stop()
    if role == "student" and args.threads >= 2:  # the same cores as two worker processes of one thread each
        srv = Server(model, role, 2, args.threads // 2, args.out / f"{role}-2w.log", forward_batch=args.forward_batch)
        try:
            two = asyncio.run(load(srv.url, role, texts, expected, min(args.requests, 5_000), 32, args.max_seconds,
                                   server_pid=srv.proc.pid))  # fmt: skip
        finally:
            srv.stop()
        two["workers"] = 2
        print(two, flush=True)
        phases.insert(len(phases) - 1, two)
    rate = phases[-1]["req_per_s"]
    return {"model": str(model), **inproc, "phases": phases,
            "served_vs_bench": round(rate / inproc["bench_seq_per_s_b32"], 3),
            "served_vs_predict": round(rate / inproc["predict_texts_per_s_b32"], 3)}  # fmt: skip


def fault_phase(model: Path, texts: list[str], args) -> dict:
    """Two workers (one thread each) at concurrency 32; one is killed at request 1,000 and the supervisor starts a
    new one. The model is the student's fp32 ONNX folder, whose answers do not depend on batch partners, so an
    answer that differs from `predict` would be a wrong one (a mixed-up batch), not int8 rounding."""
    from lmtailor.tasks.evaluate import predict

    expected = [r["label"] for r in predict(model, texts, batch_size=32)]
    srv = Server(model, "student", 2, max(1, args.threads // 2), args.out / "fault.log",
                 forward_batch=args.forward_batch)  # fmt: skip
    killed: dict = {}

    def kill(i: int) -> None:
        if i == 1_000 and not killed:
            victim = srv.workers()[0]
            killed.update(pid=victim.pid, at_request=i)
            victim.kill()

    try:
        fault = asyncio.run(load(srv.url, "student", texts, expected, 4_000, 32, args.max_seconds, kill))
        time.sleep(3)
        fault["workers_after"] = len(srv.workers())
        fault["killed"] = killed
    finally:
        srv.stop()
    print(fault, flush=True)
    return fault


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--student", type=Path, required=True, help="the int8 student folder")
    ap.add_argument("--teacher", type=Path, help="the teacher folder (skipped when absent)")
    ap.add_argument("--fault-model", type=Path, help="the student's fp32 ONNX folder, for the fault test")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--teacher-requests", type=int, default=1_500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--forward-batch", type=int, default=8)
    ap.add_argument("--no-warm-phases", action="store_true", help="only concurrency 32 (a quick comparison)")
    ap.add_argument("--max-seconds", type=float, default=420)
    ap.add_argument("--client", choices=["aiohttp", "httpx"], default="aiohttp",
                    help="load generator: aiohttp (about a third of httpx's CPU per request) or httpx")  # fmt: skip
    args = ap.parse_args()
    CLIENT["name"] = args.client
    args.warm_phases = [] if args.no_warm_phases else [(1, 500), (8, 2_000)]
    args.out.mkdir(parents=True, exist_ok=True)
    texts = [json.loads(line)["text"] for line in CUAD.read_text(encoding="utf-8").splitlines()]
    result: dict = {"command": " ".join(sys.argv), "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
                    "texts": len(texts)}  # fmt: skip
    result["student"] = serve_phases(args.student, "student", texts, args, rss_check=args.requests >= 10_000)
    if args.teacher:
        result["teacher"] = serve_phases(args.teacher, "teacher", texts, args, rss_check=False)
        result["student_vs_teacher_served"] = round(
            result["student"]["phases"][-1]["req_per_s"] / result["teacher"]["phases"][-1]["req_per_s"], 2
        )
    if args.fault_model:
        result["fault"] = fault_phase(args.fault_model, texts, args)
    (args.out / "serve_bench.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        "\n| model | workers | concurrency | requests | errors | differ from predict | req/s | p50 ms | p99 ms "
        "| server CPU ms/req | client CPU ms/req |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for role in ("student", "teacher"):
        for p in result.get(role, {}).get("phases", []):
            print(f"| {role} | {p.get('workers', 1)} | {p['concurrency']} | {p['requests']} | {p['errors']} | "
                  f"{p['differ']} | {p['req_per_s']} | {p['p50_ms']} | {p['p99_ms']} | "
                  f"{p['server_cpu_ms_per_request']} | {p['client_cpu_ms_per_request']} |")  # fmt: skip
    for role in ("student", "teacher"):
        if role in result:
            r = result[role]
            print(f"{role}: served c32 / bench b32 = {r['served_vs_bench']}, / predict b32 = {r['served_vs_predict']}")
    print(
        f"student/teacher served: {result.get('student_vs_teacher_served')}; "
        f"RSS {result['student']['phases'][-1].get('rss_mb')}; fault: {result.get('fault')}"
    )


if __name__ == "__main__":
    main()
