"""The text pipeline every lmtailor tokenizer shares: normaliser, pre-tokeniser, decoder, post-processor.

Design (SentencePiece/Llama style, expressed with HF `tokenizers` parts so the result is a plain tokenizer.json):
- Normaliser: NFKC, optional lowercasing, every whitespace run becomes one "▁". Spaces are kept as "▁" inside the
  normalised text (not removed by the pre-tokeniser) so that decoding is lossless and protected multi-word terms
  ("force majeure") can be matched as "▁force▁majeure".
- Pre-tokeniser: splits into Han runs, Latin words (with their leading "▁"), single digits, single punctuation marks
  and lone "▁". Chinese has no spaces, so a Han run between punctuation is one pre-token and the model learns which
  characters merge; digits are split one by one so numbers do not eat the vocabulary (as in Llama).
- No continuation prefix ("##"): a Chinese word gets the same token wherever it sits in a run.
- Byte fallback for BPE and Unigram: characters outside the kept alphabet become <0xNN> byte tokens, never [UNK].
  HF's WordPiece model has no byte fallback, so lmtailor's WordPiece runs on a byte-level alphabet (256 symbols,
  like GPT-2); every input is representable, at the price of spending merges on multi-byte (e.g. CJK) characters.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors

SPACE = "▁"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
BYTE_TOKENS = [f"<0x{i:02X}>" for i in range(256)]

# Order matters: Han runs first, then non-Han letters (Oniguruma class intersection), digits, anything else.
PRE_TOKENIZE_PATTERN = (
    r"\p{Han}+"
    r"|▁?[[\p{L}\p{M}]&&[^\p{Han}]]+"
    r"|▁?\p{N}"
    r"|▁?[^▁\p{L}\p{M}\p{N}]"
    r"|▁"
)


def build_normalizer(lowercase: bool) -> normalizers.Normalizer:
    """NFKC (+ lowercase), whitespace runs → "▁". No prepended "▁": a prepend would also be applied to added tokens."""
    steps = [normalizers.NFKC()]
    if lowercase:
        steps.append(normalizers.Lowercase())
    steps.append(normalizers.Replace(Regex(r"\s+"), SPACE))
    return normalizers.Sequence(steps)


_WHITESPACE = re.compile(r"\s+")


def normalize_text(text: str, lowercase: bool) -> str:
    """The same text `build_normalizer` produces, computed in Python for bulk training text.

    Calling the Rust normaliser once per record costs ~60 µs of call overhead each (it dominated training time);
    these C-implemented steps give the identical string (a unit test holds the two together).
    """
    text = unicodedata.normalize("NFKC", text)
    if lowercase:
        # HF lowercases character by character; Python's lower() alone would give a word-final sigma "ς".
        text = text.replace("Σ", "σ").lower()
    return _WHITESPACE.sub(SPACE, text)


def build_pre_tokenizer(byte_level: bool) -> pre_tokenizers.PreTokenizer:
    """Split as described in the module docstring; the first word of a text gets its "▁" like any other word."""
    steps = [
        # Adds the "▁" a text's first word would have had after a space; no splitting on "▁" here.
        pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="first", split=False),
        pre_tokenizers.Split(Regex(PRE_TOKENIZE_PATTERN), behavior="isolated"),
    ]
    if byte_level:
        steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False))
    return pre_tokenizers.Sequence(steps)


def build_decoder(byte_level: bool) -> decoders.Decoder:
    """Undo the pipeline: bytes back to text, "▁" back to spaces, and drop the one space the prepend added."""
    steps = [decoders.ByteLevel()] if byte_level else [decoders.ByteFallback()]
    return decoders.Sequence([*steps, decoders.Fuse(), decoders.Replace(SPACE, " "), decoders.Strip(" ", 1, 0)])


def build_post_processor(tokenizer: Tokenizer) -> processors.PostProcessor:
    """BERT-style [CLS] A [SEP] (B [SEP]) so the folder is a drop-in tokenizer for BERT-family models."""
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    return processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )


@functools.cache
def _byte_map() -> dict[int, str]:
    # The GPT-2 byte → printable character table, the one HF's ByteLevel pre-tokeniser uses.
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    extra = (b for b in range(256) if b not in table)
    for n, b in enumerate(extra):
        table[b] = chr(256 + n)
    return table


def to_byte_level(text: str) -> str:
    """The byte-level (GPT-2 alphabet) spelling of `text`, as the byte-level WordPiece vocabulary stores it."""
    table = _byte_map()
    return "".join(table[b] for b in text.encode("utf-8"))


@functools.cache
def _byte_unmap() -> dict[str, int]:
    return {c: b for b, c in _byte_map().items()}


def from_byte_level(token: str) -> str | None:
    """The text a byte-level token spells (inverse of `to_byte_level`); None when it is not whole UTF-8 (a piece
    of a multi-byte character) or not in the byte alphabet."""
    inverse = _byte_unmap()
    try:
        return bytes(inverse[c] for c in token).decode("utf-8")
    except (KeyError, UnicodeDecodeError):
        return None
