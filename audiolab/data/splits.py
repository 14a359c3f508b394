"""Train / test splits of utterances by speaker (no speaker on both sides) or at random.

Every loader that splits by speaker goes through :func:`speaker_split` or
:func:`leave_speakers_out`; :func:`random_split` is the explicit, leaky alternative. Every loader
then calls :func:`refuse_overlap` on its decoded clips: the same audio on both sides is refused.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

from audiolab.core.runtime import UserError


def speaker_split(speakers: Sequence[str], test_fraction: float = 0.2, seed: int = 0) -> tuple[list[int], list[int]]:
    """Split utterance indices so that no speaker is in both parts.

    Whole speakers, in a seeded random order, go to the test part until it holds at least
    ``test_fraction`` of the utterances (at least one speaker; at least one stays in training).

    Returns:
        ``(train_indices, test_indices)``, each sorted.

    Raises:
        UserError: fewer than two speakers, or ``test_fraction`` outside (0, 1).
    """
    if not 0 < test_fraction < 1:
        raise UserError(f"test fraction must be in (0, 1), got {test_fraction}")
    counts = Counter(speakers)
    if len(counts) < 2:
        raise UserError(f"a speaker split needs at least two speakers, found {sorted(counts)}; use --split random")
    order = sorted(counts)
    np.random.default_rng(seed).shuffle(order)
    test_spk: set[str] = set()
    total = len(speakers)
    for spk in order[:-1]:
        if sum(counts[s] for s in test_spk) >= test_fraction * total:
            break
        test_spk.add(spk)
    return leave_speakers_out(speakers, sorted(test_spk))


def leave_speakers_out(speakers: Sequence[str], test_speakers: Sequence[str]) -> tuple[list[int], list[int]]:
    """Indices of utterances by speakers not in / in ``test_speakers``.

    Raises:
        UserError: a named test speaker is absent, no training speaker is left, or two speaker
            IDs differ only in case (:func:`refuse_case_twins`).
    """
    known = set(speakers)
    refuse_case_twins(known)
    missing = [s for s in test_speakers if s not in known]
    if missing:
        raise UserError(f"test speaker(s) {missing} not in the data; speakers are {sorted(known)}")
    test_set = set(test_speakers)
    train = [i for i, s in enumerate(speakers) if s not in test_set]
    test = [i for i, s in enumerate(speakers) if s in test_set]
    if not train:
        raise UserError("no training speaker left after holding out the test speakers")
    return train, test


def refuse_case_twins(speakers: Iterable[str]) -> None:
    """Refuse speaker IDs that differ only in letter case (``m2`` and ``M2``).

    Are they one speaker (a typo: then a speaker split would put the same voice on both sides)
    or two? The data cannot tell, so the user decides by renaming.

    Raises:
        UserError: naming the first such pair.
    """
    by_fold: dict[str, str] = {}
    for spk in sorted(speakers):
        other = by_fold.setdefault(spk.casefold(), spk)
        if other != spk:
            raise UserError(f"speaker IDs {other!r} and {spk!r} differ only in case: if they are one speaker, a "
                            "speaker split could put the same voice in training and test; give each speaker one "
                            "spelling (rename the files or the manifest rows)")


def random_split(n: int, test_fraction: float = 0.2, seed: int = 0) -> tuple[list[int], list[int]]:
    """A seeded random split of ``range(n)`` (leaks speaker identity into the test set)."""
    if not 0 < test_fraction < 1:
        raise UserError(f"test fraction must be in (0, 1), got {test_fraction}")
    if n < 2:
        raise UserError(f"need at least two utterances to split, got {n}")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = min(max(1, int(round(test_fraction * n))), n - 1)
    return sorted(perm[n_test:].tolist()), sorted(perm[:n_test].tolist())


# ------------------------------------------------------------------ the same audio on both sides
def content_hash(wav: np.ndarray) -> str:
    """SHA-1 of a decoded clip's samples (dtype, shape and bytes): equal for byte-identical audio files."""
    arr = np.ascontiguousarray(wav)
    return hashlib.sha1(f"{arr.dtype}{arr.shape}".encode() + arr.tobytes()).hexdigest()


def refuse_overlap(train: Iterable[tuple[str, np.ndarray]], held_out: Iterable[tuple[str, np.ndarray]], *,
                   allow: bool = False, what: str = "the data") -> int:
    """Refuse the same audio in training and in evaluation (docs/ARCHITECTURE.md, "Rules").

    Every loader of every script calls it once its split is made, on the decoded clips it
    already holds (no second read): an evaluation clip whose samples equal a training clip's
    (a recording copied under another speaker's name, a test folder holding training files,
    a held-out noise folder equal to the training one) would be scored as unseen. Clips are
    compared by :func:`content_hash` (exact copies; a re-encoded or trimmed copy is not caught).

    Args:
        train: ``(name, samples)`` of the training items (names only appear in the message).
        held_out: ``(name, samples)`` of the validation / test items.
        allow: ``--allow-overlap``: only warn.
        what: what is split, for the message (``"fsdd"``, ``"the noise recordings"``).

    Returns:
        the number of held-out items that equal a training item (0 unless ``allow``).

    Raises:
        UserError: names one pair and the count, and the flag that allows it.
    """
    seen = {}
    for name, wav in train:
        seen.setdefault(content_hash(wav), name)
    pairs = [(name, seen[h]) for name, wav in held_out if (h := content_hash(wav)) in seen]
    if not pairs:
        return 0
    text = (f"{len(pairs)} evaluation item(s) of {what} have the same audio as a training item, e.g. "
            f"{pairs[0][0]} = {pairs[0][1]}; their scores would measure memory, not generalisation")
    if not allow:
        raise UserError(text + ". Remove the copies, or pass --allow-overlap to score them anyway")
    print(f"WARNING: {text} (--allow-overlap)")
    return len(pairs)
