"""The terms stage end to end: raw text in, terms.tsv folders out (mine, then merge with a glossary)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmtailor.cli import app
from lmtailor.errors import EmptyInputError, InputFormatError, InputNotFoundError, OutputExistsError
from lmtailor.terms import MergeConfig, MineConfig, load_terms, run_merge, run_mine

PARTIES = ["supplier", "customer", "licensor", "distributor", "vendor", "buyer"]
EN = [
    "Neither {p} is liable for any failure caused by force majeure.",
    "A force majeure event affecting the {p} includes fire and flood.",
    "The {p} may invoke force majeure when strikes stop work.",
    "The governing law of this contract binds the {p}.",
    "Each {p} accepts the governing law chosen here.",
]
LEFT = ["因", "由于", "遭遇", "发生", "出现", "构成", "属于", "证明", "主张", "援引"]
RIGHT = ["导致", "致使", "造成", "影响", "期间", "事由", "免责", "持续", "终止", "条款"]
# PMI grows with the log of corpus size; these thresholds suit a corpus of a few thousand characters.
SMALL = {"min_freq": 3, "zh_min_pmi": 1.0, "show_progress": False}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    for i, party in enumerate(PARTIES):
        (root / f"en{i}.txt").write_text("\n\n".join(t.format(p=party) for t in EN) + "\n", encoding="utf-8")
    for i in range(6):
        lines = [
            f"当事人{LEFT[(i + k) % 10]}不可抗力{RIGHT[(3 * i + k) % 10]}合同不能履行的，应当通知对方。"
            for k in range(5)
        ]
        (root / f"zh{i}.md").write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    return root


def _rows(folder: Path) -> list[list[str]]:
    return [line.split("\t") for line in (folder / "terms.tsv").read_text(encoding="utf-8").splitlines()]


def test_mine_writes_a_sorted_tsv_for_both_languages(docs: Path, tmp_path: Path) -> None:
    out = run_mine(MineConfig.build(inputs=[docs], out_dir=tmp_path / "mined", **SMALL))
    rows = _rows(out)
    assert rows[0] == ["term", "score", "freq", "lang"]
    body = rows[1:]
    scores = [float(r[1]) for r in body]
    assert scores == sorted(scores, reverse=True)
    found = {r[0]: r for r in body}
    assert found["force majeure"][2:] == ["18", "en"]
    assert found["不可抗力"][2:] == ["30", "zh"]
    manifest = json.loads((out / "lmtailor.json").read_text(encoding="utf-8"))
    metrics = manifest["metrics"]
    assert manifest["stage"] == "terms-mine" and metrics["mode"] == "mine"
    assert metrics["texts_by_language"] == {"en": 30, "zh": 30}
    assert metrics["terms_kept"] == len(body)
    assert metrics["languages"]["zh"]["kept"] + metrics["languages"]["en"]["kept"] == len(body)
    assert {"candidates", "ngrams_counted", "units"} <= set(metrics["languages"]["en"])


def test_mine_one_language_and_cap(docs: Path, tmp_path: Path) -> None:
    out = run_mine(MineConfig.build(inputs=[docs], out_dir=tmp_path / "en", languages="en", max_terms=3, **SMALL))
    body = _rows(out)[1:]
    assert len(body) == 3 and {r[3] for r in body} == {"en"}


def test_mine_refuses_missing_input_existing_output_and_empty_results(docs: Path, tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="nowhere"):
        run_mine(MineConfig.build(inputs=[tmp_path / "nowhere"], out_dir=tmp_path / "x", **SMALL))
    out = run_mine(MineConfig.build(inputs=[docs], out_dir=tmp_path / "m", **SMALL))
    with pytest.raises(OutputExistsError):
        run_mine(MineConfig.build(inputs=[docs], out_dir=out, **SMALL))
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("One short line about nothing.\n", encoding="utf-8")
    with pytest.raises(EmptyInputError, match="min_freq"):
        run_mine(MineConfig.build(inputs=[tiny], out_dir=tmp_path / "empty", **SMALL))
    assert not (tmp_path / "empty").exists()


def test_merge_mined_terms_with_a_glossary_and_a_corpus(docs: Path, tmp_path: Path) -> None:
    mined = run_mine(MineConfig.build(inputs=[docs], out_dir=tmp_path / "mined", **SMALL))
    glossary = tmp_path / "glossary.txt"
    glossary.write_text(
        "\ufeffForce Majeure\t99\n不可抗力\t5\n心肌梗死\t50\nx\t1\nbad\tline\textra\n", encoding="utf-8"
    )
    cfg = MergeConfig.build(inputs=[mined, glossary], corpus=[docs], min_corpus_freq=2, out_dir=tmp_path / "merged",
                            show_progress=False)  # fmt: skip
    out = run_merge(cfg)
    rows = _rows(out)
    assert rows[0] == ["term", "score", "freq", "source"]
    terms = [r[0] for r in rows[1:]]
    assert "心肌梗死" not in terms  # never in the corpus
    assert terms.count("force majeure") == 1 and "Force Majeure" not in terms  # the mined form came first
    assert {r[3] for r in rows[1:]} == {"mined"}
    metrics = json.loads((out / "lmtailor.json").read_text(encoding="utf-8"))["metrics"]
    assert metrics["malformed_lines"] == 1
    assert metrics["filtered"]["too_short"] == 1 and metrics["filtered"]["below_min_corpus_freq"] >= 1
    assert metrics["duplicates"] >= 2 and metrics["kept"] == len(terms)
    assert load_terms(out) == terms


def test_merge_errors(tmp_path: Path) -> None:
    gbk = tmp_path / "gbk.txt"
    gbk.write_bytes("不可抗力\n".encode("gb18030"))
    with pytest.raises(InputFormatError, match=r"gbk\.txt is not UTF-8"):
        run_merge(MergeConfig.build(inputs=[gbk], out_dir=tmp_path / "a", show_progress=False))
    junk = tmp_path / "junk.txt"
    junk.write_text("1\n22\n!!\n", encoding="utf-8")
    with pytest.raises(EmptyInputError, match="no usable terms"):
        run_merge(MergeConfig.build(inputs=[junk], out_dir=tmp_path / "b", show_progress=False))
    assert not (tmp_path / "b").exists()
    with pytest.raises(InputNotFoundError):
        run_merge(MergeConfig.build(inputs=[tmp_path / "missing.txt"], out_dir=tmp_path / "c", show_progress=False))


def test_cli_merge(tmp_path: Path) -> None:
    glossary = tmp_path / "g.txt"
    glossary.write_text("alpha\nbeta\ngamma\n", encoding="utf-8")
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["terms", "merge", str(glossary), "--out", str(out), "--max-terms", "2"])
    assert result.exit_code == 0, result.output
    assert load_terms(out) == ["alpha", "beta"]


@pytest.mark.data
def test_mine_real_chinese_laws(shared_data: Path, tmp_path: Path) -> None:
    laws = shared_data / "zh-legal" / "laws" / "train"
    # Two folders (335k characters) keep this fast; there 不可抗力 occurs 23 times, mostly after 因, so its left
    # entropy is 1.2 rather than the whole split's; fragments like 人民法 or 可抗力 stay near 0 either way.
    cfg = MineConfig.build(inputs=[laws / "民法典", laws / "民法商法"], out_dir=tmp_path / "zh", languages="zh",
                           zh_min_entropy=1.0, show_progress=False)  # fmt: skip
    ranked = [r[0] for r in _rows(run_mine(cfg))[1:]]
    rank = {t: i for i, t in enumerate(ranked)}
    for term in ("不可抗力", "人民法院", "当事人"):
        assert term in rank, term
    for junk in ("的规定", "人民法", "可抗力", "不可抗"):
        assert rank.get(junk, len(ranked)) > rank["不可抗力"], junk


@pytest.mark.data
def test_mine_real_english_contracts(shared_data: Path, tmp_path: Path) -> None:
    contracts = sorted((shared_data / "en-legal" / "cuad" / "contracts" / "train").glob("*.txt"))[:60]
    cfg = MineConfig.build(inputs=contracts, out_dir=tmp_path / "en", languages="en", show_progress=False)
    ranked = [r[0] for r in _rows(run_mine(cfg))[1:]]
    top = set(ranked[:300])
    assert {"confidential information", "intellectual property", "indemnification"} <= top
    assert "the" not in ranked and "of the" not in ranked
