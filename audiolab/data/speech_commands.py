"""Google Speech Commands (Warden 2018, arXiv:1804.03209): the full release and the canonical test-set layout.

- :func:`load_speech_commands`: the release's own layout ``<word>/<speaker>_nohash_<n>.wav``. The
  download and the official ``validation_list.txt`` / ``testing_list.txt`` go through
  ``torchaudio.datasets.SPEECHCOMMANDS``; audio is read with soundfile (``audiolab.core.io``), never
  ``torchaudio.load``. A folder without the lists (e.g. a few clips copied out) is split with the
  release's own speaker-hash rule (:func:`which_set`), which is how the official lists were made.
  ``unknown=True`` adds ``_unknown_`` (other words), ``silence=True`` adds ``_silence_`` (1 s cuts
  of ``_background_noise_``; train/val/test cut from disjoint stretches of each file).
- :func:`load_test_set_layout`: a folder in the layout of ``speech_commands_test_set_v0.02``
  (``<word>/``, ``_unknown_/``, ``_silence_/``, any audio format), every clip as given; a speaker
  split of it is ``audiolab.data.keywords.speaker_split``'s job; :func:`load_test_set` loads one as
  ``--test-set DIR`` and checks it against the task trained on.

Files named in an official list but missing are reported and skipped (``KwsData.issues``).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import torchaudio
from audiolab.core.progress import progress as progress_bar

from audiolab.core.io import find_audio_files
from audiolab.core.runtime import UserError
from audiolab.data.common import RealDataset, first_existing
from audiolab.data.splits import refuse_overlap
from audiolab.data.keyword_clips import (KEYWORDS, SC_SAMPLE_RATE, SILENCE, SPLITS, UNKNOWN, Clip, KwsData,
                                         crop_long_clips, load_noise_bank, read_clip, synthetic_noise_bank,
                                         trim_clips)

#: from the Speech Commands README / TensorFlow ``input_data.py``: the hash modulus of ``which_set``
_MAX_NUM_WAVS_PER_CLASS = 2 ** 27 - 1


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
    for path, label, split in progress_bar(chosen, "reading speech commands", disable=not progress):
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
    for path, label, speaker in progress_bar(jobs, f"reading {folder.name}", disable=not progress):
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


def load_test_set(folder: Path, data: KwsData, max_clip_seconds: float, trim_db: float,
                  allow_overlap: bool = False) -> KwsData:
    """Load ``--test-set DIR`` (canonical test-set layout) and check it against the task ``data`` trains on.

    Its clips are cropped and trimmed as the training clips are (``max_clip_seconds``, ``trim_db``).

    Raises:
        UserError: not a folder in that layout, it holds a class the model does not know, it is the
            very folder trained on, it shares speakers with the training split, or (unless
            ``allow_overlap``) clips whose audio equals a training or validation clip's
            (:func:`audiolab.data.splits.refuse_overlap`).
    """
    folder = Path(folder)
    if not is_test_set_layout(folder):
        raise UserError(f"--test-set {folder} is not a folder in the Speech Commands test-set layout "
                        "(<word>/<speaker>_nohash_<n>.*, _unknown_/, _silence_/)")
    train_dirs = {Path(c.path).parent.parent.resolve() for c in data.split("train")
                  if not c.path.startswith(("synthetic:", "_background"))}
    if folder.resolve() in train_dirs:
        raise UserError(f"--test-set {folder} is the folder the model trains on; score on a folder of other speakers")
    ts = load_test_set_layout(folder, sample_rate=data.sample_rate)
    unknown = [lab for lab in ts.labels if lab not in data.labels]
    if unknown:
        raise UserError(f"--test-set {folder} holds classes the model does not know: {unknown}; the model's classes "
                        f"are {data.labels} (for the 12-class task add --unknown --silence)")
    missing = [lab for lab in data.labels if lab not in ts.labels]
    if missing:
        print(f"warning: --test-set {folder} has no clips of the model's classes {missing}; scored on the rest "
              "(test_set_missing_classes in metrics.json)")
    shared = {c.speaker for c in data.split("train")} & {c.speaker for c in ts.clips if c.label != SILENCE}
    if shared:
        raise UserError(f"--test-set {folder} shares {len(shared)} speakers with the training split "
                        f"(e.g. {sorted(shared)[:3]}); it would not measure unseen speakers")
    crop_long_clips(ts, max_clip_seconds)
    if trim_db > 0:
        trim_clips(ts, trim_db)
    refuse_overlap(((c.path, c.wav) for c in data.clips if c.split != "test"), ((c.path, c.wav) for c in ts.clips),
                   allow=allow_overlap, what=f"--test-set {folder}")
    print(f"--test-set {folder}: {len(ts.clips)} clips, classes {ts.labels}")
    return ts
