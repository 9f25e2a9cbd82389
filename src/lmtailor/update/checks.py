"""The regression report of `lmtailor update`: what the updated model scores against the model it replaces.

- scores: both models on the old dev and test sets (from the build record) and on any new test sets, by the model's
  own metric; the update fails when it loses more than `tolerance` points on an old set;
- terms: every added term is one token, alone and inside a sentence, and every old token kept its id;
- MLM loss on held-out old and new text, before and after. A task model has no MLM head, so both models get one
  fitted the same way on their frozen encoders (same texts, steps and seed) before scoring; the losses are then
  comparable between the two, not with other models. Losses are per masked token: the updated tokenizer makes a new
  term one token where the old made several, so the new-text loss is over slightly different predictions;
- size (parameters, weight bytes) and speed: examples/s at batch 32 on the first `speed_texts` examples of the old
  test set, the two models timed alternately (before, after, after, before, ...; the median of each), so that load
  on a shared machine hits both alike. Informational: it never fails an update.
"""

from __future__ import annotations

import logging
import statistics
from pathlib import Path

from lmtailor.errors import InputFormatError
from lmtailor.scripts import HAN_RE
from lmtailor.update.config import UpdateConfig
from lmtailor.update.record import BuiltModel

log = logging.getLogger(__name__)


def regression_report(config: UpdateConfig, built: BuiltModel, updated: Path, terms: list, mix: list[str],
                      old_held: list[str], new_held: list[str], scratch: Path) -> dict:  # fmt: skip
    failed: list[str] = []
    report: dict = {"model": str(Path(config.model).resolve()), "kind": built.kind, "task": built.task,
                    "tolerance_points": config.tolerance}  # fmt: skip
    report["terms"] = term_integrity(Path(config.model), updated, terms)
    if report["terms"]["integrity"] < 1.0:
        failed.append(f"new-term integrity {report['terms']['integrity']:.1%} (not 100%)")
    if not report["terms"]["old_ids_kept"]:
        failed.append("existing token ids changed")
    report["mlm_loss"] = mlm_losses(config, Path(config.model), updated, mix, old_held, new_held)
    if built.kind == "mlm":
        rise = report["mlm_loss"]["after"]["old_text"] - report["mlm_loss"]["before"]["old_text"]
        if rise > config.mlm_tolerance:
            failed.append(f"MLM loss on old text +{rise:.3f} nats (tolerance {config.mlm_tolerance})")
    else:
        report["scores"] = task_scores(config, built, updated, scratch)
        for name, row in report["scores"].items():
            if row["old_set"] and row["delta_points"] is not None and row["delta_points"] < -config.tolerance:
                failed.append(f"{name} {row['metric']} {row['delta_points']:+.2f} points (tolerance "
                              f"{config.tolerance})")  # fmt: skip
        speed = paired_speed(config, built, updated)
        if speed is not None:
            report["speed"] = speed
    report["size"] = sizes(Path(config.model), updated)
    report["passed"], report["failed_checks"] = not failed, failed
    return report


def term_integrity(old: Path, new: Path, terms: list[tuple[str, list[str]]]) -> dict:
    """Each added term one token (alone and in a sentence) and every old token at its old id."""
    from transformers import AutoTokenizer

    from lmtailor.tokenizer.hf import content_ids, is_uncased

    old_tok, new_tok = AutoTokenizer.from_pretrained(str(old)), AutoTokenizer.from_pretrained(str(new))
    old_vocab, new_vocab = old_tok.get_vocab(), new_tok.get_vocab()
    kept = all(new_vocab.get(tok) == i for tok, i in old_vocab.items())
    uncased = is_uncased(new_tok)
    whole, broken = 0, []
    for term, _ in terms:
        surface = term.lower() if uncased else term
        tid = new_vocab.get(surface)
        context = f"根据{term}的规定" if HAN_RE.search(term) else f"the {term} applies"
        ok = tid is not None and content_ids(new_tok, term) == [tid] and tid in content_ids(new_tok, context)
        whole += ok
        if not ok:
            broken.append(term)
    return {"added": len(terms), "one_token": whole, "integrity": whole / len(terms) if terms else 1.0,
            "not_one_token": broken[:20], "old_ids_kept": kept, "vocab_before": len(old_tok),
            "vocab_after": len(new_tok), "examples": {t: p for t, p in terms[:20]}}  # fmt: skip


