"""Shared data, features and evaluation for the speech-denoising CNNs (``hw_cnn1d.py``, ``hw_cnn2d.py``).

The two scripts differ only in their network (a 1-D CNN on one STFT frame, a 2-D CNN
on 20 consecutive frames) and its training settings; everything else lives here, once,
down to the scripts' common main body (``script_parser``, ``apply_quick``, ``run``):

Data (``prepare_data``), three modes:
- homework files: ``--clean FILE --noisy FILE`` is one long training pair (the last
  ``--val-fraction`` of it is held out for validation), ``--test FILE ...`` are noisy
  signals without a clean reference (denoised and written out, never scored);
- folders: a folder of clean utterances (one sub-folder per speaker, e.g.
  ``tsp/FA``, ``tsp/MC``) plus a folder of noise recordings, mixed at random SNRs in
  ``--train-snr-range`` for training (a fresh mix every epoch) and at each of
  ``--test-snrs`` for testing. Test speakers never occur in training; each noise file
  is cut in time into a training part (first ``1 - --noise-test-fraction``) and a test
  part, so test noise segments were never heard in training. An optional folder of
  other noise recordings is used only at test time ("held-out noise types");
- embedded default: sentences synthesised with eSpeak NG (speaker-disjoint voice
  variants) plus synthetic white, pink and babble noise. Labelled synthetic everywhere.

Features: STFT with ``n_fft`` = 1024 (513 bins), periodic Hann window, hop 512 by
default; the networks see ``log1p(|Y|)`` of the noisy STFT (normalised per bin by
``FeatureNorm``), shaped ``[B, 1, 513]`` (one frame) or ``[B, 1, 20, 513]`` (the frame and
the 19 before it; each signal is prefixed with 19 near-silent frames of tiny random
magnitudes so that every frame gets an estimate). The network outputs either a mask in
[0, 1] that multiplies the noisy magnitude (default) or the clean ``log1p`` magnitude
directly; the estimate is recombined with the noisy phase and inverted (``torch.istft``).

Training (``train_denoiser``): the MSE between square-root-compressed magnitudes of
estimate and clean speech (``--loss magnitude``; ``--loss log1p`` uses log1p magnitudes,
see experiments/denoise.md), with Adam and a cosine learning-rate decay; the checkpoint
with the best validation SNR improvement (held-out training-speaker utterances) is the
one evaluated. ``FeatureNorm`` takes its statistics from the first epoch's training
mixtures (stored in the checkpoint). Training mixtures are drawn afresh every epoch, with
speed perturbation (0.8-1.2x) of the clean speech so that a model trained on one speaker
generalises to others.

Evaluation (``evaluate_and_write``): SNR as the homework defines it,
``10 log10(sum s^2 / sum (s - s_hat)^2)`` in dB on the time signal; SI-SNR (Le Roux et al.
2019); PESQ wide-band (ITU-T P.862.2, ``pesq`` package) and STOI (Taal et al. 2011,
``pystoi``). Baselines on the same signals: the noisy input itself and spectral gating
(``noisereduce``, Sainburg et al. 2020, non-stationary mode, no noise clip, i.e. as blind
as the CNNs). An undefined score (silent reference, PESQ finding no speech) is reported
as missing with a reason, never as inf or NaN.
"""

from __future__ import annotations

import argparse
import math
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from audiolab.core.cli import script_help
from audiolab.data.common import RealDataset, SYNTHETIC_NOTE, choose_dataset, resolve_data_root
from audiolab.core.dsp import from_magnitude_phase, magnitude_phase
from audiolab.core.io import AudioReadError, find_audio_files, iter_readable, load_audio, save_audio, unique_name
from audiolab.core.metrics import si_snr, snr
from audiolab.core.cli import add_data_args, base_parser, float_range, int_range, positive_int
from audiolab.core.outputs import out_dir_for, write_csv, write_json_atomic, write_metrics
from audiolab.core.runtime import UserError, is_main_process, seed_everything, select_device
from audiolab.core.plotting import plot_training_curves, save_figure, spectrogram_figure
from audiolab.data.synth import HARVARD_SENTENCES
from audiolab.core.train import fit, load_checkpoint

SAMPLE_RATE = 16000          # Hz; PESQ wide-band needs 16 kHz
N_FFT = 1024                 # -> 513 frequency bins
HOP_LENGTH = 512
CONTEXT_2D = 20              # frames seen by the 2-D CNN
PREFIX_MAGNITUDE = 1e-4      # scale of the near-silent prefix frames (linear magnitude)
TRAIN_LEVEL_DBFS = (-35.0, -15.0)  # random RMS level of training mixtures (level augmentation)

# eSpeak NG voice variants: disjoint sets for training speakers, test speakers and babble talkers.
SYNTH_TRAIN_VOICES = ["m1", "m3", "m5", "f1", "f3", "f5", "klatt", "Andy", "david", "john", "max", "robert"]
SYNTH_TEST_VOICES = ["m2", "m6", "f2", "f4", "edward", "linda"]
SYNTH_BABBLE_VOICES = ["m4", "m7", "klatt2", "klatt3", "Alex", "annie", "belinda", "ed", "michel", "steph"]


