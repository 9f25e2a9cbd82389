"""Tiny HF model folders (2 layers, hidden 32) with WordPiece, byte-level BPE and Unigram tokenizers, built here."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    PreTrainedTokenizerFast,
    RobertaConfig,
    RobertaForMaskedLM,
)

TEXT = [
    "The licensee shall indemnify the licensor against all claims.",
    "This agreement is governed by the laws of the State of New York.",
    "Either party may terminate this agreement upon written notice.",
    "Confidential information shall not be disclosed to any third party.",
    "Zebras and giraffes are not mentioned in any contract.",
] * 20
SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


def _save(tok: Tokenizer, model, folder: Path, **special: str) -> Path:
    PreTrainedTokenizerFast(tokenizer_object=tok, **special).save_pretrained(str(folder))
    model.save_pretrained(str(folder))
    return folder


def wordpiece_tokenizer(vocab_size: int = 200) -> Tokenizer:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(TEXT, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return tok


BERT_SPECIALS = {"unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                 "mask_token": "[MASK]"}  # fmt: skip


@pytest.fixture
def tiny_bert(tmp_path: Path) -> Path:
    tok = wordpiece_tokenizer()
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=tok.get_vocab_size(), max_position_embeddings=64, **SMALL))
    return _save(tok, model, tmp_path / "tiny-bert", **BERT_SPECIALS)


@pytest.fixture
def tiny_classifier(tmp_path: Path) -> Path:
    tok = wordpiece_tokenizer()
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tok.get_vocab_size(), max_position_embeddings=64, num_labels=3,
                        id2label={0: "law", 1: "term", 2: "other"}, label2id={"law": 0, "term": 1, "other": 2},
                        **SMALL)  # fmt: skip
    return _save(tok, BertForSequenceClassification(config), tmp_path / "tiny-cls", **BERT_SPECIALS)


@pytest.fixture
def tiny_roberta(tmp_path: Path) -> Path:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tok.train_from_iterator(TEXT, trainer)
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>"))
    )
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=tok.get_vocab_size(), max_position_embeddings=66, pad_token_id=1, **SMALL)
    return _save(tok, RobertaForMaskedLM(config), tmp_path / "tiny-roberta", bos_token="<s>", eos_token="</s>",
                 unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")  # fmt: skip


@pytest.fixture
def tiny_unigram(tmp_path: Path) -> Path:
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(TEXT, trainers.UnigramTrainer(vocab_size=150, special_tokens=specials, unk_token="[UNK]"))
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=tok.get_vocab_size(), max_position_embeddings=64, **SMALL))
    return _save(tok, model, tmp_path / "tiny-unigram", **BERT_SPECIALS)


CLAUSE_LABELS = ["indemnity", "law", "termination"]


def make_clause_classifier(folder: Path, layers: int = 4, hidden: int = 32) -> Path:
    from lmtailor.tasks.inference import TaskSpec

    tok = wordpiece_tokenizer()
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tok.get_vocab_size(), max_position_embeddings=64, num_labels=3,
                        id2label=dict(enumerate(CLAUSE_LABELS)), label2id={n: i for i, n in enumerate(CLAUSE_LABELS)},
                        **{**SMALL, "num_hidden_layers": layers, "hidden_size": hidden})  # fmt: skip
    folder = _save(tok, BertForSequenceClassification(config), folder, **BERT_SPECIALS)
    TaskSpec(task="cls", max_length=32, stride=8).save(folder)
    return folder


@pytest.fixture(scope="session")
def clause_classifier_factory():
    """make_clause_classifier(folder, layers=4, hidden=32): an untrained classifier over the three clause labels."""
    return make_clause_classifier


@pytest.fixture
def clause_classifier(tmp_path: Path) -> Path:
    """An untrained 4-layer classifier over the three clause labels of test_finetune's task files, with task.json."""
    return make_clause_classifier(tmp_path / "clause-cls")


@pytest.fixture
def cls_model(tiny_classifier: Path) -> Path:
    """The tiny classifier as a fine-tuned folder: task.json, and a tokenizer that sends segment ids."""
    from transformers import AutoTokenizer

    from lmtailor.tasks.inference import TaskSpec

    names = ["input_ids", "token_type_ids", "attention_mask"]
    AutoTokenizer.from_pretrained(str(tiny_classifier), model_input_names=names).save_pretrained(str(tiny_classifier))
    TaskSpec(task="cls", max_length=32, stride=8).save(tiny_classifier)
    return tiny_classifier


NER_LABELS = ["O", "B-Party", "I-Party"]


@pytest.fixture
def ner_model(tiny_classifier: Path, tmp_path: Path) -> Path:
    """A tiny token classifier (2 layers, hidden 32) over the tiny classifier's tokenizer, without segment ids."""
    from transformers import AutoConfig, AutoTokenizer, BertForTokenClassification

    from lmtailor.tasks.inference import TaskSpec

    config = AutoConfig.from_pretrained(str(tiny_classifier))
    config.id2label, config.label2id = dict(enumerate(NER_LABELS)), {n: i for i, n in enumerate(NER_LABELS)}
    torch.manual_seed(0)
    folder = tmp_path / "tiny-ner"
    BertForTokenClassification(config).save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(tiny_classifier)).save_pretrained(str(folder))
    TaskSpec(task="ner", max_length=32, stride=8).save(folder)
    return folder
