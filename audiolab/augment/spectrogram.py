"""Spectrogram-domain augmentation: SpecAugment masks and time stretch (Park et al., Interspeech 2019)."""

from __future__ import annotations

import numpy as np
import torch
import torchaudio.transforms as T


class SpecAugment(torch.nn.Module):
    """Spectrogram augmentation for training batches (Park et al. 2019, arXiv:1904.08779).

    ``stretch(spec)`` takes a complex STFT ``[B, n_freq, n_frames]``
    (``torchaudio.transforms.TimeStretch``, a phase vocoder: tempo changes, pitch does not; a
    random rate from ``stretch``, then cropped / padded back to ``n_frames``). ``mask`` applies ``FrequencyMasking`` and
    ``TimeMasking`` (``n_masks`` of each, independent per clip) to a real feature map.
    """

    def __init__(self, n_freq: int, hop_length: int, stretch: tuple[float, float] | None = (0.85, 1.15),
                 freq_mask: int = 0, time_mask: int = 0, n_masks: int = 2, stretch_prob: float = 0.4,
                 seed: int = 0):
        super().__init__()
        self.stretch_range, self.stretch_prob = stretch, stretch_prob
        self.time_stretch = T.TimeStretch(hop_length=hop_length, n_freq=n_freq) if stretch else None
        self.freq_masking = T.FrequencyMasking(freq_mask, iid_masks=True) if freq_mask > 0 else None
        self.time_masking = T.TimeMasking(time_mask, iid_masks=True) if time_mask > 0 else None
        self.n_masks = n_masks
        self.gen = np.random.default_rng(seed)

    def stretch(self, spec: torch.Tensor) -> torch.Tensor:
        """Time-stretch a complex ``[B, n_freq, n_frames]`` by a random rate, then crop / pad to ``n_frames``.

        Applied to a batch with probability ``stretch_prob``, one rate per batch: the phase vocoder
        is the costliest step of a training batch on a CPU (about as costly as an LSTM step
        over the batch), and batches are reshuffled every epoch, so every clip still meets many rates.
        """
        if self.time_stretch is None or self.gen.random() >= self.stretch_prob:
            return spec
        n_frames = spec.shape[-1]
        rate = float(self.gen.uniform(*self.stretch_range))
        y = self.time_stretch(spec, rate)
        if y.shape[-1] >= n_frames:
            start = (y.shape[-1] - n_frames) // 2
            return y[..., start:start + n_frames]
        left = (n_frames - y.shape[-1]) // 2
        return torch.nn.functional.pad(y, (left, n_frames - y.shape[-1] - left))

    def mask(self, feats: torch.Tensor) -> torch.Tensor:
        """Frequency and time masks on a real ``[B, n_bins, n_frames]`` (masked cells set to 0)."""
        x = feats.unsqueeze(1)  # iid_masks needs [B, C, F, T]
        for _ in range(self.n_masks):
            if self.freq_masking is not None:
                x = self.freq_masking(x)
            if self.time_masking is not None:
                x = self.time_masking(x)
        return x.squeeze(1)
