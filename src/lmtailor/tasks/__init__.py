"""Downstream tasks: reading labelled task data (`readers`) and scoring predictions (`metrics`).

Only the readers are imported here; `lmtailor.tasks.metrics` pulls in scikit-learn and seqeval, so import it
where it is needed.
"""

from lmtailor.tasks.readers import (
    ClsExample,
    NerExample,
    TaskData,
    check_splits,
    entity_spans,
    read_cls,
    read_ner,
    resolve_nested,
    tags_from_spans,
)

__all__ = [
    "ClsExample",
    "NerExample",
    "TaskData",
    "check_splits",
    "entity_spans",
    "read_cls",
    "read_ner",
    "resolve_nested",
    "tags_from_spans",
]