def mlm_losses(config: UpdateConfig, old: Path, new: Path, mix: list[str], old_held: list[str],
               new_held: list[str]) -> dict:  # fmt: skip
    """MLM loss of both models on held-out old and new text (fixed masks; heads fitted alike where missing)."""
    from transformers import AutoTokenizer

    from lmtailor.models.loading import load_mlm
    from lmtailor.vocab.mlm import fit_mlm_head, mlm_loss

    out: dict = {"old_texts": len(old_held), "new_texts": len(new_held)}
    probe = mix[:4000]
    for name, folder in (("before", old), ("after", new)):
        model, new_head = load_mlm(str(folder))
        tok = AutoTokenizer.from_pretrained(str(folder))
        fitted = bool(new_head) and config.head_steps > 0
        if fitted:
            fit_mlm_head(model, tok, probe, steps=config.head_steps, batch=config.mlm_batch_size, seed=config.seed,
                         max_length=config.seq_len)  # fmt: skip
        out[name] = {"old_text": round(mlm_loss(model, tok, old_held, config.seed, max_length=config.seq_len), 4),
                     "new_text": round(mlm_loss(model, tok, new_held, config.seed, max_length=config.seq_len), 4),
                     "head": "fitted on the frozen encoder" if fitted else "the model's own"}  # fmt: skip
    return out


def task_scores(config: UpdateConfig, built: BuiltModel, updated: Path, scratch: Path) -> dict:
    """{set: before, after, delta in points, metric} on the old dev and test sets and on the new test sets."""
    from lmtailor.models.task_folder import load_task_model
    from lmtailor.tasks.evaluate import evaluate_split

    old_reader = built.reader()
    sets = [(n, Path(built.training[n]), old_reader, True) for n in ("dev", "test") if built.training.get(n)]
    sets += [(f"new:{Path(p).name}", Path(p), config, False) for p in config.test]
    rows: dict = {name: {"file": str(path), "old_set": is_old} for name, path, _, is_old in sets}
    for which, folder in (("before", Path(config.model)), ("after", updated)):
        model, tok, spec = load_task_model(folder)
        for name, path, reader, _ in sets:
            try:
                data = reader.read_for_model(built.task, path, model.config.label2id, folder)
            except InputFormatError as exc:  # a new test set with labels the old model never had
                log.info("%s: %s", which, exc)
                rows[name][which] = None
                continue
            out = scratch / which
            out.mkdir(parents=True, exist_ok=True)
            result = evaluate_split(model, tok, spec, data, out, name.replace(":", "_"))
            rows[name][which] = result["metric_value"]
            rows[name]["metric"] = result["metric"]
            rows[name][f"{which}_examples_per_second"] = result["throughput"].get("examples_per_second")
    for row in rows.values():
        before, after = row.get("before"), row.get("after")
        row["delta_points"] = round(100 * (after - before), 2) if before is not None and after is not None else None
    return rows


def paired_speed(config: UpdateConfig, built: BuiltModel, updated: Path, rounds: int = 3) -> dict | None:
    """examples/s at batch 32 of the old and the updated model on the same old examples, timed alternately."""
    from lmtailor.models.task_folder import load_task_model
    from lmtailor.tasks.align import encode_cls, encode_ner
    from lmtailor.tasks.inference import forward

    path = built.training.get("test") or built.training.get("dev")
    if not path:
        return None
    runs = {}
    for which, folder in (("before", Path(config.model)), ("after", updated)):
        model, tok, spec = load_task_model(folder)
        data = built.reader().read_for_model(built.task, Path(path), model.config.label2id, folder)
        examples = data.examples[: config.speed_texts]
        if spec.task == "cls":
            enc = encode_cls(tok, [ex.text for ex in examples], None, spec.max_length, spec.long_text, spec.stride)
        else:
            enc = encode_ner(tok, examples, None, spec.max_length, spec.stride)
        forward(model, enc.features[:32], 32)  # warm-up: first-call allocations are not the model's speed
        runs[which] = (model, enc.features, len(examples))
    seconds: dict[str, list[float]] = {"before": [], "after": []}
    for r in range(2 * rounds):
        which = ("before", "after", "after", "before")[r % 4]
        model, features, _ = runs[which]
        seconds[which].append(forward(model, features, 32)[1]["seconds"])
    n = runs["before"][2]
    rate = {w: round(n / statistics.median(s), 1) for w, s in seconds.items()}
    ratio = rate["after"] / rate["before"]
    return {"before_examples_per_second": rate["before"], "after_examples_per_second": rate["after"],
            "ratio": round(ratio, 3), "examples": n, "timings_each": rounds, "timed": "alternately",
            "within_noise": abs(ratio - 1) <= 0.2}  # fmt: skip


def sizes(old: Path, new: Path) -> dict:
    from lmtailor.models.folder import weight_files

    def weights(folder: Path) -> int:
        return sum(f.stat().st_size for f in weight_files(folder))

    b, a = weights(old), weights(new)
    return {"weight_bytes_before": b, "weight_bytes_after": a, "ratio": round(a / b, 4) if b else None}
