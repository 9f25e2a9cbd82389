"""The report stage: collect (`collect`), plot (`plots`), check the key metrics, write HTML + Markdown + JSON."""

from __future__ import annotations

import base64
import html
import logging
from pathlib import Path

from lmtailor.outputs import stage_output, write_json
from lmtailor.report import collect, plots
from lmtailor.report.config import ReportConfig

log = logging.getLogger(__name__)


def _pick_student(rows: list[collect.ModelRow], teacher, path: Path | None):
    if path is not None:
        match = [r for r in rows if r.path.resolve() == Path(path).resolve()]
        return match[0] if match else None
    scored = [r for r in rows if r.metric is not None and not r.stage.startswith("baseline")
              and (teacher is None or r.path != teacher.path)]  # fmt: skip
    return scored[-1] if scored else None


def _with_per_class(rows: list[collect.ModelRow], student, teacher):
    """The final model, or (a quantised model has no per-class table) the last model before it that has one, the
    teacher excepted (its scores are not the final model's)."""
    if student is None or student.per_class:
        return student
    before = rows[: next((i for i, r in enumerate(rows) if r.path == student.path), len(rows))]
    return next((r for r in reversed(before) if r.per_class and not (teacher and r.path == teacher.path)), None)


def key_metrics(config: ReportConfig, evals, teacher, student) -> list[dict]:
    """The product plan's bar and the stricter goals, each with the value, the threshold and pass/fail/n.a."""
    out = []

    def add(name: str, value, threshold: str, ok: bool | None, detail: str = "") -> None:
        out.append({"metric": name, "value": value, "threshold": threshold,
                    "status": "n/a" if ok is None else ("pass" if ok else "fail"), "detail": detail})  # fmt: skip

    result = evals[0]["results"]["tokenizer"] if evals else {}
    key, what = collect.coverage_key(result)
    cov, name = result.get(key), f"vocabulary coverage ({what})"
    add(name, cov, f"≥ {config.min_coverage:.0%}", None if cov is None else cov >= config.min_coverage)
    ratio = student.size_mb / teacher.size_mb if teacher and student and teacher.size_mb and student.size_mb else None
    add("compression (student size / teacher size)", None if ratio is None else round(ratio, 4),
        f"≤ 1/{1 / config.max_size_ratio:.0f}", None if ratio is None else ratio <= config.max_size_ratio,
        "" if ratio is None else f"{student.size_mb:.1f} vs {teacher.size_mb:.1f} MB (1/{1 / ratio:.1f})")  # fmt: skip
    drop = rel = None
    if teacher and student and teacher.metric is not None and student.metric is not None:
        drop = round((teacher.metric - student.metric) * 100, 2)
        rel = (teacher.metric - student.metric) / teacher.metric if teacher.metric else None
    add(f"task {teacher.metric_name if teacher else 'metric'} drop (relative)",
        None if rel is None else round(rel, 4), f"≤ {config.max_relative_drop:.0%}",
        None if rel is None else rel <= config.max_relative_drop,
        "" if drop is None else f"{teacher.metric:.4f} → {student.metric:.4f} ({-drop:+.2f} points)")  # fmt: skip
    add("stricter: drop in points", drop, f"≤ {config.strict_drop_points}",
        None if drop is None else drop <= config.strict_drop_points)  # fmt: skip
    speed = (student.throughput / teacher.throughput if teacher and student and teacher.throughput
             and student.throughput else None)  # fmt: skip
    add("stricter: throughput at batch 32 vs teacher", None if speed is None else round(speed, 2),
        f"≥ {config.strict_speedup}×", None if speed is None else speed >= config.strict_speedup)  # fmt: skip
    return out


