"""End to end: `lmtailor.corpus.run` on a tiny mixed corpus written here, and its error cases."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from lmtailor.corpus import CorpusConfig, iter_records, iter_texts, run
from lmtailor.errors import EmptyInputError, InputFormatError, InputNotFoundError, OutputExistsError

CONTRACT = (
    "This Supply Agreement is made between Acme Inc. and Widget Co. Ltd. on the date below. The Supplier shall "
    "deliver the Products to the Purchaser at the Delivery Point on the dates set out in the Schedule.\n\n"
    "Title and risk in the Products shall pass to the Purchaser upon delivery. The Purchaser shall inspect the "
    "Products within ten business days after delivery and notify the Supplier of any defect in writing.\n\n"
    "This Agreement is governed by the laws of the State of New York without regard to conflict of laws.\n"
)
LAW_MD = (
    "# 中华人民共和国测试法\n\n2020年1月1日 第十三届全国人民代表大会常务委员会通过\n\n<!-- INFO END -->\n\n"
    "## 第一章 总则\n\n第一条 为了规范测试活动，保护当事人的合法权益，制定本法。\n\n"
    "第二条 本法所称测试，是指对产品进行的检验。检验应当公开、公正！\n"
)


def _write_corpus(root: Path) -> Path:
    docs = root / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a_contract.txt").write_text(CONTRACT, encoding="utf-8")
    # A near-duplicate of the contract (one word changed): dropped whole, as it comes later in sorted order.
    (docs / "sub" / "contract_copy.txt").write_text(CONTRACT.replace("ten business", "five business"), "utf-8")
    (docs / "b_law.md").write_text(LAW_MD, encoding="utf-8")
    (docs / "c_gbk.txt").write_bytes("合同当事人应当遵循诚信原则。\n".encode("gbk"))
    # One record repeats the contract's last paragraph exactly: removed as an exact duplicate.
    last = CONTRACT.strip().split("\n\n")[-1]
    (docs / "d_rows.jsonl").write_text(
        "\n".join([json.dumps({"text": last, "id": "r1"}), "{broken", json.dumps({"text": "A new row.", "id": "r2"})])
        + "\n",
        encoding="utf-8",
    )
    (docs / "e_table.csv").write_text('text,id\n"Row one, quoted.",1\nRow two.,2\n', encoding="utf-8")
    (docs / "f_image.txt").write_bytes(bytes(range(256)) * 8)
    (docs / "g_scan.pdf").write_bytes(b"%PDF-1.4")
    return docs


def _config(docs: Path, out: Path, **extra: object) -> CorpusConfig:
    values: dict[str, object] = {"inputs": [docs], "out_dir": out, "show_progress": False, "id_field": "id"}
    values.update(extra)
    return CorpusConfig.build(**values)


def _shard_rows(out: Path) -> dict[str, list[dict[str, str]]]:
    rows: dict[str, list[dict[str, str]]] = {}
    for split in ("train", "dev", "test"):
        rows[split] = [json.loads(line) for p in sorted((out / split).glob("part-*.jsonl")) for line in p.open()]
    return rows


def test_end_to_end(tmp_path: Path) -> None:
    docs = _write_corpus(tmp_path)
    out = run(_config(docs, tmp_path / "corpus", split_ratios=[0.5, 0.25, 0.25], seed=1, shard_records=2))
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    rows = _shard_rows(out)
    every = [r for split in rows.values() for r in split]

    assert stats["documents"] == {"read": 8, "kept": 6, "near_duplicate": 1, "empty": 1}
    assert stats["duplicates_removed"] == {"exact_records": 1, "near_dup_documents": 1}
    assert stats["skipped"]["by_reason"] == {"binary": 1, "malformed jsonl line": 1, "unsupported extension": 1}
    assert stats["files"] == {"seen": 8, "skipped": 2}
    assert {r["line"] for r in stats["skipped"]["items"]} == {None, 2}
    assert stats["records"]["total"] == len(every) == 9
    assert {s: stats["records"][s] for s in rows} == {s: len(r) for s, r in rows.items()}
    assert stats["characters"]["total"] == sum(len(r["text"]) for r in every)
    assert stats["words"]["cjk_chars"] > 50 and stats["words"]["latin_words"] > 80
    assert stats["language"]["documents"]["chinese"] == pytest.approx(2 / 6, abs=1e-3)

    texts = [r["text"] for r in every]
    assert "第一条 为了规范测试活动,保护当事人的合法权益,制定本法。" in texts
    assert not any(t.startswith("#") or "INFO END" in t or "第十三届" in t for t in texts)
    assert "合同当事人应当遵循诚信原则。" in texts  # decoded from GBK
    assert sorted({r["doc"] for r in every}) == [
        "a_contract.txt", "b_law.md", "c_gbk.txt", "d_rows.jsonl#r2", "e_table.csv#1", "e_table.csv#2",
    ]  # fmt: skip
    splits_of_doc: dict[str, set[str]] = defaultdict(set)
    for split, split_rows in rows.items():
        for r in split_rows:
            splits_of_doc[r["doc"]].add(split)
    assert all(len(s) == 1 for s in splits_of_doc.values())  # no document straddles splits

    manifest = json.loads((out / "lmtailor.json").read_text(encoding="utf-8"))
    assert manifest["stage"] == "corpus"
    assert manifest["metrics"]["records"] == 9 and manifest["metrics"]["near_duplicate_documents"] == 1
    assert list(iter_texts([out], split="train")) == [r["text"] for r in rows["train"]]


def test_same_seed_same_output_and_sentence_unit(tmp_path: Path) -> None:
    docs = _write_corpus(tmp_path)
    first = _shard_rows(run(_config(docs, tmp_path / "one", unit="sentence")))
    second = _shard_rows(run(_config(docs, tmp_path / "two", unit="sentence")))
    assert first == second
    texts = [r["text"] for split in first.values() for r in split]
    assert "检验应当公开、公正!" in texts
    assert "This Supply Agreement is made between Acme Inc. and Widget Co. Ltd. on the date below." in texts


def test_options_min_chars_no_dedup_no_markdown(tmp_path: Path) -> None:
    docs = _write_corpus(tmp_path)
    out = run(
        _config(docs, tmp_path / "out", min_chars=20, dedup_exact=False, near_dup_threshold=0, strip_markdown=False)
    )
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["duplicates_removed"] == {"exact_records": 0, "near_dup_documents": 0}
    assert stats["too_short_records"] > 0
    texts = [r["text"] for split in _shard_rows(out).values() for r in split]
    assert all(len(t) >= 20 for t in texts)
    assert "2020年1月1日 第十三届全国人民代表大会常务委员会通过" in texts  # the header stays


def test_decode_error_mid_file_discards_the_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lmtailor.corpus.encoding.SAMPLE_BYTES", 64)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "bad.txt").write_bytes(b"Good first paragraph.\n\n" * 2000 + b"broken \xff here\n")
    (tmp_path / "docs" / "good.txt").write_text("Fine.\n", encoding="utf-8")
    out = run(_config(tmp_path / "docs", tmp_path / "out"))
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["skipped"]["by_reason"] == {"decode error": 1}
    assert [r["doc"] for split in _shard_rows(out).values() for r in split] == ["good.txt"]


def test_missing_input_raises_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="missing"):
        run(_config(tmp_path / "missing", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", [None, "pdf", "blank"])
def test_nothing_usable_raises_empty_input(tmp_path: Path, content: str | None) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    if content == "pdf":
        (docs / "a.pdf").write_bytes(b"%PDF")
    elif content == "blank":
        (docs / "a.txt").write_text("\n \n\u200b\n", encoding="utf-8")
    with pytest.raises(EmptyInputError, match=re.escape(str(docs))):
        run(_config(docs, tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == [docs]  # no temporary folder left behind either


def test_csv_without_the_column_is_a_format_error(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "t.csv").write_text("body\nx\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match=r"'text'.*body"):
        run(_config(tmp_path / "docs", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_existing_output_is_refused_unless_overwrite(tmp_path: Path) -> None:
    docs = _write_corpus(tmp_path)
    run(_config(docs, tmp_path / "out"))
    with pytest.raises(OutputExistsError):
        run(_config(docs, tmp_path / "out"))
    run(_config(docs, tmp_path / "out", overwrite=True))


@pytest.mark.data
def test_zh_legal_laws_dev(tmp_path: Path, shared_data: Path) -> None:
    laws = shared_data / "zh-legal" / "laws" / "dev"  # shared_data skips the test when ../shared/data is absent
    if not laws.is_dir():
        pytest.skip(f"{laws} is absent")
    out = run(CorpusConfig.build(inputs=[laws], out_dir=tmp_path / "laws", show_progress=False))
    records = list(iter_records([out], split="train"))
    texts = [r.text for r in records]
    assert not any(t.startswith("#") for t in texts)
    assert not any("INFO END" in t for t in texts)
    articles = [t for t in texts if re.match(r"第[一二三四五六七八九十百千零]+条 ", t)]
    assert len(articles) > 1000
    first_of = {r.doc: r.text for r in reversed(records)}
    if "刑法/刑法修正案（二）.md" in first_of:  # its header (title, date of adoption) must be gone
        assert first_of["刑法/刑法修正案（二）.md"].startswith("为了惩治毁林开垦")


@pytest.mark.data
def test_zh_med_ner_training_sentences_as_corpus(tmp_path: Path, shared_data: Path) -> None:
    med = shared_data / "zh-med"
    files = [med / "cmeee-v2" / "train.json", med / "cmedqaner" / "train.txt"]
    if not all(f.is_file() for f in files):
        pytest.skip(f"{files} are absent")
    cfg = CorpusConfig.build(ner_inputs=files, out_dir=tmp_path / "med", split_ratios=[1, 0, 0], show_progress=False)
    out = run(cfg)
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["documents"]["read"] == 3979 + 1673  # one document per sentence of each file
    assert stats["documents"]["kept"] > 0.99 * stats["documents"]["read"]
    texts = [r.text for r in iter_records([out], split="train")]
    assert any("心肌梗死" in t or "心肌" in t for t in texts)
    assert not any(" B_" in t or " O\n" in t for t in texts)  # tags are not text


def test_a_split_left_empty_by_few_documents_is_warned_about(tmp_path: Path, caplog) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(2):  # two large documents, split whole: at least one of three splits stays empty
        (raw / f"part{i}.txt").write_text(f"Document {i} sentence about protein kinase inhibitors.\n" * 50)
    with caplog.at_level("WARNING"):
        run(CorpusConfig(inputs=[raw], out_dir=tmp_path / "c", split_ratios=[0.8, 0.1, 0.1], show_progress=False))
    stats = json.loads((tmp_path / "c" / "stats.json").read_text())
    empty = [s for s in ("train", "dev", "test") if stats["records"][s] == 0]
    warned = [r.getMessage() for r in caplog.records if "is empty although its share" in r.getMessage()]
    assert empty and len(warned) == len(empty) and all(f"split {s!r}" in " ".join(warned) for s in empty)
    assert "2 document(s) were kept" in warned[0]
