"""Keyword classification with recurrent networks: RNN, LSTM/BiLSTM, GRU, CNN-LSTM, attention LSTM.

What: classify one-second clips into keywords (Speech Commands' ten words, FSDD's ten
digits or the embedded eSpeak NG keyword set) with six models that share one feature
front end and one training loop, and compare them.

How (top to bottom in this file): settings; data, one call into the library
(``audiolab.data.keywords.load_keywords``: one registry entry per dataset; Speech Commands, its
canonical test-set folder split 80/10/10 by speaker, FSDD with a whole speaker held out, or the
synthetic eSpeak NG keywords, labelled SYNTHETIC everywhere); the front end
(``audiolab.data.features``: log-mel or MFCC computed on the batch, a dB floor, per-utterance mean
normalisation, train-split standardisation; choices made for speaker-independent FSDD,
experiments/keywords.md); augmentation of training clips (time shift, speed, noise:
``augment.waveform``; time stretch and masks: ``augment.spectrogram``; then mixup, Zhang et al.
2018); the six models (:func:`build_model`: ``rnn``, ``lstm``, ``bilstm``, ``gru``, ``cnn_lstm`` =
2-D conv front end + BiLSTM, ``attn_lstm`` after de Andrade et al. 2018); training with
``audiolab.core.train.fit`` (label-smoothed cross-entropy, AdamW, cosine schedule, the best
checkpoint by validation accuracy, :func:`tested_checkpoint`); evaluation (accuracy, macro-F1,
per-class report, confusion matrices, most-confused pairs, misclassified clips as WAV, a
comparison table); ``--experiment features|hparams|augment``, one-factor grids around the
defaults. ``explore`` draws the data figures (waveforms per class, durations, class counts,
speakers and duplicate clips per split); ``--test-set DIR`` also scores a canonical test-set folder.

Usage::

    python speechcommands_rnn.py                      # explore + train all models (default data)
    python speechcommands_rnn.py explore              # data exploration figures only
    python speechcommands_rnn.py train --models lstm,cnn_lstm --dataset fsdd --data-root ../shared/data
    python speechcommands_rnn.py --experiment augment --experiment-model cnn_lstm --epochs 10
    python speechcommands_rnn.py --dataset speech_commands --download --unknown --silence
    python speechcommands_rnn.py train --data-root ../shared/data          # speech_commands_test_v0.02, 12 classes
    # train on the full release, score on the canonical test set (how published accuracies are made):
    python speechcommands_rnn.py train --dataset speech_commands --unknown --silence --test-set DIR

Sources: Warden 2018 (Speech Commands, arXiv:1804.03209); Park et al. 2019 (SpecAugment,
arXiv:1904.08779); Ko et al. 2015 (speed perturbation); de Andrade et al. 2018 (attention RNN for
speech commands, arXiv:1808.08929); Free Spoken Digit Dataset (Z. Jackson et al.).
"""

from __future__ import annotations

import argparse
import copy
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from sklearn.metrics import classification_report, confusion_matrix, f1_score

from audiolab.core import cli
from audiolab.data.features import Features, default_stft, spec_augment_for
from audiolab.core.io import save_audio
from audiolab.core.outputs import format_table, out_dir_for, write_csv, write_metrics
from audiolab.core.plotting import (plot_confusion_grid, plot_confusion_matrix, plot_grouped_bars,
                                     plot_training_curves)
from audiolab.core.runtime import UserError, seed_everything, select_device
from audiolab.core.train import fit, is_main_process, load_checkpoint, n_parameters
from audiolab.data import keywords as kd
from audiolab.data.keyword_explore import explore, feature_figure
from audiolab.data.common import SYNTHETIC_NOTE
import kws_models as km
from kws_models import CNNLSTM, AttentionPool  # noqa: F401  (the conv + recurrent models live in kws_models)

SCRIPT = "speechcommands_rnn"
MODELS = ["rnn", "lstm", "bilstm", "gru", "cnn_lstm", "attn_lstm"]
EXPERIMENTS = ["features", "hparams", "augment"]
FRAME_STACK = 6  # 10 ms frames per recurrent step (--frame-stack); chosen on FSDD (experiments/keywords.md)
HIDDEN, LAYERS = 64, 2  # --hidden / --layers defaults, shared by the parser and build_model
#: --quick: smoke-test sizes (a flag given on the command line wins); the data loader also takes a
#: small subset (fewer eSpeak voices, two FSDD recordings per digit and speaker) and a grid 3 points
QUICK = {"epochs": 2, "hidden": 32, "synthetic_clips": 1, "max_per_class": 20, "max_wavs": 3}
#: settings a resumed model must share with its checkpoint (others, e.g. --epochs or --models, may change);
#: train.fit compares them, and the clips' (split, label, path), on --resume
TRAINING_KEYS = ("features", "n_mels", "n_mfcc", "n_fft", "hop_length", "top_db", "cmvn", "trim_db", "clip_seconds",
                 "sample_rate", "hidden", "layers", "frame_stack", "dropout", "lr", "optimizer", "weight_decay",
                 "batch_size", "label_smoothing", "augment", "mixup", "seed", "res_blocks")


# =============================================================================== settings
def build_parser() -> argparse.ArgumentParser:
    """The command line: the shared flags, then one group each for data, features, augmentation, models."""
    p = cli.script_help(cli.base_parser(__doc__))
    cli.add_epochs(p, None, help=f"training epochs (default {kd.defaults_help('epochs')})")
    p.add_argument("command", nargs="?", default="all", choices=["all", "explore", "train"],
                   help="all = explore + train (default); explore = data figures only; train = models only")
    cli.add_data_args(p, list(kd.KEYWORD_DATASETS))
    for add_flags in (kd.add_keyword_args, add_feature_flags, add_augment_flags, add_model_flags):
        add_flags(p)
    return p


