"""What a person sees while lmtailor works: one live view on a terminal, plain timestamped lines elsewhere.

Stages do not print. They report to the current `Display` through three calls, and do nothing when there is none
(a library call, a test):
- `progress_over(total, label)`: the running stage's one progress bar (files read, models measured, steps trained),
  with `figures` beside it (loss, epoch);
- `event(text)`: one compact line that stays (an evaluation: "epoch 2 · dev accuracy 0.913");
- a build adds `stage_start` / `stage_end`, from which the live view draws the stage list.

`LiveDisplay` (rich, a terminal) redraws in place: the stages with status and time, the running stage's bar and
figures, the last few events. `PlainDisplay` (CI, `nohup`, a pipe) writes one timestamped line per start, end and
event, and progress at most every 30 s: no cursor codes, no redraws. `JsonDisplay` (`--log-json FILE`) writes the same
events as JSON lines for people who wire lmtailor into their pipelines. Why rich: the house's CLI library already,
and its Live/Progress do the redrawing that a hand-written ANSI loop would get wrong on narrow or dumb terminals.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

_current: Display | None = None
Figures = dict[str, Any] | None  # key figures shown beside a bar: loss, epoch, model being measured
PLAIN_PROGRESS_EVERY_S = 30.0


class Display:
    """Receives what stages and builds report; the base class ignores everything (no display)."""

    def plan(self, stages: list[tuple[str, str]]) -> None:
        """A build's stages, (name, kind) in order, before the first starts."""

    def stage_start(self, name: str, kind: str, index: int, total: int, eta: str | None = None) -> None: ...

    def stage_end(self, name: str, status: str, seconds: float) -> None: ...

    def progress(self, label: str, completed: float, total: float | None, figures: Figures = None) -> None:
        """The running stage's progress: `completed` of `total` (None: unknown), with its key figures."""

    def progress_done(self) -> None: ...

    def event(self, text: str) -> None: ...

    def close(self) -> None: ...


def current() -> Display | None:
    return _current


@contextmanager
def showing(display: Display) -> Iterator[Display]:
    """Make `display` the one stages report to, for the duration of a command."""
    global _current
    previous, _current = _current, display
    try:
        yield display
    finally:
        display.close()
        _current = previous


def event(text: str) -> None:
    """One line that stays in the view (an evaluation, a choice made); nothing without a display."""
    if _current is not None:
        _current.event(text)


@contextmanager
def progress_over(total: int | None, label: str, enabled: bool = True) -> Iterator[Callable[..., None]]:
    """A progress bar of `total` steps on the current display; yields `advance(n=1, **figures)`. Without a display
    (or with `enabled` False: `show_progress` off) it costs nothing."""
    display = _current if enabled else None
    if display is None:
        yield lambda n=1, **figures: None
        return
    done = [0.0]

    def advance(n: float = 1, **figures: Any) -> None:
        done[0] += n
        display.progress(label, done[0], total, figures or None)

    display.progress(label, 0, total)
    try:
        yield advance
    finally:
        display.progress_done()


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else (
        f"{seconds // 60}:{seconds % 60:02d}")  # fmt: skip


def figures_text(figures: dict[str, Any] | None) -> str:
    if not figures:
        return ""
    parts = []
    for key, value in figures.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        parts.append(f"{key.replace('_', ' ')} {shown}")
    return " · ".join(parts)