def trim_rows(folders: list[collect.Folder]) -> list[dict]:
    """One key-metrics row per `vocab trim` among the inputs: the parameter cut it made, and its embedding table's
    against the product plan's "about 90% of the embedding parameters" (a claim it makes, shown, not a bar)."""
    rows = []
    for f in folders:
        m = f.manifest.get("metrics", {})
        if not f.stage.startswith("vocab-trim") or not m.get("parameters_before") or not m.get("parameters_after"):
            continue
        before, after = m["parameters_before"], m["parameters_after"]
        emb_before = before * m.get("embedding_share_before", 0)
        emb_after = after * m.get("embedding_share_after", 0)
        emb_cut = f"; embedding table {emb_after / emb_before - 1:+.1%}" if emb_before else ""
        rows.append({"metric": f"vocabulary trim ({f.name}): parameters kept", "value": round(after / before, 4),
                     "threshold": "plan: embedding ≈ −90%", "status": "n/a",
                     "detail": f"{before / 1e6:.2f} M → {after / 1e6:.2f} M ({after / before - 1:+.1%}){emb_cut}; "
                               f"{m.get('vocab_before', 0):,} → {m.get('vocab_after', 0):,} tokens; held-out "
                               f"<unk> {m.get('heldout_unk_original')} → {m.get('heldout_unk_trimmed')}"})  # fmt: skip
    return rows


def baseline_checks(config: ReportConfig, baseline, teacher, student) -> tuple[list[dict], list[str]]:
    """Key metrics "teacher/final model beats the baseline by ≥ N points" and, for each that fails or cannot be
    judged, a sentence in plain words for the report's head and the build's summary."""
    rows, verdicts = [], []
    need = config.min_gain_over_baseline
    for role, model in (("teacher", teacher), ("final model", student)):
        row = {"metric": f"{role} beats the baseline (points)", "value": None, "threshold": f"≥ {need:+g}",
               "status": "n/a", "detail": ""}  # fmt: skip
        rows.append(row)
        if model is None or model.metric is None:
            row["detail"] = f"no {role} with a test score"
            continue
        if baseline is None:
            row["detail"] = "no baseline in this build: add a `baseline` stage"
            verdicts.append(f"No baseline was built, so nothing shows that the {role} earns its cost; add a "
                            "`baseline` stage (TF-IDF + linear model, or a CRF for NER) to the recipe.")  # fmt: skip
            continue
        if baseline.metric is None or baseline.metric_name != model.metric_name:
            row["detail"] = (f"{role} scored by {model.metric_name}, baseline by {baseline.metric_name}: "
                             "give both the same `metric`")  # fmt: skip
            continue
        gain = round((model.metric - baseline.metric) * 100, 2)
        ok = gain >= need
        row.update(value=gain, status="pass" if ok else "fail",
                   detail=f"{model.metric:.4f} vs {baseline.metric:.4f} ({model.metric_name})")  # fmt: skip
        if not ok:
            size = f", {baseline.size_mb:g} MB" if baseline.size_mb else ""
            verdicts.append(
                f"The {role} ({model.name}, {model.metric_name} {model.metric:.4f}) does not beat the classical "
                f"baseline ({baseline.name}, {baseline.metric:.4f}{size}) by {need:g} point(s): "
                + ("on this task the baseline is as good or better. Improve the neural model (more or cleaner "
                   "data, a search on dev, a stronger teacher), or ship the baseline." if gain < 0 else
                   "the difference is within what a test set of this size moves by; the neural model has not "
                   "shown it is worth its cost.")
            )  # fmt: skip
    return rows, verdicts


def tokenizer_verdict(evals: list[dict]) -> str | None:
    """A sentence when the domain tokenizer is no better than the general one on held-out text: a corpus too small
    for a domain tokenizer to pay (the trimmed general vocabulary is then the better choice)."""
    if not evals:
        return None
    results = evals[0]["results"]
    mine, ref = results.get("tokenizer", {}), results.get("reference", {})
    key, what = collect.coverage_key(mine)
    fert = "tokens_per_han_char" if key == "han_char_coverage" else "tokens_per_word"
    if None in (mine.get(key), ref.get(key), mine.get(fert), ref.get(fert)):
        return None
    if mine[key] > ref[key] and mine[fert] < ref[fert]:
        return None
    return (f"The domain tokenizer is no better than the general one on the held-out text (coverage of {what}: "
            f"{mine[key]:.3f} vs {ref[key]:.3f}; {fert.replace('_', ' ')}: {mine[fert]:.3f} vs {ref[fert]:.3f}): "
            "the corpus is too small for a domain tokenizer to pay. Keep the general vocabulary, trimmed to the "
            "domain's tokens (`vocab trim`), or give the tokenizer more domain text.")  # fmt: skip


