"""Keyword-spotting data: Speech Commands, FSDD and an eSpeak NG keyword set, plus augmentation.

Used by ``speechcommands_rnn.py`` and ``benchmarks/kws_fsdd.py``.

Loaders (all return a :class:`KwsData` of in-memory :class:`Clip` s, mono float32 at one
sample rate, each tagged with its split ``train``/``val``/``test``):

- :func:`load_speech_commands`: Google Speech Commands (Warden 2018, arXiv:1804.03209) in the
  release's own layout ``<word>/<speaker>_nohash_<n>.wav``. The download and the official
  ``validation_list.txt`` / ``testing_list.txt`` go through ``torchaudio.datasets.SPEECHCOMMANDS``;
  audio is read with soundfile (``audiolab.core.io``), never ``torchaudio.load``. A folder without the
  lists (e.g. a few clips copied out) is split with the release's own speaker-hash rule
  (:func:`which_set`), which is how the official lists were made. ``unknown=True`` adds
  ``_unknown_`` (other words), ``silence=True`` adds ``_silence_`` (1 s cuts of
  ``_background_noise_``; train/val/test cut from disjoint stretches of each file).
- :func:`load_fsdd`: the Free Spoken Digit Dataset layout ``{digit}_{speaker}_{index}.wav``; splits
  hold whole speakers out (:func:`fsdd_speaker_split`).
- :func:`make_synthetic_keywords`: the embedded default, the ten keywords spoken by eSpeak NG
  (``audiolab.data.synth``) with many voices, rates and pitches, placed at a random time in a 1 s
  window and mixed with noise. The voice variants are split between train/val/test, so the
  test voices are unseen. It is SYNTHETIC and every output must say so.

Bad input is reported by path and handled, the run goes on: unreadable files are skipped;
files named in an official list but missing are skipped; clips at another sample rate are
resampled; stereo clips are down-mixed; truncated WAVs (data chunk shorter than its header
says) are kept with what they hold. Every such event is listed in ``KwsData.issues``.

Batching and augmentation: :class:`KwsDataset` (waveform augmentation for training only:
time shift, speed perturbation, background noise at a random SNR), :class:`PadCollate`
(pad / crop to a fixed length) and :class:`audiolab.augment.spectrogram.SpecAugment` (``TimeStretch``,
``FrequencyMasking``, ``TimeMasking``; Park et al. 2019, arXiv:1904.08779).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
import torch
import torchaudio
from tqdm.auto import tqdm

from audiolab.data.common import RealDataset, first_existing
from audiolab.core.io import AudioReadError, find_audio_files, load_audio
from audiolab.core.runtime import UserError
from audiolab.augment.waveform import add_noise, mix_at_snr, pink_noise, speed_perturb, time_shift, trim_silence
from audiolab.data.synth import VARIANTS, Voice, synthesize

KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
UNKNOWN, SILENCE = "_unknown_", "_silence_"
SPLITS = ("train", "val", "test")
SC_SAMPLE_RATE, FSDD_SAMPLE_RATE = 16000, 8000
#: from the Speech Commands README / TensorFlow ``input_data.py``: the hash modulus of ``which_set``
_MAX_NUM_WAVS_PER_CLASS = 2 ** 27 - 1
_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z0-9-]+)_(\d+)$")
#: eSpeak voice variants held out for the synthetic validation and test splits (unseen voices)
SYNTH_VAL_VOICES = ("m3", "f2", "klatt2", "david")
SYNTH_TEST_VOICES = ("m6", "f4", "klatt3", "steph")


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
        missing, unreadable or holds NaN/inf samples (printed as ``skipped: ...``).
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
    if info.samplerate != sample_rate:
        issues.append((str(path), f"sample rate {info.samplerate} Hz, resampled to {sample_rate} Hz"))
    if info.channels != 1:
        issues.append((str(path), f"{info.channels} channels, down-mixed to mono"))
    declared = wav_declared_frames(path)
    if declared is not None and declared > info.frames:
        print(f"truncated: {path}: header declares {declared} frames, file holds {info.frames}; kept what is there")
        issues.append((str(path), f"truncated: {info.frames} of {declared} frames"))
    return wav.astype(np.float32), int(info.samplerate), int(info.channels)


# ----------------------------------------------------------------------------- Speech Commands
def which_set(filename: str, validation_percentage: float = 10.0, testing_percentage: float = 10.0) -> str:
    """The split Speech Commands assigns a file to: ``"training"``, ``"validation"`` or ``"testing"``.

    The rule of the dataset's README (TensorFlow ``speech_commands/input_data.py``): the part of
    the file name before ``_nohash_`` (the speaker) is SHA-1 hashed, so all clips of a speaker
    land in the same split, and the split stays stable as the dataset grows.
    """
    base = os.path.basename(filename)
    speaker = re.sub(r"_nohash_.*$", "", base)
    digest = int(hashlib.sha1(speaker.encode("utf-8")).hexdigest(), 16)
    percentage = (digest % (_MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / _MAX_NUM_WAVS_PER_CLASS)
    if percentage < validation_percentage:
        return "validation"
    if percentage < validation_percentage + testing_percentage:
        return "testing"
    return "training"


def find_speech_commands(root: Path) -> Path | None:
    """The Speech Commands folder under ``root``, or None.

    The full release (``<word>/*_nohash_*.wav``) is looked for first: ``root`` itself,
    ``SpeechCommands/speech_commands_v0.02`` (torchaudio's download layout),
    ``SpeechCommands/speech_commands_v0.01``, ``speech_commands_v0.02``, ``speech_commands``; then
    the canonical test-set layout (:func:`is_test_set_layout`, any audio format):
    ``speech_commands_test_v0.02``, ``speech_commands_test_set_v0.02``, ``speech_commands_test``.
    """
    root = Path(root)
    if next(root.glob("*/*_nohash_*.wav"), None) is not None or is_test_set_layout(root):
        return root
    found = first_existing(root, ["SpeechCommands/speech_commands_v0.02", "SpeechCommands/speech_commands_v0.01",
                                  "speech_commands_v0.02", "speech_commands"], must_contain="*_nohash_*.wav")
    if found is not None:
        return found
    for cand in TEST_SET_FOLDERS:
        if is_test_set_layout(root / cand):
            return root / cand
    return None


#: folder names under the data root searched for the canonical test-set layout
TEST_SET_FOLDERS = ("speech_commands_test_v0.02", "speech_commands_test_set_v0.02", "speech_commands_test")


def download_speech_commands(root: Path) -> Path:
    """Download and extract Speech Commands v0.02 (2.3 GB) with ``torchaudio.datasets.SPEECHCOMMANDS``.

    Raises:
        UserError: the download failed (no network, disk full, ...).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    print(f"downloading Speech Commands v0.02 into {root / 'SpeechCommands'} (2.3 GB) ...")
    try:
        torchaudio.datasets.SPEECHCOMMANDS(str(root), download=True)
    except Exception as err:  # network / tar errors
        raise UserError(f"Speech Commands download failed ({err}); download "
                        "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz by hand and extract it "
                        f"into {root / 'SpeechCommands' / 'speech_commands_v0.02'}") from None
    return root / "SpeechCommands" / "speech_commands_v0.02"


SPEECH_COMMANDS = RealDataset(
    name="speech_commands", find=find_speech_commands, download=download_speech_commands,
    looked_for="<word>/*_nohash_*.wav in the data root, SpeechCommands/speech_commands_v0.02 or speech_commands, "
               "or the canonical test-set layout in speech_commands_test_v0.02 / speech_commands_test",
    how_to_get="run with --dataset speech_commands --download (torchaudio fetches v0.02, 2.3 GB), or extract "
               "speech_commands_v0.02.tar.gz into <data root>/SpeechCommands/speech_commands_v0.02.")


def official_split_files(folder: Path, issues: list | None = None) -> dict[str, list[Path]] | None:
    """``{"train"|"val"|"test": [paths]}`` from the official lists, via ``torchaudio.datasets.SPEECHCOMMANDS``.

    Files named in a list but missing are reported (``missing: ...``), added to ``issues`` and
    left out. Returns ``None`` when ``folder`` has no ``validation_list.txt`` / ``testing_list.txt``.
    """
    folder = Path(folder).resolve()
    if not ((folder / "validation_list.txt").is_file() and (folder / "testing_list.txt").is_file()):
        return None
    issues = issues if issues is not None else []
    # SPEECHCOMMANDS looks in <root>/<folder_in_archive>/<basename of url>; point it at ``folder``.
    root, archive, base = folder.parent.parent, folder.parent.name, folder.name
    out: dict[str, list[Path]] = {}
    for split, subset in (("train", "training"), ("val", "validation"), ("test", "testing")):
        ds = torchaudio.datasets.SPEECHCOMMANDS(str(root), url=base, folder_in_archive=archive, subset=subset)
        paths = []
        for n in range(len(ds)):
            path = folder.parent / ds.get_metadata(n)[0]
            if not path.is_file():
                print(f"missing: {path} (named in the {subset} list); skipped")
                issues.append((str(path), f"named in the {subset} list but missing, skipped"))
                continue
            paths.append(path)
        out[split] = paths
    return out


def load_speech_commands(folder: Path, words: Sequence[str] = KEYWORDS, *, unknown: bool = False,
                         silence: bool = False, sample_rate: int = SC_SAMPLE_RATE,
                         max_per_class: int | None = None, seed: int = 0, progress: bool = True) -> KwsData:
    """Load Speech Commands clips of ``words`` (plus optional ``_unknown_`` / ``_silence_``).

    Args:
        folder: the dataset folder (see :func:`find_speech_commands`).
        words: the keyword classes (default the 10-word task: yes, no, up, down, ...).
        unknown: add ``_unknown_``: clips of all other words, as many per split as the
            average keyword class has there (seeded random choice).
        silence: add ``_silence_``: 1 s cuts of ``_background_noise_`` (random gain 0.1-1), as
            many as the average keyword class; train/val/test come from the first 80 % / next
            10 % / last 10 % of each noise file, so no noise segment is shared between splits.
        sample_rate: rate in Hz to resample to (the release is 16 kHz).
        max_per_class: at most this many clips per class and split (seeded random choice).
        seed: for the random choices.

    Raises:
        UserError: ``folder`` holds none of the requested words.
    """
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    issues: list[tuple[str, str]] = []
    notes = []
    split_files = official_split_files(folder, issues)
    if split_files is None:
        notes.append("no official validation_list.txt/testing_list.txt: split by the dataset's speaker-hash rule")
        split_files = {"train": [], "val": [], "test": []}
        to_split = {"training": "train", "validation": "val", "testing": "test"}
        for path in sorted(folder.glob("*/*.wav")):
            if "_nohash_" in path.name and path.parent.name != "_background_noise_":
                split_files[to_split[which_set(path.name)]].append(path)
    else:
        notes.append("official Speech Commands validation/testing lists")
    wanted = set(words)
    chosen: list[tuple[Path, str, str]] = []
    for split in SPLITS:
        by_label: dict[str, list[Path]] = {}
        for path in split_files[split]:
            label = path.parent.name
            if label in wanted:
                by_label.setdefault(label, []).append(path)
            elif unknown:
                by_label.setdefault(UNKNOWN, []).append(path)
        n_keyword = [len(v) for k, v in by_label.items() if k != UNKNOWN]
        per_class = int(round(np.mean(n_keyword))) if n_keyword else 0
        if UNKNOWN in by_label:
            pool = by_label[UNKNOWN]
            by_label[UNKNOWN] = [pool[i] for i in sorted(rng.choice(len(pool), min(per_class, len(pool)),
                                                                     replace=False))]
        for label, paths in sorted(by_label.items()):
            if max_per_class is not None and len(paths) > max_per_class:
                paths = [paths[i] for i in sorted(rng.choice(len(paths), max_per_class, replace=False))]
            chosen += [(p, label, split) for p in paths]
    if not any(lab in wanted for _, lab, _ in chosen):
        raise UserError(f"{folder} holds no clips of the words {list(words)}; "
                        f"its folders are {sorted(p.name for p in folder.iterdir() if p.is_dir())[:40]}")
    clips = []
    for path, label, split in tqdm(chosen, desc="reading speech commands", disable=not progress, leave=False):
        got = read_clip(path, sample_rate, issues)
        if got is None:
            continue
        wav, sr, ch = got
        speaker = path.name.split("_nohash_")[0]
        clips.append(Clip(wav, label, speaker, split, str(path), sr, ch))
    labels = [w for w in words]
    if unknown:
        labels.append(UNKNOWN)
    if silence:
        labels.append(SILENCE)
        n_sil = {s: max(1, int(round(np.mean([sum(1 for c in clips if c.split == s and c.label == w)
                                                for w in words])))) for s in SPLITS}
        if max_per_class is not None:
            n_sil = {s: min(n, max_per_class) for s, n in n_sil.items()}
        noise_dir = folder / "_background_noise_"
        noises = load_noise_bank(noise_dir, sample_rate, issues) if noise_dir.is_dir() else []
        if not noises:
            notes.append("no _background_noise_ folder: _silence_ cut from synthetic pink/white noise")
            noises = synthetic_noise_bank(sample_rate, seed)
        clips += silence_clips(noises, n_sil, sample_rate, rng)
    return KwsData("speech_commands", "real", sample_rate, labels, clips, issues, notes)


def silence_clips(noises: Sequence[np.ndarray], n_per_split: dict[str, int], sample_rate: int,
                  rng: np.random.Generator, seconds: float = 1.0) -> list[Clip]:
    """``_silence_`` clips: random ``seconds``-long cuts of background noise at a random gain (0.1-1).

    Train cuts come from the first 80 % of each noise recording, val from the next 10 %, test
    from the last 10 %, so no stretch of noise is in two splits.
    """
    bounds = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}
    n = int(seconds * sample_rate)
    out = []
    for split, count in n_per_split.items():
        for i in range(count):
            k = int(rng.integers(len(noises)))
            noise = noises[k]
            lo, hi = (int(b * len(noise)) for b in bounds[split])
            if hi - lo <= n:
                seg = np.resize(noise[lo:hi] if hi > lo else noise, n)
            else:
                start = int(rng.integers(lo, hi - n))
                seg = noise[start:start + n]
            gain = float(rng.uniform(0.1, 1.0))
            out.append(Clip((seg * gain).astype(np.float32), SILENCE, f"noise{k}", split,
                            f"_background_noise_ #{k} cut {i}", sample_rate))
    return out


# ----------------------------------------------------------------------------- canonical test-set layout
#: ``_unknown_/<word>_<speaker>_nohash_<n>``: the speaker is the field after the word
_UNKNOWN_NAME = re.compile(r"^(?P<word>[^_]+)_(?P<speaker>[^_]+)_nohash_(?P<n>\d+)$")
_WORD_NAME = re.compile(r"^(?P<speaker>[^_]+)_nohash_(?P<n>\d+)$")
#: fewest clips a split may hold, as a fraction of all clips (see :func:`check_splits`)
MIN_SPLIT_FRACTION = 0.02


def is_test_set_layout(folder: Path) -> bool:
    """True when ``folder`` looks like the canonical Speech Commands test set: ``_unknown_/`` or
    ``_silence_/`` beside ``<word>/*_nohash_*`` clips, and no ``validation_list.txt``."""
    folder = Path(folder)
    if not folder.is_dir() or (folder / "validation_list.txt").is_file():
        return False
    has_special = (folder / UNKNOWN).is_dir() or (folder / SILENCE).is_dir()
    return has_special and any(p.is_dir() and any(p.glob("*_nohash_*.*")) for p in folder.iterdir())


def class_order(names: Sequence[str]) -> list[str]:
    """Class names in the task's order: the ten keywords as in ``KEYWORDS``, other words sorted,
    then ``_unknown_`` and ``_silence_``."""
    names = set(names)
    words = [w for w in KEYWORDS if w in names] + sorted(n for n in names if n not in KEYWORDS
                                                          and n not in (UNKNOWN, SILENCE))
    return words + [n for n in (UNKNOWN, SILENCE) if n in names]


def load_test_set_layout(folder: Path, sample_rate: int = SC_SAMPLE_RATE, *, split: str = "test",
                         progress: bool = True) -> KwsData:
    """Every clip of a folder in the canonical Speech Commands test-set layout, as given.

    The layout of ``speech_commands_test_set_v0.02.tar.gz`` (Warden 2018): ``<word>/<speaker>_nohash_<n>.*``
    for the core words, ``_unknown_/<word>_<speaker>_nohash_<n>.*`` (the speaker is the field after
    the word) and ``_silence_/*.*`` (1 s background-noise clips, one class). Any audio format
    soundfile reads; other rates are resampled, stereo down-mixed. Each class is a subfolder;
    clips are tagged ``split`` (a speaker split is :func:`speaker_split`'s job). ``_silence_`` clips
    get the speaker ``_silence_/<file stem>`` (no speaker; each clip its own group).

    Reported by path and skipped (``KwsData.issues``): a clip whose speaker cannot be parsed from
    its name, unreadable files, NaN/inf samples. An empty class folder is reported and is not a class.
    Reported and kept: clips not 1 s long (more than 1 % off), other sample rates, stereo.
    Each clip's ``sha1`` (file bytes) is set so that byte-identical duplicates can be grouped
    (:func:`duplicate_groups`).

    Raises:
        UserError: ``folder`` holds no readable clips.
    """
    folder = Path(folder)
    issues: list[tuple[str, str]] = []
    jobs: list[tuple[Path, str, str]] = []
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and p.name != "_background_noise_"
                        and not p.name.startswith("."))
    for d in class_dirs:
        files = find_audio_files(d)
        if not files:
            print(f"skipped: {d}: class folder holds no audio clips")
            issues.append((str(d), "class folder holds no audio clips, not a class"))
            continue
        for path in files:
            stem = path.stem
            if d.name == SILENCE:
                speaker = f"{SILENCE}/{stem}"
            else:
                m = (_UNKNOWN_NAME if d.name == UNKNOWN else _WORD_NAME).match(stem)
                if m is None:
                    want = "<word>_<speaker>_nohash_<n>" if d.name == UNKNOWN else "<speaker>_nohash_<n>"
                    print(f"skipped: {path}: speaker cannot be parsed (name is not {want})")
                    issues.append((str(path), f"speaker cannot be parsed (name is not {want}), skipped"))
                    continue
                speaker = m.group("speaker")
            jobs.append((path, d.name, speaker))
    clips = []
    for path, label, speaker in tqdm(jobs, desc=f"reading {folder.name}", disable=not progress, leave=False):
        got = read_clip(path, sample_rate, issues)
        if got is None:
            continue
        wav, sr, ch = got
        if abs(len(wav) - sample_rate) > sample_rate // 100:  # the layout's clips are 1.0 s
            msg = f"{len(wav) / sample_rate:.2f} s long, not 1 s: kept (padded / cropped to the clip window)"
            print(f"note: {path}: {msg}")
            issues.append((str(path), msg))
        digest = hashlib.sha1(path.read_bytes()).hexdigest()
        clips.append(Clip(wav, label, speaker, split, str(path), sr, ch, digest))
    if not clips:
        raise UserError(f"{folder} holds no readable clips in the Speech Commands test-set layout "
                        "(<word>/<speaker>_nohash_<n>.wav, _unknown_/<word>_<speaker>_nohash_<n>.wav, _silence_/*.wav)")
    labels = class_order({c.label for c in clips})
    notes = [f"canonical test-set layout: {len(clips)} clips as given ({folder})"]
    return KwsData("speech_commands", "real", sample_rate, labels, clips, issues, notes)


def duplicate_groups(clips: Sequence[Clip]) -> list[list[Clip]]:
    """Groups of clips with byte-identical files (same ``sha1``), largest first; singletons left out."""
    by_hash: dict[str, list[Clip]] = {}
    for c in clips:
        if c.sha1:
            by_hash.setdefault(c.sha1, []).append(c)
    return sorted((g for g in by_hash.values() if len(g) > 1), key=lambda g: (-len(g), g[0].path))


def speaker_split(data: KwsData, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.1) -> KwsData:
    """Seeded speaker-disjoint train/val/test split (in place), 80/10/10 of the speakers by default.

    Speakers are drawn with scikit-learn's ``GroupShuffleSplit`` (the test speakers, then the
    validation speakers from the rest), so every clip of a speaker lands in one split. Clips
    without a speaker (``_silence_``, speaker ``_silence_/...``) are split the same way, each
    clip its own group. Byte-identical duplicate files (:func:`duplicate_groups`) are kept in one
    split: in Speech Commands they are the same speaker's, so grouping by speaker already does it;
    any group that would still straddle is moved whole to its first clip's split (noted).

    Raises:
        UserError: fewer than three speakers, or fractions outside (0, 1).
    """
    from sklearn.model_selection import GroupShuffleSplit

    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise UserError(f"split fractions must be in (0, 1) and sum below 1; got val {val_fraction}, "
                        f"test {test_fraction}")

    def assign(members: list[Clip], kind: str, salt: int) -> None:
        groups = np.array([c.speaker for c in members])
        n_groups = len(set(groups.tolist()))
        if n_groups < 3:
            raise UserError(f"a speaker-disjoint train/val/test split needs at least 3 {kind}, found {n_groups}")
        idx = np.arange(len(members))
        rest, test = next(GroupShuffleSplit(1, test_size=test_fraction, random_state=seed + salt)
                          .split(idx, groups=groups))
        train, val = next(GroupShuffleSplit(1, test_size=val_fraction / (1 - test_fraction),
                                            random_state=seed + salt + 1).split(rest, groups=groups[rest]))
        for i in test:
            members[i].split = "test"
        for i in rest[val]:
            members[i].split = "val"
        for i in rest[train]:
            members[i].split = "train"

    silence = [c for c in data.clips if c.speaker.startswith(f"{SILENCE}/")]
    speech = [c for c in data.clips if not c.speaker.startswith(f"{SILENCE}/")]
    if speech:
        assign(speech, "speakers", 0)
    if silence:
        assign(silence, "_silence_ clips", 100)
    moved = 0
    for group in duplicate_groups(data.clips):
        for c in group[1:]:
            if c.split != group[0].split:
                c.split = group[0].split
                moved += 1
    n_spk = {s: len({c.speaker for c in speech if c.split == s}) for s in SPLITS}
    data.notes.append(f"seeded speaker-disjoint split (GroupShuffleSplit, seed {seed}): speakers train "
                      f"{n_spk['train']} / val {n_spk['val']} / test {n_spk['test']}"
                      + (f"; {moved} duplicate clips moved to their group's split" if moved else ""))
    return data


def check_splits(data: KwsData, min_fraction: float = MIN_SPLIT_FRACTION) -> None:
    """Refuse a split that leaves train, val or test empty or nearly empty.

    Each split must hold at least ``max(n_classes, min_fraction x all clips)`` clips. Classes
    missing from a split are printed as a warning (the run goes on).

    Raises:
        UserError: a split below that minimum (names the split, its count and the minimum).
    """
    total = len(data.clips)
    need = max(len(data.labels), int(math.ceil(min_fraction * total)))
    counts = data.counts()
    for s in SPLITS:
        n = sum(counts[s].values())
        if n < need:
            raise UserError(f"the {s} split of {data.name} holds {n} of {total} clips (at least {need} needed: "
                            f"one per class and {min_fraction:.0%} of the clips); "
                            f"{'; '.join(data.notes) or 'check the data'}")
        missing = [lab for lab in data.labels if counts[s][lab] == 0]
        if missing:
            print(f"warning: the {s} split holds no clips of {missing}")


# ----------------------------------------------------------------------------- FSDD
def find_fsdd(root: Path) -> Path | None:
    """The FSDD ``recordings`` folder under ``root`` (``fsdd/recordings``, ``free-spoken-digit-dataset/recordings``,
    ``recordings``, ``fsdd``, or ``root`` itself), or None."""
    root = Path(root)
    found = first_existing(root, ["fsdd/recordings", "free-spoken-digit-dataset/recordings", "recordings", "fsdd"],
                           must_contain="[0-9]_*_*.wav")
    if found is None and next(root.glob("[0-9]_*_*.wav"), None) is not None:
        return root
    return found


FSDD = RealDataset(
    name="fsdd", find=find_fsdd, looked_for="fsdd/recordings/{digit}_{speaker}_{index}.wav",
    how_to_get="git clone https://github.com/Jakobovski/free-spoken-digit-dataset and put its recordings/ "
               "folder at <data root>/fsdd/recordings.")


def load_fsdd(folder: Path, sample_rate: int = FSDD_SAMPLE_RATE, test_speaker: str | None = None,
              val_indices: Sequence[int] = range(5), progress: bool = True,
              val_speaker: str | None = None) -> KwsData:
    """Load FSDD clips ``{digit}_{speaker}_{index}.wav`` with a speaker-independent split.

    Args:
        folder: the ``recordings`` folder.
        sample_rate: rate in Hz (FSDD is 8 kHz).
        test_speaker: the held-out speaker (all of their clips are the test split); default the
            alphabetically last speaker.
        val_indices: recording indices of the *training* speakers used for validation (FSDD's own
            test indices 0-4); see :func:`fsdd_speaker_split`.
        val_speaker: hold this second speaker out whole as the validation split instead
            (speaker-independent validation, at the cost of one training speaker).

    Files whose names do not follow the pattern are reported and skipped.

    Raises:
        UserError: no FSDD files, fewer than two speakers, or ``test_speaker`` unknown.
    """
    folder = Path(folder)
    issues: list[tuple[str, str]] = []
    clips = []
    for path in tqdm(find_audio_files(folder), desc="reading fsdd", disable=not progress, leave=False):
        m = _FSDD_NAME.match(path.stem)
        if m is None:
            print(f"skipped: {path}: name does not follow {{digit}}_{{speaker}}_{{index}}.wav")
            issues.append((str(path), "name does not follow {digit}_{speaker}_{index}.wav, skipped"))
            continue
        got = read_clip(path, sample_rate, issues)
        if got is None:
            continue
        wav, sr, ch = got
        digit, speaker, index = int(m.group(1)), m.group(2), int(m.group(3))
        clips.append(Clip(wav, DIGIT_WORDS[digit], speaker, f"idx{index}", str(path), sr, ch))
    if not clips:
        raise UserError(f"no readable FSDD files ({{digit}}_{{speaker}}_{{index}}.wav) in {folder}")
    data = KwsData("fsdd", "real", sample_rate, list(DIGIT_WORDS), clips, issues)
    return fsdd_speaker_split(data, test_speaker, val_indices, val_speaker)


def fsdd_speaker_split(data: KwsData, test_speaker: str | None = None,
                       val_indices: Sequence[int] = range(5), val_speaker: str | None = None) -> KwsData:
    """Re-split FSDD clips (in place) so that the test speaker is never seen in training.

    ``test``: every clip of ``test_speaker``. ``val``: recordings with an index in
    ``val_indices`` of the other speakers (so validation is *not* speaker-independent: with
    only 3-5 speakers in FSDD, holding a second speaker out for validation would leave too
    few to train on). ``train``: the rest. The recording index is read from ``clip.path``.
    With ``val_speaker`` every clip of that speaker is the validation split instead (validation
    is then speaker-independent too, and one speaker fewer is trained on).

    Raises:
        UserError: fewer than two speakers (three with ``val_speaker``), an unknown
            ``test_speaker`` / ``val_speaker``, or the two the same.
    """
    speakers = sorted({c.speaker for c in data.clips})
    if len(speakers) < 2:
        raise UserError(f"a speaker-independent split needs at least two speakers, found {speakers}")
    test_speaker = test_speaker or speakers[-1]
    if test_speaker not in speakers:
        raise UserError(f"--test-speaker {test_speaker!r} is not in the data; speakers: {speakers}")
    if val_speaker is not None:
        if val_speaker not in speakers or val_speaker == test_speaker or len(speakers) < 3:
            raise UserError(f"--val-speaker {val_speaker!r} must be a speaker other than the test speaker "
                            f"{test_speaker!r}, with at least one left to train on; speakers: {speakers}")
        for c in data.clips:
            c.split = "test" if c.speaker == test_speaker else ("val" if c.speaker == val_speaker else "train")
        data.notes = [f"speaker-independent: test speaker {test_speaker}; validation speaker {val_speaker}; "
                      f"train speakers {[s for s in speakers if s not in (test_speaker, val_speaker)]}"]
        return data
    val_set = set(int(i) for i in val_indices)
    for c in data.clips:
        index = int(_FSDD_NAME.match(Path(c.path).stem).group(3))
        c.split = "test" if c.speaker == test_speaker else ("val" if index in val_set else "train")
    data.notes = [f"speaker-independent: test speaker {test_speaker}; train speakers "
                  f"{[s for s in speakers if s != test_speaker]}; validation = their recordings "
                  f"{min(val_set)}-{max(val_set)}"]
    return data


def fsdd_speakers(folder: Path) -> list[str]:
    """The speaker names in an FSDD recordings folder (from file names, no audio read)."""
    return sorted({m.group(2) for p in Path(folder).glob("*.wav") if (m := _FSDD_NAME.match(p.stem))})


# ----------------------------------------------------------------------------- synthetic
def make_synthetic_keywords(words: Sequence[str] = KEYWORDS, clips_per_voice: int = 2, *,
                            sample_rate: int = SC_SAMPLE_RATE, seed: int = 0, noise: Sequence[np.ndarray] = (),
                            snr_db: tuple[float, float] = (5.0, 30.0), voices: Sequence[str] = VARIANTS,
                            languages: Sequence[str] = ("en-us",), progress: bool = True) -> KwsData:
    """The embedded default: ``words`` spoken by eSpeak NG voices, 1 s clips mixed with noise.

    Each voice variant (``<language>+<variant>``, the language drawn from ``languages``, by default
    American English only) speaks every word ``clips_per_voice`` times with a random rate
    (120-220 words/min), pitch and pitch range; the word starts at a random time
    inside the 1 s window and is mixed with a random stretch of ``noise`` (or pink noise) at a
    random SNR in ``snr_db``. Voices in ``SYNTH_VAL_VOICES`` / ``SYNTH_TEST_VOICES`` form the
    val / test splits, so test voices are never heard in training.

    Returns a :class:`KwsData` with ``source="synthetic"``.

    Raises:
        audiolab.data.synth.SynthesisError: eSpeak NG cannot be loaded.
    """
    rng = np.random.default_rng(seed)
    n = sample_rate
    clips = []
    jobs = [(v, w, k) for v in voices for w in words for k in range(clips_per_voice)]
    for variant, word, k in tqdm(jobs, desc="synthesising keywords (eSpeak NG)", disable=not progress, leave=False):
        language = languages[int(rng.integers(len(languages)))] if len(languages) > 1 else languages[0]
        voice = Voice(name=f"{language}+{variant}", rate=int(rng.integers(120, 220)), pitch=int(rng.integers(20, 80)),
                      pitch_range=int(rng.integers(20, 80)), volume=100)
        speech = synthesize(word, voice, sample_rate)[: int(0.95 * n)]
        speech = 0.5 * speech / (np.abs(speech).max() + 1e-9) * float(rng.uniform(0.4, 1.0))
        wav = np.zeros(n, dtype=np.float32)
        start = int(rng.integers(0, n - len(speech) + 1))
        wav[start:start + len(speech)] = speech
        if noise:
            src = noise[int(rng.integers(len(noise)))]
            off = int(rng.integers(0, max(len(src) - n, 0) + 1))
            bg = np.resize(src[off:off + n], n).astype(np.float32)
        else:
            bg = pink_noise(n, rng)
        if np.any(bg):
            wav, _ = mix_at_snr(wav, bg, float(rng.uniform(*snr_db)))
        wav = np.clip(wav, -1.0, 1.0)
        split = "test" if variant in SYNTH_TEST_VOICES else ("val" if variant in SYNTH_VAL_VOICES else "train")
        clips.append(Clip(wav.astype(np.float32), word, variant, split, f"synthetic:{word}/{variant}/{k}",
                          sample_rate))
    notes = [f"eSpeak NG voices; val voices {list(SYNTH_VAL_VOICES)}, test voices {list(SYNTH_TEST_VOICES)} "
             "(unseen in training)"]
    return KwsData("synthetic_keywords", "synthetic", sample_rate, list(words), clips, [], notes)


#: eSpeak NG's English accents (language codes), drawn per clip by :func:`add_synthetic_voices`
ENGLISH_ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-029", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
                   "en-us-nyc")


def add_synthetic_voices(data: KwsData, clips_per_voice: int, *, seed: int = 0,
                         snr_db: tuple[float, float] = (20.0, 40.0), voices: Sequence[str] = VARIANTS,
                         languages: Sequence[str] = ENGLISH_ACCENTS, progress: bool = True) -> int:
    """Add eSpeak NG renderings of every class word to the *training* split of a real dataset.

    A corpus with few speakers (FSDD: three to train on) teaches a model those voices rather
    than the words: on FSDD leave-one-speaker-out, the errors are whole classes of the new
    speaker sent to one wrong word. Synthetic voices (``voices`` x ``clips_per_voice``
    renderings per word, each in a random English accent of ``languages``, random rate, pitch and
    pitch range; :func:`make_synthetic_keywords`,
    mixed with pink noise at ``snr_db``) add speaker variety that costs nothing to record. It is
    a form of data augmentation: validation and test stay real, and the added clips carry
    ``speaker="espeak:<variant>"`` and ``path="synthetic:..."`` so they can be told apart.
    Classes eSpeak cannot say (``_unknown_``, ``_silence_``) get none. Modifies ``data`` in
    place and returns the number of clips added.

    Raises:
        audiolab.data.synth.SynthesisError: eSpeak NG cannot be loaded.
    """
    words = [w for w in data.labels if w not in (UNKNOWN, SILENCE)]
    if clips_per_voice <= 0 or not words:
        return 0
    syn = make_synthetic_keywords(words, clips_per_voice, sample_rate=data.sample_rate, seed=seed + 1,
                                  snr_db=snr_db, voices=voices, languages=languages, progress=progress)
    for c in syn.clips:
        c.split, c.speaker = "train", f"espeak:{c.speaker}"
    data.clips.extend(syn.clips)
    data.notes.append(f"training split augmented with {len(syn.clips)} synthetic eSpeak NG clips "
                      f"({len(voices)} voices x {clips_per_voice} per word); validation and test are real")
    return len(syn.clips)


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


# ----------------------------------------------------------------------------- augmentation
@dataclass
class WaveAugment:
    """Waveform augmentation for training clips (each part off when its setting is 0 / empty).

    Attributes:
        shift_s: random time shift of up to +-``shift_s`` seconds (zero fill).
        speeds: speed-perturbation factors drawn uniformly (resampling: tempo and pitch move
            together, as in Ko et al. 2015, "Audio augmentation for speech recognition").
        noise_prob: probability of adding background noise.
        snr_db: range of the noise SNR in dB.
        gain_db: random gain range in dB.
    """

    shift_s: float = 0.1
    speeds: tuple[float, ...] = (0.9, 0.95, 1.0, 1.05, 1.1)
    noise_prob: float = 0.5
    snr_db: tuple[float, float] = (5.0, 25.0)
    gain_db: tuple[float, float] = (-6.0, 6.0)


class KwsDataset(torch.utils.data.Dataset):
    """Clips as ``(wav [n_samples] float32 tensor, label index, clip index)``.

    With ``augment`` (training only) each access draws: a speed factor, a time shift, a gain and,
    with ``noise_prob``, background noise at a random SNR (from ``noises``). Evaluation datasets
    get ``augment=None`` and return the clips unchanged.
    """

    def __init__(self, clips: Sequence[Clip], labels: Sequence[str], sample_rate: int,
                 augment: WaveAugment | None = None, noises: Sequence[np.ndarray] = (), seed: int = 0):
        self.clips = list(clips)
        self.index = {lab: i for i, lab in enumerate(labels)}
        missing = {c.label for c in self.clips} - set(self.index)
        if missing:
            raise ValueError(f"clip labels {sorted(missing)} are not among the classes {list(labels)}")
        self.sample_rate = sample_rate
        self.augment = augment
        self.noises = list(noises)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int):
        clip = self.clips[i]
        wav = clip.wav
        aug, rng = self.augment, self.rng
        if aug is not None:
            if aug.speeds:
                wav = speed_perturb(wav, float(rng.choice(aug.speeds)), self.sample_rate)
            if aug.shift_s > 0:
                wav = time_shift(wav, int(rng.integers(-int(aug.shift_s * self.sample_rate),
                                                       int(aug.shift_s * self.sample_rate) + 1)))
            if aug.gain_db and aug.gain_db != (0.0, 0.0):
                wav = wav * 10 ** (float(rng.uniform(*aug.gain_db)) / 20)
            if aug.noise_prob > 0 and self.noises and rng.random() < aug.noise_prob:
                wav = add_noise(wav, self.noises, float(rng.uniform(*aug.snr_db)), rng)
        return torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)), self.index[clip.label], i


class PadCollate:
    """``collate_fn``: pad or crop every waveform to ``n_samples`` and stack.

    Shorter clips are zero-padded around the centre (the word stays in the middle of the
    window); longer clips are cropped around the centre, or at a random offset when
    ``random_crop`` (training). Returns ``(wav [B, n_samples], labels [B] long,
    lengths [B] long (samples of real audio in the window), indices [B] long)``.
    """

    def __init__(self, n_samples: int, random_crop: bool = False, seed: int = 0):
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        self.n_samples = int(n_samples)
        self.random_crop = random_crop
        self.rng = np.random.default_rng(seed)

    def fit(self, wav: torch.Tensor) -> torch.Tensor:
        """One ``[n]`` waveform padded / cropped to ``[n_samples]``."""
        n, target = wav.shape[-1], self.n_samples
        if n >= target:
            start = int(self.rng.integers(0, n - target + 1)) if self.random_crop else (n - target) // 2
            return wav[start:start + target]
        left = (target - n) // 2
        return torch.nn.functional.pad(wav, (left, target - n - left))

    def __call__(self, batch):
        wavs, labels, indices = zip(*batch)
        lengths = torch.tensor([min(w.shape[-1], self.n_samples) for w in wavs], dtype=torch.long)
        out = torch.stack([self.fit(w) for w in wavs])
        return out, torch.tensor(labels, dtype=torch.long), lengths, torch.tensor(indices, dtype=torch.long)


def dataset_splits_summary(data: KwsData) -> str:
    """A one-line summary ``train N / val N / test N clips, K classes``."""
    c = {s: len(data.split(s)) for s in SPLITS}
    return f"train {c['train']} / val {c['val']} / test {c['test']} clips, {len(data.labels)} classes"

