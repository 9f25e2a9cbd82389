"""TextPruner's TransformerPruner on a fine-tuned classifier, for comparison with `lmtailor prune` (issue 4).

TextPruner 1.1.post2 (2023) crashes on transformers 5, so this script runs in its OWN virtual environment and must
not import lmtailor. Set it up once (torch first, so pip takes the CPU build from this machine's wheel folder;
textpruner with --no-deps because its setup.py asks for numpy<1.22 on Python 3.10+):

    python3 -m venv /tmp/tp-venv
    /tmp/tp-venv/bin/pip install torch==2.13.0
    /tmp/tp-venv/bin/pip install "transformers<5" tqdm sentencepiece protobuf numpy
    /tmp/tp-venv/bin/pip install --no-deps textpruner

(checked with textpruner 1.1.post2, transformers 4.57.6, torch 2.13.0+cpu, Python 3.11). Then:

    /tmp/tp-venv/bin/python bench/textpruner_compare.py --model FINETUNED_DIR --train train.jsonl \
        --test test.jsonl --out FILE.json --target-ffn-size 768 --target-heads 8 [--iters 4] [--work DIR]

The files hold one JSON object per line with a text and a label field (--text-field, --label-field); labels must be
the model's (config.label2id). Steps: load the model and tokenizer (a transformers-5 folder whose tokenizer_config
names "TokenizersBackend" is read from tokenizer.json with PreTrainedTokenizerFast instead); score the test file;
prune with TransformerPruner (pruning_method="iterative", importance from the task loss over a DataLoader of the
train file, `--iters` steps, even head/FFN masks, head and FFN pruned together); score the pruned model in memory;
save it with TextPruner's `save_model` (pytorch_model.bin + config.json; the tokenizer is saved beside it by this
script, since TextPruner does not); then a fresh subprocess loads the saved folder with
AutoModelForSequenceClassification.from_pretrained as it is, scores it and compares its logits with the in-memory
model's. Nothing is fetched from a hub (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

# Before transformers is imported (only inside functions): no hub look-ups, no progress bars in the bench log.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("textpruner", "transformers", "tokenizers", "torch", "numpy"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def _err(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:2000]


def read_jsonl(path: Path, text_field: str, label_field: str) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if text_field not in row or label_field not in row:
            raise SystemExit(f"{path}:{n}: no {text_field!r} or {label_field!r} field; pass --text-field/--label-field")
        texts.append(str(row[text_field]))
        labels.append(str(row[label_field]))
    if not texts:
        raise SystemExit(f"{path} has no examples")
    return texts, labels


def load_tokenizer(folder: Path):
    """AutoTokenizer, or tokenizer.json read directly where the folder was saved by transformers 5."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    try:
        return AutoTokenizer.from_pretrained(str(folder)), "AutoTokenizer"
    except ValueError:
        cfg = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        names = ("unk_token", "pad_token", "cls_token", "sep_token", "mask_token", "bos_token", "eos_token")
        special = {k: cfg[k] for k in names if isinstance(cfg.get(k), str)}
        tok = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), **special)
        return tok, "PreTrainedTokenizerFast(tokenizer.json)"


def label_ids(model, labels: list[str], path: Path) -> list[int]:
    label2id = {str(k): int(v) for k, v in model.config.label2id.items()}
    unknown = sorted(set(labels) - set(label2id))
    if unknown:
        raise SystemExit(f"{path} has labels the model does not know: {unknown[:5]}; model labels: {sorted(label2id)}")
    return [label2id[lab] for lab in labels]