def _term_table(evals: list[dict], limit: int = 12) -> list[dict]:
    """Terms the general tokenizer breaks most often, tokenised by both tokenizers."""
    if not evals:
        return []
    ev = evals[0]
    broken = ev["results"].get("reference", {}).get("most_broken_terms") or {}
    try:
        from transformers import AutoTokenizer

        domain = AutoTokenizer.from_pretrained(ev["tokenizer_path"])
        general = AutoTokenizer.from_pretrained(ev["reference_path"])
    except (OSError, ValueError, KeyError) as exc:
        log.info("no term table: %s", exc)
        return []
    rows = []
    for term in list(broken)[:limit]:
        rows.append({"term": term, "domain": _pieces(domain, term), "general": _pieces(general, term),
                     "broken_occurrences": broken[term]})  # fmt: skip
    return rows


def _pieces(tokenizer, text: str) -> list[str]:
    """The text under each token: readable for byte-level vocabularies too (not "âĸģforegoing" or "##going")."""
    from lmtailor.tokenizer.report import token_pieces

    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return [p.strip() or p for p in token_pieces(text, offsets)]


def _img(path: Path | None, alt: str) -> str:
    if path is None:
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    text = html.escape(alt)
    return f'<figure><img alt="{text}" src="data:image/png;base64,{data}"><figcaption>{text}</figcaption></figure>'


def _per_class_table(teacher, student) -> list[dict]:
    """Per-class test F1 of the teacher and the final model, in the per-class figure's row order."""
    if not teacher or not teacher.per_class:
        return []
    theirs = student.per_class if student else {}
    return [{"n": i + 1, "class": c, "teacher": teacher.per_class[c], "student": theirs.get(c)}
            for i, c in enumerate(sorted(teacher.per_class))]  # fmt: skip


