"""Starting the server: checks before anything binds a port, then uvicorn with one or several worker processes.

With `--workers N` uvicorn's supervisor starts N processes on one listening socket and starts a new one when one
dies; each worker builds the app from the settings this process puts in its environment (`app_from_env`). SIGTERM
or Ctrl-C stops accepting, lets in-flight requests finish for up to `graceful_s`, then exits.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from lmtailor.errors import InputFormatError
from lmtailor.models.folder import check_model_folder, current_model
from lmtailor.serve.config import SERVE_FILE, ServeCommand, ServeOptions

log = logging.getLogger(__name__)


def resolve(command: ServeCommand) -> tuple[dict[str, Path], ServeOptions | None]:
    """{name: folder} of the models to serve, and the saved options when the one model given is a `serve` stage's
    folder (`lmtailor serve work/serve`); every folder is checked before the server starts."""
    models = command.models
    if len(models) == 1 and not command.names and (Path(models[0]) / SERVE_FILE).is_file():
        saved = json.loads((Path(models[0]) / SERVE_FILE).read_text(encoding="utf-8"))
        return {n: Path(p) for n, p in saved["models"].items()}, ServeOptions(**saved["options"])
    specs = {name: current_model(folder) for name, folder in command.specs().items()}  # a failed update: its previous
    for folder in specs.values():
        check_model_folder(folder)
        if not any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
            raise InputFormatError(f"model folder {folder} has no tokenizer; serve a folder an lmtailor stage wrote.")
    return specs, None


def serve(options: ServeOptions, specs: dict[str, Path]) -> None:
    """Run the server until it is stopped (SIGTERM, Ctrl-C)."""
    import uvicorn

    from lmtailor.serve.app import CONFIG_ENV, create_app, read_api_key
    from lmtailor.serve.metrics import MULTIPROC_ENV

    if options.api_key_file:
        read_api_key(options.api_key_file)  # a bad key file is an error now, not in every worker
    if options.host not in ("127.0.0.1", "localhost", "::1") and not options.api_key_file:
        log.warning("listening on %s without --api-key-file: anyone who can reach this port can use the models",
                    options.host)  # fmt: skip
    common = {"host": options.host, "port": options.port, "timeout_graceful_shutdown": options.graceful_s,
              "log_level": "info", "access_log": False}  # fmt: skip
    if options.workers == 1:
        uvicorn.run(create_app(options, specs), **common)
        return
    settings = {"options": options.model_dump(mode="json"), "models": {n: str(p) for n, p in specs.items()}}
    metrics_dir = tempfile.mkdtemp(prefix="lmtailor-metrics-")
    os.environ[CONFIG_ENV] = json.dumps(settings)
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        uvicorn.run("lmtailor.serve.app:app_from_env", factory=True, workers=options.workers, **common)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
