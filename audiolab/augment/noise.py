"""Noise recordings mixed into clean speech: training mixtures drawn afresh, fixed evaluation mixtures.

- :func:`split_noise`: a recording cut in time into a training part and a later, disjoint
  test part (:class:`NoiseSource`), so no test noise sample is ever heard in training;
- :func:`random_mix`: a random stretch of a noise (:func:`loop_to` tiles short ones) mixed at
  an SNR in dB (``audiolab.augment.waveform.mix_at_snr``), optionally at a random level;
- :class:`Mixer`: a training sampler, fresh speed-perturbed mixtures at random SNRs each call;
- :func:`fixed_mixtures`: seeded evaluation mixtures, every utterance at every SNR.

Waveforms are ``[n_samples]`` float32 NumPy arrays at 16 kHz unless a ``sample_rate`` says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from audiolab.augment.waveform import mix_at_snr, speed_perturb
from audiolab.core.evaluate import Mixture, safe_name, snr_tag

SAMPLE_RATE = 16000
TRAIN_LEVEL_DBFS = (-35.0, -15.0)  # random RMS level of training mixtures (level augmentation)


def loop_to(x: np.ndarray, n: int, offset: int = 0) -> np.ndarray:
    """``n`` samples of ``x`` ``[m]`` starting at ``offset``, wrapping around (tiles short noise); ``[n]``."""
    idx = (offset + np.arange(n)) % x.shape[0]
    return x[idx]


@dataclass
class NoiseSource:
    """A noise recording split in time: ``train`` part and disjoint ``test`` part (``[n]`` float32)."""

    name: str
    train: np.ndarray
    test: np.ndarray


def split_noise(name: str, wav: np.ndarray, test_fraction: float, sample_rate: int = SAMPLE_RATE,
                gap_s: float = 0.5) -> NoiseSource:
    """Cut a noise recording ``[n]`` into a training part and a later, disjoint test part.

    The first ``1 - test_fraction`` is for training, then ``gap_s`` seconds are dropped (at
    most a quarter of the rest), the rest is for testing, so no test sample was ever in a
    training mixture.
    """
    n = wav.shape[0]
    cut = int(round(n * (1 - test_fraction)))
    gap = min(int(gap_s * sample_rate), max(0, (n - cut) // 4))
    return NoiseSource(name, wav[:cut].astype(np.float32), wav[cut + gap:].astype(np.float32))


def random_mix(clean: np.ndarray, noise: np.ndarray, snr_db: float, rng: np.random.Generator,
               level_dbfs: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mix ``clean`` with a random segment of ``noise`` at ``snr_db``; return ``(noisy, clean)``.

    The SNR is over the whole utterance (:func:`audiolab.augment.waveform.mix_at_snr`); a
    silent noise segment is replaced by faint white noise (1e-3). With ``level_dbfs=(lo, hi)``
    both signals are then scaled by one gain so that the mixture's RMS is uniform in
    [lo, hi] dBFS (level augmentation; the SNR is unchanged; the peak stays below 0.99).

    Returns:
        ``(noisy, clean)``, each ``[len(clean)]`` float32.
    """
    seg = loop_to(noise, clean.shape[0], int(rng.integers(noise.shape[0])))
    if not np.any(seg):
        seg = rng.standard_normal(clean.shape[0]).astype(np.float32) * 1e-3
    noisy, _ = mix_at_snr(clean, seg, snr_db)
    if level_dbfs is not None:
        rms = float(np.sqrt(np.mean(noisy.astype(np.float64) ** 2))) + 1e-12
        gain = 10 ** (rng.uniform(*level_dbfs) / 20) / rms
        gain = min(gain, 0.99 / (float(np.abs(noisy).max()) + 1e-12))
        noisy, clean = noisy * gain, clean * gain
    return noisy.astype(np.float32), clean.astype(np.float32)


class Mixer:
    """Training sampler: fresh ``(noisy, clean)`` mixtures every call (one call per epoch).

    Each call mixes every clean utterance ``mixes`` times, each time at a random speed from
    ``speeds`` (:func:`audiolab.augment.waveform.speed_perturb`, precomputed), with a random
    segment of a random noise's *training* part, at an SNR uniform in ``snr_range`` dB and a
    random RMS level in ``level_dbfs`` (:func:`random_mix`).

    Args:
        clean: ``[n_samples]`` float32 utterances at ``sample_rate``.
        noises: the noise recordings (only their ``train`` parts are used).
        snr_range: ``(lo, hi)`` in dB.
        mixes: mixtures per utterance and call.
        speeds: speed-perturbation factors (1.0 alone: none).
    """

    def __init__(self, clean: Sequence[np.ndarray], noises: Sequence[NoiseSource], snr_range, mixes: int,
                 speeds: Sequence[float] = (1.0,), sample_rate: int = SAMPLE_RATE,
                 level_dbfs: tuple[float, float] = TRAIN_LEVEL_DBFS):
        self.variants = [[speed_perturb(w, f, sample_rate) for f in speeds] for w in clean]
        self.noises, self.snr_range, self.mixes = list(noises), tuple(snr_range), mixes
        self.level_dbfs = level_dbfs

    def keep(self, n: int) -> None:
        """Keep only the first ``n`` clean utterances (smoke tests)."""
        self.variants = self.variants[:n]

    def mix(self, wav: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(noisy, clean)``: ``wav`` with a random noise's training part at a random SNR and level."""
        src = self.noises[int(rng.integers(len(self.noises)))]
        return random_mix(wav, src.train, float(rng.uniform(*self.snr_range)), rng, self.level_dbfs)

    def __call__(self, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
        """One epoch: ``[(noisy, clean), ...]``, ``mixes`` per utterance, drawn from ``rng``."""
        pairs = []
        for variants in self.variants:
            for _ in range(self.mixes):
                pairs.append(self.mix(variants[int(rng.integers(len(variants)))], rng))
        return pairs


def fixed_mixtures(utterances: Sequence[tuple[str, np.ndarray]], noises: Sequence[tuple[str, np.ndarray]],
                   snrs: Sequence[float], group: str, seed: int) -> list[Mixture]:
    """Deterministic evaluation mixtures: every utterance at every SNR (dB), noises taken in turn.

    Utterance ``i`` at the ``k``-th SNR uses noise ``(i + k) % len(noises)`` at a seeded
    random offset, so every noise occurs at every SNR. Names are ``<utterance>_<noise>_<snr tag>``.
    """
    rng = np.random.default_rng(seed)
    out = []
    for i, (uname, wav) in enumerate(utterances):
        for k, s in enumerate(snrs):
            nname, noise = noises[(i + k) % len(noises)]
            noisy, clean = random_mix(wav, noise, float(s), rng)
            out.append(Mixture(safe_name(f"{uname}_{nname}_{snr_tag(s)}"), noisy, clean, float(s), nname, group))
    return out
