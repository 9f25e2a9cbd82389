"""The datatrove engine's own decisions, on known answers: the near-duplicate rule from band pairs, the exact rule
from digest partitions, the byte-balanced plan, the staging folder, and the Slurm job chain (built, not submitted)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lmtailor.corpus import CorpusConfig
from lmtailor.corpus.engine import _executors, _open_staging
from lmtailor.corpus.parallel import Settings
from lmtailor.corpus.readers import ReadOptions, SourceFile
from lmtailor.corpus.staging import DIGEST, Plan, Staging, balanced_ranges, exact_duplicates, near_duplicates
from lmtailor.errors import ConfigError


def _pairs(*pairs: tuple[int, int, int, int]) -> np.ndarray:
    return np.array(pairs, dtype="<u4").reshape(-1, 4)


def node(task: int, doc: int) -> int:
    return task << 32 | doc


def test_near_duplicates_follow_the_in_memory_rule() -> None:
    # Band 0: a, b, c share one signature (datatrove writes the chain a-b, b-c): b and c meet a, which is kept.
    assert near_duplicates({0: _pairs((0, 0, 0, 1), (0, 1, 1, 0))}) == [node(0, 1), node(1, 0)]
    # a-b in band 0, b-c in band 1: b goes (it meets a); c met only b, which was dropped, so c stays.
    assert near_duplicates({0: _pairs((0, 0, 0, 1)), 1: _pairs((0, 1, 0, 2))}) == [node(0, 1)]
    # Input order decides, not the order of the pairs: (task 1, doc 0) comes after (task 0, doc 9).
    assert near_duplicates({3: _pairs((1, 0, 0, 9))}) == [node(1, 0)]
    assert near_duplicates({}) == []


def test_exact_duplicates_keep_the_first_copy_among_documents_kept(tmp_path) -> None:
    stage = Staging(tmp_path)

    def rows(*items: tuple[int, int, int]) -> bytes:
        out = np.empty(len(items), DIGEST)
        for i, (digest, doc, rec) in enumerate(items):
            out[i] = (digest, doc, rec)
        return out.tobytes()

    # digest 7: task 0 doc 2 (dropped as a near-duplicate), task 0 doc 5, task 1 doc 0 twice.
    stage.write_bytes("digests/00000/00000.bin", rows((7, 2, 0), (7, 5, 1), (9, 5, 0)))
    stage.write_bytes("digests/00000/00001.bin", rows((7, 0, 0), (7, 0, 3), (8, 0, 1)))
    drops = exact_duplicates(stage, 0, 2, {0: np.array([2], "<u4")})
    assert list(drops) == [1]
    assert drops[1].tolist() == [(0, 0), (0, 3)]  # the near-duplicate's copy did not count as the first


def test_balanced_ranges_are_contiguous_and_cover_every_file() -> None:
    assert balanced_ranges([10, 10, 10, 10], 2) == [(0, 2), (2, 4)]
    assert balanced_ranges([100, 1, 1, 1], 2) == [(0, 1), (1, 4)]
    assert balanced_ranges([5], 3) == [(0, 1), (1, 1), (1, 1)]
    assert balanced_ranges([], 2) == [(0, 0), (0, 0)]
    for sizes in ([3, 1, 4, 1, 5, 9, 2, 6], [0, 0, 7], [1] * 50):
        for tasks in (1, 2, 3, 7):
            ranges = balanced_ranges(sizes, tasks)
            assert len(ranges) == tasks and ranges[0][0] == 0 and ranges[-1][1] == len(sizes)
            assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))


def _config(tmp_path, **extra) -> CorpusConfig:
    (tmp_path / "a.txt").write_text("Some text.\n", encoding="utf-8")
    return CorpusConfig.build(inputs=[tmp_path / "a.txt"], out_dir=tmp_path / "out", engine="datatrove", **extra)


def _files(tmp_path) -> list[SourceFile]:
    return [SourceFile(tmp_path / "a.txt", "a.txt", "text")]


def test_the_staging_folder_is_resumed_only_for_the_same_inputs_and_settings(tmp_path) -> None:
    cfg, files = _config(tmp_path), _files(tmp_path)
    root = tmp_path / "staging"
    stage, resumed = _open_staging(cfg, files, root)
    assert not resumed
    stage.write_bytes("prepared/00000.pkl", b"x")
    assert _open_staging(cfg, files, root)[1] and (root / "prepared" / "00000.pkl").exists()
    other = _config(tmp_path, min_chars=5)
    assert not _open_staging(other, files, root)[1] and not (root / "prepared").exists()
    (tmp_path / "a.txt").write_text("Other text, other size.\n", encoding="utf-8")
    assert not _open_staging(other, files, root)[1]


def test_a_staging_folder_overlapping_the_output_or_an_input_is_refused(tmp_path) -> None:
    from lmtailor.corpus.engine import check_staging

    docs, out = tmp_path / "docs", tmp_path / "out"
    check_staging(tmp_path / "staging", out, [docs])  # apart from both: fine
    for bad in (out, out / "s", docs / "s", tmp_path):
        with pytest.raises(ConfigError, match="overlaps"):
            check_staging(bad, out, [docs])


def _plan(tmp_path) -> Plan:
    settings = Settings(ReadOptions(), "auto", True, "paragraph", 2000, 1, True, None, 0)
    return Plan(_files(tmp_path), 4, 6, settings, 128, 9, 13)


def test_slurm_runs_each_step_as_a_job_array_after_the_one_before(tmp_path) -> None:
    pytest.importorskip("datatrove")
    cfg = _config(tmp_path, executor="slurm", workers=4, executor_options='{partition: cpu, time: "1:00:00"}')
    names, executors = zip(*_executors(cfg, _plan(tmp_path), Staging(tmp_path / "staging")), strict=True)
    assert names == ("prepare", "buckets", "near", "exact")
    assert [e.world_size for e in executors] == [4, 9, 1, 6]  # prepare, one per LSH band, near, exact partitions
    assert executors[0].depends is None
    assert all(e.depends is prev for prev, e in itertools.pairwise(executors))
    assert {e.partition for e in executors} == {"cpu"}
    with pytest.raises(ConfigError, match="partition and time"):  # refused before anything is written
        _config(tmp_path, executor="slurm")
    with pytest.raises(ConfigError, match="add --engine datatrove"):
        CorpusConfig.build(inputs=[tmp_path / "a.txt"], out_dir=tmp_path / "o", executor="slurm",
                           executor_options={"partition": "cpu", "time": "1:00:00"})  # fmt: skip


def test_executor_options_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="mapping"):
        CorpusConfig.build(inputs=["x"], out_dir="o", executor_options="[1, 2]")


def test_without_datatrove_the_engine_says_what_to_install(tmp_path, monkeypatch) -> None:
    import builtins

    from lmtailor.corpus.engine import _datatrove

    real = builtins.__import__

    def no_datatrove(name, *args, **kwargs):
        if name == "datatrove" or name.startswith("datatrove."):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_datatrove)
    with pytest.raises(ConfigError, match=r"pip install \"datatrove==0\.10\.1\""):
        _datatrove()
