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

For training and separation on spectrogram patches: ``load_music_splits`` (train /
validation / test songs of the chosen dataset, clips shorter than one patch dropped, test
mixtures set to a voice-to-accompaniment ratio), ``PatchSampler`` (random waveform segments
per epoch, with remixing across clips), ``magnitude_scale`` / ``feature_stats`` (input
statistics of the training mixtures), ``clip_problem`` (why a clip cannot be scored) and
``separate_with_masks`` (patch-wise soft masks applied to the mixture STFT, inverted to audio).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from audiolab.augment.waveform import mix_at_snr
from audiolab.core import dsp
from audiolab.core.io import AudioReadError, find_audio_files, is_silent, load_audio, resample, unique_name
from audiolab.core.runtime import UserError
from audiolab.data.common import RealDataset, choose_dataset, resolve_data_root
from audiolab.data.splits import refuse_overlap

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


# ------------------------------------------------------------ splits and spectrogram patches
def patch_samples(patch_frames: int, hop_length: int, n_fft: int) -> int:
    """Samples that give exactly ``patch_frames`` STFT frames without centre padding."""
    return (patch_frames - 1) * hop_length + n_fft


def prepare_song(song: Song, snr_db: float) -> Song:
    """The song with its accompaniment scaled to ``snr_db`` voice-to-accompaniment ratio (silent stems kept)."""
    try:
        _, acc = mix_at_snr(song.vocals, song.accompaniment, snr_db)
    except ValueError:  # a silent stem: no ratio to set
        acc = song.accompaniment
    return Song(song.name, song.vocals, acc, song.sample_rate)


def drop_short(songs: list[Song], min_samples: int, what: str) -> list[Song]:
    """Report and drop clips shorter than one patch (``min_samples``).

    Raises:
        UserError: no clip is left.
    """
    kept = []
    for s in songs:
        if s.n_samples < min_samples:
            print(f"skipped: {what} clip {s.name} is {s.n_samples / s.sample_rate:.3f} s, shorter than one patch "
                  f"({min_samples / s.sample_rate:.3f} s = --patch-frames x --hop-length + --n-fft)")
        else:
            kept.append(s)
    if not kept:
        raise UserError(f"every {what} clip is shorter than one patch ({min_samples} samples); use longer audio "
                        "or a smaller --patch-frames / --n-fft")
    return kept


