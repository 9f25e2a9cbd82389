"""Rewriting a fast tokenizer (tokenizer.json and the files beside it) for a vocabulary that kept some old ids.

New ids follow old-id order, so the map old → new is monotone. Every place an id is written down is remapped: the
model's vocabulary (and BPE merges), added tokens, the post-processor's special-token ids, the padding id, and
`added_tokens_decoder` in tokenizer_config.json. WordPiece's vocab.txt and BPE's vocab.json/merges.txt are
rewritten; a SentencePiece .model file cannot be trimmed safely, so it is left out (tokenizer.json is complete).
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

from lmtailor.outputs import write_json

TOKENIZER_FILES = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json", "merges.txt",
    "spiece.model", "sentencepiece.bpe.model", "tokenizer.model", "added_tokens.json",
}  # fmt: skip


def trim_tokenizer_json(tok_json: dict, old_to_new: dict[int, int]) -> dict:
    """A copy of `tok_json` that only knows the kept tokens, under their new ids."""
    out = copy.deepcopy(tok_json)
    model = out["model"]
    if model["type"] == "Unigram":
        model["vocab"] = [p for i, p in enumerate(model["vocab"]) if i in old_to_new]
        if model.get("unk_id") is not None:
            model["unk_id"] = old_to_new[model["unk_id"]]
    else:
        model["vocab"] = {t: old_to_new[i] for t, i in sorted(model["vocab"].items(), key=lambda kv: kv[1])
                          if i in old_to_new}  # fmt: skip
        if model["type"] == "BPE":
            kept = model["vocab"]
            merges = [m.split(" ", 1) if isinstance(m, str) else m for m in model.get("merges", [])]
            model["merges"] = [[a, b] for a, b in merges if a in kept and b in kept and a + b in kept]
    out["added_tokens"] = [dict(t, id=old_to_new[t["id"]]) for t in out.get("added_tokens", [])]
    if out.get("post_processor"):
        out["post_processor"] = _remap_processor(out["post_processor"], old_to_new)
    if out.get("padding") and out["padding"].get("pad_id") is not None:
        out["padding"]["pad_id"] = old_to_new.get(out["padding"]["pad_id"], 0)
    return out


def _remap_processor(proc: dict, old_to_new: dict[int, int]) -> dict:
    kind = proc.get("type")
    if kind == "Sequence":
        return dict(proc, processors=[_remap_processor(p, old_to_new) for p in proc["processors"]])
    if kind == "TemplateProcessing":
        specials = {name: dict(s, ids=[old_to_new[i] for i in s["ids"]]) for name, s in proc["special_tokens"].items()}
        return dict(proc, special_tokens=specials)
    if kind in ("BertProcessing", "RobertaProcessing"):
        return dict(
            proc, sep=[proc["sep"][0], old_to_new[proc["sep"][1]]], cls=[proc["cls"][0], old_to_new[proc["cls"][1]]]
        )
    return proc


def write_tokenizer_folder(src: Path, dst: Path, tok_json: dict, old_to_new: dict[int, int]) -> list[str]:
    """Write the trimmed tokenizer files into `dst`; return the names of source files that were left out."""
    new_json = trim_tokenizer_json(tok_json, old_to_new)
    (dst / "tokenizer.json").write_text(json.dumps(new_json, ensure_ascii=False), encoding="utf-8")
    for name in ("special_tokens_map.json", "added_tokens.json"):
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    if (src / "tokenizer_config.json").is_file():
        cfg = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))
        if "added_tokens_decoder" in cfg:
            cfg["added_tokens_decoder"] = {str(old_to_new[int(k)]): v for k, v in cfg["added_tokens_decoder"].items()
                                           if int(k) in old_to_new}  # fmt: skip
        write_json(dst / "tokenizer_config.json", cfg)
    model = new_json["model"]
    if (src / "vocab.txt").is_file() and model["type"] == "WordPiece":
        ordered = sorted(model["vocab"], key=model["vocab"].get)
        (dst / "vocab.txt").write_text("".join(t + "\n" for t in ordered), encoding="utf-8")
    if (src / "vocab.json").is_file() and model["type"] == "BPE":
        write_json(dst / "vocab.json", model["vocab"])
        lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in model["merges"]]
        (dst / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    written = {p.name for p in dst.iterdir()}
    return sorted(n for n in TOKENIZER_FILES if (src / n).is_file() and n not in written)
