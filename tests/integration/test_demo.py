"""`make demo` runs `lmtailor demo`: its built-in corpus, its derived task, and the whole recipe (quick mode)."""

import json
from pathlib import Path

import pytest

from lmtailor.demo import build_task, collect_default_corpus, find_license_files, licence_family, run_demo
from lmtailor.errors import EmptyInputError


def test_default_corpus_is_present_after_setup(tmp_path: Path):
    files = find_license_files()
    assert len(files) >= 20  # the licences of lmtailor's own dependencies
    dest = collect_default_corpus(tmp_path / "raw")
    assert all(p.suffix == ".txt" for p in dest.iterdir())
    assert any("Apache License" in p.read_text(errors="replace") for p in dest.iterdir())


def test_licence_families_known_answers():
    assert licence_family("GNU LESSER GENERAL PUBLIC LICENSE ... GNU GENERAL PUBLIC LICENSE") == "lgpl"
    assert licence_family("Permission is hereby granted, free of charge, to any person") == "mit"
    assert licence_family("Apache License\nVersion 2.0, January 2004") == "apache"
    assert licence_family("All rights reserved. No licence at all.") is None


def test_task_paragraphs_are_deduplicated_and_split_without_overlap(tmp_path: Path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(2):  # two MIT files sharing their paragraphs: each paragraph counted once
        body = "\n\n".join(f"MIT paragraph number {k} about permission and warranty, long enough." for k in range(40))
        (raw / f"mit{i}.txt").write_text("Permission is hereby granted, free of charge.\n\n" + body)
    body = "\n\n".join(f"BSD paragraph number {k} about redistribution in binary forms, long." for k in range(35))
    (raw / "bsd.txt").write_text("Redistribution and use in source and binary forms.\n\n" + body)
    (raw / "few.txt").write_text("Mozilla Public License\n\n" + "A short MPL paragraph that is long enough to count.")
    counts = build_task(raw, tmp_path / "task")
    assert counts == {"bsd": 35, "mit": 40}  # MPL has too few paragraphs; the header lines are too short
    rows = {s: [json.loads(x) for x in (tmp_path / "task" / f"{s}.jsonl").read_text().splitlines()]
            for s in ("train", "dev", "test")}  # fmt: skip
    texts = [set(r["text"] for r in rows[s]) for s in rows]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    assert sum(len(v) for v in rows.values()) == 75
    assert {r["label"] for r in rows["test"]} == {"bsd", "mit"}
    (tmp_path / "raw2").mkdir()
    with pytest.raises(EmptyInputError, match="two classes"):
        build_task(tmp_path / "raw2", tmp_path / "task2")


@pytest.mark.slow
def test_quick_demo_builds_every_stage_and_a_report(tmp_path: Path):
    results = run_demo(tmp_path / "demo", show_progress=False, quick=True)
    assert [r.status for r in results] == ["ran"] * 16
    report = tmp_path / "demo" / "report"
    data = json.loads((report / "report.json").read_text())
    statuses = {m["metric"]: m["status"] for m in data["key_metrics"]}
    assert statuses["compression (student size / teacher size)"] == "pass"  # int8 3-layer vs the fp32 teacher
    assert {r["model"] for r in data["ledger"]} >= {"baseline", "teacher", "student", "int8", "fused"}
    assert data["student"].endswith("fused")  # the final model: the int8 student with the baseline
    # Every model of the demo is scored by macro-F1 and judged against the baseline (pass or fail: quick mode).
    assert {r["metric"] for r in data["ledger"] if r["test"] is not None} == {"macro_f1"}
    assert statuses["teacher beats the baseline (points)"] in ("pass", "fail")
    assert statuses["final model beats the baseline (points)"] in ("pass", "fail")
    assert (report / "report.html").stat().st_size > 10_000
    # The last step is a ready-to-run server for the pair, and the report says how to start it.
    serving = data["serving"][0]
    assert serving["models"] == {"licences": "cls"} and serving["command"].endswith(str(tmp_path / "demo" / "serve"))
    assert "## Serving" in (report / "report.md").read_text() and "serve.sh" in (report / "report.html").read_text()
    # A second run finds everything up to date.
    again = run_demo(tmp_path / "demo", show_progress=False, quick=True)
    assert {r.status for r in again} == {"cached"}
