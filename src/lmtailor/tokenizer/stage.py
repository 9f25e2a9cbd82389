"""Entry points of the tokenizer stage: `run_train` writes an HF tokenizer folder, `run_eval` a comparison report."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from lmtailor.errors import EmptyInputError, InputNotFoundError
from lmtailor.outputs import stage_output, write_json
from lmtailor.tokenizer.config import TokenizerEvalConfig, TokenizerTrainConfig
from lmtailor.tokenizer.hf import default_reference, load_fast_tokenizer, save_hf_tokenizer
from lmtailor.tokenizer.metrics import measure
from lmtailor.tokenizer.protect import TermMatcher
from lmtailor.tokenizer.report import examples, render_markdown

log = logging.getLogger(__name__)


def _load_terms(paths: list[Path], max_terms: int | None) -> list[str]:
    from lmtailor.terms import load_terms

    terms: list[str] = []
    for p in paths:
        terms.extend(load_terms(Path(p)))
    return terms[:max_terms] if max_terms is not None else terms


def _check_paths(paths: list[Path], what: str) -> None:
    for p in paths:
        if not Path(p).exists():
            raise InputNotFoundError(f"{what} {p} does not exist; check the path.")


def run_train(config: TokenizerTrainConfig) -> Path:
    """Train a domain tokenizer on `config.inputs` and write it as an HF tokenizer folder."""
    from lmtailor.corpus import iter_texts
    from lmtailor.tokenizer.train import train_tokenizer

    _check_paths(config.inputs, "training input")
    _check_paths(config.terms, "glossary")
    terms = _load_terms(config.terms, config.max_terms)
    with stage_output(config) as out:
        for i, p in enumerate(config.inputs):
            out.add_input(f"inputs[{i}]", p)
        for i, p in enumerate(config.terms):
            out.add_input(f"terms[{i}]", p)
        t0 = time.perf_counter()
        texts = iter_texts(config.inputs, split=config.split, show_progress=config.show_progress)
        tokenizer, report = train_tokenizer(texts, terms, config)
        report["train_seconds"] = round(time.perf_counter() - t0, 2)
        save_hf_tokenizer(tokenizer, out.dir, config.model_max_length)
        (out.dir / "protected_terms.txt").write_text("".join(t + "\n" for t in terms), encoding="utf-8")
        out.metrics.update(report)
        log.info(
            "trained %s tokenizer: %d tokens in %.1fs", config.algorithm, report["vocab_size"], report["train_seconds"]
        )
    return Path(config.out_dir)


def _batches(texts: Iterator[str], size: int = 256) -> Iterator[list[str]]:
    while batch := list(islice(texts, size)):
        yield batch


def run_eval(config: TokenizerEvalConfig) -> Path:
    """Measure a tokenizer against a reference on held-out text; write eval.json and eval.md."""
    from lmtailor.corpus import iter_texts

    _check_paths([config.tokenizer, *config.inputs], "input")
    _check_paths(config.terms, "glossary")
    reference = config.reference or str(default_reference())
    tokenizers = {"tokenizer": load_fast_tokenizer(config.tokenizer), "reference": load_fast_tokenizer(reference)}
    terms = _load_terms(config.terms, config.max_terms)
    lowercase = True  # glossary occurrences are found case-insensitively, as a reader would count them
    matcher = TermMatcher(terms, lowercase=lowercase) if terms else None
    with stage_output(config) as out:
        out.add_input("tokenizer", Path(config.tokenizer))
        for i, p in enumerate(config.inputs):
            out.add_input(f"inputs[{i}]", p)
        texts = iter_texts(config.inputs, split=config.split, show_progress=config.show_progress)
        if config.max_texts:
            texts = islice(texts, config.max_texts)
        sample: list[str] = []

        def keep_sample(batches: Iterator[list[str]]) -> Iterator[list[str]]:
            for b in batches:
                if len(sample) < 2000:
                    sample.extend(b[: 2000 - len(sample)])
                yield b

        results = measure(tokenizers, keep_sample(_batches(iter(texts))), matcher)
        if not results["tokenizer"]["texts"]:
            raise EmptyInputError(f"evaluation inputs {[str(p) for p in config.inputs]} contain no text.")
        report = {
            "tokenizer_path": str(Path(config.tokenizer).resolve()),
            "reference_path": str(reference),
            "split": config.split,
            "glossary_terms": len(terms),
            "results": results,
            "examples": examples(tokenizers, sample, matcher, config.examples),
        }
        write_json(out.dir / "eval.json", report)
        (out.dir / "eval.md").write_text(render_markdown(report), encoding="utf-8")
        out.metrics.update({k: v for k, v in results["tokenizer"].items() if k != "most_broken_terms"})
    return Path(config.out_dir)