def load_music_splits(dataset: str, data_root: str | Path | None, *, sample_rate: int, seed: int, min_samples: int,
                      mix_snr_db: float = 0.0, val_clips: int = 8, download: bool = False,
                      synthetic: tuple[int, int, float] = (48, 12, 6.0), max_train_clips: int | None = None,
                      max_test_clips: int | None = None, musdb_tracks: tuple[int, int] | None = None,
                      irmas_dir: Path | None = None, val_singer: str | None = None,
                      allow_overlap: bool = False) -> dict:
    """Train / validation / test songs (vocals and accompaniment stems) and where they came from.

    Args:
        dataset: ``auto`` (MIR-1K, then MUSDB18 if found under the data root, else synthetic),
            ``mir1k``, ``musdb`` or ``synthetic`` (the ``--dataset`` choices).
        data_root: ``--data-root`` (``None``: ``$AUDIOLAB_DATA``, else ``data/``).
        sample_rate: Hz of every returned waveform.
        seed: seed of the synthetic training songs (test songs: ``10000 + seed``) and of the
            validation split.
        min_samples: clips shorter than this (one patch, :func:`patch_samples`) are reported and dropped.
        mix_snr_db: voice-to-accompaniment ratio every song is set to (:func:`prepare_song`).
        val_clips: training clips held out for validation (at most a fifth of them; none with one clip).
        val_singer: validate on (up to ``val_clips``) clips of this singer (name prefix) and train
            on the other singers only; ``None``: a random held-out share of all training clips.
        download: passed to :func:`audiolab.data.common.choose_dataset`.
        synthetic: ``(n_train, n_test, seconds)`` synthetic songs.
        max_train_clips, max_test_clips: MIR-1K clips used at most (``None``: all).
        musdb_tracks: ``(n_train, n_test)`` MUSDB18 tracks (``None``: the two limits above, else 20 / 10).
        irmas_dir: IRMAS ``voi`` folder (``None``: looked for under the data root).
        allow_overlap: ``--allow-overlap``: test songs equal to training ones only warn
            (:func:`audiolab.data.splits.refuse_overlap`).

    Returns:
        ``{"train", "val", "test": list[Song], "dataset": str, "data_source": "real" | "synthetic",
        "skipped": [(path, reason)], "irmas": Path | None}``.

    Raises:
        UserError: the named dataset is missing, every train / test clip is too short,
            ``val_singer`` names no training clip or all of them, or a test song has the stems of a
            training song.
    """
    root = resolve_data_root(data_root)
    sr = sample_rate
    mir = RealDataset("mir1k", find_mir1k, "MIR-1K: http://mirlab.org/dataset/public/MIR-1K.zip; unzip into "
                      "<data-root>/MIR-1K (Wavfile/) or put train/ and test/ folders in <data-root>/mir1k",
                      looked_for="mir1k/ or MIR-1K/ with train/+test/ or Wavfile/")
    mus = RealDataset("musdb", find_musdb, "MUSDB18: https://sigsep.github.io/datasets/musdb.html; pip install "
                      "musdb and put it in <data-root>/musdb18 (train/, test/)",
                      looked_for="musdb18/ with train/ and test/ (and the musdb package installed)")
    choice = choose_dataset(dataset, root, [mir, mus], "synthetic",
                            "synthetic songs: harmonic voice through vowel formants + chords, bass, drums",
                            download=download)
    skipped: list = []
    if choice.synthetic:
        n_train, n_test, secs = synthetic
        train = synthetic_songs(n_train, secs, sr, seed=seed, prefix="synth_train")
        test = synthetic_songs(n_test, secs, sr, seed=10_000 + seed, prefix="synth_test")
        name = "synthetic_songs"
    elif choice.name == "mir1k":
        train_files, test_files = mir1k_files(choice.path, "train"), mir1k_files(choice.path, "test")
        train_files = train_files[:max_train_clips] if max_train_clips else train_files
        test_files = test_files[:max_test_clips] if max_test_clips else test_files
        train = load_songs_from_stereo(train_files, sr, skipped)
        test = load_songs_from_stereo(test_files, sr, skipped)
        name = "mir1k"
    else:
        n_tr, n_te = musdb_tracks or (max_train_clips or 20, max_test_clips or 10)
        train = load_musdb(choice.path, "train", sr, max_tracks=n_tr)
        test = load_musdb(choice.path, "test", sr, max_tracks=n_te)
        name = "musdb18"
    train = drop_short(train, min_samples, "training")
    test = drop_short(test, min_samples, "test")
    train = [prepare_song(s, mix_snr_db) for s in train]
    test = [prepare_song(s, mix_snr_db) for s in test]
    rng = np.random.default_rng(seed)
    if val_singer:  # a singer held out: validation measures generalisation to a new voice
        held = [s for s in train if s.name.split("_")[0].lower() == val_singer.lower()]
        if not held or len(held) == len(train):
            raise UserError(f"--val-singer {val_singer}: needs some, not all, training clips named {val_singer}_*")
        train = [s for s in train if s not in held]
        val = [held[i] for i in rng.permutation(len(held))[:val_clips]]
    else:
        n_val = min(val_clips, max(1, len(train) // 5)) if len(train) > 1 else 0
        order = rng.permutation(len(train))
        val = [train[i] for i in order[:n_val]]
        train = [train[i] for i in order[n_val:]] or val
    refuse_overlap(((s.name, np.concatenate([s.vocals, s.accompaniment])) for s in [*train, *val]),
                   ((s.name, np.concatenate([s.vocals, s.accompaniment])) for s in test),
                   allow=allow_overlap, what=name)
    irmas = irmas_dir or find_irmas_voi(root)
    return {"train": train, "val": val, "test": test, "dataset": name, "data_source": choice.source,
            "skipped": skipped, "irmas": irmas}


class PatchSampler:
    """Each iteration (epoch): ``n_patches`` random ``(vocals, accompaniment)`` waveform segments ``[B, L]``.

    A share ``remix_prob`` of the segments pairs the vocals of one clip with the
    accompaniment of another; every accompaniment segment gets a random gain of +-3 dB.
    ``pitch_shift`` > 0: each vocal segment is resampled by a factor ``2 ** (u / 12)``, ``u`` uniform in
    +-``pitch_shift`` semitones (pitch and formants move together, as a higher or lower voice; linear
    interpolation). Draws come from ``numpy.random.default_rng(seed)``, in a fixed order.
    """

    def __init__(self, songs: list[Song], segment: int, n_patches: int, batch_size: int, remix_prob: float,
                 seed: int, pitch_shift: float = 0.0):
        self.songs, self.segment, self.n_patches, self.batch_size = songs, segment, n_patches, batch_size
        self.remix_prob, self.pitch_shift = remix_prob, pitch_shift
        self.rng = np.random.default_rng(seed)

    def _voice(self, wav: np.ndarray, off: int) -> np.ndarray:
        """``segment`` samples of ``wav`` from ``off``, pitch-shifted when ``pitch_shift`` > 0."""
        if not self.pitch_shift:
            return wav[off:off + self.segment]
        n = min(wav.shape[-1], math.ceil(self.segment * 2 ** (self.rng.uniform(-1, 1) * self.pitch_shift / 12)))
        off = min(off, wav.shape[-1] - n)
        src = wav[off:off + n]
        return np.interp(np.linspace(0, n - 1, self.segment), np.arange(n), src).astype(np.float32)

    def __len__(self) -> int:
        return (self.n_patches + self.batch_size - 1) // self.batch_size

    def _segment(self, wav: np.ndarray) -> np.ndarray:
        start = self.rng.integers(0, wav.shape[-1] - self.segment + 1)
        return wav[start:start + self.segment]

    def __iter__(self):
        n_songs = len(self.songs)
        for start in range(0, self.n_patches, self.batch_size):
            b = min(self.batch_size, self.n_patches - start)
            voc, acc = [], []
            for _ in range(b):
                i = self.rng.integers(n_songs)
                j = self.rng.integers(n_songs) if self.rng.random() < self.remix_prob else i
                if i == j:  # same excerpt of both stems
                    off = self.rng.integers(0, self.songs[i].n_samples - self.segment + 1)
                    v = self._voice(self.songs[i].vocals, off)
                    a = self.songs[i].accompaniment[off:off + self.segment]
                else:
                    vocals = self.songs[i].vocals
                    v = self._voice(vocals, self.rng.integers(0, vocals.shape[-1] - self.segment + 1))
                    a = self._segment(self.songs[j].accompaniment)
                voc.append(v)
                acc.append(a * 10 ** (self.rng.uniform(-3, 3) / 20))
            yield torch.from_numpy(np.stack(voc)), torch.from_numpy(np.stack(acc).astype(np.float32))


def clip_problem(song: Song, n_fft: int) -> str | None:
    """Why ``song`` cannot be scored (silent stem, shorter than one ``n_fft`` frame, non-finite samples) or ``None``."""
    if song.n_samples < n_fft:
        return f"{song.n_samples} samples, shorter than one STFT frame (--n-fft {n_fft})"
    for stem in ("vocals", "accompaniment"):
        wav = getattr(song, stem)
        if not np.isfinite(wav).all():
            return f"the {stem} stem holds NaN or inf samples"
        if is_silent(wav):
            return f"the {stem} reference stem is silent (all zeros): SDR/SIR/SAR are undefined"
    return None


def magnitude_scale(songs: list[Song], n_fft: int, hop_length: int) -> float:
    """RMS of the first 50 songs' mixture STFT magnitudes (a fixed scale for a magnitude loss)."""
    total, count = 0.0, 0
    for s in songs[:50]:
        mag = dsp.stft(torch.from_numpy(s.vocals + s.accompaniment), n_fft=n_fft, hop_length=hop_length).abs()
        total += float((mag ** 2).sum())
        count += mag.numel()
    return max(math.sqrt(total / max(count, 1)), 1e-8)


def feature_stats(songs: list[Song], n_fft: int, hop_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bin mean and std ``[n_freq, 1]`` of ``log1p(|X|)`` over the first 50 songs' mixtures."""
    feats = [torch.log1p(dsp.stft(torch.from_numpy(s.vocals + s.accompaniment), n_fft=n_fft,
                                  hop_length=hop_length).abs()) for s in songs[:50]]
    allf = torch.cat(feats, dim=-1)
    return allf.mean(-1, keepdim=True), allf.std(-1, keepdim=True).clamp_min(1e-3)


@torch.no_grad()
def separate_with_masks(mask_fn: Callable[[torch.Tensor], torch.Tensor], mixture: np.ndarray, *, n_fft: int,
                        hop_length: int, patch_frames: int, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Separate a mono mixture ``[n_samples]`` into two estimates ``[n_samples]`` with patch-wise soft masks.

    The mixture STFT is cut into patches of ``patch_frames`` frames with 50 % overlap;
    ``mask_fn`` maps magnitude patches ``[P, n_freq, patch_frames]`` (up to ``batch_size`` at a
    time) to masks ``[P, 2, n_freq, patch_frames]`` on the CPU; masks are averaged where
    patches overlap, applied to the complex mixture STFT (mixture phase) and inverted.

    Raises:
        UserError: the mixture is shorter than one STFT frame.
    """
    if mixture.shape[-1] < n_fft:
        raise UserError(f"the mixture has {mixture.shape[-1]} samples, fewer than one STFT frame ({n_fft})")
    spec = dsp.stft(torch.from_numpy(np.ascontiguousarray(mixture, dtype=np.float32)), n_fft=n_fft,
                    hop_length=hop_length)  # [F, N]
    mag = spec.abs()
    n_frames, T = mag.shape[-1], patch_frames
    hop = max(1, T // 2)
    n_patch = max(1, math.ceil(max(n_frames - T, 0) / hop) + 1)
    padded = F.pad(mag, (0, (n_patch - 1) * hop + T - n_frames))
    patches = padded.unfold(-1, T, hop).permute(1, 0, 2)  # [P, F, T]
    masks = torch.cat([mask_fn(patches[s:s + batch_size]) for s in range(0, len(patches), batch_size)])
    acc = torch.zeros(2, mag.shape[0], padded.shape[-1])
    weight = torch.zeros(padded.shape[-1])
    for p in range(n_patch):
        acc[:, :, p * hop:p * hop + T] += masks[p]
        weight[p * hop:p * hop + T] += 1
    mask = (acc / weight)[..., :n_frames]
    est = dsp.istft(mask * spec, n_fft=n_fft, hop_length=hop_length, length=mixture.shape[-1])
    return est[0].numpy(), est[1].numpy()