class PlainDisplay(Display):
    """Line-oriented, timestamped: for logs, CI and pipes."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self._last_progress = 0.0
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        with self._lock:
            self.stream.write(f"{datetime.now().strftime('%H:%M:%S')} {text}\n")
            self.stream.flush()

    def stage_start(self, name: str, kind: str, index: int, total: int, eta: str | None = None) -> None:
        self._last_progress = time.monotonic()
        self._line(f"[{index}/{total}] {name} ({kind}) started" + (f", about {eta} left in the build" if eta else ""))

    def stage_end(self, name: str, status: str, seconds: float) -> None:
        self._line(f"{name}: {status}" + (f" in {_clock(seconds)}" if status == "done" else ""))

    def progress(
        self, label: str, completed: float, total: float | None, figures: dict[str, Any] | None = None
    ) -> None:
        now = time.monotonic()
        if now - self._last_progress < PLAIN_PROGRESS_EVERY_S:
            return
        self._last_progress = now
        share = f"{completed:g}/{total:g}" if total else f"{completed:g}"
        extra = figures_text(figures)
        self._line(f"  {label}: {share}" + (f" · {extra}" if extra else ""))

    def event(self, text: str) -> None:
        self._line(f"  {text}")


class JsonDisplay(Display):
    """JSON lines: {"time", "event", ...} per stage start/end, evaluation and progress (at most every 30 s)."""

    def __init__(self, path: Path) -> None:
        self.file = Path(path).open("a", encoding="utf-8")  # noqa: SIM115 (open for the display's lifetime)
        self._last_progress = 0.0
        self._lock = threading.Lock()

    def _write(self, **record: Any) -> None:
        with self._lock:
            self.file.write(json.dumps({"time": datetime.now().isoformat(timespec="seconds"), **record},
                                       ensure_ascii=False, default=str) + "\n")  # fmt: skip
            self.file.flush()

    def stage_start(self, name: str, kind: str, index: int, total: int, eta: str | None = None) -> None:
        self._write(event="stage_start", stage=name, kind=kind, index=index, total=total, eta=eta)

    def stage_end(self, name: str, status: str, seconds: float) -> None:
        self._write(event="stage_end", stage=name, status=status, seconds=round(seconds, 1))

    def progress(
        self, label: str, completed: float, total: float | None, figures: dict[str, Any] | None = None
    ) -> None:
        now = time.monotonic()
        if now - self._last_progress >= PLAIN_PROGRESS_EVERY_S:
            self._last_progress = now
            self._write(event="progress", label=label, completed=completed, total=total, figures=figures or {})

    def event(self, text: str) -> None:
        self._write(event="note", text=text)

    def summary(self, **record: Any) -> None:
        self._write(event="summary", **record)

    def close(self) -> None:
        self.file.close()


class Tee(Display):
    """Several displays at once (the view, and the JSON log)."""

    def __init__(self, *displays: Display) -> None:
        self.displays = displays

    def plan(self, stages: list[tuple[str, str]]) -> None:
        for d in self.displays:
            d.plan(stages)

    def stage_start(self, *args: Any, **kw: Any) -> None:
        for d in self.displays:
            d.stage_start(*args, **kw)

    def stage_end(self, *args: Any, **kw: Any) -> None:
        for d in self.displays:
            d.stage_end(*args, **kw)

    def progress(self, *args: Any, **kw: Any) -> None:
        for d in self.displays:
            d.progress(*args, **kw)

    def progress_done(self) -> None:
        for d in self.displays:
            d.progress_done()

    def event(self, text: str) -> None:
        for d in self.displays:
            d.event(text)

    def close(self) -> None:
        for d in self.displays:
            d.close()


class LiveDisplay(Display):
    """One live view on a terminal: the stage list, the running stage's bar with its figures, the last events."""

    EVENTS_SHOWN = 6

    def __init__(self, console) -> None:
        from rich.live import Live
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console
        self.stages: dict[str, dict] = {}
        self.events: deque[str] = deque(maxlen=self.EVENTS_SHOWN)
        self.bar = Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[figures]}"),
                            console=console)  # fmt: skip
        self.task = None
        self.live = Live(self._view(), console=console, refresh_per_second=4, transient=False,
                         get_renderable=self._view)  # fmt: skip
        self.live.start()

    def _view(self):
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        parts = []
        if self.stages:
            table = Table(show_header=False, box=None, padding=(0, 1))
            marks = {"done": "[green]✓[/]", "cached": "[dim]·[/]", "running": "[cyan]▶[/]", "waiting": " ",
                     "failed": "[red]✗[/]"}  # fmt: skip
            for name, s in self.stages.items():
                took = s.get("seconds")
                if s["status"] == "running":
                    took = time.monotonic() - s["t0"]
                timing = _clock(took) if took else ""
                if s["status"] == "running" and s.get("eta"):
                    timing += f" [dim](about {s['eta']} left in the build)[/]"
                status = {"cached": "[dim]up to date[/]"}.get(s["status"], s["status"])
                table.add_row(marks.get(s["status"], " "), name, f"[dim]{s['kind']}[/]", status, timing)
            parts.append(table)
        if self.task is not None:
            parts.append(self.bar)
        parts.extend(Text("  " + e, style="dim") for e in self.events)
        return Group(*parts)

    def plan(self, stages: list[tuple[str, str]]) -> None:
        """The build's stages in order, all waiting."""
        for name, kind in stages:
            self.stages[name] = {"kind": kind, "status": "waiting"}

    def stage_start(self, name: str, kind: str, index: int, total: int, eta: str | None = None) -> None:
        self.stages[name] = {"kind": kind, "status": "running", "t0": time.monotonic(), "eta": eta}
        self.events.clear()

    def stage_end(self, name: str, status: str, seconds: float) -> None:
        entry = self.stages.setdefault(name, {"kind": ""})
        entry.update(status=status, seconds=seconds if status != "cached" else None)

    def progress(
        self, label: str, completed: float, total: float | None, figures: dict[str, Any] | None = None
    ) -> None:
        text = figures_text(figures)
        if self.task is None:
            self.task = self.bar.add_task(label, total=total, completed=completed, figures=text)
        else:
            self.bar.update(self.task, description=label, total=total, completed=completed, figures=text)

    def progress_done(self) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None

    def event(self, text: str) -> None:
        self.events.append(text)
        if not self.stages:  # a single-stage command: its events are its log, keep them all
            self.console.print(f"  {text}", style="dim")
            self.events.clear()

    def close(self) -> None:
        self.progress_done()
        self.live.refresh()
        self.live.stop()


def for_console(console, json_log: Path | None = None) -> Display:
    """The live view on a terminal, plain lines elsewhere; with `json_log`, JSON events too."""
    shown: Display = LiveDisplay(console) if console.is_terminal and not console.is_dumb_terminal else (
        PlainDisplay(console.file))  # fmt: skip
    return Tee(shown, JsonDisplay(json_log)) if json_log is not None else shown
