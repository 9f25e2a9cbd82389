"""Task-data readers: known answers for every format and tag scheme, each bad-input error, and round trips."""

from __future__ import annotations

import json
import logging
import re
from functools import cache
from pathlib import Path

import pytest

from lmtailor.errors import ConfigError, EmptyInputError, InputFormatError, InputNotFoundError
from lmtailor.tasks import (
    ClsExample,
    NerExample,
    TaskData,
    check_splits,
    entity_spans,
    read_cls,
    read_ner,
    resolve_nested,
    tags_from_spans,
)


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _jsonl(path: Path, records: list) -> Path:
    return _write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


# ---------------------------------------------------------------- classification


def test_cls_jsonl_known_answer(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "train.jsonl", [{"text": "Pay on time.", "label": "Payment", "extra": 1},
                                             {"text": "Law of Delaware.", "label": "Governing Law"}])  # fmt: skip
    data = read_cls(path)
    assert data.kind == "cls" and data.path == path
    assert data.examples == [
        ClsExample("Pay on time.", "Payment", "train.jsonl:1"),
        ClsExample("Law of Delaware.", "Governing Law", "train.jsonl:2"),
    ]
    assert data.labels == ["Governing Law", "Payment"]
    assert (data.skipped, data.repaired, data.dropped_nested) == (0, 0, 0)


