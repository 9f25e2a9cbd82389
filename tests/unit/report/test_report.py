"""The report on hand-made output folders with known numbers: key metrics, ledger, and a self-contained page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from safetensors.torch import save_file

from lmtailor.errors import InputFormatError, InputNotFoundError
from lmtailor.report import ReportConfig, run_report


def _manifest(folder: Path, stage: str, **metrics) -> Path:
    folder.mkdir(parents=True)
    (folder / "lmtailor.json").write_text(json.dumps({"stage": stage, "metrics": metrics, "inputs": {}}))
    return folder


@pytest.fixture
def folders(tmp_path: Path) -> list[Path]:
    tok = _manifest(tmp_path / "tok-eval", "tokenizer-eval")
    result = {"vocab_size": 8000, "whole_word_coverage": 0.96, "tokens_per_word": 1.1, "most_broken_terms": {}}
    reference = {**result, "vocab_size": 30522, "whole_word_coverage": 0.93, "tokens_per_word": 1.3,
                 "most_broken_terms": {"force majeure": 3}}  # fmt: skip
    (tok / "eval.json").write_text(json.dumps({"tokenizer_path": "/nonexistent", "reference_path": "/nonexistent",
                                               "results": {"tokenizer": result, "reference": reference},
                                               "examples": [{"text": "force majeure", "tokenizer": ["force majeure"],
                                                             "reference": ["force", "maj", "##eure"]}]}))  # fmt: skip
    teacher = _manifest(tmp_path / "teacher", "finetune-cls")
    save_file({"w": torch.zeros(1000, 250)}, str(teacher / "model.safetensors"))  # 250,000 parameters, 1.0 MB
    (teacher / "eval_test.json").write_text(json.dumps({"accuracy": 0.90, "per_class": {
        "a": {"f1": 0.95}, "b": {"f1": 0.85}}}))  # fmt: skip
    (teacher / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 2.0 / s}) + "\n" for s in (1, 2, 3)))
    student = _manifest(tmp_path / "student", "quantize", eval={"metric": "accuracy", "quantized": 0.88})
    init = numpy_helper.from_array(np.zeros((100, 200), dtype=np.int8), "w")  # 20,000 parameters, 20 kB
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], [init])  # fmt: skip
    onnx.save(helper.make_model(graph), str(student / "model.onnx"))
    bench = _manifest(tmp_path / "bench", "bench")
    (bench / "bench.json").write_text(json.dumps({"models": [
        {"entry": str(teacher), "path": str(teacher), "runtime": "fp32", "latency": {"1": {"p50_ms": 40.0}},
         "throughput": {"sequences_per_s": 10.0}},
        {"entry": str(student), "path": str(student / "model.onnx"), "runtime": "onnx-int8",
         "latency": {"1": {"p50_ms": 8.0}}, "throughput": {"sequences_per_s": 45.0}},
    ]}))  # fmt: skip
    return [tok, teacher, student, bench]


def test_key_metrics_and_ledger_known_answers(folders: list[Path], tmp_path: Path) -> None:
    out = run_report(ReportConfig(inputs=folders, out_dir=tmp_path / "report", show_progress=False))
    data = json.loads((out / "report.json").read_text())
    status = {m["metric"]: m["status"] for m in data["key_metrics"]}
    assert status == {
        "vocabulary coverage (whole words that are one token)": "pass",  # 0.96 ≥ 0.95
        "compression (student size / teacher size)": "pass",  # 0.02 MB / 1.0 MB
        "task accuracy drop (relative)": "pass",  # (0.90 - 0.88) / 0.90 = 2.2%
        "stricter: drop in points": "fail",  # 2 points > 1.0
        "stricter: throughput at batch 32 vs teacher": "pass",  # 45 / 10 = 4.5
        "teacher beats the baseline (points)": "n/a",  # no baseline folder
        "final model beats the baseline (points)": "n/a",
    }
    assert data["verdicts"][0].startswith("No baseline was built, so nothing shows that the teacher earns")
    values = {m["metric"]: m["value"] for m in data["key_metrics"]}
    assert values["task accuracy drop (relative)"] == pytest.approx(0.0222, abs=1e-4)
    assert values["stricter: throughput at batch 32 vs teacher"] == 4.5
    ledger = {r["model"]: r for r in data["ledger"]}
    assert ledger["teacher"]["params"] == 250_000 and ledger["teacher"]["size_mb"] == 1.0
    assert ledger["student"]["params"] == 20_000 and ledger["student"]["drop_points"] == 2.0
    assert ledger["student"]["p50_ms"] == 8.0 and ledger["teacher"]["throughput"] == 10.0


def _baseline(folder: Path, accuracy: float, metric: str = "accuracy") -> Path:
    _manifest(folder, "baseline-cls", model="tfidf-linear-svm", size_bytes=1_500_000, parameters=3000,
              test={"examples_per_second": 900.0})  # fmt: skip
    (folder / "eval_test.json").write_text(json.dumps({"accuracy": accuracy, "metric": metric,
                                                       "metric_value": accuracy, "per_class": {}}))  # fmt: skip
    return folder


def test_teacher_and_student_are_judged_against_the_baseline(folders: list[Path], tmp_path: Path) -> None:
    base = _baseline(tmp_path / "tfidf", 0.885)  # teacher 0.90 (+1.5 points), final model 0.88 (-0.5)
    out = run_report(ReportConfig(inputs=[*folders, base], out_dir=tmp_path / "report", show_progress=False))
    data = json.loads((out / "report.json").read_text())
    km = {m["metric"]: m for m in data["key_metrics"]}
    teacher, student = km["teacher beats the baseline (points)"], km["final model beats the baseline (points)"]
    assert (teacher["value"], teacher["status"]) == (1.5, "pass")
    assert (student["value"], student["status"]) == (-0.5, "fail")
    assert student["detail"] == "0.8800 vs 0.8850 (accuracy)"
    [verdict] = data["verdicts"]
    assert verdict.startswith(
        "The final model (student, accuracy 0.8800) does not beat the classical baseline (tfidf, 0.8850, 1.5 MB) "
        "by 1 point(s): on this task the baseline is as good"
    )
    assert data["student"] == str(folders[2])  # the baseline is never taken for the final model
    row = next(r for r in data["ledger"] if r["model"] == "tfidf")
    assert (row["size_mb"], row["throughput"], row["test"], row["drop_points"]) == (1.5, 900.0, 0.885, 1.5)
    assert verdict in (out / "report.html").read_text() and verdict in (out / "report.md").read_text()
    # A stricter bar turns the teacher's 1.5 points into a failure, said in plain words too.
    stricter = run_report(ReportConfig(inputs=[*folders, base], out_dir=tmp_path / "r2", show_progress=False,
                                       min_gain_over_baseline=2.0))  # fmt: skip
    assert len(json.loads((stricter / "report.json").read_text())["verdicts"]) == 2
    # Scored by different metrics: not judged, and the detail says how to fix it.
    other = _baseline(tmp_path / "tfidf-macro", 0.95, metric="macro_f1")
    out = run_report(ReportConfig(inputs=[*folders, other], out_dir=tmp_path / "r3", show_progress=False))
    km = {m["metric"]: m for m in json.loads((out / "report.json").read_text())["key_metrics"]}
    assert km["teacher beats the baseline (points)"]["status"] == "n/a"
    assert "baseline by macro_f1: give both the same `metric`" in km["teacher beats the baseline (points)"]["detail"]


def test_the_build_prints_failed_key_metrics_and_verdicts(folders: list[Path], tmp_path: Path, capsys) -> None:
    from lmtailor.cli import _print_summary
    from lmtailor.recipe.run import StageResult

    base = _baseline(tmp_path / "tfidf", 0.95)
    out = run_report(ReportConfig(inputs=[*folders, base], out_dir=tmp_path / "report", show_progress=False))
    _print_summary([StageResult("teacher", "cached", 0.0, folders[1]), StageResult("report", "ran", 1.0, out)])
    printed = capsys.readouterr().err  # the console of messages is stderr
    row = next(line for line in printed.splitlines() if "teacher beats the" in line)
    assert "-5.0" in row and "fail" in row  # the key metrics table: value and status on the metric's row
    assert "tfidf" in printed and "baseline-cls" in printed  # the models table names the baseline
    flat = " ".join(printed.split())
    assert "note: The teacher (teacher, accuracy 0.9000) does not beat the classical baseline" in flat
    assert f"report: {out / 'report.html'}" in flat


def test_a_search_on_dev_is_shown_with_every_trial(folders: list[Path], tmp_path: Path) -> None:
    trials = [
        {
            "trial": 0,
            "params": {"lr": 0.001, "class_weights": True},
            "state": "complete",
            "dev": 0.81,
            "minutes": 1.5,
            "chosen": True,
        },
        {"trial": 1, "params": {"lr": 0.0003, "class_weights": False}, "state": "pruned", "minutes": 0.4},
    ]
    (folders[1] / "search.json").write_text(json.dumps({"metric": "macro_f1", "trials": trials, "minutes": 1.9,
                                                        "chosen": trials[0]["params"]}))  # fmt: skip
    out = run_report(ReportConfig(inputs=folders, out_dir=tmp_path / "report", show_progress=False))
    md = (out / "report.md").read_text()
    assert "teacher: 2 trials in 1.9 min, chosen on dev macro_f1: lr=0.001, class_weights=True" in md
    assert "| 0 (chosen) | lr=0.001, class_weights=True | complete | 0.81 | 1.5 |" in md
    assert "| 1 | lr=0.0003, class_weights=False | pruned | – | 0.4 |" in md
    assert "<h2>Search on dev</h2>" in (out / "report.html").read_text()


def test_the_report_says_when_a_domain_tokenizer_does_not_pay(folders: list[Path], tmp_path: Path) -> None:
    ev = json.loads((folders[0] / "eval.json").read_text())  # the fixture's tokenizer: 0.96 / 1.1 vs 0.93 / 1.3
    out = run_report(ReportConfig(inputs=folders, out_dir=tmp_path / "r1", show_progress=False))
    assert not any("domain tokenizer" in v for v in json.loads((out / "report.json").read_text())["verdicts"])
    # The unseen task: 0.928 vs 0.950 whole-word coverage, 1.139 vs 1.076 tokens per word.
    ev["results"]["tokenizer"].update(whole_word_coverage=0.928, tokens_per_word=1.139)
    ev["results"]["reference"].update(whole_word_coverage=0.950, tokens_per_word=1.076)
    (folders[0] / "eval.json").write_text(json.dumps(ev))
    out = run_report(ReportConfig(inputs=folders, out_dir=tmp_path / "r2", show_progress=False))
    [verdict] = [v for v in json.loads((out / "report.json").read_text())["verdicts"] if "domain tokenizer" in v]
    assert "(coverage of whole words that are one token: 0.928 vs 0.950; tokens per word: 1.139 vs 1.076)" in verdict
    assert "too small for a domain tokenizer to pay" in verdict and "vocab trim" in verdict


def test_the_demo_prints_the_key_metrics_and_the_verdicts(folders: list[Path], tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    import lmtailor.demo
    from lmtailor.cli import app
    from lmtailor.recipe.run import StageResult

    base = _baseline(tmp_path / "tfidf", 0.95)
    out = run_report(ReportConfig(inputs=[*folders, base], out_dir=tmp_path / "report", show_progress=False))
    monkeypatch.setattr(lmtailor.demo, "run_demo", lambda *a, **k: [StageResult("report", "ran", 1.0, out)])
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d"), "--no-progress"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "teacher beats the" in line)
    assert "-5.0" in row and "fail" in row  # the same summary table a build ends with
    assert "note: The teacher (teacher, accuracy 0.9000) does not beat the classical baseline" in " ".join(
        result.output.split()
    )


def test_html_is_self_contained(folders: list[Path], tmp_path: Path) -> None:
    out = run_report(ReportConfig(inputs=folders, out_dir=tmp_path / "report", show_progress=False, title="T <x>"))
    page = (out / "report.html").read_text()
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs)  # nothing fetched from anywhere
    assert "<script" not in page and "@import" not in page and "url(" not in page
    assert len(refs) == len(list((out / "plots").glob("*.png")))
    assert "T &lt;x&gt;" in page  # escaped
    assert "maj" in page  # the tokenisation example
    md = (out / "report.md").read_text()
    assert "| teacher | finetune-cls | 250,000 |" in md


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError):
        run_report(ReportConfig(inputs=[tmp_path / "missing"], out_dir=tmp_path / "r"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFormatError, match="no lmtailor output folders"):
        run_report(ReportConfig(inputs=[tmp_path / "empty"], out_dir=tmp_path / "r"))
    assert not (tmp_path / "r").exists()


def test_term_table_shows_the_text_of_each_token_for_a_byte_level_tokenizer(tmp_path: Path) -> None:
    from lmtailor.report.stage import _term_table
    from lmtailor.tokenizer import TokenizerTrainConfig, run_train
    from lmtailor.tokenizer.hf import default_reference

    text = tmp_path / "text.txt"
    text.write_text("The foregoing indemnifying party shall give written notice of the foregoing.\n" * 40)
    terms = tmp_path / "terms.txt"
    terms.write_text("indemnifying party\nforegoing\n")
    tok = run_train(TokenizerTrainConfig.build(inputs=[text], out_dir=tmp_path / "tok", algorithm="wordpiece",
                                               vocab_size=400, terms=[terms], show_progress=False))  # fmt: skip
    ev = {"tokenizer_path": str(tok), "reference_path": str(default_reference()),
          "results": {"reference": {"most_broken_terms": {"foregoing": 2, "indemnifying party": 1}}}}  # fmt: skip
    rows = {r["term"]: r for r in _term_table([ev])}
    assert rows["foregoing"]["domain"] == ["foregoing"]  # the byte-level spelling was "âĸģforegoing"
    assert rows["indemnifying party"]["domain"] == ["indemnifying party"]
    assert rows["indemnifying party"]["general"] == ["ind", "em", "ni", "fying", "party"]  # no "##"


def test_coverage_of_chinese_text_is_measured_on_characters(folders: list[Path], tmp_path: Path) -> None:
    ev = json.loads((folders[0] / "eval.json").read_text())
    ev["results"]["tokenizer"].update(words=121, han_chars=7335, whole_word_coverage=0.18, han_char_coverage=0.993)
    (folders[0] / "eval.json").write_text(json.dumps(ev))
    out = run_report(ReportConfig(inputs=folders, out_dir=tmp_path / "report", show_progress=False))
    [cov] = [m for m in json.loads((out / "report.json").read_text())["key_metrics"] if "coverage" in m["metric"]]
    assert cov["metric"] == "vocabulary coverage (Chinese characters with their own token)"
    assert (cov["value"], cov["status"]) == (0.993, "pass")


def test_per_class_table_known_answers(folders: list[Path], tmp_path: Path) -> None:
    out = run_report(ReportConfig(inputs=folders, out_dir=tmp_path / "report", show_progress=False))
    data = json.loads((out / "report.json").read_text())
    # The student (an ONNX folder) has no per-class scores of its own: the column stays empty, not the teacher's.
    assert data["per_class"] == [{"n": 1, "class": "a", "teacher": 0.95, "student": None},
                                 {"n": 2, "class": "b", "teacher": 0.85, "student": None}]  # fmt: skip
    assert '<td>b</td><td class="num">0.85</td>' in (out / "report.html").read_text()
    assert "| 2 | b | 0.85 | – |" in (out / "report.md").read_text()


def test_class_names_no_font_can_draw_become_row_numbers(tmp_path: Path, monkeypatch) -> None:
    import warnings

    from lmtailor.report import plots
    from lmtailor.report.collect import ModelRow

    teacher = ModelRow(name="teacher", path=tmp_path, stage="finetune-cls", per_class={"盗窃": 0.9, "诈骗": 0.8})
    drawn = {}

    def keep(fig, path):
        drawn["ticks"] = [t.get_text() for t in fig.axes[0].get_yticklabels()]
        fig.savefig(path)
        plots.plt.close(fig)
        return path

    monkeypatch.setattr(plots, "_save", keep)
    with warnings.catch_warnings():  # whatever fonts this machine has, no glyph is drawn as a box
        warnings.filterwarnings("error", message="Glyph .* missing")
        plots.per_class_f1(teacher, None, tmp_path / "a.png")
    assert drawn["ticks"] == (["盗窃", "诈骗"] if plots.drawable(["盗窃诈骗"]) else ["1", "2"])
    monkeypatch.setattr(plots, "_fonts", lambda: (["DejaVu Sans"], frozenset(map(ord, "abc"))))
    assert plots.drawable(["a b", "c"]) and not plots.drawable(["a", "盗窃"])
    plots.per_class_f1(teacher, None, tmp_path / "b.png")
    assert drawn["ticks"] == ["1", "2"]


def test_folders_written_before_the_metric_choice_read_as_accuracy_or_entity_f1(tmp_path: Path) -> None:
    from lmtailor.report.collect import Folder, task_metric

    old_ner = _manifest(tmp_path / "ner", "finetune-ner")
    (old_ner / "eval_test.json").write_text(json.dumps({"f1": 0.62, "precision": 0.6, "per_type": {}}))
    old_q = _manifest(tmp_path / "q", "quantize", eval={"metric": "f1", "quantized": 0.55})
    new = _manifest(tmp_path / "new", "finetune-cls")
    (new / "eval_test.json").write_text(json.dumps({"accuracy": 0.9, "macro_f1": 0.7, "metric": "macro_f1",
                                                    "metric_value": 0.7}))  # fmt: skip
    read = {f.name: task_metric(Folder(f.name, f, "", json.loads((f / "lmtailor.json").read_text())))[:2]
            for f in (old_ner, old_q, new)}  # fmt: skip
    assert read == {"ner": ("entity_f1", 0.62), "q": ("entity_f1", 0.55), "new": ("macro_f1", 0.7)}


def test_a_serve_folder_under_a_relative_work_folder_is_linked(folders: list[Path], tmp_path: Path, monkeypatch):
    """`make demo` writes into `demo-out/`, a relative path: the report still links the server's script."""
    monkeypatch.chdir(tmp_path)
    serve = _manifest(Path("work") / "serve", "serve", command="lmtailor serve work/serve",
                      url="http://127.0.0.1:8080", models={"clauses": "cls"})  # fmt: skip
    (serve / "serve.sh").write_text("#!/bin/sh\n")
    out = run_report(ReportConfig(inputs=[*folders, Path("work") / "serve"], out_dir=Path("work") / "report",
                                  show_progress=False))  # fmt: skip
    data = json.loads((out / "report.json").read_text())
    assert data["serving"][0]["models"] == {"clauses": "cls"}
    assert (tmp_path / "work" / "serve" / "serve.sh").as_uri() in (out / "report.html").read_text()
    assert "## Serving" in (out / "report.md").read_text()


