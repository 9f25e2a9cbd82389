"""Run `run_pretrain` from a JSON config file (argv[1]): the SIGKILL and torchrun tests start it as a subprocess."""

import json
import sys

from lmtailor.train.pretrain import PretrainConfig, run_pretrain

if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        run_pretrain(PretrainConfig(**json.load(fh)))
