"""File discovery and the per-format readers: documents, keys, and what is skipped and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmtailor.corpus import readers
from lmtailor.corpus.readers import Document, ReadOptions, Skip, discover, read_file, text_lines
from lmtailor.errors import InputFormatError, InputNotFoundError


def _read_all(path: Path, options: ReadOptions | None = None) -> list[Document | Skip]:
    items: list[Document | Skip] = []
    for src in discover([path]):
        items.extend(read_file(src, options or ReadOptions()))
    return items


def _docs(items: list[Document | Skip]) -> list[tuple[str, str]]:
    return [(d.key, "".join(d.lines)) for d in items if isinstance(d, Document)]


def test_discover_is_recursive_sorted_and_skips_hidden(tmp_path: Path) -> None:
    for rel in ["b.txt", "a/z.md", "a/b.jsonl", "c.csv", "notes.pdf", ".git/config", "a/.hidden.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x", encoding="utf-8")
    found = discover([tmp_path])
    assert [f.rel for f in found] == ["a/b.jsonl", "a/z.md", "b.txt", "c.csv", "notes.pdf"]
    assert [f.kind for f in found] == ["jsonl", "markdown", "text", "csv", None]


def test_discover_single_file_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "one.TXT").write_text("x", encoding="utf-8")
    assert [(f.rel, f.kind) for f in discover([tmp_path / "one.TXT"])] == [("one.TXT", "text")]
    with pytest.raises(InputNotFoundError, match="nope"):
        discover([tmp_path / "nope"])


def test_unsupported_extension_is_a_skip(tmp_path: Path) -> None:
    (tmp_path / "a.pdf").write_bytes(b"%PDF")
    [skip] = _read_all(tmp_path)
    assert isinstance(skip, Skip) and skip.reason == "unsupported extension"


def test_text_file_streams_lines_in_pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "LINE_CHARS", 4)
    (tmp_path / "a.txt").write_text("abcdefghij\nxy\n", encoding="utf-8")
    [doc] = _read_all(tmp_path)
    assert isinstance(doc, Document)
    assert list(doc.lines) == ["abcd", "efgh", "ij\n", "xy\n"]


def test_jsonl_rows_are_documents_and_bad_lines_are_counted(tmp_path: Path) -> None:
    rows = [
        json.dumps({"text": "first", "id": "A1"}),
        "{not json",
        json.dumps({"body": "no text field"}),
        json.dumps({"text": 42}),
        "",
        json.dumps(["a", "list"]),
        json.dumps({"text": "second\n\nthird"}),
    ]
    (tmp_path / "d.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    items = _read_all(tmp_path, ReadOptions(id_field="id"))
    assert _docs(items) == [("d.jsonl#A1", "first"), ("d.jsonl:7", "second\n\nthird")]
    skips = [i for i in items if isinstance(i, Skip)]
    assert [(s.reason, s.line) for s in skips] == [("malformed jsonl line", n) for n in (2, 3, 4, 6)]
    assert "d.jsonl:3" in skips[1].detail and "'text'" in skips[1].detail


def test_csv_rows_by_column(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text('id,body\n7,"hello\nworld"\n8,bye\n', encoding="utf-8")
    items = _read_all(tmp_path, ReadOptions(csv_column="body", id_field="id"))
    assert _docs(items) == [("t.csv#7", "hello\nworld"), ("t.csv#8", "bye")]


def test_csv_missing_column_names_file_column_and_choices(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("id,body\n1,x\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match=r"t\.csv.*'text'.*id, body"):
        _read_all(tmp_path)


def test_jsonl_decode_error_mid_file_stops_with_a_skip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lmtailor.corpus.encoding.SAMPLE_BYTES", 16)  # the bad byte lies beyond the sniffed start
    good = json.dumps({"text": "fine row"}) + "\n"
    (tmp_path / "d.jsonl").write_bytes(good.encode() * 2000 + b'{"text": "\xff"}\n')
    items = _read_all(tmp_path)
    # Decoding goes in 8 KiB blocks, so the rows sharing a block with the bad byte are lost too, not more.
    assert 1500 < len(_docs(items)) < 2000
    assert isinstance(items[-1], Skip) and items[-1].reason == "decode error"
    assert items[-1].line == len(_docs(items)) + 1


def test_text_lines_match_file_lines() -> None:
    assert list(text_lines("a\r\nb\rc\n")) == ["a\n", "b\n", "c\n"]
    assert list(text_lines("a\nb")) == ["a\n", "b"]


def test_ner_inputs_give_one_document_per_sentence(tmp_path: Path) -> None:
    spans = tmp_path / "train.json"
    spans.write_text(
        json.dumps(
            [
                {
                    "text": "患者心肌梗死。",
                    "entities": [{"start_idx": 2, "end_idx": 5, "type": "dis", "entity": "心肌梗死"}],
                },
                {"text": "无殊", "entities": []},
            ],
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    columns = tmp_path / "train.txt"
    columns.write_text("头 B_sym\n痛 I_sym\n\u3000 O\n吗 O\n\n好 O\n", encoding="utf-8")
    items: list[Document | Skip] = []
    for src in discover([spans, columns], kind="ner"):
        items.extend(read_file(src, ReadOptions()))
    assert _docs(items) == [
        ("train.json#1", "患者心肌梗死。"),
        ("train.json#2", "无殊"),
        ("train.txt#1", "头痛\u3000吗"),
        ("train.txt#2", "好"),
    ]


def test_an_unusable_ner_input_is_one_counted_skip(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("this is prose, not token-tag columns\n", encoding="utf-8")
    items = [item for src in discover([bad], kind="ner") for item in read_file(src, ReadOptions())]
    assert len(items) == 1 and isinstance(items[0], Skip)
    assert items[0].reason == "not an NER task file"
    assert "notes.txt" in items[0].detail and "NER input" in items[0].detail


def test_csv_unclosed_quote_is_a_counted_skip_not_one_merged_row(tmp_path: Path) -> None:
    # Before: the rest of the file became the text of row 3, silently.
    (tmp_path / "t.csv").write_text('text\nfirst\n"second, never closed\nthird\nfourth\n', encoding="utf-8")
    items = _read_all(tmp_path)
    assert _docs(items) == [("t.csv:2", "first")]
    skips = [i for i in items if isinstance(i, Skip)]
    assert len(skips) == 1 and skips[0].reason == "malformed csv row"
    assert "t.csv:3: a quote opened in this row is never closed" in skips[0].detail
