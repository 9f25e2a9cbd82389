import json
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field

from lmtailor.config import StageConfig
from lmtailor.errors import OutputExistsError
from lmtailor.outputs import content_hash, read_manifest, stage_output


class Demo(StageConfig):
    stage: ClassVar[str] = "demo"


def test_success_renames_into_place_with_manifest(tmp_path: Path):
    src = tmp_path / "in.txt"
    src.write_text("hello")
    cfg = Demo(out_dir=tmp_path / "out")
    with stage_output(cfg) as out:
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
    (out_dir / "lmtailor.json").write_text('{"stage": "demo"}')  # an earlier result of this stage
    cfg = Demo(out_dir=out_dir, overwrite=True)
    with pytest.raises(RuntimeError), stage_output(cfg) as out:
        (out.dir / "half.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (out_dir / "old.txt").read_text() == "old"


def test_refuses_to_overwrite_by_default(tmp_path: Path):
    (tmp_path / "out").mkdir()
    with (
        pytest.raises(OutputExistsError, match="--overwrite"),
        stage_output(Demo(out_dir=tmp_path / "out")),
    ):
        pass


def test_content_hash_changes_with_content(tmp_path: Path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.txt").write_text("1")
    h1 = content_hash([d])
    (d / "a.txt").write_text("2")
    assert content_hash([d]) != h1


def _cfg(out: Path, stage: str = "demo", **kw) -> StageConfig:
    class Cfg(StageConfig):
        inputs: list[Path] = Field(default_factory=list)

    Cfg.stage = stage
    return Cfg(out_dir=out, **kw)


def test_output_may_not_be_contain_or_lie_in_an_input(tmp_path: Path):
    from lmtailor.errors import OutputPathError
    from lmtailor.outputs import check_out_dir

    src = tmp_path / "data" / "raw"
    src.mkdir(parents=True)
    for out, words in [(src, "is the input"), (tmp_path / "data", "contains the input"),
                       (src / "x", "lies inside the input")]:  # fmt: skip
        with pytest.raises(OutputPathError, match=words):
            check_out_dir(_cfg(out, inputs=[src], overwrite=True, stage="corpus"))
    assert check_out_dir(_cfg(tmp_path / "c", inputs=[src], stage="corpus")) == tmp_path / "c"


def test_overwrite_replaces_only_the_same_kind_of_output_or_an_empty_folder(tmp_path: Path):
    from lmtailor.outputs import check_out_dir

    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="not an lmtailor output"):
        check_out_dir(_cfg(user, overwrite=True, stage="corpus"))
    with stage_output(_cfg(tmp_path / "trim", stage="vocab.trim")) as out:
        (out.dir / "x").write_text("x")
    assert check_out_dir(_cfg(tmp_path / "trim", overwrite=True, stage="vocab.extend"))  # same kind: vocab
    with pytest.raises(OutputExistsError, match="holds the output of a `vocab-trim` stage"):
        check_out_dir(_cfg(tmp_path / "trim", overwrite=True, stage="finetune"))
    (tmp_path / "empty").mkdir()
    assert check_out_dir(_cfg(tmp_path / "empty", overwrite=True, stage="corpus"))


def test_write_failures_become_one_user_error(tmp_path: Path):
    import errno

    from lmtailor.errors import OutputWriteError

    full = r"could not write .*full.*: No space left on device; free some disk"
    with pytest.raises(OutputWriteError, match=full), stage_output(_cfg(tmp_path / "out")):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "full"))
    assert list(tmp_path.iterdir()) == []  # no temp folder, no lock file


def test_json_temp_files_are_unique(tmp_path: Path, monkeypatch):
    from lmtailor.outputs import write_json

    (tmp_path / "build.json.tmp").write_text("another writer's")
    write_json(tmp_path / "build.json", {"a": 1})
    assert json.loads((tmp_path / "build.json").read_text()) == {"a": 1}
    assert (tmp_path / "build.json.tmp").read_text() == "another writer's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build.json", "build.json.tmp"]
