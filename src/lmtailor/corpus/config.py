"""`CorpusConfig`: every knob of the corpus stage, validated, with descriptions that double as CLI help."""

from __future__ import annotations

import codecs
import math
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from lmtailor.config import StageConfig, cli_flags, mapping_from_text, positional
from lmtailor.corpus.readers import ReadOptions

SPLITS: tuple[str, str, str] = ("train", "dev", "test")


class CorpusConfig(StageConfig):
    """Configuration of Stage 1, `lmtailor corpus`: raw documents in, clean de-duplicated split corpus out."""

    stage: ClassVar[str] = "corpus"

    inputs: list[Path] = Field(
        default_factory=list,
        description="Files or folders to read (folders recursively, in sorted order): .txt, .md, .jsonl, .csv.",
        json_schema_extra=positional(),
    )
    ner_inputs: list[Path] = Field(
        default_factory=list,
        description="Labelled NER files (IOB columns, or CMeEE-style span JSON) whose sentences are read as "
        "documents, one per sentence; the labels are ignored. Use a task's train split only.",
        json_schema_extra=cli_flags("--ner"),
    )
    text_field: str = Field("text", description="Field of each .jsonl line that holds the document text.")
    id_field: str | None = Field(
        None, description="Field (.jsonl) or column (.csv) with a document id; default: the line number is used."
    )
    csv_column: str = Field("text", description="Column of .csv files that holds the document text.")
    encoding: str | None = Field(
        None, description="Force this text encoding for every file (e.g. cp1252) instead of detecting it per file."
    )
    strip_markdown: Literal["auto"] | bool = Field(
        "auto",
        description="Remove Markdown markup (front matter, headings, links, tags): auto = for .md files only.",
    )
    nfkc: bool = Field(True, description="Apply Unicode NFKC normalisation (full-width ASCII becomes half-width).")
    unit: Literal["paragraph", "sentence"] = Field(
        "paragraph", description="What one output record is: a paragraph (cut at sentences if long) or a sentence."
    )
    max_chars: int = Field(2000, ge=16, description="Longest record; longer paragraphs are cut at sentence ends.")
    min_chars: int = Field(1, ge=1, description="Shortest record kept; shorter records are dropped and counted.")
    dedup_exact: bool = Field(True, description="Drop records whose normalised text was already written.")
    near_dup_threshold: float | None = Field(
        0.8,
        description="Jaccard similarity (MinHash) above which a document is dropped as a near-duplicate of an "
        "earlier one; 0 or null disables near-duplicate removal.",
    )
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations (more: more exact, slower).")
    split_ratios: list[float] = Field(
        [0.9, 0.05, 0.05], description="Shares of documents for train, dev and test; must sum to 1 (zeros allowed)."
    )
    shard_records: int = Field(100_000, ge=1, description="Records per output shard file part-NNNNN.jsonl.")
    workers: int = Field(
        1, ge=1, le=256, description="Processes that read, clean and hash documents (a file each at a time); with "
        "--engine datatrove, its tasks. The output is the same whatever the number. 1: all in this process."
    )  # fmt: skip
    engine: Literal["local", "datatrove"] = Field(
        "local", description="local: this process and --workers processes on this machine, de-duplication state "
        "in memory. datatrove: the same stage as datatrove pipelines (--workers tasks), every piece of state on "
        "disk under --staging, so memory stays bounded at any corpus size; the same output either way."
    )  # fmt: skip
    executor: Literal["local", "slurm"] = Field(
        "local", description="With --engine datatrove: run its tasks on this machine, or as Slurm job arrays "
        "(give executor_options partition and time; --staging must then be on a disk every node sees)."
    )  # fmt: skip
    executor_options: dict[str, Any] = Field(
        default_factory=dict, description="Extra arguments of datatrove's executor, as JSON or YAML (Slurm: "
        "partition, time, cpus_per_task, mem_per_cpu_gb, qos, venv_path, sbatch_args ...)."
    )  # fmt: skip
    staging: Path | None = Field(
        None, description="With --engine datatrove: the folder for its intermediate files (default: .NAME.engine "
        "beside --out). Kept if the run fails, so a rerun resumes the finished tasks; removed after success."
    )  # fmt: skip

    @model_validator(mode="before")
    @classmethod
    def _options_from_text(cls, values):
        """`--executor-options '{partition: cpu, time: "2:00:00"}'` on the command line: parsed into the dict."""
        return mapping_from_text(values, "executor_options")

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return codecs.lookup(value).name
        except LookupError:
            msg = f"unknown encoding {value!r}; use a Python codec name such as utf-8, gb18030, cp1252"
            raise ValueError(msg) from None

    @field_validator("near_dup_threshold")
    @classmethod
    def _threshold_range(cls, value: float | None) -> float | None:
        if value is None or value == 0:
            return None  # 0 and None both mean "off"; keep one spelling downstream
        if not 0 < value <= 1:
            raise ValueError("must be in (0, 1], or 0/null to disable near-duplicate removal")
        return value

    @field_validator("split_ratios")
    @classmethod
    def _ratios_sum_to_one(cls, value: list[float]) -> list[float]:
        if len(value) != len(SPLITS):
            raise ValueError(f"give exactly {len(SPLITS)} shares, for {', '.join(SPLITS)}")
        if any(r < 0 for r in value):
            raise ValueError("shares must be >= 0")
        if not math.isclose(sum(value), 1.0, abs_tol=1e-6):
            raise ValueError(f"shares must sum to 1, they sum to {sum(value):g}")
        return value

    @model_validator(mode="after")
    def _slurm_needs_a_partition(self) -> CorpusConfig:
        if self.executor == "slurm":
            if self.engine != "datatrove":
                raise ValueError("--executor slurm runs the datatrove engine: add --engine datatrove")
            missing = [k for k in ("partition", "time") if k not in self.executor_options]
            if missing:
                raise ValueError(
                    f"--executor slurm needs executor_options {' and '.join(missing)} (the Slurm partition and a time "
                    "limit per task), e.g. --executor-options '{partition: cpu, time: \"2:00:00\"}'"
                )
        return self

    @model_validator(mode="after")
    def _something_to_read(self) -> CorpusConfig:
        if not self.inputs and not self.ner_inputs:
            raise ValueError("give at least one input: documents (inputs) or labelled NER files (ner_inputs)")
        return self

    def read_options(self) -> ReadOptions:
        """The subset of this config that the file readers need."""
        return ReadOptions(
            text_field=self.text_field, id_field=self.id_field, csv_column=self.csv_column, encoding=self.encoding
        )
