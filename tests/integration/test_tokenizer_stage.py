"""The tokenizer stage end to end: raw text in, an HF tokenizer folder and an evaluation report out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer
from typer.testing import CliRunner

from lmtailor.cli import app
from lmtailor.errors import ConfigError, InputNotFoundError, OutputExistsError
from lmtailor.tokenizer import TokenizerEvalConfig, TokenizerTrainConfig, run_eval, run_train

ZH = "因不可抗力不能履行合同的，根据不可抗力的影响，部分或者全部免除责任。急性心肌梗死患者应当立即治疗。"
EN = "The force majeure clause and the indemnification obligations survive termination of this Agreement."


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    for i in range(30):
        (root / f"zh{i:02d}.txt").write_text(f"第{i}条 {ZH}\n\n合同第{i}款另有约定的除外。\n", encoding="utf-8")
        (root / f"en{i:02d}.txt").write_text(f"Section {i}. {EN}\n\nClause {i} applies.\n", encoding="utf-8")
    return root


@pytest.fixture
def glossary(tmp_path: Path) -> Path:
    path = tmp_path / "glossary.txt"
    path.write_text("不可抗力\n心肌梗死\n急性心肌梗死\nforce majeure\nindemnification\n", encoding="utf-8")
    return path


def _train(corpus: Path, glossary: Path, out: Path, **kw) -> Path:
    cfg = TokenizerTrainConfig.build(inputs=[corpus], out_dir=out, terms=[glossary], vocab_size=600,
                                     show_progress=False, **kw)  # fmt: skip
    return run_train(cfg)


def test_train_writes_a_folder_autotokenizer_loads(corpus, glossary, tmp_path):
    out = _train(corpus, glossary, tmp_path / "tok")
    assert {"tokenizer.json", "tokenizer_config.json", "lmtailor.json", "protected_terms.txt"} <= {
        p.name for p in out.iterdir()
    }
    manifest = json.loads((out / "lmtailor.json").read_text())
    assert manifest["stage"] == "tokenizer-train" and manifest["metrics"]["protected_terms"] == 5
    tok = AutoTokenizer.from_pretrained(str(out))
    for special in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]:
        assert tok.convert_tokens_to_ids(special) is not None
    ids = tok("急性心肌梗死，force majeure")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert tok.convert_ids_to_tokens(ids)[1:-1] == ["急性心肌梗死", ",", "force▁majeure"]
    assert tok.decode(ids, skip_special_tokens=True) == "急性心肌梗死,force majeure"
    assert not list(tmp_path.glob(".tok.tmp-*"))


def test_eval_against_default_reference(corpus, glossary, tmp_path):
    tok = _train(corpus, glossary, tmp_path / "tok")
    cfg = TokenizerEvalConfig.build(tokenizer=tok, inputs=[corpus], split="train", terms=[glossary],
                                    out_dir=tmp_path / "eval", show_progress=False)  # fmt: skip
    out = run_eval(cfg)
    report = json.loads((out / "eval.json").read_text())
    ours, ref = report["results"]["tokenizer"], report["results"]["reference"]
    assert ours["term_integrity"] == 1.0 and ours["unk_rate"] == 0.0
    assert ref["term_integrity"] < 0.5  # MiniLM splits 不可抗力 and knows few Chinese characters
    assert ref["unk_rate"] > 0
    assert ours["texts"] == ref["texts"] > 0 and ours["words"] == ref["words"]
    md = (out / "eval.md").read_text()
    assert "| term integrity | 100.00% |" in md and "## Examples" in md


def test_missing_input_and_glossary_leave_nothing(tmp_path, glossary):
    with pytest.raises(InputNotFoundError, match="nowhere"):
        _train(tmp_path / "nowhere", glossary, tmp_path / "tok")
    assert not (tmp_path / "tok").exists()


def test_vocab_too_small_leaves_nothing(corpus, glossary, tmp_path):
    cfg = TokenizerTrainConfig.build(inputs=[corpus], out_dir=tmp_path / "tok", terms=[glossary], vocab_size=300,
                                     show_progress=False)  # fmt: skip
    with pytest.raises(ConfigError, match="too small"):
        run_train(cfg)
    assert not (tmp_path / "tok").exists() and not list(tmp_path.glob(".tok*"))


def test_existing_output_is_kept_unless_overwrite(corpus, glossary, tmp_path):
    out = tmp_path / "tok"
    out.mkdir()
    (out / "precious.txt").write_text("user data")
    with pytest.raises(OutputExistsError):
        _train(corpus, glossary, out)
    assert (out / "precious.txt").read_text() == "user data"
    with pytest.raises(OutputExistsError, match="not an lmtailor output"):  # --overwrite never deletes user files
        _train(corpus, glossary, out, overwrite=True)
    assert (out / "precious.txt").read_text() == "user data"
    (out / "precious.txt").unlink()
    _train(corpus, glossary, out, overwrite=True)  # an empty folder is replaced
    (out / "marker.txt").write_text("from the first run")
    _train(corpus, glossary, out, overwrite=True)  # and so is an earlier output of this stage
    assert (out / "tokenizer.json").is_file() and not (out / "marker.txt").exists()


def test_cli_reports_user_errors_with_exit_code_2(tmp_path):
    result = CliRunner().invoke(app, ["tokenizer", "train", str(tmp_path / "missing"), "--out", str(tmp_path / "t"),
                                      "--no-progress"])  # fmt: skip
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_cli_invalid_option_value_names_the_field(corpus, tmp_path):
    result = CliRunner().invoke(app, ["tokenizer", "train", str(corpus), "--algorithm", "bytepair", "--out",
                                      str(tmp_path / "t"), "--no-progress"])  # fmt: skip
    assert result.exit_code == 2
    assert "algorithm" in result.output and "bytepair" in result.output


@pytest.mark.data
def test_medical_terms_stay_whole(shared_data, tmp_path):
    rows = json.loads((shared_data / "zh-med" / "cmeee-v2" / "dev.json").read_text(encoding="utf-8"))
    text = tmp_path / "cmeee-dev.txt"
    text.write_text("\n\n".join(r["text"] for r in rows), encoding="utf-8")
    cfg = TokenizerTrainConfig.build(
        inputs=[text],
        out_dir=tmp_path / "tok",
        vocab_size=12000,
        terms=[shared_data / "zh-med" / "terms" / "disease.txt"],
        show_progress=False,
    )
    tok = AutoTokenizer.from_pretrained(str(run_train(cfg)))
    assert tok.tokenize("患者急性心肌梗死后出现心肌梗死") == ["▁", "患者", "急性心肌梗死", "后", "出现", "心肌梗死"]