# ============================================================================ CLI
def add_denoise_args(parser: argparse.ArgumentParser) -> None:
    """Add the data, STFT, training and evaluation flags both denoising scripts share."""
    g = parser.add_argument_group("homework files (a training pair; noisy test files without reference)")
    g.add_argument("--clean", type=Path, help="clean training signal (one long file)")
    g.add_argument("--noisy", type=Path, help="noisy version of --clean: same length and sample rate")
    g.add_argument("--test", type=Path, nargs="+", default=[],
                   help="noisy test signals with no clean reference: denoised and saved, not scored "
                        "(works in every data mode)")
    g = parser.add_argument_group("folders (clean utterances + noise recordings, mixed at chosen SNRs)")
    g.add_argument("--clean-dir", type=Path,
                   help="folder of clean speech; each sub-folder is one speaker (files directly in it: one speaker)")
    g.add_argument("--noise-dir", type=Path, help="folder of noise recordings; each file is cut into a training "
                                                  "part and a disjoint test part")
    g.add_argument("--heldout-noise-dir", type=Path,
                   help="folder of noise recordings used only at test time (noise types held out of training)")
    g.add_argument("--heldout-exclude", default="white_*",
                   help="comma-separated filename globs dropped from the held-out noise folder because their "
                        "type occurs in training (default %(default)r: white noise is a training type)")
    g.add_argument("--test-speakers", default=None,
                   help="comma-separated speaker (sub-folder) names used only for testing "
                        "(default: the last speaker in sorted order, e.g. MC for tsp/{FA,MC})")
    g.add_argument("--train-speakers", default=None,
                   help="comma-separated training speakers (default: every speaker not in --test-speakers)")
    g.add_argument("--train-snr-range", type=float_range(-60, 60), nargs=2, default=(0.0, 10.0), metavar=("LO", "HI"),
                   help="training mixtures draw their SNR uniformly from [LO, HI] dB (default 0 10)")
    g.add_argument("--test-snrs", type=float_range(-60, 60), nargs="+", default=(-5.0, 0.0, 5.0, 10.0),
                   help="input SNRs in dB of the test mixtures (default -5 0 5 10)")
    g.add_argument("--mixes-per-utterance", type=int_range(1, 1000), default=4,
                   help="training mixtures per clean utterance and epoch, re-drawn every epoch (default 4)")
    g.add_argument("--speed-perturb", type=float_range(0.5, 2.0), nargs="+", default=(0.8, 0.9, 1.0, 1.1, 1.2),
                   metavar="FACTOR",
                   help="training utterances are played at one of these speeds (resampling shifts pitch and "
                        "formants) to generalise to unseen speakers; 1 alone switches it off "
                        "(default 0.8 0.9 1.0 1.1 1.2)")
    g.add_argument("--noise-test-fraction", type=float_range(0, 1, lo_open=True, hi_open=True), default=0.25,
                   help="last fraction of each noise file reserved for test mixtures (default 0.25)")
    g.add_argument("--max-test-utterances", type=int_range(0), default=0,
                   help="use at most this many test utterances (0: all)")
    g = parser.add_argument_group("features and training")
    g.add_argument("--n-fft", type=positive_int, default=N_FFT, help="STFT size in samples (default %(default)s)")
    g.add_argument("--hop-length", type=positive_int, default=HOP_LENGTH,
                   help="STFT hop in samples (default %(default)s)")
    g.add_argument("--output", choices=["mask", "magnitude"], default="mask",
                   help="the network predicts a mask in [0,1] applied to the noisy magnitude (sigmoid last layer) "
                        "or the clean log1p magnitude directly (ReLU last layer) (default %(default)s)")
    g.add_argument("--loss", choices=["log1p", "magnitude"], default="magnitude",
                   help="MSE on log1p magnitudes or on (compressed, |X|^0.5) magnitudes (default %(default)s)")
    g.add_argument("--batch-size", type=positive_int, default=256, help="frames per batch (default %(default)s)")
    g.add_argument("--lr", type=float_range(0, 10, lo_open=True), default=1e-3,
                   help="Adam learning rate (default %(default)s)")
    g.add_argument("--val-fraction", type=float_range(0, 0.9, hi_open=True), default=0.1,
                   help="fraction of the training utterances (or of the training pair) kept for validation "
                        "and best-checkpoint selection (default %(default)s)")
    g.add_argument("--resume", action="store_true", help="continue training from the checkpoint in --out-dir")
    g = parser.add_argument_group("evaluation")
    g.add_argument("--pesq-max", type=int_range(0), default=0,
                   help="score PESQ and STOI on at most this many signals per set and input SNR "
                        "(0: all; PESQ costs ~40 ms per 2.5 s signal)")
    # sizes without a flag of their own (apply_quick shrinks them for --quick): the synthetic default's
    # utterances (train, test) and noise seconds (train, test); the TSP data's training utterances kept
    # and test utterances used (None: all, or --max-test-utterances)
    parser.set_defaults(synthetic_utterances=(40, 12), synthetic_noise_seconds=(20.0, 10.0),
                        tsp_train_utterances=None, tsp_test_utterances=None)


def script_parser(doc: str, *, epochs: int, layers: str) -> argparse.ArgumentParser:
    """The command line of ``hw_cnn1d.py`` / ``hw_cnn2d.py``: the shared flags plus ``--channels`` of its ``layers``."""
    parser = script_help(base_parser(doc, epochs=epochs))
    add_data_args(parser, ["tsp", "synthetic"])
    add_denoise_args(parser)
    parser.add_argument("--channels", type=int_range(1, 1024), nargs=3, default=(16, 32, 32),
                        help=f"channels of the three {layers} layers (default 16 32 32)")
    return parser


def apply_quick(args: argparse.Namespace) -> argparse.Namespace:
    """``--quick`` (a smoke test) as explicit sizes, set once right after parsing; nothing later reads it.

    One short epoch of 2 mixtures per utterance; the synthetic default renders 8 training and
    2 test utterances with 3 s / 2 s of noise; the TSP data keep 6 training utterances and at
    most 4 test utterances (fewer if ``--max-test-utterances`` says so). Folder and file modes
    keep their data.
    """
    if args.quick:
        args.epochs = min(args.epochs, 1)
        args.mixes_per_utterance = min(args.mixes_per_utterance, 2)
        args.synthetic_utterances, args.synthetic_noise_seconds = (8, 2), (3.0, 2.0)
        args.tsp_train_utterances, args.tsp_test_utterances = 6, args.max_test_utterances or 4
    return args


def check_args(args: argparse.Namespace) -> None:
    """Validate the shared flags; raise UserError with a clear message."""
    if (args.clean is None) != (args.noisy is None):
        raise UserError("--clean and --noisy go together: give both (a training pair) or neither")
    if args.clean is not None and args.clean_dir is not None:
        raise UserError("give either --clean/--noisy (homework files) or --clean-dir/--noise-dir (folders), not both")
    if (args.clean_dir is None) != (args.noise_dir is None):
        raise UserError("--clean-dir and --noise-dir go together")
    lo, hi = args.train_snr_range
    if lo > hi:
        raise UserError(f"--train-snr-range: LO ({lo}) is above HI ({hi})")
    if not 0.0 < args.noise_test_fraction < 1.0:
        raise UserError("--noise-test-fraction must be between 0 and 1")
    if not 0.0 <= args.val_fraction < 0.9:
        raise UserError("--val-fraction must be in [0, 0.9)")
    if any(not 0.5 <= f <= 2.0 for f in args.speed_perturb):
        raise UserError(f"--speed-perturb factors must be between 0.5 and 2, got {args.speed_perturb}")
    if args.n_fft < 256:
        raise UserError(f"--n-fft must be at least 256 (the CNNs' unpadded layers need >= 129 bins), got {args.n_fft}")
    if args.hop_length > args.n_fft:
        raise UserError(f"--hop-length ({args.hop_length}) must not exceed --n-fft ({args.n_fft})")


# ============================================================================ data
@dataclass
class Mixture:
    """One evaluation signal: ``noisy`` ``[n_samples]`` float32 at 16 kHz, ``clean`` the same or None."""

    name: str                  # file-safe identifier
    noisy: np.ndarray
    clean: np.ndarray | None
    snr_db: float | None       # input SNR by construction (None: unknown)
    noise: str                 # noise file / type
    group: str                 # "test" | "heldout" | "train" | "val" | "unlabeled"


@dataclass
class DenoiseData:
    """Everything a run needs: a training sampler and the fixed evaluation sets.

    ``sample_epoch(rng)`` returns the training pairs ``[(noisy, clean), ...]`` for one
    epoch (fresh mixtures each call in folder/synthetic modes, the fixed pair in
    homework mode).
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


def snr_tag(snr_db: float) -> str:
    """File/metric-safe tag of an SNR in dB: ``-5 -> 'm5db'``, ``0 -> '0db'``, ``2.5 -> '2p5db'``."""
    text = f"{abs(snr_db):g}".replace(".", "p")
    return f"{'m' if snr_db < 0 else ''}{text}db"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def load_pair(clean_path: Path, noisy_path: Path, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """Load the homework training pair and check that it is a pair.

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
    if not np.any(clean):
        raise UserError(f"--clean {clean_path} is silent (all zeros): SNR is undefined and there is nothing to learn")
    if sr_c != sample_rate:
        print(f"note: resampling the training pair from {sr_c} Hz to {sample_rate} Hz")
        from audiolab.core.io import resample
        clean, noisy = resample(clean, sr_c, sample_rate), resample(noisy, sr_c, sample_rate)
    return clean.astype(np.float32), noisy.astype(np.float32)


