"""The report's figures (matplotlib, Agg backend): each function writes one PNG and returns its path, or None when
the folders hold nothing to plot."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

from lmtailor.report.collect import ModelRow, coverage_key

_DPI = 110
# Fonts with Chinese glyphs that matplotlib falls back to, glyph by glyph, when one is installed (DejaVu Sans, its
# default, has none: a Chinese class name would be drawn as boxes).
_CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
              "Microsoft YaHei", "SimHei", "PingFang SC", "Heiti SC", "Arial Unicode MS")  # fmt: skip


@functools.cache
def _fonts() -> tuple[list[str], frozenset[int]]:
    """The font family list the figures use, and the code points those fonts can draw."""
    by_name = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    names = ["DejaVu Sans", *(n for n in _CJK_FONTS if n in by_name)]
    chars: set[int] = set()
    for name in names:
        path = by_name.get(name) or font_manager.findfont(name)
        try:
            chars.update(FT2Font(path).get_charmap())
        except (OSError, RuntimeError):  # an unreadable font file draws nothing; its glyphs are not counted
            continue
    return names, frozenset(chars)


def drawable(labels: list[str]) -> bool:
    """Whether the installed fonts can draw every character of these labels."""
    chars = _fonts()[1]
    return all(ord(c) in chars for label in labels for c in label if not c.isspace())


def _styled(fn: Callable) -> Callable:
    """Draw with the CJK fallback fonts (rc_context: the user's own matplotlib settings are left alone)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with plt.rc_context({"font.family": _fonts()[0]}):
            return fn(*args, **kwargs)

    return wrapper


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


@_styled
def size_vs_metric(rows: list[ModelRow], teacher: ModelRow | None, path: Path,
                   baseline: ModelRow | None = None) -> Path | None:  # fmt: skip
    pts = [r for r in rows if r.size_mb and r.metric is not None and not r.stage.startswith("baseline")]
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    groups: dict[tuple[float, float], list[ModelRow]] = {}
    for r in pts:  # models of the same size and score (a model and its ONNX export) share one labelled point
        groups.setdefault((round(r.size_mb, 1), round(r.metric, 4)), []).append(r)
    for (size, metric), members in groups.items():
        is_teacher = teacher is not None and any(r.path == teacher.path for r in members)
        ax.scatter(size, metric, s=90 if is_teacher else 36, marker="*" if is_teacher else "o")
        label = ", ".join(r.name for r in members)
        ax.annotate(label, (size, metric), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if baseline is not None and baseline.metric is not None and baseline.metric_name == pts[0].metric_name:
        ax.axhline(baseline.metric, color="#aa3377", ls="--", lw=1.2)
        ax.annotate(f"baseline {baseline.name} ({baseline.metric:.4f})", (0.01, baseline.metric),
                    xycoords=("axes fraction", "data"), xytext=(0, 3), textcoords="offset points", fontsize=8,
                    color="#aa3377")  # fmt: skip
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("size on disk (MB, log scale)")
    ax.set_ylabel(f"test {pts[0].metric_name}")
    ax.set_title("size against task quality of every model built")
    ax.grid(alpha=0.3)
    return _save(fig, path)


@_styled
def latency_bars(rows: list[ModelRow], path: Path) -> Path | None:
    pts = [r for r in rows if r.p50_ms is not None]
    if not pts:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 0.5 + 0.4 * len(pts) + 1.2))
    names = [f"{r.name} ({r.runtime})" for r in pts]
    axes[0].barh(names, [r.p50_ms for r in pts], color="#4477aa")
    axes[0].set_xlabel("p50 latency, batch 1 (ms)")
    axes[1].barh(names, [r.throughput or 0 for r in pts], color="#228833")
    axes[1].set_xlabel("throughput, batch 32 (sequences/s)")
    axes[1].set_yticklabels([])
    for ax in axes:
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


@_styled
def loss_curves(curves: dict[str, list[tuple[float, float]]], path: Path) -> Path | None:
    if not curves:
        return None
    fig, axes = plt.subplots(1, len(curves), figsize=(min(4.2 * len(curves), 13), 3.2), squeeze=False)
    for ax, (name, pts) in zip(axes[0], curves.items(), strict=True):
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.4)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.grid(alpha=0.3)
    return _save(fig, path)


@_styled
def per_class_f1(teacher: ModelRow | None, student: ModelRow | None, path: Path) -> Path | None:
    if not teacher or not teacher.per_class:
        return None
    labels = sorted(teacher.per_class)
    fig, ax = plt.subplots(figsize=(7.5, 0.8 + 0.28 * len(labels)))
    y = range(len(labels))
    ax.barh([i - 0.2 for i in y], [teacher.per_class[c] or 0 for c in labels], height=0.4, label=teacher.name)
    if student and student.per_class:
        ax.barh([i + 0.2 for i in y], [student.per_class.get(c) or 0 for c in labels], height=0.4, label=student.name)
    # Class names no installed font can draw become their row numbers in the report's per-class table.
    ax.set_yticks(list(y), labels if drawable(labels) else [str(i + 1) for i in y], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("test F1")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


@_styled
def tokenizer_bars(evals: list[dict], path: Path) -> Path | None:
    if not evals:
        return None
    ev = evals[0]["results"]
    names = list(ev)
    fig, axes = plt.subplots(1, 2, figsize=(8.0, 2.6))
    cov_key, what = coverage_key(ev[names[0]])
    for ax, key, label in ((axes[0], "tokens_per_word", "tokens per word (lower is better)"),
                           (axes[1], cov_key, f"{what} (higher is better)")):  # fmt: skip
        values = [ev[n].get(key) or 0 for n in names]
        ax.bar([f"{n}\n({ev[n].get('vocab_size')} tokens)" for n in names], values, color=["#228833", "#bbbbbb"])
        ax.set_title(label, fontsize=9)
        for i, v in enumerate(values):
            ax.text(i, v, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
    axes[1].axhline(0.95, color="#cc3311", lw=1, ls="--")
    return _save(fig, path)
