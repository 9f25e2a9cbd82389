"""`lmtailor corpus --workers N`: the same documents kept, in the same splits, written byte for byte the same,
whatever N; on a tiny corpus with every kind of trouble, and on real data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from lmtailor.corpus import CorpusConfig, run

DOC = ("The Supplier shall deliver the Products to the Purchaser at the Delivery Point on the dates set out in the "
       "Schedule number {n}.\n\nTitle and risk in the Products shall pass to the Purchaser upon delivery.\n\n"
       "第{n}条 合同当事人应当遵循诚信原则，按照约定全面履行自己的义务。\n")  # fmt: skip


def _outputs(out: Path) -> dict[str, bytes]:
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.jsonl"))}
    stats = json.loads((out / "stats.json").read_text())
    stats.pop("seconds", None)
    files["stats"] = json.dumps(stats, sort_keys=True).encode()
    return files


def _corpus(root: Path) -> Path:
    docs = root / "docs"
    docs.mkdir()
    rng = random.Random(0)
    words = [
        "party",
        "notice",
        "term",
        "fee",
        "claim",
        "goods",
        "price",
        "delivery",
        "court",
        "law",
        "breach",
        "remedy",
    ]
    for n in range(30):  # each its own text, with the same boilerplate paragraph: exact repeats of one record
        own = " ".join(rng.choice(words) for _ in range(60))
        (docs / f"doc{n:02d}.txt").write_text(f"{own}.\n\n" + DOC.format(n=1), encoding="utf-8")
    (docs / "near.txt").write_text((docs / "doc03.txt").read_text().replace("Schedule", "schedule"), "utf-8")
    (docs / "rows.jsonl").write_text("".join(json.dumps({"text": f"Row {i} of the table."}) + "\n"
                                             for i in range(40)) + "{broken\n", encoding="utf-8")  # fmt: skip
    (docs / "bad.txt").write_bytes(b"A good paragraph.\n\n" * 50 + b"broken \xff here\n")
    (docs / "law.md").write_text("# 测试法\n\n<!-- INFO END -->\n\n## 第一章\n\n第一条 为了规范测试活动，制定本法。\n",
                                 encoding="utf-8")  # fmt: skip
    (docs / "image.txt").write_bytes(bytes(range(256)) * 8)
    return docs


def test_one_two_and_three_workers_write_the_same_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = _corpus(tmp_path)
    outs = [_outputs(run(CorpusConfig.build(inputs=[docs], out_dir=tmp_path / f"w{w}", workers=w, seed=3,
                                            split_ratios=[0.6, 0.2, 0.2], show_progress=False)))
            for w in (1, 2, 3)]  # fmt: skip
    assert outs[0] == outs[1] == outs[2]
    stats = json.loads(outs[0]["stats"])
    assert stats["documents"]["near_duplicate"] >= 1 and stats["duplicates_removed"]["exact_records"] > 0
    assert sum(stats["skipped"]["by_reason"].values()) >= 2  # the broken jsonl line, the binary file


@pytest.mark.data
@pytest.mark.slow
def test_workers_on_real_data(shared_data: Path, tmp_path: Path) -> None:
    """Chinese laws (Markdown) and English contracts together, near-duplicate removal on: 1, 2 and 3 workers."""
    inputs = [shared_data / "zh-legal" / "laws" / "dev", shared_data / "en-legal" / "cuad" / "contracts" / "dev"]
    outs = [_outputs(run(CorpusConfig.build(inputs=inputs, out_dir=tmp_path / f"w{w}", workers=w,
                                            show_progress=False))) for w in (1, 2, 3)]  # fmt: skip
    assert outs[0] == outs[1] == outs[2]
    assert json.loads(outs[0]["stats"])["documents"]["kept"] > 100


def _dies_on_doc07(src, settings):
    """`prepare_file`, except that the worker reading doc07.txt kills itself (as the OOM killer would)."""
    import os
    import signal

    if src.path.name == "doc07.txt":
        os.kill(os.getpid(), signal.SIGKILL)
    return _REAL["prepare_file"](src, settings)


_REAL: dict = {}  # the real prepare_file, kept here while the module's is patched


def test_a_worker_killed_mid_corpus_fails_cleanly_and_the_rerun_finishes(tmp_path, monkeypatch) -> None:
    """SIGKILL of a worker: a clear error naming the file, no output folder; then a rerun that finishes."""
    import lmtailor.corpus.parallel as parallel
    from lmtailor.errors import OutputWriteError

    docs = _corpus(tmp_path)
    _REAL["prepare_file"] = parallel.prepare_file
    monkeypatch.setattr(parallel, "prepare_file", _dies_on_doc07)  # forked workers run the patched module
    cfg = CorpusConfig.build(inputs=[docs], out_dir=tmp_path / "out", workers=2, show_progress=False)
    with pytest.raises(OutputWriteError, match=r"doc07\.txt"):
        run(cfg)
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr(parallel, "prepare_file", _REAL["prepare_file"])
    assert json.loads((run(cfg) / "stats.json").read_text())["documents"]["read"] > 30
