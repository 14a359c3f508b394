"""Waveform-domain augmentation and signal preparation, one implementation each.

- :func:`speed_perturb`: resampling, tempo and pitch together (Ko et al., Interspeech 2015);
- :func:`time_shift`: a zero-filled shift;
- :func:`trim_silence`: leading / trailing silence cut (``librosa.effects.trim``);
- :func:`pink_noise`, :func:`mix_at_snr`, :func:`add_noise`: noise made and mixed at an SNR in dB;
- :class:`WaveAugment`: the settings of a training-time chain of them (speed, shift, gain, noise),
  applied to one clip with the caller's random generator.

All take and return ``[n_samples]`` float32 NumPy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torchaudio.functional as AF


def pink_noise(n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f power) noise, ``[n_samples]`` float32, unit RMS, shaped in the frequency domain."""
    spec = rng.standard_normal(n_samples // 2 + 1) + 1j * rng.standard_normal(n_samples // 2 + 1)
    f = np.arange(n_samples // 2 + 1, dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n=n_samples)
    return (x / (np.sqrt(np.mean(x ** 2)) + 1e-12)).astype(np.float32)


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> tuple[np.ndarray, np.ndarray]:
    """Scale ``noise`` so that ``10 log10(P_clean / P_noise) = snr_db``; return ``(mixture, scaled_noise)``.

    Both inputs are ``[n_samples]`` of equal length.

    Raises:
        ValueError: lengths differ, or the clean signal or the noise is silent.
    """
    if clean.shape != noise.shape:
        raise ValueError(f"clean and noise lengths differ: {clean.shape} vs {noise.shape}")
    p_clean = float(np.mean(clean.astype(np.float64) ** 2))
    p_noise = float(np.mean(noise.astype(np.float64) ** 2))
    if p_clean == 0 or p_noise == 0:
        raise ValueError("cannot mix at an SNR: the clean signal or the noise is silent")
    scaled = noise * np.sqrt(p_clean / (p_noise * 10 ** (snr_db / 10)))
    return (clean + scaled).astype(np.float32), scaled.astype(np.float32)


def add_noise(wav: np.ndarray, noises: Sequence[np.ndarray], snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Mix a random stretch of a random noise recording into ``wav`` at ``snr_db`` dB (silent clips unchanged)."""
    if not noises or not np.any(wav):
        return wav
    src = noises[int(rng.integers(len(noises)))]
    n = len(wav)
    off = int(rng.integers(0, max(len(src) - n, 0) + 1))
    seg = np.resize(src[off:off + n], n)
    if not np.any(seg):
        return wav
    return mix_at_snr(wav, seg.astype(np.float32), snr_db)[0]


def speed_perturb(wav: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Play ``wav`` ``factor`` times faster (duration / factor, pitch * factor) by resampling.

    ``[n_samples]`` -> ``[round(n_samples / factor)]`` (``torchaudio.functional.resample``).
    """
    if factor == 1.0:
        return wav
    new_rate = int(round(sample_rate / factor / 100.0) * 100)  # keep the gcd large: fast polyphase kernels
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wav)), sample_rate, new_rate)
    return out.numpy()


def time_shift(wav: np.ndarray, shift: int) -> np.ndarray:
    """Shift ``[n_samples]`` by ``shift`` samples (positive = later), zero fill, same length."""
    out = np.zeros_like(wav)
    if shift >= 0:
        out[shift:] = wav[:len(wav) - shift] if shift < len(wav) else []
    else:
        out[:shift] = wav[-shift:]
    return out


def trim_silence(wav: np.ndarray, sample_rate: int, top_db: float = 30.0, margin_s: float = 0.03) -> np.ndarray:
    """Cut leading / trailing frames more than ``top_db`` dB below the clip's loudest frame.

    ``[n_samples]`` -> ``[n_kept]`` (``librosa.effects.trim`` with 25 ms frames and a 10 ms hop,
    then ``margin_s`` of the original kept on either side). FSDD's speakers differ a lot in how
    much silence surrounds the word (lucas: about 0.2 s of 0.54 s); trimming before the centred
    padding puts every word at the same place in the window, train and test alike. Silent or
    empty clips are returned unchanged.
    :func:`audiolab.augment.spectrogram.trim_silent_frames` cuts the frames of a spectrogram instead.
    """
    import librosa  # heavy import, only needed here

    if len(wav) == 0 or not np.any(wav):
        return wav
    frame, hop = int(0.025 * sample_rate), int(0.010 * sample_rate)
    _, (start, end) = librosa.effects.trim(wav, top_db=top_db, frame_length=frame, hop_length=hop)
    margin = int(margin_s * sample_rate)
    return wav[max(0, start - margin):min(len(wav), end + margin)]


@dataclass
class WaveAugment:
    """Waveform augmentation for training clips (each part off when its setting is 0 / empty).

    Attributes:
        shift_s: random time shift of up to +-``shift_s`` seconds (zero fill).
        speeds: speed-perturbation factors drawn uniformly (resampling: tempo and pitch move
            together, as in Ko et al. 2015, "Audio augmentation for speech recognition").
        noise_prob: probability of adding background noise.
        snr_db: range of the noise SNR in dB.
        gain_db: random gain range in dB.
    """

    shift_s: float = 0.1
    speeds: tuple[float, ...] = (0.9, 0.95, 1.0, 1.05, 1.1)
    noise_prob: float = 0.5
    snr_db: tuple[float, float] = (5.0, 25.0)
    gain_db: tuple[float, float] = (-6.0, 6.0)

    def __call__(self, wav: np.ndarray, sample_rate: int, rng: np.random.Generator,
                 noises: Sequence[np.ndarray] = ()) -> np.ndarray:
        """One augmented copy of ``wav`` (``[n_samples]`` at ``sample_rate`` Hz; the length changes with speed).

        Draws from ``rng`` in a fixed order: a speed factor, a shift in samples, a gain, then (with
        ``noise_prob``) a noise recording of ``noises`` and its SNR (:func:`add_noise`).
        """
        if self.speeds:
            wav = speed_perturb(wav, float(rng.choice(self.speeds)), sample_rate)
        if self.shift_s > 0:
            wav = time_shift(wav, int(rng.integers(-int(self.shift_s * sample_rate),
                                                   int(self.shift_s * sample_rate) + 1)))
        if self.gain_db and self.gain_db != (0.0, 0.0):
            wav = wav * 10 ** (float(rng.uniform(*self.gain_db)) / 20)
        if self.noise_prob > 0 and noises and rng.random() < self.noise_prob:
            wav = add_noise(wav, noises, float(rng.uniform(*self.snr_db)), rng)
        return wav


def speed_factors(spread: float, step: float = 0.05) -> tuple[float, ...]:
    """Speed-perturbation factors ``1 - spread ... 1 + spread`` in steps of ``step`` (1.0 included)."""
    n = int(round(spread / step))
    return tuple(round(1.0 + step * k, 2) for k in range(-n, n + 1))
