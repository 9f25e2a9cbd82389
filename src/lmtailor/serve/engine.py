"""The models a server holds: loading each folder once, answering a batch of texts, and describing itself.

A task folder (classification or NER; PyTorch, ONNX, int8 or 4-bit) is answered by
`lmtailor.tasks.evaluate.predict_records`, the code `lmtailor predict` runs, so long texts follow the folder's own
`long_text`/window policy and a served answer equals the command line's. Any other HF encoder folder serves
embeddings: the mean of its last hidden states over the real tokens (the CLS state where a sentence-transformers
`1_Pooling/config.json` says so), L2-normalised, as sentence-transformers and OpenAI's API give them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lmtailor.errors import InputFormatError
from lmtailor.models.folder import check_model_folder
from lmtailor.models.loading import load_pretrained
from lmtailor.outputs import read_manifest

log = logging.getLogger(__name__)

TASK_ARCHS = ("ForSequenceClassification", "ForTokenClassification")


@dataclass
class ServedModel:
    """One loaded model folder and what it can answer (`kind`: cls, ner or embed)."""

    name: str
    folder: Path
    kind: str
    tokenizer: object
    model: object
    spec: object | None = None  # the task folder's TaskSpec
    labels: list[str] = field(default_factory=list)
    max_length: int = 512
    pooling: str = "mean"
    card: dict = field(default_factory=dict)

    def infer(self, texts: list[str], batch_size: int = 32) -> list[dict]:
        """The answer for each text, `batch_size` texts (or windows) per forward pass: for cls every label with its
        score (best first), for ner the entities, for embed the vector and the number of tokens read."""
        if self.kind == "embed":  # by length, so each forward pass pads little; answers go back in order
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            out: list[dict] = [{}] * len(texts)
            for b in range(0, len(order), batch_size):
                idx = order[b : b + batch_size]
                for i, record in zip(idx, self._embed([texts[i] for i in idx]), strict=True):
                    out[i] = record
            return out
        from lmtailor.tasks.evaluate import predict_records

        records = predict_records(self.model, self.tokenizer, self.spec, texts, batch_size=batch_size,
                                  top_k=max(len(self.labels), 1))  # fmt: skip
        for record in records:
            record.pop("text", None)
        return records

    @torch.no_grad()
    def _embed(self, texts: list[str]) -> list[dict]:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        hidden = self.model(**batch).last_hidden_state  # [B, T, H]
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
        pooled = hidden[:, 0] if self.pooling == "cls" else (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        vectors = torch.nn.functional.normalize(pooled.float(), dim=-1).numpy()  # [B, H]
        tokens = batch["attention_mask"].sum(1).tolist()
        return [{"embedding": v.tolist(), "tokens": int(n)} for v, n in zip(vectors, tokens, strict=True)]

    def tokenize(self, text: str) -> dict:
        """The tokens the model reads for `text` (no truncation): id, token, character offsets, special or not."""
        enc = self.tokenizer(text, return_offsets_mapping=True, add_special_tokens=True, truncation=False)
        special = set(self.tokenizer.all_special_ids)
        tokens = [
            {"id": int(i), "token": tok, "start": int(s), "end": int(e), "special": int(i) in special}
            for i, tok, (s, e) in zip(enc["input_ids"], enc.tokens(), enc["offset_mapping"], strict=True)
        ]
        return {"tokens": tokens, "count": len(tokens)}


def load_model(name: str, folder: Path, provider: str = "cpu", threads: int | None = None) -> ServedModel:
    """Load `folder` as a task model when it is one (task.json or a classification/NER head), else as an encoder."""
    check_model_folder(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    archs = config.get("architectures") or [""]
    if (folder / "task.json").is_file() or archs[0].endswith(TASK_ARCHS):
        from lmtailor.models.task_folder import load_task_model

        # no busy-waiting: ORT's spinning threads would take the cores the HTTP side needs between batches
        model, tokenizer, spec = load_task_model(folder, provider, threads, spin=False, fused=True)
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        served = ServedModel(name, folder, spec.task, tokenizer, model, spec, labels, spec.max_length)
    else:
        served = _load_encoder(name, folder)
    served.card = model_card(served)
    log.info("loaded %s (%s) from %s", name, served.kind, folder)
    return served


def _load_encoder(name: str, folder: Path) -> ServedModel:
    from transformers import AutoModel, AutoTokenizer

    if not any((folder / f).is_file() for f in ("model.safetensors", "pytorch_model.bin")):
        raise InputFormatError(
            f"{folder} has no PyTorch weights and no task.json; serve embeddings from an encoder folder "
            "(pretrain, vocab or an HF model), or a task model from finetune/distill/export/quantize."
        )
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if not tokenizer.is_fast:
        raise InputFormatError(f"{folder} has no fast tokenizer (tokenizer.json); lmtailor needs character offsets.")
    model = load_pretrained(AutoModel, str(folder))[0].eval()  # an MLM folder's head is dropped: one log line
    limit = min(getattr(model.config, "max_position_embeddings", 512), tokenizer.model_max_length or 512, 8192)
    pooling_file = folder / "1_Pooling" / "config.json"
    pooling = "mean"
    if pooling_file.is_file() and json.loads(pooling_file.read_text()).get("pooling_mode_cls_token"):
        pooling = "cls"
    return ServedModel(name, folder, "embed", tokenizer, model, max_length=int(limit), pooling=pooling)


def model_card(served: ServedModel) -> dict:
    """What GET /v1/models says of a model: kind, labels, how it reads text, size, and the metrics its stage
    recorded in lmtailor.json."""
    folder = served.folder
    kept = (".onnx", ".safetensors", ".bin", ".data", ".joblib")  # weights, graphs, a fused folder's baseline
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file() and p.suffix in kept)
    card: dict = {"id": served.name, "object": "model", "owned_by": "lmtailor", "kind": served.kind,
                  "format": "onnx" if (folder / "model.onnx").is_file() else "pytorch", "size_bytes": size,
                  "max_length": served.max_length}  # fmt: skip
    if served.labels:
        card["labels"] = served.labels
    if served.spec is not None:
        card["long_text"] = served.spec.long_text if served.kind == "cls" else f"windows (stride {served.spec.stride})"
        card["metric"] = served.spec.metric
        if served.spec.fusion is not None:  # `lmtailor fuse`: the answers are the model's and its baseline's
            card["fusion"] = {k: served.spec.fusion[k] for k in ("weight", "temperature")}
    if served.kind == "embed":
        card["pooling"] = served.pooling
        card["dimensions"] = int(served.model.config.hidden_size)
    if (folder / "lmtailor.json").is_file():
        manifest = read_manifest(folder)
        card["stage"] = manifest.get("stage")
        metrics = manifest.get("metrics", {})
        card["metrics"] = {k: v for k, v in metrics.items() if isinstance(v, int | float | str) or k == "eval"}
    return card


def default_threads(workers: int) -> int:
    """Inference threads per worker: the usable physical cores shared among the workers, at least one."""
    from lmtailor.hardware import usable_physical_cores

    return max(1, usable_physical_cores() // workers)
