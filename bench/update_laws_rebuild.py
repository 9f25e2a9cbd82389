"""The full rebuild that `bench/update_bench.py laws` is compared with (issue 28).

    .venv/bin/python bench/update_laws_rebuild.py
    (after `update_bench.py laws --work /tmp/upd-laws` and `lmtailor update /tmp/upd-laws/old … --out
    /tmp/upd-laws/updated2`)

The same start (e5 with its fitted MLM head), continued on every category (old and new, without the update's held-out
paragraphs) for the old model's and the update's steps together (400); then the MLM loss of the old model, the update
and the rebuild on the update's held-out old and new paragraphs, with the same function, seed and texts as the update
report. Writes /tmp/upd-laws/rebuild.json.
"""

import json
import time
from pathlib import Path

from transformers import AutoTokenizer

from lmtailor.corpus.source import iter_texts
from lmtailor.models.loading import load_mlm
from lmtailor.stages import run_stage
from lmtailor.train.config import PretrainConfig
from lmtailor.update.stage import _split_heldout
from lmtailor.vocab.mlm import mlm_loss

if __name__ == "__main__":
    W = Path("/tmp/upd-laws")
    new_texts, new_held = _split_heldout(list(iter_texts([W / "new-train"])), 200, 0)
    old_texts, old_held = _split_heldout(list(iter_texts([W / "old-train"])), 200, 0)
    data = W / "rebuild.jsonl"
    data.write_text(
        "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in new_texts + old_texts), encoding="utf-8"
    )
    t0 = time.perf_counter()
    run_stage(
        "pretrain",
        PretrainConfig.build(
            corpus=[data],
            model=str(W / "start"),
            steps=400,
            seq_len=128,
            batch_size=16,
            lr=5e-5,
            eval_split=None,
            show_progress=False,
            overwrite=True,
            out_dir=W / "rebuild",
        ),
    )
    minutes = (time.perf_counter() - t0) / 60
    out = {"minutes": round(minutes, 1)}
    for name in ("old", "updated2", "rebuild"):
        model, _ = load_mlm(str(W / name))
        tok = AutoTokenizer.from_pretrained(str(W / name))
        out[name] = {
            "old_text": round(mlm_loss(model, tok, old_held, 0, max_length=128), 4),
            "new_text": round(mlm_loss(model, tok, new_held, 0, max_length=128), 4),
        }
    print(json.dumps(out))
    (W / "rebuild.json").write_text(json.dumps(out))
