"""Music data for ``vae_bss.py music``: songs as (vocals, accompaniment) stems.

- MIR-1K (Hsu & Jang, IEEE TASLP 2010; ``Wavfile`` layout): stereo clips, **left channel =
  accompaniment, right channel = singing voice**. ``find_mir1k`` accepts ``<root>/mir1k`` or
  ``<root>/MIR-1K`` with either ``train/`` + ``test/`` folders or the public release's
  single ``Wavfile/`` folder, which is split by singer with the standard protocol
  (abjones and amy train, the other 17 singers test). A mono file is reported by path and
  skipped (it has no stems); a folder with no usable stereo file is an error.
- MUSDB18 (Rafii et al. 2017) through the ``musdb`` package when it is installed:
  ``vocals`` and ``accompaniment`` targets, down-mixed to mono and resampled.
- IRMAS (Bosch et al., ISMIR 2012) ``voi`` training excerpts: mixtures with singing and no
  stems, for qualitative separation only (spectrograms and listening).
- ``synthetic_songs``: the embedded default: a voice-like stem (a harmonic source with
  vibrato and note glides, shaped by vowel formants) and an accompaniment stem (chords,
  bass and a drum pattern). Labelled synthetic wherever it is used.

Every waveform is mono ``float32 [n_samples]`` at the requested sample rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiolab.core.io import AudioReadError, find_audio_files, load_audio, resample, unique_name
from audiolab.core.runtime import UserError

MIR1K_TRAIN_SINGERS = ("abjones", "amy")


class StemError(UserError):
    """Stems were expected (a stereo MIR-1K file, a MUSDB track) but the input has none."""


@dataclass
class Song:
    """One song's stems: ``vocals`` and ``accompaniment``, mono ``float32 [n_samples]`` at ``sample_rate`` Hz."""

    name: str
    vocals: np.ndarray
    accompaniment: np.ndarray
    sample_rate: int

    @property
    def n_samples(self) -> int:
        return int(self.vocals.shape[-1])


