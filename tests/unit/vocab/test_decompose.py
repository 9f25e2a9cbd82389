"""Which old tokens initialise a new token in `vocab transfer`: checked against MiniLM's real WordPiece vocabulary."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from lmtailor.tokenizer.hf import default_reference
from lmtailor.vocab.transfer import decompose


@pytest.fixture(scope="module")
def minilm():
    tok = AutoTokenizer.from_pretrained(str(default_reference()))
    return tok, tok.get_vocab()


@pytest.mark.parametrize(
    ("token", "pieces"),
    [
        ("▁agreement", ["agreement"]),  # word start, one old token: kept exactly
        ("ment", ["##ment"]),  # continuation
        ("▁indemnify", ["ind", "##em", "##ni", "##fy"]),
        ("lessee", ["##less", "##ee"]),  # a continuation whose first piece must also be a "##" form
        # BERT splits punctuation off every word, so "," (a continuation for a ▁-tokenizer) is the old ","; its
        # "##," form exists in the vocabulary but is an untrained row (this mistake cost 1.3 nats of MLM loss).
        (",", [","]),
        (".", ["."]),
        ("▁(", ["("]),
        ("▁", []),
    ],
)
def test_decompose(minilm, token, pieces):
    tok, vocab = minilm
    assert tok.convert_ids_to_tokens(decompose(token, tok, vocab, uncased=True)) == pieces
