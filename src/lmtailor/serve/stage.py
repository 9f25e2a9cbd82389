"""The `serve` stage of a recipe: the build's last step becomes a ready-to-run server, without blocking the build.

It loads each model once (so a model that cannot be served fails the build, not the first request), and writes
`serve.json` (the settings and the models' absolute folders, which `lmtailor serve FOLDER` reads), `serve.sh` (the
command, ready to run) and `models.json` (each model's card, as GET /v1/models will give it), which the report
links.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from lmtailor.outputs import stage_output, write_json
from lmtailor.serve.config import SERVE_FILE, ServeConfig
from lmtailor.serve.engine import load_model
from lmtailor.serve.server import resolve


def run(config: ServeConfig) -> Path:
    specs, _ = resolve(config)
    cards = [load_model(name, folder, config.provider).card for name, folder in specs.items()]
    options = config.options()
    with stage_output(config) as out:
        for name, folder in specs.items():
            out.add_input(f"model:{name}", folder)
        absolute = {name: str(folder.resolve()) for name, folder in specs.items()}
        write_json(out.dir / SERVE_FILE, {"options": options.model_dump(mode="json"), "models": absolute})
        write_json(out.dir / "models.json", {"object": "list", "data": cards})
        final = Path(config.out_dir).resolve()
        command = f"{shlex.quote(sys.executable)} -m lmtailor.cli serve {shlex.quote(str(final))}"
        (out.dir / "serve.sh").write_text(f"#!/bin/sh\n# lmtailor serve: {', '.join(specs)} on "
                                          f"http://{options.host}:{options.port}\nexec {command} \"$@\"\n",
                                          encoding="utf-8")  # fmt: skip
        (out.dir / "serve.sh").chmod(0o755)
        out.metrics.update({"command": f"lmtailor serve {final}", "url": f"http://{options.host}:{options.port}",
                            "models": {c["id"]: c["kind"] for c in cards}})  # fmt: skip
    return Path(config.out_dir)
