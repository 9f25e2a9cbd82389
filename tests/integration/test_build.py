"""`lmtailor build` on tiny recipes: caching by config and input content, --from/--until/--force, failures that
keep finished stages, and recipe errors found before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lmtailor.errors import ConfigError, InputNotFoundError
from lmtailor.recipe import BuildError, load_recipe, run_build

DOCS = [
    "The licensee shall indemnify the licensor against all claims arising from the agreement.",
    "This agreement is governed by the laws of the State of New York and its courts.",
    "Either party may terminate this agreement upon thirty days written notice to the other.",
    "Confidential information shall not be disclosed to any third party without consent.",
]


def _data(root: Path) -> Path:
    docs = root / "data" / "docs"
    docs.mkdir(parents=True)
    for i in range(12):
        (docs / f"d{i}.txt").write_text(f"{DOCS[i % 4]} Clause {i} of {i + 3}.\n\n{DOCS[(i + 1) % 4]}\n")
    return root / "data"


def _recipe(root: Path, stages: dict, name: str = "tiny") -> Path:
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"vars": {"data": str(root / "data"), "work": str(root / "work")},
                                    "stages": stages}, sort_keys=False))  # fmt: skip
    return path


TOKENIZER_STAGES = {
    "corpus": {"stage": "corpus", "inputs": ["${data}/docs"], "split_ratios": [1.0, 0.0, 0.0]},
    "tok": {"stage": "tokenizer.train", "inputs": ["@corpus"], "vocab_size": 300},
    "tok_eval": {"stage": "tokenizer.eval", "tokenizer": "@tok", "inputs": ["@corpus"], "split": "train"},
}


def _status(results) -> dict[str, str]:
    return {r.name: r.status for r in results}


def test_second_run_is_a_no_op_and_a_change_reruns_only_what_follows(tmp_path: Path) -> None:
    _data(tmp_path)
    path = _recipe(tmp_path, TOKENIZER_STAGES)
    first = run_build(load_recipe(path), show_progress=False)
    assert _status(first) == {"corpus": "ran", "tok": "ran", "tok_eval": "ran"}
    assert json.loads((tmp_path / "work" / "build.json").read_text())["tok"]["key"]
    again = run_build(load_recipe(path), show_progress=False)
    assert _status(again) == {"corpus": "cached", "tok": "cached", "tok_eval": "cached"}
    # One field of the tokenizer changes: the tokenizer and its evaluation rerun, the corpus does not. The time
    # estimate is the last run's, and says that the stage has changed since (its settings may change its time).
    changed = _recipe(tmp_path, {**TOKENIZER_STAGES, "tok": {**TOKENIZER_STAGES["tok"], "vocab_size": 320}})
    lines: list[str] = []
    assert _status(run_build(load_recipe(changed), show_progress=False, echo=lines.append)) == {
        "corpus": "cached", "tok": "ran", "tok_eval": "ran"}  # fmt: skip
    tok_line = next(m for m in lines if m.startswith("[2/3] tok "))
    assert "left at the last run's times; this stage has changed since)" in tok_line, lines
    # The input data changes: everything reruns.
    (tmp_path / "data" / "docs" / "d0.txt").write_text("A new clause about force majeure events.\n")
    assert set(_status(run_build(load_recipe(changed), show_progress=False)).values()) == {"ran"}
    # --force reruns a stage and, since its output may differ, the stages that read it; not those before it.
    lines.clear()
    assert _status(run_build(load_recipe(changed), force=["tok"], show_progress=False, echo=lines.append)) == {
        "corpus": "cached", "tok": "ran", "tok_eval": "ran"}  # fmt: skip
    forced = next(m for m in lines if m.startswith("[2/3] tok "))
    assert "left at the last run's times)" in forced, lines  # the same stage as timed: no caveat
    # --from / --until select a range.
    assert _status(run_build(load_recipe(changed), start="tok", until="tok", force=["tok"], show_progress=False)) == {
        "corpus": "skipped", "tok": "ran", "tok_eval": "skipped"}  # fmt: skip
    # A deleted output folder is rebuilt even though its key matches.
    import shutil

    shutil.rmtree(tmp_path / "work" / "tok_eval")
    assert _status(run_build(load_recipe(changed), show_progress=False))["tok_eval"] == "ran"


def test_changing_the_distillation_temperature_reruns_only_distillation_and_after(
    tmp_path: Path, clause_classifier_factory
) -> None:
    train = tmp_path / "train.jsonl"
    labels = ["indemnity", "law", "termination"]
    train.write_text("".join(json.dumps({"text": DOCS[i % 3], "label": labels[i % 3]}) + "\n" for i in range(24)))
    teacher = clause_classifier_factory(tmp_path / "teacher", layers=2)
    common = {"max_length": 32, "stride": 4, "batch_size": 8, "epochs": 1, "patience": 0}
    stages = {
        "student": {"stage": "prune", "model": str(teacher), "layers": 1},
        "distill": {"stage": "distill", "task": "cls", "train": str(train), "teacher": str(teacher),
                    "model": "@student", "temperature": 2.0, **common},
        "onnx": {"stage": "export", "model": "@distill"},
    }  # fmt: skip
    path = _recipe(tmp_path, stages, "kd")
    assert set(_status(run_build(load_recipe(path), show_progress=False)).values()) == {"ran"}
    warmer = _recipe(tmp_path, {**stages, "distill": {**stages["distill"], "temperature": 4.0}}, "kd")
    assert _status(run_build(load_recipe(warmer), show_progress=False)) == {
        "student": "cached", "distill": "ran", "onnx": "ran"}  # fmt: skip


def test_a_failing_stage_keeps_finished_ones_and_says_how_to_resume(tmp_path: Path) -> None:
    _data(tmp_path)
    stages = {**TOKENIZER_STAGES, "tok": {**TOKENIZER_STAGES["tok"], "split": "dev"}}  # the dev split is empty
    path = _recipe(tmp_path, stages)
    with pytest.raises(BuildError, match="--from tok") as err:
        run_build(load_recipe(path), show_progress=False)
    assert "tok" in str(err.value)
    assert (tmp_path / "work" / "corpus" / "lmtailor.json").is_file()
    assert not (tmp_path / "work" / "tok").exists()
    assert (
        _status(run_build(load_recipe(_recipe(tmp_path, TOKENIZER_STAGES)), show_progress=False))["corpus"] == "cached"
    )


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ({"a": {"stage": "polish", "inputs": ["x"]}}, r"unknown stage type 'polish'"),
        ({"a": {"stage": "corpus", "inputs": ["${data}/missing"]}}, r"missing does not exist"),
        ({"a": {"stage": "tokenizer.train", "inputs": ["@b"]}, "b": {"stage": "corpus", "inputs": ["${data}/docs"]}},
         r"stage 'b' is defined later"),
        ({"a": {"stage": "tokenizer.train", "inputs": ["@b"]}, "b": {"stage": "corpus", "inputs": ["@a"]}},
         r"cycle: a → b → a"),
        ({"a": {"stage": "tokenizer.train", "inputs": ["@nowhere"]}}, r"@nowhere is not a stage"),
        ({"a": {"stage": "tokenizer.train", "inputs": ["${data}/docs"], "vocab_size": "many"}},
         r"field vocab_size = 'many'"),
        ({"a": {"stage": "corpus", "inputs": ["${data}/docs"], "colour": "red"}}, r"field colour"),
        ({"a": {"stage": "corpus", "inputs": ["${nope}/docs"]}}, r"unknown variable \$\{nope\}"),
    ],
    ids=["unknown-stage", "missing-path", "defined-later", "cycle", "unknown-ref", "type-error", "unknown-field",
         "unknown-var"],
)  # fmt: skip
def test_recipe_errors_are_found_before_anything_runs(tmp_path: Path, stages: dict, message: str) -> None:
    _data(tmp_path)
    path = _recipe(tmp_path, stages)
    with pytest.raises(ConfigError, match=message) as err:
        load_recipe(path)
    assert f"{path}:" in str(err.value)  # names the recipe file and line
    assert not (tmp_path / "work").exists()


def test_line_numbers_point_at_the_bad_field(tmp_path: Path) -> None:
    _data(tmp_path)
    path = tmp_path / "r.yaml"
    path.write_text(f"vars:\n  data: {tmp_path / 'data'}\n  work: {tmp_path / 'work'}\nstages:\n  corpus:\n"
                    "    stage: corpus\n    inputs: [\"${data}/docs\"]\n    min_chars: -5\n")  # fmt: skip
    with pytest.raises(ConfigError, match=rf"{path}:8: stage 'corpus' \(corpus\), field min_chars"):
        load_recipe(path)
    with pytest.raises(InputNotFoundError):
        load_recipe(tmp_path / "absent.yaml")


def test_cli_build_dry_run_and_run(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lmtailor.cli import app

    _data(tmp_path)
    path = _recipe(tmp_path, TOKENIZER_STAGES)
    runner = CliRunner()
    dry = runner.invoke(app, ["build", str(path), "--dry-run"])
    assert dry.exit_code == 0 and "2. tok: tokenizer.train" in dry.output and "(reads corpus)" in dry.output
    assert not (tmp_path / "work").exists()
    done = runner.invoke(app, ["build", str(path), "--no-progress", "--until", "tok"])
    assert done.exit_code == 0, done.output
    assert "2 stage(s) ran" in done.output
    bad = runner.invoke(app, ["build", str(path), "--from", "nothing"])
    assert bad.exit_code == 2 and "no stage 'nothing'" in bad.output


@pytest.mark.data
@pytest.mark.parametrize(
    "name", ["legal-en", "legal-zh", "legal-zh-e5", "med-en", "med-zh", "med-zh-e5", "med-abstracts"]
)
def test_shipped_recipes_validate_against_the_shared_data(name: str, shared_data: Path, tmp_path: Path) -> None:
    recipe = load_recipe(Path(__file__).parents[2] / "recipes" / f"{name}.yaml",
                         {"data": str(shared_data), "work": str(tmp_path / name)})  # fmt: skip
    assert recipe.stages[-1].kind == "report"
    assert all(Path(s.config.out_dir).parent == tmp_path / name for s in recipe.stages)
