"""`lmtailor vocab transfer`: a tiny BERT moved onto a domain tokenizer trained by lmtailor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

from lmtailor.errors import InputFormatError
from lmtailor.tokenizer import TokenizerTrainConfig, run_train
from lmtailor.vocab import TransferConfig, run_transfer

from .conftest import TEXT


@pytest.fixture
def domain_tokenizer(tmp_path: Path) -> Path:
    text = tmp_path / "domain.txt"
    text.write_text("\n\n".join(TEXT), encoding="utf-8")
    cfg = TokenizerTrainConfig.build(inputs=[text], out_dir=tmp_path / "tok", vocab_size=400, show_progress=False)
    return run_train(cfg)


def test_transfer(tiny_bert, domain_tokenizer, tmp_path):
    held = tmp_path / "held.txt"
    held.write_text("The licensee shall indemnify the licensor.\n\nEither party may terminate.\n", encoding="utf-8")
    cfg = TransferConfig.build(model=str(tiny_bert), tokenizer=domain_tokenizer, verify_inputs=[held],
                               out_dir=tmp_path / "moved", show_progress=False)  # fmt: skip
    report = json.loads((run_transfer(cfg) / "transfer_report.json").read_text())
    assert report["vocab_after"] == 400 and report["kept_old_vector"] > 0 and report["mean_of_pieces"] > 0
    assert set(report["mlm_loss_heldout"]) == {"original", "transferred", "random_embeddings"}

    old_tok, new_tok = (
        AutoTokenizer.from_pretrained(str(tiny_bert)),
        AutoTokenizer.from_pretrained(str(tmp_path / "moved")),
    )
    old = AutoModelForMaskedLM.from_pretrained(str(tiny_bert))
    new = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "moved"))
    assert new.config.vocab_size == len(new_tok) == 400
    e_old, e_new = old.get_input_embeddings().weight, new.get_input_embeddings().weight
    # Same role, same vector: [CLS], [SEP], [MASK]; a word both vocabularies know keeps its vector exactly.
    for special in ("[CLS]", "[SEP]", "[MASK]"):
        assert torch.equal(e_new[new_tok.convert_tokens_to_ids(special)], e_old[old_tok.convert_tokens_to_ids(special)])
    assert torch.equal(e_new[new_tok.convert_tokens_to_ids("▁the")], e_old[old_tok.convert_tokens_to_ids("the")])
    # A new token the old vocabulary splits is the mean of the old pieces.
    token = next(t for t in new_tok.get_vocab() if t.startswith("▁") and len(old_tok.tokenize(t[1:])) > 1)
    pieces = old_tok(token[1:], add_special_tokens=False).input_ids
    assert torch.allclose(e_new[new_tok.convert_tokens_to_ids(token)], e_old[pieces].mean(0), atol=1e-6)


def test_folder_without_tokenizer_json(tiny_bert, tmp_path):
    (tmp_path / "empty").mkdir()
    cfg = TransferConfig.build(model=str(tiny_bert), tokenizer=tmp_path / "empty", out_dir=tmp_path / "moved")
    with pytest.raises(InputFormatError, match=r"no tokenizer\.json"):
        run_transfer(cfg)
    assert not (tmp_path / "moved").exists()


def test_transfer_onto_byte_level_wordpiece(tiny_bert, tmp_path):
    """lmtailor's WordPiece stores tokens in the byte-level alphabet ("▁the" is "âĸģthe"); they are decoded before
    the old tokenizer splits them, so a word both vocabularies know keeps its vector (not the [UNK] row)."""
    text = tmp_path / "domain.txt"
    text.write_text("\n\n".join(TEXT), encoding="utf-8")
    tok = run_train(TokenizerTrainConfig.build(inputs=[text], out_dir=tmp_path / "tok", vocab_size=400,
                                               algorithm="wordpiece", show_progress=False))  # fmt: skip
    cfg = TransferConfig.build(model=str(tiny_bert), tokenizer=tok, out_dir=tmp_path / "moved", show_progress=False)
    report = json.loads((run_transfer(cfg) / "transfer_report.json").read_text())
    old_tok, new_tok = AutoTokenizer.from_pretrained(str(tiny_bert)), AutoTokenizer.from_pretrained(str(tok))
    e_old = AutoModelForMaskedLM.from_pretrained(str(tiny_bert)).get_input_embeddings().weight
    e_new = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "moved")).get_input_embeddings().weight
    the = new_tok("the", add_special_tokens=False).input_ids
    assert len(the) == 1 and new_tok.convert_ids_to_tokens(the[0]) == "âĸģthe"
    assert torch.equal(e_new[the[0]], e_old[old_tok.convert_tokens_to_ids("the")])
    # Every word-start token of plain letters has pieces; only the byte symbols of multi-byte characters may not.
    words = [i for t, i in new_tok.get_vocab().items() if t.startswith("âĸģ") and t[3:].isascii() and t[3:].isalpha()]
    unk = e_old[old_tok.unk_token_id]
    assert len(words) > 50 and not any(torch.equal(e_new[i], unk) for i in words)
    assert report["kept_old_vector"] + report["mean_of_pieces"] >= len(words)
