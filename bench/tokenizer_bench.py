"""Tokenizer benchmarks on ../shared/data (issue 2): coverage, fertility, UNK, term integrity, training speed.

Runs every stage through its `run` function, exactly as the CLI would, and writes one JSON with all numbers.
    .venv/bin/python bench/tokenizer_bench.py --out bench/results [--only en|zh|med|speed]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from lmtailor.corpus import CorpusConfig
from lmtailor.corpus import run as run_corpus
from lmtailor.terms import MergeConfig, MineConfig, run_merge, run_mine
from lmtailor.tokenizer import TokenizerEvalConfig, TokenizerTrainConfig, run_eval, run_train
from lmtailor.tokenizer.hf import load_fast_tokenizer

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
log = logging.getLogger("bench")


def _eval(tok: Path, inputs: list[Path], out: Path, terms: list[Path], split: str = "train") -> dict:
    cfg = TokenizerEvalConfig.build(
        tokenizer=tok, inputs=inputs, out_dir=out, terms=terms, split=split, overwrite=True, show_progress=False
    )
    return json.loads((run_eval(cfg) / "eval.json").read_text())["results"]


def _corpus(inputs: list[Path], out: Path) -> Path:
    # Everything into "train": the datasets are split already; the corpus stage only cleans and de-duplicates here.
    cfg = CorpusConfig.build(inputs=inputs, out_dir=out, split_ratios=[1.0, 0.0, 0.0], overwrite=True,
                             show_progress=False)  # fmt: skip
    return run_corpus(cfg)


def bench_en(work: Path) -> dict:
    cuad = DATA / "en-legal" / "cuad" / "contracts"
    train = _corpus([cuad / "train"], work / "en-corpus-train")
    test = _corpus([cuad / "test"], work / "en-corpus-test")
    t0 = time.perf_counter()
    mined = run_mine(MineConfig.build(inputs=[train], out_dir=work / "en-mined", overwrite=True, show_progress=False))
    mine_s = time.perf_counter() - t0
    terms = run_merge(MergeConfig.build(inputs=[mined / "terms.tsv"], out_dir=work / "en-terms", max_terms=100,
                                        overwrite=True, show_progress=False))  # fmt: skip
    glossary = terms / "terms.tsv"
    tok = run_train(TokenizerTrainConfig.build(inputs=[train], out_dir=work / "en-tokenizer", vocab_size=10_000,
                                               terms=[glossary], overwrite=True, show_progress=False))  # fmt: skip
    results = _eval(tok, [test], work / "en-eval", [glossary])
    manifest = json.loads((tok / "lmtailor.json").read_text())
    return {"results": results, "train": manifest["metrics"], "mine_seconds": round(mine_s, 1),
            "glossary_terms": sum(1 for _ in glossary.open()) - 1}  # fmt: skip


def bench_zh(work: Path) -> dict:
    laws = DATA / "zh-legal" / "laws"
    train = _corpus([laws / "train"], work / "zh-corpus-train")
    test = _corpus([laws / "test"], work / "zh-corpus-test")
    mined = run_mine(MineConfig.build(inputs=[train], out_dir=work / "zh-mined", overwrite=True, show_progress=False))
    thuocl = DATA / "zh-legal" / "terms" / "THUOCL_law.txt"
    # THUOCL is frequency-mined and noisy: keep its terms that the laws actually use, then the mined ones.
    terms = run_merge(MergeConfig.build(inputs=[thuocl, mined / "terms.tsv"], out_dir=work / "zh-terms",
                                        corpus=[train], min_corpus_freq=5, max_terms=6000, overwrite=True,
                                        show_progress=False))  # fmt: skip
    glossary = terms / "terms.tsv"
    sizes = {}
    for size in (8_000, 12_000, 15_000, 20_000):
        tok = run_train(TokenizerTrainConfig.build(inputs=[train], out_dir=work / f"zh-tokenizer-{size}",
                                                   vocab_size=size, terms=[glossary], overwrite=True,
                                                   show_progress=False))  # fmt: skip
        sizes[size] = _eval(tok, [test], work / f"zh-eval-{size}", [glossary])
    hf = load_fast_tokenizer(tok)
    probe = {w: hf.encode(w, add_special_tokens=False).tokens for w in ["不可抗力", "因不可抗力不能履行合同"]}
    manifest = json.loads((tok / "lmtailor.json").read_text())
    by_size = {size: {k: r["tokenizer"][k] for k in ("tokens_per_han_char", "unk_rate", "term_integrity")}
               for size, r in sizes.items()}  # fmt: skip
    return {"results": sizes[20_000], "by_vocab_size": by_size, "train": manifest["metrics"], "probe": probe,
            "glossary_terms": sum(1 for _ in glossary.open()) - 1}  # fmt: skip


def bench_med(work: Path) -> dict:
    cmeee = DATA / "zh-med" / "cmeee-v2"
    texts = work / "med-text"
    texts.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev"):
        rows = json.loads((cmeee / f"{split}.json").read_text(encoding="utf-8"))
        (texts / f"{split}.txt").write_text("\n\n".join(r["text"] for r in rows), encoding="utf-8")
    disease = DATA / "zh-med" / "terms" / "disease.txt"
    tok = run_train(TokenizerTrainConfig.build(inputs=[texts / "train.txt"], out_dir=work / "med-tokenizer",
                                               vocab_size=16_000, terms=[disease], overwrite=True,
                                               show_progress=False))  # fmt: skip
    results = _eval(tok, [texts / "dev.txt"], work / "med-eval", [disease])
    hf = load_fast_tokenizer(tok)
    probe = {
        w: hf.encode(w, add_special_tokens=False).tokens for w in ["心肌梗死", "急性心肌梗死", "患者急性心肌梗死后"]
    }
    return {"results": results, "probe": probe}


def bench_speed(work: Path, repeats: int = 2) -> dict:
    """lmtailor's BPE training vs a bare HF trainer with the same pipeline and settings, on the same corpus."""
    from tokenizers import Tokenizer, models, trainers

    from lmtailor.corpus import iter_texts
    from lmtailor.tokenizer.pipeline import SPECIAL_TOKENS, build_normalizer, build_pre_tokenizer

    train = work / "en-corpus-train"
    if not train.exists():
        train = _corpus([DATA / "en-legal" / "cuad" / "contracts" / "train"], train)
    bare, ours = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        tok = Tokenizer(models.BPE(unk_token="[UNK]", byte_fallback=True))
        tok.normalizer = build_normalizer(True)
        tok.pre_tokenizer = build_pre_tokenizer(False)
        trainer = trainers.BpeTrainer(vocab_size=10_000, min_frequency=2, special_tokens=SPECIAL_TOKENS,
                                      max_token_length=16, show_progress=False)  # fmt: skip
        tok.train_from_iterator(iter_texts([train]), trainer)
        bare.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        run_train(TokenizerTrainConfig.build(inputs=[train], out_dir=work / "speed-tokenizer", vocab_size=10_000,
                                             overwrite=True, show_progress=False))  # fmt: skip
        ours.append(time.perf_counter() - t0)
    return {"bare_hf_seconds": [round(x, 2) for x in bare], "lmtailor_seconds": [round(x, 2) for x in ours],
            "ratio_best": round(min(ours) / min(bare), 3)}  # fmt: skip


BENCHES = {"en": bench_en, "zh": bench_zh, "med": bench_med, "speed": bench_speed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    ap.add_argument("--only", choices=sorted(BENCHES), action="append")
    ap.add_argument("--work", type=Path, default=None, help="Keep intermediate folders here (default: a temp dir).")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is absent: these benchmarks need ../shared/data")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        results = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.processor()
                   or platform.machine(), "python": platform.python_version()}  # fmt: skip
        for name in args.only or list(BENCHES):
            t0 = time.perf_counter()
            results[name] = BENCHES[name](work)
            results[name]["bench_seconds"] = round(time.perf_counter() - t0, 1)
            log.info("%s: %s", name, json.dumps(results[name], ensure_ascii=False)[:2000])
            (args.out / "tokenizer_bench.json").write_text(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
