from pathlib import Path

import pytest

from lmtailor.config import load_config
from lmtailor.errors import ConfigError, InputNotFoundError
from lmtailor.tokenizer import TokenizerTrainConfig


def test_precedence_defaults_yaml_flags(tmp_path: Path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("tokenizer_train:\n  vocab_size: 5000\n  algorithm: unigram\n  inputs: [a]\n  out_dir: o\n")
    cfg = load_config(TokenizerTrainConfig, recipe, section="tokenizer_train", vocab_size=7000, lowercase=None)
    assert cfg.vocab_size == 7000  # flag beats YAML
    assert cfg.algorithm == "unigram"  # YAML beats default
    assert cfg.lowercase is True  # default; None means "flag not given"


def test_validation_error_names_field_value_and_accepted_values():
    with pytest.raises(ConfigError) as err:
        TokenizerTrainConfig.build(inputs=["a"], out_dir="o", algorithm="bytepair", vocab_size=10)
    msg = str(err.value)
    assert "algorithm = 'bytepair'" in msg and "'bpe', 'unigram' or 'wordpiece'" in msg
    assert "vocab_size = 10" in msg and "300" in msg


def test_unknown_field_is_rejected():
    with pytest.raises(ConfigError, match="vocab_sise"):
        TokenizerTrainConfig.build(inputs=["a"], out_dir="o", vocab_sise=8000)


def test_missing_or_broken_yaml(tmp_path: Path):
    with pytest.raises(InputNotFoundError):
        load_config(TokenizerTrainConfig, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(TokenizerTrainConfig, bad)
