"""`lmtailor update`: a built model brought up to date with new documents, checked against what it scored before.

The steps, each an existing stage run into a scratch folder beside the output (removed at the end):
1. `terms mine` on the new documents; the terms the model's tokenizer splits into several pieces are the new ones;
2. `vocab extend` with them (mean-of-pieces rows; every existing token keeps its id);
3. continued MLM (`pretrain --model`) on the new documents mixed with a replay sample of the old text, after an MLM
   head is fitted on the frozen encoder where the model has none (a task model, a sentence encoder);
4. the encoder goes back under the model's own task head, which is re-fitted (`finetune`) or the student
   re-distilled (`distill`) on the old and the new labelled data together, choosing the checkpoint on the old dev;
5. the regression report (`update.checks`): old and new models on the old dev and test sets and any new ones, new-term
   integrity, MLM loss on old and new held-out text, size and speed.
An update that loses more than `tolerance` points on an old set is written all the same, marked failed in its
record; `lmtailor serve` (and a recipe's serve stage) then keep serving the previous model (`current_model`).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
from pathlib import Path

from lmtailor.errors import ConfigError, EmptyInputError, InputFormatError, InputNotFoundError
from lmtailor.outputs import MANIFEST, stage_output, write_json
from lmtailor.scripts import HAN_RE, LATIN_RE
from lmtailor.update.config import UpdateConfig
from lmtailor.update.record import BuiltModel, read_built_model

log = logging.getLogger(__name__)


def _check_inputs(config: UpdateConfig) -> None:
    for path in [*config.documents, *config.test, *config.replay, *([config.train] if config.train else [])]:
        if not Path(path).exists():
            raise InputNotFoundError(f"update input {path} does not exist; check the path.")


def _han_share(texts: list[str], sample: int = 300) -> float:
    chars = "".join(texts[:sample])
    han, latin = len(HAN_RE.findall(chars)), len(LATIN_RE.findall(chars))
    return han / max(1, han + latin / 2)  # a Han character carries about what two letters do


def check_language(new: list[str], old: list[str], documents: list[Path], model: Path) -> None:
    """New documents in another script than the model's own text would teach it nothing it can use: an error."""
    new_zh, old_zh = _han_share(new), _han_share(old)
    if (new_zh > 0.5) != (old_zh > 0.5) and abs(new_zh - old_zh) > 0.4:
        lang = {True: "Chinese", False: "Latin-script (English)"}
        raise InputFormatError(
            f"the new documents ({', '.join(map(str, documents))}) are {lang[new_zh > 0.5]} text but {model} was "
            f"built on {lang[old_zh > 0.5]} text; update it with documents of its own language, or build a model "
            "for the new language."
        )


