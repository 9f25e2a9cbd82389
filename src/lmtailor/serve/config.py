"""Configuration of `lmtailor serve` (the server) and of the recipe's `serve` stage, which writes a ready-to-run
server configuration instead of blocking the build. Torch-free, so `--help` and recipe validation load nothing heavy.

`ServeOptions` are the server's settings, defined once: the `lmtailor serve` command takes one option per field, the
`serve` stage's config is the same fields plus an output folder (`ServeConfig`), and the folder it writes
(`serve.json`) is read back by `lmtailor serve FOLDER`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from lmtailor.config import Settings, StageConfig, positional
from lmtailor.errors import ConfigError

SERVE_FILE = "serve.json"
# A served model's name: what a request's "model" field may say. Letters, digits, dot, dash, underscore only, so a
# name can never be a path.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class ServeOptions(Settings):
    """The server's settings: address, processes, batching and the limits every request is checked against."""

    host: str = Field("127.0.0.1", description="Address to listen on; 0.0.0.0 exposes the server to the network.")
    port: int = Field(8080, ge=0, le=65535, description="TCP port (0: any free port, printed at start).")
    workers: int = Field(1, ge=1, le=64, description="Server processes, each with its own copy of the models; the "
                         "supervisor restarts one that dies.")  # fmt: skip
    threads: int | None = Field(
        None, ge=1, description="Inference threads per worker (default: the usable physical cores divided among the "
        "workers)."
    )  # fmt: skip
    provider: Literal["cpu", "cuda", "tensorrt"] = Field(
        "cpu", description="ONNX Runtime execution provider for ONNX models (cuda/tensorrt need onnxruntime-gpu)."
    )
    max_batch: int = Field(32, ge=1, le=1024, description="Most texts in one inference; concurrent requests are "
                           "grouped up to it.")  # fmt: skip
    forward_batch: int = Field(
        8, ge=1, le=1024, description="Texts (or windows) per forward pass: a batch is sorted by length and cut into "
        "pieces this size, so one long text does not pad many short ones."
    )  # fmt: skip
    max_wait_ms: float = Field(
        5.0, ge=0, le=1000, description="How long the first request of a batch waits for others to join it."
    )
    max_queue: int = Field(
        512, ge=1, description="Most texts waiting per model; beyond it a request gets 503 with Retry-After."
    )
    max_texts: int = Field(64, ge=1, description="Most texts in one request.")
    max_chars: int = Field(20_000, ge=1, description="Most characters in one text (longer texts get a 413).")
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="Largest request body in bytes.")
    timeout_s: float = Field(
        30.0, gt=0, description="Longest a request may wait for its answer before a 504 (it is then dropped)."
    )
    top_k: int = Field(3, ge=1, description="Labels with scores returned per text by /v1/classify, unless asked.")
    api_key_file: Path | None = Field(
        None, description="File holding a bearer token; when set, every /v1 route needs `Authorization: Bearer "
        "<token>` (/health and /metrics stay open)."
    )  # fmt: skip
    graceful_s: float = Field(
        30.0, ge=0, description="On SIGTERM/Ctrl-C, how long in-flight requests may take to finish."
    )

    @model_validator(mode="after")
    def _queue_holds_a_request(self) -> ServeOptions:
        if self.max_queue < self.max_texts:
            raise ValueError(f"max_queue {self.max_queue} is below max_texts {self.max_texts}: a full request could "
                             "never be queued; raise max_queue")  # fmt: skip
        return self


class ServeCommand(ServeOptions):
    """`lmtailor serve MODEL...`: the models and the server's settings (its options are these fields)."""

    models: list[str] = Field(
        min_length=1,
        description="Model folders to serve: task folders (PyTorch or ONNX; classification or NER) and encoder "
        "folders (embeddings); `name=folder` names one (default: the folder's name).",
        json_schema_extra=positional(),
    )
    names: list[str] = Field(
        default_factory=list, description="Names for the models, in their order (default: each folder's name)."
    )

    def options(self) -> ServeOptions:
        """The server's settings alone (without the models)."""
        return ServeOptions(**{k: getattr(self, k) for k in ServeOptions.model_fields})

    def specs(self) -> dict[str, Path]:
        """{name: folder} of the models to serve."""
        if self.names and len(self.names) != len(self.models):
            raise ConfigError(f"serve: {len(self.names)} names for {len(self.models)} models; give one name per model.")
        entries = [f"{n}={m}" for n, m in zip(self.names, self.models, strict=True)] if self.names else self.models
        return model_specs(entries)


class ServeConfig(StageConfig, ServeCommand):
    """The `serve` stage of a recipe: checks the models load and writes `serve.json` and `serve.sh` for them."""

    stage: ClassVar[str] = "serve"


def model_specs(models: list[str]) -> dict[str, Path]:
    """{name: folder} from `name=folder` or `folder` entries; a ConfigError for a bad or repeated name."""
    specs: dict[str, Path] = {}
    for entry in models:
        name, sep, folder = entry.partition("=")
        if not sep or not NAME.fullmatch(name):
            name, folder = Path(entry).name, entry
        if not NAME.fullmatch(name):
            raise ConfigError(
                f"model {entry!r}: cannot make a name from {name!r}; give one as name=folder (letters, digits, "
                "'.', '-', '_')."
            )
        if name in specs:
            raise ConfigError(f"two models are called {name!r} ({specs[name]} and {folder}); name one as name=folder.")
        specs[name] = Path(folder)
    return specs
