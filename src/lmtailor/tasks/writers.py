"""Writing labelled examples back to a file every stage reads: `text`/`label` jsonl for classification, token-tag
columns for NER (one unit and its IOB2 tag a line, a blank line between sentences).

Used where lmtailor makes a training file of its own (`update` joins old and new labelled data, which may come in
different formats); the readers in `tasks.readers` read these back unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from lmtailor.tasks.readers import ClsExample, NerExample


def write_examples(task: str, examples: Iterable[ClsExample | NerExample], path: Path) -> Path:
    """Write `examples` to `path` (`.jsonl` for cls, `.tsv` for ner; the suffix is set here) and return the path."""
    path = Path(path).with_suffix(".jsonl" if task == "cls" else ".tsv")
    if task == "cls":
        lines = [json.dumps({"text": ex.text, "label": ex.label}, ensure_ascii=False) for ex in examples]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path
    blocks = []
    for ex in examples:
        units = [ex.text[s:e] for s, e in ex.units]
        # A unit holding whitespace would break the column format; such units do not come out of the readers.
        blocks.append("\n".join(f"{u}\t{t}" for u, t in zip(units, ex.tags, strict=True)))
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path
