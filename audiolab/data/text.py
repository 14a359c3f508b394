"""Transcript text for CTC: normalisation and the character vocabulary (blank = 0)."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Sequence

from audiolab.core.runtime import UserError


def normalize_transcript(text: str, strip_accents: bool = False) -> str:
    """Lower-case, NFC, drop punctuation except word-internal apostrophes, collapse spaces.

    ``strip_accents`` maps accented letters to their base letter (``à`` -> ``a``) for
    every transcript alike. Apostrophes are kept (``l'autunno``, ``it's``), since they
    are part of the written word in Italian and English.
    """
    text = unicodedata.normalize("NFC", text).lower().replace("’", "'").replace("`", "'")
    if strip_accents:
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    text = "".join(c if (c.isalpha() or c.isdigit() or c in "' ") else " " for c in text)
    text = re.sub(r"(?<![^\W\d_])'|'(?![^\W\d_])", " ", text)  # apostrophes only between letters
    return re.sub(r"\s+", " ", text).strip()


class CharVocab:
    """Characters for CTC: index 0 is the blank, then the sorted characters seen in training.

    ``encode`` drops characters outside the vocabulary and counts them in ``oov`` so the
    caller can report them.
    """

    blank = 0

    def __init__(self, chars: Sequence[str]):
        chars = sorted(set(chars))
        if not chars:
            raise UserError("the character vocabulary is empty: the training transcripts hold no characters")
        self.chars = ["<blank>", *chars]
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> "CharVocab":
        return cls([c for t in texts for c in t])

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str, oov: Counter | None = None) -> list[int]:
        ids = []
        for c in text:
            if c in self.index:
                ids.append(self.index[c])
            elif oov is not None:
                oov[c] += 1
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[i] for i in ids if 0 < i < len(self.chars))
