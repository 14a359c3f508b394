"""Keyword clips in memory: :class:`Clip`, :class:`KwsData`, reading, noise banks, trimming, duplicates.

The pieces every keyword dataset module shares (``speech_commands``, ``fsdd``,
``synthetic_keywords``); ``audiolab.data.keywords`` re-exports them beside its registry.

Bad input is reported by path and handled, the run goes on (:func:`read_clip`): unreadable files
are skipped; clips at another sample rate are resampled; stereo clips are down-mixed; truncated
WAVs (data chunk shorter than its header says) are kept with what they hold. Every such event is
listed in ``KwsData.issues``.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

from audiolab.augment.waveform import pink_noise, trim_silence
from audiolab.core.io import AudioReadError, find_audio_files, is_silent, load_audio
from audiolab.data.common import first_existing

KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
UNKNOWN, SILENCE = "_unknown_", "_silence_"
SPLITS = ("train", "val", "test")
SC_SAMPLE_RATE, FSDD_SAMPLE_RATE = 16000, 8000


# ----------------------------------------------------------------------------- containers
@dataclass
class Clip:
    """One labelled clip held in memory.

    Attributes:
        wav: ``[n_samples]`` float32 mono waveform at ``KwsData.sample_rate``.
        label: class name (``"yes"``, ``"three"``, ``"_unknown_"``, ...).
        speaker: speaker id (a Speech Commands hash, an FSDD name, an eSpeak voice).
        split: ``"train"``, ``"val"`` or ``"test"``.
        path: source file, or a description for synthetic / cut clips.
        orig_sample_rate: the file's own rate in Hz (before resampling).
        orig_channels: the file's channel count (before down-mixing).
        sha1: SHA-1 of the file's bytes (set by the canonical test-set loader, to find
            byte-identical duplicates; empty otherwise).
    """

    wav: np.ndarray
    label: str
    speaker: str
    split: str
    path: str
    orig_sample_rate: int
    orig_channels: int = 1
    sha1: str = ""


@dataclass
class KwsData:
    """A loaded keyword dataset.

    Attributes:
        name: ``"speech_commands"``, ``"fsdd"`` or ``"synthetic_keywords"``.
        source: ``"real"`` or ``"synthetic"``.
        sample_rate: rate of every ``Clip.wav`` in Hz.
        labels: class names in index order.
        clips: all clips of all splits.
        issues: ``(path, problem)`` for every file that was skipped or altered on load.
        notes: how the split was made, anything a reader of the results should know.
    """

    name: str
    source: str
    sample_rate: int
    labels: list[str]
    clips: list[Clip]
    issues: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def split(self, name: str) -> list[Clip]:
        """The clips of one split (``train``, ``val`` or ``test``)."""
        return [c for c in self.clips if c.split == name]

    def counts(self) -> dict[str, dict[str, int]]:
        """``{split: {label: count}}`` over every label (zeros included)."""
        out = {s: {lab: 0 for lab in self.labels} for s in SPLITS}
        for c in self.clips:
            out[c.split][c.label] += 1
        return out

    def durations_s(self) -> np.ndarray:
        """Clip durations in seconds, ``[n_clips]``."""
        return np.array([len(c.wav) / self.sample_rate for c in self.clips])


# ----------------------------------------------------------------------------- reading
def wav_declared_frames(path: str | Path) -> int | None:
    """Frames a RIFF/WAVE header declares in its ``data`` chunk, or ``None`` if not a plain WAV.

    Used to spot truncated files: libsndfile silently returns the frames actually present.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align = None
            while True:
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    fmt = fh.read(size)
                    if len(fmt) < 14:
                        return None
                    block_align = struct.unpack("<H", fmt[12:14])[0]
                    if size % 2:
                        fh.read(1)
                elif cid == b"data":
                    return size // block_align if block_align else None
                else:
                    fh.seek(size + (size % 2), os.SEEK_CUR)
    except OSError:
        return None


