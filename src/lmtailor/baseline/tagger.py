"""The NER baseline: a linear-chain CRF (CRFsuite, L-BFGS with L1 + L2) over unit features, tuned on dev.

The units are the task's own evaluation units (characters for Chinese, words otherwise), so the CRF is scored
exactly as the neural models are. Features of unit i:
- the unit (lower-cased), its shape (`Xxxx`, `dd`, `汉`, punctuation), prefixes and suffixes of words, and the
  same of the two units on either side; the bigrams (i-1, i) and (i, i+1), which for Chinese are the short words;
- for each glossary, where a leftmost-longest glossary match puts unit i: `B`/`I`/`E`/`S` (begin, inside, end,
  single) — the "gazetteer" features a medical or legal team's term lists give a tagger;
- sentence start and end.
L1 (c1) and L2 (c2) are chosen on dev by the task's metric; the model is saved in CRFsuite's own file format
(`model.crfsuite`), which loads without unpickling anything.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import pycrfsuite

from lmtailor.baseline.config import BaselineConfig
from lmtailor.scripts import HAN_RE
from lmtailor.tasks.align import repair_iob2
from lmtailor.tasks.metrics import ner_metrics
from lmtailor.tasks.target import TargetMetric

log = logging.getLogger(__name__)
MODEL_FILE = "model.crfsuite"


def _shape(unit: str) -> str:
    """A coarse shape: runs of upper/lower letters, digits, Han characters and other symbols, collapsed."""
    out = []
    for ch in unit:
        if ch.isdigit():
            c = "d"
        elif ch.isupper():
            c = "X"
        elif ch.isalpha():
            c = "汉" if HAN_RE.match(ch) else "x"
        else:
            c = ch if not ch.isspace() else "_"
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)[:6]


class Featurizer:
    """Feature strings for each unit of a sentence; glossaries are (name, TermMatcher) pairs."""

    def __init__(self, glossaries: Sequence[tuple[str, object]] = ()) -> None:
        self.glossaries = list(glossaries)

    def sentences(self, examples: Sequence) -> list[list[list[str]]]:
        texts = [ex.text for ex in examples]
        matches = [(name, matcher.find(texts)) for name, matcher in self.glossaries]
        return [self._sentence(ex, [(n, m[i]) for n, m in matches]) for i, ex in enumerate(examples)]

    def _sentence(self, ex, glossary_matches) -> list[list[str]]:
        units = [ex.text[s:e] for s, e in ex.units]
        low = [u.lower() for u in units]
        shapes = [_shape(u) for u in units]
        marks = [[] for _ in units]
        if glossary_matches:
            owner = {}
            for u, (s, e) in enumerate(ex.units):
                for c in range(s, e):
                    owner[c] = u
            for name, occurrences in glossary_matches:
                for s, e, _term in occurrences:
                    covered = sorted({owner[c] for c in range(s, e) if c in owner})
                    for k, u in enumerate(covered):
                        pos = "S" if len(covered) == 1 else "B" if k == 0 else "E" if k == len(covered) - 1 else "I"
                        marks[u].append(f"g:{name}={pos}")
        n = len(units)
        out = []
        for i in range(n):
            f = ["b", f"u={low[i]}", f"s={shapes[i]}", *marks[i]]
            if len(units[i]) > 3:
                f += [f"p3={low[i][:3]}", f"x3={low[i][-3:]}"]
            for d in (-2, -1, 1, 2):
                j = i + d
                if 0 <= j < n:
                    f += [f"u{d:+d}={low[j]}", f"s{d:+d}={shapes[j]}"]
                    f += [f"g{d:+d}:{m[2:]}" for m in marks[j]]
                elif abs(d) == 1:
                    f.append("bos" if j < 0 else "eos")
            if i > 0:
                f.append(f"bi-={low[i - 1]}|{low[i]}")
            if i + 1 < n:
                f.append(f"bi+={low[i]}|{low[i + 1]}")
            out.append(f)
        return out


def fit_tagger(config: BaselineConfig, train, dev, target: TargetMetric, featurizer: Featurizer,
               work: Path) -> tuple[Path, list[dict]]:  # fmt: skip
    """Fit one CRF per (c1, c2) into `work`; the path of the best by dev, and every trial's record."""
    t0 = time.perf_counter()
    x_train = featurizer.sentences(train.examples)
    x_dev = featurizer.sentences(dev.examples) if dev else None
    log.info("baseline: featurised %d sentences in %.1fs", len(x_train), time.perf_counter() - t0)
    grid = list(itertools.product(config.crf_c1, config.crf_c2)) if dev else [(config.crf_c1[0], config.crf_c2[0])]
    trials, best, best_score = [], None, float("-inf")
    for k, (c1, c2) in enumerate(grid):
        path = work / f"trial-{k}.crfsuite"
        t0 = time.perf_counter()
        trainer = pycrfsuite.Trainer(verbose=False)
        for xs, ex in zip(x_train, train.examples, strict=True):
            trainer.append(xs, list(ex.tags))
        trainer.set_params({"c1": c1, "c2": c2, "max_iterations": config.crf_iterations,
                            "feature.possible_transitions": True})  # fmt: skip
        trainer.train(str(path))
        trial = {"c1": c1, "c2": c2, "fit_seconds": round(time.perf_counter() - t0, 2)}
        score = 0.0
        if dev:
            tags = tag(path, x_dev)
            value = target.value(ner_metrics([list(ex.tags) for ex in dev.examples], tags))
            trial[f"dev_{target.name}"] = value
            score = float("-inf") if value is None else value
        trials.append(trial)
        log.debug("baseline trial %s", trial)  # every trial is in trials.json; -v shows them here
        if best is None or score > best_score:
            best, best_score = (path, trial), score
    path, chosen = best
    chosen["chosen"] = True
    return path, trials


def tag(model_path: Path, sentences: Sequence[list[list[str]]]) -> list[list[str]]:
    """IOB2 tags per sentence (an `I-X` that continues nothing repaired to `B-X`)."""
    tagger = pycrfsuite.Tagger()
    tagger.open(str(model_path))
    out = [repair_iob2(tagger.tag(xs)) if xs else [] for xs in sentences]
    tagger.close()
    return out