# ------------------------------------------------------------------------------ MIR-1K
def load_stereo_stems(path: str | Path, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """``(vocals, accompaniment)`` of a MIR-1K ``Wavfile`` clip: right channel = voice, left = accompaniment.

    Raises:
        AudioReadError: the file cannot be read.
        StemError: the file is not two-channel (a mono file holds no stems).
    """
    wav, _ = load_audio(path, sample_rate=sample_rate, mono=False)
    if wav.shape[0] != 2:
        raise StemError(f"{path} has {wav.shape[0]} channel(s); MIR-1K clips must be stereo with the "
                        "accompaniment on the left channel and the singing voice on the right")
    return np.ascontiguousarray(wav[1]), np.ascontiguousarray(wav[0])


def find_mir1k(data_root: str | Path) -> Path | None:
    """``<root>/mir1k`` or ``<root>/MIR-1K`` (or the root itself) if it holds ``train/``+``test/`` or ``Wavfile/``."""
    root = Path(data_root)
    for cand in (root / "mir1k", root / "MIR-1K", root / "MIR1K", root):
        if (cand / "train").is_dir() and (cand / "test").is_dir() and find_audio_files(cand / "test"):
            return cand
        if (cand / "Wavfile").is_dir() and find_audio_files(cand / "Wavfile"):
            return cand
    return None


def mir1k_files(folder: str | Path, split: str) -> list[Path]:
    """Audio files of ``split`` (``train``/``test``) in a MIR-1K folder found by :func:`find_mir1k`.

    With the public ``Wavfile/`` layout the split is by singer (file names
    ``<singer>_<song>_<clip>.wav``): abjones and amy are the training singers.
    """
    folder = Path(folder)
    if (folder / split).is_dir():
        return find_audio_files(folder / split)
    files = find_audio_files(folder / "Wavfile")
    is_train = lambda p: p.name.split("_")[0].lower() in MIR1K_TRAIN_SINGERS  # noqa: E731
    return [p for p in files if is_train(p) == (split == "train")]


def load_songs_from_stereo(paths: list[Path], sample_rate: int, skipped: list | None = None) -> list[Song]:
    """Load stereo stem files (MIR-1K layout); unreadable or mono files are reported by path and skipped.

    Unreadable includes NaN/inf samples (:func:`audiolab.core.io.load_audio`). Song names are the
    file stems, made unique (``x``, ``x_2``) so outputs named after them never collide.

    Raises:
        StemError: none of the files is a readable stereo file.
    """
    songs = []
    used: set[str] = set()
    for path in paths:
        try:
            vocals, accompaniment = load_stereo_stems(path, sample_rate)
        except (AudioReadError, StemError) as err:
            print(f"skipped: {err}")
            if skipped is not None:
                skipped.append((Path(path), str(err)))
            continue
        songs.append(Song(unique_name(Path(path).stem, used), vocals, accompaniment, sample_rate))
    if not songs:
        where = Path(paths[0]).parent if paths else "the given folder"
        raise StemError(f"no usable stereo stem file in {where} ({len(paths)} file(s) looked at); MIR-1K clips "
                        "must be stereo: accompaniment left, singing voice right")
    return songs


# ------------------------------------------------------------------------------ MUSDB18
def musdb_available() -> bool:
    """Whether the optional ``musdb`` package can be imported."""
    try:
        import musdb  # noqa: F401
    except ImportError:
        return False
    return True


def find_musdb(data_root: str | Path) -> Path | None:
    """``<root>/musdb18`` / ``musdb18hq`` / ``MUSDB18`` with ``train/`` and ``test/``, if ``musdb`` is installed."""
    if not musdb_available():
        return None
    root = Path(data_root)
    for cand in (root / "musdb18", root / "musdb18hq", root / "MUSDB18", root / "MUSDB18-HQ"):
        if (cand / "train").is_dir() and (cand / "test").is_dir():
            return cand
    return None


def load_musdb(folder: str | Path, subset: str, sample_rate: int, max_tracks: int | None = None,
               max_seconds: float | None = 30.0) -> list[Song]:
    """``vocals`` / ``accompaniment`` of MUSDB18 tracks via ``musdb`` (mono, resampled, optionally cropped).

    Args:
        folder: the MUSDB18 root (``train/``, ``test/``); ``.stem.mp4`` or the HQ WAV layout.
        subset: ``"train"`` or ``"test"``.
        max_tracks: keep the first N tracks (CPU budgets).
        max_seconds: crop each track to this many seconds from its middle (``None``: whole track).

    Raises:
        UserError: ``musdb`` is not installed or no track was found. A track whose stems
            hold NaN/inf samples is reported and skipped.
    """
    try:
        import musdb
    except ImportError:
        raise UserError("the musdb package is not installed: pip install musdb") from None
    folder = Path(folder)
    is_wav = not any(folder.rglob("*.stem.mp4"))
    db = musdb.DB(root=str(folder), subsets=subset, is_wav=is_wav)
    tracks = list(db)[:max_tracks] if max_tracks else list(db)
    if not tracks:
        raise UserError(f"musdb found no {subset} tracks under {folder}")
    songs = []
    for track in tracks:
        rate = int(track.rate)
        vocals = track.targets["vocals"].audio.mean(axis=1).astype(np.float32)
        accompaniment = track.targets["accompaniment"].audio.mean(axis=1).astype(np.float32)
        if not (np.isfinite(vocals).all() and np.isfinite(accompaniment).all()):
            print(f"skipped: musdb track {track.name}: its stems hold NaN or inf samples")
            continue
        if max_seconds:
            n = int(max_seconds * rate)
            start = max(0, (len(vocals) - n) // 2)
            vocals, accompaniment = vocals[start:start + n], accompaniment[start:start + n]
        songs.append(Song(track.name, resample(vocals, rate, sample_rate), resample(accompaniment, rate, sample_rate),
                          sample_rate))
    return songs


# -------------------------------------------------------------------------------- IRMAS
def find_irmas_voi(data_root: str | Path) -> Path | None:
    """IRMAS's ``voi`` (singing voice) training folder under the data root, if present."""
    root = Path(data_root)
    for cand in (root / "IRMAS-TrainingData" / "voi", root / "irmas" / "voi", root / "IRMAS" / "voi",
                 root / "irmas" / "IRMAS-TrainingData" / "voi"):
        if cand.is_dir() and find_audio_files(cand):
            return cand
    return None


# ---------------------------------------------------------------------------- synthetic
VOWEL_FORMANTS_HZ = {  # (F1, F2, F3), adult voice, after Peterson & Barney (1952)
    "a": (730, 1090, 2440), "e": (530, 1840, 2480), "i": (270, 2290, 3010),
    "o": (570, 840, 2410), "u": (300, 870, 2240),
}
_SCALE = np.array([0, 2, 4, 7, 9, 12, 14, 16])  # major pentatonic, semitones


def _formant_gain(freqs: np.ndarray, formants, bandwidth: float = 110.0) -> np.ndarray:
    """Spectral envelope: sum of resonance peaks at the formants, with a -6 dB/oct tilt."""
    env = sum(1.0 / (1.0 + ((freqs - f) / (bandwidth * (1 + i))) ** 2) * (0.8 ** i) for i, f in enumerate(formants))
    return env * np.minimum(1.0, 200.0 / np.maximum(freqs, 1.0)) ** 0.5


def synthetic_vocals(n_samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A voice-like stem: notes (pentatonic, 150-600 Hz) with vibrato and glides through vowel formants.

    Notes of 0.25-0.9 s with short rests; vibrato 4.5-6.5 Hz, depth 1-3 %; harmonics up to
    ``0.45 * sample_rate`` whose amplitudes follow the vowel's formant envelope; a little
    breath noise. Returns ``float32 [n_samples]`` with peak about 0.5.
    """
    out = np.zeros(n_samples, dtype=np.float64)
    base_midi = rng.uniform(50, 64)
    t = 0
    while t < n_samples:
        dur = int(rng.uniform(0.25, 0.9) * sample_rate)
        rest = int(rng.uniform(0.0, 0.35) * sample_rate) if rng.random() < 0.6 else 0
        dur = min(dur, n_samples - t)
        if dur <= int(0.05 * sample_rate):
            break
        midi = base_midi + _SCALE[rng.integers(len(_SCALE))]
        f0 = 440.0 * 2 ** ((midi - 69) / 12)
        tt = np.arange(dur) / sample_rate
        vib = 1 + rng.uniform(0.01, 0.03) * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * tt) * np.minimum(1, tt / 0.2)
        glide = 1 + (rng.uniform(-0.04, 0.04)) * np.exp(-tt / 0.05)
        f0_t = f0 * vib * glide
        phase = 2 * np.pi * np.cumsum(f0_t) / sample_rate
        formants = VOWEL_FORMANTS_HZ["aeiou"[rng.integers(5)]]
        note = np.zeros(dur)
        for k in range(1, int(0.45 * sample_rate / f0) + 1):
            note += _formant_gain(np.array([k * f0]), formants)[0] * np.sin(k * phase)
        note += 0.005 * rng.standard_normal(dur)  # breath
        env = np.minimum(1, tt / 0.04) * np.minimum(1, (dur / sample_rate - tt) / 0.06)
        out[t:t + dur] += note * env
        t += dur + rest
    peak = np.abs(out).max()
    return (0.5 * out / peak if peak > 0 else out).astype(np.float32)


def synthetic_accompaniment(n_samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """An accompaniment stem: chords (3 notes, soft sawtooth), a bass line and kick/snare/hi-hat.

    Tempo 90-130 BPM, one chord per bar from I-V-vi-IV in a random key. Returns
    ``float32 [n_samples]`` with peak about 0.5.
    """
    bpm = rng.uniform(90, 130)
    beat = int(60.0 / bpm * sample_rate)
    bar = 4 * beat
    key = rng.uniform(45, 57)
    progression = [(0, 4, 7), (7, 11, 14), (9, 12, 16), (5, 9, 12)]
    out = np.zeros(n_samples)
    tt_bar = np.arange(bar) / sample_rate
    for b, start in enumerate(range(0, n_samples, bar)):
        seg = min(bar, n_samples - start)
        chord = progression[b % 4]
        tone = np.zeros(bar)
        for semis in chord:
            f = 440.0 * 2 ** ((key + 12 + semis - 69) / 12)
            for k in range(1, 8):
                tone += np.sin(2 * np.pi * k * f * tt_bar) / k ** 1.5
        tone *= 0.25 * np.exp(-tt_bar / 1.5)
        fb = 440.0 * 2 ** ((key - 12 + chord[0] - 69) / 12)
        bass = 0.6 * (np.sin(2 * np.pi * fb * tt_bar) + 0.3 * np.sin(4 * np.pi * fb * tt_bar))
        bass *= np.exp(-(tt_bar % (beat * 2 / sample_rate)) / 0.4)
        out[start:start + seg] += (tone + bass)[:seg]
    # drums
    n_kick = int(0.15 * sample_rate)
    tk = np.arange(n_kick) / sample_rate
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-tk / 0.02)) * tk) * np.exp(-tk / 0.06)
    n_sn = int(0.12 * sample_rate)
    snare = rng.standard_normal(n_sn) * np.exp(-np.arange(n_sn) / sample_rate / 0.03) * 0.5
    n_hh = int(0.04 * sample_rate)
    hihat = np.diff(rng.standard_normal(n_hh + 1)) * np.exp(-np.arange(n_hh) / sample_rate / 0.008) * 0.2
    for i, start in enumerate(range(0, n_samples, beat // 2)):
        for hit, on in ((kick, i % 4 == 0), (snare, i % 4 == 2), (hihat, True)):
            if on:
                seg = min(len(hit), n_samples - start)
                out[start:start + seg] += hit[:seg]
    peak = np.abs(out).max()
    return (0.5 * out / peak if peak > 0 else out).astype(np.float32)


def synthetic_songs(n_songs: int, seconds: float = 6.0, sample_rate: int = 16000, seed: int = 0,
                    prefix: str = "synth") -> list[Song]:
    """``n_songs`` synthetic songs of ``seconds`` each (see :func:`synthetic_vocals` and
    :func:`synthetic_accompaniment`); deterministic for a given ``seed``."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    songs = []
    for i in range(n_songs):
        vocals = synthetic_vocals(n, sample_rate, rng)
        songs.append(Song(f"{prefix}_{i:03d}", vocals, synthetic_accompaniment(n, sample_rate, rng), sample_rate))
    return songs