def add_feature_flags(p: argparse.ArgumentParser) -> None:
    """The front end: log-mel or MFCC, STFT sizes, dB floor, per-utterance normalisation."""
    g = p.add_argument_group("features")
    g.add_argument("--features", default="logmel", choices=["mfcc", "logmel"],
                   help="log-mel (MelSpectrogram + AmplitudeToDB) or MFCC "
                        "(default %(default)s; experiments/keywords.md)")
    g.add_argument("--n-mfcc", type=cli.positive_int, default=13, help="MFCC coefficients (default %(default)s)")
    g.add_argument("--n-mels", type=cli.positive_int, default=40, help="mel bands (default %(default)s)")
    cli.add_stft_args(g, n_fft=None, hop_length=None,
                      n_fft_help="FFT size in samples (default: 32 ms, a power of two: 256 at 8 kHz, 512 at 16 kHz)",
                      hop_help="hop in samples (default 10 ms: 80 at 8 kHz, 160 at 16 kHz)")
    g.add_argument("--top-db", type=cli.positive_float, default=40.0,
                   help="dB floor below each clip's loudest mel bin (default %(default)s)")
    g.add_argument("--cmvn", default="mean", choices=["meanvar", "mean", "none"],
                   help="per-utterance normalisation of each feature over time: mean and variance, mean only, "
                        "or none (default %(default)s)")


def add_augment_flags(p: argparse.ArgumentParser) -> None:
    """Training-time augmentation: waveform shifts, speed, noise, SpecAugment masks, mixup."""
    g = p.add_argument_group("augmentation (training clips only)")
    g.add_argument("--augment", default=None,
                   help="comma list of shift, speed, noise, stretch, freq_mask, time_mask, or 'none' "
                        f"(default {kd.defaults_help('augment')})")
    g.add_argument("--speed-perturb", type=cli.float_range(0, 0.5, hi_open=True), default=0.15,
                   help="speed perturbation: factors 1 +- this, in steps of 0.05 (default %(default)s)")
    g.add_argument("--snr-db", type=cli.float_range(-30, 100), nargs=2, default=(5.0, 25.0), metavar=("LOW", "HIGH"),
                   help="background-noise SNR range in dB (default %(default)s)")
    g.add_argument("--mixup", type=cli.float_range(0), default=None, metavar="ALPHA",
                   help="mixup of training features and labels, lambda ~ Beta(ALPHA, ALPHA) (Zhang et al. "
                        f"2018; 0 disables; default {kd.defaults_help('mixup')})")


def add_model_flags(p: argparse.ArgumentParser) -> None:
    """The six models, optimisation, checkpoint choice, outputs and the one-factor experiment grids."""
    g = p.add_argument_group("models and training")
    g.add_argument("--models", default=",".join(MODELS), help=f"comma list of {MODELS} (default all)")
    g.add_argument("--hidden", type=cli.positive_int, default=HIDDEN, help="RNN hidden size (default %(default)s)")
    g.add_argument("--layers", type=cli.positive_int, default=LAYERS, help="RNN layers (default %(default)s)")
    g.add_argument("--frame-stack", type=cli.positive_int, default=FRAME_STACK,
                   help="rnn/lstm/bilstm/gru/attn_lstm: consecutive 10 ms frames concatenated into one recurrent "
                        "step (default %(default)s: 60 ms steps; experiments/keywords.md)")
    g.add_argument("--dropout", type=cli.float_range(0, 1, hi_open=True), default=0.2,
                   help="dropout (default %(default)s)")
    g.add_argument("--res-blocks", type=cli.int_range(0), default=None,
                   help="cnn_lstm: residual 3x3 conv blocks after each of its two 2x2 poolings (kws_models.ResBlock, "
                        f"after Tang & Lin 2018's res8; default {kd.defaults_help('res_blocks')})")
    cli.add_training_args(g, lr=3e-3, batch_size=64, lr_help="peak learning rate (cosine schedule)",
                          batch_help="training clips per batch",
                          resume_help="continue each model from its last checkpoint")
    g.add_argument("--optimizer", default="adamw", choices=["adam", "adamw", "sgd"], help="default %(default)s")
    g.add_argument("--weight-decay", type=cli.float_range(0, 10), default=1e-2,
                   help="AdamW weight decay (default %(default)s)")
    g.add_argument("--label-smoothing", type=cli.float_range(0, 1, hi_open=True), default=0.1,
                   help="default %(default)s")
    g.add_argument("--test-checkpoint", default=None, choices=["best", "last"],
                   help="weights scored on the test split: best = the epoch with the best validation accuracy, "
                        "last = the final epoch (default: last for FSDD validated on the training speakers' own "
                        "recordings, whose accuracy saturates by mid-training and then no longer tells "
                        "epochs apart; best otherwise, e.g. with --val-speaker or Speech Commands' official lists)")
    g.add_argument("--max-wavs", type=cli.int_range(0), default=12,
                   help="misclassified test clips saved as WAV per model (default %(default)s)")
    g = p.add_argument_group("experiments")
    g.add_argument("--experiment", default=None, choices=EXPERIMENTS,
                   help="run a one-factor-at-a-time grid instead of training every model")
    g.add_argument("--experiment-model", default="cnn_lstm", choices=MODELS, help="default %(default)s")
    g.add_argument("--learning-curve", default=None, metavar="FRACTIONS",
                   help="instead of one training run: train every --models model on each fraction of the training "
                        "speakers, e.g. 0.25,0.5,1.0 (same validation and test speakers); writes "
                        "learning_curve.csv/.png")


