"""Models of ``speechcommands_rnn.py`` beyond the plain recurrent ones, its same-data peers, its learning curve.

- :class:`CNNLSTM` (conv front end + BiLSTM + attention pooling), with optional residual blocks
  (``--res-blocks``; Tang & Lin 2018's res8 as the model of a small residual conv stack);
- :class:`M5`, the raw-waveform 1-D CNN of the torchaudio Speech Commands tutorial (Dai et al.
  2017, arXiv:1610.00087), fed 8 kHz audio by :class:`WaveFront` as in that tutorial;
- :class:`MfccStatsClassifier`, the classical peer: MFCC (+ deltas) statistics, then logistic
  regression or an RBF SVM (scikit-learn), the classifier and its ``C`` chosen on validation;
- :func:`subsample_train_speakers` and :func:`plot_learning_curve` for ``--learning-curve``.

M5 and the MFCC classifier are trained and scored on the very split the six recurrent models use,
so they say what 2,828-odd clips allow without recurrence (M5) or without deep learning at all.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torchaudio
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from audiolab.core.plotting import plt, save_figure
from audiolab.data.keywords import plain_loader

#: same-data peers: a network trained by the script's loop (m5) and a scikit-learn classifier (mfcc_stats)
PEERS = ["m5", "mfcc_stats"]
M5_SAMPLE_RATE = 8000  # the torchaudio tutorial resamples Speech Commands to 8 kHz before M5


# =============================================================================== CNN-LSTM
class AttentionPool(nn.Module):
    """Attention pooling over time: ``a_t = softmax_t(v^T tanh(W h_t))``, output ``sum_t a_t h_t``.

    ``[B, T, D]`` -> ``([B, D], weights [B, T])``. Raffel & Ellis 2015, arXiv:1512.08756.
    """

    def __init__(self, dim: int, attn_dim: int = 64):
        super().__init__()
        self.proj = nn.Linear(dim, attn_dim)
        self.score = nn.Linear(attn_dim, 1, bias=False)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = torch.softmax(self.score(torch.tanh(self.proj(h))).squeeze(-1), dim=1)
        return torch.bmm(weights.unsqueeze(1), h).squeeze(1), weights


class ResBlock(nn.Module):
    """``relu(x + BN(conv(relu(BN(conv(x))))))``, 3x3 convolutions, channels and size kept (He et al. 2016;
    the block of Tang & Lin 2018's res8, arXiv:1710.10361). ``[B, C, F, T]`` -> same."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                                  nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class CNNLSTM(nn.Module):
    """Conv front end on the spectrogram, then a BiLSTM over time, attention pooling, linear.

    ``[B, T, F]`` -> image ``[B, 1, F, T]`` -> 2 x (Conv2d 3x3 -> BatchNorm -> ReLU -> MaxPool 2x2,
    then ``res_blocks`` x :class:`ResBlock`) -> ``freq_blocks`` x (conv block with MaxPool over frequency
    only) -> ``[B, T/4, C' F']`` -> linear projection -> BiLSTM -> attention pool -> dropout -> linear.
    The first two poolings halve time twice, so the LSTM runs 4x fewer steps (and faster). The
    frequency-only blocks (channels doubling) make the features less sensitive to where in the spectrum a
    formant lies, which differs between speakers (one such block helped on FSDD leave-one-speaker-out,
    experiments/keywords.md). ``F' = F`` halved ``2 + freq_blocks`` times (floor). The residual blocks
    deepen the conv stack at the pooled resolutions, where they are cheap (``res_blocks=0``: the model
    of issue 18, parameter for parameter).

    Raises:
        ValueError: ``n_features`` too small for the poolings (``F' = 0``).
    """

    FREQ_BLOCKS = 1  # frequency-only conv blocks after the two 2x2 ones

    def __init__(self, n_features: int, n_classes: int, hidden: int = 128, layers: int = 1, channels: int = 32,
                 dropout: float = 0.2, freq_blocks: int = FREQ_BLOCKS, res_blocks: int = 0):
        super().__init__()

        def block(c_in, c_out, pool):
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                                 nn.ReLU(), nn.MaxPool2d(pool))

        blocks = [block(1, channels // 2, 2), *[ResBlock(channels // 2) for _ in range(res_blocks)],
                  block(channels // 2, channels, 2), *[ResBlock(channels) for _ in range(res_blocks)]]
        c_out, f_out = channels, n_features // 4
        for _ in range(freq_blocks):
            blocks.append(block(c_out, 2 * c_out, (2, 1)))
            c_out, f_out = 2 * c_out, f_out // 2
        if f_out < 1:
            raise ValueError(f"cnn_lstm needs at least {self.min_features(freq_blocks)} feature bins, got {n_features}")
        self.conv = nn.Sequential(*blocks, nn.Dropout(dropout / 2))
        self.proj = nn.Linear(c_out * f_out, hidden)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.pool = AttentionPool(2 * hidden)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, n_classes))

    @staticmethod
    def min_features(freq_blocks: int = FREQ_BLOCKS) -> int:
        """Fewest feature bins the poolings leave non-empty: ``2 ** (2 + freq_blocks)``."""
        return 2 ** (2 + freq_blocks)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = self.conv(feats.transpose(1, 2).unsqueeze(1))  # [B, C', F', T/4]
        x = x.flatten(1, 2).transpose(1, 2)  # [B, T/4, C' F']
        out, _ = self.lstm(torch.relu(self.proj(x)))
        pooled, _ = self.pool(out)
        return self.head(pooled)


# =============================================================================== M5 (raw waveform)
class WaveFront(nn.Module):
    """M5's front end in place of :class:`audiolab.data.features.Features`: waveform ``[B, n]`` at
    ``sample_rate`` Hz -> ``[B, 1, n']`` at ``target_rate`` Hz (``torchaudio.transforms.Resample``),
    nothing else (the tutorial feeds the raw resampled waveform). ``augment`` is accepted and ignored:
    M5 gets the waveform augmentations of the data loader only (no spectrogram to mask)."""

    n_features = 1

    def __init__(self, sample_rate: int, target_rate: int = M5_SAMPLE_RATE):
        super().__init__()
        self.resample = (torchaudio.transforms.Resample(sample_rate, target_rate) if sample_rate != target_rate
                         else nn.Identity())

    def forward(self, wav: torch.Tensor, augment: bool = False) -> torch.Tensor:
        return self.resample(wav).unsqueeze(1)


class M5(nn.Module):
    """M5 (Dai et al. 2017, arXiv:1610.00087) as in torchaudio's Speech Commands tutorial.

    ``[B, 1, n]`` waveform (8 kHz) -> Conv1d(k 80, stride 16) -> 3 x Conv1d(k 3), each with
    BatchNorm, ReLU and MaxPool(4); channels ``c, c, 2c, 2c`` -> mean over time -> linear -> logits
    ``[B, n_classes]`` (the tutorial's ``log_softmax`` is left to the cross-entropy loss).
    A 1 s clip at 8 kHz leaves 5 frames before the last pooling.

    Raises:
        ValueError: ``n_samples`` too short for the four poolings (checked in ``forward``).
    """

    def __init__(self, n_classes: int, n_channel: int = 32, stride: int = 16):
        super().__init__()

        def block(c_in, c_out, kernel, step=1):
            return [nn.Conv1d(c_in, c_out, kernel, stride=step), nn.BatchNorm1d(c_out), nn.ReLU(), nn.MaxPool1d(4)]

        c = n_channel
        self.body = nn.Sequential(*block(1, c, 80, stride), *block(c, c, 3), *block(c, 2 * c, 3),
                                  *block(2 * c, 2 * c, 3))
        self.fc = nn.Linear(2 * c, n_classes)
        # shortest input leaving one frame: each pooling needs 4 frames, each k-3 conv 2 more, conv1 80 samples
        self.min_samples = 80 + stride * (4 * (4 * (4 * 6 + 2) + 2) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < self.min_samples:
            raise ValueError(f"M5 needs at least {self.min_samples} samples (0.86 s at 8 kHz), got {x.shape[-1]}")
        return self.fc(self.body(x).mean(-1))


# =============================================================================== MFCC statistics + sklearn
def mfcc_stats(wav: torch.Tensor, sample_rate: int, n_mfcc: int = 20, segments: int = 3) -> np.ndarray:
    """Fixed-length MFCC statistics of each clip: ``[B, n]`` waveforms -> ``[B, D]`` float64.

    MFCC (torchaudio, 40 mel bands, 32 ms window, 10 ms hop, log-mel dB) and their deltas; per clip the
    mean and standard deviation over the frames with signal (all-zero padding frames left out), plus the
    MFCC means of ``segments`` equal parts of those frames (a coarse time order: "up" vs "off" differ in
    where energy moves, not only in its average). ``D = 2 * 2 * n_mfcc + segments * n_mfcc``.
    """
    n_fft = 2 ** int(round(np.log2(0.032 * sample_rate)))
    hop = int(round(0.010 * sample_rate))
    tf = torchaudio.transforms.MFCC(sample_rate, n_mfcc=n_mfcc,
                                    melkwargs=dict(n_fft=n_fft, hop_length=hop, n_mels=40, f_min=20.0))
    with torch.no_grad():
        m = tf(wav)                                               # [B, n_mfcc, T]
        d = torchaudio.functional.compute_deltas(m)
        frames = wav[:, : (wav.shape[1] // hop) * hop].reshape(wav.shape[0], -1, hop).abs().sum(-1) > 0
    out = []
    for i in range(wav.shape[0]):
        keep = np.flatnonzero(frames[i].numpy())
        idx = np.arange(keep[0], min(keep[-1] + 2, m.shape[-1])) if len(keep) else np.arange(m.shape[-1])
        mi, di = m[i][:, idx].numpy(), d[i][:, idx].numpy()
        parts = [p.mean(1) for p in np.array_split(mi, segments, axis=1)]
        out.append(np.concatenate([mi.mean(1), mi.std(1), di.mean(1), di.std(1), *parts]))
    return np.asarray(out, dtype=np.float64)


def loader_stats(loader, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`mfcc_stats` over an unaugmented loader of ``(wav, y, ...)`` batches: ``(X [N, D], y [N])``."""
    xs, ys = [], []
    for wav, y, *_ in loader:
        xs.append(mfcc_stats(wav, sample_rate))
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys)


#: the classifiers tried on validation: (name, scikit-learn estimator); StandardScaler in front of each
CLASSIFIERS = [(f"logreg C={c:g}", lambda c=c: LogisticRegression(C=c, max_iter=3000)) for c in (0.1, 1.0, 10.0)] + \
              [(f"rbf-svm C={c:g}", lambda c=c: SVC(C=c, gamma="scale")) for c in (1.0, 10.0, 100.0)]


def fit_mfcc_classifier(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray]) -> tuple:
    """Fit each of :data:`CLASSIFIERS` (standardised features) on ``train``; keep the best on ``val``.

    Returns ``(pipeline, name, rows)``: the chosen fitted pipeline, its name, and one row
    ``{"classifier", "train_accuracy", "val_accuracy"}`` per candidate (ties: the first listed wins).
    """
    best, rows = None, []
    for name, make in CLASSIFIERS:
        pipe = make_pipeline(StandardScaler(), make()).fit(*train)
        row = {"classifier": name, "train_accuracy": float(pipe.score(*train)), "val_accuracy": float(pipe.score(*val))}
        rows.append(row)
        if best is None or row["val_accuracy"] > best[2]["val_accuracy"]:
            best = (pipe, name, row)
    return best[0], best[1], rows


class MfccStatsClassifier(nn.Module):
    """A fitted scikit-learn pipeline on :func:`mfcc_stats` behind the networks' interface:
    ``forward(wav [B, n]) -> [B, n_classes]`` scores (one-hot of the prediction), so the script's
    ``predict`` and ``--test-set`` scoring treat it like any trained model. No trainable parameters."""

    def __init__(self, pipeline, sample_rate: int, n_classes: int):
        super().__init__()
        self.pipeline, self.sample_rate, self.n_classes = pipeline, sample_rate, n_classes
        self.net = nn.Identity()  # n_parameters(model.net) == 0

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        pred = self.pipeline.predict(mfcc_stats(wav.cpu(), self.sample_rate))
        return nn.functional.one_hot(torch.as_tensor(pred, dtype=torch.long), self.n_classes).float()

    def n_coefficients(self) -> int:
        """Fitted numbers of the classifier: weights + biases (logistic regression) or support vectors (SVM)."""
        clf = self.pipeline[-1]
        if hasattr(clf, "coef_"):
            return int(clf.coef_.size + clf.intercept_.size)
        return int(clf.support_vectors_.size + clf.dual_coef_.size)


def train_mfcc_stats(data, n_samples: int) -> dict:
    """The classical peer on ``data`` (a ``KwsData``): :func:`mfcc_stats` of every clip as the networks see
    it (trimmed at load, centred and padded / cropped to ``n_samples``, no augmentation), the classifier
    chosen on validation (:func:`fit_mfcc_classifier`), scored on test.

    Returns the script's result dict (``name``, ``model``: a :class:`MfccStatsClassifier`, a one-row
    ``history``, ``n_params``: fitted coefficients, ``train_seconds``, ``best_val_accuracy``,
    ``tested_epoch``, ``test_accuracy``, ``test_loss`` (NaN), ``test_macro_f1``, ``y_true``, ``y_pred``,
    ``indices``) plus ``classifier`` (the chosen one's name) and ``candidates`` (every candidate's accuracies).
    """
    t0 = time.perf_counter()
    sets = {s: loader_stats(plain_loader(data.split(s), data.labels, data.sample_rate, n_samples), data.sample_rate)
            for s in ("train", "val", "test")}
    pipe, chosen, rows = fit_mfcc_classifier(sets["train"], sets["val"])
    seconds = time.perf_counter() - t0
    best = next(r for r in rows if r["classifier"] == chosen)
    model = MfccStatsClassifier(pipe, data.sample_rate, len(data.labels))
    y, p = sets["test"][1], pipe.predict(sets["test"][0])
    print("mfcc_stats, classifiers on validation: "
          + "; ".join(f"{r['classifier']} {r['val_accuracy']:.4f}" for r in rows) + f" -> {chosen}")
    return {"name": "mfcc_stats", "model": model, "n_params": model.n_coefficients(), "train_seconds": seconds,
            "history": [{"epoch": 1, "train_accuracy": best["train_accuracy"], "val_accuracy": best["val_accuracy"]}],
            "best_val_accuracy": best["val_accuracy"], "tested_epoch": 1, "test_accuracy": float((y == p).mean()),
            "test_loss": float("nan"),
            "test_macro_f1": float(f1_score(y, p, average="macro", labels=range(len(data.labels)), zero_division=0)),
            "y_true": y, "y_pred": p, "indices": np.arange(len(y)), "classifier": chosen, "candidates": rows}


# =============================================================================== learning curve
def subsample_train_speakers(data, fraction: float, seed: int = 0):
    """A shallow copy of ``data`` (a ``KwsData``) whose training split keeps ``fraction`` of its speakers.

    Whole speakers, drawn in a seeded random order (``np.random.default_rng(seed)``), are kept until
    the count reaches ``round(fraction * n_speakers)`` (at least 1); clips without a speaker
    (``_silence_/...``, each its own group) are subsampled the same way among themselves. Validation
    and test clips are unchanged. ``fraction`` 1 returns the data as it is.

    Raises:
        ValueError: ``fraction`` outside (0, 1].
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return data
    rng = np.random.default_rng(seed)
    train = data.split("train")
    keep: set[str] = set()
    for silent in (False, True):
        groups = sorted({c.speaker for c in train if c.speaker.startswith("_silence_/") == silent})
        if groups:
            rng.shuffle(groups)
            keep.update(groups[:max(1, int(round(fraction * len(groups))))])
    out = copy.copy(data)
    out.clips = [c for c in data.clips if c.split != "train" or c.speaker in keep]
    return out


def parse_fractions(text: str) -> list[float]:
    """``"0.25,0.5,1"`` -> ``[0.25, 0.5, 1.0]`` (sorted, unique).

    Raises:
        ValueError: a value that is not a number in (0, 1], or an empty list.
    """
    values = sorted({float(v) for v in text.split(",") if v.strip()})
    if not values or not all(0 < v <= 1 for v in values):
        raise ValueError(f"fractions must be numbers in (0, 1], got {text!r}")
    return values


def plot_learning_curve(rows: Sequence[dict], path: Path, title: str) -> Path:
    """Test (solid) and best-validation (dashed) accuracy against training clips (log x), one colour per model.

    ``rows``: dicts with ``model``, ``n_train_clips``, ``test_acc``, ``best_val_acc``.
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, model in enumerate(dict.fromkeys(r["model"] for r in rows)):
        pts = sorted((r["n_train_clips"], r["test_acc"], r["best_val_acc"]) for r in rows if r["model"] == model)
        x = [p[0] for p in pts]
        ax.plot(x, [p[1] for p in pts], marker="o", color=f"C{i}", label=f"{model} (test)")
        ax.plot(x, [p[2] for p in pts], marker="x", ls="--", color=f"C{i}", alpha=0.6, label=f"{model} (val)")
    ax.set_xscale("log")
    ax.set_xlabel("training clips (log scale)")
    ax.set_ylabel("accuracy (fraction)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)
