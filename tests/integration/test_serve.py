"""`lmtailor serve` as a user runs it: a real server process on a free loopback port, real HTTP requests (httpx).

One server holds a classifier (head+tail of long texts), an NER model (windows) and an encoder; its answers are
compared with `lmtailor predict`'s on real contract clauses, every kind of bad request gets its 4xx while the
server keeps serving, and a second server checks the bearer token, several workers, a killed worker and a graceful
shutdown.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
import torch

from lmtailor.serve.config import ServeCommand, ServeConfig
from lmtailor.serve.server import resolve
from lmtailor.serve.stage import run as run_serve_stage
from lmtailor.tasks.evaluate import predict
from lmtailor.tasks.inference import TaskSpec

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}

NER_LABELS = ["O", "B-Party", "I-Party"]
FALLBACK_TEXTS = [
    "The licensee shall indemnify the licensor against all claims arising from the use of the software. " * 4,
    "This agreement is governed by the laws of the State of New York.",
    "Either party may terminate this agreement upon thirty days written notice to the other party.",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_models(root: Path, make_clause_classifier) -> dict[str, Path]:
    """A classifier reading head+tail of long texts, an NER model reading windows, an encoder: one tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, BertForTokenClassification

    cls = make_clause_classifier(root / "clauses")
    TaskSpec(task="cls", max_length=32, long_text="head_tail", stride=8).save(cls)
    tokenizer = AutoTokenizer.from_pretrained(str(cls))
    torch.manual_seed(1)
    config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=64, num_labels=3,
                        id2label=dict(enumerate(NER_LABELS)), label2id={n: i for i, n in enumerate(NER_LABELS)},
                        **SMALL)  # fmt: skip
    folders = {"clauses": cls, "parties": root / "parties", "encoder": root / "encoder"}
    BertForTokenClassification(config).save_pretrained(str(folders["parties"]))
    TaskSpec(task="ner", max_length=24, stride=8).save(folders["parties"])
    BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), max_position_embeddings=64, **SMALL)).save_pretrained(
        str(folders["encoder"])
    )
    for name in ("parties", "encoder"):
        tokenizer.save_pretrained(str(folders[name]))
    from lmtailor.export.config import ExportConfig
    from lmtailor.stages import run_stage

    folders["clauses-onnx"] = run_stage("export", ExportConfig(model=cls, out_dir=root / "clauses-onnx",
                                                              show_progress=False))  # fmt: skip
    return folders


