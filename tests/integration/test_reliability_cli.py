"""Nothing a user does by mistake loses their data or ends in a traceback: each case of issue 26 through the CLI.

Each case asserts exit status 2, one `error:` line naming the input, no traceback, and that nothing was written or
lost. The cases are the table of docs/reliability.md.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmtailor.cli import app

DOC = "The licensee shall indemnify the licensor.\n\nThis agreement is governed by the laws of New York.\n"


def _fails(*args: str, match: str) -> str:
    """Run the CLI; it must exit 2 with one error line containing `match` and no traceback."""
    result = CliRunner().invoke(app, [*args])
    out = result.output
    assert result.exit_code == 2, out
    assert "Traceback" not in out and out.count("error:") == 1, out
    assert match in out, out
    return out


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    folder = tmp_path / "p" / "raw"
    folder.mkdir(parents=True)
    for i in range(3):
        (folder / f"d{i}.txt").write_text(f"Contract {i}.\n\n{DOC}", encoding="utf-8")
    (tmp_path / "p" / "notes.txt").write_text("my own notes", encoding="utf-8")
    return folder


# 1. Recipe stage names cannot leave the work folder.


@pytest.mark.parametrize("name", ["../../victim", "/abs/victim", ".", "a/b"])
def test_recipe_stage_name_cannot_escape_the_work_folder(tmp_path: Path, raw: Path, name: str):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"vars:\n  work: {tmp_path / 'w' / 'x'}\nstages:\n  '{name}':\n    stage: corpus\n"
                      f"    inputs: ['{raw}']\n")  # fmt: skip
    for extra in (["--dry-run"], []):
        out = _fails("build", str(recipe), *extra, match="plain name")
        assert "r.yaml:4" in out
    assert (victim / "precious.txt").read_text() == "keep me"
    assert not (tmp_path / "w").exists()


def test_recipe_missing_paths_are_reported_with_the_other_errors(tmp_path: Path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        textwrap.dedent("""\
        stages:
          corpus:
            stage: corpus
            inputs: ["raw/contracts"]
          tok:
            stage: tokenizer.train
            inputs: ["@corpus"]
            vocab_size: 10
    """)
    )
    out = _fails("build", str(recipe), "--dry-run", match="raw/contracts does not exist (relative to the current")
    assert "vocab_size = 10" in out


# 2. --overwrite replaces only an lmtailor output of the same stage; no output may hold an input.


def test_overwrite_refuses_a_folder_holding_the_input(tmp_path: Path, raw: Path):
    before = _tree(tmp_path / "p")
    _fails("corpus", str(raw), "--out", str(tmp_path / "p"), "--overwrite", "--no-progress", match="contains the input")
    assert _tree(tmp_path / "p") == before


def test_output_equal_to_or_inside_an_input_is_refused(tmp_path: Path, raw: Path):
    _fails("corpus", str(raw), "--out", str(raw), "--overwrite", "--no-progress", match="is the input")
    _fails("corpus", str(raw), "--out", str(raw / "c"), "--no-progress", match="lies inside the input")
    assert sorted(p.name for p in raw.iterdir()) == ["d0.txt", "d1.txt", "d2.txt"]


def test_overwrite_refuses_a_user_folder_and_another_stage_output(tmp_path: Path, raw: Path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.docx").write_text("years of work")
    _fails("corpus", str(raw), "--out", str(mine), "--overwrite", "--no-progress", match="not an lmtailor output")
    assert (mine / "thesis.docx").read_text() == "years of work"
    corpus = tmp_path / "corpus"
    CliRunner().invoke(app, ["corpus", str(raw), "--out", str(corpus), "--no-progress"])
    _fails("tokenizer", "train", str(corpus), "--out", str(corpus), "--overwrite", "--no-progress",
           match="is the input")  # fmt: skip
    tok_in = tmp_path / "other"
    CliRunner().invoke(app, ["corpus", str(raw), "--out", str(tok_in), "--no-progress"])
    _fails("tokenizer", "train", str(corpus), "--out", str(tok_in), "--overwrite", "--vocab-size", "300",
           "--no-progress", match="holds the output of a `corpus` stage")  # fmt: skip
    # the same stage, and an empty folder, are replaced
    result = CliRunner().invoke(app, ["corpus", str(raw), "--out", str(tok_in), "--overwrite", "--no-progress"])
    assert result.exit_code == 0, result.output
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["corpus", str(raw), "--out", str(tmp_path / "empty"), "--overwrite"])
    assert result.exit_code == 0, result.output


def test_out_dot_and_out_under_a_file(tmp_path: Path, raw: Path, monkeypatch):
    monkeypatch.chdir(tmp_path / "p")
    before = _tree(tmp_path / "p")
    _fails("corpus", "raw", "--out", ".", "--overwrite", "--no-progress", match="contains the input raw")
    _fails("corpus", "raw", "--out", ".", "--no-progress", match="contains the input raw")
    _fails("corpus", "raw", "--out", "notes.txt/c", "--no-progress", match="lies under")
    _fails("corpus", "raw", "--out", "notes.txt", "--no-progress", match="is a file")
    assert _tree(tmp_path / "p") == before


# 3. Two runs on one output, or two builds of one work folder: the second is refused and names the first.

_HOLDER = """
import sys, time
from pathlib import Path
from lmtailor.locks import hold, lock_path
with hold(Path(sys.argv[1]), "x"):
    print("held", flush=True)
    time.sleep(60)
