"""`lmtailor vocab extend` on a tiny BERT: whole-token terms, mean-of-pieces init, term-free outputs unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoModelForMaskedLM, AutoTokenizer, BertConfig, BertForMaskedLM

from lmtailor.errors import EmptyInputError
from lmtailor.vocab import ExtendConfig, run_extend
from lmtailor.vocab.mlm import mlm_loss

from .conftest import SMALL, _save


@pytest.fixture
def glossary(tmp_path: Path) -> Path:
    path = tmp_path / "terms.txt"
    path.write_text("Governed By\nwritten notice\nconfidential information\nthe\n", encoding="utf-8")
    return path


def test_extend_adds_whole_tokens_with_mean_init(tiny_bert, glossary, tmp_path):
    held = tmp_path / "held.txt"
    held.write_text("The licensee shall indemnify the licensor.\n\nEither party may terminate.\n", encoding="utf-8")
    cfg = ExtendConfig.build(model=str(tiny_bert), terms=[glossary], verify_inputs=[held], out_dir=tmp_path / "ext",
                             show_progress=False)  # fmt: skip
    report = json.loads((run_extend(cfg) / "extend_report.json").read_text())
    assert report["terms_added"] == 3 and report["terms_skipped"]["already_one_token"] == 1  # "the" is a token
    assert report["added_terms_one_token"] == 3 and report["outputs_unchanged_on_term_free_text"]

    old_tok, new_tok = (
        AutoTokenizer.from_pretrained(str(tiny_bert)),
        AutoTokenizer.from_pretrained(str(tmp_path / "ext")),
    )
    old = AutoModelForMaskedLM.from_pretrained(str(tiny_bert)).eval()
    new = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "ext")).eval()
    assert new_tok.tokenize("This Agreement is GOVERNED BY the laws.")[:4] == ["this", "agreement", "is", "governed by"]
    pieces = old_tok("written notice", add_special_tokens=False).input_ids
    row = new_tok.convert_tokens_to_ids("written notice")
    emb_old, emb_new = old.get_input_embeddings().weight, new.get_input_embeddings().weight
    assert torch.allclose(emb_new[row], emb_old[pieces].mean(0))
    assert torch.equal(emb_new[: len(old_tok)], emb_old)
    assert new.cls.predictions.bias[row] == old.cls.predictions.bias.min()  # a new term starts as a rare output
    text = "Either party may terminate this agreement."
    with torch.no_grad():
        a = old(**old_tok(text, return_tensors="pt"), output_hidden_states=True)
        b = new(**new_tok(text, return_tensors="pt"), output_hidden_states=True)
    assert torch.equal(a.hidden_states[-1], b.hidden_states[-1])  # bitwise, on text without the new terms
    # Logits over the old vocabulary: the same up to float rounding (a wider output matrix blocks the GEMM differently)
    assert torch.allclose(a.logits, b.logits[..., : len(old_tok)], atol=1e-6, rtol=0)
    assert mlm_loss(new, new_tok, [text] * 4) == mlm_loss(new, new_tok, [text] * 4)  # fixed masks: reproducible


def test_nothing_to_add_is_an_error(tiny_bert, tmp_path):
    terms = tmp_path / "t.txt"
    terms.write_text("the\nlicensee\n", encoding="utf-8")
    cfg = ExtendConfig.build(model=str(tiny_bert), terms=[terms], out_dir=tmp_path / "ext", show_progress=False)
    with pytest.raises(EmptyInputError, match="needs adding"):
        run_extend(cfg)
    assert not (tmp_path / "ext").exists()


@pytest.mark.parametrize("fixture", ["tiny_roberta", "tiny_unigram"])
def test_extend_round_trip_other_tokenizer_families(fixture, tmp_path, request):
    src = request.getfixturevalue(fixture)
    terms = tmp_path / "terms.txt"
    terms.write_text("written notice\nthird party\n", encoding="utf-8")
    cfg = ExtendConfig.build(model=str(src), terms=[terms], out_dir=tmp_path / "ext", show_progress=False)
    report = json.loads((run_extend(cfg) / "extend_report.json").read_text())
    assert report["terms_added"] == report["added_terms_one_token"] == 2
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "ext"))
    model = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "ext"))
    ids = tok("Upon written notice to any third party.", add_special_tokens=False).input_ids
    assert tok.convert_tokens_to_ids("written notice") in ids and tok.convert_tokens_to_ids("third party") in ids
    assert model.config.vocab_size == len(tok)
    old = AutoTokenizer.from_pretrained(str(src))
    old_ids = old("Upon written notice to any third party.", add_special_tokens=False).input_ids
    # HF joins added tokens with spaces when decoding; the characters are the same.
    assert "".join(tok.decode(ids).split()) == "".join(old.decode(old_ids).split())


def test_a_term_in_two_glossaries_is_added_once(tiny_roberta, glossary, tmp_path):
    """A cased tokenizer (as XLM-R's) and the same term in two files used to index past the resized embedding table
    (IndexError, found with CMeEE's four glossaries); and a held-out text that holds a term everywhere."""
    copy = tmp_path / "again.txt"
    copy.write_text("written notice\nwritten notice\nnew clause\n", encoding="utf-8")
    held = tmp_path / "held.txt"
    held.write_text("A written notice.\n", encoding="utf-8")
    cfg = ExtendConfig.build(model=str(tiny_roberta), terms=[glossary, copy], verify_inputs=[held],
                             out_dir=tmp_path / "ext", show_progress=False)  # fmt: skip
    report = json.loads((run_extend(cfg) / "extend_report.json").read_text())
    assert report["terms_added"] == report["vocab_after"] - report["vocab_before"] >= 4  # each once
    assert report["outputs_unchanged_on_term_free_text"] is None  # no term-free text: nothing was checked
    new_tok = AutoTokenizer.from_pretrained(str(tmp_path / "ext"))
    assert new_tok.tokenize("new clause") == ["new clause"]


@pytest.fixture
def tiny_sentencepiece(tmp_path: Path) -> Path:
    """A Unigram tokenizer in the form transformers 5 gives XLM-R (multilingual-e5): split on whitespace, then "▁"
    before every piece."""
    tok = Tokenizer(models.Unigram([(p, -1.0 if i > 4 else 0.0) for i, p in enumerate(PIECES)], unk_id=3))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace()])
    tok.decoder = decoders.Metaspace()
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=len(PIECES), max_position_embeddings=64, **SMALL))
    return _save(tok, model, tmp_path / "sp", bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                 pad_token="<pad>", mask_token="<mask>")  # fmt: skip


