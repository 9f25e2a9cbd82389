"""`lmtailor vocab extend`: add domain terms to a pretrained model as whole tokens, initialised from their pieces.

Each new token's input embedding (and untied output row, for models with an LM head) is the mean of the rows of
the pieces the old tokenizer split the term into, not random, so predictions barely move. Its output bias is the
lowest old bias: a term is rarer than each of its pieces, and a mean-of-pieces bias made the model over-predict
the new terms (MLM loss on held-out contracts 6.766 vs 6.754 with the low bias; original model 6.754). Old rows
are untouched, so text without the new terms gives bitwise the same hidden states (checked and reported).
"""

from __future__ import annotations

import json
import logging
import shutil
from itertools import islice
from pathlib import Path

import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerFast

from lmtailor.errors import EmptyInputError, InputFormatError, InputNotFoundError
from lmtailor.models.folder import check_model_folder
from lmtailor.outputs import stage_output, write_json
from lmtailor.scripts import HAN_RE
from lmtailor.tokenizer.hf import is_uncased
from lmtailor.vocab.config import ExtendConfig
from lmtailor.vocab.model_edit import extra_files, load_model
from lmtailor.vocab.verify import heldout_texts

log = logging.getLogger(__name__)
_WORD_START = "\u2581"  # SentencePiece's word-boundary mark, as a piece of its own
GENERIC_TOKENIZER = "PreTrainedTokenizerFast"  # loads tokenizer.json as written, in transformers 4 and 5


@torch.no_grad()
def mean_init(model: PreTrainedModel, rows: list[tuple[int, list[int]]], first_new: int) -> None:
    """Set each new row of the input (and untied output) embeddings to the mean of its pieces' rows, and its bias to
    the lowest old bias; `rows` holds (new row, old piece ids)."""
    emb = model.get_input_embeddings().weight
    out = model.get_output_embeddings()
    tied = out is not None and out.weight.data_ptr() == emb.data_ptr()
    for row, ids in rows:
        index = torch.tensor(ids, dtype=torch.long)
        emb[row] = emb[index].mean(0)
        if out is not None and not tied:
            out.weight[row] = out.weight[index].mean(0)
        if out is not None and getattr(out, "bias", None) is not None:
            out.bias[row] = out.bias[:first_new].min()


def _added_token(term: str) -> AddedToken:
    # Latin terms only match as whole words, on normalised (e.g. lowercased) text. Han has no word boundaries, and
    # BERT's normaliser spaces Han characters apart, so a Han term is matched on the raw text.
    han = bool(HAN_RE.search(term))
    return AddedToken(term, single_word=not han, normalized=not han, special=False)


def _no_word_start_after_terms(tok) -> tuple[PreTrainedTokenizerFast, bool]:
    """A SentencePiece tokenizer as transformers 5 builds it (split on whitespace, then prepend "▁" to every piece)
    also starts the text after each added token as a new word: 急性心肌梗死后 → `急性心肌梗死 ▁ 后`, one stray piece per
    term that Chinese text never has mid-sentence, and a space where it decodes. This rebuilds it to prepend "▁" at
    the text's start only, with whitespace runs collapsed to one space (which becomes "▁") and trailing whitespace
    dropped, which is the same tokenization of any text without an added token (the hidden-state check below says
    so on held-out text). Returns the tokenizer to save and whether it was rebuilt; other tokenizers are returned as
    they are."""
    state = json.loads(tok.backend_tokenizer.to_str())
    pre = state.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else []
    if not (len(steps) == 2 and steps[0].get("type") == "WhitespaceSplit" and steps[1].get("type") == "Metaspace"
            and steps[1].get("prepend_scheme") == "always" and steps[1].get("split", True)):  # fmt: skip
        return tok, False
    mark = steps[1].get("replacement", _WORD_START)
    backend = Tokenizer.from_str(tok.backend_tokenizer.to_str())
    collapse = [normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip(left=False, right=True)]
    backend.normalizer = normalizers.Sequence([backend.normalizer, *collapse] if backend.normalizer else collapse)
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=mark, prepend_scheme="first", split=True)
    backend.decoder = decoders.Metaspace(replacement=mark, prepend_scheme="first", split=True)
    rebuilt = PreTrainedTokenizerFast(tokenizer_object=backend, model_max_length=tok.model_max_length,
                                      **tok.special_tokens_map)  # fmt: skip
    return rebuilt, True


