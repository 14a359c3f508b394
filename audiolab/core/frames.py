"""STFT magnitude frames served with their past as context: the input side of frame-wise enhancement models.

:class:`FrameBank` holds the STFT frames of many ``(noisy, clean)`` signal pairs and serves
network inputs ``[B, 1, F]`` (one frame) or ``[B, 1, context, F]`` (the frame and the
``context - 1`` before it) with the noisy and clean linear magnitudes of the target frame.
Every signal is prefixed with ``context - 1`` near-silent frames (:func:`near_silent_prefix`),
so that every frame gets an estimate and no window reaches into the previous signal.
STFT: ``audiolab.core.dsp.magnitude_phase`` (periodic Hann window).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch

from audiolab.core.dsp import magnitude_phase, stft
from audiolab.core.masks import psa_target

PREFIX_MAGNITUDE = 1e-4      # scale of the near-silent prefix frames (linear magnitude)


def near_silent_prefix(n_frames: int, n_freq: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``[n_frames, n_freq]`` tiny random magnitudes (|N(0, 1)| * ``PREFIX_MAGNITUDE``)."""
    return torch.randn(n_frames, n_freq, generator=generator).abs() * PREFIX_MAGNITUDE


class FrameBank:
    """STFT frames of many signals, ready to serve ``[B, 1, F]`` or ``[B, 1, context, F]`` examples.

    For each ``(noisy, clean)`` pair the noisy magnitude ``|Y|`` ``[T, F]`` (time-major) gets
    ``context - 1`` near-silent frames in front; the network input for frame ``t`` is
    ``log1p|Y|`` of frames ``t - context + 1 .. t`` (the prefix fills in before the start),
    its target the clean magnitude ``|S|`` of frame ``t``. Windows are gathered per batch,
    never materialised for the whole set.

    Args:
        pairs: ``(noisy, clean)`` ``[n_samples]`` waveforms; ``clean`` may be None (inference only).
        context: frames per example (1: ``[B, 1, F]``).
        n_fft, hop_length: STFT size and hop in samples (F = ``n_fft // 2 + 1``).
        seed: seed of the prefix frames' random magnitudes.
        target: ``"magnitude"`` (``clean_mag`` is ``|S|``) or ``"psa"`` (``clean_mag`` is the truncated
            phase-sensitive target ``clip(|S| cos(angle S - angle Y), 0, |Y|)``, ``audiolab.core.masks``).

    Attributes:
        features: ``[N_rows, F]`` log1p noisy magnitudes incl. prefixes.
        noisy_mag, clean_mag: ``[N, F]`` linear magnitudes of the target frames (``clean_mag``
            None when no pair has a clean signal).
        ends: ``[N]`` row in ``features`` of each target frame.
    """

    def __init__(self, pairs: Sequence[tuple[np.ndarray, np.ndarray | None]], context: int,
                 n_fft: int = 1024, hop_length: int = 512, seed: int = 0, target: str = "magnitude"):
        gen = torch.Generator().manual_seed(seed)
        feats, noisy_m, clean_m, ends = [], [], [], []
        row = 0
        for noisy, clean in pairs:
            y = magnitude_phase(noisy, n_fft, hop_length)[0].T  # [T, F]
            prefix = near_silent_prefix(context - 1, y.shape[1], gen)
            feats.append(torch.log1p(torch.cat([prefix, y])))
            noisy_m.append(y)
            if clean is not None and target == "psa":
                clean_m.append(psa_target(stft(noisy, n_fft, hop_length), stft(clean, n_fft, hop_length)).T)
            elif clean is not None:
                clean_m.append(magnitude_phase(clean, n_fft, hop_length)[0].T)
            ends.append(row + context - 1 + torch.arange(y.shape[0]))
            row += y.shape[0] + context - 1
        self.context = context
        self.features = torch.cat(feats)
        self.noisy_mag = torch.cat(noisy_m)
        self.clean_mag = torch.cat(clean_m) if clean_m else None
        self.ends = torch.cat(ends)

    def __len__(self) -> int:
        return int(self.ends.shape[0])

    def inputs(self, idx: torch.Tensor) -> torch.Tensor:
        """Network inputs for target frames ``idx``: ``[B, 1, F]`` (context 1) or ``[B, 1, context, F]``."""
        offsets = torch.arange(self.context - 1, -1, -1)
        rows = self.ends[idx][:, None] - offsets[None, :]  # [B, context], oldest first
        x = self.features[rows]                            # [B, context, F]
        return x[:, 0:1, :] if self.context == 1 else x.unsqueeze(1)

    def batches(self, batch_size: int, generator: torch.Generator | None = None,
                shuffle: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield ``(x, noisy_mag [B, F], clean_mag [B, F])`` mini-batches (shuffled with ``generator``)."""
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for start in range(0, len(self), batch_size):
            idx = order[start:start + batch_size]
            yield self.inputs(idx), self.noisy_mag[idx], self.clean_mag[idx]