def batches(tok, texts: list[str], ids: list[int], batch_size: int, max_length: int, shuffle: bool, seed: int):
    """A torch DataLoader of tokenised batches with labels (the loss is the output TextPruner differentiates)."""
    import torch
    from torch.utils.data import DataLoader

    def collate(rows: list[tuple[str, int]]) -> dict:
        enc = tok([t for t, _ in rows], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        enc["labels"] = torch.tensor([y for _, y in rows])
        return dict(enc)

    gen = torch.Generator().manual_seed(seed)
    return DataLoader(list(zip(texts, ids, strict=True)), batch_size=batch_size, shuffle=shuffle, generator=gen,
                      collate_fn=collate)  # fmt: skip


def score(model, loader) -> tuple[dict, object]:
    """Accuracy over the loader and the stacked logits [n, C]."""
    import torch

    model.eval()
    correct, total, logits, t0 = 0, 0, [], time.perf_counter()
    with torch.no_grad():
        for batch in loader:
            labels = batch.pop("labels")
            out = model(**batch).logits
            correct += int((out.argmax(-1) == labels).sum())
            total += len(labels)
            logits.append(out)
    seconds = time.perf_counter() - t0
    return {"accuracy": round(correct / total, 4), "examples": total, "seconds": round(seconds, 3)}, torch.cat(logits)


def shape(model) -> dict:
    cfg = model.config
    pruned = {str(k): len(v) for k, v in (getattr(cfg, "pruned_heads", None) or {}).items()}
    heads = [cfg.num_attention_heads - pruned.get(str(i), 0) for i in range(cfg.num_hidden_layers)]
    # weight.shape, not out_features: TextPruner swaps in smaller weights without updating the attribute.
    ffn = [layer.intermediate.dense.weight.shape[0] for layer in model.base_model.encoder.layer]
    return {"params": sum(p.numel() for p in model.parameters()), "heads_per_layer": heads, "ffn_per_layer": ffn}


def prune(args: argparse.Namespace) -> dict:
    import torch
    from textpruner import GeneralConfig, TransformerPruner, TransformerPruningConfig
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads or max(1, os.cpu_count() or 1))
    tok, tok_loader = load_tokenizer(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(str(args.model))
    train_texts, train_labels = read_jsonl(args.train, args.text_field, args.label_field)
    test_texts, test_labels = read_jsonl(args.test, args.text_field, args.label_field)
    train_loader = batches(tok, train_texts, label_ids(model, train_labels, args.train), args.batch_size,
                           args.max_length, True, args.seed)  # fmt: skip
    test_loader = batches(tok, test_texts, label_ids(model, test_labels, args.test), args.batch_size,
                          args.max_length, False, args.seed)  # fmt: skip
    res: dict = {"tokenizer_loader": tok_loader, "model_class": type(model).__name__,
                 "train_examples": len(train_texts), "test_examples": len(test_texts)}  # fmt: skip
    res["original"] = {**shape(model), "test": score(model, test_loader)[0]}

    args.work.mkdir(parents=True, exist_ok=True)
    out_root = Path(tempfile.mkdtemp(prefix="textpruner-", dir=args.work))
    config = TransformerPruningConfig(target_ffn_size=args.target_ffn_size, target_num_of_heads=args.target_heads,
                                      pruning_method="iterative", n_iters=args.iters)  # fmt: skip
    pruner = TransformerPruner(model, transformer_pruning_config=config,
                               general_config=GeneralConfig(use_device="cpu", output_dir=str(out_root)))  # fmt: skip
    t0 = time.perf_counter()
    pruner.prune(dataloader=train_loader, save_model=False)
    res["prune_seconds"] = round(time.perf_counter() - t0, 3)
    test_in_memory, logits = score(model, test_loader)
    res["pruned_in_memory"] = {**shape(model), "test": test_in_memory}
    save_dir = Path(pruner.save_model())
    tok.save_pretrained(str(save_dir))  # TextPruner saves weights and config only
    torch.save(logits, save_dir.parent / "in_memory_logits.pt")
    res["save_dir"] = str(save_dir)
    res["saved_files"] = {p.name: p.stat().st_size for p in sorted(save_dir.iterdir()) if p.is_file()}
    return res


def check(args: argparse.Namespace) -> dict:
    """In a fresh interpreter: load the saved folder as it is, score it, compare with the in-memory logits."""
    import torch
    from transformers import AutoModelForSequenceClassification

    save_dir = args.check
    res: dict = {}
    try:
        t0 = time.perf_counter()
        model = AutoModelForSequenceClassification.from_pretrained(str(save_dir)).eval()
        res["load"] = {"ok": True, "class": type(model).__name__, "seconds": round(time.perf_counter() - t0, 3)}
    except Exception as e:  # recorded, not fixed: the point is whether it loads without hand edits
        return {"load": {"ok": False, "error": _err(e), "traceback": traceback.format_exc()[-3000:]}}
    tok, _ = load_tokenizer(save_dir)
    texts, labels = read_jsonl(args.test, args.text_field, args.label_field)
    loader = batches(tok, texts, label_ids(model, labels, args.test), args.batch_size, args.max_length, False, 0)
    test, logits = score(model, loader)
    expected = torch.load(save_dir.parent / "in_memory_logits.pt")
    res.update(shape(model), test=test, max_abs_logit_diff_vs_in_memory=float((logits - expected).abs().max()))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="fine-tuned sequence-classification folder")
    ap.add_argument("--train", type=Path, required=True, help="jsonl for importance scores (the train split)")
    ap.add_argument("--test", type=Path, required=True, help="jsonl to score before and after pruning")
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write")
    ap.add_argument("--target-ffn-size", type=int, required=True, help="TransformerPruningConfig.target_ffn_size")
    ap.add_argument("--target-heads", type=int, required=True, help="TransformerPruningConfig.target_num_of_heads")
    ap.add_argument("--iters", type=int, default=4, help="TransformerPruningConfig.n_iters")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "textpruner-compare")
    ap.add_argument("--text-field", default="text")
    ap.add_argument("--label-field", default="label")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all CPUs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", type=Path, default=None, help=argparse.SUPPRESS)  # internal: the fresh subprocess
    args = ap.parse_args()

    if args.check is not None:
        args.out.write_text(json.dumps(check(args), indent=2))
        return

    result: dict = {"tool": "textpruner.TransformerPruner", "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "command": shlex.join([sys.executable, *sys.argv]), "versions": versions(),
                    "model_dir": str(args.model), "train": str(args.train), "test": str(args.test),
                    "target_ffn_size": args.target_ffn_size, "target_num_of_heads": args.target_heads,
                    "n_iters": args.iters, "pruning_method": "iterative"}  # fmt: skip
    t0 = time.perf_counter()
    try:
        result.update(prune(args))
    except Exception as e:
        result["error"] = _err(e)
        result["traceback"] = traceback.format_exc()[-3000:]
    if "save_dir" in result:
        check_out = Path(result["save_dir"]).parent / "check.json"
        passed = ("--model", "--train", "--test", "--text-field", "--label-field", "--batch-size", "--max-length")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--out", str(check_out), "--check", result["save_dir"],
               "--target-ffn-size", "0", "--target-heads", "0"]  # fmt: skip
        for flag in passed:
            cmd += [flag, str(getattr(args, flag[2:].replace("-", "_")))]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if check_out.is_file():
            result["reloaded"] = json.loads(check_out.read_text(encoding="utf-8"))
        else:
            result["reloaded"] = {"error": f"check exited {proc.returncode}", "stderr": proc.stderr[-3000:]}
    result["seconds"] = round(time.perf_counter() - t0, 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result.get(k) for k in ("original", "pruned_in_memory", "reloaded", "error")}, indent=2))


if __name__ == "__main__":
    main()
