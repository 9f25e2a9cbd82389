"""Protected terms: domain terms the tokenizer must always encode as exactly one token, wherever they occur.

Two mechanisms, chosen per term, because HF added tokens match anywhere (even inside a longer word):
- A term that is one Latin-script word ("indemnification") goes into the model's own vocabulary as "▁word" and
  "word"; the pre-tokeniser already cuts at word boundaries and the model maps an in-vocabulary word straight to its
  token (BPE `ignore_merges`, a top Unigram score, WordPiece's longest match), so "law" never matches in "lawyer".
- Every other term (Chinese 心肌梗死, multi-word "force majeure") becomes an HF added token in normalised form,
  matched leftmost-longest before pre-tokenisation: 急性心肌梗死 wins over 心肌梗死 when both are protected.
`TermMatcher` finds term occurrences in text with the same leftmost-longest rule, for splitting training text at
terms (so no merges are wasted on them) and for measuring term integrity.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from tokenizers import AddedToken, Tokenizer, models, normalizers

from lmtailor.scripts import HAN_RE as _HAN
from lmtailor.tokenizer.pipeline import SPACE

_LATIN_WORD = re.compile(r"[^\W\d_]+")


@dataclass
class ProtectedTerms:
    """Terms split by how they are protected, all in normalised form (NFKC, lowercased if asked, "▁" for spaces)."""

    vocab_words: list[str] = field(default_factory=list)  # single Latin words, without "▁"
    added: list[str] = field(default_factory=list)  # everything else, as added-token contents
    dropped: list[str] = field(default_factory=list)  # empty after normalisation

    @property
    def n_tokens(self) -> int:
        """Vocabulary slots the terms may need: two per vocabulary word ("▁w" and "w"), one per added token."""
        return 2 * len(self.vocab_words) + len(self.added)

    @classmethod
    def from_terms(cls, terms: Iterable[str], normalizer: normalizers.Normalizer) -> ProtectedTerms:
        out = cls()
        seen: set[str] = set()
        for term in terms:
            norm = normalizer.normalize_str(term.strip()).strip(SPACE)
            if not norm:
                out.dropped.append(term)
                continue
            if norm in seen:
                continue
            seen.add(norm)
            if _LATIN_WORD.fullmatch(norm) and not _HAN.search(norm):
                out.vocab_words.append(norm)
            else:
                out.added.append(norm)
        return out

    def added_tokens(self) -> list[AddedToken]:
        """Added tokens matched on the normalised text.

        A term that starts like a word also gets its "▁"-led form, so the space before it does not become a token of
        its own. Added tokens match anywhere, so the bare form of a term without Han characters must stand alone
        (`single_word`): "licenses granted" must not match inside "sublicenses granted". Han has no word
        boundaries to check (and Rust counts Han as alphanumeric), so a Han term matches wherever it occurs.
        """
        tokens = []
        for term in self.added:
            tokens.append(AddedToken(term, normalized=True, special=False, single_word=not _HAN.search(term)))
            if not _HAN.match(term):
                tokens.append(AddedToken(SPACE + term, normalized=True, special=False))
        return tokens


class TermMatcher:
    """Leftmost-longest occurrences of terms in text, computed by HF's added-vocabulary matcher (Aho-Corasick).

    Matching runs on text normalised like the tokenizer's, but offsets refer to the original text. Single Latin
    words only match as whole words.
    """

    def __init__(self, terms: Iterable[str], lowercase: bool) -> None:
        steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
        self._tok = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
        self._tok.normalizer = normalizers.Sequence(steps)
        norm = self._tok.normalizer
        contents = sorted({norm.normalize_str(" ".join(t.split())) for t in terms} - {""})
        self._tok.add_tokens([AddedToken(c, normalized=True, special=False) for c in contents])
        self._ids = {self._tok.token_to_id(c): c for c in contents}
        self._word_like = {c for c in contents if _LATIN_WORD.fullmatch(c.replace(" ", "")) and not _HAN.search(c)}
        self.n_terms = len(contents)

    def find(self, texts: list[str]) -> list[list[tuple[int, int, str]]]:
        """For each text, the (start, end, term) occurrences in order."""
        results = []
        for text, enc in zip(texts, self._tok.encode_batch(texts, add_special_tokens=False), strict=True):
            occ = []
            for tid, (s, e) in zip(enc.ids, enc.offsets, strict=True):
                term = self._ids.get(tid)
                if term is None:
                    continue
                if term in self._word_like and not _on_word_boundaries(text, s, e):
                    continue
                occ.append((s, e, term))
            results.append(occ)
        return results

    def split(self, texts: list[str]) -> Iterator[str]:
        """The pieces of each text between term occurrences (terms removed), for training without the terms."""
        for text, occ in zip(texts, self.find(texts), strict=True):
            pos = 0
            for s, e, _ in occ:
                if s > pos:
                    yield text[pos:s]
                pos = e
            if pos < len(text):
                yield text[pos:]


def _on_word_boundaries(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return not (before.isalnum() or after.isalnum())
