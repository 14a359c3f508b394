"""Speech-enhancement evaluation: per-signal scores, baselines and per-condition summaries.

- :class:`Mixture`: one evaluation signal (noisy input, clean reference or None, input SNR).
- :func:`score`: SNR as ``10 log10(sum s^2 / sum (s - s_hat)^2)`` in dB on the time signal
  (``audiolab.core.metrics.snr``), SI-SNR (Le Roux et al. 2019), PESQ wide-band (ITU-T
  P.862.2, ``pesq`` package) and STOI (Taal et al. 2011, ``pystoi``), each also as an
  improvement over the noisy input. An undefined score (silent reference, PESQ finding no
  speech) is ``None`` with a reason, never inf or NaN.
- :func:`spectral_gating`: the blind baseline, ``noisereduce`` (Sainburg et al. 2020,
  non-stationary mode, no noise clip).
- :func:`evaluate_set`, :func:`summarize`, :func:`metrics_from_summary`: every method on
  every signal, means per (set, method, input SNR), flat ``metrics.json`` keys.

Signals are ``[n_samples]`` float32 NumPy arrays at ``sample_rate`` (16 kHz for PESQ wide-band).
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from audiolab.core.progress import progress

from audiolab.core.io import save_audio
from audiolab.core.metrics import mean_finite, si_snr, snr

SAMPLE_RATE = 16000  # Hz; PESQ wide-band needs 16 kHz
METRICS = ("snr_db", "snr_improvement_db", "si_snr_db", "si_snr_improvement_db", "pesq", "stoi")


@dataclass
class Mixture:
    """One evaluation signal: ``noisy`` ``[n_samples]`` float32 at 16 kHz, ``clean`` the same or None."""

    name: str                  # file-safe identifier
    noisy: np.ndarray
    clean: np.ndarray | None
    snr_db: float | None       # input SNR by construction (None: unknown)
    noise: str                 # noise file / type
    group: str                 # "test" | "heldout" | "train" | "val" | "unlabeled"


def snr_tag(snr_db: float) -> str:
    """File/metric-safe tag of an SNR in dB: ``-5 -> 'm5db'``, ``0 -> '0db'``, ``2.5 -> '2p5db'``."""
    text = f"{abs(snr_db):g}".replace(".", "p")
    return f"{'m' if snr_db < 0 else ''}{text}db"


def safe_name(name: str) -> str:
    """``name`` with every run of characters other than ``A-Za-z0-9_.-`` replaced by ``_`` (file names)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def spectral_gating(noisy: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Baseline: ``noisereduce.reduce_noise`` (non-stationary spectral gating, no noise clip).

    ``[n_samples]`` -> ``[n_samples]`` float32 (Sainburg et al. 2020, ``noisereduce`` package).
    """
    import noisereduce as nr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = nr.reduce_noise(y=noisy.astype(np.float32), sr=sample_rate, stationary=False)
    return np.asarray(out, dtype=np.float32)[: noisy.shape[0]]


def score(estimate: np.ndarray, clean: np.ndarray, noisy: np.ndarray, with_perceptual: bool = True,
          sample_rate: int = SAMPLE_RATE) -> dict:
    """Scores of one estimate against its clean reference.

    Args:
        estimate, clean, noisy: ``[n_samples]`` waveforms at ``sample_rate`` (16 kHz for PESQ).
        with_perceptual: also compute PESQ and STOI (slow: ~40 ms per 2.5 s signal).

    Returns:
        a dict with ``snr_db``, ``snr_improvement_db`` (over the noisy input), ``si_snr_db``,
        ``si_snr_improvement_db`` (dB), ``pesq`` (MOS-LQO), ``stoi`` (0..1) and ``note``; a
        score that is undefined is ``None`` and the reason is in ``note`` (silent reference:
        SNR undefined; PESQ found no utterance). PESQ and STOI are ``None`` unless
        ``with_perceptual``.
    """
    est = torch.as_tensor(estimate, dtype=torch.float64)
    ref = torch.as_tensor(clean, dtype=torch.float64)
    mix = torch.as_tensor(noisy, dtype=torch.float64)
    row: dict = {"note": ""}
    try:
        row["snr_db"] = float(snr(est, ref))
        row["snr_improvement_db"] = row["snr_db"] - float(snr(mix, ref))
    except ValueError as err:
        row["snr_db"] = row["snr_improvement_db"] = None
        row["note"] = str(err)
    if row["snr_db"] is not None:
        row["si_snr_db"] = float(si_snr(est, ref))
        row["si_snr_improvement_db"] = row["si_snr_db"] - float(si_snr(mix, ref))
    else:
        row["si_snr_db"] = row["si_snr_improvement_db"] = None
    row["pesq"] = row["stoi"] = None
    if with_perceptual and row["snr_db"] is not None:
        from pesq import pesq
        from pystoi import stoi
        try:
            row["pesq"] = float(pesq(sample_rate, clean.astype(np.float64), estimate.astype(np.float64), "wb"))
        except Exception as err:  # pesq.NoUtterancesError, BufferTooShortError
            row["note"] = (row["note"] + f"; PESQ undefined: {type(err).__name__}").lstrip("; ")
        value = float(stoi(clean.astype(np.float64), estimate.astype(np.float64), sample_rate, extended=False))
        row["stoi"] = value if math.isfinite(value) else None
    for k in METRICS:
        if row[k] is not None and not math.isfinite(row[k]):
            row[k] = None
    return row


def mean_defined(values) -> float | None:
    """:func:`audiolab.core.metrics.mean_finite`, with ``None`` (an empty CSV cell) when no value is defined."""
    mean = mean_finite(values)
    return mean if math.isfinite(mean) else None


def peak_safe(wav: np.ndarray) -> np.ndarray:
    """``wav`` scaled to a peak of 0.99 if its peak exceeds 1 (so that 16-bit PCM does not clip), else as is."""
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    return wav / peak * 0.99 if peak > 1.0 else wav


def evaluate_set(mixtures: Sequence[Mixture], methods: dict[str, Callable[[np.ndarray], np.ndarray]],
                 pesq_max: int = 0, perceptual: bool = True, wav_dir: Path | None = None,
                 wav_method: str | None = None, desc: str = "eval", sample_rate: int = SAMPLE_RATE,
                 oracles: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] | None = None) -> list[dict]:
    """Run every method on every mixture and score it; one row per (mixture, method).

    Args:
        mixtures: the signals; those without a clean reference are run (and saved), not scored.
        methods: ``{name: fn}``, ``fn`` maps a noisy ``[n_samples]`` signal to an estimate of its length.
        pesq_max: PESQ/STOI for the first ``pesq_max`` mixtures of each input SNR (0: all).
        perceptual: PESQ/STOI at all.
        wav_dir, wav_method: the ``wav_method`` estimate of every mixture is saved to ``wav_dir``.
        oracles: ``{name: fn(noisy, clean)}``, methods that see the clean reference (oracle masks,
            ``audiolab.core.masks``), scored like the others on the mixtures that have one.

    Returns:
        rows of :func:`score` plus ``set``, ``signal``, ``noise``, ``input_snr_db``, ``method``. A
        mixture on which a method fails or gives NaN/inf samples is reported (``skipped: ...``)
        and left out, so one bad signal does not lose the whole evaluation.
    """
    rows = []
    seen: dict = {}
    for mix in progress(mixtures, desc):
        seen[mix.snr_db] = seen.get(mix.snr_db, 0) + 1
        perc = perceptual and (pesq_max <= 0 or seen[mix.snr_db] <= pesq_max)
        mix_rows = []
        try:
            every = {**methods, **{k: (lambda x, f=f: f(x, mix.clean)) for k, f in (oracles or {}).items()
                                   if mix.clean is not None}}
            for method, fn in every.items():
                est = fn(mix.noisy)
                if not np.all(np.isfinite(est)):
                    raise ValueError(f"the {method} estimate holds NaN or inf samples")
                if wav_dir is not None and method == wav_method:
                    save_audio(wav_dir / f"{mix.name}.wav", peak_safe(est), sample_rate)
                if mix.clean is None:
                    continue
                row = {"set": mix.group, "signal": mix.name, "noise": mix.noise, "input_snr_db": mix.snr_db,
                       "method": method}
                row.update(score(est, mix.clean, mix.noisy, with_perceptual=perc, sample_rate=sample_rate))
                mix_rows.append(row)
        except (ValueError, RuntimeError) as err:  # one bad signal must not lose the whole evaluation
            print(f"skipped: {desc} signal {mix.name}: {err}")
            continue
        rows += mix_rows
    return rows


def summarize(rows: Sequence[dict]) -> list[dict]:
    """Mean of every score per (set, method, input SNR) and per (set, method) over all SNRs ("all").

    Each row also holds ``n_signals`` and ``n_pesq`` (signals with a PESQ score); undefined
    scores are left out of the means (:func:`mean_defined`).
    """
    groups: dict = {}
    for r in rows:
        for snr_key in (r["input_snr_db"], "all"):
            groups.setdefault((r["set"], r["method"], snr_key), []).append(r)
    out = []
    for (set_, method, snr_key), rs in groups.items():
        row = {"set": set_, "method": method, "input_snr_db": snr_key, "n_signals": len(rs),
               "n_pesq": sum(r["pesq"] is not None for r in rs)}
        row.update({m: mean_defined(r[m] for r in rs) for m in METRICS})
        out.append(row)
    return out


def metrics_from_summary(summary: Sequence[dict], model_method: str) -> dict:
    """Flat metrics.json keys from :func:`summarize` rows (undefined scores are left out).

    Model: ``test_snr_db``, ``test_snr_improvement_db``, ``test_si_snr_db``, ``test_pesq``,
    ``test_stoi`` and per input SNR ``test_snr_improvement_db_input_0db`` (``m5db`` for -5);
    spectral gating the same with ``baseline_gating_``; the noisy input
    ``baseline_noisy_test_snr_db`` / ``_pesq`` / ``_stoi``; held-out noise types ``heldout_*``;
    training mixtures ``train_*`` (SNR only); oracle masks ``oracle_irm_test_*``, ``oracle_psm_test_*``.
    """
    prefix = {model_method: "", "noisy": "baseline_noisy_", "spectral_gating": "baseline_gating_",
              "oracle_irm": "oracle_irm_", "oracle_psm": "oracle_psm_"}
    flat: dict = {}
    for r in summary:
        if r["method"] not in prefix:
            continue
        head = f"{prefix[r['method']]}{r['set']}_"
        noisy = r["method"] == "noisy"
        if r["input_snr_db"] == "all":
            keys = ("snr_db", "si_snr_db", "pesq", "stoi") if noisy else METRICS
            if r["method"] == model_method:
                flat[f"{r['set']}_n_signals"] = r["n_signals"]
                if r["n_pesq"]:
                    flat[f"{r['set']}_n_pesq_signals"] = r["n_pesq"]
        elif r["input_snr_db"] is not None:
            keys = ("pesq", "stoi") if noisy else ("snr_db", "snr_improvement_db", "pesq", "stoi")
        else:
            continue
        suffix = "" if r["input_snr_db"] == "all" else f"_input_{snr_tag(float(r['input_snr_db']))}"
        for m in keys:
            if r[m] is not None:
                flat[f"{head}{m}{suffix}"] = r[m]
    return dict(sorted(flat.items(), key=lambda kv: (not kv[0].startswith("test_"), kv[0])))