def load_unlabeled(paths: Sequence[Path], sample_rate: int = SAMPLE_RATE, min_samples: int = 0) -> list[Mixture]:
    """Noisy test files with no reference (``--test``).

    Unreadable files (incl. NaN/inf samples), silent ones and ones shorter than
    ``min_samples`` (one STFT frame, ``--n-fft``) are reported by path and skipped. Each
    file gets a distinct output name: two files with the same base name (``a/x.wav``,
    ``b/x.wav``) become ``x`` and ``x_2`` rather than overwriting each other's outputs.
    """
    out = []
    used: set[str] = set()
    for path, wav, _ in iter_readable(paths, sample_rate=sample_rate, mono=True):
        if not np.any(wav):
            print(f"skipped: {path}: silent (all zeros), nothing to denoise")
            continue
        if wav.shape[-1] < min_samples:
            print(f"skipped: {path}: {wav.shape[-1]} samples at {sample_rate} Hz, shorter than one STFT frame "
                  f"(--n-fft {min_samples})")
            continue
        out.append(Mixture(unique_name(_safe(path.stem), used), wav.astype(np.float32), None, None, "unknown",
                           "unlabeled"))
    return out


def _loop_to(x: np.ndarray, n: int, offset: int = 0) -> np.ndarray:
    """``n`` samples of ``x`` starting at ``offset``, wrapping around (tiles short noise)."""
    idx = (offset + np.arange(n)) % x.shape[0]
    return x[idx]


@dataclass
class NoiseSource:
    """A noise recording split in time: ``train`` part and disjoint ``test`` part (``[n]`` float32)."""

    name: str
    train: np.ndarray
    test: np.ndarray