def _fmt(v, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.{digits}f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _ledger(rows, teacher) -> list[dict]:
    out = []
    for r in rows:
        drop = None
        if teacher and teacher.metric is not None and r.metric is not None:
            drop = round((teacher.metric - r.metric) * 100, 2)
        out.append({"model": r.name, "stage": r.stage, "params": r.params, "size_mb": r.size_mb, "p50_ms": r.p50_ms,
                    "throughput": r.throughput, "runtime": r.runtime, "metric": r.metric_name,
                    "test": r.metric, "drop_points": drop})  # fmt: skip
    return out


LEDGER_COLUMNS = [("model", "model"), ("stage", "stage"), ("params", "parameters"), ("size_mb", "MB on disk"),
                  ("p50_ms", "p50 ms (b1)"), ("throughput", "seq/s (b32)"), ("test", "test metric"),
                  ("drop_points", "drop vs teacher (points)")]  # fmt: skip

CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222}h1{margin-bottom:.2em}table{border-collapse:collapse;margin:1em 0;font-size:14px}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f3f3f3}td.num{text-align:right}
.pass{background:#d9f2d9}.fail{background:#f8d7d7}.na{color:#888}figure{margin:1em 0}img{max-width:100%}
figcaption{font-size:12px;color:#666}.tok{display:inline-block;border:1px solid #99b;border-radius:3px;
margin:1px;padding:0 3px;font-family:monospace;font-size:13px;background:#f4f6ff}.whole{background:#dff3df;
border-color:#7a7}.ex{margin:.6em 0}.muted{color:#666;font-size:13px}.warn{background:#f8d7d7;border:1px solid #c66;
padding:6px 10px;border-radius:4px}"""


def _tokens_html(tokens: list[str]) -> str:
    return "".join(f'<span class="tok">{html.escape(t)}</span>' for t in tokens)


def render_html(config: ReportConfig, data: dict, figures: dict[str, Path | None]) -> str:
    km = "".join(
        f'<tr class="{m["status"].replace("/", "")}"><td>{html.escape(m["metric"])}</td><td class="num">'
        f"{_fmt(m['value'])}</td><td>{html.escape(m['threshold'])}</td><td>{m['status']}</td>"
        f"<td>{html.escape(m['detail'])}</td></tr>"
        for m in data["key_metrics"]
    )
    head = "".join(f"<th>{label}</th>" for _, label in LEDGER_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"num" if k not in ("model", "stage") else ""}">{html.escape(_fmt(r[k]))}</td>'
                         for k, _ in LEDGER_COLUMNS) + "</tr>"
        for r in data["ledger"]
    )  # fmt: skip
    terms = "".join(
        f"<tr><td>{html.escape(t['term'])}</td><td>{_tokens_html(t['domain'])}</td><td>{_tokens_html(t['general'])}"
        f'</td><td class="num">{t["broken_occurrences"]}</td></tr>'
        for t in data["terms"]
    )
    per_class = "".join(
        f'<tr><td class="num">{r["n"]}</td><td>{html.escape(r["class"])}</td><td class="num">{_fmt(r["teacher"])}'
        f'</td><td class="num">{_fmt(r["student"])}</td></tr>'
        for r in data["per_class"]
    )
    examples = "".join(
        f'<div class="ex"><div class="muted">{html.escape(e["text"][:300])}</div><div>domain: '
        f"{_tokens_html(e['tokenizer'][:60])}</div><div>general: {_tokens_html(e['reference'][:60])}</div></div>"
        for e in data["examples"][:3]
    )
    sections = [
        f"<h1>{html.escape(config.title)}</h1>",
        f'<p class="muted">teacher: {html.escape(data["teacher"] or "–")}; final model: '
        f"{html.escape(data['student'] or '–')}; from {len(data['folders'])} output folders.</p>",
        "".join(f'<p class="warn">{html.escape(v)}</p>' for v in data.get("verdicts", [])),
        "<h2>Key metrics</h2><table><tr><th>metric</th><th>value</th><th>threshold</th><th>status</th><th>detail</th>"
        f"</tr>{km}</table>",
        f"<h2>Ledger: every model built</h2><table><tr>{head}</tr>{body}</table>",
        _img(figures.get("size_vs_metric"), "size against test metric"),
        _img(figures.get("latency"), "latency and throughput (lmtailor bench)"),
        "<h2>Training</h2>",
        _img(figures.get("loss"), "training loss curves"),
        _img(figures.get("per_class"), "per-class F1: teacher and final model"),
        (f"<details><summary>per-class test F1, {len(data['per_class'])} classes (the numbers of the figure's rows)"
         "</summary><table><tr><th>#</th><th>class</th><th>teacher</th><th>final model</th></tr>"
         f"{per_class}</table></details>") if per_class else "",
        _searches_html(data.get("searches", [])),
        _serving_html(data.get("serving", [])),
        _updates_html(data.get("updates", [])),
        "<h2>Tokenizer</h2>",
        _img(figures.get("tokenizer"), "tokens per word and coverage against the general tokenizer"),
        ("<h3>Domain terms: kept whole by the domain tokenizer, split by the general one</h3><table><tr><th>term</th>"
         f"<th>domain tokenizer</th><th>general tokenizer</th><th>broken occurrences</th></tr>{terms}</table>")
        if terms else "",
        f"<h3>Examples</h3>{examples}" if examples else "",
    ]  # fmt: skip
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(config.title)}</title>'
            f"<style>{CSS}</style></head><body>{''.join(sections)}</body></html>\n")  # fmt: skip


def _search_rows(search: dict) -> list[tuple[str, str, str, str, str]]:
    return [(str(t["trial"]) + (" (chosen)" if t.get("chosen") else ""),
             ", ".join(f"{k}={_fmt(v)}" for k, v in t["params"].items()), t["state"], _fmt(t.get("dev")),
             _fmt(t.get("minutes")))
            for t in search["trials"]]  # fmt: skip


def _search_head(s: dict) -> str:
    return (f"{s['name']}: {len(s['trials'])} trials in {s['minutes']:g} min, chosen on dev {s['metric']}: "
            + ", ".join(f"{k}={_fmt(v)}" for k, v in s["chosen"].items()))  # fmt: skip


def _searches_html(searches: list[dict]) -> str:
    parts = []
    for s in searches:
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                       for row in _search_rows(s))  # fmt: skip
        parts.append(
            f"<p>{html.escape(_search_head(s))}</p><table><tr><th>trial</th><th>settings</th>"
            f"<th>state</th><th>dev {html.escape(s['metric'])}</th><th>minutes</th></tr>{rows}</table>"
        )
    return "<h2>Search on dev</h2>" + "".join(parts) if parts else ""


def _serving_html(serving: list[dict]) -> str:
    items = "".join(
        f"<li><code>{html.escape(s['command'] or '')}</code> serves {html.escape(_models_text(s['models']))} on "
        f'{html.escape(s["url"] or "")} (<a href="{html.escape(_uri(s["script"]))}">serve.sh</a>; routes '
        "/v1/classify, /v1/entities, /v1/embeddings, /v1/tokenize, /v1/models, /health, /metrics, /docs)</li>"
        for s in serving
    )
    return f"<h2>Serving</h2><ul>{items}</ul>" if items else ""


def _update_lines(u: dict) -> list[str]:
    """The plain-words account of one update: its verdict, what it added, and each score before and after."""
    verdict = ("passed its regression checks" if u["passed"] else
               "FAILED its regression checks (" + "; ".join(u["failed_checks"]) + "), so the previous model "
               f"{u['previous']} stays the one served")  # fmt: skip
    lines = [f"{u['name']} ({u['minutes']:g} min) {verdict}; tolerance {_fmt(u['tolerance_points'])} points.",
             f"New terms added: {u['terms_added']} (integrity {_fmt(u['term_integrity'])}): "
             + ", ".join(u["term_examples"])]  # fmt: skip
    for name, row in u["scores"].items():
        lines.append(f"{name} {row.get('metric', '')}: {_fmt(row.get('before'))} → {_fmt(row.get('after'))} "
                     f"({_fmt(row.get('delta_points'), 2)} points)")  # fmt: skip
    for side in ("before", "after"):
        loss = u["mlm_loss"].get(side)
        if loss:
            lines.append(f"MLM loss {side}: old text {_fmt(loss['old_text'])}, new text {_fmt(loss['new_text'])}")
    return lines


def _updates_html(updates: list[dict]) -> str:
    items = "".join("<li>" + "<br>".join(html.escape(x) for x in _update_lines(u)) + "</li>" for u in updates)
    return f"<h2>Updates</h2><ul>{items}</ul>" if items else ""


def _uri(path: str) -> str:
    """A file: link to `path`, which may be relative (a build with `work: work/x` run from the recipe's folder)."""
    return Path(path).resolve().as_uri()


def _models_text(models: dict) -> str:
    return ", ".join(f"{name} ({kind})" for name, kind in models.items())


def render_markdown(config: ReportConfig, data: dict, figures: dict[str, Path | None]) -> str:
    lines = [
        f"# {config.title}",
        "",
        f"Teacher: {data['teacher'] or '–'}; final model: {data['student'] or '–'}.",
        "",
        *[f"> **{v}**\n" for v in data.get("verdicts", [])],
        "## Key metrics",
        "",
        "| metric | value | threshold | status | detail |",
        "|---|---:|---|---|---|",
    ]
    lines += [f"| {m['metric']} | {_fmt(m['value'])} | {m['threshold']} | {m['status']} | {m['detail']} |"
              for m in data["key_metrics"]]  # fmt: skip
    lines += ["", "## Ledger", "", "| " + " | ".join(label for _, label in LEDGER_COLUMNS) + " |",
              "|" + "---|" * len(LEDGER_COLUMNS)]  # fmt: skip
    lines += ["| " + " | ".join(_fmt(r[k]) for k, _ in LEDGER_COLUMNS) + " |" for r in data["ledger"]]
    if data["terms"]:
        lines += ["", "## Domain terms", "", "| term | domain tokenizer | general tokenizer |", "|---|---|---|"]
        lines += [f"| {t['term']} | {' · '.join(t['domain'])} | {' · '.join(t['general'])} |" for t in data["terms"]]
    if data["per_class"]:
        lines += ["", "## Per-class test F1", "", "| # | class | teacher | final model |", "|---:|---|---:|---:|"]
        lines += [f"| {r['n']} | {r['class']} | {_fmt(r['teacher'])} | {_fmt(r['student'])} |"
                  for r in data["per_class"]]  # fmt: skip
    for s in data.get("searches", []):
        lines += ["", "## Search on dev", "", _search_head(s), "", f"| trial | settings | state | dev {s['metric']} "
                  "| minutes |", "|---|---|---|---:|---:|"]  # fmt: skip
        lines += ["| " + " | ".join(row) + " |" for row in _search_rows(s)]
    for srv in data.get("serving", []):
        lines += ["", "## Serving", "", f"`{srv['command']}` serves {_models_text(srv['models'])} on {srv['url']} "
                  f"([serve.sh]({_uri(srv['script'])}))."]  # fmt: skip
    for u in data.get("updates", []):
        lines += ["", f"## Update: {u['name']}", ""] + [f"- {x}" for x in _update_lines(u)]
    lines += ["", "## Figures", ""]
    lines += [f"![{name}](plots/{p.name})" for name, p in figures.items() if p is not None]
    return "\n".join(lines) + "\n"


def _tokenizer_summary(evals: list[dict]) -> dict | None:
    if not evals:
        return None
    return {k: {m: v for m, v in r.items() if not isinstance(v, dict)} for k, r in evals[0]["results"].items()}


def run_report(config: ReportConfig) -> Path:
    folders = collect.discover(config.inputs)
    rows = collect.model_rows(folders)
    teacher = collect.pick_teacher(rows, config.teacher)
    student = _pick_student(rows, teacher, config.student)
    evals = collect.tokenizer_evals(folders)
    baseline = next((r for r in reversed(rows) if r.stage.startswith("baseline")), None)
    checks, verdicts = baseline_checks(config, baseline, teacher, student)
    if tok_verdict := tokenizer_verdict(evals):
        verdicts.append(tok_verdict)
    with stage_output(config) as out:
        for i, f in enumerate(folders):
            out.add_input(f"folder[{i}]", f.path, hash_content=False)
        plot_dir = out.dir / "plots"
        plot_dir.mkdir()
        per_class_student = _with_per_class(rows, student, teacher)
        figures = {
            "size_vs_metric": plots.size_vs_metric(rows, teacher, plot_dir / "size_vs_metric.png", baseline),
            "latency": plots.latency_bars(rows, plot_dir / "latency.png"),
            "loss": plots.loss_curves(collect.curves(folders), plot_dir / "loss.png"),
            "per_class": plots.per_class_f1(teacher, per_class_student, plot_dir / "per_class_f1.png"),
            "tokenizer": plots.tokenizer_bars(evals, plot_dir / "tokenizer.png"),
        }
        data = {
            "title": config.title,
            "teacher": str(teacher.path) if teacher else None,
            "student": str(student.path) if student else None,
            "folders": [{"name": f.name, "stage": f.stage, "path": str(f.path)} for f in folders],
            "key_metrics": key_metrics(config, evals, teacher, student) + trim_rows(folders) + checks,
            "verdicts": verdicts,
            "ledger": _ledger(rows, teacher),
            "terms": _term_table(evals),
            "per_class": _per_class_table(teacher, per_class_student),
            "examples": evals[0].get("examples", []) if evals else [],
            "tokenizer": _tokenizer_summary(evals),
            "searches": collect.searches(folders),
            "serving": collect.serving(folders),
            "updates": collect.updates(folders),
        }
        (out.dir / "report.html").write_text(render_html(config, data, figures), encoding="utf-8")
        (out.dir / "report.md").write_text(render_markdown(config, data, figures), encoding="utf-8")
        write_json(out.dir / "report.json", data)
        out.metrics.update({m["metric"]: m["status"] for m in data["key_metrics"]})
    log.info("report written to %s", Path(config.out_dir) / "report.html")
    return Path(config.out_dir)
