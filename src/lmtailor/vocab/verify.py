"""The trimmed model checks itself against the original on held-out text.

- Tokenisation: for every held-out record, the original ids mapped through old → new must equal the trimmed
  tokenizer's ids wherever all of the record's tokens were kept; records where they differ are counted.
- Outputs: on records whose tokens were all kept, the last hidden states (and logits over the kept vocabulary,
  when the model has an output layer) of both models must agree to within 1e-5.
- Coverage: the share of held-out token occurrences whose token was kept, and new [UNK]s the original did not have.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import PreTrainedModel

from lmtailor.errors import EmptyInputError

MAX_DIFF = 1e-5


def heldout_texts(paths: list[Path], n: int, splits: tuple[str, ...]) -> list[str]:
    """Up to `n` records from the first of `splits` that has any (a held-out corpus folder may keep everything in
    "train", as `lmtailor corpus --split-ratios 1,0,0` does); [] when none has."""
    from lmtailor.corpus import iter_texts

    if not paths or not n:
        return []
    for split in dict.fromkeys(splits):
        try:
            return list(islice(iter_texts(paths, split=split), n))
        except EmptyInputError:
            continue
    return []


@dataclass
class TokenReport:
    texts: int = 0
    texts_all_kept: int = 0
    texts_changed: int = 0
    mismatched: int = 0  # all tokens kept, yet the trimmed tokenizer produced something else: a bug if non-zero
    tokens: int = 0
    tokens_kept: int = 0
    unk_original: int = 0
    unk_trimmed: int = 0


def compare_tokenizers(orig: Tokenizer, new: Tokenizer, old_to_new: dict[int, int], texts: list[str]) -> TokenReport:
    r = TokenReport(texts=len(texts))
    for tok in (orig, new):
        tok.no_truncation()
        tok.no_padding()
    unk_old, unk_new = orig.token_to_id("[UNK]"), new.token_to_id("[UNK]")
    for a, b in zip(
        orig.encode_batch(texts, add_special_tokens=False),
        new.encode_batch(texts, add_special_tokens=False),
        strict=True,
    ):
        kept = [old_to_new.get(i) for i in a.ids]
        r.tokens += len(kept)
        r.tokens_kept += sum(k is not None for k in kept)
        r.unk_original += sum(i == unk_old for i in a.ids) if unk_old is not None else 0
        r.unk_trimmed += sum(i == unk_new for i in b.ids) if unk_new is not None else 0
        if all(k is not None for k in kept):
            r.texts_all_kept += 1
            r.mismatched += kept != b.ids
        else:
            r.texts_changed += 1
    return r


@torch.no_grad()
def compare_outputs(
    orig_model: PreTrainedModel,
    new_model: PreTrainedModel,
    orig_tok: Tokenizer,
    old_to_new: dict[int, int],
    texts: list[str],
    max_length: int = 128,
    batch: int = 16,
    max_texts: int = 64,
) -> dict:
    """Max |difference| of hidden states and logits on texts whose every token was kept (with special tokens)."""
    orig_tok.no_padding()
    orig_tok.enable_truncation(max_length)
    rows = [e.ids for e in orig_tok.encode_batch(texts)]
    rows = [ids for ids in rows if all(i in old_to_new for i in ids)][:max_texts]
    kept = torch.tensor(sorted(old_to_new), dtype=torch.long)
    worst_hidden, worst_logits, n = 0.0, 0.0, 0
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        width = max(len(r) for r in chunk)
        old = torch.zeros(len(chunk), width, dtype=torch.long)
        mask = torch.zeros(len(chunk), width, dtype=torch.long)
        for i, r in enumerate(chunk):
            old[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        new = old.clone().apply_(lambda i: old_to_new.get(i, 0))
        a = orig_model(input_ids=old, attention_mask=mask, output_hidden_states=True)
        b = new_model(input_ids=new, attention_mask=mask, output_hidden_states=True)
        m = mask.bool()
        worst_hidden = max(worst_hidden, (a.hidden_states[-1] - b.hidden_states[-1])[m].abs().max().item())
        if getattr(a, "logits", None) is not None:
            # Vocabulary logits are compared over the kept tokens; a task head (labels) is unchanged in size.
            a_logits = a.logits[..., kept] if a.logits.shape[-1] != b.logits.shape[-1] else a.logits
            diff = (a_logits - b.logits).abs()
            worst_logits = max(worst_logits, (diff[m] if diff.dim() == 3 else diff).max().item())
        n += len(chunk)
    return {"texts": n, "max_abs_diff_hidden": worst_hidden, "max_abs_diff_logits": worst_logits,
            "within_tolerance": max(worst_hidden, worst_logits) <= MAX_DIFF}  # fmt: skip
