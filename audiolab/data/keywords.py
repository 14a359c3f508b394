"""Keyword-spotting data: the registry of keyword datasets, one call to load one, splits, batching.

Used by ``speechcommands_rnn.py`` and ``benchmarks/kws_*.py``. The datasets, one module each:

- ``audiolab.data.speech_commands``: Google Speech Commands (Warden 2018, arXiv:1804.03209), the
  release (official validation/testing lists, or the speaker-hash rule) or a folder in the
  canonical test-set layout (split here by :func:`speaker_split`);
- ``audiolab.data.fsdd``: the Free Spoken Digit Dataset, a whole speaker held out for test;
- ``audiolab.data.synthetic_keywords``: the embedded default, eSpeak NG voices (SYNTHETIC).

:data:`KEYWORD_DATASETS` names each once: how to find and load it, its default sample rate, the
flag defaults chosen for it, its published anchors. :func:`load_keywords` chooses one (``--dataset``,
or the first real one found under the data root, else the synthetic default), loads it, adds
synthetic voices to a real training split, fills the dataset's flag defaults, crops long clips,
trims silence and refuses a split left (nearly) empty. The clips themselves (:class:`Clip`,
:class:`KwsData`, reading, noise banks) are ``audiolab.data.keyword_clips``, re-exported here.

Batching: :class:`KwsDataset` (waveform augmentation, :class:`audiolab.augment.waveform.WaveAugment`,
for training only), :class:`PadCollate` (pad / crop to a fixed length), :func:`make_loaders`.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from audiolab.augment.waveform import WaveAugment, speed_factors
from audiolab.core import cli
from audiolab.data.features import SPEC_AUGMENTATIONS
from audiolab.core.runtime import UserError
from audiolab.data import splits
from audiolab.data.common import RealDataset, choose_dataset, resolve_data_root
from audiolab.data.fsdd import FSDD, load_fsdd
from audiolab.data.keyword_clips import (DIGIT_WORDS, FSDD_SAMPLE_RATE, KEYWORDS, SC_SAMPLE_RATE,  # noqa: F401
                                         SILENCE, SPLITS, UNKNOWN, Clip, KwsData, crop_long_clips,
                                         dataset_splits_summary, duplicate_groups, find_noise_dir, load_noise_bank,
                                         read_clip, synthetic_noise_bank, trim_clips, wav_declared_frames)
from audiolab.data.speech_commands import (SPEECH_COMMANDS, is_test_set_layout, load_speech_commands,  # noqa: F401
                                           load_test_set, load_test_set_layout)
from audiolab.data.synth import VARIANTS
from audiolab.data.synthetic_keywords import (SYNTH_TEST_VOICES, SYNTH_VAL_VOICES, add_synthetic_voices,
                                              make_synthetic_keywords)

#: waveform augmentations (:class:`KwsDataset`) and spectrogram ones (``audiolab.data.features``)
WAVE_AUGMENTATIONS = ("shift", "speed", "noise")
AUGMENTATIONS = frozenset(WAVE_AUGMENTATIONS + SPEC_AUGMENTATIONS)
ALL_AUGMENT = "shift,speed,noise,stretch,freq_mask,time_mask"
MIXUP_ALPHA = 0.4  # the default mixup; also what the augmentation grid switches mixup on to
#: defaults of the flags that depend on the dataset, chosen on FSDD (experiments/keywords.md)
DEFAULTS = {"epochs": 15, "mixup": MIXUP_ALPHA, "augment": ALL_AUGMENT, "trim_db": 30.0, "res_blocks": 0}
#: fewest clips a split may hold, as a fraction of all clips (see :func:`check_splits`)
MIN_SPLIT_FRACTION = 0.02


# ----------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class KeywordDataset:
    """One keyword dataset: everything a run needs to know about it, in one place.

    Attributes:
        name: the ``--dataset`` value.
        load: ``load(folder, args, data_root, small) -> KwsData``; ``folder`` is the found dataset
            (``None`` for the synthetic default), ``args`` the parsed flags, ``small`` the
            smoke-test subset (``--quick``).
        sample_rate: the default rate in Hz (``--sample-rate`` overrides it).
        real: how to find / download it (``None``: the embedded synthetic default).
        data_name: ``KwsData.name`` of what ``load`` returns (default ``name``).
        description: one line for the banner (synthetic default only).
        defaults: flag defaults chosen for this dataset (a flag given on the command line wins).
        synthetic_voices: default ``--synthetic-voices`` (eSpeak NG renderings per voice added
            to a real training split).
        test_checkpoint: ``f(args) -> "best" | "last"``: the weights the test split scores by default.
        title: ``f(data) -> str`` for figure titles (default the name, SYNTHETIC marked).
        anchors: published / target numbers shown beside ours (``write_metrics(anchors=...)``).
    """

    name: str
    load: Callable[[Path | None, Any, Path, bool], KwsData]
    sample_rate: int
    real: RealDataset | None = None
    data_name: str = ""
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULTS))
    synthetic_voices: int = 0
    test_checkpoint: Callable[[Any], str] = lambda args: "best"
    title: Callable[[KwsData], str] | None = None
    anchors: tuple[Mapping[str, Any], ...] = ()


def _load_speech_commands(folder: Path, args, root: Path, small: bool) -> KwsData:
    """The release (official lists or hash rule), or a test-set-layout folder split by speaker."""
    sr = args.sample_rate or SC_SAMPLE_RATE
    cli.refuse_ignored(args, {"test_speaker": None, "val_speaker": None}, "on Speech Commands (FSDD flags)")
    if is_test_set_layout(folder):
        cli.refuse_ignored(args, {"words": ",".join(KEYWORDS)}, f"on {folder}: a folder in the test-set layout "
                           "has its own 12 classes (10 words, _unknown_, _silence_)")
        data = load_test_set_layout(folder, sample_rate=sr)
        report_issues(data)
        speaker_split(data, seed=args.seed)
        if args.max_per_class is not None:
            limit_per_class(data, args.max_per_class, args.seed)
        return data
    return load_speech_commands(folder, args.word_list, unknown=args.unknown, silence=args.silence, sample_rate=sr,
                                max_per_class=args.max_per_class, seed=args.seed)


def _load_fsdd(folder: Path, args, root: Path, small: bool) -> KwsData:
    """FSDD with ``--test-speaker`` / ``--val-speaker``; ``small`` keeps recordings x0 and x1 of each digit."""
    cli.refuse_ignored(args, {"words": ",".join(KEYWORDS), "unknown": False, "silence": False},
                       "on fsdd (its classes are the ten digits)")
    data = load_fsdd(folder, sample_rate=args.sample_rate or FSDD_SAMPLE_RATE, test_speaker=args.test_speaker,
                     val_speaker=args.val_speaker)
    if small:
        data.clips = [c for c in data.clips if int(Path(c.path).stem.split("_")[2]) % 10 < 2]
    return data


def _load_synthetic(folder: None, args, root: Path, small: bool) -> KwsData:
    """The eSpeak NG keywords (``--synthetic-clips`` per voice); ``small``: 4 training voices, 1 val, 1 test."""
    cli.refuse_ignored(args, {"unknown": False, "silence": False, "test_speaker": None, "val_speaker": None},
                       "on the synthetic keywords (Speech Commands / FSDD flags)")
    voices = VARIANTS if not small else VARIANTS[:4] + [SYNTH_VAL_VOICES[0], SYNTH_TEST_VOICES[0]]
    return make_synthetic_keywords(args.word_list, args.synthetic_clips, sample_rate=args.sample_rate or SC_SAMPLE_RATE,
                                   seed=args.seed, voices=sorted(set(voices)),
                                   noise=noise_bank(SC_SAMPLE_RATE, args.seed, args.noise_dir, root))


KEYWORD_DATASETS: dict[str, KeywordDataset] = {d.name: d for d in [
    # Speech Commands' defaults were chosen on its validation speakers (experiments/keywords_speech_commands.md):
    # 30 epochs (the models under-fit at 15); no speed / stretch (as good on validation, ~17 % less CPU);
    # trimming stays (without it cnn_lstm gained on validation but lstm, bilstm, gru, attn_lstm lost);
    # cnn_lstm gets one residual block per conv stage (issue 32: +1.5 points of validation accuracy)
    KeywordDataset(
        "speech_commands", _load_speech_commands, SC_SAMPLE_RATE, SPEECH_COMMANDS,
        defaults={"epochs": 30, "mixup": 0.0, "augment": "shift,noise,freq_mask,time_mask", "trim_db": 30.0,
                  "res_blocks": 1},
        anchors=(
            {"metric": "test_accuracy_cnn_lstm", "anchor": 0.90,
             "source": "target (issue 32): CNN-LSTM >= 90 % (92 % the moonshot) and >= M5 on held-out speakers of "
                       "the 12-class task (benchmarks/kws_speech_commands.py)"},
            {"metric": "test_accuracy_lstm", "anchor": 0.87,
             "source": "target: LSTM >= 87 % on held-out speakers of the 12-class task"},
            {"metric": "test_accuracy_cnn_lstm", "anchor": 0.882,
             "source": "conv baseline, Warden 2018 (arXiv:1804.03209), v0.02 12 classes, trained on the full "
                       "release (84,843 clips, ~30x the data here)"},
            {"metric": "test_accuracy_attn_lstm", "anchor": 0.956,
             "source": "attention RNN, de Andrade et al. 2018 (arXiv:1808.08929), v0.02 12 classes, trained on the "
                       "full release (~30x the data here)"})),
    # FSDD: eSpeak voices join the three training speakers (too few to generalise from); validation on the
    # training speakers' own recordings saturates by mid-training, so the final weights are tested
    # (experiments/keywords.md) unless --val-speaker holds a whole speaker out
    KeywordDataset(
        "fsdd", _load_fsdd, FSDD_SAMPLE_RATE, FSDD, synthetic_voices=8,
        test_checkpoint=lambda args: "last" if args.val_speaker is None else "best",
        title=lambda data: f"fsdd, test speaker {'/'.join(sorted({c.speaker for c in data.split('test')}))}",
        anchors=(
            {"metric": "test_accuracy_cnn_lstm", "anchor": 0.93,
             "source": "target: CNN-LSTM >= 93 % mean over leave-one-speaker-out folds (benchmarks/kws_fsdd.py)"},
            {"metric": "test_accuracy_lstm", "anchor": 0.88,
             "source": "target: LSTM >= 88 % mean over leave-one-speaker-out folds (benchmarks/kws_fsdd.py)"})),
    KeywordDataset(
        "synthetic", _load_synthetic, SC_SAMPLE_RATE, data_name="synthetic_keywords",
        description="the 10 keywords spoken by eSpeak NG voices, 16 kHz, mixed with noise"),
]}


def dataset_entry(name: str) -> KeywordDataset:
    """The registry entry of a ``--dataset`` value or a ``KwsData.name``.

    Raises:
        KeyError: neither.
    """
    for d in KEYWORD_DATASETS.values():
        if name in (d.name, d.data_name):
            return d
    raise KeyError(name)


def defaults_help(key: str) -> str:
    """``"15; 30 for speech_commands"``: the default of a dataset-dependent flag, for ``--help``."""
    other = [f"{d.defaults[key]} for {d.name}" for d in KEYWORD_DATASETS.values() if d.defaults[key] != DEFAULTS[key]]
    return "; ".join([str(DEFAULTS[key]), *other])


def title_tag(data: KwsData) -> str:
    """Dataset name for figure titles: SYNTHETIC marked, FSDD's held-out speaker named (the entry's ``title``)."""
    entry = dataset_entry(data.name)
    if entry.title is not None:
        return entry.title(data)
    return f"{data.name}" + (" (SYNTHETIC)" if data.source == "synthetic" else "")


def parse_augment(text: str) -> list[str]:
    """``--augment`` comma list -> sorted augmentation names (``none`` = empty); UserError on an unknown name."""
    aug = {a.strip() for a in text.split(",") if a.strip()} - {"none"}
    bad = aug - AUGMENTATIONS
    if bad:
        raise UserError(f"--augment: unknown {sorted(bad)}; choose from {sorted(AUGMENTATIONS)} or none")
    return sorted(aug)


def apply_dataset_defaults(args, dataset: str):
    """Fill the flags of ``args`` left at ``None`` from the entry's ``defaults`` (in place); set
    ``args.augment_set`` from ``--augment``. ``dataset`` is a ``--dataset`` value or a ``KwsData.name``."""
    for key, value in dataset_entry(dataset).defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    args.augment_set = parse_augment(args.augment)
    return args


def add_keyword_args(p: argparse.ArgumentParser) -> None:
    """The flags :func:`load_keywords` reads: dataset options, classes, splits, clip length, the test-set folder, noise.

    One argument group ("data"), beside ``audiolab.core.cli.add_data_args`` (``--data-root``, ``--dataset``).
    """
    g = p.add_argument_group("data")
    g.add_argument("--words", default=",".join(KEYWORDS),
                   help="Speech Commands keyword classes, comma separated (default the 10-word task)")
    g.add_argument("--unknown", action="store_true", help="Speech Commands: add the _unknown_ class (other words)")
    g.add_argument("--silence", action="store_true", help="Speech Commands: add the _silence_ class "
                   "(cuts of _background_noise_)")
    g.add_argument("--max-per-class", type=cli.positive_int, default=None,
                   help="Speech Commands: at most this many clips per class and split (default all)")
    g.add_argument("--test-speaker", default=None,
                   help="FSDD: the speaker held out for testing (default the alphabetically last)")
    g.add_argument("--val-speaker", default=None,
                   help="FSDD: hold this training speaker out whole for validation (speaker-independent "
                        "checkpoint choice, one speaker fewer to train on; default: validate on recordings "
                        "0-4 of every training speaker)")
    g.add_argument("--synthetic-clips", type=cli.positive_int, default=2,
                   help="synthetic default: renderings of each word per eSpeak voice (30 voices; default %(default)s)")
    g.add_argument("--synthetic-voices", type=cli.int_range(0), default=None, metavar="N",
                   help="real data: add N eSpeak NG renderings per voice (30 voices) of every class word to the "
                        "training split only (default: 8 for FSDD, whose three training speakers are too few to "
                        "generalise from; 0 for Speech Commands and the synthetic default)")
    g.add_argument("--sample-rate", type=cli.sample_rate_hz, default=None,
                   help="resample everything to this rate in Hz (default the dataset's: FSDD 8000, others 16000)")
    g.add_argument("--trim-db", type=cli.trim_db, default=None,
                   help="trim leading/trailing audio more than this many dB below the clip's loudest frame before "
                        f"the centred padding, train and test alike (0 = off; default {defaults_help('trim_db')})")
    g.add_argument("--clip-seconds", type=cli.positive_float, default=1.0,
                   help="fixed input length: clips are padded / cropped to it in the collate_fn (default %(default)s)")
    g.add_argument("--max-clip-seconds", type=cli.positive_float, default=4.0,
                   help="clips longer than this are reported and centre-cropped to it at load, so that one long "
                        "recording does not slow every epoch (default %(default)s)")
    g.add_argument("--test-set", type=Path, default=None, metavar="DIR",
                   help="after training, also score every clip of this folder in the canonical Speech Commands "
                        "test-set layout (<word>/, _unknown_/, _silence_/); its classes must be the model's")
    g.add_argument("--noise-dir", type=Path, default=None,
                   help="background-noise recordings for augmentation (default: noise/speech_commands_background "
                        "under the data root if present, else synthetic pink/white noise)")


def load_keywords(args, small: bool = False) -> KwsData:
    """Choose and load the keyword dataset of a run (a banner says which), ready to batch.

    Reads from ``args`` (the parsed flags of ``speechcommands_rnn.py``): ``dataset``,
    ``data_root``, ``download``, ``sample_rate``, ``seed``, ``word_list``, ``unknown``, ``silence``,
    ``max_per_class``, ``test_speaker``, ``val_speaker``, ``synthetic_clips``, ``synthetic_voices``,
    ``noise_dir``, ``max_clip_seconds``, ``trim_db``; fills the dataset's defaults into ``args``
    (:func:`apply_dataset_defaults`). ``small``: the smoke-test subset (``--quick``).

    Steps: the entry's ``load``; eSpeak NG voices added to a real training split
    (``--synthetic-voices``, default the entry's); clips above ``--max-clip-seconds`` centre-cropped
    (:func:`crop_long_clips`); silence trimmed at ``--trim-db`` (0 = off); :func:`check_splits`;
    the same audio in training and validation / test refused (:func:`splits.refuse_overlap`, ``--allow-overlap``).

    Raises:
        UserError: a named dataset is missing, a loader refuses its data, or a split is (nearly) empty.
    """
    root = resolve_data_root(args.data_root)
    synthetic = next(d for d in KEYWORD_DATASETS.values() if d.real is None)
    choice = choose_dataset(args.dataset, root, [d.real for d in KEYWORD_DATASETS.values() if d.real is not None],
                            synthetic.name, synthetic.description, args.download)
    entry = KEYWORD_DATASETS[choice.name]
    data = entry.load(choice.path, args, root, small)
    n_voices = args.synthetic_voices if args.synthetic_voices is not None else entry.synthetic_voices
    if data.source == "real" and n_voices > 0:
        added = add_synthetic_voices(data, 1 if small else n_voices, seed=args.seed,
                                     voices=VARIANTS[:6] if small else VARIANTS)
        print(f"training split: +{added} synthetic eSpeak NG clips of the class words (--synthetic-voices "
              f"{n_voices}); validation and test clips are all real")
    apply_dataset_defaults(args, data.name)
    crop_long_clips(data, args.max_clip_seconds)
    if args.trim_db > 0:
        trim_clips(data, args.trim_db)
    check_splits(data)
    splits.refuse_overlap(((c.path, c.wav) for c in data.split("train")),
                          ((c.path, c.wav) for c in data.clips if c.split != "train"),
                          allow=getattr(args, "allow_overlap", False), what=data.name)
    return data


def noise_bank(sample_rate: int, seed: int = 0, noise_dir: Path | None = None,
               data_root: Path | None = None) -> list[np.ndarray]:
    """Background noise for augmentation (mono float32 at ``sample_rate``): the recordings in
    ``noise_dir``, else those found under the data root (:func:`find_noise_dir`), else synthetic
    pink and white noise (seeded).

    Raises:
        UserError: ``noise_dir`` is given but is not a folder.
    """
    folder = noise_dir or find_noise_dir(data_root or resolve_data_root(None))
    if noise_dir is not None and not Path(noise_dir).is_dir():
        raise UserError(f"--noise-dir {noise_dir} is not a folder")
    bank = load_noise_bank(folder, sample_rate) if folder is not None else []
    return bank or synthetic_noise_bank(sample_rate, seed)


# ----------------------------------------------------------------------------- cleaning and splitting
def report_issues(data: KwsData, limit: int = 20) -> None:
    """Print a short summary of the file problems met on load (each was printed as it happened)."""
    if data.issues:
        print(f"{len(data.issues)} file problems on load (listed in sample_rate_check.csv by explore):")
        for path, problem in data.issues[:limit]:
            print(f"  {path}: {problem}")


def limit_per_class(data: KwsData, max_per_class: int, seed: int) -> None:
    """Keep at most ``max_per_class`` clips per class and split (seeded random choice; in place)."""
    rng = np.random.default_rng(seed)
    kept = []
    for split in SPLITS:
        for lab in data.labels:
            pool = [c for c in data.clips if c.split == split and c.label == lab]
            if len(pool) > max_per_class:
                pool = [pool[i] for i in sorted(rng.choice(len(pool), max_per_class, replace=False))]
            kept += pool
    data.clips = kept


#: a hair below each split fraction, so that float rounding (0.1 * 300 = 30.000000000000004) does not
#: take one speaker more than the fraction asks for
_FRACTION_SLACK = 1e-9


def speaker_split(data: KwsData, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.1) -> KwsData:
    """Seeded speaker-disjoint train/val/test split (in place), 80/10/10 of the clips by default.

    Two :func:`audiolab.data.splits.speaker_split` calls: whole speakers go to test until it holds
    ``test_fraction`` of the clips, then from the rest to validation until it holds ``val_fraction``
    of them (so with equal clips per speaker, 80/10/10 of the speakers). Every clip of a speaker
    lands in one split. Clips without a speaker (``_silence_``, speaker ``_silence_/...``) are split
    the same way, each clip its own group. Byte-identical duplicate files (:func:`duplicate_groups`)
    are kept in one split: in Speech Commands they are the same speaker's, so grouping by speaker
    already does it; any group that would still straddle is moved whole to its first clip's split (noted).

    Raises:
        UserError: fewer than three speakers (or fewer than two left after the test speakers are
            drawn), or fractions outside (0, 1).
    """
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise UserError(f"split fractions must be in (0, 1) and sum below 1; got val {val_fraction}, "
                        f"test {test_fraction}")

    def assign(members: list[Clip], kind: str, salt: int) -> None:
        speakers = [c.speaker for c in members]
        n_groups = len(set(speakers))
        if n_groups < 3:
            raise UserError(f"a speaker-disjoint train/val/test split needs at least 3 {kind}, found {n_groups}")
        rest, test = splits.speaker_split(speakers, test_fraction - _FRACTION_SLACK, seed + salt)
        rest_speakers = [speakers[i] for i in rest]
        if len(set(rest_speakers)) < 2:
            raise UserError(f"after the test {kind} one is left; a validation split needs two (the test {kind} "
                            "hold too few clips each to reach the test fraction)")
        train, val = splits.speaker_split(rest_speakers, val_fraction / (1 - test_fraction) - _FRACTION_SLACK,
                                          seed + salt + 1)
        for i in test:
            members[i].split = "test"
        for i in val:
            members[rest[i]].split = "val"
        for i in train:
            members[rest[i]].split = "train"

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
    data.notes.append(f"seeded speaker-disjoint split (audiolab.data.splits, seed {seed}): speakers train "
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


# ----------------------------------------------------------------------------- batching
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
        if self.augment is not None:
            wav = self.augment(wav, self.sample_rate, self.rng, self.noises)
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


def make_loaders(data: KwsData, n_samples: int, noises: Sequence[np.ndarray] = (), *, batch_size: int = 64,
                 augment: Sequence[str] = (), speed_perturb: float = 0.15, snr_db: tuple[float, float] = (5.0, 25.0),
                 seed: int = 0) -> dict[str, torch.utils.data.DataLoader]:
    """DataLoaders ``{"train", "val", "test"}`` of batches ``(wav [B, n_samples], labels, lengths, indices)``.

    The training loader shuffles (seeded), crops long clips at a random offset and augments the
    waveforms with the waveform names in ``augment`` (``shift``: up to 0.1 s; ``speed``: factors
    1 +- ``speed_perturb`` in 0.05 steps; ``noise``: ``noises`` at an SNR in ``snr_db`` dB, with
    probability 0.6); validation and test batches hold 128 clips, unchanged.
    """
    aug = set(augment)
    wave_aug = None
    if aug & set(WAVE_AUGMENTATIONS):
        wave_aug = WaveAugment(shift_s=0.1 if "shift" in aug else 0.0,
                               speeds=speed_factors(speed_perturb) if "speed" in aug else (),
                               noise_prob=0.6 if "noise" in aug else 0.0, snr_db=tuple(snr_db))
    train = KwsDataset(data.split("train"), data.labels, data.sample_rate, augment=wave_aug, noises=noises, seed=seed)
    return {"train": torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True,
                                                 generator=torch.Generator().manual_seed(seed),
                                                 collate_fn=PadCollate(n_samples, random_crop=True, seed=seed)),
            **{split: plain_loader(data.split(split), data.labels, data.sample_rate, n_samples)
               for split in ("val", "test")}}


def plain_loader(clips: Sequence[Clip], labels: Sequence[str], sample_rate: int, n_samples: int,
                 batch_size: int = 128) -> torch.utils.data.DataLoader:
    """Batches of ``clips`` as they are (no augmentation, no shuffling), centred in ``n_samples``."""
    return torch.utils.data.DataLoader(KwsDataset(clips, labels, sample_rate), batch_size=batch_size,
                                       collate_fn=PadCollate(n_samples))