def _split_heldout(texts: list[str], n: int, seed: int) -> tuple[list[str], list[str]]:
    """(training texts, up to `n` held-out texts): every k-th text held out, so both cover the whole input."""
    if len(texts) < 2:
        return texts, texts
    k = max(2, len(texts) // n)
    held = texts[::k][:n]
    rest = [t for i, t in enumerate(texts) if i % k or i // k >= n]
    random.Random(seed).shuffle(rest)
    return rest, held


def _old_texts(config: UpdateConfig, built: BuiltModel) -> tuple[list[str], list[str]]:
    """The old text (replay source) and its held-out part: --replay, else the model's own train and dev texts."""
    from lmtailor.corpus.source import iter_texts

    if config.replay:
        return _split_heldout(list(iter_texts(config.replay)), config.heldout, config.seed)
    if built.kind == "mlm":
        raise ConfigError(f"{built.folder} is an MLM without labelled data: give --replay with its old corpus.")
    reader = built.reader()
    train = [ex.text for ex in reader.read_task(built.task, Path(built.training["train"])).examples]
    dev = built.training.get("dev")
    if dev:
        return train, [ex.text for ex in reader.read_task(built.task, Path(dev)).examples][: config.heldout]
    return _split_heldout(train, config.heldout, config.seed)


def run(config: UpdateConfig) -> Path:
    from lmtailor.corpus.source import iter_texts

    t0 = time.perf_counter()
    _check_inputs(config)
    built = read_built_model(config.model)
    if config.train and built.kind == "mlm":
        raise ConfigError(f"--train given, but {config.model} is an MLM, not a task model: there is no head to re-fit.")
    new_texts, new_held = _split_heldout(list(iter_texts(config.documents)), config.heldout, config.seed)
    old_texts, old_held = _old_texts(config, built)
    check_language(new_texts, old_texts, config.documents, config.model)
    final = Path(config.out_dir)
    scratch = final.with_name(f".{final.name}.work-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    seconds: dict[str, float] = {}
    try:
        with stage_output(config) as out:
            inputs = [("model", config.model), *[(f"documents[{i}]", p) for i, p in enumerate(config.documents)]]
            for name, path in inputs + ([("train", config.train)] if config.train else []):
                out.add_input(name, Path(path), hash_content=Path(path).is_file())
            steps = _Steps(config, built, scratch, seconds)
            terms = steps.new_terms()
            extended = steps.extend(terms, old_held)
            mix = steps.mlm_mix(new_texts, old_texts)
            encoder = steps.continue_mlm(extended, mix, terms)
            updated = steps.refit(extended, encoder) if built.kind != "mlm" else encoder
            from lmtailor.update.checks import regression_report

            t = time.perf_counter()
            report = regression_report(config, built, updated, terms, mix, old_held, new_held, scratch / "checks")
            seconds["checks"] = round(time.perf_counter() - t, 1)
            report["seconds"] = {**seconds, "total": round(time.perf_counter() - t0, 1)}
            _copy_model(updated, out.dir)
            if built.kind != "mlm":  # the joined training data stays with the model, so a later update can use it
                joined = Path(steps.training["train"])
                shutil.copy2(joined, out.dir / f"train{joined.suffix}")
                kept = final.resolve() / f"train{joined.suffix}"
                steps.training.update(train=str(kept), out_dir=str(final.resolve()))
            write_json(out.dir / "update_report.json", report)
            (out.dir / "new_terms.txt").write_text("".join(f"{t}\n" for t, _ in terms), encoding="utf-8")
            out.metrics.update({
                "kind": built.kind, "task": built.task, "previous": str(Path(config.model).resolve()),
                "passed": report["passed"], "failed_checks": report["failed_checks"],
                "terms_added": report["terms"]["added"], "scores": report.get("scores", {}),
                "mlm_loss": report["mlm_loss"], "seconds_by_step": report["seconds"],
                "training": steps.training,
            })  # fmt: skip
        verdict = "passed" if report["passed"] else "FAILED (" + "; ".join(report["failed_checks"]) + ")"
        log.info("update %s: %s", final, verdict)
        if not report["passed"]:
            log.warning("%s is written but marked failed: `lmtailor serve` keeps serving %s", final, config.model)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return final


def _copy_model(src: Path, dst: Path) -> None:
    """The updated model's files (its own stage record left out: the update's record replaces it)."""
    for item in sorted(src.iterdir()):
        if item.name == MANIFEST or item.name.startswith("."):
            continue
        (shutil.copytree if item.is_dir() else shutil.copy2)(item, dst / item.name)


class _Steps:
    """The update's steps; each runs an existing stage into `scratch` and returns what the next step needs."""

    def __init__(self, config: UpdateConfig, built: BuiltModel, scratch: Path, seconds: dict[str, float]) -> None:
        self.config, self.built, self.scratch, self.seconds = config, built, scratch, seconds
        self.training: dict = built.training

    def _timed(self, name: str, t: float) -> None:
        self.seconds[name] = round(time.perf_counter() - t, 1)

    def _common(self, out: str) -> dict:
        return {"out_dir": self.scratch / out, "seed": self.config.seed, "show_progress": self.config.show_progress}

    def new_terms(self) -> list[tuple[str, list[str]]]:
        """(term, the pieces the model's tokenizer cuts it into) for the mined terms that are not one token yet."""
        from transformers import AutoTokenizer

        from lmtailor.terms.config import MineConfig
        from lmtailor.terms.stage import run_mine
        from lmtailor.tokenizer.hf import content_ids

        if self.config.max_new_terms == 0:
            return []
        t = time.perf_counter()
        mine = MineConfig(inputs=self.config.documents, min_freq=self.config.min_term_freq,
                          max_terms=max(1000, 5 * self.config.max_new_terms), **self._common("terms"))  # fmt: skip
        try:
            run_mine(mine)
        except EmptyInputError as exc:
            log.warning("no terms mined from the new documents (%s); the vocabulary stays as it is", exc)
            self._timed("terms", t)
            return []
        tok = AutoTokenizer.from_pretrained(str(self.config.model))
        chosen: list[tuple[str, list[str]]] = []
        for line in (self.scratch / "terms" / "terms.tsv").read_text(encoding="utf-8").splitlines()[1:]:
            term, _score, freq, lang = line.split("\t")[:4]
            if int(freq) < self.config.min_term_freq or (lang == "en" and " " in term and not
                                                            self.config.multiword_terms):  # fmt: skip
                continue
            ids = content_ids(tok, term)
            if len(ids) >= 2 and tok.unk_token_id not in ids:
                chosen.append((term, tok.convert_ids_to_tokens(ids)))
            if len(chosen) == self.config.max_new_terms:
                break
        log.info("%d new terms (split into several pieces by %s's tokenizer)", len(chosen), self.config.model)
        self._timed("terms", t)
        return chosen

    def extend(self, terms: list[tuple[str, list[str]]], old_held: list[str]) -> Path:
        from lmtailor.vocab.config import ExtendConfig
        from lmtailor.vocab.extend import run_extend

        if not terms:
            return Path(self.config.model)
        t = time.perf_counter()
        (self.scratch / "new_terms.txt").write_text("".join(f"{term}\n" for term, _ in terms), encoding="utf-8")
        verify = self.scratch / "verify.jsonl"
        verify.write_text("".join(json.dumps({"text": x}, ensure_ascii=False) + "\n" for x in old_held[:50]),
                          encoding="utf-8")  # fmt: skip
        run_extend(ExtendConfig(model=str(self.config.model), terms=[self.scratch / "new_terms.txt"],
                                verify_inputs=[verify], verify_texts=50, **self._common("extended")))  # fmt: skip
        self._timed("extend", t)
        return self.scratch / "extended"

    def mlm_mix(self, new_texts: list[str], old_texts: list[str]) -> list[str]:
        """The continued-MLM texts: every new one, and `replay_ratio` old ones per new one (sampled, seeded)."""
        rng = random.Random(self.config.seed)
        k = min(len(old_texts), round(self.config.replay_ratio * len(new_texts)))
        mix = new_texts + rng.sample(old_texts, k)
        rng.shuffle(mix)
        log.info("continued MLM on %d new and %d old (replay) texts", len(new_texts), k)
        return mix

    def continue_mlm(self, extended: Path, mix: list[str], terms: list) -> Path:
        """An MLM of the extended model trained `mlm_steps` on the mix (its head fitted first if it had none)."""
        from transformers import AutoTokenizer

        from lmtailor.models.loading import load_mlm
        from lmtailor.train.config import PretrainConfig
        from lmtailor.train.pretrain import run_pretrain
        from lmtailor.vocab.mlm import fit_mlm_head

        c = self.config
        t = time.perf_counter()
        model, new_head = load_mlm(str(extended))
        tok = AutoTokenizer.from_pretrained(str(extended))
        if new_head and c.head_steps:
            curve = fit_mlm_head(model, tok, mix, steps=c.head_steps, batch=c.mlm_batch_size, seed=c.seed,
                                 max_length=c.seq_len)  # fmt: skip
            log.info("MLM head fitted on the frozen encoder: loss %.3f → %.3f", curve[0], curve[-1])
        init = self.scratch / "mlm_init"
        model.save_pretrained(str(init))
        tok.save_pretrained(str(init))
        self._timed("mlm_head", t)
        if c.mlm_steps == 0:
            return init
        t = time.perf_counter()
        data = self.scratch / "mix.jsonl"
        data.write_text("".join(json.dumps({"text": x}, ensure_ascii=False) + "\n" for x in mix), encoding="utf-8")
        glossary = [self.scratch / "new_terms.txt"] if terms else []
        run_pretrain(PretrainConfig(
            corpus=[data], model=str(init), terms=glossary, steps=c.mlm_steps, lr=c.mlm_lr, batch_size=c.mlm_batch_size,
            seq_len=c.seq_len, warmup=0.1, precision=c.precision, eval_split=None, save_every=max(c.mlm_steps, 1),
            **self._common("mlm"),
        ))  # fmt: skip
        self._timed("mlm", t)
        return self.scratch / "mlm"

    def refit(self, extended: Path, encoder: Path) -> Path:
        """The task model with the continued encoder under its own head, re-fitted (or re-distilled) on old + new
        labelled data."""
        from lmtailor.train.config import DistillConfig, FinetuneConfig

        c, built = self.config, self.built
        t = time.perf_counter()
        train = self._joined_train()
        merged = _merge_encoder(extended, encoder, self.scratch / "merged", train[1])
        settings = {**built.training, **self._common("refit"), "model": str(merged), "train": train[0],
                    "text_field": "text", "label_field": "label", "ner_format": "auto", "epochs": c.epochs,
                    "lr": c.lr, "precision": c.precision, "resume": False, "overwrite": False, "search_trials": 0,
                    "search_space": {}, "max_train_examples": None}  # fmt: skip
        if built.kind == "distill":
            settings["teacher"] = c.teacher or built.training["teacher"]
            cfg = DistillConfig.build(**settings)
            from lmtailor.train.distill import run_distill as run_fit
        else:
            cfg = FinetuneConfig.build(**settings)
            from lmtailor.train.finetune import run_finetune as run_fit
        self.training = cfg.model_dump(mode="json")
        run_fit(cfg)
        self._timed("refit", t)
        return self.scratch / "refit"

    def _joined_train(self) -> tuple[Path, list[str]]:
        """The old training file and the new one (if any) as one file, and the label names of the result."""
        from lmtailor.tasks.writers import write_examples

        built = self.built
        old = built.reader().read_task(built.task, Path(built.training["train"]))
        examples, labels = list(old.examples), set(old.labels)
        if self.config.train:
            new = self.config.read_task(built.task, self.config.train)
            if not new.examples:
                raise EmptyInputError(f"new training file {self.config.train} has no examples.")
            examples += new.examples
            labels |= set(new.labels)
            added = sorted(set(new.labels) - set(old.labels))
            if added:
                log.info("new labels in %s: %s (their head rows start untrained)", self.config.train, ", ".join(added))
        names = sorted(labels)
        if built.task == "ner":
            names = ["O"] + [f"{p}-{t}" for t in names for p in ("B", "I")]
        return write_examples(built.task, examples, self.scratch / "train_all"), names


def _merge_encoder(extended: Path, encoder: Path, dst: Path, names: list[str]) -> Path:
    """The extended task model with `encoder`'s base-model weights and its head's rows laid out for `names` (the
    labels of the joined training data, in finetune's order): a known label keeps its row, a new one starts small and
    random. Saved with the task model's tokenizer and task.json."""
    from transformers import AutoModelForMaskedLM

    from lmtailor.models.task_folder import TASK_FILE, load_task_model

    model, tok, _ = load_task_model(extended)
    mlm = AutoModelForMaskedLM.from_pretrained(str(encoder))
    missing, unexpected = model.base_model.load_state_dict(mlm.base_model.state_dict(), strict=False)
    if unexpected or any(not k.startswith("pooler.") for k in missing):
        raise InputFormatError(f"the continued encoder does not fit {extended}: missing {missing}, extra {unexpected}")
    _relabel(model, names)
    model.save_pretrained(str(dst))
    tok.save_pretrained(str(dst))
    if (extended / TASK_FILE).is_file():
        shutil.copy2(extended / TASK_FILE, dst / TASK_FILE)
    return dst


def _relabel(model, names: list[str]) -> None:
    """Lay the classifier's output rows out for `names`; a name the model had keeps its row."""
    import torch

    old = model.config.id2label
    if [old[i] for i in range(len(old))] == names:
        return
    head = model.classifier if not hasattr(model.classifier, "out_proj") else model.classifier.out_proj
    index = {name: i for i, name in old.items()}
    torch.manual_seed(0)
    weight = torch.randn(len(names), head.in_features) * 0.02
    bias = torch.zeros(len(names))
    with torch.no_grad():
        for row, name in enumerate(names):
            if name in index:
                weight[row], bias[row] = head.weight[index[name]], head.bias[index[name]]
    new = torch.nn.Linear(head.in_features, len(names))
    new.weight.data, new.bias.data = weight, bias
    if hasattr(model.classifier, "out_proj"):
        model.classifier.out_proj = new
    else:
        model.classifier = new
    model.num_labels = len(names)
    model.config.num_labels = len(names)
    model.config.id2label = dict(enumerate(names))
    model.config.label2id = {n: i for i, n in enumerate(names)}