def feature_bins(args: argparse.Namespace) -> int:
    """Values per frame the models see: ``--n-mfcc`` for MFCC features, else ``--n-mels``."""
    return args.n_mfcc if args.features == "mfcc" else args.n_mels


def parse_args(argv=None) -> argparse.Namespace:
    """Parse and check the flags; ``--quick`` sizes applied (:data:`QUICK`). The dataset-dependent
    defaults (``--epochs``, ``--mixup``, ``--augment``, ``--trim-db``, ``--res-blocks``) stay ``None`` until the
    data are loaded."""
    args = build_parser().parse_args(argv)
    args.model_list = cli.comma_list(args.models, "--models")
    bad = [m for m in args.model_list if m not in MODELS + km.PEERS]
    if bad or not args.model_list:
        raise UserError(f"--models: unknown {bad or 'empty list'}; choose from {MODELS + km.PEERS}")
    try:
        args.curve_fractions = km.parse_fractions(args.learning_curve) if args.learning_curve else None
    except ValueError as err:
        raise UserError(f"--learning-curve: {err}") from None
    args.word_list = cli.comma_list(args.words, "--words")
    if not args.word_list:
        raise UserError("--words is empty")
    if args.augment is not None:  # else filled in with the dataset's default by kd.apply_dataset_defaults
        args.augment_set = kd.parse_augment(args.augment)
    if args.snr_db[0] > args.snr_db[1]:
        raise UserError(f"--snr-db LOW HIGH: LOW {args.snr_db[0]} is above HIGH {args.snr_db[1]}")
    n_feat, need = feature_bins(args), CNNLSTM.min_features()
    if "cnn_lstm" in args.model_list and n_feat < need:
        raise UserError(f"cnn_lstm pools the feature axis down by {need} and needs at least {need} bins; got "
                        f"{n_feat} ({'--n-mfcc' if args.features == 'mfcc' else '--n-mels'})")
    return cli.apply_quick(args, QUICK, argv)


