"""Time-frequency masks for magnitude-domain speech enhancement: oracle masks, the PSA target, the quality figure.

A magnitude-domain enhancer that keeps the noisy phase can do no better than an oracle mask
computed from the clean speech ``S`` and the noise ``N = Y - S`` of a mixture ``Y``:

- ideal ratio mask (IRM), ``|S| / (|S| + |N|)`` (magnitude form, as in Wang, Narayanan and Wang,
  "On training targets for supervised speech separation", IEEE/ACM TASLP 2014);
- phase-sensitive mask (PSM), ``|S| / |Y| * cos(angle S - angle Y)`` clipped to [0, 1] (Erdogan,
  Hershey, Watanabe and Le Roux, "Phase-sensitive and recognition-boosted speech separation using
  deep recurrent neural networks", ICASSP 2015); ``|Y| * PSM`` is also the truncated
  phase-sensitive approximation target a network can be trained towards (:func:`psa_target`).

Both are applied to the noisy STFT (noisy phase kept) with the same front end as the models
(``audiolab.core.dsp``: periodic Hann window, ``n_fft``, ``hop_length``), so that the models'
scores read as a fraction of what a mask can reach. Signals are ``[n_samples]`` float arrays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from audiolab.core.dsp import from_magnitude_phase, stft

ORACLES = ("oracle_irm", "oracle_psm")
EPS = 1e-8


def psa_target(noisy_spec: torch.Tensor, clean_spec: torch.Tensor) -> torch.Tensor:
    """Truncated phase-sensitive target ``clip(|S| cos(angle S - angle Y), 0, |Y|)`` (Erdogan et al. 2015).

    Args:
        noisy_spec, clean_spec: complex STFTs of the same shape (any, e.g. ``[F, T]``).

    Returns:
        a real tensor of that shape, linear magnitude units, between 0 and ``|Y|``.
    """
    noisy_mag = noisy_spec.abs()
    projected = (clean_spec * noisy_spec.conj()).real / noisy_mag.clamp_min(EPS)  # |S| cos(dphi)
    return torch.minimum(projected.clamp_min(0), noisy_mag)


def oracle_mask(noisy: np.ndarray, clean: np.ndarray, kind: str, n_fft: int = 1024, hop_length: int = 512
                ) -> torch.Tensor:
    """The oracle mask ``[F, T]`` in [0, 1] of one mixture (``kind``: ``"irm"`` or ``"psm"``).

    Args:
        noisy, clean: ``[n_samples]`` mixture and its clean speech (the noise is their difference).

    Raises:
        ValueError: unknown ``kind`` or signals of different lengths.
    """
    if np.shape(noisy) != np.shape(clean):
        raise ValueError(f"noisy and clean differ in shape: {np.shape(noisy)} vs {np.shape(clean)}")
    y = stft(torch.as_tensor(np.asarray(noisy, dtype=np.float32)), n_fft=n_fft, hop_length=hop_length)
    s = stft(torch.as_tensor(np.asarray(clean, dtype=np.float32)), n_fft=n_fft, hop_length=hop_length)
    if kind == "irm":
        s_mag, n_mag = s.abs(), (y - s).abs()
        return s_mag / (s_mag + n_mag).clamp_min(EPS)
    if kind == "psm":
        return psa_target(y, s) / y.abs().clamp_min(EPS)
    raise ValueError(f"unknown oracle mask {kind!r}; use 'irm' or 'psm'")


def apply_mask(noisy: np.ndarray, mask: torch.Tensor, n_fft: int = 1024, hop_length: int = 512) -> np.ndarray:
    """``mask`` ``[F, T]`` times the noisy magnitude, with the noisy phase, inverted: ``[n_samples]`` float32."""
    x = torch.as_tensor(np.asarray(noisy, dtype=np.float32))
    y = stft(x, n_fft=n_fft, hop_length=hop_length)
    wav = from_magnitude_phase(mask * y.abs(), y.angle(), n_fft, hop_length, length=x.shape[-1])
    return wav.numpy().astype(np.float32)


def oracle_methods(n_fft: int, hop_length: int) -> dict:
    """``{"oracle_irm": fn, "oracle_psm": fn}``, ``fn(noisy, clean) -> estimate`` for ``evaluate_set``'s oracles."""
    def make(kind):
        return lambda noisy, clean: apply_mask(noisy, oracle_mask(noisy, clean, kind, n_fft, hop_length),
                                               n_fft, hop_length)
    return {f"oracle_{k}": make(k) for k in ("irm", "psm")}


QUALITY_PANELS = (("pesq", "PESQ (wide-band, MOS-LQO)"), ("stoi", "STOI"))


def quality_figure(summary: Sequence[dict], methods: Sequence[str], path: Path, title: str,
                   sets: Sequence[str] = ("test", "heldout"),
                   panels: Sequence[tuple[str, str]] = QUALITY_PANELS) -> Path | None:
    """Scores against input SNR, one panel per ``(key, label)`` of ``panels`` (default PESQ and STOI),
    one line per method and set (rows of ``evaluate.summarize``; the first set drawn solid).

    Returns the saved path, or None when the summary has no per-SNR score of the first panel.
    """
    import matplotlib.pyplot as plt

    from audiolab.core.plotting import save_figure
    rows = [r for r in summary if r["input_snr_db"] not in ("all", None) and r["set"] in sets]
    if not any(r.get(panels[0][0]) is not None for r in rows):
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    styles = ["-o", "--s", ":^", "-.v", "-D", "--x"]
    for ax, (metric, label) in zip(axes[0], panels):
        for si, set_ in enumerate(sets):
            for mi, method in enumerate(methods):
                pts = sorted((float(r["input_snr_db"]), r[metric]) for r in rows
                             if r["set"] == set_ and r["method"] == method and r[metric] is not None)
                if pts:
                    ax.plot(*zip(*pts), styles[mi % len(styles)], color=f"C{mi}", alpha=1.0 if si == 0 else 0.45,
                            label=f"{method} ({set_})")
        ax.set(xlabel="input SNR (dB)", ylabel=label, title=label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
