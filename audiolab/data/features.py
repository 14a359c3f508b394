"""Log-mel features of speech clips and their per-speaker normalisation (``q2_multitask.py``)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torchaudio

from audiolab.augment.spectrogram import trim_silent_frames


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
