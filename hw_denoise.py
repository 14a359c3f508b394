"""The speech-denoising application of ``hw_cnn1d.py`` and ``hw_cnn2d.py``: flags, the models' head, training, outputs.

The two scripts differ only in their network (a 1-D CNN on one STFT frame, a 2-D CNN
on 20 consecutive frames) and its training settings; what they share is here, once, down
to the scripts' common main body (``script_parser``, ``QUICK``, ``run``). The generic
parts live in the library:

Data (``prepare_data``; ``audiolab/data/speech.py``), three modes:
- homework files: ``--clean FILE --noisy FILE`` is one long training pair (the last
  ``--val-fraction`` of it is held out for validation), ``--test FILE ...`` are noisy
  signals without a clean reference (denoised and written out, never scored);
- folders: a folder of clean utterances (one sub-folder per speaker, e.g.
  ``tsp/FA``, ``tsp/MC``) plus a folder of noise recordings, mixed at random SNRs in
  ``--train-snr-range`` for training (a fresh mix every epoch) and at each of
  ``--test-snrs`` for testing (``audiolab/augment/noise.py``). Test speakers never occur in
  training; each noise file is cut in time into a training part (first
  ``1 - --noise-test-fraction``) and a test part, so test noise segments were never heard
  in training. An optional folder of other noise recordings is used only at test time
  ("held-out noise types", less the files matching ``--heldout-exclude``);
- embedded default: sentences synthesised with eSpeak NG (speaker-disjoint voice
  variants) plus synthetic white, pink and babble noise. Labelled synthetic everywhere.

Features (``audiolab/core/frames.py``): STFT with ``n_fft`` = 1024 (513 bins), periodic Hann
window, hop 512 by default; the networks see ``log1p(|Y|)`` of the noisy STFT (normalised
per bin by ``FeatureNorm``), shaped ``[B, 1, 513]`` (one frame) or ``[B, 1, 20, 513]`` (the
frame and the 19 before it; each signal is prefixed with 19 near-silent frames of tiny
random magnitudes so that every frame gets an estimate). The network outputs either a
mask in [0, 1] that multiplies the noisy magnitude (default) or the clean ``log1p``
magnitude directly; the estimate is recombined with the noisy phase and inverted
(``torch.istft``).

Training (``train_denoiser``): the MSE between square-root-compressed magnitudes of
estimate and clean speech (``--loss magnitude``; ``--loss log1p`` uses log1p magnitudes,
see experiments/denoise.md; ``--loss compressed``: |X|^0.3; ``--loss psa``: |X|^0.3 against the
truncated phase-sensitive target, Erdogan et al. 2015), with Adam and a cosine learning-rate decay; the checkpoint
with the best validation SNR improvement (held-out training-speaker utterances) is the
one evaluated. ``FeatureNorm`` takes its statistics from the first epoch's training
mixtures (stored in the checkpoint). Training mixtures are drawn afresh every epoch, with
speed perturbation (0.8-1.2x) of the clean speech so that a model trained on one speaker
generalises to others.

Evaluation (``evaluate_and_write``; ``audiolab/core/evaluate.py``): SNR as the homework
defines it, ``10 log10(sum s^2 / sum (s - s_hat)^2)`` in dB on the time signal; SI-SNR (Le
Roux et al. 2019); PESQ wide-band (ITU-T P.862.2, ``pesq`` package) and STOI (Taal et al.
2011, ``pystoi``). Baselines on the same signals: the noisy input itself and spectral gating
(``noisereduce``, Sainburg et al. 2020, non-stationary mode, no noise clip, i.e. as blind
as the CNNs), and the ceiling of any noisy-phase mask, the oracle ideal ratio and phase-sensitive
masks (``audiolab/core/masks.py``; ``oracle_irm_*``, ``oracle_psm_*``), all on the same signals with
the same STFT; the validation signals get every score too (``val_*``: settings are chosen there,
never on the test speakers). An undefined score (silent reference, PESQ finding no speech) is reported
as missing with a reason, never as inf or NaN.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from audiolab.core import cli
from audiolab.core.cli import add_data_args, base_parser, float_range, int_range, script_help
from audiolab.core.dsp import from_magnitude_phase, magnitude_phase
from audiolab.core.evaluate import (SAMPLE_RATE, Mixture, evaluate_set, mean_defined, metrics_from_summary,
                                    peak_safe, score, spectral_gating, summarize)
from audiolab.core.frames import FrameBank
from audiolab.core.masks import ORACLES, QUALITY_PANELS, oracle_methods, quality_figure
from audiolab.core.io import save_audio
from audiolab.core.outputs import out_dir_for, write_csv, write_json_atomic, write_metrics
from audiolab.core.plotting import plot_training_curves, spectrogram_figure
from audiolab.core.runtime import UserError, is_main_process, seed_everything, select_device
from audiolab.core.train import fit, load_checkpoint
from audiolab.data.common import SYNTHETIC_NOTE, choose_dataset, resolve_data_root
from audiolab.augment.noise import Mixer
from audiolab.data.speech import (TSP, DenoiseData, folder_data, load_folder, load_pair, load_unlabeled,
                                  synthetic_data)

N_FFT = 1024                 # -> 513 frequency bins
HOP_LENGTH = 512
CONTEXT_2D = 20              # frames seen by the 2-D CNN
LOG_FLOOR = 1e-5             # linear-magnitude floor of --features log


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
                   action=cli.Distinct, help="input SNRs in dB of the test mixtures (default -5 0 5 10)")
    g.add_argument("--mixes-per-utterance", type=int_range(1, 1000), default=4,
                   help="training mixtures per clean utterance and epoch, re-drawn every epoch (default 4)")
    g.add_argument("--speed-perturb", type=float_range(0.5, 2.0), nargs="+", default=(0.8, 0.9, 1.0, 1.1, 1.2),
                   metavar="FACTOR",
                   help="training utterances are played at one of these speeds (resampling shifts pitch and "
                        "formants) to generalise to unseen speakers; 1 alone switches it off "
                        "(default 0.8 0.9 1.0 1.1 1.2)")
    g.add_argument("--extra-clean-dir", type=Path, nargs="+", default=None,
                   help="more clean speech (other voices) for training only, mixed with the training noise parts; "
                        "never validation or test (default with --dataset tsp: the data root's emovo/<speaker>/ and "
                        "emodb_2s/wav/ where present; otherwise none)")
    g.add_argument("--no-extra-clean", action="store_true", help="no --extra-clean-dir speech, not even the default")
    g.add_argument("--extra-per-epoch", type=int_range(1), default=200,
                   help="--extra-clean-dir utterances drawn (without speed perturbation) into each epoch's "
                        "training mixtures (default %(default)s)")
    g.add_argument("--noise-test-fraction", type=float_range(0, 1, lo_open=True, hi_open=True), default=0.25,
                   help="last fraction of each noise file reserved for test mixtures (default 0.25)")
    g.add_argument("--max-test-utterances", type=int_range(0), default=0,
                   help="use at most this many test utterances (0: all)")
    g = parser.add_argument_group("features and training")
    cli.add_stft_args(g, n_fft=N_FFT, hop_length=HOP_LENGTH, min_n_fft=256,
                      n_fft_help="STFT size in samples, at least 256 (the CNNs' unpadded layers need >= 129 bins)")
    g.add_argument("--output", choices=["mask", "magnitude"], default="mask",
                   help="the network predicts a mask in [0,1] applied to the noisy magnitude (sigmoid last layer) "
                        "or the clean log1p magnitude directly (ReLU last layer) (default %(default)s)")
    g.add_argument("--features", choices=["log1p", "log"], default="log1p",
                   help="network input: log1p|Y| (near-linear for the many bins below 1) or log|Y| (floor "
                        f"{LOG_FLOOR:g}), each standardised per frequency bin (default %(default)s)")
    g.add_argument("--loss", choices=["log1p", "magnitude", "compressed", "psa"], default="magnitude",
                   help="MSE on log1p magnitudes, on |X|^0.5 (magnitude) or |X|^0.3 (compressed) magnitudes, or "
                        "psa: |X|^0.3 against the truncated phase-sensitive target |S|cos(dphi) (Erdogan et al. "
                        "2015) (default %(default)s)")
    cli.add_training_args(g, lr=1e-3, batch_size=256, batch_help="frames per batch")
    g.add_argument("--val-fraction", type=float_range(0, 0.9, hi_open=True), default=0.1,
                   help="fraction of the training utterances (or of the training pair) kept for validation "
                        "and best-checkpoint selection (default %(default)s)")
    g = parser.add_argument_group("evaluation")
    g.add_argument("--pesq-max", type=int_range(0), default=0,
                   help="score PESQ and STOI on at most this many signals per set and input SNR "
                        "(0: all; PESQ costs ~40 ms per 2.5 s signal)")
    # sizes without a flag of their own (QUICK shrinks them for --quick): the synthetic default's
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


# --quick (a smoke test), set by cli.apply_quick right after parsing: one short epoch of 2 mixtures per
# utterance (and 8 --extra-clean-dir utterances); the synthetic default renders 8 training and 2 test
# utterances with 3 s / 2 s of noise; the TSP data keep 6 training utterances and at most 4 test utterances
# (fewer if --max-test-utterances says so). Folder and file modes keep their data.
QUICK = {"epochs": 1, "mixes_per_utterance": 2, "synthetic_utterances": (8, 2), "extra_per_epoch": 8,
               "synthetic_noise_seconds": (3.0, 2.0), "tsp_train_utterances": 6,
               "tsp_test_utterances": lambda args: args.max_test_utterances or 4}


def parse_args(doc: str, argv: list[str] | None, *, epochs: int, layers: str) -> argparse.Namespace:
    """Parse the command line of ``hw_cnn1d.py`` / ``hw_cnn2d.py`` (:func:`script_parser`), ``--quick`` applied."""
    parser = script_parser(doc, epochs=epochs, layers=layers)
    return cli.apply_quick(parser.parse_args(argv), QUICK, argv)


def check_args(args: argparse.Namespace) -> None:
    """Checks that involve several flags (each flag's own range is its argparse type); raise UserError."""
    if (args.clean is None) != (args.noisy is None):
        raise UserError("--clean and --noisy go together: give both (a training pair) or neither")
    if args.clean is not None and args.clean_dir is not None:
        raise UserError("give either --clean/--noisy (homework files) or --clean-dir/--noise-dir (folders), not both")
    if (args.clean_dir is None) != (args.noise_dir is None):
        raise UserError("--clean-dir and --noise-dir go together")
    lo, hi = args.train_snr_range
    if lo > hi:
        raise UserError(f"--train-snr-range: LO ({lo}) is above HI ({hi})")
    if args.hop_length > args.n_fft:
        raise UserError(f"--hop-length ({args.hop_length}) must not exceed --n-fft ({args.n_fft})")


# ============================================================================ data
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
            if args.extra_clean_dir is None:  # other voices from the data root (issue 29)
                top = choice.path.parent
                args.extra_clean_dir = sorted(p for p in (top / "emovo").glob("*") if p.is_dir()
                                              and p.name != "original_format") + [top / "emodb_2s" / "wav"]
                args.extra_clean_dir = [p for p in args.extra_clean_dir if p.is_dir()]
    if args.extra_clean_dir and not args.no_extra_clean:
        add_extra_clean(data, args)
    data.unlabeled = unlabeled
    return data


def add_extra_clean(data: DenoiseData, args: argparse.Namespace) -> None:
    """Add the utterances of ``--extra-clean-dir`` to ``data``'s training mixtures (training only, in place).

    Each epoch draws ``--extra-per-epoch`` of them (without replacement) and mixes each once
    like the training speakers' (the same noise training parts, SNR range and level
    augmentation; ``audiolab.augment.noise.random_mix``), without speed perturbation.

    Raises:
        UserError: homework-pair mode (no noise recordings to mix with), or unusable folders.
    """
    base = data.sample_epoch
    if not isinstance(base, Mixer):
        raise UserError("--extra-clean-dir needs noise recordings to mix with: use it with --clean-dir/--noise-dir "
                        "or a dataset, not with the --clean/--noisy pair")
    wavs = []
    for folder in args.extra_clean_dir:
        if not Path(folder).is_dir():
            raise UserError(f"--extra-clean-dir {folder} is not a folder")
        wavs += [w for _, _, w in load_folder(Path(folder), min_samples=args.n_fft)]
    n = min(args.extra_per_epoch, len(wavs))

    def sample_epoch(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
        return base(rng) + [base.mix(wavs[i], rng) for i in rng.choice(len(wavs), size=n, replace=False)]
    data.sample_epoch = sample_epoch
    data.info.update({"extra_clean_dirs": [str(f) for f in args.extra_clean_dir], "n_extra_utterances": len(wavs),
                      "extra_seconds": round(sum(len(w) for w in wavs) / SAMPLE_RATE, 1)})
    print(f"extra clean speech for training: {len(wavs)} utterances, {data.info['extra_seconds']:.0f} s, "
          f"{n} per epoch")


# ============================================================================ model
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
        self.log_input = False  # True: the network sees log(|Y|) (floor LOG_FLOOR) instead of log1p(|Y|)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """``log1p|Y|`` features -> the network's input scale (``log|Y|`` when ``log_input``), before normalising."""
        return torch.log(torch.expm1(x).clamp_min(LOG_FLOOR)) if self.log_input else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[B, 1, F]`` or ``[B, 1, T, F]`` log1p magnitudes (oldest frame first) -> ``[B, F]``."""
        return self.out_act(self.head(self.features(self.norm(self.transform(x))).flatten(1)))


def magnitude_estimate(out: torch.Tensor, noisy_mag: torch.Tensor, output: str) -> torch.Tensor:
    """Turn network outputs ``[B, F]`` into a linear magnitude estimate ``[B, F]``.

    ``output="mask"``: ``out`` in [0, 1] multiplies the noisy magnitude;
    ``output="magnitude"``: ``out`` (>= 0) is ``log1p`` of the clean magnitude.
    """
    return out * noisy_mag if output == "mask" else torch.expm1(out.clamp_min(0))


def spectral_loss(out: torch.Tensor, noisy_mag: torch.Tensor, clean_mag: torch.Tensor, output: str,
                  loss: str = "log1p") -> torch.Tensor:
    """MSE between the estimated and the clean magnitude, on ``log1p``, ``|X|^0.5`` or ``|X|^0.3`` scale.

    Args:
        out: network output ``[B, F]``; noisy_mag, clean_mag: linear magnitudes ``[B, F]``.
        output: ``"mask"`` or ``"magnitude"`` (see :func:`magnitude_estimate`).
        loss: ``"log1p"`` (log-spectral MSE), ``"magnitude"`` (MSE of square-root
            compressed magnitudes, closer to the time-domain SNR), ``"compressed"`` (power 0.3)
            or ``"psa"`` (power 0.3; ``clean_mag`` holds the phase-sensitive target, Erdogan et
            al. 2015; signal approximation as in Weninger et al. 2014).
    """
    if output == "magnitude" and loss == "log1p":
        return F.mse_loss(out, torch.log1p(clean_mag))
    est = magnitude_estimate(out, noisy_mag, output)
    if loss == "log1p":
        return F.mse_loss(torch.log1p(est), torch.log1p(clean_mag))
    power = 0.5 if loss == "magnitude" else 0.3  # "compressed", "psa" (clean_mag is then the PSA target)
    return F.mse_loss(est.clamp_min(1e-8) ** power, clean_mag.clamp_min(1e-8) ** power)


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


# ============================================================================ training
class TrainStream:
    """Iterable of training batches for ``audiolab.core.train.fit``: new mixtures every epoch.

    Each ``iter()`` after the first draws a fresh epoch of pairs from ``data.sample_epoch``
    and serves shuffled ``(x, noisy_mag, clean_mag)`` batches from a :class:`FrameBank`;
    ``bank`` is the current epoch's bank (the first one also fits the feature normaliser).
    """

    def __init__(self, data: DenoiseData, context: int, batch_size: int, n_fft: int, hop_length: int, seed: int,
                 target: str = "magnitude"):
        self.data, self.context, self.batch_size = data, context, batch_size
        self.n_fft, self.hop_length, self.target = n_fft, hop_length, target
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.bank = FrameBank(data.sample_epoch(self.rng), context, n_fft, hop_length, seed, target)
        self._fresh = True

    def __len__(self) -> int:
        return math.ceil(len(self.bank) / self.batch_size)

    def __iter__(self):
        if not self._fresh:
            self.bank = FrameBank(self.data.sample_epoch(self.rng), self.context, self.n_fft, self.hop_length,
                                  int(self.rng.integers(2**31)), self.target)
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


def validation_scores(model: torch.nn.Module, data: DenoiseData, context: int, output: str, n_fft: int,
                      hop_length: int, device) -> dict:
    """Per-epoch validation (for ``fit``'s ``eval_fn``): mean SNR and SNR improvement in dB, no PESQ."""
    rows = [score(enhance(model, m.noisy, context, output, n_fft, hop_length, device=device), m.clean, m.noisy,
                  with_perceptual=False) for m in data.val]
    return {"val_snr_db": mean_defined(r["snr_db"] for r in rows) or float("nan"),
            "val_snr_improvement_db": mean_defined(r["snr_improvement_db"] for r in rows) or float("nan")}


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


# ============================================================================ evaluation and outputs
def _label(data: DenoiseData) -> str:
    return f"{data.dataset}{' (SYNTHETIC)' if data.synthetic else ''}"


def anchors_for(metrics: dict, data: DenoiseData) -> list[dict]:
    """Reference numbers shown beside ours in the report: the targets, the baselines and the oracle masks."""
    where = "" if data.dataset == "tsp" else " (set for tsp FA->MC; this run is on another dataset)"
    out = [{"metric": f"test_{k}_input_0db", "anchor": v, "source": f"target (issue 29): >= {v} at 0 dB input{where}"}
           for k, v in (("snr_improvement_db", 9.0), ("pesq", 1.9), ("stoi", 0.85))]
    for kind in ("irm", "psm"):
        for k in ("pesq", "stoi", "snr_improvement_db"):
            if metrics.get(f"oracle_{kind}_test_{k}_input_0db") is not None:
                out.append({"metric": f"test_{k}_input_0db", "anchor": metrics[f"oracle_{kind}_test_{k}_input_0db"],
                            "source": f"oracle {kind.upper()} (clean speech known, noisy phase) on the same signals"})
    for key, name in (("snr_db", "SNR"), ("pesq", "PESQ"), ("stoi", "STOI")):
        if metrics.get(f"baseline_gating_test_{key}") is not None:
            out.append({"metric": f"test_{key}", "anchor": metrics[f"baseline_gating_test_{key}"],
                        "source": f"noisereduce spectral gating on the same test signals ({name}; the target "
                                  "is to beat it in SNR and PESQ)"})
    return out


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
            save_audio(out_dir / f"{tag}_{short.get(name, method)}.wav", peak_safe(wav), SAMPLE_RATE)
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
    oracles = oracle_methods(n_fft, hop)
    t0 = time.perf_counter()
    rows = evaluate_set(data.train_eval, {"noisy": lambda x: x, method: model_fn}, perceptual=False, desc="train")
    # the validation signals (training speakers, training noise parts) with every score: settings are chosen here
    rows += evaluate_set(data.val, methods, oracles=oracles, desc="validation")
    rows += evaluate_set(data.test, methods, args.pesq_max, wav_dir=out_dir / "test_denoised", wav_method=method,
                         desc="test", oracles=oracles)
    rows += evaluate_set(data.heldout, methods, args.pesq_max, wav_dir=out_dir / "heldout_denoised",
                         wav_method=method, desc="held-out noise", oracles=oracles)
    evaluate_set(data.unlabeled, {method: model_fn, "spectral_gating": spectral_gating},
                 wav_dir=out_dir / "unlabeled_denoised", wav_method=method, desc="--test files")
    summary = summarize(rows)
    for name, table in (("results_per_signal.csv", rows), ("results_by_condition.csv", summary)):
        if table:
            write_csv(out_dir / name, table)
    label = _label(data)

    write_examples(model_fn, data, method, script, out_dir, n_fft, hop)
    quality_figure(summary, [method, "spectral_gating", "noisy"], out_dir / "snr_vs_input.png",
                   f"{script} on {label}: model vs spectral gating",
                   panels=(("snr_improvement_db", "SNR improvement (dB)"), QUALITY_PANELS[0]))
    quality_figure(summary, ["noisy", "spectral_gating", method, *ORACLES], out_dir / "quality_vs_input.png",
                   f"{script} on {label}: PESQ and STOI (n_fft={n_fft}, hop={hop}; oracles keep the noisy phase)")
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
                f"{_fmt(m.get('baseline_noisy_test_snr_db'), ' dB')}, PESQ {_fmt(m.get('baseline_noisy_test_pesq'))}"
                f" | oracle IRM / PSM: PESQ {_fmt(m.get('oracle_irm_test_pesq'))} / "
                f"{_fmt(m.get('oracle_psm_test_pesq'))}"
                f", STOI {_fmt(m.get('oracle_irm_test_stoi'))} / {_fmt(m.get('oracle_psm_test_stoi'))}")
    return (f"{script} {src}: training-pair SNR {_fmt(m.get('train_snr_db'), ' dB')} (noisy "
            f"{_fmt(m.get('baseline_noisy_train_snr_db'), ' dB')}); {len(data.unlabeled)} --test file(s) denoised "
            "(no reference: SNR undefined for them)")


# ============================================================================ the scripts' main
def run(args: argparse.Namespace, *, script: str, context: int,
        build_model: Callable[[int], FrameCNN]) -> dict:
    """The body of ``hw_cnn1d.main`` and ``hw_cnn2d.main``: data, model, training, evaluation, outputs.

    Args:
        args: from :func:`parse_args` (:func:`script_parser`, then ``--quick``).
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
                         hop_length=args.hop_length, seed=args.seed,
                         target="psa" if args.loss == "psa" else "magnitude")
    n_freq = args.n_fft // 2 + 1
    print(f"{script}: {data.description}; {len(stream.bank)} training frames per epoch, "
          f"{len(data.val)} validation / {len(data.test)} test / {len(data.heldout)} held-out-noise signals")

    # model, with the input normaliser fitted on the first epoch's noisy frames
    model = build_model(n_freq)
    model.log_input = args.features == "log"
    model.norm.fit(model.transform(stream.bank.features[stream.bank.ends]))  # real frames only, not the prefix
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