def test_cls_csv_with_configured_columns_bom_and_quoted_newline(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.csv", '\ufeffid,abstract,class\n1,"two\nlines",3\n2,plain,1\n', "utf-8")
    data = read_cls(path, text_field="abstract", label_field="class")
    assert [(e.text, e.label, e.id) for e in data.examples] == [
        ("two\nlines", "3", "d.csv:2"),
        ("plain", "1", "d.csv:4"),
    ]
    assert data.labels == ["1", "3"]


def test_cls_json_list_and_int_labels(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.json", json.dumps([{"text": "a", "label": 2}, {"text": "b", "label": 10}]))
    data = read_cls(path)
    assert [(e.label, e.id) for e in data.examples] == [("2", "d.json:1"), ("10", "d.json:2")]


def test_cls_skips_malformed_records_and_logs_them(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = [
        '{"text": "good", "label": "A"}',
        '{"text": "broken"',  # malformed JSON
        '{"text": "no label"}',
        '{"text": "   ", "label": "A"}',  # empty text
        '{"text": "list label", "label": ["A", "B"]}',
        "",  # blank lines are not records
        '["not", "an", "object"]',
        '{"text": "good too", "label": "B"}',
    ]
    path = _write(tmp_path / "x.jsonl", "\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING, logger="lmtailor.tasks.readers"):
        data = read_cls(path)
    assert [e.id for e in data.examples] == ["x.jsonl:1", "x.jsonl:8"]
    assert data.skipped == 5
    for line in (2, 3, 4, 5, 7):
        assert f"x.jsonl:{line}" in caplog.text


def test_cls_field_absent_from_every_record_names_the_fields_found(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "x.jsonl", [{"text": "a", "category": "A"}, {"text": "b", "category": "B"}])
    with pytest.raises(InputFormatError) as err:
        read_cls(path)
    msg = str(err.value)
    assert "no field 'label'" in msg and "x.jsonl" in msg
    assert "fields found: category, text" in msg and "--label-field category" in msg


def test_cls_csv_missing_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.csv", "sentence,label\nhello,A\n")
    with pytest.raises(InputFormatError, match=r"no column 'text' in .*x\.csv.*columns found: label, sentence.*"
                                               r"--text-field sentence"):  # fmt: skip
        read_cls(path)


def test_cls_nothing_usable_is_empty_input(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.jsonl", '{"text": "", "label": "A"}\nnot json\n')
    with pytest.raises(EmptyInputError, match=r"x\.jsonl.*2 skipped"):
        read_cls(path)


# ---------------------------------------------------------------- NER column files


def test_iob2_word_file_known_answer(tmp_path: Path) -> None:
    path = _write(tmp_path / "train.tsv", "Familial\tB-Disease\nbreast\tI-Disease\ncancer\tI-Disease\ngenes\tO\n.\tO\n"
                                          "\n\nAPC\tB-Gene\nmutation\tO\n")  # fmt: skip
    data = read_ner(path)
    assert data.kind == "ner" and data.labels == ["Disease", "Gene"]
    first, second = data.examples
    assert first == NerExample(
        "Familial breast cancer genes .",
        ((0, 8), (9, 15), (16, 22), (23, 28), (29, 30)),
        ("B-Disease", "I-Disease", "I-Disease", "O", "O"),
        "train.tsv:1",
    )
    assert second == NerExample("APC mutation", ((0, 3), (4, 12)), ("B-Gene", "O"), "train.tsv:8")
    assert entity_spans(first) == [(0, 22, "Disease")]
    assert first.text[0:22] == "Familial breast cancer"


def test_underscore_char_file_with_space_characters_bom_and_crlf(tmp_path: Path) -> None:
    # cMedQANER style: "char SPACE tag"; a full-width space and an ASCII space are characters with tags too.
    lines = ["头 B_body", "痛 I_body", "\u3000 O", "  O", "吗 O", "", "发 B_symptom", "热 I_symptom", ""]
    path = _write(tmp_path / "dev.txt", "\ufeff" + "\r\n".join(lines), "utf-8")
    data = read_ner(path)
    first, second = data.examples
    assert first == NerExample(
        "头痛\u3000 吗", ((0, 1), (1, 2), (2, 3), (3, 4), (4, 5)), ("B-body", "I-body", "O", "O", "O"), "dev.txt:1"
    )
    assert second == NerExample("发热", ((0, 1), (1, 2)), ("B-symptom", "I-symptom"), "dev.txt:7")
    assert data.labels == ["body", "symptom"]


def test_bmes_and_bioes_convert_to_iob2(tmp_path: Path) -> None:
    tags = ["B-X", "M-X", "E-X", "S-Y", "O", "B-X", "E-X", "S-X", "B_Y", "I_Y", "E_Y", "S-X", "S-X"]
    path = _write(tmp_path / "t.txt", "".join(f"{chr(0x4E00 + i)} {t}\n" for i, t in enumerate(tags)))
    data = read_ner(path)
    (ex,) = data.examples
    assert ex.tags == ("B-X", "I-X", "I-X", "B-Y", "O", "B-X", "I-X", "B-X", "B-Y", "I-Y", "I-Y", "B-X", "B-X")
    assert data.repaired == 0
    assert entity_spans(ex) == [(0, 3, "X"), (3, 4, "Y"), (5, 7, "X"), (7, 8, "X"), (8, 11, "Y"), (11, 12, "X"),
                                (12, 13, "X")]  # fmt: skip


def test_repair_turns_dangling_inside_tags_into_starts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # "O I-X" and "B-X I-Y" continue nothing: each I- becomes a B- of its own type.
    path = _write(tmp_path / "x.tsv", "a\tO\nb\tI-X\nc\tI-X\n\nd\tB-X\ne\tI-Y\n")
    with caplog.at_level(logging.WARNING, logger="lmtailor.tasks.readers"):
        data = read_ner(path)
    assert [ex.tags for ex in data.examples] == [("O", "B-X", "I-X"), ("B-X", "B-Y")]
    assert data.repaired == 2
    assert "x.tsv:2" in caplog.text and "x.tsv:6" in caplog.text


def test_invalid_tags_error_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.tsv", "a\tO\n\nb\tO\nc\tI-X\n")
    with pytest.raises(InputFormatError, match=r"x\.tsv:4: I-X after O continues no X entity.*repair"):
        read_ner(path, invalid_tags="error")


def test_multi_column_file_takes_first_and_last_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "conll.txt", "-DOCSTART- -X- O O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n")
    (ex,) = read_ner(path).examples
    assert (ex.text, ex.tags, ex.id) == ("EU rejects", ("B-ORG", "O"), "conll.txt:3")


def test_column_line_without_tag_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.tsv", "a\tO\nb\tO\nlonely\n")
    with pytest.raises(InputFormatError, match=r"x\.tsv:3: expected a token and its tag"):
        read_ner(path)


@pytest.mark.parametrize("tag", ["PER", "B", "B-", "X-PER", "b-PER", "B+PER"])
def test_unknown_tag_shape_is_an_error(tmp_path: Path, tag: str) -> None:
    path = _write(tmp_path / "x.tsv", f"a\tO\n\nb\t{tag}\n")
    with pytest.raises(InputFormatError, match=rf"x\.tsv:3: unknown tag '{re.escape(tag)}'"):
        read_ner(path)


# ---------------------------------------------------------------- span JSON

NESTED = [
    {
        "text": "儿童细胞下降明显",
        "entities": [
            {"start_idx": 3, "end_idx": 6, "type": "sym", "entity": "胞下降明"},
            {"start_idx": 0, "end_idx": 3, "type": "bod", "entity": "儿童细胞"},
            {"start_idx": 2, "end_idx": 3, "type": "bod", "entity": "细胞"},
            {"start_idx": 2, "end_idx": 3, "type": "bod", "entity": "细胞"},  # exact duplicate: merged, not counted
        ],
    },
    {"text": "头痛 发热", "entities": [{"start_idx": 2, "end_idx": 4, "type": "sym", "entity": " 发热"}]},
    {"text": "无", "entities": []},
]


@pytest.mark.parametrize(
    ("policy", "tags", "dropped"),
    [
        ("outer", ("B-bod", "I-bod", "I-bod", "I-bod", "O", "O", "O", "O"), 2),
        ("inner", ("O", "O", "B-bod", "I-bod", "O", "O", "O", "O"), 2),
        ("first", ("O", "O", "O", "B-sym", "I-sym", "I-sym", "I-sym", "O"), 2),
    ],
)
def test_nested_span_json_under_each_policy(tmp_path: Path, policy: str, tags: tuple, dropped: int) -> None:
    path = _write(tmp_path / "train.json", json.dumps(NESTED, ensure_ascii=False, indent=1))
    data = read_ner(path, nested=policy)
    first, spaced, empty = data.examples
    assert first.units == tuple((i, i + 1) for i in range(8))
    assert (first.tags, first.id, data.dropped_nested) == (tags, "train.json:1", dropped)
    # Whitespace is not a unit, and the entity's leading space is trimmed off.
    assert spaced.units == ((0, 1), (1, 2), (3, 4), (4, 5))
    assert spaced.tags == ("O", "O", "B-sym", "I-sym")
    assert entity_spans(spaced) == [(3, 5, "sym")]
    assert (empty.tags, empty.id) == (("O",), "train.json:3")


def test_span_jsonl_reads_like_the_json_list(tmp_path: Path) -> None:
    as_list = read_ner(_write(tmp_path / "a.json", json.dumps(NESTED, ensure_ascii=False)))
    as_lines = read_ner(_jsonl(tmp_path / "a.jsonl", NESTED))
    assert [(e.text, e.units, e.tags) for e in as_list.examples] == [
        (e.text, e.units, e.tags) for e in as_lines.examples
    ]
    assert [e.id for e in as_lines.examples] == ["a.jsonl:1", "a.jsonl:2", "a.jsonl:3"]


def test_nested_ties_go_to_the_earlier_start() -> None:
    spans = [(1, 4, "b"), (0, 3, "a")]
    assert resolve_nested(spans, "outer") == ([(0, 3, "a")], 1)
    assert resolve_nested(spans, "inner") == ([(0, 3, "a")], 1)
    assert resolve_nested(spans, "first") == ([(1, 4, "b")], 1)
    assert resolve_nested([(0, 2, "a"), (2, 4, "a")], "outer") == ([(0, 2, "a"), (2, 4, "a")], 0)


def _span_file(tmp_path: Path, entity: dict) -> Path:
    records = [{"text": "无", "entities": []}, {"text": "患者头痛", "entities": [entity]}]
    return _write(tmp_path / "s.json", json.dumps(records, ensure_ascii=False))


def test_span_text_mismatch_names_record_span_and_both_strings(tmp_path: Path) -> None:
    path = _span_file(tmp_path, {"start_idx": 1, "end_idx": 2, "type": "sym", "entity": "头痛"})
    with pytest.raises(InputFormatError) as err:
        read_ner(path)
    msg = str(err.value)
    assert "s.json record 2" in msg and "[1, 2]" in msg and "'者头'" in msg and "'头痛'" in msg
    assert "inclusive" in msg and "exclusive" in msg


def test_span_with_exclusive_end_offsets_says_so(tmp_path: Path) -> None:
    path = _span_file(tmp_path, {"start_idx": 2, "end_idx": 3, "type": "sym", "entity": "头"})
    with pytest.raises(InputFormatError, match=r"record 2.*offsets look exclusive"):
        read_ner(path)


def test_span_out_of_range(tmp_path: Path) -> None:
    path = _span_file(tmp_path, {"start_idx": 2, "end_idx": 4, "type": "sym", "entity": "头痛"})
    with pytest.raises(InputFormatError, match=r"s\.json record 2: entity span \[2, 4\].*outside the text of 4"):
        read_ner(path)


def test_span_entity_without_offsets(tmp_path: Path) -> None:
    path = _span_file(tmp_path, {"start_idx": "2", "end_idx": 3, "type": "sym"})
    with pytest.raises(InputFormatError, match=r"s\.json record 2: .*integer start_idx"):
        read_ner(path)


def test_span_records_without_text_or_entities_are_skipped(tmp_path: Path) -> None:
    records = [{"text": "无", "entities": []}, {"entities": []}, {"text": "有"}, "nonsense"]
    data = read_ner(_jsonl(tmp_path / "s.jsonl", records))
    assert (len(data.examples), data.skipped, data.labels) == (1, 3, [])


# ---------------------------------------------------------------- spans <-> tags


def test_entity_spans_and_tags_from_spans_round_trip() -> None:
    text = "severe acute renal failure in mice"
    units = ((0, 6), (7, 12), (13, 18), (19, 26), (27, 29), (30, 34))
    spans = [(7, 26, "Disease"), (30, 34, "Species")]
    tags = tags_from_spans(units, spans)
    assert tags == ("O", "B-Disease", "I-Disease", "I-Disease", "O", "B-Species")
    ex = NerExample(text, units, tags, "t:1")
    assert entity_spans(ex) == spans
    assert [text[s:e] for s, e, _ in entity_spans(ex)] == ["acute renal failure", "mice"]
    assert tags_from_spans(units, entity_spans(ex)) == tags


def test_tags_from_spans_refuses_overlap_and_empty_spans() -> None:
    units = ((0, 1), (2, 3))
    with pytest.raises(ValueError, match="resolve nesting"):
        tags_from_spans(units, [(0, 3, "A"), (2, 3, "B")])
    with pytest.raises(ValueError, match="covers no unit"):
        tags_from_spans(units, [(1, 2, "A")])


def test_entity_spans_treats_dangling_inside_as_a_start() -> None:
    ex = NerExample("a b c", ((0, 1), (2, 3), (4, 5)), ("I-X", "I-Y", "I-Y"), "t:1")
    assert entity_spans(ex) == [(0, 1, "X"), (2, 5, "Y")]


# ---------------------------------------------------------------- files, options, splits


def test_missing_empty_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match=r"nope\.jsonl"):
        read_cls(tmp_path / "nope.jsonl")
    with pytest.raises(EmptyInputError, match=r"empty\.tsv"):
        read_ner(_write(tmp_path / "empty.tsv", "\n\n"))
    binary = tmp_path / "model.tsv"
    binary.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(InputFormatError, match=r"model\.tsv"):
        read_ner(binary)


def test_utf16_and_gb18030_files_are_decoded(tmp_path: Path) -> None:
    assert read_ner(_write(tmp_path / "a.txt", "\ufeff头 B_body\n痛 I_body\n", "utf-16-le")).examples[0].text == "头痛"
    path = _write(tmp_path / "b.jsonl", '{"text": "被告人盗窃财物", "label": "盗窃"}\n', "gb18030")
    assert read_cls(path).examples[0].label == "盗窃"


def test_format_override_and_bad_options(tmp_path: Path) -> None:
    path = _write(tmp_path / "spans.txt", json.dumps(NESTED[2:], ensure_ascii=False))
    assert read_ner(path, fmt="spans").examples[0].text == "无"
    with pytest.raises(InputFormatError, match=r"spans\.txt:1: unknown tag"):  # read as columns by default
        read_ner(path)
    for kwargs in ({"fmt": "conll"}, {"nested": "all"}, {"invalid_tags": "ignore"}):
        with pytest.raises(ConfigError, match=f"{next(iter(kwargs))}="):
            read_ner(path, **kwargs)


def _cls(path: Path, labels: list[str]) -> TaskData:
    examples = [ClsExample("t", lab, f"{path.name}:{i}") for i, lab in enumerate(labels, 1)]
    return TaskData(path, "cls", examples, sorted(set(labels)))


def test_check_splits_passes_and_names_unknown_labels() -> None:
    train = _cls(Path("train.jsonl"), ["A", "B", "A"])
    check_splits(train, _cls(Path("dev.jsonl"), ["B"]), _cls(Path("test.jsonl"), ["A", "B"]))
    with pytest.raises(InputFormatError) as err:
        check_splits(train, _cls(Path("dev.jsonl"), ["A"]), _cls(Path("test.jsonl"), ["A", "C", "D", "C"]))
    msg = str(err.value)
    assert "test.jsonl" in msg and "2 class label(s)" in msg and "'C' (e.g. test.jsonl:2, test.jsonl:4)" in msg
    assert "'D'" in msg and "train.jsonl" in msg and "re-split" in msg


def test_check_splits_on_entity_types() -> None:
    ex = NerExample("a b", ((0, 1), (2, 3)), ("B-X", "O"), "train.tsv:1")
    train = TaskData(Path("train.tsv"), "ner", [ex], ["X"])
    dev_ex = NerExample("a b", ((0, 1), (2, 3)), ("B-X", "B-Y"), "dev.tsv:5")
    with pytest.raises(InputFormatError, match=r"dev\.tsv: 1 entity type\(s\).*'Y' \(e\.g\. dev\.tsv:5\)"):
        check_splits(train, TaskData(Path("dev.tsv"), "ner", [dev_ex], ["X", "Y"]))
    with pytest.raises(InputFormatError, match="one task"):
        check_splits(train, _cls(Path("dev.jsonl"), ["X"]))


# ---------------------------------------------------------------- the real data (../shared/data)


@cache
def _read(path: Path) -> TaskData:
    return read_cls(path) if path.suffix == ".jsonl" else read_ner(path)


REAL = {
    "en-legal/cuad/clauses": (("train.jsonl", "dev.jsonl", "test.jsonl"), (4813, 623, 624), 18),
    "en-bio/medical-abstracts": (("train.jsonl", "dev.jsonl", "test.jsonl"), (2132, 281, 244), 5),
    "zh-legal/cail2018": (("train.jsonl", "dev.jsonl", "test.jsonl"), (3437, 439, 457), 29),
    "en-bio/ncbi-disease": (("train.tsv", "devel.tsv", "test.tsv"), (5424, 923, 940), 1),
    "en-bio/bc5cdr": (("train.tsv", "devel.tsv", "test.tsv"), (4560, 4581, 4797), 2),
    "zh-med/cmedqaner": (("train.txt", "dev.txt", "test.txt"), (1673, 175, 215), 11),
    "zh-med/cmeee-v2": (("train.json", "dev.json", "test.json"), (3979, 518, 503), 9),
}


@pytest.mark.data
@pytest.mark.parametrize("folder", sorted(REAL))
def test_real_splits_read_and_agree(shared_data: Path, folder: str) -> None:
    names, counts, n_labels = REAL[folder]
    splits = [_read(shared_data / folder / name) for name in names]
    assert [len(d.examples) for d in splits] == list(counts)
    assert len(splits[0].labels) == n_labels
    assert all(d.skipped == 0 and d.repaired == 0 for d in splits)
    check_splits(*splits)


@pytest.mark.data
def test_real_ner_entity_counts_match_source_txt(shared_data: Path) -> None:
    def entities(rel: str) -> int:
        return sum(len(entity_spans(ex)) for ex in _read(shared_data / rel).examples)

    assert entities("en-bio/ncbi-disease/train.tsv") == 5134
    assert entities("en-bio/bc5cdr/train.tsv") == 5203 + 4182
    assert entities("zh-med/cmedqaner/train.txt") == 12490
    cmedqaner = _read(shared_data / "zh-med/cmedqaner/train.txt")
    assert all(e - s == 1 for ex in cmedqaner.examples for s, e in ex.units)  # read as characters


@pytest.mark.data
def test_real_cmeee_tags_give_back_the_source_entities(shared_data: Path) -> None:
    path = shared_data / "zh-med/cmeee-v2/train.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    data = _read(path)
    total = 0
    for record, ex in zip(records, data.examples, strict=True):
        assert ex.text == record["text"]
        source = {(e["start_idx"], e["end_idx"] + 1, e["type"]) for e in record["entities"]}
        total += len(source)
        spans = entity_spans(ex)
        # Every span re-derived from the tags is one of the file's entities, with the text the file gives it.
        assert set(spans) <= source
        assert all(any(ex.text[s:e] == src["entity"] for src in record["entities"]) for s, e, _ in spans)
    assert total - sum(len(entity_spans(ex)) for ex in data.examples) == data.dropped_nested == 3570


def test_cls_csv_unclosed_quote_names_the_row(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.csv", 'text,label\nfine,a\n"broken,b\nmore,a\n')
    with pytest.raises(InputFormatError, match=r"d\.csv:3: a quote opened in this row is never closed"):
        read_cls(path)
