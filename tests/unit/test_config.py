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


def test_a_flat_file_of_the_stage_fields_is_used_and_a_file_without_the_section_is_an_error(tmp_path: Path):
    flat = tmp_path / "flat.yaml"
    flat.write_text("vocab_size: 3000\nmax_token_length: 1\n")
    cfg = load_config(TokenizerTrainConfig, flat, section="tokenizer_train", inputs=["a"], out_dir="o")
    assert (cfg.vocab_size, cfg.max_token_length) == (3000, 1)  # once silently ignored: a flat file had no section
    other = tmp_path / "other.yaml"
    other.write_text("corpus:\n  unit: sentence\n")
    with pytest.raises(ConfigError, match=r"no `tokenizer_train:` section.*corpus"):
        load_config(TokenizerTrainConfig, other, section="tokenizer_train", inputs=["a"], out_dir="o")


def test_a_character_level_tokenizer_must_be_bpe():
    assert TokenizerTrainConfig.build(inputs=["a"], out_dir="o", max_token_length=1).algorithm == "bpe"
    with pytest.raises(ConfigError, match=r"character-level tokenizer\) needs algorithm bpe"):
        TokenizerTrainConfig.build(inputs=["a"], out_dir="o", max_token_length=1, algorithm="wordpiece")