def test_an_imported_model_and_its_trim_show_the_parameter_cut(folders: list[Path], tmp_path: Path) -> None:
    """The plan's headline technique gets its own rows: the imported model in the ledger, and the trim's cut in the
    key metrics (issue 22: "the report shows the trim's parameter cut as its own row")."""
    imported = _manifest(tmp_path / "e5", "model-import", parameters=1_000_000)
    save_file({"w": torch.zeros(1000, 1000)}, str(imported / "model.safetensors"))  # 1,000,000 parameters
    trimmed = _manifest(tmp_path / "trimmed", "vocab-trim", parameters_before=1_000_000, parameters_after=250_000,
                        embedding_share_before=0.8, embedding_share_after=0.2, vocab_before=25_000,
                        vocab_after=1_250, heldout_unk_original=0, heldout_unk_trimmed=0)  # fmt: skip
    save_file({"w": torch.zeros(250, 1000)}, str(trimmed / "model.safetensors"))
    out = run_report(ReportConfig(inputs=[imported, trimmed, *folders], out_dir=tmp_path / "report",
                                  show_progress=False))  # fmt: skip
    data = json.loads((out / "report.json").read_text())
    ledger = {r["model"]: r for r in data["ledger"]}
    assert ledger["e5"]["params"] == 1_000_000 and ledger["trimmed"]["params"] == 250_000
    row = next(m for m in data["key_metrics"] if m["metric"] == "vocabulary trim (trimmed): parameters kept")
    assert row["value"] == 0.25  # embedding 800,000 → 50,000: −93.8%
    assert row["detail"] == ("1.00 M → 0.25 M (-75.0%); embedding table -93.8%; 25,000 → 1,250 tokens; "
                             "held-out <unk> 0 → 0")  # fmt: skip
    assert "vocabulary trim (trimmed): parameters kept" in (out / "report.md").read_text()
