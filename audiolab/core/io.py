"""Audio input/output through ``soundfile`` (never ``torchaudio.load``).

Loaders accept any file soundfile reads (WAV, FLAC, OGG, ...), at any sample rate,
mono or stereo, and resample / down-mix on request. Writers produce 16-bit PCM WAV,
atomically (temp file + rename).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from audiolab.core.outputs import atomic_write
from audiolab.core.runtime import is_main_process

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".mp3"}


class AudioReadError(Exception):
    """An audio file could not be read (missing, truncated, empty or not audio)."""


def load_audio(path: str | Path, sample_rate: int | None = None, mono: bool = True,
               dtype: str = "float32") -> tuple[np.ndarray, int]:
    """Read an audio file with soundfile.

    Args:
        path: any file soundfile reads.
        sample_rate: resample to this rate in Hz (``None`` keeps the file's rate).
        mono: average the channels to one (``True``) or keep them.
        dtype: sample type of the returned array.

    Returns:
        ``(wav, sample_rate)``: ``wav`` is ``[n_samples]`` when ``mono`` else
        ``[n_channels, n_samples]``, floats in [-1, 1].

    Raises:
        AudioReadError: the file is missing, unreadable, holds no samples, or holds NaN
            or inf samples (possible in float WAV/FLAC; they would poison every metric and
            normalisation statistic downstream, so such a file is reported like an
            unreadable one).
    """
    path = Path(path)
    try:
        data, sr = sf.read(str(path), dtype=dtype, always_2d=True)
    except Exception as err:  # soundfile raises RuntimeError/LibsndfileError/OSError
        raise AudioReadError(f"cannot read audio file {path}: {err}") from None
    if data.shape[0] == 0:
        raise AudioReadError(f"audio file {path} holds no samples")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).any(axis=1).sum())
        raise AudioReadError(f"audio file {path} holds NaN or inf samples ({bad} of {data.shape[0]} frames)")
    wav = data.T  # [channels, samples]
    if mono:
        wav = wav.mean(axis=0)
    if sample_rate is not None and sr != sample_rate:
        wav = resample(wav, sr, sample_rate)
        sr = sample_rate
    return np.ascontiguousarray(wav, dtype=dtype), int(sr)


#: a clip whose every sample is at most this (one 16-bit step) holds no signal
SILENT_PEAK = 1 / 32768


def is_silent(wav: np.ndarray) -> bool:
    """True for a clip with no signal: all zeros, also after the down-mix to mono (right = -left cancels).

    The one test every loader applies to the mono clip it keeps (docs/ARCHITECTURE.md, "Rules"): a silent
    clip has no SI-SNR / SNR reference, no spectral peak, no word or emotion to recognise.
    """
    return not bool(np.any(np.abs(np.asarray(wav)) > SILENT_PEAK))


def resample(wav: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Band-limited resampling along the last axis with ``torchaudio.functional.resample``.

    Args:
        wav: ``[..., n_samples]`` float array.
        orig_sr, new_sr: sample rates in Hz.
    """
    if orig_sr == new_sr:
        return wav
    out = AF.resample(torch.as_tensor(np.ascontiguousarray(wav), dtype=torch.float32), int(orig_sr), int(new_sr))
    return out.numpy()


def save_audio(path: str | Path, wav: np.ndarray | torch.Tensor, sample_rate: int,
               normalize_if_clipping: bool = True) -> Path:
    """Write 16-bit PCM WAV atomically.

    Args:
        path: destination (``.wav``).
        wav: ``[n_samples]`` or ``[n_channels, n_samples]`` floats, nominally in [-1, 1].
        sample_rate: in Hz.
        normalize_if_clipping: if the peak exceeds 1, scale the whole signal down (with
            a warning) instead of letting the PCM conversion clip it.

    Raises:
        ValueError: the signal holds NaN or inf samples.
    """
    path = Path(path)
    if not is_main_process():  # torchrun: rank 0 writes
        return path
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().numpy()
    wav = np.asarray(wav, dtype=np.float32)
    if not np.all(np.isfinite(wav)):
        raise ValueError(f"refusing to write {path}: the signal holds NaN or inf samples")
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    if peak > 1.0 and normalize_if_clipping:
        warnings.warn(f"{path.name}: peak {peak:.3f} > 1, scaled down to avoid clipping", stacklevel=2)
        wav = wav / peak
    data = wav.T if wav.ndim == 2 else wav
    with atomic_write(path, suffix=".wav") as tmp:
        sf.write(tmp, data, int(sample_rate), subtype="PCM_16", format="WAV")
    return path


def find_audio_files(root: str | Path, extensions: Iterable[str] = AUDIO_EXTENSIONS) -> list[Path]:
    """All audio files below ``root`` (recursive), sorted, matched by extension (case-insensitive)."""
    exts = {e.lower() for e in extensions}
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in exts)


def iter_readable(paths: Iterable[Path], sample_rate: int | None = None, mono: bool = True,
                  skipped: list | None = None) -> Iterator[tuple[Path, np.ndarray, int]]:
    """Yield ``(path, wav, sample_rate)`` for each readable file; report and skip the rest.

    Unreadable files are printed (``skipped: <path>: <reason>``) and, if ``skipped`` is a
    list, appended to it as ``(path, reason)``; the iteration goes on.
    """
    for path in paths:
        try:
            wav, sr = load_audio(path, sample_rate=sample_rate, mono=mono)
        except AudioReadError as err:
            print(f"skipped: {err}")
            if skipped is not None:
                skipped.append((Path(path), str(err)))
            continue
        yield Path(path), wav, sr


def unique_name(name: str, used: set[str]) -> str:
    """``name``, or ``name_2``, ``name_3``, ... if already in ``used``; the result is added to ``used``.

    For output files named after input files: two inputs with the same base name
    (``a/x.wav``, ``b/x.wav``) must not overwrite each other's outputs.
    """
    candidate, k = name, 1
    while candidate in used:
        k += 1
        candidate = f"{name}_{k}"
    used.add(candidate)
    return candidate


def fit_length(wav: np.ndarray, n_samples: int, offset: int = 0) -> np.ndarray:
    """Crop or zero-pad the last axis to exactly ``n_samples`` (crop starts at ``offset``)."""
    if wav.shape[-1] >= n_samples:
        return wav[..., offset:offset + n_samples] if wav.shape[-1] - offset >= n_samples else wav[..., -n_samples:]
    pad = [(0, 0)] * (wav.ndim - 1) + [(0, n_samples - wav.shape[-1])]
    return np.pad(wav, pad)
