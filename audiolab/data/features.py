"""Feature front ends: what turns waveforms into model inputs (log-mel, MFCC, normalisation).

:class:`Features` is an ``nn.Module`` that turns waveforms ``[B, n_samples]`` into standardised
features ``[B, n_frames, n_features]``; it runs on the batch (inside the model, so checkpoints carry
its training statistics) so that spectrogram augmentation (:class:`audiolab.augment.spectrogram.SpecAugment`)
can act on the STFT and the features. :func:`default_stft` gives the usual speech window and hop
(32 ms power of two, 10 ms); :func:`spec_augment_for` builds the SpecAugment a list of
augmentation names asks for.

:func:`log_mel_features` and :func:`normalise_per_speaker` are the per-utterance front end of
``q2_multitask.py`` (variable-length utterances, statistics of each speaker's own audio).

Used by ``speechcommands_rnn.py`` (keyword spotting, :class:`Features`) and ``q2_multitask.py``. Sources: torchaudio's
``MFCC`` / ``MelSpectrogram`` / ``AmplitudeToDB``; Park et al. 2019 (SpecAugment, arXiv:1904.08779).
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torchaudio
import torchaudio.transforms as T

from audiolab.augment.spectrogram import SpecAugment, trim_silent_frames
from audiolab.core.runtime import UserError

#: the spectrogram augmentations :func:`spec_augment_for` understands
SPEC_AUGMENTATIONS = ("stretch", "freq_mask", "time_mask")


def default_stft(sample_rate: int, n_fft: int | None = None, hop_length: int | None = None) -> tuple[int, int]:
    """``(n_fft, hop_length)`` in samples: those given, else a 32 ms power-of-two window and a 10 ms hop.

    E.g. ``(256, 80)`` at 8 kHz, ``(512, 160)`` at 16 kHz.
    """
    n_fft = n_fft or 2 ** int(round(math.log2(0.032 * sample_rate)))
    hop = hop_length or int(round(0.010 * sample_rate))
    return n_fft, hop


def spec_augment_for(augment: Iterable[str], n_fft: int, hop_length: int, n_features: int, n_frames: int,
                     seed: int = 0) -> SpecAugment | None:
    """The :class:`SpecAugment` that the names in ``augment`` ask for, or ``None`` when none of
    ``SPEC_AUGMENTATIONS`` is among them (other names, e.g. waveform ones, are ignored).

    ``stretch``: rates 0.85-1.15; ``freq_mask``: masks up to ``n_features // 8`` bins wide;
    ``time_mask``: up to ``n_frames // 10`` frames (each at least 1).
    """
    aug = set(augment)
    if not aug & set(SPEC_AUGMENTATIONS):
        return None
    return SpecAugment(n_fft // 2 + 1, hop_length, stretch=(0.85, 1.15) if "stretch" in aug else None,
                       freq_mask=max(1, n_features // 8) if "freq_mask" in aug else 0,
                       time_mask=max(1, n_frames // 10) if "time_mask" in aug else 0, seed=seed)


class Features(nn.Module):
    """Waveform ``[B, n_samples]`` -> standardised features ``[B, n_frames, n_features]``.

    ``mfcc``: the modules of ``torchaudio.transforms.MFCC`` (STFT -> power -> mel -> dB -> DCT-II),
    run step by step so that ``TimeStretch`` can act on the complex STFT; ``logmel``: the same
    without the DCT (``MelSpectrogram`` + ``AmplitudeToDB``). The dB floor (``top_db`` below the
    clip's loudest bin) is per clip, so a clip's features do not depend on the rest of its batch;
    a floor of 40 dB rather than torchaudio's 80 hides how quiet each recording's background is
    (FSDD: lucas' noise floor is about 25 dB lower than the other speakers'; 25 dB was tried too
    and was no better over the four FSDD folds). Then: per-utterance normalisation over time
    (``cmvn="meanvar"``: mean and variance, ``"mean"``: mean only, ``"none"``), standardisation
    by ``mean``/``std`` (buffers set from the training split with :meth:`fit_stats`), and
    SpecAugment masks when ``augment`` is true.

    Padding frames (digital silence added by the collate_fn or a time shift) are left out of the
    per-utterance and training statistics: otherwise the share of padding, i.e. how fast a
    speaker talks, would move every clip's normalisation. They keep their (floor) value, so the
    models still see where the word starts and ends.
    """

    def __init__(self, kind: str, sample_rate: int, n_fft: int, hop_length: int, n_mels: int = 40,
                 n_mfcc: int = 13, cmvn: str = "mean", top_db: float = 40.0,
                 spec_augment: SpecAugment | None = None):
        super().__init__()
        if kind not in {"mfcc", "logmel"}:
            raise ValueError(f"unknown feature kind {kind!r}")
        if cmvn not in {"none", "mean", "meanvar"}:
            raise ValueError(f"unknown cmvn {cmvn!r}")
        if kind == "mfcc" and n_mfcc > n_mels:
            raise UserError(f"--n-mfcc ({n_mfcc}) cannot exceed --n-mels ({n_mels})")
        self.kind, self.cmvn, self.spec_augment = kind, cmvn, spec_augment
        self.mfcc = T.MFCC(sample_rate, n_mfcc=n_mfcc, log_mels=False,
                           melkwargs=dict(n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, f_min=20.0))
        self.mfcc.amplitude_to_DB.top_db = top_db
        self.n_features = n_mfcc if kind == "mfcc" else n_mels
        self.register_buffer("mean", torch.zeros(self.n_features))
        self.register_buffer("std", torch.ones(self.n_features))

    def raw(self, wav: torch.Tensor, augment: bool = False, with_mask: bool = False):
        """Un-normalised features ``[B, n_features, n_frames]`` (MFCC or log-mel in dB).

        With ``with_mask`` also returns ``[B, n_frames]`` bool: frames that hold any signal
        (False for all-zero padding frames).
        """
        mel = self.mfcc.MelSpectrogram
        spec = torch.stft(wav, mel.n_fft, hop_length=mel.hop_length, win_length=mel.win_length,
                          window=mel.spectrogram.window, center=True, pad_mode="reflect", return_complex=True)
        if augment and self.spec_augment is not None:
            spec = self.spec_augment.stretch(spec)
        power = spec.abs().pow(2.0)
        db = self.mfcc.amplitude_to_DB(mel.mel_scale(power).unsqueeze(1)).squeeze(1)  # per-clip top_db
        x = db if self.kind == "logmel" else torch.matmul(db.transpose(-1, -2), self.mfcc.dct_mat).transpose(-1, -2)
        if not with_mask:
            return x
        mask = power.sum(1) > 1e-10
        mask[mask.sum(1) == 0] = True  # an all-silent clip: keep every frame
        return x, mask

    def normalise(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-utterance normalisation over the signal frames (``mask`` ``[B, T]``); ``[B, F, T]`` -> same."""
        if self.cmvn == "none":
            return x
        m = mask[:, None, :].to(x.dtype)
        n = m.sum(-1, keepdim=True)
        mean = (x * m).sum(-1, keepdim=True) / n
        x = x - mean
        if self.cmvn == "meanvar":
            x = x / ((x.pow(2) * m).sum(-1, keepdim=True) / n + 1e-6).sqrt()
        return x

    @torch.no_grad()
    def fit_stats(self, loader) -> None:
        """Set ``mean``/``std`` per feature from batches ``(wav, ...)`` of the training split (no augmentation)."""
        total, total_sq, count = 0.0, 0.0, 0
        for wav, *_ in loader:
            x, mask = self.raw(wav, with_mask=True)
            x = self.normalise(x, mask) * mask[:, None, :]
            total = total + x.sum(dim=(0, 2)).double()
            total_sq = total_sq + x.pow(2).sum(dim=(0, 2)).double()
            count += int(mask.sum())
        mean = total / count
        self.mean.copy_(mean.float())
        self.std.copy_((total_sq / count - mean ** 2).clamp_min(1e-8).sqrt().float())

    def forward(self, wav: torch.Tensor, augment: bool = False) -> torch.Tensor:
        x, mask = self.raw(wav, augment, with_mask=True)
        x = (self.normalise(x, mask) - self.mean[:, None]) / self.std[:, None]
        if augment and self.spec_augment is not None:
            x = self.spec_augment.mask(x)
        return x.transpose(1, 2)


def log_mel_features(waveforms: Sequence[np.ndarray], sample_rate: int, n_fft: int, hop_length: int, n_mels: int,
                     trim_db: float = 0.0) -> list[torch.Tensor]:
    """Log-mel frames per utterance: a list of ``[T, n_mels]`` tensors, ``log(mel power + 1e-6)``.

    ``waveforms`` are ``[n_samples]`` float32 arrays at ``sample_rate`` Hz. torchaudio
    ``MelSpectrogram`` (Hann window of ``n_fft`` samples, ``hop_length`` hop, centred frames, so
    ``T = 1 + n_samples // hop_length`` before trimming). With ``trim_db > 0``, leading and
    trailing frames quieter than ``trim_db`` dB below the loudest frame are trimmed
    (:func:`audiolab.augment.spectrogram.trim_silent_frames`): they carry neither characters nor
    emotion and cost time.
    """
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length,
                                               n_mels=n_mels)
    feats = []
    with torch.no_grad():
        for wav in waveforms:
            spec = mel(torch.from_numpy(wav))                                    # [n_mels, T] power
            if trim_db > 0:
                spec = trim_silent_frames(spec, trim_db)
            feats.append(torch.log(spec + 1e-6).T.contiguous())
    return feats


def normalise_per_speaker(feats: list[torch.Tensor], speakers: Sequence[str]) -> dict:
    """Per-mel-bin mean/std normalisation with each speaker's own statistics (in place).

    ``feats[i]`` is ``[T_i, n_mels]``, spoken by ``speakers[i]``. Each speaker's mean and std
    (clamped at 1e-3) over all their frames: it removes voice and channel offsets, which matters
    for unseen-speaker emotion recognition, and uses no labels (a test speaker's statistics come
    from their unlabelled audio). Returns the statistics used, ``{speaker: (mean [n_mels], std [n_mels])}``.
    """
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(speakers):
        groups.setdefault(s, []).append(i)
    stats = {}
    for key, idx in groups.items():
        frames = torch.cat([feats[i] for i in idx])
        stats[key] = (frames.mean(0), frames.std(0).clamp(min=1e-3))
    for i in range(len(feats)):
        mean, std = stats[speakers[i]]
        feats[i] = (feats[i] - mean) / std
    return stats
