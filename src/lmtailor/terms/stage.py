"""Stage 2, `lmtailor terms`: the entry points `run_mine` and `run_merge`, each writing one output folder.

Both write `terms.tsv` plus `lmtailor.json` (config, inputs, metrics) into a folder that appears only on success.
Text is read with `lmtailor.corpus.iter_texts`, so inputs may be corpus folders or raw documents.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from lmtailor.errors import EmptyInputError, InputNotFoundError
from lmtailor.outputs import stage_output
from lmtailor.terms.config import MergeConfig, MineConfig
from lmtailor.terms.glossary import MERGED_COLUMNS, MINED_COLUMNS, TERMS_FILE, read_term_file, write_terms_tsv
from lmtailor.terms.merge import MergeReport, cap_terms, collect_terms, filter_by_corpus, priority_rows
from lmtailor.terms.mine import EnglishMiner, EnglishParams, MinedTerm, MineResult
from lmtailor.terms.mine_zh import ChineseMiner, ChineseParams
from lmtailor.terms.occurrences import count_occurrences
from lmtailor.terms.script import detect_language

log = logging.getLogger(__name__)


def _texts(paths: Sequence[Path], split: str, show_progress: bool) -> Iterator[str]:
    # Imported here: the corpus stage is a sibling package, and `terms` must import without pulling it in.
    from lmtailor.corpus import iter_texts

    return iter_texts(list(paths), split=split, show_progress=show_progress)


def _check_exists(paths: Sequence[Path], what: str) -> None:
    for path in paths:
        if not Path(path).exists():
            raise InputNotFoundError(f"{what} {path} does not exist; check the path (and the working directory).")


def _make_miners(config: MineConfig) -> dict[str, EnglishMiner | ChineseMiner]:
    miners: dict[str, EnglishMiner | ChineseMiner] = {}
    if "en" in config.enabled_languages():
        miners["en"] = EnglishMiner(EnglishParams(config.min_freq, config.en_max_words, config.en_min_pmi,
                                                  config.en_single_words))  # fmt: skip
    if "zh" in config.enabled_languages():
        miners["zh"] = ChineseMiner(ChineseParams(config.min_freq, config.zh_max_chars, config.zh_min_pmi,
                                                  config.zh_min_entropy, config.zh_max_words,
                                                  config.zh_word_boundaries))  # fmt: skip
    return miners


def _route(texts: Iterator[str], miners: dict[str, EnglishMiner | ChineseMiner]) -> Counter:
    """Feed each text to the miner of its detected language; returns texts per language ('none': no letters)."""
    seen: Counter = Counter()
    only = next(iter(miners)) if len(miners) == 1 else None
    for text in texts:
        lang = detect_language(text)
        seen[lang or "none"] += 1
        # With one language asked for, texts of the other script still go to it: each miner only looks at its own
        # script, so a Chinese law quoting an English name gives the English miner that name and nothing else.
        target = only if only is not None and lang is not None else lang
        if target in miners:
            miners[target].feed(text)
    return seen


def run_mine(config: MineConfig) -> Path:
    """Mine domain terms from `config.inputs`; writes `terms.tsv` (term, score, freq, lang) and returns the folder."""
    _check_exists(config.inputs, "input")
    t0 = time.perf_counter()
    with stage_output(config) as out:
        for i, path in enumerate(config.inputs):
            out.add_input(f"inputs[{i}]", path)
        miners = _make_miners(config)
        texts_seen = _route(_texts(config.inputs, config.split, config.show_progress), miners)
        results: dict[str, MineResult] = {lang: miner.mine() for lang, miner in miners.items()}
        terms = sorted((t for r in results.values() for t in r.terms), key=lambda t: (-t.score, t.term))
        if not terms:
            raise EmptyInputError(
                f"no terms found in {', '.join(map(str, config.inputs))} (texts by language: {dict(texts_seen)}); "
                f"the corpus may be too small for min_freq={config.min_freq}: lower it or add text."
            )
        kept: list[MinedTerm] = terms[: config.max_terms]
        write_terms_tsv(out.dir / TERMS_FILE, MINED_COLUMNS, ((t.term, t.score, t.freq, t.lang) for t in kept))
        out.metrics.update(
            {
                "mode": "mine",
                "texts_by_language": dict(sorted(texts_seen.items())),
                "languages": {lang: _language_metrics(r, kept, lang) for lang, r in results.items()},
                "terms_scored": len(terms),
                "terms_kept": len(kept),
                "mining_seconds": round(time.perf_counter() - t0, 2),
            }
        )
        log.info("kept %d of %d scored terms in %.1fs", len(kept), len(terms), time.perf_counter() - t0)
    return Path(config.out_dir)


def _language_metrics(result: MineResult, kept: list[MinedTerm], lang: str) -> dict[str, int]:
    return {
        "units": result.units,
        "ngrams_counted": result.ngrams_counted,
        "candidates": result.candidates,
        "scored": len(result.terms),
        "kept": sum(1 for t in kept if t.lang == lang),
    }


def run_merge(config: MergeConfig) -> Path:
    """Merge term lists and glossaries; writes `terms.tsv` (term, score, freq, source) and returns the folder."""
    _check_exists(config.inputs, "term input")
    if config.corpus is not None:
        _check_exists(config.corpus, "corpus")
    report = MergeReport()
    files = [(Path(p).name, read_term_file(Path(p))) for p in config.inputs]
    terms = collect_terms(files, config.lowercase, config.max_term_chars, report)
    if config.corpus is not None and terms:
        counts = count_occurrences([t.term for t in terms], _texts(config.corpus, config.split, config.show_progress))
        terms = filter_by_corpus(terms, counts, config.min_corpus_freq, report)
    terms = cap_terms(terms, config.max_terms, report)
    if not terms:
        raise EmptyInputError(
            f"no usable terms in {', '.join(map(str, config.inputs))} ({report.as_metrics()}); check the files' "
            "format (one term a line, term<TAB>freq, or a terms.tsv) and, with a corpus, min_corpus_freq."
        )
    with stage_output(config) as out:
        for i, path in enumerate(config.inputs):
            out.add_input(f"inputs[{i}]", path)
        for i, path in enumerate(config.corpus or []):
            out.add_input(f"corpus[{i}]", path)
        write_terms_tsv(out.dir / TERMS_FILE, MERGED_COLUMNS, priority_rows(terms))
        out.metrics.update({"mode": "merge", **report.as_metrics()})
        log.info("merged %d terms: %s", report.kept, report.as_metrics())
    return Path(config.out_dir)
