"""Precision choice: auto follows the hardware; impossible requests are refused with a clear message."""

from __future__ import annotations

import pytest
import torch

from lmtailor.errors import ConfigError
from lmtailor.train import precision as prec


def test_auto_on_cpu_follows_native_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: True)
    assert prec.resolve_precision("auto") == "bf16"
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: False)
    assert prec.resolve_precision("auto") == "fp32"


def test_auto_on_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert prec.resolve_precision("auto") == "fp16"
    with pytest.raises(ConfigError, match="no bf16"):
        prec.resolve_precision("bf16")


def test_fp16_needs_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="CUDA"):
        prec.resolve_precision("fp16")


def test_cpu_flags_are_read():
    assert isinstance(prec.cpu_has_native_bf16(), bool)
