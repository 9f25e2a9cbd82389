"""`lmtailor corpus --workers N`, and `--engine datatrove` with N tasks: the same documents kept, in the same
splits, written byte for byte the same, whatever N and whichever engine; on a tiny corpus with every kind of trouble,
and on real data."""

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


@pytest.mark.parametrize(
    "settings",
    [{}, {"near_dup_threshold": 0}, {"dedup_exact": False, "min_chars": 30}],
    ids=["both-dedups", "exact-only", "near-only"],
)
def test_the_datatrove_engine_writes_the_same_corpus_with_1_2_and_3_tasks(tmp_path: Path, settings: dict) -> None:
    """`--engine datatrove` (every decision from files on disk) against the in-memory path, byte for byte."""
    docs = _corpus(tmp_path)
    common = {"inputs": [docs], "seed": 3, "split_ratios": [0.6, 0.2, 0.2], "show_progress": False, **settings}
    local = _outputs(run(CorpusConfig.build(out_dir=tmp_path / "local", **common)))
    for tasks in (1, 2, 3):
        out = tmp_path / f"dt{tasks}"
        assert _outputs(run(CorpusConfig.build(out_dir=out, engine="datatrove", workers=tasks, **common))) == local
        assert not (tmp_path / ".dt{tasks}.engine").exists()  # the staging folder goes after success
    stats = json.loads(local["stats"])
    assert stats["duplicates_removed"]["near_dup_documents"] == (0 if "near_dup_threshold" in settings else 1)
    assert (stats["duplicates_removed"]["exact_records"] > 0) == ("dedup_exact" not in settings)


@pytest.mark.data
@pytest.mark.slow
def test_workers_and_the_datatrove_engine_on_real_data(shared_data: Path, tmp_path: Path) -> None:
    """Chinese laws (Markdown) and English contracts together, near-duplicate removal on: 1, 2 and 3 workers, and
    the datatrove engine with 2 and 3 tasks."""
    inputs = [shared_data / "zh-legal" / "laws" / "dev", shared_data / "en-legal" / "cuad" / "contracts" / "dev"]
    outs = [_outputs(run(CorpusConfig.build(inputs=inputs, out_dir=tmp_path / f"w{w}", workers=w,
                                            show_progress=False))) for w in (1, 2, 3)]  # fmt: skip
    outs += [_outputs(run(CorpusConfig.build(inputs=inputs, out_dir=tmp_path / f"dt{w}", workers=w, engine="datatrove",
                                             show_progress=False))) for w in (2, 3)]  # fmt: skip
    assert outs[0] == outs[1] == outs[2] == outs[3] == outs[4]
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


def _counting_prepare(src, settings, keep_texts=False):
    """The engine's `iter_prepared`, writing down each file it reads."""
    with open(_REAL["calls"], "a", encoding="utf-8") as fh:
        fh.write(src.path.name + "\n")
    return _REAL["iter_prepared"](src, settings, keep_texts=keep_texts)


def _exact_dies_once(stage, part, tasks, removed):
    """The engine's exact-duplicate step, except that its first task kills itself (as the OOM killer would)."""
    import os
    import signal

    died = _REAL["calls"].parent / "died"
    if not died.exists():
        died.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return _REAL["exact"](stage, part, tasks, removed)


def test_a_killed_engine_task_fails_cleanly_and_the_rerun_resumes(tmp_path, monkeypatch) -> None:
    """SIGKILL of a datatrove task: a clear error, no output folder, the staging kept; the rerun does not read
    the documents again (their step had finished) and writes the same corpus as the in-memory path."""
    import lmtailor.corpus.engine_steps as steps
    from lmtailor.errors import OutputWriteError

    docs = _corpus(tmp_path)
    _REAL.update(iter_prepared=steps.iter_prepared, exact=steps.exact_duplicates, calls=tmp_path / "calls.txt")
    monkeypatch.setattr(steps, "iter_prepared", _counting_prepare)  # forked tasks run the patched module
    monkeypatch.setattr(steps, "exact_duplicates", _exact_dies_once)
    cfg = CorpusConfig.build(inputs=[docs], out_dir=tmp_path / "out", engine="datatrove", workers=2,
                             show_progress=False)  # fmt: skip
    with pytest.raises(OutputWriteError, match=r"step 'exact' died .* run the stage again"):
        run(cfg)
    assert not (tmp_path / "out").exists() and (tmp_path / ".out.engine" / "plan.pkl").is_file()
    assert "doc07.txt" in (tmp_path / "calls.txt").read_text().split()
    (tmp_path / "calls.txt").unlink()
    out = _outputs(run(cfg))
    assert not (tmp_path / "calls.txt").exists()  # every prepare task had finished: none ran again
    assert not (tmp_path / ".out.engine").exists()
    local = CorpusConfig.build(inputs=[docs], out_dir=tmp_path / "local", show_progress=False)
    assert out == _outputs(run(local))
