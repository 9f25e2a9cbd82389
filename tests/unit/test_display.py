"""The display: the live view draws the stage list, the running bar and the events; plain lines carry timestamps and
no cursor codes; JSON events are one object a line; without a display stages report to nothing."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from rich.console import Console

from lmtailor import display


def test_live_view_shows_stages_bar_figures_and_evaluations():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=110, color_system=None)
    live = display.LiveDisplay(console)
    with display.showing(live):
        live.plan([("corpus", "corpus"), ("teacher", "finetune"), ("int8", "quantize")])
        live.stage_end("corpus", "cached", 0.0)
        live.stage_start("teacher", "finetune", 2, 3, eta="4 min")
        with display.progress_over(100, "fine-tuning") as advance:
            advance(40, loss=0.4213, epoch=1.5)
            display.event("step 40 (epoch 1.50) · dev accuracy 0.9133")
            live.live.refresh()
            screen = out.getvalue()
        live.stage_end("teacher", "done", 125.0)
    final = out.getvalue()[len(screen) :]
    assert "teacher" in screen and "running" in screen and "about 4 min left" in screen
    assert "fine-tuning" in screen and "40/100" in screen and "loss 0.4213 · epoch 1.5" in screen
    assert "dev accuracy 0.9133" in screen and "up to date" in screen and "waiting" in screen
    assert "✓" in final and "2:05" in final  # the last frame: teacher done in 2 min 5 s


def test_plain_lines_have_timestamps_and_no_cursor_codes():
    out = io.StringIO()
    plain = display.PlainDisplay(out)
    with display.showing(plain):
        plain.stage_start("teacher", "finetune", 2, 3)
        with display.progress_over(10, "fine-tuning") as advance:
            for _ in range(10):
                advance(loss=0.5)
        display.event("dev accuracy 0.91")
        plain.stage_end("teacher", "done", 61.0)
    text = out.getvalue()
    assert "\x1b[" not in text and "\r" not in text
    lines = text.splitlines()
    assert all(re.match(r"\d\d:\d\d:\d\d ", line) for line in lines)
    assert [line[9:] for line in lines] == [
        "[2/3] teacher (finetune) started",
        "  dev accuracy 0.91",
        "teacher: done in 1:01",
    ]  # fmt: skip  (progress: at most every 30 s)


def test_json_events_and_no_display(tmp_path: Path):
    path = tmp_path / "events.jsonl"
    with display.showing(display.JsonDisplay(path)) as shown:
        shown.stage_start("corpus", "corpus", 1, 1)
        display.event("kept 12 documents")
        shown.stage_end("corpus", "done", 2.0)
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["event"] for e in events] == ["stage_start", "note", "stage_end"]
    assert events[2]["seconds"] == 2.0 and all("time" in e for e in events)
    assert display.current() is None
    with display.progress_over(3, "nothing shows") as advance:  # no display: a no-op
        advance()
    display.event("nobody hears this")