PIECES = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", "\u2581", "心", "肌", "梗", "死", "患", "者", "后", "a", "b", "."]


def test_a_han_term_is_not_averaged_with_the_bare_word_start_piece(tiny_sentencepiece, tmp_path):
    """SentencePiece starts a text with a bare "▁" ("▁ 心 肌 梗 死"); mid-text the term is "心 肌 梗 死", so its new
    row is the mean of those four pieces, not of five. And the text after an added term goes on without a new "▁"
    (it used to get one: `心肌梗死 ▁ 后`), while text without a term is tokenized exactly as before."""
    old_tok = AutoTokenizer.from_pretrained(str(tiny_sentencepiece))
    assert old_tok.tokenize("心肌梗死") == ["\u2581", "心", "肌", "梗", "死"]
    terms, held = tmp_path / "t.txt", tmp_path / "held.txt"
    terms.write_text("心肌梗死\n", encoding="utf-8")
    held.write_text("患者 后\n\n a  b.\n", encoding="utf-8")
    cfg = ExtendConfig.build(model=str(tiny_sentencepiece), terms=[terms], verify_inputs=[held],
                             out_dir=tmp_path / "ext", show_progress=False)  # fmt: skip
    report = json.loads((run_extend(cfg) / "extend_report.json").read_text())
    assert report["word_start_after_terms"] == "removed" and report["outputs_unchanged_on_term_free_text"]
    new_tok = AutoTokenizer.from_pretrained(str(tmp_path / "ext"))
    new = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "ext"))
    row = new_tok.convert_tokens_to_ids("心肌梗死")
    emb = new.get_input_embeddings().weight
    assert torch.allclose(emb[row], emb[[6, 7, 8, 9]].mean(0))  # 心 肌 梗 死, without "▁" (5)
    assert new_tok.tokenize("患者心肌梗死后") == ["\u2581", "患", "者", "心肌梗死", "后"]
    assert new_tok.tokenize("心肌梗死 后") == ["心肌梗死", "\u2581", "后"]  # a real space stays a word start
    ids = new_tok("患者心肌梗死后", add_special_tokens=False).input_ids
    assert new_tok.decode(ids) == "患者心肌梗死后"  # no space where none was
    for text in ["患者 后", " a  b. ", "a\t\nb", "后后  a", ""]:  # no term: the same pieces as before
        assert new_tok(text).input_ids == old_tok(text).input_ids, text
