"""STFT and spectrogram helpers (thin wrappers over ``torch.stft`` / ``torch.istft``).

Shapes: a waveform is ``[..., n_samples]``; a spectrogram is ``[..., n_freq, n_frames]``
with ``n_freq = n_fft // 2 + 1`` (e.g. 513 bins for ``n_fft = 1024``). Magnitudes are
linear; ``amplitude_to_db`` converts with ``20 log10``.
"""

from __future__ import annotations

import numpy as np
import torch


def _as_tensor(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x), dtype=torch.float32)


def stft(wav, n_fft: int = 1024, hop_length: int | None = None, win_length: int | None = None,
         center: bool = True) -> torch.Tensor:
    """Complex STFT with a periodic Hann window.

    Args:
        wav: ``[..., n_samples]`` tensor or array.
        n_fft: FFT size in samples.
        hop_length: hop in samples (default ``n_fft // 4``).
        win_length: window length in samples (default ``n_fft``).
        center: pad by ``n_fft // 2`` on both sides (librosa's convention).

    Returns:
        complex tensor ``[..., n_fft // 2 + 1, n_frames]``.
    """
    x = _as_tensor(wav)
    hop_length = hop_length or n_fft // 4
    win_length = win_length or n_fft
    window = torch.hann_window(win_length, device=x.device, dtype=x.dtype if x.is_floating_point() else torch.float32)
    lead = x.shape[:-1]
    spec = torch.stft(x.reshape(-1, x.shape[-1]), n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                      window=window, center=center, return_complex=True)
    return spec.reshape(*lead, *spec.shape[-2:])


def istft(spec: torch.Tensor, n_fft: int = 1024, hop_length: int | None = None, win_length: int | None = None,
          length: int | None = None, center: bool = True) -> torch.Tensor:
    """Inverse of :func:`stft` (same window and hop); ``length`` trims/pads to that many samples."""
    hop_length = hop_length or n_fft // 4
    win_length = win_length or n_fft
    window = torch.hann_window(win_length, device=spec.device, dtype=spec.real.dtype)
    lead = spec.shape[:-2]
    wav = torch.istft(spec.reshape(-1, *spec.shape[-2:]), n_fft=n_fft, hop_length=hop_length,
                      win_length=win_length, window=window, center=center, length=length)
    return wav.reshape(*lead, wav.shape[-1])


def magnitude_phase(wav, n_fft: int = 1024, hop_length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(magnitude, phase)`` of the STFT, each ``[..., n_fft // 2 + 1, n_frames]`` (phase in radians)."""
    spec = stft(wav, n_fft=n_fft, hop_length=hop_length)
    return spec.abs(), spec.angle()


def from_magnitude_phase(magnitude: torch.Tensor, phase: torch.Tensor, n_fft: int = 1024,
                         hop_length: int | None = None, length: int | None = None) -> torch.Tensor:
    """Recombine a magnitude estimate with a phase (e.g. the noisy mixture's) and invert to samples."""
    return istft(torch.polar(magnitude.clamp_min(0), phase), n_fft=n_fft, hop_length=hop_length, length=length)


def amplitude_to_db(magnitude, top_db: float | None = 80.0, ref: float | str = "max",
                    amin: float = 1e-10) -> np.ndarray:
    """``20 log10(|X| / ref)`` in dB as a NumPy array.

    Args:
        magnitude: linear magnitudes (tensor or array).
        top_db: clip values below ``max - top_db`` (``None`` for no clipping).
        ref: ``"max"`` (0 dB at the loudest bin) or a fixed linear reference.
        amin: floor that avoids ``log(0)``.
    """
    mag = magnitude.detach().cpu().numpy() if isinstance(magnitude, torch.Tensor) else np.asarray(magnitude)
    mag = np.maximum(np.abs(mag).astype(np.float64), amin)
    ref_value = mag.max() if ref == "max" else float(ref)
    db = 20.0 * np.log10(mag / max(ref_value, amin))
    if top_db is not None:
        db = np.maximum(db, db.max() - top_db)
    return db


def spectrogram_db(wav, n_fft: int = 512, hop_length: int | None = None, top_db: float | None = 80.0,
                   ref: float | str = "max") -> np.ndarray:
    """Log-magnitude spectrogram ``[n_fft // 2 + 1, n_frames]`` in dB of a mono waveform."""
    return amplitude_to_db(stft(wav, n_fft=n_fft, hop_length=hop_length).abs(), top_db=top_db, ref=ref)


def frequencies_hz(n_fft: int, sample_rate: int) -> np.ndarray:
    """Centre frequency in Hz of each of the ``n_fft // 2 + 1`` STFT bins."""
    return np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)


def frame_times_s(n_frames: int, hop_length: int, sample_rate: int) -> np.ndarray:
    """Time in seconds of each frame centre (``center=True`` STFT)."""
    return np.arange(n_frames) * hop_length / sample_rate


def check_stft_fits(n_samples: int, n_fft: int, hop_length: int | None = None, *, what: str = "the signal",
                    n_fft_flag: str = "--n-fft", hop_flag: str = "--hop-length") -> None:
    """Refuse STFT settings that do not fit a signal of ``n_samples`` samples.

    A centred STFT (:func:`stft`) needs at least ``n_fft`` samples for one frame that holds
    signal across its whole window (``torch.stft`` itself fails below ``n_fft // 2 + 1``
    with an unhelpful message), and a hop longer than the signal gives one frame only.

    Args:
        n_samples: length of the (shortest) signal in samples.
        n_fft, hop_length: STFT size and hop in samples.
        what: how the message names the signal, e.g. ``"the clips in data/q1"``.
        n_fft_flag, hop_flag: the command-line flags the message names.

    Raises:
        UserError: ``n_fft`` or ``hop_length`` exceeds ``n_samples``, or ``hop_length > n_fft``.
    """
    from audiolab.core.runtime import UserError
    hop_length = hop_length or n_fft // 4
    if n_fft > n_samples:
        raise UserError(f"{n_fft_flag} {n_fft} is longer than {what} ({n_samples} samples); "
                        f"use {n_fft_flag} <= {n_samples}")
    if hop_length > n_samples:
        raise UserError(f"{hop_flag} {hop_length} is longer than {what} ({n_samples} samples); "
                        f"use {hop_flag} <= {n_samples}")
    if hop_length > n_fft:
        raise UserError(f"{hop_flag} {hop_length} is larger than {n_fft_flag} {n_fft}: samples between "
                        f"frames would be skipped; use {hop_flag} <= {n_fft}")