def split_noise(name: str, wav: np.ndarray, test_fraction: float, sample_rate: int = SAMPLE_RATE,
                gap_s: float = 0.5) -> NoiseSource:
    """Cut a noise recording into a training part and a later, disjoint test part.

    The first ``1 - test_fraction`` is for training, then ``gap_s`` seconds are dropped,
    the rest is for testing, so no test sample was ever in a training mixture.
    """
    n = wav.shape[0]
    cut = int(round(n * (1 - test_fraction)))
    gap = min(int(gap_s * sample_rate), max(0, (n - cut) // 4))
    return NoiseSource(name, wav[:cut].astype(np.float32), wav[cut + gap:].astype(np.float32))


def random_mix(clean: np.ndarray, noise: np.ndarray, snr_db: float, rng: np.random.Generator,
               level_dbfs: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mix ``clean`` with a random segment of ``noise`` at ``snr_db``; return ``(noisy, clean)``.

    The SNR is over the whole utterance (``audiolab.augment.waveform.mix_at_snr``). With
    ``level_dbfs=(lo, hi)`` both signals are then scaled by one gain so that the mixture's
    RMS is uniform in [lo, hi] dBFS (level augmentation; the SNR is unchanged).
    """
    from audiolab.augment.waveform import mix_at_snr
    seg = _loop_to(noise, clean.shape[0], int(rng.integers(noise.shape[0])))
    if not np.any(seg):
        seg = rng.standard_normal(clean.shape[0]).astype(np.float32) * 1e-3
    noisy, _ = mix_at_snr(clean, seg, snr_db)
    if level_dbfs is not None:
        rms = float(np.sqrt(np.mean(noisy.astype(np.float64) ** 2))) + 1e-12
        gain = 10 ** (rng.uniform(*level_dbfs) / 20) / rms
        gain = min(gain, 0.99 / (float(np.abs(noisy).max()) + 1e-12))
        noisy, clean = noisy * gain, clean * gain
    return noisy.astype(np.float32), clean.astype(np.float32)


def speed_perturb(wav: np.ndarray, factor: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Speed perturbation: resample so that playback at ``sample_rate`` is ``factor`` times faster.

    ``factor < 1`` lengthens the signal and lowers pitch and formants together (a
    "deeper" voice); Ko, Peddinti, Povey & Khudanpur, "Audio augmentation for speech
    recognition", Interspeech 2015. ``[n] -> [~n / factor]`` float32.
    """
    from audiolab.core.io import resample
    if factor == 1.0:
        return wav
    new_rate = int(round(sample_rate / factor / 100.0)) * 100  # multiples of 100 Hz keep the filter short
    return resample(wav, sample_rate, new_rate).astype(np.float32)


class Mixer:
    """Training sampler for folder/synthetic modes: fresh mixtures every epoch.

    Each call mixes every clean utterance ``mixes`` times, each time at a random speed
    from ``speeds`` (speed perturbation, precomputed), with a random segment of a random
    noise's *training* part, at an SNR uniform in ``snr_range`` dB and a random level.
    """

    def __init__(self, clean: Sequence[np.ndarray], noises: Sequence[NoiseSource], snr_range, mixes: int,
                 speeds: Sequence[float] = (1.0,)):
        self.variants = [[speed_perturb(w, f) for f in speeds] for w in clean]
        self.noises, self.snr_range, self.mixes = list(noises), tuple(snr_range), mixes

    def keep(self, n: int) -> None:
        """Keep only the first ``n`` clean utterances (smoke tests)."""
        self.variants = self.variants[:n]

    def __call__(self, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
        pairs = []
        for variants in self.variants:
            for _ in range(self.mixes):
                wav = variants[int(rng.integers(len(variants)))]
                src = self.noises[int(rng.integers(len(self.noises)))]
                pairs.append(random_mix(wav, src.train, float(rng.uniform(*self.snr_range)), rng, TRAIN_LEVEL_DBFS))
        return pairs


def fixed_mixtures(utterances: Sequence[tuple[str, np.ndarray]], noises: Sequence[tuple[str, np.ndarray]],
                   snrs: Sequence[float], group: str, seed: int) -> list[Mixture]:
    """Deterministic evaluation mixtures: every utterance at every SNR, noises taken in turn.

    Utterance ``i`` at the ``k``-th SNR uses noise ``(i + k) % len(noises)`` at a seeded
    random offset, so every noise occurs at every SNR.
    """
    rng = np.random.default_rng(seed)
    out = []
    for i, (uname, wav) in enumerate(utterances):
        for k, s in enumerate(snrs):
            nname, noise = noises[(i + k) % len(noises)]
            noisy, clean = random_mix(wav, noise, float(s), rng)
            out.append(Mixture(_safe(f"{uname}_{nname}_{snr_tag(s)}"), noisy, clean, float(s), nname, group))
    return out


def _speaker_of(path: Path, root: Path) -> str:
    rel = path.relative_to(root)
    return rel.parts[0] if len(rel.parts) > 1 else root.name


def _load_folder(root: Path, min_samples: int = 0) -> list[tuple[str, str, np.ndarray]]:
    """``(speaker, name, wav)`` for every readable, non-silent audio file below ``root``.

    Files shorter than ``min_samples`` (one STFT frame) are reported by path and skipped, as
    are unreadable ones (incl. NaN/inf samples) and silent ones; names are made unique.
    """
    files = find_audio_files(root)
    if not files:
        raise UserError(f"no audio files found under {root}")
    out = []
    used: set[str] = set()
    longest = 0
    for path, wav, _ in iter_readable(files, sample_rate=SAMPLE_RATE, mono=True):
        if not np.any(wav):
            print(f"skipped: {path}: silent (all zeros); SNR would be undefined")
            continue
        longest = max(longest, wav.shape[-1])
        if wav.shape[-1] < min_samples:
            print(f"skipped: {path}: {wav.shape[-1]} samples at {SAMPLE_RATE} Hz, shorter than one STFT frame "
                  f"(--n-fft {min_samples})")
            continue
        out.append((_speaker_of(path, root), unique_name(_safe(path.stem), used), wav))
    if not out and 0 < longest < min_samples:
        raise UserError(f"--n-fft {min_samples} is longer than every audio file under {root} (the longest has "
                        f"{longest} samples at {SAMPLE_RATE} Hz); use --n-fft <= {longest}")
    if not out:
        raise UserError(f"none of the {len(files)} audio files under {root} could be used")
    return out


def _split_list(text: str | None) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()] if text else []


def _load_noises(noise_dir: Path, heldout_dir: Path | None, args: argparse.Namespace
                 ) -> tuple[list[NoiseSource], list[tuple[str, np.ndarray]]]:
    """The folder mode's noises: ``(sources, heldout_noises)``.

    Each file of ``noise_dir`` is cut into a training and a test part (:func:`split_noise`);
    ``heldout_noises`` are the recordings of ``heldout_dir`` less ``--heldout-exclude``. A file that
    is unreadable, silent or shorter than one STFT frame is reported and skipped.

    Raises:
        UserError: no usable noise recording under ``noise_dir``.
    """
    sources = []
    used_noise: set[str] = set()
    for p, w, _ in iter_readable(find_audio_files(noise_dir), sample_rate=SAMPLE_RATE):
        src = split_noise(_safe(p.stem), w, args.noise_test_fraction)
        short = min(len(src.train), len(src.test))
        if short < args.n_fft or not (np.any(src.train) and np.any(src.test)):
            print(f"skipped: {p}: its training or test part is silent or shorter than one STFT frame "
                  f"(--n-fft {args.n_fft} samples at {SAMPLE_RATE} Hz)")
            continue
        src.name = unique_name(src.name, used_noise)
        sources.append(src)
    if not sources:
        raise UserError(f"no usable (readable, non-silent, long enough) noise recordings under {noise_dir}")
    heldout_noises = []
    if heldout_dir is not None and Path(heldout_dir).is_dir():
        skip = _split_list(args.heldout_exclude)
        for p, w, _ in iter_readable(find_audio_files(heldout_dir), sample_rate=SAMPLE_RATE):
            if any(p.match(g) for g in skip) or not np.any(w):
                continue
            if len(w) < args.n_fft:
                print(f"skipped: {p}: {len(w)} samples, shorter than one STFT frame (--n-fft {args.n_fft})")
                continue
            heldout_noises.append((unique_name(_safe(p.stem), used_noise), w))
    return sources, heldout_noises


def folder_data(clean_dir: Path, noise_dir: Path, args: argparse.Namespace, dataset: str,
                heldout_dir: Path | None = None, max_test_utterances: int | None = None) -> DenoiseData:
    """Build the folder-mode data (see module docstring): speaker-disjoint, noise-segment-disjoint.

    ``max_test_utterances`` (else ``args.max_test_utterances``; 0 or None: all) caps the test utterances.

    Raises:
        UserError: missing folders, no usable audio, unknown speakers, or speaker sets that overlap.
    """
    for p in (clean_dir, noise_dir):
        if not Path(p).is_dir():
            raise UserError(f"{p} is not a folder")
    utts = _load_folder(Path(clean_dir), min_samples=args.n_fft)
    speakers = sorted({s for s, _, _ in utts})
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
    sources, heldout_noises = _load_noises(noise_dir, heldout_dir, args)
    test_noises = [(s.name, s.test) for s in sources]
    train_noises = [(s.name, s.train) for s in sources]
    snrs = list(args.test_snrs)
    data = DenoiseData(
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
    return data


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
    """White, pink and babble noise, ``seconds`` long each, unit RMS."""
    from audiolab.augment.waveform import pink_noise
    n = int(seconds * SAMPLE_RATE)
    return [("white", rng.standard_normal(n).astype(np.float32)), ("pink", pink_noise(n, rng)),
            ("babble", synthetic_babble(n, rng))]


def synthetic_data(args: argparse.Namespace) -> DenoiseData:
    """The embedded default: eSpeak NG sentences + synthetic white/pink/babble noise (SYNTHETIC).

    Training speakers are ``SYNTH_TRAIN_VOICES`` saying Harvard lists 1-3, test speakers
    ``SYNTH_TEST_VOICES`` saying list 4; training noise and test noise are separate
    renderings (different random draws), so test noise segments are unseen. Sizes:
    ``args.synthetic_utterances`` and ``args.synthetic_noise_seconds`` (train, test).
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


def prepare_data(args: argparse.Namespace) -> DenoiseData:
    """Choose the data mode from the flags (see module docstring) and build the data.

    Raises:
        UserError / DatasetNotFound: bad files, missing folders, a named dataset that is absent.
    """
    check_args(args)
    unlabeled = load_unlabeled(args.test, min_samples=args.n_fft) if args.test else []
    if args.clean is not None:
        clean, noisy = load_pair(args.clean, args.noisy)
        n_val = int(round(clean.shape[0] * args.val_fraction))
        min_len = 4 * args.n_fft
        if clean.shape[0] - n_val < min_len:
            raise UserError(f"the training pair is too short ({clean.shape[0]} samples); need at least "
                            f"{min_len + n_val} samples")
        if n_val and n_val < min_len:
            n_val = 0
        tr_c, tr_n = clean[:clean.shape[0] - n_val], noisy[:clean.shape[0] - n_val]
        val = []
        if n_val and np.any(clean[-n_val:]):
            val = [Mixture("pair_tail", noisy[-n_val:], clean[-n_val:], None, "given", "val")]
        print(f"homework files: training pair {args.clean} / {args.noisy}, {clean.shape[0] / SAMPLE_RATE:.1f} s "
              f"({n_val / SAMPLE_RATE:.1f} s of its end held out for validation); {len(unlabeled)} --test file(s)")
        data = DenoiseData(
            dataset=f"files:{Path(args.clean).name}", source="real", description="homework training pair",
            sample_epoch=lambda rng: [(tr_n, tr_c)],
            train_eval=[Mixture("train_pair", noisy, clean, None, "given", "train")], val=val, test=[],
            info={"n_train_utterances": 1, "n_val_utterances": len(val), "n_test_utterances": 0, "notes": []})
    elif args.clean_dir is not None:
        print(f"folders: clean speech {args.clean_dir}, noise {args.noise_dir}")
        data = folder_data(args.clean_dir, args.noise_dir, args, f"folders:{Path(args.clean_dir).name}",
                           args.heldout_noise_dir)
    else:
        root = resolve_data_root(args.data_root)
        choice = choose_dataset(args.dataset, root, [TSP], "synthetic",
                                "eSpeak NG sentences + synthetic white/pink/babble noise", args.download)
        if choice.synthetic:
            data = synthetic_data(args)
        else:
            heldout = args.heldout_noise_dir or choice.path.parent / "noise" / "recorded"
            data = folder_data(choice.path, choice.path.parent / "noise" / "speech_commands_background", args,
                               "tsp", heldout, max_test_utterances=args.tsp_test_utterances)
            if args.tsp_train_utterances:  # --quick: a few training utterances only
                data.sample_epoch.keep(args.tsp_train_utterances)
    data.unlabeled = unlabeled
    return data


# ============================================================================ features
def near_silent_prefix(n_frames: int, n_freq: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``[n_frames, n_freq]`` tiny random magnitudes (|N(0, 1)| * ``PREFIX_MAGNITUDE``)."""
    return torch.randn(n_frames, n_freq, generator=generator).abs() * PREFIX_MAGNITUDE


class FrameBank:
    """STFT frames of many signals, ready to serve ``[B, 1, 513]`` or ``[B, 1, context, 513]`` examples.

    For each ``(noisy, clean)`` pair the noisy magnitude ``|Y|`` ``[T, F]`` (time-major) gets
    ``context - 1`` near-silent frames in front; the network input for frame ``t`` is
    ``log1p|Y|`` of frames ``t - context + 1 .. t`` (the prefix fills in before the start),
    its target the clean magnitude ``|S|`` of frame ``t``. Windows are gathered per batch,
    never materialised for the whole set.

    Attributes:
        features: ``[N_rows, F]`` log1p noisy magnitudes incl. prefixes.
        noisy_mag, clean_mag: ``[N, F]`` linear magnitudes of the target frames.
        ends: ``[N]`` row in ``features`` of each target frame.
    """

    def __init__(self, pairs: Sequence[tuple[np.ndarray, np.ndarray | None]], context: int,
                 n_fft: int = N_FFT, hop_length: int = HOP_LENGTH, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        feats, noisy_m, clean_m, ends = [], [], [], []
        row = 0
        for noisy, clean in pairs:
            y = magnitude_phase(noisy, n_fft, hop_length)[0].T  # [T, F]
            prefix = near_silent_prefix(context - 1, y.shape[1], gen)
            feats.append(torch.log1p(torch.cat([prefix, y])))
            noisy_m.append(y)
            if clean is not None:
                clean_m.append(magnitude_phase(clean, n_fft, hop_length)[0].T)
            ends.append(row + context - 1 + torch.arange(y.shape[0]))
            row += y.shape[0] + context - 1
        self.context = context
        self.features = torch.cat(feats)
        self.noisy_mag = torch.cat(noisy_m)
        self.clean_mag = torch.cat(clean_m) if clean_m else None
        self.ends = torch.cat(ends)

    def __len__(self) -> int:
        return int(self.ends.shape[0])

    def inputs(self, idx: torch.Tensor) -> torch.Tensor:
        """Network inputs for target frames ``idx``: ``[B, 1, F]`` (context 1) or ``[B, 1, context, F]``."""
        offsets = torch.arange(self.context - 1, -1, -1)
        rows = self.ends[idx][:, None] - offsets[None, :]  # [B, context], oldest first
        x = self.features[rows]                            # [B, context, F]
        return x[:, 0:1, :] if self.context == 1 else x.unsqueeze(1)

    def batches(self, batch_size: int, generator: torch.Generator | None = None,
                shuffle: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield ``(x, noisy_mag [B, F], clean_mag [B, F])`` mini-batches."""
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for start in range(0, len(self), batch_size):
            idx = order[start:start + batch_size]
            yield self.inputs(idx), self.noisy_mag[idx], self.clean_mag[idx]


class TrainStream:
    """Iterable of training batches for ``audiolab.core.train.fit``: new mixtures every epoch.

    Each ``iter()`` after the first draws a fresh epoch of pairs from ``data.sample_epoch``
    and serves shuffled ``(x, noisy_mag, clean_mag)`` batches from a :class:`FrameBank`;
    ``bank`` is the current epoch's bank (the first one also fits the feature normaliser).
    """

    def __init__(self, data: DenoiseData, context: int, batch_size: int, n_fft: int, hop_length: int, seed: int):
        self.data, self.context, self.batch_size = data, context, batch_size
        self.n_fft, self.hop_length = n_fft, hop_length
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.bank = FrameBank(data.sample_epoch(self.rng), context, n_fft, hop_length, seed)
        self._fresh = True

    def __len__(self) -> int:
        return math.ceil(len(self.bank) / self.batch_size)

    def __iter__(self):
        if not self._fresh:
            self.bank = FrameBank(self.data.sample_epoch(self.rng), self.context, self.n_fft, self.hop_length,
                                  int(self.rng.integers(2**31)))
        self._fresh = False
        return self.bank.batches(self.batch_size, self.gen)

    def state_dict(self) -> dict:
        """Random state of the epochs to come (``audiolab.core.train.fit`` checkpoints it for an exact resume)."""
        return {"rng": self.rng.bit_generator.state, "gen": self.gen.get_state(), "fresh": self._fresh}

    def load_state_dict(self, state: dict) -> None:
        """Continue as the stream that saved ``state``: the next epoch draws the mixtures it would have drawn."""
        self.rng.bit_generator.state = state["rng"]
        self.gen.set_state(state["gen"])
        self._fresh = bool(state["fresh"])


class FeatureNorm(torch.nn.Module):
    """Per-frequency-bin standardisation of ``log1p`` magnitudes: ``(x - mean) / std`` over the last axis.

    ``mean``, ``std`` (``[F]``) are buffers, so they travel with the model's checkpoint.
    """

    def __init__(self, n_freq: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_freq))
        self.register_buffer("std", torch.ones(n_freq))

    @torch.no_grad()
    def fit(self, log_mag: torch.Tensor) -> "FeatureNorm":
        """Set mean and std from training features ``[N, F]``."""
        self.mean.copy_(log_mag.mean(0))
        self.std.copy_(log_mag.std(0).clamp_min(1e-3))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class FrameCNN(torch.nn.Module):
    """What the two homework CNNs share around their convolutions: ``[B, 1, ..., F]`` -> ``[B, F]``.

    :class:`FeatureNorm` on the input, the script's convolution stack ``features``
    (``hw_cnn1d.CNN1d``, ``hw_cnn2d.CNN2d``), flatten, a Linear layer to ``n_freq`` values and
    an activation on it too: sigmoid (``output="mask"``, a mask in [0, 1] for the noisy
    magnitude) or ReLU (``output="magnitude"``, the clean log1p magnitude).

    Args:
        n_freq: frequency bins F (``n_fft // 2 + 1``).
        features: the convolution stack; ``input_shape`` (without batch and channel) sizes its output.
        output: ``"mask"`` or ``"magnitude"``.
    """

    def __init__(self, n_freq: int, features: torch.nn.Module, input_shape: tuple[int, ...], output: str = "mask"):
        super().__init__()
        self.norm = FeatureNorm(n_freq)
        self.features = features
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, 1, *input_shape)).numel()
        self.head = torch.nn.Linear(n_flat, n_freq)
        self.out_act = torch.nn.Sigmoid() if output == "mask" else torch.nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[B, 1, F]`` or ``[B, 1, T, F]`` log1p magnitudes (oldest frame first) -> ``[B, F]``."""
        return self.out_act(self.head(self.features(self.norm(x)).flatten(1)))


def magnitude_estimate(out: torch.Tensor, noisy_mag: torch.Tensor, output: str) -> torch.Tensor:
    """Turn network outputs ``[B, F]`` into a linear magnitude estimate ``[B, F]``.

    ``output="mask"``: ``out`` in [0, 1] multiplies the noisy magnitude;
    ``output="magnitude"``: ``out`` (>= 0) is ``log1p`` of the clean magnitude.
    """
    return out * noisy_mag if output == "mask" else torch.expm1(out.clamp_min(0))


def spectral_loss(out: torch.Tensor, noisy_mag: torch.Tensor, clean_mag: torch.Tensor, output: str,
                  loss: str = "log1p") -> torch.Tensor:
    """MSE between the estimated and the clean magnitude, on ``log1p`` or on ``|X|^0.5`` scale.

    Args:
        out: network output ``[B, F]``; noisy_mag, clean_mag: linear magnitudes ``[B, F]``.
        output: ``"mask"`` or ``"magnitude"`` (see :func:`magnitude_estimate`).
        loss: ``"log1p"`` (log-spectral MSE) or ``"magnitude"`` (MSE of square-root
            compressed magnitudes, closer to the time-domain SNR).
    """
    if output == "magnitude" and loss == "log1p":
        return F.mse_loss(out, torch.log1p(clean_mag))
    est = magnitude_estimate(out, noisy_mag, output)
    if loss == "log1p":
        return F.mse_loss(torch.log1p(est), torch.log1p(clean_mag))
    return F.mse_loss(est.clamp_min(1e-8).sqrt(), clean_mag.sqrt())


@torch.no_grad()
def enhance(model: torch.nn.Module, noisy: np.ndarray, context: int, output: str, n_fft: int = N_FFT,
            hop_length: int = HOP_LENGTH, batch_size: int = 2048, device: torch.device | str = "cpu") -> np.ndarray:
    """Denoise one signal: model on every frame, noisy phase, inverse STFT.

    Args:
        model: maps ``[B, 1, F]`` / ``[B, 1, context, F]`` log1p magnitudes to ``[B, F]``.
        noisy: ``[n_samples]`` float waveform.

    Returns:
        ``[n_samples]`` float32 estimate.
    """
    model.eval()
    mag, phase = magnitude_phase(noisy, n_fft, hop_length)  # [F, T]
    bank = FrameBank([(noisy, None)], context, n_fft, hop_length, seed=0)
    outs = []
    for start in range(0, len(bank), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(bank)))
        outs.append(model(bank.inputs(idx).to(device)).cpu())
    est = magnitude_estimate(torch.cat(outs), bank.noisy_mag, output).T  # [F, T]
    wav = from_magnitude_phase(est, phase, n_fft, hop_length, length=noisy.shape[-1])
    return wav.numpy().astype(np.float32)


def spectral_gating(noisy: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Baseline: ``noisereduce.reduce_noise`` (non-stationary spectral gating, no noise clip)."""
    import noisereduce as nr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = nr.reduce_noise(y=noisy.astype(np.float32), sr=sample_rate, stationary=False)
    return np.asarray(out, dtype=np.float32)[: noisy.shape[0]]


# ============================================================================ scores
def score(estimate: np.ndarray, clean: np.ndarray, noisy: np.ndarray, with_perceptual: bool = True,
          sample_rate: int = SAMPLE_RATE) -> dict:
    """Scores of one estimate against its clean reference.

    Returns a dict with ``snr_db``, ``snr_improvement_db`` (over the noisy input),
    ``si_snr_db``, ``si_snr_improvement_db``, ``pesq``, ``stoi``; a score that is undefined
    is ``None`` and the reason is in ``note`` (silent reference: SNR undefined; PESQ found
    no utterance). PESQ and STOI are skipped (``None``) unless ``with_perceptual``.
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
    for k in ("snr_db", "snr_improvement_db", "si_snr_db", "si_snr_improvement_db", "pesq", "stoi"):
        if row[k] is not None and not math.isfinite(row[k]):
            row[k] = None
    return row


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def evaluate_set(mixtures: Sequence[Mixture], methods: dict[str, Callable[[np.ndarray], np.ndarray]],
                 pesq_max: int = 0, perceptual: bool = True, wav_dir: Path | None = None,
                 wav_method: str | None = None, desc: str = "eval") -> list[dict]:
    """Run every method on every mixture and score it; one row per (mixture, method).

    PESQ/STOI are computed for the first ``pesq_max`` mixtures of each input SNR
    (0: all). The ``wav_method`` estimate of every mixture is saved to ``wav_dir``.
    """
    rows = []
    seen: dict = {}
    for mix in tqdm(mixtures, desc=desc, leave=False, dynamic_ncols=True):
        seen[mix.snr_db] = seen.get(mix.snr_db, 0) + 1
        perc = perceptual and (pesq_max <= 0 or seen[mix.snr_db] <= pesq_max)
        mix_rows = []
        try:
            for method, fn in methods.items():
                est = fn(mix.noisy)
                if not np.all(np.isfinite(est)):
                    raise ValueError(f"the {method} estimate holds NaN or inf samples")
                if wav_dir is not None and method == wav_method:
                    save_audio(wav_dir / f"{mix.name}.wav", _peak_safe(est), SAMPLE_RATE)
                if mix.clean is None:
                    continue
                row = {"set": mix.group, "signal": mix.name, "noise": mix.noise, "input_snr_db": mix.snr_db,
                       "method": method}
                row.update(score(est, mix.clean, mix.noisy, with_perceptual=perc))
                mix_rows.append(row)
        except (ValueError, RuntimeError) as err:  # one bad signal must not lose the whole evaluation
            print(f"skipped: {desc} signal {mix.name}: {err}")
            continue
        rows += mix_rows
    return rows


def _peak_safe(wav: np.ndarray) -> np.ndarray:
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    return wav / peak * 0.99 if peak > 1.0 else wav


METRICS = ("snr_db", "snr_improvement_db", "si_snr_db", "si_snr_improvement_db", "pesq", "stoi")


def summarize(rows: Sequence[dict]) -> list[dict]:
    """Mean of every score per (set, method, input SNR) and per (set, method) over all SNRs ("all")."""
    groups: dict = {}
    for r in rows:
        for snr_key in (r["input_snr_db"], "all"):
            groups.setdefault((r["set"], r["method"], snr_key), []).append(r)
    out = []
    for (set_, method, snr_key), rs in groups.items():
        row = {"set": set_, "method": method, "input_snr_db": snr_key, "n_signals": len(rs),
               "n_pesq": sum(r["pesq"] is not None for r in rs)}
        row.update({m: _mean(r[m] for r in rs) for m in METRICS})
        out.append(row)
    return out


def metrics_from_summary(summary: Sequence[dict], model_method: str) -> dict:
    """Flat metrics.json keys from :func:`summarize` rows (undefined scores are left out).

    Model: ``test_snr_db``, ``test_snr_improvement_db``, ``test_si_snr_db``, ``test_pesq``,
    ``test_stoi`` and per input SNR ``test_snr_improvement_db_input_0db`` (``m5db`` for -5);
    spectral gating the same with ``baseline_gating_``; the noisy input
    ``baseline_noisy_test_snr_db`` / ``_pesq`` / ``_stoi``; held-out noise types ``heldout_*``;
    training mixtures ``train_*`` (SNR only).
    """
    prefix = {model_method: "", "noisy": "baseline_noisy_", "spectral_gating": "baseline_gating_"}
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


def validation_scores(model: torch.nn.Module, data: DenoiseData, context: int, output: str, n_fft: int,
                      hop_length: int, device) -> dict:
    """Per-epoch validation (for ``fit``'s ``eval_fn``): mean SNR and SNR improvement in dB, no PESQ."""
    rows = [score(enhance(model, m.noisy, context, output, n_fft, hop_length, device=device), m.clean, m.noisy,
                  with_perceptual=False) for m in data.val]
    return {"val_snr_db": _mean(r["snr_db"] for r in rows) or float("nan"),
            "val_snr_improvement_db": _mean(r["snr_improvement_db"] for r in rows) or float("nan")}


# ============================================================================ outputs
def _label(data: DenoiseData) -> str:
    return f"{data.dataset}{' (SYNTHETIC)' if data.synthetic else ''}"


def improvement_figure(summary: Sequence[dict], model_method: str, title: str, path: Path) -> Path | None:
    """SNR improvement and PESQ vs input SNR for the model and spectral gating (test and held-out sets)."""
    import matplotlib.pyplot as plt
    rows = [r for r in summary if r["input_snr_db"] not in ("all", None)]
    if not rows:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric, ylabel in ((axes[0], "snr_improvement_db", "SNR improvement (dB)"),
                               (axes[1], "pesq", "PESQ (wide-band, MOS-LQO)")):
        for set_ in ("test", "heldout"):
            for method, style in ((model_method, "-o"), ("spectral_gating", "--s"), ("noisy", ":^")):
                pts = sorted((float(r["input_snr_db"]), r[metric]) for r in rows
                             if r["set"] == set_ and r["method"] == method and r[metric] is not None)
                if pts and not (metric == "snr_improvement_db" and method == "noisy"):
                    ax.plot(*zip(*pts), style, label=f"{method} ({set_})")
        ax.set(xlabel="input SNR (dB)", ylabel=ylabel, title=ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def anchors_for(metrics: dict, data: DenoiseData) -> list[dict]:
    """Reference numbers shown beside ours in the report: the target and the baselines."""
    where = "" if data.dataset == "tsp" else " (set for tsp FA->MC; this run is on another dataset)"
    out = [{"metric": "test_snr_improvement_db_input_0db", "anchor": 6.0,
            "source": f"target: >= 6 dB at 0 dB input{where}"}]
    for key, name in (("snr_db", "SNR"), ("pesq", "PESQ"), ("stoi", "STOI")):
        if metrics.get(f"baseline_gating_test_{key}") is not None:
            out.append({"metric": f"test_{key}", "anchor": metrics[f"baseline_gating_test_{key}"],
                        "source": f"noisereduce spectral gating on the same test signals ({name}; the target "
                                  "is to beat it in SNR and PESQ)"})
    return out


def train_denoiser(model: torch.nn.Module, stream: TrainStream, data: DenoiseData, args: argparse.Namespace, *,
                   context: int, out_dir: Path, device: torch.device, script: str) -> tuple[list, float, float]:
    """Train a denoiser the same way for ``hw_cnn1d.py`` and ``hw_cnn2d.py``.

    Adam at ``args.lr`` with cosine decay to 5 % of it; loss :func:`spectral_loss` on the
    model's output ``[B, F]`` against the frame's magnitudes; ``audiolab.core.train.fit`` with
    gradient clipping at 5, a checkpoint every epoch (``out_dir/checkpoint.pt``, ``--resume``)
    and, when there is a validation set, the best checkpoint by validation SNR improvement
    (:func:`validation_scores`), which is loaded back into ``model`` before returning. A best
    checkpoint left by an earlier run is deleted unless resuming, so it is never evaluated.

    Returns ``(history, train_seconds, train_cpu_seconds)`` (wall and process CPU time).
    """
    def step(model, batch):
        x, noisy_mag, clean_mag = batch
        return spectral_loss(model(x), noisy_mag, clean_mag, args.output, args.loss)

    def eval_fn(model):
        return validation_scores(model, data, context, args.output, args.n_fft, args.hop_length, device)

    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs, eta_min=args.lr * 0.05)
    ckpt = out_dir / "checkpoint.pt"
    best = ckpt.with_name("checkpoint_best.pt")
    if not args.resume:
        best.unlink(missing_ok=True)  # never evaluate a stale best checkpoint of an earlier run
    history = fit(model, optimizer, stream, step, args.epochs, eval_fn=eval_fn if data.val else None,
                  device=device, checkpoint_path=ckpt, log_path=out_dir / "log.csv", resume=args.resume,
                  scheduler=scheduler, grad_clip=5.0, best_key="val_snr_improvement_db" if data.val else None,
                  config=vars(args), desc=script)
    train_seconds, train_cpu_seconds = history.train_seconds, history.train_cpu_seconds  # the whole run, resumes too
    if data.val and best.exists():
        state = load_checkpoint(best, map_location=device)
        model.load_state_dict(state["model"])
        print(f"{script}: evaluating the best checkpoint (epoch {state['epoch']}, "
              f"validation SNR improvement {state['best_value']:.2f} dB)")
    return history, train_seconds, train_cpu_seconds


def write_examples(model_fn: Callable[[np.ndarray], np.ndarray], data: DenoiseData, method: str, script: str,
                   out_dir: Path, n_fft: int, hop: int) -> None:
    """WAVs (clean, noisy, gating, model) and a spectrogram figure of one example signal per group.

    The example is one 0 dB test mixture (or the training pair), plus the first ``--test`` file.
    """
    label = _label(data)
    examples = [m for m in data.test if m.snr_db == 0.0][:1] or data.test[:1] or data.train_eval[:1]
    for mix in examples + data.unlabeled[:1]:
        est, gated = model_fn(mix.noisy), spectral_gating(mix.noisy)
        signals = {"noisy input": mix.noisy}
        if mix.clean is not None:
            signals["clean reference"] = mix.clean
        signals.update({"spectral gating (noisereduce)": gated, f"{method} estimate": est})
        short = {"noisy input": "noisy", "clean reference": "clean", "spectral gating (noisereduce)": "gating"}
        tag = f"example_{mix.group}_{mix.name}"
        for name, wav in signals.items():
            save_audio(out_dir / f"{tag}_{short.get(name, method)}.wav", _peak_safe(wav), SAMPLE_RATE)
        snr_text = f", input {mix.snr_db:g} dB SNR" if mix.snr_db is not None else ", no reference"
        spectrogram_figure(signals, SAMPLE_RATE, out_dir / f"spectrograms_{mix.group}.png", n_fft=n_fft,
                           hop_length=hop, ncols=2,
                           suptitle=f"{script}: {mix.name} ({label}{snr_text}); n_fft={n_fft}, hop={hop}")


def evaluate_and_write(model: torch.nn.Module, data: DenoiseData, args: argparse.Namespace, *, script: str,
                       out_dir: Path, context: int, history: Sequence[dict], train_seconds: float,
                       device, extra_metrics: dict | None = None) -> dict:
    """Everything after training, shared by both scripts.

    Scores the model, the noisy input and spectral gating on the training mixtures (SNR
    only), the test set and the held-out noise set; writes every test estimate as WAV
    (``test_denoised/``, ``heldout_denoised/``, ``unlabeled_denoised/``), example WAVs and
    spectrograms (clean, noisy, gating, model) of one 0 dB test signal, SNR-improvement
    and training-curve figures, ``results_by_condition.csv``, ``results_per_signal.csv``,
    ``metrics.json`` (+ ``anchors.json``) and prints the headline line.

    Returns:
        the flat metrics dict written to ``metrics.json``.
    """
    if not is_main_process():  # torchrun: the other ranks helped train; rank 0 evaluates and writes
        return {}
    method = script.replace("hw_", "")
    n_fft, hop = args.n_fft, args.hop_length

    def model_fn(x):
        return enhance(model, x, context, args.output, n_fft, hop, device=device)

    methods = {"noisy": lambda x: x, "spectral_gating": spectral_gating, method: model_fn}
    t0 = time.perf_counter()
    rows = evaluate_set(data.train_eval, {"noisy": lambda x: x, method: model_fn}, perceptual=False, desc="train")
    rows += evaluate_set(data.test, methods, args.pesq_max, wav_dir=out_dir / "test_denoised", wav_method=method,
                         desc="test")
    rows += evaluate_set(data.heldout, methods, args.pesq_max, wav_dir=out_dir / "heldout_denoised",
                         wav_method=method, desc="held-out noise")
    evaluate_set(data.unlabeled, {method: model_fn, "spectral_gating": spectral_gating},
                 wav_dir=out_dir / "unlabeled_denoised", wav_method=method, desc="--test files")
    summary = summarize(rows)
    for name, table in (("results_per_signal.csv", rows), ("results_by_condition.csv", summary)):
        if table:
            write_csv(out_dir / name, table)
    label = _label(data)

    write_examples(model_fn, data, method, script, out_dir, n_fft, hop)
    improvement_figure(summary, method, f"{script} on {label}: model vs spectral gating", out_dir / "snr_vs_input.png")
    if history:
        plot_training_curves(history, out_dir / "training_curves.png",
                             {"loss (MSE)": ["train_loss"], "validation SNR (dB)": ["val_snr_db",
                                                                                     "val_snr_improvement_db"]},
                             title=f"{script} training on {label}")

    metrics = metrics_from_summary(summary, method)
    metrics.update({"train_seconds": train_seconds, "eval_seconds": time.perf_counter() - t0,
                    "n_fft": n_fft, "hop_length": hop, "sample_rate": SAMPLE_RATE, "context_frames": context,
                    **{k: v for k, v in data.info.items() if k != "notes"}, **(extra_metrics or {})})
    undefined = [r for r in rows if r["note"]]
    if undefined:
        metrics["undefined_scores_note"] = (f"{len(undefined)} score(s) undefined and left out of the means; first: "
                                            f"{undefined[0]['signal']}: {undefined[0]['note']}")
    if data.synthetic:
        metrics["synthetic_note"] = SYNTHETIC_NOTE
    write_metrics(out_dir, metrics, args=args, dataset=data.dataset, data_source=data.source, device=device,
                  anchors=anchors_for(metrics, data) if data.test else None)
    write_json_atomic(out_dir / "data_split.json", data.info)
    print(headline(script, metrics, data))
    return metrics


def _fmt(v, unit: str = "") -> str:
    return "n/a" if v is None else f"{v:.2f}{unit}"


def headline(script: str, m: dict, data: DenoiseData) -> str:
    """One line with the headline numbers (test set if any, else the training pair)."""
    src = f"[{_label(data)}]"
    if data.test:
        return (f"{script} {src}: test SNR {_fmt(m.get('test_snr_db'), ' dB')} "
                f"(improvement {_fmt(m.get('test_snr_improvement_db'), ' dB')}, at 0 dB input "
                f"{_fmt(m.get('test_snr_improvement_db_input_0db'), ' dB')}), PESQ {_fmt(m.get('test_pesq'))}, "
                f"STOI {_fmt(m.get('test_stoi'))} | spectral gating: SNR "
                f"{_fmt(m.get('baseline_gating_test_snr_db'), ' dB')}, "
                f"PESQ {_fmt(m.get('baseline_gating_test_pesq'))} | noisy: SNR "
                f"{_fmt(m.get('baseline_noisy_test_snr_db'), ' dB')}, PESQ {_fmt(m.get('baseline_noisy_test_pesq'))}")
    return (f"{script} {src}: training-pair SNR {_fmt(m.get('train_snr_db'), ' dB')} (noisy "
            f"{_fmt(m.get('baseline_noisy_train_snr_db'), ' dB')}); {len(data.unlabeled)} --test file(s) denoised "
            "(no reference: SNR undefined for them)")


# ============================================================================ the scripts' main
def run(args: argparse.Namespace, *, script: str, context: int,
        build_model: Callable[[int], FrameCNN]) -> dict:
    """The body of ``hw_cnn1d.main`` and ``hw_cnn2d.main``: data, model, training, evaluation, outputs.

    Args:
        args: parsed by :func:`script_parser`, then :func:`apply_quick`.
        script: the script's name (output folder, log lines).
        context: STFT frames per example (1: ``[B, 1, F]``; 20: ``[B, 1, 20, F]``).
        build_model: ``n_freq -> model``, the script's network (a :class:`FrameCNN`).

    Returns:
        the flat metrics dict written to ``metrics.json``.
    """
    seed_everything(args.seed)
    device = select_device(args.device)
    out_dir = out_dir_for(args, script)

    # data: `context` frames per example
    data = prepare_data(args)
    stream = TrainStream(data, context=context, batch_size=args.batch_size, n_fft=args.n_fft,
                         hop_length=args.hop_length, seed=args.seed)
    n_freq = args.n_fft // 2 + 1
    print(f"{script}: {data.description}; {len(stream.bank)} training frames per epoch, "
          f"{len(data.val)} validation / {len(data.test)} test / {len(data.heldout)} held-out-noise signals")

    # model, with the input normaliser fitted on the first epoch's noisy frames
    model = build_model(n_freq)
    model.norm.fit(stream.bank.features[stream.bank.ends])  # real frames only, not the prefix
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{script}: {type(model).__name__} with {n_params:,} parameters, output={args.output}, loss={args.loss}")

    # training: Adam + cosine schedule, best checkpoint by validation SNR improvement
    history, train_seconds, train_cpu_seconds = train_denoiser(
        model, stream, data, args, context=context, out_dir=out_dir, device=device, script=script)

    # evaluation and outputs
    return evaluate_and_write(model, data, args, script=script, out_dir=out_dir, context=context, history=history,
                              train_seconds=train_seconds, device=device,
                              extra_metrics={"model_parameters": n_params, "epochs": len(history),
                                             "train_cpu_seconds": train_cpu_seconds})
