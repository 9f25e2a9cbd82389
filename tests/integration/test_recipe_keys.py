"""The shipped recipes keep their stage keys across the one-definition-per-stage refactor: the keys below were
computed at 2fb54ae (before it) with the data beside the checkout, so no finished stage of an existing build reruns
because the CLI, the configs' homes or the registry changed. A key here changes only when a recipe or the data does;
then recompute them with the loop in `_keys` and say why in the commit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lmtailor.recipe import load_recipe, stage_key

REPO = Path(__file__).resolve().parents[2]
KEYS_AT_2FB54AE = {
    "legal-en": {
        "bench": "24533165e1900ccae0f4",
        "corpus": "9b7896b484ffdb2b093d",
        "int8": "f005dc3109bba00183a5",
        "onnx": "57f5894b6a233c723032",
        "pruned": "39b8633abe4461010004",
        "report": "b46bc8fdfba636c98963",
        "student": "17f953d61108d867d069",
        "teacher": "d9783517c7d525425f54",
        "teacher_int8": "8996043da752c74c5340",
        "teacher_onnx": "c6b7f0f400565157b888",
        "terms": "91748d33d854a0053f64",
        "terms_mined": "b3a429e292a0b77465e4",
        "tokenizer": "c040175161a598f195c6",
        "tokenizer_eval": "ace77faa82113d0703e8",
        "trimmed": "ae83663900dccc4881f4",
    },
    "legal-zh": {
        "classifier": "56034eb2d1dfd9ebb953",
        "corpus": "bacf98cc3d199f19bad0",
        "mlm": "5bfb5452346be0edc74d",
        "report": "62d1f1dd80a2e1975159",
        "task_corpus": "3cd9320e76a0da4a08cd",
        "task_mlm": "a0d545c35e74278b777e",
        "terms": "949a2d4f818631bfd7b1",
        "terms_mined": "35f1785b3ef940a6fb6f",
        "tokenizer": "3ec9bf5072c744bc9386",
        "tokenizer_eval": "3ee67199d1e3fe9d337b",
        "transfer": "5518972e6cc2a5e200de",
    },
    "med-en": {
        "bench": "e28d9d3c26352a050815",
        "corpus": "f6e403fa861a6fc9375f",
        "int8": "9b953e57ef9e5441550c",
        "onnx": "42159f7566df4f7e7b0f",
        "pruned": "52be45f6bc6c5b43ea85",
        "report": "ca40d4b5cae74618e76c",
        "student": "c9df19361794fea5c0ca",
        "teacher": "5576d1cf49587b2a2bb5",
        "tokenizer": "ceda8a2c4ce07f8407a9",
        "tokenizer_eval": "46d8467cbc8f77a70e37",
        "trimmed": "22fbe553fce1824bb91b",
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
    recipe = load_recipe(path)
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
    assert _keys(REPO / "recipes" / f"{name}.yaml") == KEYS_AT_2FB54AE[name]
