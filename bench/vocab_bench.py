"""Vocabulary trimming benchmark (issue 3): MiniLM trimmed to the CUAD contracts, checked on held-out contracts,
side by side with TextPruner's VocabularyPruner in the same run (when its separate venv exists).

    .venv/bin/python bench/vocab_bench.py --out bench/results [--textpruner-python /work/tp-venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from lmtailor.corpus import iter_texts
from lmtailor.tokenizer.hf import default_reference
from lmtailor.vocab import TrimConfig, run_trim
from lmtailor.vocab.counting import count_token_ids

REPO = Path(__file__).resolve().parents[1]
CUAD = REPO.parent / "shared" / "data" / "en-legal" / "cuad" / "contracts"
log = logging.getLogger("bench")


def heldout(original: Path, trimmed: Path, texts: list[str]) -> dict:
    """Token coverage and [UNK]s on all held-out text, original vs trimmed tokenizer."""
    old, new = (
        Tokenizer.from_file(str(original / "tokenizer.json")),
        Tokenizer.from_file(str(trimmed / "tokenizer.json")),
    )
    old_counts, _ = count_token_ids(old, texts)
    new_counts, _ = count_token_ids(new, texts)
    kept = {t for t in new.get_vocab(with_added_tokens=True)}
    old_vocab = old.get_vocab(with_added_tokens=True)
    kept_ids = np.array([old_vocab[t] for t in kept if t in old_vocab])
    return {
        "token_coverage": round(float(old_counts[kept_ids].sum() / old_counts.sum()), 5),
        "unk_original": int(old_counts[old.token_to_id("[UNK]")]),
        "unk_trimmed": int(new_counts[new.token_to_id("[UNK]")]),
        "tokens_original": int(old_counts.sum()),
        "tokens_trimmed": int(new_counts.sum()),
    }


def trim(corpus: Path, out: Path, **kw) -> dict:
    t0 = time.perf_counter()
    cfg = TrimConfig.build(model=str(default_reference()), inputs=[corpus], verify_inputs=[CUAD / "test"],
                           out_dir=out, overwrite=True, show_progress=False, **kw)  # fmt: skip
    folder = run_trim(cfg)
    seconds = time.perf_counter() - t0
    report = json.loads((folder / "trim_report.json").read_text())
    report["wall_seconds"] = round(seconds, 2)
    return report


def fitted_head(work: Path, corpus: Path) -> tuple[Path, dict]:
    """MiniLM with an MLM head trained on the train contracts (encoder frozen), so MLM losses mean something."""
    import torch
    from transformers import AutoTokenizer, BertForMaskedLM

    from lmtailor.vocab.mlm import fit_mlm_head

    folder = work / "minilm-mlm"
    if (folder / "head_fit.json").is_file():  # fitted by an earlier run with the same work folder
        return folder, json.loads((folder / "head_fit.json").read_text())
    torch.manual_seed(0)
    model = BertForMaskedLM.from_pretrained(str(default_reference()))
    tok = AutoTokenizer.from_pretrained(str(default_reference()))
    texts = list(iter_texts([corpus]))[::10]
    t0 = time.perf_counter()
    curve = fit_mlm_head(model, tok, texts, steps=300)
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    info = {"steps": len(curve), "loss_first": round(curve[0], 3), "loss_last_50": round(sum(curve[-50:]) / 50, 3),
            "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    (folder / "head_fit.json").write_text(json.dumps(info))
    return folder, info


def extend(work: Path, test_texts: list[str], base: Path) -> dict:
    """MiniLM + 300 mined CUAD terms; MLM loss with mean-of-pieces vs random rows for the new tokens."""
    import torch
    from transformers import AutoTokenizer, BertForMaskedLM

    from lmtailor.terms import MergeConfig, MineConfig, run_merge, run_mine
    from lmtailor.vocab import ExtendConfig, run_extend
    from lmtailor.vocab.mlm import mlm_loss

    mined = run_mine(MineConfig.build(inputs=[CUAD / "train"], out_dir=work / "mined", overwrite=True,
                                      show_progress=False))  # fmt: skip
    terms = run_merge(MergeConfig.build(inputs=[mined / "terms.tsv"], out_dir=work / "terms", max_terms=300,
                                        overwrite=True, show_progress=False))  # fmt: skip
    t0 = time.perf_counter()
    out = run_extend(ExtendConfig.build(model=str(base), terms=[terms / "terms.tsv"],
                                        verify_inputs=[CUAD / "test"], out_dir=work / "extended", overwrite=True,
                                        show_progress=False))  # fmt: skip
    report = json.loads((out / "extend_report.json").read_text())
    report["seconds"] = round(time.perf_counter() - t0, 2)
    report.pop("pieces", None)
    # `base` carries an MLM head fitted on the train contracts; its decoder is tied to the compared embeddings.
    tok = AutoTokenizer.from_pretrained(str(out))
    texts = test_texts[:300]
    losses = {}
    for name in ("mean_init", "random_init", "original"):
        torch.manual_seed(0)
        folder = base if name == "original" else out
        model = BertForMaskedLM.from_pretrained(str(folder)).eval()
        if name == "random_init":
            with torch.no_grad():
                rows = model.get_input_embeddings().weight[report["vocab_before"] :]
                rows.normal_(0.0, model.config.initializer_range, generator=torch.Generator().manual_seed(1))
        use_tok = AutoTokenizer.from_pretrained(str(folder))
        losses[name] = round(mlm_loss(model, use_tok, texts), 4)
    report["mlm_loss_heldout"] = losses
    del tok
    return report


def transfer(work: Path, corpus: Path, base: Path) -> dict:
    """MiniLM moved onto an 8,000-token domain tokenizer trained on the same contracts; MLM loss before training."""
    from lmtailor.tokenizer import TokenizerTrainConfig, run_train
    from lmtailor.vocab import TransferConfig, run_transfer

    tok = run_train(TokenizerTrainConfig.build(inputs=[corpus], out_dir=work / "tok8k", vocab_size=8000,
                                               overwrite=True, show_progress=False))  # fmt: skip
    t0 = time.perf_counter()
    cfg = TransferConfig.build(
        model=str(base),
        tokenizer=tok,
        verify_inputs=[CUAD / "test"],
        verify_texts=300,
        out_dir=work / "transferred",
        overwrite=True,
        show_progress=False,
    )
    out = run_transfer(cfg)
    report = json.loads((out / "transfer_report.json").read_text())
    report["seconds"] = round(time.perf_counter() - t0, 2)
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    ap.add_argument("--work", type=Path, default=Path("/tmp/vocab-bench"))
    ap.add_argument("--textpruner-python", type=Path, default=Path("/work/tp-venv/bin/python"))
    ap.add_argument("--only", choices=["trim", "extend", "transfer", "textpruner"], action="append")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    from lmtailor.corpus import CorpusConfig
    from lmtailor.corpus import run as run_corpus

    test_texts = list(iter_texts([CUAD / "test"]))
    t0 = time.perf_counter()
    corpus = run_corpus(CorpusConfig.build(inputs=[CUAD / "train"], out_dir=args.work / "corpus", overwrite=True,
                                           split_ratios=[1, 0, 0], show_progress=False))  # fmt: skip
    corpus_seconds = time.perf_counter() - t0
    results: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "command": "python bench/vocab_bench.py",
        "corpus_stage_seconds": round(corpus_seconds, 2),
    }
    todo = set(args.only or ["trim", "extend", "transfer", "textpruner"])
    trims = {"coverage_0.999": {"coverage": 0.999}, "size_10435": {"size": 10_435, "coverage": None}}
    for name, kw in trims.items() if "trim" in todo else ():
        report = trim(corpus, args.work / name, **kw)
        report["heldout_all"] = heldout(default_reference(), args.work / name, test_texts)
        results[name] = report
        log.info("%s: %s", name, json.dumps(report)[:1500])
    if {"extend", "transfer"} & todo:
        base, results["mlm_head"] = fitted_head(args.work, corpus)
        log.info("mlm head: %s", results["mlm_head"])
    if "extend" in todo:
        results["extend"] = extend(args.work, test_texts, base)
        log.info("extend: %s", json.dumps(results["extend"]))
    if "transfer" in todo:
        results["transfer"] = transfer(args.work, corpus, base)
        log.info("transfer: %s", json.dumps(results["transfer"]))
    if "textpruner" in todo and args.textpruner_python.is_file():
        tp_out = args.work / "textpruner.json"
        cmd = [str(args.textpruner_python), str(REPO / "bench" / "textpruner_vocab.py"), "--train", str(CUAD / "train"),
               "--test", str(CUAD / "test"), "--out", str(tp_out)]  # fmt: skip
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        results["textpruner"] = json.loads(tp_out.read_text()) if tp_out.is_file() else {"error": proc.stderr[-2000:]}
        results["textpruner"]["bench_wall_seconds"] = round(time.perf_counter() - t0, 2)
    (args.out / "vocab_bench.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no bar per model load and save in the logs, as in the CLI
    main()
