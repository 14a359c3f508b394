"""Spectrogram-domain augmentation and preparation: SpecAugment masks and time stretch (Park et al.,
Interspeech 2019), mel-axis warping and tempo change of feature batches, silent-frame trimming.

- :class:`SpecAugment`: phase-vocoder time stretch of complex STFTs and torchaudio masks of fixed width
  (batches of equal-length crops);
- :func:`mask_by_length`: masks sized and placed by each utterance's length (padded batches of
  variable-length utterances);
- :func:`mel_warp`, :func:`tempo_perturb`: vocal-tract-length and speaking-rate perturbation of
  ``[B, T, n_mels]`` feature batches;
- :func:`trim_silent_frames`: leading / trailing silent frames of a power spectrogram cut.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
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


def mel_warp(feats: torch.Tensor, max_warp: float) -> torch.Tensor:
    """Random stretch of the mel axis per utterance, a feature-domain vocal-tract-length perturbation
    (Jaitly & Hinton, ICML workshop 2013): ``out[..., k] = feats[..., k / alpha]`` by linear
    interpolation, ``alpha ~ U(1 - max_warp, 1 + max_warp)``; ``feats`` is ``[B, T, n_mels]``.
    It makes new "voices" from the few training speakers."""
    if max_warp <= 0:
        return feats
    B, T, Fdim = feats.shape
    alpha = 1 + max_warp * (2 * torch.rand(B, 1) - 1)
    pos = (torch.arange(Fdim, dtype=torch.float32)[None, :] / alpha).clamp(0, Fdim - 1)   # [B, F]
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=Fdim - 1)
    frac = (pos - lo).to(feats.dtype)[:, None, :]
    lo, hi = lo[:, None, :].expand(B, T, Fdim).to(feats.device), hi[:, None, :].expand(B, T, Fdim).to(feats.device)
    return feats.gather(2, lo) * (1 - frac.to(feats.device)) + feats.gather(2, hi) * frac.to(feats.device)


def tempo_perturb(feats: torch.Tensor, lengths: torch.Tensor, max_change: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Random speaking-rate change of a batch: the time axis of ``[B, T, n_mels]`` resampled by one
    factor ``r ~ U(1 - max_change, 1 + max_change)`` (linear interpolation, ``T' = round(r T)``),
    ``lengths`` scaled to match. The feature-domain counterpart of the tempo part of speed
    perturbation (Ko et al., Interspeech 2015); with :func:`mel_warp` (the spectral part) it
    gives the training set new speaking rates as well as new voices. Returns ``(feats, lengths)``."""
    if max_change <= 0:
        return feats, lengths
    rate = 1 + max_change * (2 * float(torch.rand(())) - 1)
    T_new = max(1, round(feats.shape[1] * rate))
    out = F.interpolate(feats.transpose(1, 2), size=T_new, mode="linear", align_corners=True).transpose(1, 2)
    new_lengths = torch.clamp(torch.round(lengths.float() * rate).long(), 1, T_new)
    return out.contiguous(), new_lengths


def mask_by_length(feats: torch.Tensor, lengths: torch.Tensor, n_freq=2, freq_width=12, n_time=2,
                   time_fraction=0.05) -> torch.Tensor:
    """SpecAugment-style masking (Park et al. 2019) of a padded batch of variable-length utterances.

    ``feats`` is ``[B, T, n_mels]`` normalised features, ``lengths`` ``[B]`` their valid frames.
    ``n_freq`` bands of up to ``freq_width`` mel bins and ``n_time`` spans of up to
    ``time_fraction`` of each utterance's own length, placed inside it, are set to 0 (the
    normalised mean); draws come from the global torch RNG. No time warping. Returns a masked copy.

    :meth:`SpecAugment.mask` is the fixed-size counterpart (fixed mask widths anywhere in the
    tensor, for batches of equal-length crops); on a padded batch its time masks would land in
    the padding of the short utterances and be too wide for them, so batches of utterances of
    different lengths use this function.
    """
    feats = feats.clone()
    B, T, Fdim = feats.shape
    for b in range(B):
        for _ in range(n_freq):
            w = int(torch.randint(0, freq_width + 1, ()))
            f0 = int(torch.randint(0, max(Fdim - w, 1), ()))
            feats[b, :, f0:f0 + w] = 0
        L = int(lengths[b])
        for _ in range(n_time):
            w = int(torch.randint(0, max(int(time_fraction * L), 1) + 1, ()))
            t0 = int(torch.randint(0, max(L - w, 1), ()))
            feats[b, t0:t0 + w, :] = 0
    return feats


def trim_silent_frames(spec: torch.Tensor, top_db: float, min_frames: int = 5) -> torch.Tensor:
    """Drop leading/trailing frames of a ``[n_mels, T]`` power spectrogram whose energy (sum over bins)
    is more than ``top_db`` dB below the loudest frame. Keeps everything when fewer than
    ``min_frames`` would remain. Returns ``[n_mels, T_kept]`` (a view).

    The frame-domain counterpart of :func:`audiolab.augment.waveform.trim_silence` (which cuts the
    waveform with ``librosa.effects.trim`` on RMS frames, plus a margin): this one cuts the feature
    frames already computed, so the frames kept are exactly the features' own, with no second
    framing of the audio.
    """
    energy_db = 10 * torch.log10(spec.sum(0) + 1e-12)
    keep = (energy_db >= energy_db.max() - top_db).nonzero().squeeze(1)
    if keep.numel() == 0 or int(keep[-1] - keep[0]) + 1 < min_frames:
        return spec
    return spec[:, int(keep[0]):int(keep[-1]) + 1]
