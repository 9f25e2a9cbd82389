"""Turning task examples into model features and model outputs back into task predictions, for any tokenizer.

**Evaluation units never depend on the tokenizer.** An NER example is text plus *units* (words for word-level
files, characters for Chinese) with one IOB2 tag each; the model sees whatever tokens the tokenizer makes of the raw
text, aligned back through the fast tokenizer's character offsets:

- Training labels: a token that begins a unit carries that unit's tag; every other token (the second piece of a
  split word, punctuation glued to nothing) is ignored (-100). This is the usual first-sub-token scheme.
- Prediction: a unit gets the prediction of the token that begins it. A unit that no token begins (a domain
  tokenizer merged it into the previous unit's token, e.g. 心肌梗死 as one token over four characters) continues
  that token's entity: `I-X` when the token says `B-X`/`I-X`, else `O`.
- **A token that crosses an entity boundary** (one token over "患心" where 心 starts an entity) can only carry one tag,
  so such an entity cannot be predicted exactly; it is not hidden either: scoring is on the units, so it counts as
  an error, and `ner_alignment_stats` reports how many gold entities are affected before any training.
- Decoding repairs a predicted `I-X` that does not continue an `X` entity into `B-X`, so that strict scoring
  judges the span the model marked rather than discarding it for a tagging-scheme slip.

**Long texts** are cut into windows of `max_length` tokens that overlap by `stride` tokens (the fast tokenizer's
overflow mechanism, so special tokens are right for every model family). NER: each unit takes the prediction from
the window where its token has the most context on both sides. Classification: `head` keeps the first window;
`head_tail` keeps the first quarter and the last three quarters of the budget (the ends of a document carry its
gist; Sun et al., 2019); `windows` trains on every window with the document's label and averages the windows'
probabilities at prediction time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

IGNORE = -100


@dataclass
class Encoded:
    """Model features plus what is needed to map outputs back to examples.

    `features[i]` holds `input_ids`, `attention_mask` (and `token_type_ids`, `labels` where present);
    `example_of[i]` is the example feature i came from; for NER `units_of[i][p]` is the unit that token p begins
    (or -1), `covers_of[i][p]` the units token p covers after that one, and `depth_of[i][p]` its context score.
    """

    features: list[dict] = field(default_factory=list)
    example_of: list[int] = field(default_factory=list)
    units_of: list[list[int]] = field(default_factory=list)
    covers_of: list[list[list[int]]] = field(default_factory=list)
    depth_of: list[list[int]] = field(default_factory=list)

    def sorted_by_length(self) -> Encoded:
        """The same features, shortest first: a sequential pass over them (the Trainer's evaluation) then pads
        little. Decoding maps features to examples through `example_of`, so order does not matter to it."""
        order = sorted(range(len(self.features)), key=lambda i: len(self.features[i]["input_ids"]))

        def pick(xs: list) -> list:
            return [xs[i] for i in order] if xs else xs

        return Encoded(pick(self.features), pick(self.example_of), pick(self.units_of), pick(self.covers_of),
                       pick(self.depth_of))  # fmt: skip


def _unit_owner(text: str, units: Sequence[tuple[int, int]]) -> np.ndarray:
    """owner[c] = index of the unit containing character c, or -1 (whitespace between units)."""
    owner = np.full(len(text), -1, dtype=np.int64)
    for u, (s, e) in enumerate(units):
        owner[s:e] = u
    return owner


def encode_ner(tokenizer, examples: Sequence, label2id: dict[str, int] | None, max_length: int, stride: int) -> Encoded:
    """Tokenize NER examples into (possibly several overlapping) windows with first-sub-token labels."""
    enc = tokenizer(
        [ex.text for ex in examples], truncation=True, max_length=max_length, stride=stride,
        return_overflowing_tokens=True, return_offsets_mapping=True, return_special_tokens_mask=True,
    )  # fmt: skip
    out = Encoded()
    owner_of = -1  # windows of one example are consecutive: its char -> unit map is built once
    for i, ex_id in enumerate(enc["overflow_to_sample_mapping"]):
        ex = examples[ex_id]
        if ex_id != owner_of:
            owner, owner_of = _unit_owner(ex.text, ex.units), ex_id
        offsets, special = enc["offset_mapping"][i], enc["special_tokens_mask"][i]
        content = [p for p, (s, e) in enumerate(offsets) if not special[p] and e > s]
        first, last = (content[0], content[-1]) if content else (0, 0)
        begins, covers, depth, labels = [], [], [], []
        for p, (s, e) in enumerate(offsets):
            units = [] if special[p] or e <= s else sorted({int(u) for u in owner[s:e] if u >= 0})
            # The token begins its first unit only if it starts at or before that unit's first character.
            starts = bool(units) and s <= ex.units[units[0]][0]
            begins.append(units[0] if starts else -1)
            covers.append(units[1:] if starts else [u for u in units if ex.units[u][0] >= s])
            depth.append(min(p - first, last - p))
            if label2id is not None:
                labels.append(label2id[ex.tags[units[0]]] if starts else IGNORE)
        feature = {k: enc[k][i] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        if label2id is not None:
            feature["labels"] = labels
        out.features.append(feature)
        out.example_of.append(int(ex_id))
        out.units_of.append(begins)
        out.covers_of.append(covers)
        out.depth_of.append(depth)
    return out


def decode_ner(examples: Sequence, encoded: Encoded, predicted: Sequence[Sequence[int]], id2label: dict[int, str]):
    """Unit-level IOB2 tags for every example from per-token predicted label ids of every window."""
    return decode_ner_scored(examples, encoded, predicted, id2label)[0]


def decode_ner_scored(
    examples: Sequence, encoded: Encoded, predicted: Sequence[Sequence[int]], id2label: dict[int, str],
    confidence: Sequence[Sequence[float]] | None = None,
) -> tuple[list[list[str]], list[list[float]]]:  # fmt: skip
    """(unit-level IOB2 tags, each unit's confidence) for every example. A unit takes the tag, and the probability
    `confidence[i][p]` of that tag, from the token that sees it with the most context on both sides (its depth in
    the window); without `confidence` every unit's score is 1."""
    best: list[list[tuple[int, str, float]]] = [[(-1, "O", 1.0)] * len(ex.units) for ex in examples]
    for i, ex_id in enumerate(encoded.example_of):
        slots = best[ex_id]
        for p, unit in enumerate(encoded.units_of[i]):
            if unit < 0:
                continue
            tag, d = id2label[int(predicted[i][p])], encoded.depth_of[i][p]
            score = float(confidence[i][p]) if confidence is not None else 1.0
            if d > slots[unit][0]:
                slots[unit] = (d, tag, score)
            inside = "O" if tag == "O" else "I-" + tag[2:]
            for u in encoded.covers_of[i][p]:
                if d > slots[u][0]:
                    slots[u] = (d, inside, score)
    tags = [repair_iob2([t for _, t, _ in slots]) for slots in best]
    return tags, [[c for _, _, c in slots] for slots in best]


def repair_iob2(tags: Sequence[str]) -> list[str]:
    """An `I-X` that does not continue an X entity becomes `B-X`."""
    out, prev = [], "O"
    for t in tags:
        if t.startswith("I-") and prev[2:] != t[2:]:
            t = "B-" + t[2:]
        out.append(t)
        prev = t
    return out


def ner_alignment_stats(examples: Sequence, encoded: Encoded) -> dict:
    """How many gold entities a tokenizer can represent exactly: both ends on token boundaries, in one window."""
    begun = [set() for _ in examples]  # units some token begins
    for i, ex_id in enumerate(encoded.example_of):
        begun[ex_id].update(u for u in encoded.units_of[i] if u >= 0)
    total = crossing = 0
    for ex, starts in zip(examples, begun, strict=True):
        for s, e in _entity_unit_spans(ex.tags):
            total += 1
            # The unit after the entity must start a token too, or the entity's last token runs on past it.
            if s not in starts or (e + 1 < len(ex.tags) and e + 1 not in starts):
                crossing += 1
    return {
        "entities": total,
        "entities_crossing_token_boundaries": crossing,
        "max_recall_from_tokenization": round(1 - crossing / total, 4) if total else 1.0,
        "windows": len(encoded.features),
        "examples": len(examples),
    }


def _entity_unit_spans(tags: Sequence[str]) -> list[tuple[int, int]]:
    """[first, last] unit index of each IOB2 entity."""
    spans, start = [], None
    for i, t in enumerate([*tags, "O"]):
        if start is not None and not (t.startswith("I-") and t[2:] == tags[start][2:]):
            spans.append((start, i - 1))
            start = None
        if t.startswith("B-") or (t.startswith("I-") and start is None):
            start = i
    return spans


def encode_cls(
    tokenizer, texts: Sequence[str], labels: Sequence[int] | None, max_length: int, long_text: str, stride: int
) -> Encoded:
    """Tokenize classification texts: the head, head + tail, or every window of each text."""
    out = Encoded()
    if long_text == "head_tail":
        budget = max_length - tokenizer.num_special_tokens_to_add(pair=False)
        head = budget // 4
        prefix, suffix = _special_frame(tokenizer)
        # verbose=False: the full texts are meant to exceed max_length here (they are cut below), so no warning
        for i, ids in enumerate(tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]):
            kept = ids if len(ids) <= budget else ids[:head] + ids[len(ids) - (budget - head) :]
            full = prefix + kept + suffix
            out.features.append({"input_ids": full, "attention_mask": [1] * len(full)})
            out.example_of.append(i)
        if labels is not None:
            for f, ex_id in zip(out.features, out.example_of, strict=True):
                f["labels"] = int(labels[ex_id])
        return out
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, stride=stride,
                    return_overflowing_tokens=long_text == "windows")  # fmt: skip
    mapping = enc.get("overflow_to_sample_mapping", list(range(len(texts))))
    for i, ex_id in enumerate(mapping):
        out.features.append({k: enc[k][i] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc})
        out.example_of.append(int(ex_id))
    if labels is not None:
        for f, ex_id in zip(out.features, out.example_of, strict=True):
            f["labels"] = int(labels[ex_id])
    return out


def _special_frame(tokenizer) -> tuple[list[int], list[int]]:
    """The special-token ids a tokenizer puts before and after one sequence ([CLS] ... [SEP], <s> ... </s>), found
    by encoding a probe with and without them (transformers 5 has no public "add specials to these ids" call)."""
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    at = next(i for i in range(len(full) - len(bare) + 1) if full[i : i + len(bare)] == bare)
    return full[:at], full[at + len(bare) :]


def decode_cls(encoded: Encoded, logits: np.ndarray, n_examples: int) -> np.ndarray:
    """[n_examples, C] class probabilities: softmax per window, averaged over an example's windows."""
    z = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    out = np.zeros((n_examples, logits.shape[1]), dtype=np.float64)
    np.add.at(out, np.asarray(encoded.example_of), probs)
    counts = np.bincount(encoded.example_of, minlength=n_examples)[:, None]
    return out / np.maximum(counts, 1)