def run_extend(config: ExtendConfig) -> Path:
    from lmtailor.terms import load_terms

    src = Path(config.model)
    check_model_folder(src)
    for p in [*config.terms, *config.verify_inputs]:
        if not Path(p).exists():
            raise InputNotFoundError(f"input {p} does not exist; check the path.")
    tok = AutoTokenizer.from_pretrained(str(src))
    if not getattr(tok, "is_fast", False):
        raise InputFormatError(f"model folder {src} has no fast tokenizer (tokenizer.json).")
    terms = [t for p in config.terms for t in load_terms(Path(p))]
    if is_uncased(tok):
        terms = [t.lower() for t in terms]  # an uncased model: add the lowercase form
    terms = list(dict.fromkeys(terms))[: config.max_terms]  # a term in two glossaries is added once
    plan, skipped = _plan(tok, terms)
    if not plan:
        raise EmptyInputError(f"none of the {len(terms)} terms needs adding: each is one token already or empty.")
    model = load_model(src)
    lowered = [t for t, _ in plan]
    texts = [
        x
        for x in heldout_texts(config.verify_inputs, config.verify_texts, ("test", "dev", "train"))
        if not any(t in x.lower() for t in lowered)
    ]  # term-free text only
    before = _hidden(model, tok, texts)
    first_new = len(tok)
    tok.add_tokens([_added_token(t) for t, _ in plan])
    tok, restarted = _no_word_start_after_terms(tok)
    if restarted:
        model.config.tokenizer_class = GENERIC_TOKENIZER
    model.resize_token_embeddings(len(tok), mean_resizing=False)
    # each term's own new id: the tokenizer may add fewer tokens than asked (two spellings of one added token)
    rows = {tok.convert_tokens_to_ids(t): ids for t, ids in plan}
    mean_init(model, [(row, ids) for row, ids in rows.items() if row >= first_new], first_new)
    after = _hidden(model, tok, texts)
    # None: no held-out text was free of every new term, so nothing could be checked (not "unchanged")
    unchanged = all(torch.equal(a, b) for a, b in zip(before, after, strict=True)) if texts else None
    single = sum(len(tok(t, add_special_tokens=False).input_ids) == 1 for t, _ in plan)
    with stage_output(config) as out:
        out.add_input("model", src)
        model.save_pretrained(str(out.dir))
        tok.save_pretrained(str(out.dir))
        if restarted:  # the generic class loads tokenizer.json as written (a model class rebuilds its own)
            settings = out.dir / "tokenizer_config.json"
            data = json.loads(settings.read_text(encoding="utf-8"))
            settings.write_text(json.dumps({**data, "tokenizer_class": GENERIC_TOKENIZER}, indent=2) + "\n",
                                encoding="utf-8")  # fmt: skip
        for extra in extra_files(src):
            (shutil.copytree if extra.is_dir() else shutil.copy2)(extra, out.dir / extra.name)
        report = {
            "terms_read": len(terms),
            "terms_added": len(plan),
            "terms_skipped": skipped,
            "added_terms_one_token": single,
            "vocab_before": first_new,
            "vocab_after": len(tok),
            "verify_texts": len(texts),
            "outputs_unchanged_on_term_free_text": unchanged,
            "word_start_after_terms": "removed" if restarted else "unchanged",
            "pieces": {t: tok.convert_ids_to_tokens(ids) for t, ids in islice(plan, 50)},
        }
        write_json(out.dir / "extend_report.json", report)
        out.metrics.update({k: v for k, v in report.items() if k != "pieces"})
    return Path(config.out_dir)


def _plan(tok, terms: list[str]) -> tuple[list[tuple[str, list[int]]], dict[str, int]]:
    """(term, old piece ids) for every term that is not one token yet; counts of terms skipped and why."""
    vocab = tok.get_vocab()
    unk = tok.unk_token_id
    # SentencePiece tokenizers start a text with a bare word-boundary piece ("▁ 心 肌 梗 死"): it belongs to the
    # text's start, not to the term, which mid-text is "心 肌 梗 死"; averaging it in pulls every Han term towards it
    bare = vocab.get(_WORD_START)
    plan, skipped = [], {"already_one_token": 0, "no_known_pieces": 0}
    for term in terms:
        ids = tok(term, add_special_tokens=False).input_ids
        if len(ids) == 1 or term in vocab:
            skipped["already_one_token"] += 1
            continue
        known = [i for i in ids if i not in (unk, bare)] or [i for i in ids if i != unk]
        if not known:
            skipped["no_known_pieces"] += 1
            log.warning("term %r has no known pieces (all [UNK]); not added", term)
            continue
        plan.append((term, known))
    return plan, skipped


@torch.no_grad()
def _hidden(model: PreTrainedModel, tok, texts: list[str]) -> list[torch.Tensor]:
    out = []
    for text in texts:
        enc = tok(text, return_tensors="pt", truncation=True, max_length=128)
        out.append(model(**enc, output_hidden_states=True).hidden_states[-1])
    return out
