"""`lmtailor augment`: read a training file, write it again with augmented copies, in a format every stage reads.

Classification comes out as `train.jsonl` (`text`, `label`, and `augmented_from` on the copies); NER as `train.tsv`
(one unit and its IOB2 tag a line, a blank line between sentences), whatever the input's format, so `finetune`,
`distill` and `baseline` take it as it is. `augment_report.json` counts the changes of each method. The input file is
only read. Dev and test files are never augmented: scores stay comparable with the un-augmented runs.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter, defaultdict
from pathlib import Path

from lmtailor.augment.config import AugmentConfig
from lmtailor.augment.ops import HAN, WORD, Piece, augment_pieces, cut_text, cut_words, join
from lmtailor.errors import EmptyInputError, InputNotFoundError
from lmtailor.outputs import stage_output, write_json
from lmtailor.tasks.tags import unit_spans

log = logging.getLogger(__name__)


def _glossaries(config: AugmentConfig) -> tuple[dict[str, list[str]], list[tuple[str, object]]]:
    """{name: terms} and a matcher per glossary (name = the file's stem)."""
    from lmtailor.terms.glossary import load_terms
    from lmtailor.tokenizer.protect import TermMatcher

    terms, matchers = {}, []
    for path in config.glossary:
        if not Path(path).exists():
            raise InputNotFoundError(f"glossary {path} does not exist; pass a term list (one term a line).")
        # A one-character term would match inside many words (a glossary of law terms with 月 would cut every date).
        loaded = [t for t in load_terms(Path(path)) if len(t) >= 2]
        if not loaded:
            raise EmptyInputError(f"glossary {path} has no usable terms; check its format (one term a line).")
        name = Path(path).stem
        terms[name] = loaded
        matchers.append((name, TermMatcher(loaded, lowercase=not any(HAN.search(t) for t in loaded[:50]))))
    return terms, matchers


def _occurrences(text: str, matchers: list) -> list[tuple[int, int, str]]:
    return [(s, e, name) for name, m in matchers for s, e, _ in m.find([text])[0]]


def _ner_pieces(ex, matchers: list, glossary_sets: dict[str, set[str]]) -> list[Piece]:
    """An NER example's pieces: each entity whole (with its type), every other unit on its own; an O unit inside a
    glossary term is not a word (never swapped or dropped)."""
    units = [ex.text[s:e] for s, e in ex.units]
    inside = set()
    for s, e, _ in _occurrences(ex.text, matchers):
        inside.update(i for i, (us, ue) in enumerate(ex.units) if us < e and ue > s)
    entities = {first: (last, etype) for first, last, etype in unit_spans(ex.units, ex.tags)}
    word_level = _word_level(ex)
    sep = " " if word_level else ""
    pieces, i, run = [], 0, []  # run: characters outside entities and terms, cut into jieba words when it ends

    def flush() -> None:
        pieces.extend(cut_words("".join(run)))
        run.clear()

    while i < len(units):
        if i in entities:
            flush()
            last, etype = entities[i]
            text = sep.join(units[i : last + 1])
            home = next((g for g, terms in glossary_sets.items() if text.lower() in terms), "")
            pieces.append(Piece(text, "entity", etype, home))
            i = last + 1
            continue
        if not word_level and i not in inside:
            run.append(units[i])  # Chinese: swapped and dropped as words, not characters
        else:
            flush()
            pieces.append(Piece(units[i], "word" if WORD.fullmatch(units[i]) and i not in inside else "other"))
        i += 1
    flush()
    return pieces


def _word_level(ex) -> bool:
    """Units separated by spaces in the text (words), or not (characters)."""
    return any(ex.text[e : e + 1] == " " for _, e in ex.units[:-1]) or not any(
        HAN.search(ex.text[s:e]) for s, e in ex.units
    )


def _ner_lines(pieces: list[Piece], word_level: bool) -> list[str]:
    lines = []
    for p in pieces:
        units = p.text.split() if word_level else [c for c in p.text if not c.isspace()]
        for k, unit in enumerate(units):
            tag = "O" if p.kind != "entity" else ("B-" if k == 0 else "I-") + p.group
            lines.append(f"{unit}\t{tag}")
    return lines


def run(config: AugmentConfig) -> Path:
    data = config.read_task(config.task, config.train)
    if not data.examples:
        raise EmptyInputError(f"{config.train} has no examples to augment.")
    terms, matchers = _glossaries(config)
    glossary_sets = {name: {t.lower() for t in ts} for name, ts in terms.items()}
    rng = random.Random(config.seed)
    counts: Counter = Counter({m: 0 for m in config.methods})
    methods = [m for m in config.methods if not (m == "mentions" and config.task == "cls")]
    if config.task == "ner":
        mentions: dict[str, list[list[str]]] = defaultdict(list)
        for ex in data.examples:
            for first, last, etype in unit_spans(ex.units, ex.tags):
                mentions[etype].append([ex.text[s:e] for s, e in ex.units[first : last + 1]])
    written = 0

    def copy_of(pieces: list[Piece], pool: dict) -> list[Piece]:
        return augment_pieces(pieces, methods, config.rate, rng, terms, pool, counts, config.replace_rate)

    with stage_output(config) as out:
        out.add_input("train", config.train)
        for path in config.glossary:
            out.add_input(f"glossary:{Path(path).name}", Path(path))
        if config.task == "cls":
            lines = []
            for ex in data.examples:
                pieces = cut_text(ex.text, _occurrences(ex.text, matchers))
                if config.keep_original:
                    lines.append(json.dumps({"text": ex.text, "label": ex.label}, ensure_ascii=False))
                for _ in range(config.copies):
                    text = join(copy_of(pieces, {}))
                    lines.append(json.dumps({"text": text, "label": ex.label, "augmented_from": ex.id},
                                            ensure_ascii=False))  # fmt: skip
                    written += 1
            (out.dir / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            blocks = []
            for ex in data.examples:
                word_level = _word_level(ex)
                pieces = _ner_pieces(ex, matchers, glossary_sets)
                if config.keep_original:
                    blocks.append("\n".join(_ner_lines(pieces, word_level)))
                for _ in range(config.copies):
                    copy = copy_of(pieces, mentions)
                    blocks.append("\n".join(_ner_lines(copy, word_level)))
                    written += 1
            (out.dir / "train.tsv").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
        report = {"examples": len(data.examples), "copies_written": written, "changes": dict(counts),
                  "methods": methods, "glossaries": {n: len(t) for n, t in terms.items()}}  # fmt: skip
        write_json(out.dir / "augment_report.json", report)
        out.metrics.update(report)
        log.info("augmented %s: %d examples + %d copies; changes %s", config.train, len(data.examples), written,
                 dict(counts))  # fmt: skip
    return Path(config.out_dir)
