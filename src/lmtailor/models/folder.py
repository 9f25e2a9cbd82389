"""Model folders on disk: which files are weights and which describe the model, and checking a folder before anything
loads it, so a damaged or wrong folder is one clear message, not a trace.

transformers answers a folder without `config.json`, a tokenizer folder, or a cut-off `model.safetensors` with a
long traceback (`OSError: ... does not appear to have a file named config.json`, `SafetensorError: Error while
deserializing header: MetadataIncompleteBuffer`). The checks here are cheap (`config.json` is parsed; of each
safetensors file only the header is read and its stated size compared with the file's), and run wherever a stage
opens a model folder.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

from lmtailor.errors import InputFormatError, InputNotFoundError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "sentencepiece.bpe.model", "spm.model")
ONNX_FILE = "model.onnx"  # the graph of an `lmtailor export` or `quantize` folder
# The PyTorch weights of an HF folder; a folder without any is an ONNX export (or not a model).
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
# Endings of weight files of any framework: what is never copied as a file that merely describes the model.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".onnx", ".ckpt")
# What travels with a converted model (an ONNX graph, a quantised copy): the model's description and its tokenizer,
# never weights or training reports.
METADATA_PATTERNS = ("config.json", "task.json", "tokenizer*.json", "special_tokens_map.json", "added_tokens.json",
                     "vocab.txt", "vocab.json", "merges.txt", "*.model")  # fmt: skip
_MAX_HEADER = 100 << 20  # safetensors' own limit on the JSON header


def check_model_folder(path: str | Path, role: str = "model") -> None:
    """Raise a `LmtailorError` naming `path` when it is not a loadable HF model folder; hub ids pass through."""
    folder = Path(path)
    if not folder.exists():
        if _hub_id(str(path)):
            return
        raise InputNotFoundError(f"{role} folder {path} does not exist; pass a model folder lmtailor or HF wrote.")
    if not folder.is_dir():
        raise InputFormatError(f"{role} {path} is a file; pass the folder that holds config.json and the weights.")
    config = folder / "config.json"
    if not config.is_file():
        if any((folder / name).is_file() for name in TOKENIZER_FILES):
            raise InputFormatError(
                f"{role} folder {path} holds a tokenizer but no model (no config.json); pass the model folder "
                "(the output of finetune, distill, pretrain or export), which carries its tokenizer too."
            )
        raise InputFormatError(
            f"{role} folder {path} has no config.json, so it is not a Hugging Face model folder; pass the output "
            "folder of an lmtailor stage, or a folder written by save_pretrained."
        )
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputFormatError(f"{config} is not valid JSON ({exc}); restore it from the stage that wrote it.") from exc
    for weights in sorted(folder.glob("*.safetensors")):
        check_safetensors(weights)


def check_safetensors(path: Path) -> None:
    """The file's header parses and the tensors it lists end exactly at the end of the file."""
    size = path.stat().st_size
    problem = None
    with open(path, "rb") as fh:
        head = fh.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else None
        if n is None or n > min(size - 8, _MAX_HEADER):
            problem = "its header is missing or garbled"
        else:
            try:
                header = json.loads(fh.read(n))
                ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
            except (ValueError, UnicodeDecodeError, KeyError, TypeError, IndexError, AttributeError):
                problem = "its header is not valid safetensors JSON"
            else:
                expected = 8 + n + max(ends, default=0)
                if expected != size:
                    problem = f"it holds {size:,} bytes but its header describes {expected:,}"
    if problem:
        raise InputFormatError(
            f"{path} is damaged ({problem}: a copy cut short, or not a safetensors file); copy it again or rerun "
            "the stage that wrote it."
        )


def weight_files(folder: str | Path) -> list[Path]:
    """The PyTorch weight files of a model folder (`WEIGHT_PATTERNS`), sorted."""
    return sorted(f for pattern in WEIGHT_PATTERNS for f in Path(folder).glob(pattern) if f.is_file())


def copy_metadata(src: Path, dst: Path) -> list[str]:
    """Copy config, task spec and tokenizer files (not weights or reports) from `src` to `dst`; their names."""
    names = sorted({f.name for pattern in METADATA_PATTERNS for f in Path(src).glob(pattern) if f.is_file()})
    for name in names:
        shutil.copy2(Path(src) / name, Path(dst) / name)
    return names


def _hub_id(name: str) -> bool:
    """`org/model` or `model`: a Hugging Face hub id, which transformers resolves (from its cache, offline)."""
    parts = name.split("/")
    return 1 <= len(parts) <= 2 and all(parts) and not name.startswith((".", "~")) and "\\" not in name


def current_model(folder: str | Path) -> Path:
    """The model a server (or a recipe's serve stage) should use for `folder`: the folder itself, unless it is an
    `update` whose regression checks failed; then the model it would have replaced (followed back as far as needed).
    A failed update is kept on disk for a person to inspect, never served in place of the model that passed."""
    import logging

    path = Path(folder)
    seen = set()
    while (path / "lmtailor.json").is_file() and path.resolve() not in seen:
        seen.add(path.resolve())
        record = json.loads((path / "lmtailor.json").read_text(encoding="utf-8"))
        metrics = record.get("metrics", {})
        if record.get("stage") != "update" or metrics.get("passed", True):
            break
        previous = Path(metrics.get("previous") or record["config"]["model"])
        logging.getLogger(__name__).warning(
            "%s is an update that failed its regression checks (%s); using the previous model %s", path,
            "; ".join(metrics.get("failed_checks", [])) or "see its update_report.json", previous,
        )  # fmt: skip
        path = previous
    return path
