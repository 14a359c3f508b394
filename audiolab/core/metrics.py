"""Separation / enhancement metrics in dB.

- ``si_snr``: scale-invariant SNR, Le Roux, Wisdom, Erdogan & Hershey, "SDR – half-baked
  or well done?", ICASSP 2019, eq. (3)-(4), with zero-mean signals (as in Conv-TasNet and
  ``torchmetrics.functional.audio.scale_invariant_signal_noise_ratio``).
- ``snr``: plain SNR ``10 log10(||s||^2 / ||s - s_hat||^2)`` with no rescaling (the
  homework's definition).

Both take ``[..., n_samples]`` tensors and return ``[...]`` in dB. ``eps`` keeps them
finite; with float64 and eps = 1e-8 a perfect estimate scores near 100+ dB, so values
far above ~60 dB on tones mean the metric, not the model, is the limit.

- ``psnr`` / ``ssim``: per-image PSNR (dB) and SSIM (Wang et al., IEEE TIP 2004, through
  ``torchmetrics``) of ``[N, C, H, W]`` images.
- ``bss_scores``: SDR / SIR / SAR of two estimated stems (BSS Eval v3, Vincent, Gribonval &
  Fevotte, IEEE TASLP 2006, through ``fast_bss_eval``, Scheibler 2021) and NSDR against the
  unprocessed mixture; ``length_weighted`` / ``gnsdr_summary``: the clip-length-weighted means
  (GNSDR / GSIR / GSAR, the MIR-1K convention of Hsu & Jang 2010).
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
    """Mean, in float64, over the finite entries of ``values`` (NaN if none are finite).

    ``values``: a tensor or array of any shape, or an iterable of numbers in which ``None``
    counts as missing (a score that could not be computed).
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    elif not isinstance(values, np.ndarray):
        values = [np.nan if v is None else float(v) for v in values]
    arr = np.asarray(values, dtype=np.float64).ravel()
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else float("nan")


def ssim(estimate: torch.Tensor, reference: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """SSIM per image ``[N]`` of ``[N, C, H, W]`` images in ``[0, data_range]`` (torchmetrics' Gaussian window)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure(estimate, reference, data_range=data_range, reduction="none")


def bss_scores(vocals: np.ndarray, accompaniment: np.ndarray, est_v: np.ndarray, est_a: np.ndarray) -> dict:
    """SDR / SIR / SAR (dB) of both estimates and the SDR of the unprocessed mixture, via fast_bss_eval.

    BSS Eval v3 (Vincent et al. 2006) with 512-tap distortion filters, as ``mir_eval``;
    computed in float64 with the torch backend. All inputs are ``[n_samples]``.

    Returns:
        ``{stem}_sdr_db``, ``{stem}_sir_db``, ``{stem}_sar_db``, ``{stem}_sdr_mixture_db`` and
        ``{stem}_nsdr_db`` (SDR minus the mixture's) for ``stem`` in vocals, accompaniment.

    Raises:
        ValueError / RuntimeError: from ``fast_bss_eval`` (e.g. a silent reference: singular projection).
    """
    import fast_bss_eval

    ref = torch.from_numpy(np.stack([vocals, accompaniment]).astype(np.float64))
    est = torch.from_numpy(np.stack([est_v, est_a]).astype(np.float64))
    mix = ref.sum(0, keepdim=True).repeat(2, 1)
    sdr, sir, sar = fast_bss_eval.bss_eval_sources(ref, est, compute_permutation=False)
    sdr_mix, _, _ = fast_bss_eval.bss_eval_sources(ref, mix, compute_permutation=False)
    out = {}
    for i, name in enumerate(("vocals", "accompaniment")):
        out.update({f"{name}_sdr_db": float(sdr[i]), f"{name}_sir_db": float(sir[i]), f"{name}_sar_db": float(sar[i]),
                    f"{name}_sdr_mixture_db": float(sdr_mix[i]),
                    f"{name}_nsdr_db": float(sdr[i] - sdr_mix[i])})
    return out


def length_weighted(rows: list[dict], key: str) -> float:
    """Mean of ``key`` over clips weighted by ``n_samples`` (GNSDR / GSIR / GSAR), skipping non-finite values."""
    vals = np.array([r[key] for r in rows], dtype=np.float64)
    w = np.array([r["n_samples"] for r in rows], dtype=np.float64)
    ok = np.isfinite(vals)
    return float((vals[ok] * w[ok]).sum() / w[ok].sum()) if ok.any() else float("nan")


def gnsdr_summary(rows: list[dict], stems=("vocals", "accompaniment")) -> dict:
    """Length-weighted GNSDR / GSDR / GSIR / GSAR and the mean SDR of each stem over per-clip :func:`bss_scores` rows.

    Each row also holds ``n_samples``; ``{stem}_mean_sdr_db`` is ``None`` without rows.
    """
    metrics = {f"{stem}_gnsdr_db": length_weighted(rows, f"{stem}_nsdr_db") for stem in stems}
    for stem in stems:
        for m in ("sdr", "sir", "sar"):
            metrics[f"{stem}_g{m}_db"] = length_weighted(rows, f"{stem}_{m}_db")
        metrics[f"{stem}_mean_sdr_db"] = float(np.mean([r[f"{stem}_sdr_db"] for r in rows])) if rows else None
    return metrics
