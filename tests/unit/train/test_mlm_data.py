"""Masking units, token→unit mapping, whole-unit masking and the determinism of the packed stream."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from lmtailor.train.mlm_data import IGNORE, MaskingSpec, PackedMLMStream, UnitSplitter, mask_block, token_units


def _pieces(text: str, spans: list[tuple[int, int]]) -> list[str]:
    return [text[s:e] for s, e in spans]


def test_units_keep_protected_terms_whole_and_split_words_and_punctuation() -> None:
    text = "A force majeure event, e.g. fire."
    spans = UnitSplitter(["force majeure"]).batch([text])[0]
    assert _pieces(text, spans) == ["A", "force majeure", "event", ",", "e", ".", "g", ".", "fire", "."]


def test_chinese_units_are_jieba_words_with_terms_first() -> None:
    text = "急性心肌梗死患者"
    assert _pieces(text, UnitSplitter(["心肌梗死"]).batch([text])[0]) == ["急性", "心肌梗死", "患者"]
    chars = UnitSplitter((), whole_words=False).batch([text])[0]
    assert _pieces(text, chars) == list(text)


def test_tokens_map_to_the_unit_of_their_first_character() -> None:
    text = "indemnification clause"
    units = [(0, 15), (16, 22)]
    offsets = [(0, 6), (6, 15), (15, 22), (22, 22)]  # "indemn" "ification" " clause" (space kept), empty
    assert token_units(offsets, text, units) == [0, 0, 1, -1]


def _token_units_by_definition(offsets, text, units):
    """The per-token definition `token_units` vectorises: skip leading spaces, then find the enclosing unit."""
    out = []
    for s, e in offsets:
        while s < e and text[s].isspace():
            s += 1
        i = max((k for k, (us, _) in enumerate(units) if us <= s), default=-1)
        out.append(i if s < e and i >= 0 and s < units[i][1] else -1)
    return out


def test_vectorised_token_units_match_the_definition_on_random_text() -> None:
    """Unicode spaces (NBSP, ideographic space, newlines), all-space and empty tokens, tokens spanning units."""
    rng = np.random.default_rng(3)
    alphabet = [*"abcxyz,.", " ", "\n", "\u00a0", "\u3000", "心", "肌"]
    for _ in range(200):
        text = "".join(rng.choice(alphabet, size=int(rng.integers(0, 40))))
        units = UnitSplitter(["ab", "心肌"]).batch([text])[0]
        cuts = sorted({0, len(text), *rng.integers(0, len(text) + 1, size=int(rng.integers(0, 12))).tolist()})
        offsets = [*itertools.pairwise(cuts), (len(text), len(text))]
        assert token_units(offsets, text, units) == _token_units_by_definition(offsets, text, units), (text, offsets)


def _spec(p: float = 0.15, whole: bool = True) -> MaskingSpec:
    return MaskingSpec(p, whole, mask_token_id=4, vocab_size=50, special_ids=(0, 1, 2, 3, 4))


@pytest.mark.parametrize("order", ["stream", "relabelled"])
def test_whole_unit_masking_masks_units_entirely_and_never_special_tokens(order: str) -> None:
    """`stream`: unit ids rise along the block, as the stream makes them; `relabelled`: any other ids."""
    rng = np.random.default_rng(0)
    ids = np.arange(5, 45, dtype=np.int64)  # 40 tokens
    ids[0], ids[-1] = 2, 3  # [CLS] ... [SEP]
    units = np.repeat(np.arange(14), 3)[:40].astype(np.int64)  # units of three tokens
    if order == "relabelled":
        units = np.random.default_rng(5).permutation(14)[units]
    units[0] = units[-1] = -1
    for _ in range(50):
        out = mask_block(ids, units, _spec(0.3), rng)
        labelled = out["labels"] != IGNORE
        assert not labelled[0] and not labelled[-1]
        for u in np.unique(units[units >= 0]):
            member = units == u
            assert labelled[member].all() or not labelled[member].any()
        assert 0.2 * 38 <= labelled.sum() <= 0.4 * 38
        assert (out["labels"][labelled] == ids[labelled]).all()
        changed = out["input_ids"] != ids
        assert not (changed & ~labelled).any()


def test_replacement_shares_are_80_10_10() -> None:
    rng = np.random.default_rng(1)
    ids = np.arange(5, 505, dtype=np.int64) % 45 + 5
    units = np.arange(500, dtype=np.int64)
    masked = random = kept = 0
    for _ in range(40):
        out = mask_block(ids, units, _spec(0.15, whole=False), rng)
        sel = out["labels"] != IGNORE
        masked += int((out["input_ids"][sel] == 4).sum())
        same = out["input_ids"][sel] == ids[sel]
        kept += int(same.sum())
        random += int((~same & (out["input_ids"][sel] != 4)).sum())
    total = masked + random + kept
    assert masked / total == pytest.approx(0.8, abs=0.04)
    assert (random + kept) / total == pytest.approx(0.2, abs=0.04)


def _tokenizer() -> PreTrainedTokenizerFast:
    words = ["the", "party", "shall", "pay", "all", "fees", "under", "this", "agreement", "to", "other", "."]
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")  # fmt: skip


def _stream(tmp_path: Path, **kw) -> PackedMLMStream:
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n\n".join(["The party shall pay all fees under this agreement."] * 40), encoding="utf-8")
    tok = _tokenizer()
    spec = MaskingSpec(0.15, True, tok.mask_token_id, len(tok), tuple(tok.all_special_ids))
    return PackedMLMStream([corpus], tok, 16, UnitSplitter(), spec, **kw)


def _take(stream, n: int) -> list[dict]:
    out = []
    for ex in stream:
        out.append(ex)
        if len(out) == n:
            break
    return out


def test_packed_blocks_are_full_and_framed(tmp_path: Path) -> None:
    stream = _stream(tmp_path, shuffle_buffer=4)
    tok = stream.tokenizer
    for ids, units in list(stream.blocks())[:5]:
        assert len(ids) == 16 and ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
        assert units[0] == -1 and units[-1] == -1
        assert tok.unk_token_id not in ids


def test_stream_is_deterministic_and_masks_change_between_passes(tmp_path: Path) -> None:
    n_blocks = len(list(_stream(tmp_path).blocks()))
    a = _take(_stream(tmp_path, shuffle_buffer=4, seed=3), 2 * n_blocks)
    b = _take(_stream(tmp_path, shuffle_buffer=4, seed=3), 2 * n_blocks)
    assert all(
        (x["input_ids"] == y["input_ids"]).all() and (x["labels"] == y["labels"]).all()
        for x, y in zip(a, b, strict=True)
    )
    first = {tuple(x["labels"].tolist()) for x in a[:n_blocks]}
    second = {tuple(x["labels"].tolist()) for x in a[n_blocks:]}
    assert first != second  # dynamic masking: a new draw every pass
    one_pass = _take(_stream(tmp_path, passes=1), 10 * n_blocks)
    assert len(one_pass) == n_blocks


def test_workers_split_the_chunks_between_them_and_each_packs_its_own(tmp_path: Path) -> None:
    """Worker w of W packs exactly the tokenizer chunks k with k mod W = w; the stream a DataLoader with W workers
    gives is deterministic, and W = 1 is the single-process stream."""
    corpus = tmp_path / "c.txt"
    docs = [f"Clause {i} binds party {i % 7} to pay fee {i}." for i in range(300)]  # 5 chunks of 64 texts
    corpus.write_text("\n\n".join(docs), encoding="utf-8")
    tok = _tokenizer()
    spec = MaskingSpec(0.15, True, tok.mask_token_id, len(tok), tuple(tok.all_special_ids))
    stream = PackedMLMStream([corpus], tok, 16, UnitSplitter(), spec, shuffle_buffer=8, passes=1)
    body = [ids[1:-1] for ids, _ in stream.blocks()]
    assert [b.tolist() for b in body] == [ids[1:-1].tolist() for ids, _ in stream.blocks(0, 1)]
    sep = tok.sep_token_id
    for w in range(2):
        mine = [d for k in range(w, 5, 2) for d in docs[64 * k : 64 * (k + 1)]]
        expected = [t for d in mine for t in (*tok(d, add_special_tokens=False)["input_ids"], sep)]
        got = [t for ids, _ in stream.blocks(w, 2) for t in ids[1:-1].tolist()]
        assert got == expected[: len(got)] and len(expected) - len(got) < 14  # only the last partial block is cut
    loader = lambda: torch.utils.data.DataLoader(stream, batch_size=4, num_workers=2)  # noqa: E731
    a, b = list(loader()), list(loader())
    assert len(a) == len(b) > 0
    assert all(
        torch.equal(x["input_ids"], y["input_ids"]) and torch.equal(x["labels"], y["labels"])
        for x, y in zip(a, b, strict=True)
    )