# =============================================================================== data
def check_frames(args: argparse.Namespace, sample_rate: int, n_samples: int) -> None:
    """Refuse an STFT window or hop that does not fit the clip window.

    Raises:
        UserError: ``--n-fft`` above the window's samples, or ``--hop-length`` leaving fewer frames
            than the models need (4 for cnn_lstm's two time poolings, ``--frame-stack`` for the RNNs).
    """
    n_fft, hop = default_stft(sample_rate, args.n_fft, args.hop_length)
    where = f"the {args.clip_seconds:g} s clip window (--clip-seconds) at {sample_rate} Hz = {n_samples} samples"
    if n_fft > n_samples:
        raise UserError(f"--n-fft {n_fft} is larger than {where}; use --n-fft <= {n_samples}")
    if hop > n_samples:
        raise UserError(f"--hop-length {hop} is larger than {where}; use --hop-length <= {n_samples}")
    n_frames = n_samples // hop + 1
    need = max(CNNLSTM.min_features() // 2, args.frame_stack)  # cnn_lstm: T/4 >= 1
    if n_frames < need:
        raise UserError(f"--hop-length {hop} leaves {n_frames} frames in {where}; the models need at least {need} "
                        f"(use --hop-length <= {max(1, (n_samples - 1) // (need - 1))})")
    if "m5" in args.model_list and args.clip_seconds * km.M5_SAMPLE_RATE < km.M5(1).min_samples:
        raise UserError(f"m5 needs --clip-seconds >= {km.M5(1).min_samples / km.M5_SAMPLE_RATE:.3f}")
    if args.max_clip_seconds < args.clip_seconds:
        raise UserError(f"--max-clip-seconds {args.max_clip_seconds:g} is below --clip-seconds {args.clip_seconds:g}")


@torch.no_grad()
def score_test_set(res: dict, test_set: kd.KwsData, data: kd.KwsData, n_samples: int, device) -> dict:
    """Accuracy and macro-F1 (over the classes the folder holds) of one trained model on ``--test-set``."""
    ds = kd.KwsDataset(test_set.clips, data.labels, data.sample_rate)
    loader = torch.utils.data.DataLoader(ds, batch_size=128, collate_fn=kd.PadCollate(n_samples))
    y, p, _, _ = predict(res["model"], loader, device)
    present = sorted(set(y.tolist()))
    name = res["name"]
    out = {f"test_set_accuracy_{name}": float((y == p).mean()),
           f"test_set_macro_f1_{name}": float(f1_score(y, p, average="macro", labels=present, zero_division=0))}
    print(f"{name}: --test-set accuracy {out[f'test_set_accuracy_{name}']:.4f}, macro-F1 "
          f"{out[f'test_set_macro_f1_{name}']:.4f} ({len(y)} clips)")
    return out


def tested_checkpoint(args: argparse.Namespace, data: kd.KwsData) -> str:
    """Which weights are tested, ``"best"`` (validation accuracy) or ``"last"`` (``--test-checkpoint``).

    The default is the dataset entry's: ``"last"`` only for FSDD validated on recordings 0-4 of the
    training speakers: that validation set holds the very voices the model trains on, its accuracy
    saturates by mid-training and the "best" epoch is then the first of several near-ties, taken
    while the learning rate is still high. On the held-out speakers the final weights scored higher
    (experiments/keywords.md).
    """
    if args.test_checkpoint is not None:
        return args.test_checkpoint
    return kd.dataset_entry(data.name).test_checkpoint(args)


# =============================================================================== models
class RecurrentClassifier(nn.Module):
    """``BatchNorm1d`` on the input features -> RNN/LSTM/GRU -> pooled state -> dropout -> linear.

    ``forward(feats [B, T, F]) -> logits [B, n_classes]``. ``frame_stack`` k concatenates k
    consecutive frames into one step (``[B, T // k, k F]``): k times fewer recurrent steps, the
    usual trick of low-frame-rate acoustic models (Pundak & Sainath 2016), which matters on a
    CPU where the time loop dominates. Fewer, richer steps also generalised better to unseen FSDD
    speakers (experiments/keywords.md).
    ``pool="last"``: the last layer's final hidden state (both directions concatenated when
    bidirectional); ``"attention"``: :class:`AttentionPool`.
    """

    def __init__(self, n_features: int, n_classes: int, cell: str = "lstm", hidden: int = 128, layers: int = 2,
                 bidirectional: bool = False, dropout: float = 0.2, pool: str = "last", frame_stack: int = 1):
        super().__init__()
        rnn_cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.input_norm = nn.BatchNorm1d(n_features)
        self.frame_stack = frame_stack
        self.rnn = rnn_cls(n_features * frame_stack, hidden, num_layers=layers, batch_first=True,
                           bidirectional=bidirectional, dropout=dropout if layers > 1 else 0.0)
        out_dim = hidden * (2 if bidirectional else 1)
        self.pool = AttentionPool(out_dim) if pool == "attention" else None
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(out_dim, n_classes))
        self.bidirectional = bidirectional

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(feats.transpose(1, 2)).transpose(1, 2)
        k = self.frame_stack
        if k > 1:
            n = x.shape[1] // k * k
            x = x[:, :n].reshape(x.shape[0], n // k, k * x.shape[2])
        out, h = self.rnn(x)
        if self.pool is not None:
            pooled, _ = self.pool(out)
        else:
            h = h[0] if isinstance(h, tuple) else h  # LSTM returns (h_n, c_n)
            pooled = torch.cat([h[-2], h[-1]], dim=1) if self.bidirectional else h[-1]
        return self.head(pooled)


def build_model(name: str, n_features: int, n_classes: int, hidden: int = HIDDEN, layers: int = LAYERS,
                dropout: float = 0.2, frame_stack: int = FRAME_STACK, res_blocks: int = 0) -> nn.Module:
    """One of ``MODELS`` as an ``nn.Module`` mapping features ``[B, T, F]`` to logits ``[B, n_classes]``, or
    ``m5`` (:class:`kws_models.M5`, waveform ``[B, 1, n]`` at 8 kHz to logits; ``n_features`` unused)."""
    if name == "m5":
        return km.M5(n_classes)
    if name == "cnn_lstm":
        return CNNLSTM(n_features, n_classes, hidden=hidden, layers=1, dropout=dropout, res_blocks=res_blocks)
    cell = {"rnn": "rnn", "lstm": "lstm", "bilstm": "lstm", "gru": "gru", "attn_lstm": "lstm"}[name]
    return RecurrentClassifier(n_features, n_classes, cell=cell, hidden=hidden, layers=layers,
                               bidirectional=name in {"bilstm", "attn_lstm"}, dropout=dropout,
                               pool="attention" if name == "attn_lstm" else "last", frame_stack=frame_stack)


def model_from_args(name: str, args: argparse.Namespace, n_features: int, n_classes: int) -> nn.Module:
    """:func:`build_model` with the size flags (``--hidden``, ``--layers``, ``--dropout``, ``--frame-stack``,
    ``--res-blocks``)."""
    return build_model(name, n_features, n_classes, hidden=args.hidden, layers=args.layers, dropout=args.dropout,
                       frame_stack=args.frame_stack, res_blocks=args.res_blocks or 0)


class KwsModel(nn.Module):
    """Features + classifier in one module, so checkpoints carry the normalisation statistics.

    ``forward(wav [B, n_samples]) -> logits [B, n_classes]``; spectrogram augmentation only in
    training mode.
    """

    def __init__(self, features: Features, net: nn.Module):
        super().__init__()
        self.features, self.net = features, net

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.net(self.features(wav, augment=self.training))


# =============================================================================== training
def clip_samples(args: argparse.Namespace, data: kd.KwsData) -> int:
    """Fixed clip length in samples that the ``collate_fn`` pads/crops to: ``--clip-seconds`` x sample rate (Hz)."""
    return int(round(args.clip_seconds * data.sample_rate))


def make_features(args: argparse.Namespace, data: kd.KwsData, n_samples: int) -> Features:
    """:class:`Features` from the flags (SpecAugment as ``--augment`` asks), statistics fitted on the training split."""
    sr = data.sample_rate
    n_fft, hop = default_stft(sr, args.n_fft, args.hop_length)
    spec_aug = spec_augment_for(args.augment_set, n_fft, hop, feature_bins(args), n_samples // hop + 1, seed=args.seed)
    feats = Features(args.features, sr, n_fft, hop, n_mels=args.n_mels, n_mfcc=args.n_mfcc, cmvn=args.cmvn,
                     top_db=args.top_db, spec_augment=spec_aug)
    feats.fit_stats(kd.plain_loader(data.split("train"), data.labels, sr, n_samples))
    return feats


def make_loaders(args: argparse.Namespace, data: kd.KwsData, n_samples: int, noises) -> dict:
    """DataLoaders per split (:func:`audiolab.data.keywords.make_loaders`) with the batch and augmentation flags."""
    return kd.make_loaders(data, n_samples, noises, batch_size=args.batch_size, augment=args.augment_set,
                           speed_perturb=args.speed_perturb, snr_db=args.snr_db, seed=args.seed)


@torch.no_grad()
def predict(model: nn.Module, loader, device) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``(y_true, y_pred, clip_indices, mean_loss)`` over a loader, in eval mode."""
    model.eval()
    ys, ps, idx, loss, n = [], [], [], 0.0, 0
    for wav, y, _, i in loader:
        logits = model(wav.to(device)).cpu()
        loss += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
        n += len(y)
        ys.append(y.numpy())
        ps.append(logits.argmax(1).numpy())
        idx.append(i.numpy())
    return np.concatenate(ys), np.concatenate(ps), np.concatenate(idx), loss / max(n, 1)


def make_optimizer(args: argparse.Namespace, model: nn.Module) -> torch.optim.Optimizer:
    if args.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=args.lr)
    if args.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)


def mixup_step(model: "KwsModel", wav: torch.Tensor, y: torch.Tensor, criterion, alpha: float):
    """mixup (Zhang et al., ICLR 2018) on the model's normalised, augmented features ``[B, T, F]``:
    ``x = lam x_i + (1 - lam) x_j`` with ``lam ~ Beta(alpha, alpha)`` and ``j`` a permutation of the
    batch; loss ``lam CE(y_i) + (1 - lam) CE(y_j)``. It blends clips of different speakers and words,
    which keeps the network from learning the few training voices by heart.
    Returns ``(logits [B, n_classes], loss)``."""
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(len(y), device=y.device)
    x = model.features(wav, augment=True)
    logits = model.net(lam * x + (1 - lam) * x[perm])
    return logits, lam * criterion(logits, y) + (1 - lam) * criterion(logits, y[perm])


def train_one(name: str, args: argparse.Namespace, data: kd.KwsData, features: Features, loaders: dict,
              device: torch.device, ckpt_dir: Path | None, progress: bool = True) -> dict:
    """Train model ``name`` with ``audiolab.core.train.fit``; evaluate the checkpoint :func:`tested_checkpoint`
    names (the best-validation one, or the final weights) on test.

    Returns a dict: ``model`` (trained, tested weights), ``history``, ``n_params``, ``train_seconds``,
    ``best_val_accuracy``, ``tested_epoch``, ``test_accuracy``, ``test_macro_f1``, ``y_true``, ``y_pred``,
    ``indices``.
    """
    seed_everything(args.seed)
    front = km.WaveFront(data.sample_rate) if name == "m5" else features  # M5 reads the 8 kHz waveform
    net = model_from_args(name, args, front.n_features, len(data.labels))
    model = KwsModel(copy.deepcopy(front), net).to(device)
    optimizer = make_optimizer(args, model)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs, eta_min=args.lr * 0.02)
    criterion = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)

    def step(m, batch):
        wav, y, _, _ = batch
        if args.mixup > 0:
            logits, loss = mixup_step(m, wav, y, criterion, args.mixup)
        else:
            logits = m(wav)
            loss = criterion(logits, y)
        return loss, {"train_accuracy": float((logits.argmax(1) == y).float().mean())}

    def evaluate(m):
        y, p, _, loss = predict(m, loaders["val"], device)
        return {"val_loss": loss, "val_accuracy": float((y == p).mean())}

    ckpt = ckpt_dir / f"{name}.pt" if ckpt_dir is not None else None
    resume = args.resume and ckpt is not None
    if resume and not ckpt.exists():
        print(f"--resume: no checkpoint for {name} ({ckpt}); training it from the start")
        resume = False
    config = {**{k: getattr(args, k) for k in TRAINING_KEYS}, "amp": args.amp}  # fit refuses a resume that differs
    clips = sorted((c.split, c.label, c.path) for c in data.clips)  # ... or whose data or split differ
    history = fit(model, optimizer, loaders["train"], step, args.epochs, eval_fn=evaluate, device=device,
                  checkpoint_path=ckpt, log_path=(ckpt_dir.parent / f"log_{name}.csv") if ckpt_dir else None,
                  resume=resume, scheduler=scheduler, grad_clip=5.0, best_key="val_accuracy",
                  config=config, data=clips, desc=name, progress=progress)
    train_seconds = sum(r.get("epoch_seconds", 0.0) for r in history)  # includes the per-epoch validation
    tested_epoch = history[-1]["epoch"]  # fit leaves the final weights in the model
    best_ckpt = ckpt.with_name(f"{name}_best.pt") if ckpt is not None else None
    if tested_checkpoint(args, data) == "best" and best_ckpt is not None and best_ckpt.exists():
        state = load_checkpoint(best_ckpt, map_location=device)
        model.load_state_dict(state["model"])
        tested_epoch = int(state["epoch"])
    y, p, idx, test_loss = predict(model, loaders["test"], device)
    return {"name": name, "model": model, "history": history, "n_params": n_parameters(model.net),
            "train_seconds": train_seconds, "best_val_accuracy": max(r["val_accuracy"] for r in history),
            "tested_epoch": tested_epoch,
            "test_accuracy": float((y == p).mean()), "test_loss": test_loss,
            "test_macro_f1": float(f1_score(y, p, average="macro", labels=range(len(data.labels)), zero_division=0)),
            "y_true": y, "y_pred": p, "indices": idx}


def train_any(name: str, args: argparse.Namespace, data: kd.KwsData, features: Features, loaders: dict, device,
              ckpt_dir: Path | None, n_samples: int, progress: bool = True) -> dict:
    """:func:`train_one`, or for ``mfcc_stats`` the scikit-learn peer (:func:`kws_models.train_mfcc_stats`)."""
    if name == "mfcc_stats":
        return km.train_mfcc_stats(data, n_samples)
    return train_one(name, args, data, features, loaders, device, ckpt_dir, progress=progress)


def run_learning_curve(args: argparse.Namespace, data: kd.KwsData, n_samples: int, noises, device, out: Path) -> dict:
    """``--learning-curve``: each ``--models`` model trained on each fraction of the training speakers
    (:func:`kws_models.subsample_train_speakers`; validation and test unchanged; the same epochs, so fewer
    steps on less data); writes ``learning_curve.csv`` and ``learning_curve.png`` (accuracy vs clips, log x)."""
    rows, metrics = [], {}
    for frac in args.curve_fractions:
        sub = km.subsample_train_speakers(data, frac, args.seed)
        train = sub.split("train")
        features = make_features(args, sub, n_samples)
        for name in args.model_list:
            loaders = make_loaders(args, sub, n_samples, noises)  # fresh per model: its shuffles as in a run of its own
            print(f"--- learning curve: {name} on {frac:g} of the training speakers ({len(train)} clips)")
            res = train_any(name, args, sub, features, loaders, device,
                            out / "learning_curve" / f"{frac:g}" / "checkpoints", n_samples, progress=False)
            rows.append({"model": name, "fraction": frac, "n_train_clips": len(train),
                         "n_train_speakers": len({c.speaker for c in train if not c.speaker.startswith("_silence_/")}),
                         "best_val_acc": round(res["best_val_accuracy"], 4), "test_acc": round(res["test_accuracy"], 4),
                         "test_macro_f1": round(res["test_macro_f1"], 4), "train_s": round(res["train_seconds"], 1)})
            metrics[f"learning_curve_test_accuracy_{name}_{frac:g}"] = res["test_accuracy"]
            metrics[f"learning_curve_best_val_accuracy_{name}_{frac:g}"] = res["best_val_accuracy"]
            metrics[f"learning_curve_n_train_clips_{frac:g}"] = len(train)
            write_csv(out / "learning_curve.csv", rows)  # after every model: an interrupted run keeps what it did
    km.plot_learning_curve(rows, out / "learning_curve.png", f"Learning curve, {kd.title_tag(data)}: fractions of "
                           "the training speakers; same validation / test speakers")
    print(format_table(rows))
    return metrics


# =============================================================================== evaluation outputs
def plot_accuracies(rows: list[dict], key: str, path: Path, title: str) -> Path:
    """Best-validation and test accuracy side by side for each row (a model or a grid setting)."""
    return plot_grouped_bars([r[key] for r in rows], {"best validation": [r["best_val_acc"] for r in rows],
                                                      "test": [r["test_acc"] for r in rows]},
                             path, ylabel="accuracy (fraction)", title=title, xlabel=key, ylim=(0, 1),
                             figsize=(max(6.0, 0.8 * len(rows) + 2), 4.2), fontsize=9)


def confused_pairs(cm: np.ndarray, labels, top: int = 5) -> list[tuple[str, str, int]]:
    """The ``top`` largest off-diagonal cells of a confusion matrix as ``(true, predicted, count)``."""
    off = cm.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None)[::-1][:top]
    return [(labels[i], labels[j], int(off[i, j])) for i, j in zip(*np.unravel_index(order, cm.shape)) if off[i, j]]


def write_model_outputs(res: dict, data: kd.KwsData, out: Path, max_wavs: int) -> dict:
    """Curves, confusion matrix, per-class report and misclassified WAVs of one trained model."""
    name, tag, labels = res["name"], kd.title_tag(data), data.labels
    plot_training_curves(res["history"], out / f"curves_{name}.png",
                         {"cross-entropy loss": ["train_loss", "val_loss"],
                          "accuracy (fraction)": ["train_accuracy", "val_accuracy"]},
                         title=f"{name}: training curves, {tag}")
    cm = confusion_matrix(res["y_true"], res["y_pred"], labels=range(len(labels)))
    res["confusion"] = cm
    plot_confusion_matrix(cm, labels, out / f"confusion_{name}.png",
                          title=f"{name}: test confusion, {tag} (acc {res['test_accuracy']:.3f})")
    report = classification_report(res["y_true"], res["y_pred"], labels=range(len(labels)), target_names=labels,
                                   digits=3, zero_division=0)
    (out / f"report_{name}.txt").write_text(f"{name} on {tag}, test split\n\n{report}")
    pairs = confused_pairs(cm, labels)
    res["pairs"] = pairs
    wav_dir = out / "misclassified" / name
    shutil.rmtree(wav_dir, ignore_errors=True)  # no stale clips from an earlier run
    test = data.split("test")
    saved = 0
    for t, p, i in zip(res["y_true"], res["y_pred"], res["indices"]):
        if t != p and saved < max_wavs:
            clip = test[int(i)]
            save_audio(wav_dir / f"{saved:02d}_true-{labels[t]}_pred-{labels[p]}_{clip.speaker}.wav",
                       clip.wav, data.sample_rate)
            saved += 1
    return res


def comparison_outputs(results: list[dict], data: kd.KwsData, out: Path) -> list[dict]:
    """Side-by-side confusion matrices, a bar chart and the comparison table (CSV + Markdown)."""
    tag = kd.title_tag(data)
    labels = data.labels
    plot_confusion_grid([r["confusion"] for r in results], [f"{r['name']} ({r['test_accuracy']:.3f})" for r in results],
                        labels, out / "confusion_all.png", f"Test confusion matrices (row-normalised), {tag}")
    rows = [{"model": r["name"], "params": r["n_params"], "train_s": round(r["train_seconds"], 1),
             "best_val_acc": round(r["best_val_accuracy"], 4), "tested_epoch": r["tested_epoch"],
             "test_acc": round(r["test_accuracy"], 4),
             "test_macro_f1": round(r["test_macro_f1"], 4),
             "most_confused": "; ".join(f"{a}->{b} ({c})" for a, b, c in r["pairs"][:3])} for r in results]
    write_csv(out / "comparison.csv", rows)
    cols = list(rows[0])
    md = [f"Models on {tag}, test split ({len(data.split('test'))} clips)", "",
          "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    (out / "comparison.md").write_text("\n".join(md) + "\n")
    plot_accuracies(rows, "model", out / "comparison.png", f"Model comparison, {tag}")
    return rows


# =============================================================================== experiments
def experiment_grid(name: str, args: argparse.Namespace, sample_rate: int) -> list[tuple[str, dict]]:
    """One-factor-at-a-time variations around the defaults: ``[(label, {flag: value})]`` (``sample_rate``
    in Hz sizes the doubled STFT window and hop)."""
    if name == "features":
        n_fft, hop = default_stft(sample_rate, args.n_fft, args.hop_length)
        return [(f"defaults ({args.features})", {}), ("mfcc n_mfcc=13", {"features": "mfcc", "n_mfcc": 13}),
                ("mfcc n_mfcc=20", {"features": "mfcc", "n_mfcc": 20}),
                ("mfcc n_mfcc=40", {"features": "mfcc", "n_mfcc": 40, "n_mels": 40}),
                ("logmel n_mels=40", {"features": "logmel", "n_mels": 40}),
                ("logmel n_mels=64", {"features": "logmel", "n_mels": 64}),
                ("n_fft x2", {"n_fft": 2 * n_fft}),
                ("hop_length x2", {"hop_length": 2 * hop}), ("CMVN (mean and variance)", {"cmvn": "meanvar"}),
                ("top_db 40", {"top_db": 40.0}),
                ("top_db 80", {"top_db": 80.0}),
                ("no CMVN", {"cmvn": "none"})]
    if name == "hparams":
        return [("default", {}), ("lr / 3", {"lr": args.lr / 3}), ("lr x 3", {"lr": args.lr * 3}),
                ("layers 1", {"layers": 1}), ("layers 3", {"layers": 3}), ("hidden 64", {"hidden": 64}),
                ("hidden 256", {"hidden": 256}), ("dropout 0", {"dropout": 0.0}), ("dropout 0.5", {"dropout": 0.5}),
                ("adam", {"optimizer": "adam"}), ("sgd lr 0.05", {"optimizer": "sgd", "lr": 0.05})]
    all_aug = sorted(kd.AUGMENTATIONS)
    mixup = args.mixup or kd.MIXUP_ALPHA  # mixup is on/off here like the others
    return ([("none", {"augment_set": [], "mixup": 0.0}), ("all", {"augment_set": all_aug, "mixup": mixup})]
            + [(f"only {a}", {"augment_set": [a], "mixup": 0.0}) for a in all_aug]
            + [("only mixup", {"augment_set": [], "mixup": mixup})]
            + [(f"all but {a}", {"augment_set": [b for b in all_aug if b != a], "mixup": mixup}) for a in all_aug]
            + [("all but mixup", {"augment_set": all_aug, "mixup": 0.0})])


def run_experiment(name: str, args: argparse.Namespace, data: kd.KwsData, n_samples: int, noises, device,
                   out: Path) -> dict:
    """Train ``--experiment-model`` for each grid point on clips padded/cropped to ``n_samples``;
    write ``experiment_<name>.csv`` and ``.png``."""
    rows = []
    grid = experiment_grid(name, args, data.sample_rate)
    if args.quick:
        grid = grid[:3]
    for label, change in grid:
        a = copy.copy(args)
        for k, v in change.items():
            setattr(a, k, v)
        print(f"--- experiment {name}: {label}")
        features = make_features(a, data, n_samples)
        loaders = make_loaders(a, data, n_samples, noises)
        res = train_one(args.experiment_model, a, data, features, loaders, device, None, progress=False)
        rows.append({"setting": label, "model": args.experiment_model, "params": res["n_params"],
                     "train_s": round(res["train_seconds"], 1), "best_val_acc": round(res["best_val_accuracy"], 4),
                     "tested_epoch": res["tested_epoch"],  # no checkpoints in a grid: always the final weights
                     "test_acc": round(res["test_accuracy"], 4), "test_macro_f1": round(res["test_macro_f1"], 4)})
    write_csv(out / f"experiment_{name}.csv", rows)
    plot_accuracies(rows, "setting", out / f"experiment_{name}.png",
                    f"Experiment '{name}' with {args.experiment_model}, {args.epochs} epochs: {kd.title_tag(data)}")
    print(format_table(rows))
    best = max(rows, key=lambda r: r["best_val_acc"])
    return {f"experiment_{name}_best_setting": best["setting"],
            f"experiment_{name}_best_val_accuracy": best["best_val_acc"],
            **{f"experiment_{name}_test_accuracy_{i}": r["test_acc"] for i, r in enumerate(rows)}}


# =============================================================================== main
def main(argv=None) -> None:
    args = parse_args(argv)
    seed_everything(args.seed)
    device = select_device(args.device)
    out = out_dir_for(args, SCRIPT)
    data = kd.load_keywords(args, small=args.quick)
    print(f"{data.name}: {kd.dataset_splits_summary(data)}; " + "; ".join(data.notes))
    metrics: dict = {"n_clips": len(data.clips), **{f"n_{s}_clips": len(data.split(s)) for s in kd.SPLITS},
                     "n_classes": len(data.labels),
                     "n_synthetic_train_clips": sum(c.path.startswith("synthetic:") for c in data.split("train"))}
    n_samples = clip_samples(args, data)
    check_frames(args, data.sample_rate, n_samples)  # bad flags and a bad --test-set fail before any work
    wants_test_set = args.test_set is not None and args.experiment is None and args.command != "explore"
    test_set = (kd.load_test_set(args.test_set, data, args.max_clip_seconds, args.trim_db, args.allow_overlap)
                if wants_test_set else None)
    if test_set is not None:
        metrics.update({"test_set_dir": str(args.test_set), "test_set_n_clips": len(test_set.clips),
                        "test_set_missing_classes": [lab for lab in data.labels
                                                     if lab not in {c.label for c in test_set.clips}]})
    if args.command in {"all", "explore"} and args.experiment is None:
        metrics.update(explore(data, out))
    noises = kd.noise_bank(data.sample_rate, args.seed, args.noise_dir, kd.resolve_data_root(args.data_root))
    headline = ""
    if args.curve_fractions is not None and args.experiment is None and args.command != "explore":
        metrics.update(run_learning_curve(args, data, n_samples, noises, device, out))
        headline = "learning curve: " + ", ".join(f"{k.removeprefix('learning_curve_test_accuracy_')}={v:.3f}"
                                                  for k, v in metrics.items() if k.startswith("learning_curve_test"))
    elif args.experiment is not None:
        metrics.update(run_experiment(args.experiment, args, data, n_samples, noises, device, out))
        headline = (f"experiment {args.experiment}: best {metrics[f'experiment_{args.experiment}_best_setting']} "
                    f"(val acc {metrics[f'experiment_{args.experiment}_best_val_accuracy']:.3f})")
    elif args.command in {"all", "train"}:
        features = make_features(args, data, n_samples)
        feature_figure(features, data, n_samples, out)
        loaders = make_loaders(args, data, n_samples, noises)
        metrics["tested_checkpoint"] = choice = tested_checkpoint(args, data)
        print(f"test split scored with each model's {'best-validation' if choice == 'best' else 'final'} weights "
              f"(--test-checkpoint {choice})")
        results = []
        for name in args.model_list:
            res = train_any(name, args, data, features, loaders, device, out / "checkpoints", n_samples)
            if not is_main_process():  # torchrun: the other ranks help train; rank 0 writes the outputs
                continue
            results.append(write_model_outputs(res, data, out, args.max_wavs))
            print(f"{name}: test accuracy {res['test_accuracy']:.4f}, macro-F1 {res['test_macro_f1']:.4f}, "
                  f"most confused: {', '.join(f'{a}->{b} ({c})' for a, b, c in res['pairs'][:3]) or 'none'}")
            if test_set is not None:
                metrics.update(score_test_set(res, test_set, data, n_samples, device))
            if "classifier" in res:
                metrics[f"classifier_{name}"] = res["classifier"]
            metrics.update({f"test_accuracy_{name}": res["test_accuracy"],
                            f"test_macro_f1_{name}": res["test_macro_f1"],
                            f"best_val_accuracy_{name}": res["best_val_accuracy"],
                            f"tested_epoch_{name}": res["tested_epoch"],
                            f"train_seconds_{name}": res["train_seconds"], f"n_params_{name}": res["n_params"],
                            f"most_confused_{name}": "; ".join(f"{a}->{b} ({c})" for a, b, c in res["pairs"])})
        if not is_main_process():
            return
        rows = comparison_outputs(results, data, out)
        print(format_table(rows))
        best = max(results, key=lambda r: r["test_accuracy"])
        metrics.update({"best_model": best["name"], "test_accuracy": best["test_accuracy"]})
        headline = " ".join(f"{r['name']}={r['test_accuracy']:.3f}" for r in results)
        headline = f"test accuracy: {headline}"
        if test_set is not None:
            headline += "; test set " + " ".join(f"{r['name']}={metrics['test_set_accuracy_' + r['name']]:.3f}"
                                                for r in results)
    else:
        headline = f"explored {metrics['n_clips']} clips, {metrics['n_classes']} classes"
    write_metrics(out, metrics, args=args, dataset=data.name, data_source=data.source, device=device,
                  anchors=list(kd.dataset_entry(data.name).anchors) or None)
    note = " [SYNTHETIC DATA]" if data.source == "synthetic" else ""
    if data.source == "synthetic":
        print(SYNTHETIC_NOTE)
    print(f"{SCRIPT} on {data.name}{note}: {headline} (outputs in {out})")


if __name__ == "__main__":
    sys.exit(cli.main_guard(main))