class Server:
    """`lmtailor serve` in a child process; `url`, and `stop()` that sends SIGTERM and waits."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        cmd = [sys.executable, "-m", "lmtailor.cli", "serve", *args, "--port", str(self.port)]
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
        self.proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError(f"server not ready in 120 s:\n{log.read_text()[-3000:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def models(tmp_path_factory, clause_classifier_factory) -> dict[str, Path]:
    return make_models(tmp_path_factory.mktemp("serve-models"), clause_classifier_factory)


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    args = [f"{n}={p}" for n, p in models.items()]
    srv = Server([*args, "--max-texts", "16", "--max-chars", "2000", "--max-body-bytes", "65536",
                  "--max-wait-ms", "20"], tmp_path_factory.mktemp("serve-log") / "server.log")  # fmt: skip
    yield srv
    # uvicorn shuts down gracefully, then re-raises SIGTERM so that the exit status says how the process ended
    assert srv.stop() in (0, -signal.SIGTERM), srv.log.read_text()[-3000:]
    assert "Application shutdown complete" in srv.log.read_text()


def real_texts() -> list[str]:
    path = HERE.parents[1].parent / "shared" / "data" / "en-legal" / "cuad" / "clauses" / "test.jsonl"
    if not path.is_file():
        return FALLBACK_TEXTS
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"][:2000] for line in lines[:48]]


def test_served_answers_equal_predict_on_real_clauses(server, models):
    texts = real_texts()  # CUAD test clauses where ../shared is present: long ones cross the 32-token windows
    expected_cls = list(predict(models["clauses"], texts, top_k=3))
    expected_onnx = list(predict(models["clauses-onnx"], texts, top_k=3))
    expected_ner = list(predict(models["parties"], texts))

    def ask(route: str, model: str, chunk: list[str]) -> list[dict]:
        r = httpx.post(f"{server.url}{route}", json={"model": model, "input": chunk}, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()["data"]

    # Concurrent requests of different sizes, so the server batches them together as it would under load.
    chunks, start = [], 0
    for n in [1, 5, 7, 2, 3, 6, 8, 4, 12] * 8:
        if start < len(texts):
            chunks.append(texts[start : start + n])
            start += n
    answers_cls: dict[int, list] = {}
    answers_ner: dict[int, list] = {}

    answers_onnx: dict[int, list] = {}

    def worker(k: int, chunk: list[str]) -> None:
        answers_cls[k] = ask("/v1/classify", "clauses", chunk)
        answers_ner[k] = ask("/v1/entities", "parties", chunk)
        answers_onnx[k] = ask("/v1/classify", "clauses-onnx", chunk)

    threads = [threading.Thread(target=worker, args=(k, c)) for k, c in enumerate(chunks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    served_cls = [row for k in sorted(answers_cls) for row in answers_cls[k]]
    served_ner = [row for k in sorted(answers_ner) for row in answers_ner[k]]
    assert len(served_cls) == len(texts) == len(served_ner)
    served_onnx = [row for k in sorted(answers_onnx) for row in answers_onnx[k]]
    for got, want in zip(served_onnx, expected_onnx, strict=True):  # the exported graph, on ONNX Runtime
        assert got["label"] == want["label"] and got["score"] == pytest.approx(want["score"], abs=1e-3)
    for got, want in zip(served_cls, expected_cls, strict=True):
        assert got["label"] == want["label"]
        assert got["score"] == pytest.approx(want["score"], abs=1e-3)
        assert [s["label"] for s in got["scores"]] == [s["label"] for s in want["top"]]
    for got, want in zip(served_ner, expected_ner, strict=True):
        assert [(e["start"], e["end"], e["type"]) for e in got["entities"]] == [
            (e["start"], e["end"], e["type"]) for e in want["entities"]
        ]
        for e in got["entities"]:
            assert 0 < e["score"] <= 1


def test_embeddings_tokens_models_health_and_metrics(server):
    r = httpx.post(server.url + "/v1/embeddings", json={"model": "encoder", "input": ["the licensee", "a b"]})
    body = r.json()
    assert r.status_code == 200 and body["object"] == "list" and body["usage"]["prompt_tokens"] > 0
    vectors = [torch.tensor(d["embedding"]) for d in body["data"]]
    assert [d["index"] for d in body["data"]] == [0, 1] and len(vectors[0]) == SMALL["hidden_size"]
    assert all(abs(float(v.norm()) - 1) < 1e-4 for v in vectors)

    r = httpx.post(server.url + "/v1/tokenize", json={"model": "clauses", "input": "The licensee shall"})
    tokens = r.json()["data"][0]["tokens"]
    assert tokens[0]["special"] and not tokens[1]["special"]
    assert next("The licensee shall"[t["start"] : t["end"]].lower() for t in tokens if not t["special"]) == "the"

    cards = {m["id"]: m for m in httpx.get(server.url + "/v1/models").json()["data"]}
    assert cards["clauses"]["kind"] == "cls" and cards["clauses"]["labels"] == ["indemnity", "law", "termination"]
    assert cards["parties"]["kind"] == "ner" and cards["encoder"]["kind"] == "embed"
    assert cards["clauses"]["size_bytes"] > 0

    schema = httpx.get(server.url + "/openapi.json").json()  # the page at /docs is drawn from it
    assert {"/v1/classify", "/v1/entities", "/v1/embeddings", "/v1/tokenize", "/v1/models"} <= set(schema["paths"])
    assert httpx.get(server.url + "/docs").status_code == 200
    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "ready" and health["models"]["parties"] == "ner"
    metrics = httpx.get(server.url + "/metrics").text
    assert 'lmtailor_requests_total{route="/v1/embeddings",status="200"}' in metrics
    assert "lmtailor_batch_texts_bucket" in metrics and "lmtailor_queue_texts" in metrics


BAD_REQUESTS = [
    # (what, route, body bytes, status, the field or code the error names)
    ("invalid JSON", "/v1/classify", b'{"input": ', 400, "invalid_json"),
    ("non-UTF-8 bytes", "/v1/classify", b'{"input": "\xff\xfe"}', 400, None),
    ("input of the wrong type", "/v1/classify", b'{"input": 3}', 422, "input"),
    ("a number in the list", "/v1/classify", b'{"input": ["a", 7]}', 422, "input[1]"),
    ("an empty list", "/v1/classify", b'{"input": []}', 422, "input"),
    ("no input", "/v1/classify", b'{"model": "clauses"}', 422, "input"),
    ("an unknown field", "/v1/classify", b'{"input": "a", "texts": ["a"]}', 422, "texts"),
    ("an unknown model", "/v1/classify", b'{"model": "nope", "input": "a"}', 404, "model"),
    ("a path as model", "/v1/classify", b'{"model": "../../etc/passwd", "input": "a"}', 404, "model"),
    ("the wrong kind of model", "/v1/classify", b'{"model": "parties", "input": "a"}', 400, "model"),
    ("no model named, two classifiers", "/v1/classify", b'{"input": "a"}', 400, "model"),
    ("too many texts", "/v1/entities", json.dumps({"input": ["a"] * 17}).encode(), 413, "input"),
    ("a text too long", "/v1/entities", json.dumps({"input": ["a", "x" * 2001]}).encode(), 413, "input[1]"),
    ("top_k of 0", "/v1/classify", b'{"input": "a", "top_k": 0}', 422, "top_k"),
    ("an unknown route", "/v1/nothing", b"{}", 404, None),
]


@pytest.mark.parametrize(("what", "route", "body", "status", "names"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_requests_get_a_4xx_naming_the_problem_and_the_server_goes_on(server, what, route, body, status, names):
    r = httpx.post(server.url + route, content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"]
    if names is not None:
        assert names in (error["param"], error["code"]), error
    ok = httpx.post(server.url + "/v1/classify", json={"model": "clauses", "input": "either party may terminate"})
    assert ok.status_code == 200


def test_a_50_mb_body_is_refused_by_size_before_it_is_read(server):
    big = b'{"input": "' + b"a" * (50 * 1024 * 1024) + b'"}'
    try:
        r = httpx.post(server.url + "/v1/classify", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    except httpx.TransportError:  # the server answered 413 and closed before the client finished sending
        pass

    def chunks():  # no Content-Length: the limit applies while the body streams in
        for _ in range(64):
            yield b"a" * 65536

    try:
        r = httpx.post(server.url + "/v1/classify", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
    except httpx.TransportError:
        pass
    assert httpx.get(server.url + "/health").status_code == 200
    metrics = httpx.get(server.url + "/metrics").text
    assert 'lmtailor_requests_total{route="/v1/classify",status="413"}' in metrics


def test_token_workers_a_killed_worker_and_graceful_shutdown(models, tmp_path):
    key = tmp_path / "key.txt"
    key.write_text("s3cret-token-of-some-length\n")
    srv = Server([f"clauses={models['clauses']}", "--api-key-file", str(key), "--workers", "2", "--threads", "1",
                  "--max-wait-ms", "400"], tmp_path / "server.log")  # fmt: skip
    try:
        body = {"input": ["either party may terminate"]}
        assert httpx.post(srv.url + "/v1/classify", json=body).status_code == 401
        bad = {"Authorization": "Bearer s3cret-token-of-some-lengtX"}
        assert httpx.post(srv.url + "/v1/classify", json=body, headers=bad).status_code == 401
        auth = {"Authorization": "Bearer s3cret-token-of-some-length"}
        first = httpx.post(srv.url + "/v1/classify", json=body, headers=auth)
        assert first.status_code == 200
        assert httpx.get(srv.url + "/health").status_code == 200  # open without the token

        workers = psutil.Process(srv.proc.pid).children(recursive=True)
        live = [w for w in workers if "spawn_main" in " ".join(w.cmdline())]
        assert len(live) == 2, [w.cmdline() for w in workers]
        live[0].kill()
        # The other worker answers meanwhile and the supervisor starts a new one; every answer is the right one.
        deadline, answers = time.monotonic() + 60, 0
        while time.monotonic() < deadline and answers < 10:
            try:
                r = httpx.post(srv.url + "/v1/classify", json=body, headers=auth, timeout=30)
            except httpx.TransportError:  # a connection the dead worker held
                continue
            assert r.status_code == 200 and r.json()["data"] == first.json()["data"]
            answers += 1
        assert answers == 10
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = [w for w in psutil.Process(srv.proc.pid).children(recursive=True) if w.is_running()]
            if sum("spawn_main" in " ".join(w.cmdline()) for w in now if w.status() != "zombie") == 2:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the supervisor did not replace the killed worker")

        # Graceful shutdown: a request waiting in its batch (400 ms) when SIGTERM arrives still gets its answer.
        result = {}
        t = threading.Thread(target=lambda: result.update(
            r=httpx.post(srv.url + "/v1/classify", json=body, headers=auth, timeout=30)))  # fmt: skip
        t.start()
        time.sleep(0.15)
        srv.proc.send_signal(signal.SIGTERM)
        t.join(30)
        assert result["r"].status_code == 200
        assert srv.proc.wait(30) in (0, -signal.SIGTERM)
    finally:
        srv.stop()


def test_serve_stage_writes_a_ready_to_run_folder(models, tmp_path):
    out = tmp_path / "serve"
    config = ServeConfig(models=[str(models["clauses"]), str(models["encoder"])], names=["clauses", "vectors"],
                         out_dir=out, port=9000, max_batch=16)  # fmt: skip
    run_serve_stage(config)
    saved = json.loads((out / "serve.json").read_text())
    assert saved["models"] == {"clauses": str(models["clauses"].resolve()), "vectors": str(models["encoder"].resolve())}
    assert saved["options"]["port"] == 9000 and saved["options"]["max_batch"] == 16
    cards = json.loads((out / "models.json").read_text())["data"]
    assert [c["kind"] for c in cards] == ["cls", "embed"]
    assert os.access(out / "serve.sh", os.X_OK) and str(out.resolve()) in (out / "serve.sh").read_text()
    specs, options = resolve(ServeCommand(models=[str(out)]))  # what `lmtailor serve FOLDER` starts from
    assert specs == {"clauses": models["clauses"].resolve(), "vectors": models["encoder"].resolve()}
    assert options is not None and options.port == 9000
    manifest = json.loads((out / "lmtailor.json").read_text())
    assert manifest["stage"] == "serve" and manifest["metrics"]["models"] == {"clauses": "cls", "vectors": "embed"}
