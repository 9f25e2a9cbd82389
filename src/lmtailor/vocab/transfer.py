"""`lmtailor vocab transfer`: move a pretrained model onto a domain tokenizer (fast vocabulary transfer).

Every token of the new vocabulary gets, in every vocabulary tensor (input embeddings, untied output layer, output
bias), the mean of the old rows of its decomposition under the old tokenizer. A token that is also one old token
("▁licensee" ↔ "licensee", "ing" ↔ "##ing") keeps that token's vector exactly. Special tokens are matched by role
([CLS] ↔ <s>, ...). A token with no known pieces (a byte-fallback token, a character the old model never saw) gets
the old [UNK] vector: the model's learned stand-in for what it does not know. Tokens of a byte-level vocabulary
(lmtailor's WordPiece spells "▁the" as "âĸģthe") are decoded to their text first; a token that is only part of a
multi-byte character has no pieces.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from lmtailor.errors import InputFormatError, InputNotFoundError
from lmtailor.models.folder import check_model_folder
from lmtailor.models.loading import load_mlm
from lmtailor.outputs import stage_output, write_json
from lmtailor.tokenizer.hf import is_uncased
from lmtailor.tokenizer.pipeline import SPACE, from_byte_level
from lmtailor.vocab.config import TransferConfig
from lmtailor.vocab.mlm import mlm_loss
from lmtailor.vocab.model_edit import average_rows, extra_files, load_model
from lmtailor.vocab.tokenizer_edit import TOKENIZER_FILES
from lmtailor.vocab.verify import heldout_texts

log = logging.getLogger(__name__)
ROLES = ("pad", "unk", "cls", "sep", "mask", "bos", "eos")


def decompose(token: str, old_tok, old_vocab: dict[str, int], uncased: bool) -> list[int]:
    """Old ids whose mean initialises `token`; [] when the old tokenizer knows none of its pieces."""
    if token.startswith(SPACE):
        surface, continuation = token[1:].replace(SPACE, " "), False
    elif token.startswith("##"):
        surface, continuation = token[2:], True
    else:
        surface, continuation = token.replace(SPACE, " "), True
    if not surface.strip():
        return []
    if continuation and _starts_word(old_tok, surface):
        continuation = False  # punctuation: the old tokenizer always splits it off as its own word ("," not "##,")
    lookup = surface.lower() if uncased else surface
    exact = old_vocab.get(("##" + lookup) if continuation else lookup)
    if exact is not None:
        return [exact]
    ids = [i for i in old_tok(surface, add_special_tokens=False).input_ids if i != old_tok.unk_token_id]
    if continuation and ids:
        # The old tokenizer saw `surface` as a word start; inside a word its first piece has a "##" form.
        first = old_tok.convert_ids_to_tokens(ids[0])
        ids[0] = old_vocab.get("##" + first, ids[0])
    return ids


def _starts_word(old_tok, surface: str) -> bool:
    """Whether the old tokenizer's pre-tokenizer splits `surface` off a preceding letter, i.e. never sees it
    inside a word (BERT splits punctuation off: "a," → "a", ",")."""
    pre = getattr(old_tok.backend_tokenizer, "pre_tokenizer", None)
    if pre is None:
        return False
    pieces = pre.pre_tokenize_str("a" + surface)
    return len(pieces) > 1 and pieces[1][1][0] == 1


def _role_map(new_folder: Path, new: Tokenizer, old_tok) -> dict[int, int]:
    """new special-token id → old id of the token with the same role."""
    cfg_path = new_folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else {}
    out = {}
    for role in ROLES:
        new_token, old_id = cfg.get(f"{role}_token"), getattr(old_tok, f"{role}_token_id", None)
        if isinstance(new_token, dict):
            new_token = new_token.get("content")
        if new_token and old_id is not None and new.token_to_id(new_token) is not None:
            out[new.token_to_id(new_token)] = old_id
    return out


def run_transfer(config: TransferConfig) -> Path:
    src, new_folder = Path(config.model), Path(config.tokenizer)
    for p in [src, new_folder, *config.verify_inputs]:
        if not Path(p).exists():
            raise InputNotFoundError(f"input {p} does not exist; check the path.")
    check_model_folder(src)
    if not (new_folder / "tokenizer.json").is_file():
        raise InputFormatError(
            f"{new_folder} has no tokenizer.json; pass a tokenizer folder from `lmtailor tokenizer train`."
        )
    old_tok = AutoTokenizer.from_pretrained(str(src))
    new = Tokenizer.from_file(str(new_folder / "tokenizer.json"))
    old_vocab = old_tok.get_vocab()
    roles = _role_map(new_folder, new, old_tok)
    unk = old_tok.unk_token_id if old_tok.unk_token_id is not None else 0
    rows, stats = [], {"kept_old_vector": 0, "mean_of_pieces": 0, "no_known_pieces": 0}
    inverse = {i: t for t, i in new.get_vocab(with_added_tokens=True).items()}
    if "ByteLevel" in json.dumps(json.loads(new.to_str()).get("pre_tokenizer")):
        inverse = {i: from_byte_level(t) or "" for i, t in inverse.items()}
    uncased = is_uncased(old_tok)
    for i in range(new.get_vocab_size(with_added_tokens=True)):
        ids = [roles[i]] if i in roles else decompose(inverse[i], old_tok, old_vocab, uncased)
        key = "kept_old_vector" if len(ids) == 1 else "mean_of_pieces" if ids else "no_known_pieces"
        stats[key] += 1
        rows.append(ids or [unk])
    model = load_model(src)
    special = {old: new_id for new_id, old in roles.items()}
    transferred = average_rows(model, rows, special)
    with stage_output(config) as out:
        out.add_input("model", src)
        out.add_input("tokenizer", new_folder)
        transferred.save_pretrained(str(out.dir))
        for name in TOKENIZER_FILES:
            if (new_folder / name).is_file():
                shutil.copy2(new_folder / name, out.dir / name)
        for extra in extra_files(src):
            (shutil.copytree if extra.is_dir() else shutil.copy2)(extra, out.dir / extra.name)
        report = {"vocab_before": len(old_tok), "vocab_after": len(rows), **stats}
        report["mlm_loss_heldout"] = _mlm_report(config, src, out.dir)
        write_json(out.dir / "transfer_report.json", report)
        out.metrics.update(report)
    return Path(config.out_dir)


def _mlm_report(config: TransferConfig, src: Path, new_dir: Path) -> dict | None:
    """MLM loss of the original, the transferred model and the same model with random embeddings, before training.

    A model saved without an MLM head (e.g. a sentence-transformers encoder) gets one initialised from the same seed
    for all three, so the numbers compare embeddings, not heads.
    """

    if not config.verify_inputs or not config.verify_texts:
        return None
    texts = heldout_texts(config.verify_inputs, config.verify_texts, (config.verify_split, "dev", "train"))
    losses = {}
    for name, folder in (("original", src), ("transferred", new_dir), ("random_embeddings", new_dir)):
        torch.manual_seed(config.seed)
        model = load_mlm(str(folder))[0].eval()
        if name == "random_embeddings":
            with torch.no_grad():
                model.get_input_embeddings().weight.normal_(0.0, getattr(model.config, "initializer_range", 0.02))
        losses[name] = round(mlm_loss(model, AutoTokenizer.from_pretrained(str(folder)), texts, seed=config.seed), 4)
    return losses
