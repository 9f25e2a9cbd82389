"""Entry point of `lmtailor vocab trim`: count, select, rewrite tokenizer and model, verify, report."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from tokenizers import Tokenizer

from lmtailor.errors import ConfigError, InputFormatError, InputNotFoundError
from lmtailor.models.folder import check_model_folder
from lmtailor.outputs import stage_output, write_json
from lmtailor.vocab.config import TrimConfig
from lmtailor.vocab.counting import count_token_ids
from lmtailor.vocab.model_edit import count_parameters, extra_files, load_model, slice_model
from lmtailor.vocab.selection import alphabet_ids, close_merges, select
from lmtailor.vocab.tokenizer_edit import write_tokenizer_folder
from lmtailor.vocab.verify import compare_outputs, compare_tokenizers, heldout_texts

log = logging.getLogger(__name__)


def _load_tokenizer(folder: Path) -> tuple[Tokenizer, dict]:
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise InputFormatError(
            f"model folder {folder} has no fast tokenizer (tokenizer.json); save one with "
            "AutoTokenizer.from_pretrained(folder).save_pretrained(folder) using a transformers version that "
            "converts it."
        )
    return Tokenizer.from_file(str(path)), json.loads(path.read_text(encoding="utf-8"))


def _required_ids(tok: Tokenizer, tok_json: dict, keep: list[Path]) -> set[int]:
    from lmtailor.terms import load_terms

    ids = {t["id"] for t in tok_json.get("added_tokens", [])} | alphabet_ids(tok_json)
    unk = tok.token_to_id("[UNK]") if tok.token_to_id("[UNK]") is not None else tok.token_to_id("<unk>")
    for path in keep:
        for term in load_terms(path):
            enc = tok.encode(term, add_special_tokens=False)
            if unk is not None and unk in enc.ids:
                raise ConfigError(
                    f"required term {term!r} (from {path}) encodes to [UNK] with this tokenizer, so trimming cannot "
                    "keep it; remove it from --keep or add it with `lmtailor vocab extend`."
                )
            ids.update(enc.ids)
    return ids


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _verify_texts(config: TrimConfig) -> list[str]:
    if config.verify_inputs:
        return heldout_texts(config.verify_inputs, config.verify_texts, (config.verify_split, "dev", "train"))
    # No held-out inputs given: the held-out splits of the counted corpus, never its train split.
    return heldout_texts(config.inputs, config.verify_texts, (config.verify_split, "dev"))


def run_trim(config: TrimConfig) -> Path:
    """Trim `config.model` to the tokens `config.inputs` use; write an HF model folder that verifies itself."""
    from lmtailor.corpus import iter_texts

    src = Path(config.model)
    if not src.is_dir():
        raise InputNotFoundError(f"model folder {src} does not exist; pass an HF model folder (config.json, weights).")
    check_model_folder(src)
    for p in [*config.inputs, *config.keep, *config.verify_inputs]:
        if not Path(p).exists():
            raise InputNotFoundError(f"input {p} does not exist; check the path.")
    t0 = time.perf_counter()
    tok, tok_json = _load_tokenizer(src)
    required = _required_ids(tok, tok_json, config.keep)
    counts, n_texts = count_token_ids(tok, iter_texts(config.inputs, split=config.split), config.batch_size)
    selection = select(counts, required, config.coverage, config.size)
    kept = sorted(close_merges(tok_json, set(selection.kept)))
    old_to_new = {old: new for new, old in enumerate(kept)}
    count_seconds = time.perf_counter() - t0
    model = load_model(src)
    trimmed = slice_model(model, kept)
    with stage_output(config) as out:
        out.add_input("model", src)
        for i, p in enumerate(config.inputs):
            out.add_input(f"inputs[{i}]", Path(p))
        trimmed.save_pretrained(str(out.dir))
        left_out = write_tokenizer_folder(src, out.dir, tok_json, old_to_new)
        for extra in extra_files(src):
            (shutil.copytree if extra.is_dir() else shutil.copy2)(extra, out.dir / extra.name)
        new_tok = Tokenizer.from_file(str(out.dir / "tokenizer.json"))
        trim_seconds = time.perf_counter() - t0
        texts = _verify_texts(config)
        tokens = compare_tokenizers(Tokenizer.from_file(str(src / "tokenizer.json")), new_tok, old_to_new, texts)
        if tokens.mismatched:
            raise InputFormatError(
                f"trimmed tokenizer disagrees with the original on {tokens.mismatched} fully covered records; "
                "this is a bug in lmtailor, please report it with the model folder."
            )
        # Two positions spare: RoBERTa-style models offset positions by the padding index.
        length = min(128, getattr(model.config, "max_position_embeddings", 514) - 2)
        orig_tok = Tokenizer.from_file(str(src / "tokenizer.json"))
        outputs = compare_outputs(model, trimmed, orig_tok, old_to_new, texts, max_length=length)
        report = _report(config, model, trimmed, selection, kept, counts, n_texts, tokens, outputs)
        report.update(seconds_counting=round(count_seconds, 2), seconds_trimming=round(trim_seconds, 2),
                      seconds_total=round(time.perf_counter() - t0, 2), bytes_before=_bytes(src),
                      tokenizer_files_left_out=left_out)  # fmt: skip
        report["bytes_after"] = _bytes(out.dir)  # model and tokenizer files; the report itself is not counted
        write_json(out.dir / "trim_report.json", report)
        out.metrics.update(report)
    log.info("trimmed %s: %d → %d tokens, %d → %d parameters", src, report["vocab_before"], report["vocab_after"],
             report["parameters_before"], report["parameters_after"])  # fmt: skip
    return Path(config.out_dir)


def _report(config, model, trimmed, selection, kept, counts, n_texts, tokens, outputs) -> dict:
    p_before, e_before = count_parameters(model)
    p_after, e_after = count_parameters(trimmed)
    return {
        "vocab_before": len(counts),
        "vocab_after": len(kept),
        "kept_required": selection.required,
        "corpus_texts": n_texts,
        "corpus_tokens": int(counts.sum()),
        "corpus_tokens_seen": int((counts > 0).sum()),
        "corpus_coverage": round(selection.covered, 6),
        "parameters_before": p_before,
        "parameters_after": p_after,
        "embedding_share_before": round(e_before / p_before, 4),
        "embedding_share_after": round(e_after / p_after, 4),
        "heldout_texts": tokens.texts,
        "heldout_token_coverage": round(tokens.tokens_kept / tokens.tokens, 6) if tokens.tokens else None,
        "heldout_texts_changed": tokens.texts_changed,
        "heldout_share_changed": round(tokens.texts_changed / tokens.texts, 4) if tokens.texts else None,
        "heldout_unk_original": tokens.unk_original,
        "heldout_unk_trimmed": tokens.unk_trimmed,
        "parity": outputs,
    }
