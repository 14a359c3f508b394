"""Clean speech and noise recordings for speech enhancement: the data of ``hw_cnn1d.py`` / ``hw_cnn2d.py``.

Three sources, each giving a :class:`DenoiseData` (a training sampler + fixed evaluation sets):

- a training pair (:func:`load_pair`: one long clean signal and its noisy version) and noisy
  files without a reference (:func:`load_unlabeled`);
- folders (:func:`folder_data`): clean utterances, one sub-folder per speaker (e.g. ``tsp/FA``,
  ``tsp/MC``), plus noise recordings, mixed at random SNRs for training (a fresh mix every
  epoch, ``audiolab.augment.noise.Mixer``) and at each test SNR for testing. Test speakers
  never occur in training; each noise file is cut in time into a training part and a test
  part (``audiolab.augment.noise.split_noise``), so test noise segments were never heard in
  training. An optional folder of other noise recordings is used only at test time
  ("held-out noise types"). The real dataset is :data:`TSP` (TSP speech, P. Kabal, McGill,
  with Speech Commands background noise);
- the embedded default (:func:`synthetic_data`): sentences synthesised with eSpeak NG
  (speaker-disjoint voice variants) plus synthetic white, pink and babble noise. SYNTHETIC.

Waveforms are ``[n_samples]`` float32 at 16 kHz (:data:`SAMPLE_RATE`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from audiolab.augment.noise import Mixer, NoiseSource, fixed_mixtures, split_noise
from audiolab.augment.waveform import pink_noise
from audiolab.core.evaluate import Mixture, safe_name
from audiolab.core.io import AudioReadError, find_audio_files, is_silent, iter_readable, load_audio, unique_name
from audiolab.core.runtime import UserError
from audiolab.data.common import RealDataset, SYNTHETIC_NOTE
from audiolab.data.splits import refuse_case_twins, refuse_overlap
from audiolab.data.synth import HARVARD_SENTENCES

SAMPLE_RATE = 16000          # Hz; PESQ wide-band needs 16 kHz

# eSpeak NG voice variants: disjoint sets for training speakers, test speakers and babble talkers.
SYNTH_TRAIN_VOICES = ["m1", "m3", "m5", "f1", "f3", "f5", "klatt", "Andy", "david", "john", "max", "robert"]
SYNTH_TEST_VOICES = ["m2", "m6", "f2", "f4", "edward", "linda"]
SYNTH_BABBLE_VOICES = ["m4", "m7", "klatt2", "klatt3", "Alex", "annie", "belinda", "ed", "michel", "steph"]


@dataclass
class DenoiseData:
    """Everything a denoising run needs: a training sampler and the fixed evaluation sets.

    ``sample_epoch(rng)`` returns the training pairs ``[(noisy, clean), ...]`` for one
    epoch (fresh mixtures each call in folder/synthetic modes, the fixed pair in
    training-pair mode).
    """

    dataset: str
    source: str                                  # "real" | "synthetic"
    description: str
    sample_epoch: Callable[[np.random.Generator], list[tuple[np.ndarray, np.ndarray]]]
    train_eval: list[Mixture]
    val: list[Mixture]
    test: list[Mixture]
    heldout: list[Mixture] = field(default_factory=list)
    unlabeled: list[Mixture] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        return self.source == "synthetic"


# ============================================================================ files
def load_pair(clean_path: Path, noisy_path: Path, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """Load a clean / noisy training pair and check that it is a pair.

    Stereo files are averaged to mono (with a note); both are resampled to
    ``sample_rate`` if they share another rate.

    Returns:
        ``(clean, noisy)``, each ``[n_samples]`` float32.

    Raises:
        UserError: a file is unreadable, the sample rates or lengths differ, or the
            clean reference is silent (SNR undefined).
    """
    info = {}
    for role, path in (("clean", clean_path), ("noisy", noisy_path)):
        try:
            wav, sr = load_audio(path, sample_rate=None, mono=False)
        except AudioReadError as err:
            raise UserError(str(err)) from None
        if wav.shape[0] > 1:
            print(f"note: --{role} {path} has {wav.shape[0]} channels; averaged to mono")
        info[role] = (wav.mean(axis=0).astype(np.float32), sr)
    (clean, sr_c), (noisy, sr_n) = info["clean"], info["noisy"]
    if sr_c != sr_n:
        raise UserError(f"--clean is at {sr_c} Hz but --noisy at {sr_n} Hz: a training pair must share one "
                        "sample rate (resample one of them so the samples line up)")
    if clean.shape[0] != noisy.shape[0]:
        raise UserError(f"--clean has {clean.shape[0]} samples ({clean.shape[0] / sr_c:.3f} s) but --noisy has "
                        f"{noisy.shape[0]} ({noisy.shape[0] / sr_n:.3f} s): a training pair must be sample-aligned "
                        "and of equal length")
    if is_silent(clean):
        raise UserError(f"--clean {clean_path} is silent (all zeros): SNR is undefined and there is nothing to learn")
    if sr_c != sample_rate:
        print(f"note: resampling the training pair from {sr_c} Hz to {sample_rate} Hz")
        from audiolab.core.io import resample
        clean, noisy = resample(clean, sr_c, sample_rate), resample(noisy, sr_c, sample_rate)
    return clean.astype(np.float32), noisy.astype(np.float32)


def load_unlabeled(paths: Sequence[Path], sample_rate: int = SAMPLE_RATE, min_samples: int = 0) -> list[Mixture]:
    """Noisy files with no reference (``--test``), as :class:`Mixture` of group ``"unlabeled"``.

    Unreadable files (incl. NaN/inf samples), silent ones and ones shorter than
    ``min_samples`` (one STFT frame, ``--n-fft``) are reported by path and skipped. Each
    file gets a distinct output name: two files with the same base name (``a/x.wav``,
    ``b/x.wav``) become ``x`` and ``x_2`` rather than overwriting each other's outputs.

    Raises:
        UserError: a path is a folder (name its files, e.g. ``DIR/*.wav``).
    """
    folders = [p for p in paths if Path(p).is_dir()]
    if folders:
        raise UserError(f"--test {folders[0]} is a folder; --test takes audio files: name them, e.g. "
                        f"--test {folders[0]}/*.wav")
    out = []
    used: set[str] = set()
    for path, wav, _ in iter_readable(paths, sample_rate=sample_rate, mono=True):
        if is_silent(wav):
            print(f"skipped: {path}: silent (all zeros), nothing to denoise")
            continue
        if wav.shape[-1] < min_samples:
            print(f"skipped: {path}: {wav.shape[-1]} samples at {sample_rate} Hz, shorter than one STFT frame "
                  f"(--n-fft {min_samples})")
            continue
        out.append(Mixture(unique_name(safe_name(path.stem), used), wav.astype(np.float32), None, None, "unknown",
                           "unlabeled"))
    return out


# ============================================================================ folders
def _speaker_of(path: Path, root: Path) -> str:
    rel = path.relative_to(root)
    return rel.parts[0] if len(rel.parts) > 1 else root.name


def load_folder(root: Path, min_samples: int = 0) -> list[tuple[str, str, np.ndarray]]:
    """``(speaker, name, wav)`` for every readable, non-silent audio file below ``root``, at 16 kHz mono.

    The speaker is the first sub-folder (files directly in ``root``: ``root``'s name). Files
    shorter than ``min_samples`` (one STFT frame) are reported by path and skipped, as are
    unreadable ones (incl. NaN/inf samples) and silent ones; names are made unique.

    Raises:
        UserError: no audio files, or none usable (the message names ``--n-fft`` when every
            file is shorter than ``min_samples``).
    """
    files = find_audio_files(root)
    if not files:
        raise UserError(f"no audio files found under {root}")
    out = []
    used: set[str] = set()
    longest = 0
    for path, wav, _ in iter_readable(files, sample_rate=SAMPLE_RATE, mono=True):
        if is_silent(wav):
            print(f"skipped: {path}: silent (all zeros); SNR would be undefined")
            continue
        longest = max(longest, wav.shape[-1])
        if wav.shape[-1] < min_samples:
            print(f"skipped: {path}: {wav.shape[-1]} samples at {SAMPLE_RATE} Hz, shorter than one STFT frame "
                  f"(--n-fft {min_samples})")
            continue
        out.append((_speaker_of(path, root), unique_name(safe_name(path.stem), used), wav))
    if not out and 0 < longest < min_samples:
        raise UserError(f"--n-fft {min_samples} is longer than every audio file under {root} (the longest has "
                        f"{longest} samples at {SAMPLE_RATE} Hz); use --n-fft <= {longest}")
    if not out:
        raise UserError(f"none of the {len(files)} audio files under {root} could be used")
    return out


def _split_list(text: str | None) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()] if text else []


def load_noises(noise_dir: Path, heldout_dir: Path | None, *, test_fraction: float, min_samples: int,
                heldout_exclude: str | None = None, allow_overlap: bool = False
                ) -> tuple[list[NoiseSource], list[tuple[str, np.ndarray]]]:
    """Noise recordings at 16 kHz: ``(sources, heldout_noises)``.

    Each file of ``noise_dir`` is cut into a training and a test part (last ``test_fraction``;
    ``audiolab.augment.noise.split_noise``); ``heldout_noises`` ``[(name, wav)]`` are the
    recordings of ``heldout_dir`` whose path matches none of the comma-separated globs
    ``heldout_exclude``. A file that is unreadable, silent or shorter than ``min_samples``
    (one STFT frame) is reported and skipped. Names are unique across both lists.

    Raises:
        UserError: no usable noise recording under ``noise_dir``, or (unless ``allow_overlap``) a
            held-out recording equal to a training one (:func:`audiolab.data.splits.refuse_overlap`).
    """
    sources, whole = [], []
    used_noise: set[str] = set()
    for p, w, _ in iter_readable(find_audio_files(noise_dir), sample_rate=SAMPLE_RATE):
        src = split_noise(safe_name(p.stem), w, test_fraction)
        short = min(len(src.train), len(src.test))
        if short < min_samples or is_silent(src.train) or is_silent(src.test):
            print(f"skipped: {p}: its training or test part is silent or shorter than one STFT frame "
                  f"(--n-fft {min_samples} samples at {SAMPLE_RATE} Hz)")
            continue
        src.name = unique_name(src.name, used_noise)
        sources.append(src)
        whole.append((str(p), w))
    if not sources:
        raise UserError(f"no usable (readable, non-silent, long enough) noise recordings under {noise_dir}")
    heldout_noises, whole_heldout = [], []
    if heldout_dir is not None and Path(heldout_dir).is_dir():
        skip = _split_list(heldout_exclude)
        for p, w, _ in iter_readable(find_audio_files(heldout_dir), sample_rate=SAMPLE_RATE):
            if any(p.match(g) for g in skip) or is_silent(w):
                continue
            if len(w) < min_samples:
                print(f"skipped: {p}: {len(w)} samples, shorter than one STFT frame (--n-fft {min_samples})")
                continue
            heldout_noises.append((unique_name(safe_name(p.stem), used_noise), w))
            whole_heldout.append((str(p), w))
    refuse_overlap(whole, whole_heldout, allow=allow_overlap, what=f"the held-out noises ({heldout_dir})")
    return sources, heldout_noises


def folder_data(clean_dir: Path, noise_dir: Path, args: argparse.Namespace, dataset: str,
                heldout_dir: Path | None = None, max_test_utterances: int | None = None) -> DenoiseData:
    """Folder-mode data (see the module docstring): speaker-disjoint, noise-segment-disjoint.

    ``args`` are the denoising scripts' flags; read are ``n_fft`` (shortest usable file),
    ``seed``, ``test_speakers`` / ``train_speakers`` (comma-separated sub-folder names; default:
    the last speaker tests, the others train), ``val_fraction``, ``max_test_utterances``,
    ``noise_test_fraction``, ``heldout_exclude``, ``test_snrs``, ``train_snr_range`` (dB),
    ``mixes_per_utterance`` and ``speed_perturb``. ``max_test_utterances`` (else
    ``args.max_test_utterances``; 0 or None: all) caps the test utterances.

    Raises:
        UserError: missing folders, no usable audio, unknown speakers, speaker sets that overlap, or
            (unless ``args.allow_overlap``) the same audio on both sides (:func:`splits.refuse_overlap`).
    """
    for p in (clean_dir, noise_dir):
        if not Path(p).is_dir():
            raise UserError(f"{p} is not a folder")
    utts = load_folder(Path(clean_dir), min_samples=args.n_fft)
    speakers = sorted({s for s, _, _ in utts})
    refuse_case_twins(speakers)
    test_spk = _split_list(args.test_speakers) or ([speakers[-1]] if len(speakers) > 1 else [])
    train_spk = _split_list(args.train_speakers) or [s for s in speakers if s not in test_spk]
    for s in test_spk + train_spk:
        if s not in speakers:
            raise UserError(f"speaker {s!r} not found under {clean_dir}; speakers are {speakers}")
    if set(test_spk) & set(train_spk):
        raise UserError(f"speakers {sorted(set(test_spk) & set(train_spk))} are in both training and test")
    rng = np.random.default_rng(args.seed)
    notes = []
    if test_spk:
        train = [(n, w) for s, n, w in utts if s in train_spk]
        test = [(n, w) for s, n, w in utts if s in test_spk]
    else:  # one speaker only: split utterances (not speaker-disjoint; say so)
        order = rng.permutation(len(utts))
        n_test = max(1, len(utts) // 5)
        test = [utts[i][1:] for i in order[:n_test]]
        train = [utts[i][1:] for i in order[n_test:]]
        notes.append("only one speaker folder: the test utterances are held out, but the speaker is not")
        print(f"note: {notes[-1]}")
    if not train or not test:
        raise UserError(f"need training and test utterances; got {len(train)} and {len(test)}")
    n_val = int(round(len(train) * args.val_fraction)) if len(train) > 1 else 0
    order = rng.permutation(len(train))
    val_utts = [train[i] for i in sorted(order[:n_val])]
    train_utts = [train[i] for i in sorted(order[n_val:])]
    max_test_utterances = max_test_utterances or args.max_test_utterances
    if max_test_utterances > 0:
        test = test[:max_test_utterances]
    allow = getattr(args, "allow_overlap", False)
    refuse_overlap(train, test, allow=allow, what=f"the clean speech of {dataset}")
    sources, heldout_noises = load_noises(noise_dir, heldout_dir, test_fraction=args.noise_test_fraction,
                                          min_samples=args.n_fft, heldout_exclude=args.heldout_exclude,
                                          allow_overlap=allow)
    test_noises = [(s.name, s.test) for s in sources]
    train_noises = [(s.name, s.train) for s in sources]
    snrs = list(args.test_snrs)
    return DenoiseData(
        dataset=dataset, source="real",
        description=f"{dataset}: train speakers {train_spk or ['(split)']}, test speakers {test_spk or ['(split)']}",
        sample_epoch=Mixer([w for _, w in train_utts], sources, args.train_snr_range, args.mixes_per_utterance,
                           args.speed_perturb),
        train_eval=fixed_mixtures(train_utts[:15], train_noises, snrs, "train", args.seed + 1),
        val=fixed_mixtures(val_utts, train_noises, [0.0, 5.0], "val", args.seed + 2),
        test=fixed_mixtures(test, test_noises, snrs, "test", args.seed + 3),
        heldout=fixed_mixtures(test, heldout_noises, snrs, "heldout", args.seed + 4) if heldout_noises else [],
        info={"train_speakers": train_spk, "test_speakers": test_spk, "n_train_utterances": len(train_utts),
              "n_val_utterances": len(val_utts), "n_test_utterances": len(test),
              "train_noises": [s.name for s in sources], "heldout_noises": [n for n, _ in heldout_noises],
              "notes": notes})


def _find_tsp(root: Path) -> Path | None:
    tsp = root / "tsp"
    noise = root / "noise" / "speech_commands_background"
    if tsp.is_dir() and noise.is_dir() and next(tsp.rglob("*.*"), None) is not None:
        return tsp
    return None


TSP = RealDataset(
    name="tsp", find=_find_tsp,
    how_to_get=("TSP speech (P. Kabal, McGill) in <data-root>/tsp/<speaker>/ and noise recordings in "
                "<data-root>/noise/speech_commands_background/ (+ noise/recorded/ for held-out types)."),
    looked_for="<data-root>/tsp/<speaker>/ and <data-root>/noise/speech_commands_background/")


# ============================================================================ synthetic default
def synthetic_babble(n_samples: int, rng: np.random.Generator, talkers: int = 5) -> np.ndarray:
    """Babble noise: ``talkers`` overlapping eSpeak NG voices (``SYNTH_BABBLE_VOICES``), unit RMS, ``[n]``."""
    from audiolab.data.synth import Voice, synthesize
    out = np.zeros(n_samples, dtype=np.float32)
    for _ in range(talkers):
        track = np.zeros(0, dtype=np.float32)
        while track.shape[0] < n_samples:
            voice = Voice(f"en-us+{SYNTH_BABBLE_VOICES[int(rng.integers(len(SYNTH_BABBLE_VOICES)))]}",
                          rate=int(rng.integers(140, 200)), pitch=int(rng.integers(25, 75)))
            text = HARVARD_SENTENCES[int(rng.integers(len(HARVARD_SENTENCES)))]
            track = np.concatenate([track, synthesize(text, voice)])
        out += track[:n_samples] / (np.sqrt(np.mean(track ** 2)) + 1e-9)
    return out / (np.sqrt(np.mean(out ** 2)) + 1e-9)


def synthetic_noises(seconds: float, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """White, pink and babble noise, ``seconds`` long each at 16 kHz, unit RMS: ``[(name, wav)]``."""
    n = int(seconds * SAMPLE_RATE)
    return [("white", rng.standard_normal(n).astype(np.float32)), ("pink", pink_noise(n, rng)),
            ("babble", synthetic_babble(n, rng))]


def synthetic_data(args: argparse.Namespace) -> DenoiseData:
    """The embedded default: eSpeak NG sentences + synthetic white/pink/babble noise (SYNTHETIC).

    Training speakers are ``SYNTH_TRAIN_VOICES`` saying Harvard lists 1-3, test speakers
    ``SYNTH_TEST_VOICES`` saying list 4; training noise and test noise are separate
    renderings (different random draws), so test noise segments are unseen. Read from
    ``args``: ``seed``, ``val_fraction``, ``test_snrs``, ``train_snr_range``,
    ``mixes_per_utterance``, ``speed_perturb`` and the sizes ``synthetic_utterances`` and
    ``synthetic_noise_seconds`` (train, test).
    """
    from audiolab.data.synth import Voice, synthesize
    rng = np.random.default_rng(args.seed)
    train_sent, test_sent = HARVARD_SENTENCES[:30], HARVARD_SENTENCES[30:]
    n_train, n_test = args.synthetic_utterances

    def render(voices, sentences, n, tag):
        out = []
        for i in range(n):
            v = voices[i % len(voices)]
            text = sentences[int(rng.integers(len(sentences)))]
            voice = Voice(f"en-us+{v}", rate=int(rng.integers(140, 190)), pitch=int(rng.integers(30, 70)),
                          pitch_range=int(rng.integers(30, 80)))
            wav = synthesize(text, voice) * 0.5
            out.append((f"{tag}{i:03d}_{v}", wav.astype(np.float32)))
        return out

    train = render(SYNTH_TRAIN_VOICES, train_sent, n_train, "train")
    test = render(SYNTH_TEST_VOICES, test_sent, n_test, "test")
    n_val = max(1, int(round(len(train) * args.val_fraction)))
    val_utts, train_utts = train[:n_val], train[n_val:]
    train_seconds, test_seconds = args.synthetic_noise_seconds
    train_noise = synthetic_noises(train_seconds, rng)
    test_noise = synthetic_noises(test_seconds, rng)
    sources = [NoiseSource(n, w, w) for n, w in train_noise]
    snrs = list(args.test_snrs)
    return DenoiseData(
        dataset="synthetic_espeak", source="synthetic",
        description="eSpeak NG Harvard sentences + synthetic white/pink/babble noise",
        sample_epoch=Mixer([w for _, w in train_utts], sources, args.train_snr_range, args.mixes_per_utterance,
                           args.speed_perturb),
        train_eval=fixed_mixtures(train_utts[:10], train_noise, snrs, "train", args.seed + 1),
        val=fixed_mixtures(val_utts, train_noise, [0.0, 5.0], "val", args.seed + 2),
        test=fixed_mixtures(test, test_noise, snrs, "test", args.seed + 3),
        info={"train_speakers": SYNTH_TRAIN_VOICES, "test_speakers": SYNTH_TEST_VOICES,
              "n_train_utterances": len(train_utts), "n_val_utterances": len(val_utts),
              "n_test_utterances": len(test), "train_noises": [n for n, _ in train_noise], "heldout_noises": [],
              "notes": [SYNTHETIC_NOTE]})
