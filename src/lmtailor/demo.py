"""`make demo`: every stage that exists, run on a built-in default corpus that needs no download.

The default corpus is real legal text present on any machine after setup: the licence files shipped inside the
installed Python packages (`*.dist-info/LICENSE*`, `COPYING*`, `licenses/*`) plus `/usr/share/common-licenses`.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import site
import sys
import sysconfig
from pathlib import Path

from lmtailor.errors import EmptyInputError

log = logging.getLogger(__name__)
LICENSE_PATTERNS = ("LICENSE*", "LICENCE*", "COPYING*", "licenses/*", "NOTICE*")
COMMON_LICENSES = Path("/usr/share/common-licenses")


def _site_dirs() -> list[Path]:
    dirs = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
    dirs.update(p for p in sys.path if p.endswith("site-packages"))
    return sorted(Path(d) for d in dirs if Path(d).is_dir())


def find_license_files() -> list[Path]:
    """Licence texts of installed packages and of the OS, in a stable order."""
    found: list[Path] = []
    for d in _site_dirs():
        for info in sorted(d.glob("*.dist-info")):
            for pattern in LICENSE_PATTERNS:
                found.extend(sorted(p for p in info.glob(pattern) if p.is_file()))
    if COMMON_LICENSES.is_dir():
        found.extend(sorted(p for p in COMMON_LICENSES.iterdir() if p.is_file()))
    return found


def collect_default_corpus(dest: Path) -> Path:
    """Copy each distinct licence text into `dest` as a .txt file named after its package; return `dest`."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    seen: set[str] = set()
    for path in find_license_files():
        data = path.read_bytes()
        digest = hashlib.blake2b(data, digest_size=8).hexdigest()
        if digest in seen or not data.strip():
            continue
        seen.add(digest)
        owner = path.parent.parent.name if path.parent.name == "licenses" else path.parent.name
        name = f"{owner.removesuffix('.dist-info')}__{path.name}".replace("/", "_")
        (dest / f"{Path(name).stem}.txt").write_bytes(data)
    if not seen:
        raise EmptyInputError("no licence files found in site-packages or /usr/share/common-licenses for the demo.")
    log.info("default corpus: %d distinct licence texts in %s", len(seen), dest)
    return dest


def run_demo(out: Path, show_progress: bool = True) -> dict[str, Path]:
    """Corpus → terms → tokenizer → evaluation, and MiniLM trimmed to the licence corpus; returns the output folders."""
    from lmtailor.corpus import CorpusConfig
    from lmtailor.corpus import run as run_corpus
    from lmtailor.terms import MergeConfig, MineConfig, run_merge, run_mine
    from lmtailor.tokenizer import TokenizerEvalConfig, TokenizerTrainConfig, run_eval, run_train
    from lmtailor.tokenizer.hf import default_reference
    from lmtailor.vocab import TrimConfig, run_trim

    out = Path(out)
    common = {"overwrite": True, "show_progress": show_progress}
    raw = collect_default_corpus(out / "default-corpus")
    corpus = run_corpus(
        CorpusConfig.build(inputs=[raw], out_dir=out / "corpus", split_ratios=[0.8, 0.1, 0.1], **common)
    )
    mined = run_mine(MineConfig.build(inputs=[corpus], out_dir=out / "terms-mined", max_terms=300, **common))
    terms = run_merge(MergeConfig.build(inputs=[mined / "terms.tsv"], out_dir=out / "terms", max_terms=200, **common))
    tok = run_train(
        TokenizerTrainConfig.build(
            inputs=[corpus], out_dir=out / "tokenizer", vocab_size=3000, terms=[terms / "terms.tsv"], **common
        )
    )
    ev = run_eval(
        TokenizerEvalConfig.build(
            tokenizer=tok, inputs=[corpus], split="test", out_dir=out / "tokenizer-eval", terms=[terms / "terms.tsv"],
            **common,
        )
    )  # fmt: skip
    trimmed = run_trim(
        TrimConfig.build(model=str(default_reference()), inputs=[corpus], out_dir=out / "minilm-trimmed", **common)
    )
    return {"corpus": corpus, "terms": terms, "tokenizer": tok, "evaluation": ev, "trimmed model": trimmed}
