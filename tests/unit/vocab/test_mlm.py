import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

from lmtailor.vocab.mlm import fit_mlm_head, mlm_loss

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "party", "shall", "pay", "notice", "law"]


def _tiny():
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")  # fmt: skip
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32)  # fmt: skip
    return BertForMaskedLM(cfg), fast


def test_fitting_the_head_lowers_the_loss_and_leaves_the_encoder_alone():
    model, tok = _tiny()
    texts = ["the party shall pay", "the party shall give notice", "the law shall apply"] * 10
    encoder = {n: p.clone() for n, p in model.named_parameters() if n.startswith("bert.")}
    before = mlm_loss(model, tok, texts)
    curve = fit_mlm_head(model, tok, texts, steps=60, batch=8, lr=1e-2)
    assert mlm_loss(model, tok, texts) < before and len(curve) == 60
    assert all(torch.equal(p, encoder[n]) for n, p in model.named_parameters() if n.startswith("bert."))
