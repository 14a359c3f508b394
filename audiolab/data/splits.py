"""Train / test splits of utterances by speaker (no speaker on both sides) or at random.

Every loader that splits by speaker goes through :func:`speaker_split` or
:func:`leave_speakers_out`; :func:`random_split` is the explicit, leaky alternative.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

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
        UserError: a named test speaker is absent, or no training speaker is left.
    """
    known = set(speakers)
    missing = [s for s in test_speakers if s not in known]
    if missing:
        raise UserError(f"test speaker(s) {missing} not in the data; speakers are {sorted(known)}")
    test_set = set(test_speakers)
    train = [i for i, s in enumerate(speakers) if s not in test_set]
    test = [i for i, s in enumerate(speakers) if s in test_set]
    if not train:
        raise UserError("no training speaker left after holding out the test speakers")
    return train, test


def random_split(n: int, test_fraction: float = 0.2, seed: int = 0) -> tuple[list[int], list[int]]:
    """A seeded random split of ``range(n)`` (leaks speaker identity into the test set)."""
    if not 0 < test_fraction < 1:
        raise UserError(f"test fraction must be in (0, 1), got {test_fraction}")
    if n < 2:
        raise UserError(f"need at least two utterances to split, got {n}")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = min(max(1, int(round(test_fraction * n))), n - 1)
    return sorted(perm[n_test:].tolist()), sorted(perm[:n_test].tolist())