def read_clip(path: str | Path, sample_rate: int, issues: list | None = None) -> tuple[np.ndarray, int, int] | None:
    """Read one clip as mono float32 at ``sample_rate``; report and handle problems.

    Args:
        path: an audio file soundfile reads.
        sample_rate: target rate in Hz (other rates are resampled, and reported).
        issues: list that gets ``(path, problem)`` appended for every problem.

    Returns:
        ``(wav [n_samples], orig_sample_rate, orig_channels)``, or ``None`` when the file is
        missing, unreadable, holds NaN/inf samples, or is silent after the down-mix to mono
        (:func:`audiolab.core.io.is_silent`; printed as ``skipped: ...``).
    """
    issues = issues if issues is not None else []
    path = Path(path)
    try:
        info = sf.info(str(path))
        wav, _ = load_audio(path, sample_rate=sample_rate, mono=True)
    except (AudioReadError, RuntimeError, OSError) as err:
        msg = str(err) if isinstance(err, AudioReadError) else f"cannot read audio file {path}: {err}"
        print(f"skipped: {msg}")
        issues.append((str(path), f"unreadable, skipped ({msg})"))
        return None
    if is_silent(wav):
        why = "silent after the down-mix to mono" if info.channels > 1 else "silent (all zeros)"
        print(f"skipped: audio file {path} is {why}: nothing to recognise")
        issues.append((str(path), f"{why}, skipped"))
        return None
    if info.samplerate != sample_rate:
        issues.append((str(path), f"sample rate {info.samplerate} Hz, resampled to {sample_rate} Hz"))
    if info.channels != 1:
        issues.append((str(path), f"{info.channels} channels, down-mixed to mono"))
    declared = wav_declared_frames(path)
    if declared is not None and declared > info.frames:
        print(f"truncated: {path}: header declares {declared} frames, file holds {info.frames}; kept what is there")
        issues.append((str(path), f"truncated: {info.frames} of {declared} frames"))
    return wav.astype(np.float32), int(info.samplerate), int(info.channels)



def duplicate_groups(clips: Sequence[Clip]) -> list[list[Clip]]:
    """Groups of clips with byte-identical files (same ``sha1``), largest first; singletons left out."""
    by_hash: dict[str, list[Clip]] = {}
    for c in clips:
        if c.sha1:
            by_hash.setdefault(c.sha1, []).append(c)
    return sorted((g for g in by_hash.values() if len(g) > 1), key=lambda g: (-len(g), g[0].path))



# ----------------------------------------------------------------------------- noise
def find_noise_dir(root: Path) -> Path | None:
    """A folder of background-noise recordings under ``root``: ``noise/speech_commands_background``,
    ``speech_commands_background`` or Speech Commands' ``_background_noise_``; None if absent."""
    found = first_existing(Path(root), ["noise/speech_commands_background", "speech_commands_background",
                                        "SpeechCommands/speech_commands_v0.02/_background_noise_"],
                           must_contain="*.wav")
    return found


def load_noise_bank(folder: Path, sample_rate: int, issues: list | None = None) -> list[np.ndarray]:
    """Every readable noise recording in ``folder`` as mono float32 at ``sample_rate`` (silent ones dropped)."""
    out = []
    for path in find_audio_files(folder):
        got = read_clip(path, sample_rate, issues)
        if got is not None and np.any(got[0]):
            out.append(got[0])
    return out


def synthetic_noise_bank(sample_rate: int, seed: int = 0, seconds: float = 10.0) -> list[np.ndarray]:
    """Pink and white noise (10 s each, RMS 0.1) when no recorded noise is at hand."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    return [0.1 * pink_noise(n, rng), (0.1 * rng.standard_normal(n)).astype(np.float32)]


# ----------------------------------------------------------------------------- silence trimming
def trim_clips(data: KwsData, top_db: float) -> KwsData:
    """:func:`trim_silence` on every clip of ``data`` (in place) except ``_silence_`` clips."""
    for c in data.clips:
        if c.label != SILENCE:
            c.wav = trim_silence(c.wav, data.sample_rate, top_db)
    return data



def crop_long_clips(data: KwsData, max_seconds: float) -> int:
    """Centre-crop every clip longer than ``max_seconds`` (in place), reported by path; returns how many.

    A long recording (a 10-minute file dropped into a keyword folder) would otherwise be
    speed-perturbed and resampled whole in every epoch; only a ``--clip-seconds`` window of it is
    ever seen by a model.
    """
    limit = int(round(max_seconds * data.sample_rate))
    n = 0
    for c in data.clips:
        if len(c.wav) > limit:
            msg = (f"{len(c.wav) / data.sample_rate:.1f} s long, centre-cropped to {max_seconds:g} s "
                   "(--max-clip-seconds)")
            print(f"cropped: {c.path}: {msg}")
            data.issues.append((c.path, msg))
            start = (len(c.wav) - limit) // 2
            c.wav = c.wav[start:start + limit].copy()
            n += 1
    return n


def dataset_splits_summary(data: KwsData) -> str:
    """A one-line summary ``train N / val N / test N clips, K classes``."""
    c = {s: len(data.split(s)) for s in SPLITS}
    return f"train {c['train']} / val {c['val']} / test {c['test']} clips, {len(data.labels)} classes"

