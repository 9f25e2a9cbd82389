"""The command line end to end on a tiny corpus: corpus → terms mine → terms merge → tokenizer train/eval."""

import json
from pathlib import Path

from typer.testing import CliRunner

from lmtailor.cli import app

DOC = (
    "This Agreement is governed by the governing law of New York. "
    "Neither party is liable for a force majeure event.\n\n"
    "The indemnification obligations survive. Governing law and force majeure clauses apply to each party.\n"
)


def _invoke(*args: str):
    result = CliRunner().invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 0, result.output
    return result


def test_whole_chain_from_the_command_line(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(40):
        (docs / f"c{i:02d}.txt").write_text(f"Contract {i} between party {i} and party {i + 1}.\n\n" + DOC)
    glossary = tmp_path / "glossary.txt"
    glossary.write_text("force majeure\nindemnification\n")
    _invoke("corpus", str(docs), "--out", str(tmp_path / "corpus"), "--split-ratios", "0.8,0.1,0.1")
    stats = json.loads((tmp_path / "corpus" / "stats.json").read_text())
    assert stats["documents"]["read"] == 40
    _invoke("terms", "mine", str(tmp_path / "corpus"), "--out", str(tmp_path / "mined"), "--min-freq", "3")
    _invoke("terms", "merge", str(glossary), str(tmp_path / "mined" / "terms.tsv"), "--out", str(tmp_path / "terms"))
    merged = (tmp_path / "terms" / "terms.tsv").read_text().splitlines()
    assert merged[1].startswith("force majeure\t") and merged[2].startswith("indemnification\t")
    _invoke("tokenizer", "train", str(tmp_path / "corpus"), "--vocab-size", "400", "--terms",
            str(tmp_path / "terms" / "terms.tsv"), "--out", str(tmp_path / "tok"))  # fmt: skip
    result = _invoke("tokenizer", "eval", str(tmp_path / "tok"), str(tmp_path / "corpus"), "--split", "train",
                     "--terms", str(glossary), "--out", str(tmp_path / "eval"))  # fmt: skip
    assert "term integrity" in result.output
    report = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert report["results"]["tokenizer"]["term_integrity"] == 1.0


def test_yaml_config_and_flag_override(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(DOC)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"corpus:\n  inputs: [{docs}]\n  out_dir: {tmp_path / 'from-yaml'}\n  unit: sentence\n")
    _invoke("corpus", "--config", str(recipe), "--out", str(tmp_path / "from-flag"))
    assert not (tmp_path / "from-yaml").exists()
    manifest = json.loads((tmp_path / "from-flag" / "lmtailor.json").read_text())
    assert manifest["config"]["unit"] == "sentence"


def test_empty_folder_is_a_clear_error(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["corpus", str(tmp_path / "empty"), "--out", str(tmp_path / "c"), "--no-progress"])
    assert result.exit_code == 2 and "error:" in result.output
    assert not (tmp_path / "c").exists()