"""


def _hold_in_another_process(lock: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(lock)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_on_the_same_output_is_refused(tmp_path: Path, raw: Path):
    from lmtailor.locks import lock_path

    out = tmp_path / "corpus"
    proc = _hold_in_another_process(lock_path(out))
    try:
        msg = _fails("corpus", str(raw), "--out", str(out), "--no-progress", match=f"process {proc.pid}")
        assert "being written by another lmtailor run" in msg
        assert not out.exists()
    finally:
        proc.kill()
        proc.wait()
    # the kernel dropped the killed holder's lock: the next run goes ahead
    result = CliRunner().invoke(app, ["corpus", str(raw), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "p"]  # no lock file or temp folder left


def test_a_second_build_of_the_same_work_folder_is_refused(tmp_path: Path, raw: Path):
    work = tmp_path / "w"
    work.mkdir()
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"vars:\n  work: {work}\nstages:\n  corpus:\n    stage: corpus\n    inputs: ['{raw}']\n")
    proc = _hold_in_another_process(work / ".build.lock")
    try:
        _fails("build", str(recipe), "--no-progress", match=f"build work folder {work} is being written")
        assert list(work.iterdir()) == [work / ".build.lock"]
    finally:
        proc.kill()
        proc.wait()


def test_leftovers_of_a_killed_run_are_removed(tmp_path: Path, raw: Path):
    out = tmp_path / "corpus"
    dead = tmp_path / f".corpus.tmp-{2**22 + 7}"  # above the kernel's default pid_max: no such process
    (dead / "sub").mkdir(parents=True)
    (dead / "sub" / "half.jsonl").write_text("x" * 1000)
    result = CliRunner().invoke(app, ["corpus", str(raw), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert not dead.exists()


def test_a_build_rebuilds_an_output_whose_files_were_deleted(tmp_path: Path, raw: Path):
    work = tmp_path / "w"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"vars:\n  work: {work}\nstages:\n  corpus:\n    stage: corpus\n    inputs: ['{raw}']\n")
    args = ["build", str(recipe), "--no-progress"]
    assert "1 stage(s) ran" in CliRunner().invoke(app, args).output
    assert "0 stage(s) ran" in CliRunner().invoke(app, args).output
    shard = next((work / "corpus").rglob("*.jsonl"))
    shard.unlink()
    result = CliRunner().invoke(app, args)
    assert "was changed since it was built" in result.output and "1 stage(s) ran" in result.output
    assert shard.is_file()


# 4. Damaged or wrong model folders, bad flags, and disk failures: one line each.


def _truncate(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])


def _garbage(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(b"\x00garbage" * 10)


@pytest.mark.parametrize("damage", [_truncate, _garbage])
@pytest.mark.parametrize("command", ["export", "evaluate", "prune", "trim", "finetune"])
def test_damaged_weights_are_one_clear_line(tmp_path: Path, cls_model: Path, command: str, damage):
    damage(cls_model)
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"text": f"clause {i}", "label": "a" if i % 2 else "b"}) + "\n"
                            for i in range(6)))  # fmt: skip
    out = str(tmp_path / "out")
    args = {
        "export": ["export", str(cls_model)],
        "evaluate": ["evaluate", str(cls_model), str(data)],
        "prune": ["prune", str(cls_model), "--layers", "1"],
        "trim": ["vocab", "trim", str(cls_model), str(data)],
        "finetune": ["finetune", "cls", str(data), "--model", str(cls_model)],
    }[command]
    _fails(*args, "--out", out, "--no-progress", match=f"{cls_model / 'model.safetensors'} is damaged")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([cls_model.name, "train.jsonl"])


@pytest.mark.parametrize("command", ["export", "evaluate", "predict"])
def test_model_folder_without_config_json(tmp_path: Path, cls_model: Path, command: str):
    (cls_model / "config.json").unlink()
    data = tmp_path / "t.jsonl"
    data.write_text(json.dumps({"text": "x", "label": "a"}) + "\n")
    args = {
        "export": ["export", str(cls_model), "--out", str(tmp_path / "o"), "--no-progress"],
        "evaluate": ["evaluate", str(cls_model), str(data), "--out", str(tmp_path / "o"), "--no-progress"],
        "predict": ["predict", str(cls_model), "--text", "a clause"],
    }[command]
    _fails(*args, match="holds a tokenizer but no model (no config.json)")
    assert not (tmp_path / "o").exists()


def test_predict_with_a_tokenizer_folder(tmp_path: Path, cls_model: Path):
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(str(cls_model)).save_pretrained(str(tmp_path / "tok"))
    _fails("predict", str(tmp_path / "tok"), "--text", "a clause", match="holds a tokenizer but no model")


def test_bad_flags_name_the_flag(tmp_path: Path, raw: Path, cls_model: Path):
    _fails("corpus", str(raw), "--out", str(tmp_path / "c"), "--split-ratios", "a,b", match="split_ratios.0 = 'a'")
    _fails("tokenizer", "train", str(raw), "--out", str(tmp_path / "t"), "--vocab-size", "10000000",
           match="vocab_size = 10000000")  # fmt: skip
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"text": "x", "label": "a"}) + "\n" + json.dumps({"text": "y", "label": "b"}) + "\n")
    _fails("finetune", "cls", str(data), "--model", str(cls_model), "--max-length", "32", "--out",
           str(tmp_path / "f"), match="--stride 64 (tokens shared by consecutive windows) must be at most half of "
           "--max-length 32; pass --stride 16 or less")  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["p", cls_model.name, "train.jsonl"])


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_disk_full_and_read_only_are_reported_at_the_write(tmp_path: Path, raw: Path, monkeypatch, code: int):
    from lmtailor.corpus import writer

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(tmp_path / "c" / "train" / "part-00000.jsonl"))

    monkeypatch.setattr(writer, "open", fail, raising=False)
    out = _fails("corpus", str(raw), "--out", str(tmp_path / "c"), "--no-progress", match="could not write")
    assert os.strerror(code) in out and ("free some disk space" in out) == (code == errno.ENOSPC)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]
