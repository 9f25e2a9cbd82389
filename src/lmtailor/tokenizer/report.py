"""The human side of `tokenizer eval`: a side-by-side table and example sentences tokenised by both tokenizers."""

from __future__ import annotations

from tokenizers import Tokenizer

from lmtailor.tokenizer.protect import TermMatcher

ROWS = [
    ("vocab_size", "vocabulary size", "{:,}"),
    ("whole_word_coverage", "whole-word coverage", "{:.2%}"),
    ("tokens_per_word", "tokens per word", "{:.3f}"),
    ("tokens_per_char", "tokens per character", "{:.3f}"),
    ("tokens_per_han_char", "tokens per Chinese character", "{:.3f}"),
    ("han_char_coverage", "Chinese characters in the vocabulary", "{:.2%}"),
    ("unk_rate", "[UNK] rate", "{:.4%}"),
    ("byte_fallback_rate", "byte-fallback rate", "{:.4%}"),
    ("term_integrity", "term integrity", "{:.2%}"),
    ("term_occurrences", "term occurrences", "{:,}"),
    ("words", "words measured", "{:,}"),
    ("han_chars", "Chinese characters measured", "{:,}"),
]


def _fmt(value: object, spec: str) -> str:
    return "n/a" if value is None else spec.format(value)


def table_rows(results: dict[str, dict]) -> list[list[str]]:
    """[label, tokenizer value, reference value] rows, in a fixed order."""
    names = list(results)
    return [[label] + [_fmt(results[n].get(key), spec) for n in names] for key, label, spec in ROWS]


def examples(tokenizers: dict[str, Tokenizer], sample: list[str], matcher: TermMatcher | None, n: int) -> list[dict]:
    """Up to `n` short sentences (those with glossary terms first), shown as the text pieces of each token."""
    if not n or not sample:
        return []
    candidates = [t for t in sample if 20 <= len(t) <= 240] or [t[:240] for t in sample]
    if matcher is not None:
        counts = [len(o) for o in matcher.find(candidates)]
        order = sorted(range(len(candidates)), key=lambda i: (-counts[i], i))
        candidates = [candidates[i] for i in order]
    out = []
    for text in candidates[:n]:
        row: dict = {"text": text, "counts": {}}
        for name, tok in tokenizers.items():
            enc = tok.encode(text, add_special_tokens=False)
            row[name] = token_pieces(text, enc.offsets)
            row["counts"][name] = len(enc.ids)
        out.append(row)
    return out


def token_pieces(text: str, offsets: list[tuple[int, int]]) -> list[str]:
    """The text each token stands for; tokens over the same characters (the byte-fallback tokens of one character,
    a leading "▁" marker) are shown as one piece, so a reader sees 逛 once, not once per UTF-8 byte."""
    spans: list[list[int]] = []
    for a, b in offsets:
        if spans and a < spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], b)
        else:
            spans.append([a, b])
    return [text[a:b] for a, b in spans]


def render_markdown(report: dict) -> str:
    results = report["results"]
    names = list(results)
    lines = [
        "# Tokenizer evaluation",
        "",
        f"- tokenizer: `{report['tokenizer_path']}`",
        f"- reference: `{report['reference_path']}`",
        f"- held-out split: `{report['split']}`; glossary terms: {report['glossary_terms']:,}",
        "",
        "| metric | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    for name in names:
        broken = results[name].get("most_broken_terms") or {}
        if broken:
            shown = ", ".join(f"{t} ({c})" for t, c in broken.items())
            lines += ["", f"Most often split terms ({name}): {shown}"]
    if report["examples"]:
        lines += ["", "## Examples", ""]
        for ex in report["examples"]:
            lines.append(f"> {ex['text']}")
            lines.append("")
            for name in names:
                count = ex.get("counts", {}).get(name, len(ex[name]))
                lines.append(f"- {name} ({count} tokens): " + " | ".join(p.strip() or "␣" for p in ex[name]))
            lines.append("")
    return "\n".join(lines) + "\n"
