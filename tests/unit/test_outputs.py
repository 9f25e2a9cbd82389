import json
from pathlib import Path

import pytest

from lmtailor.config import StageConfig
from lmtailor.errors import OutputExistsError
from lmtailor.outputs import content_hash, read_manifest, stage_output


def test_success_renames_into_place_with_manifest(tmp_path: Path):
    src = tmp_path / "in.txt"
    src.write_text("hello")
    cfg = StageConfig(out_dir=tmp_path / "out")
    with stage_output("demo", cfg) as out:
        (out.dir / "payload.txt").write_text("x")
        out.add_input("text", src)
        out.metrics["n"] = 1
    manifest = read_manifest(tmp_path / "out")
    assert manifest["stage"] == "demo" and manifest["metrics"] == {"n": 1}
    assert manifest["inputs"]["text"]["sha256"] == content_hash([src])
    assert json.loads((tmp_path / "out" / "lmtailor.json").read_text())["config"]["seed"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out"]


def test_failure_leaves_nothing_and_keeps_the_old_result(tmp_path: Path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "old.txt").write_text("old")
    cfg = StageConfig(out_dir=out_dir, overwrite=True)
    with pytest.raises(RuntimeError), stage_output("demo", cfg) as out:
        (out.dir / "half.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (out_dir / "old.txt").read_text() == "old"


def test_refuses_to_overwrite_by_default(tmp_path: Path):
    (tmp_path / "out").mkdir()
    with (
        pytest.raises(OutputExistsError, match="--overwrite"),
        stage_output("demo", StageConfig(out_dir=tmp_path / "out")),
    ):
        pass


def test_content_hash_changes_with_content(tmp_path: Path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.txt").write_text("1")
    h1 = content_hash([d])
    (d / "a.txt").write_text("2")
    assert content_hash([d]) != h1
