"""Separation / enhancement metrics in dB.

- ``si_snr``: scale-invariant SNR, Le Roux, Wisdom, Erdogan & Hershey, "SDR – half-baked
  or well done?", ICASSP 2019, eq. (3)-(4), with zero-mean signals (as in Conv-TasNet and
  ``torchmetrics.functional.audio.scale_invariant_signal_noise_ratio``).
- ``snr``: plain SNR ``10 log10(||s||^2 / ||s - s_hat||^2)`` with no rescaling (the
  homework's definition).

Both take ``[..., n_samples]`` tensors and return ``[...]`` in dB. ``eps`` keeps them
finite; with float64 and eps = 1e-8 a perfect estimate scores near 100+ dB, so values
far above ~60 dB on tones mean the metric, not the model, is the limit.
"""

from __future__ import annotations

import math

import numpy as np
import torch

EPS = 1e-8


def _pair(estimate, reference) -> tuple[torch.Tensor, torch.Tensor]:
    est = torch.as_tensor(estimate)
    ref = torch.as_tensor(reference)
    if est.shape != ref.shape:
        raise ValueError(f"estimate and reference shapes differ: {tuple(est.shape)} vs {tuple(ref.shape)}")
    if est.shape[-1] == 0:
        raise ValueError("signals must have at least one sample")
    dtype = torch.promote_types(est.dtype, ref.dtype)
    if not dtype.is_floating_point:
        dtype = torch.float32
    return est.to(dtype), ref.to(dtype)


def si_snr(estimate, reference, eps: float = EPS) -> torch.Tensor:
    """Scale-invariant signal-to-noise ratio in dB (Le Roux et al., ICASSP 2019).

    Both signals are made zero-mean; the reference is projected onto the estimate's
    direction: ``s_target = <s_hat, s> s / ||s||^2``, ``e = s_hat - s_target``,
    ``SI-SNR = 10 log10(||s_target||^2 / ||e||^2)``.

    Args:
        estimate: ``[..., n_samples]`` estimated signal.
        reference: ``[..., n_samples]`` ground truth, same shape.
        eps: stabiliser added to the energies.

    Returns:
        ``[...]`` SI-SNR in dB (higher is better; invariant to rescaling the estimate).

    Raises:
        ValueError: shapes differ or the signals are empty.
    """
    est, ref = _pair(estimate, reference)
    est = est - est.mean(dim=-1, keepdim=True)
    ref = ref - ref.mean(dim=-1, keepdim=True)
    alpha = (est * ref).sum(-1, keepdim=True) / ((ref * ref).sum(-1, keepdim=True) + eps)
    target = alpha * ref
    noise = est - target
    return 10 * torch.log10(((target * target).sum(-1) + eps) / ((noise * noise).sum(-1) + eps))


def neg_si_snr_loss(estimate, reference, eps: float = EPS) -> torch.Tensor:
    """Mean negative SI-SNR, a training loss (Luo & Mesgarani, Conv-TasNet, 2019)."""
    return -si_snr(estimate, reference, eps).mean()


def snr(estimate, reference, eps: float = EPS) -> torch.Tensor:
    """Signal-to-noise ratio in dB, ``10 log10(||s||^2 / ||s - s_hat||^2)``, no rescaling.

    Args:
        estimate, reference: ``[..., n_samples]``, same shape.

    Returns:
        ``[...]`` SNR in dB.

    Raises:
        ValueError: shapes differ, the signals are empty, or the reference is silent
            (all zeros), where SNR is undefined.
    """
    est, ref = _pair(estimate, reference)
    ref_energy = (ref * ref).sum(-1)
    if bool((ref_energy == 0).any()):
        raise ValueError("SNR is undefined: the reference signal is silent (all zeros)")
    err = est - ref
    return 10 * torch.log10((ref_energy + eps) / ((err * err).sum(-1) + eps))


def si_snr_improvement(estimate, reference, mixture, eps: float = EPS) -> torch.Tensor:
    """SI-SNRi in dB: ``si_snr(estimate, ref) - si_snr(mixture, ref)``, shapes ``[..., n_samples]``."""
    return si_snr(estimate, reference, eps) - si_snr(mixture, reference, eps)


def psnr(estimate, reference, data_range: float = 1.0) -> torch.Tensor:
    """Peak SNR in dB per item, ``10 log10(range^2 / MSE)`` over all but the first axis.

    Args:
        estimate, reference: ``[N, ...]`` images (or any signals) with values in
            ``[0, data_range]``.

    Returns:
        ``[N]`` PSNR in dB (``inf`` for identical inputs is clamped to 100 dB).
    """
    est, ref = _pair(estimate, reference)
    mse = ((est - ref) ** 2).reshape(est.shape[0], -1).mean(-1)
    return (10 * torch.log10(data_range ** 2 / mse.clamp_min(1e-10))).clamp_max(100.0)


def finite_or_none(value: float) -> float | None:
    """``value`` as a float, or ``None`` if it is NaN/inf (never report inf as a score)."""
    value = float(value)
    return value if math.isfinite(value) else None


def mean_finite(values) -> float:
    """Mean over the finite entries of ``values`` (NaN if none are finite)."""
    arr = np.asarray(torch.as_tensor(values).detach().cpu().numpy(), dtype=np.float64).ravel()
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else float("nan")
