"""Figures: spectrograms (Hz / seconds axes, dB colour bar), training curves, confusion matrices, image grids.

Everything renders with matplotlib's non-interactive ``Agg`` backend and is saved as
PNG with titled, labelled axes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from audiolab.core.dsp import frame_times_s, frequencies_hz, spectrogram_db  # noqa: E402
from audiolab.core.outputs import atomic_write
from audiolab.core.runtime import is_main_process


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Save ``fig`` as PNG (creating folders) and close it.

    Written through a temp file and a rename (``runtime.atomic_write``): a run killed while
    saving leaves the previous figure or none, never half a PNG. Under torchrun only rank 0 writes.
    """
    path = Path(path)
    try:
        if is_main_process():
            with atomic_write(path, suffix=".png") as tmp:
                fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def plot_spectrogram_db(ax, spec_db: np.ndarray, sample_rate: int, hop_length: int, n_fft: int,
                        title: str = "", vmin: float | None = None, vmax: float | None = None,
                        hlines_hz: Sequence[float] = (), cmap: str = "magma", colorbar: bool = True,
                        cbar_label: str = "magnitude (dB)"):
    """Draw a dB spectrogram ``[n_fft // 2 + 1, n_frames]`` on ``ax``.

    The x axis is time in seconds, the y axis frequency in Hz, with a dB colour bar;
    ``hlines_hz`` draws dashed horizontal lines (e.g. the 8 kHz boundary of Q1).
    Returns the image artist.
    """
    freqs = frequencies_hz(n_fft, sample_rate)
    times = frame_times_s(spec_db.shape[1], hop_length, sample_rate)
    t_end = times[-1] + hop_length / sample_rate if len(times) else 0.0
    img = ax.imshow(spec_db, origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax,
                    extent=[0.0, t_end, freqs[0], freqs[-1]])
    for hz in hlines_hz:
        ax.axhline(hz, color="cyan", linestyle="--", linewidth=1.0, label=f"{hz / 1000:g} kHz")
    if hlines_hz:
        ax.legend(loc="upper right", fontsize=7)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(img, ax=ax, label=cbar_label)
    return img


def spectrogram_figure(signals: Mapping[str, np.ndarray], sample_rate: int, path: str | Path,
                       n_fft: int = 512, hop_length: int | None = None, suptitle: str = "",
                       hlines_hz: Sequence[float] = (), top_db: float = 80.0, ncols: int | None = None) -> Path:
    """One PNG with the dB spectrogram of each named waveform, side by side.

    All panels share one scale in dBFS (a full-scale sinusoid peaks at 0 dB: the Hann
    window's coherent gain n_fft / 4 is the reference), so levels compare across panels.
    """
    hop_length = hop_length or n_fft // 4
    specs = {k: spectrogram_db(v, n_fft=n_fft, hop_length=hop_length, top_db=None, ref=n_fft / 4)
             for k, v in signals.items()}
    vmax = max(float(s.max()) for s in specs.values())
    vmin = vmax - top_db
    n = len(specs)
    ncols = ncols or n
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows), squeeze=False)
    for ax, (name, spec) in zip(axes.ravel(), specs.items()):
        plot_spectrogram_db(ax, np.maximum(spec, vmin), sample_rate, hop_length, n_fft, title=name,
                            vmin=vmin, vmax=vmax, hlines_hz=hlines_hz, cbar_label="dBFS")
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_training_curves(history: Sequence[Mapping[str, float]], path: str | Path,
                         groups: Mapping[str, Sequence[str]], title: str = "Training curves") -> Path:
    """Plot per-epoch metrics, one panel per group.

    Args:
        history: rows with an ``epoch`` key and metric keys (as logged by ``audiolab.core.train``).
        groups: panel y-label -> metric keys drawn in that panel, e.g.
            ``{"L1 loss": ["train_loss", "test_loss"], "SI-SNR (dB)": ["test_si_snr_db"]}``.
    """
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, len(groups), figsize=(5.0 * len(groups), 3.6), squeeze=False)
    for ax, (ylabel, keys) in zip(axes[0], groups.items()):
        for key in keys:
            values = [row.get(key) for row in history]
            if any(v is not None for v in values):
                ax.plot(epochs, [np.nan if v is None else v for v in values], marker="o", label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def image_grid_figure(columns: Mapping[str, Sequence], path: str | Path, title: str, n_rows: int = 8,
                      captions: Mapping[str, Sequence[str]] | None = None, vmin: float = 0.0,
                      vmax: float = 1.0) -> Path:
    """PNG grid of grey-scale images: one column per name, one row per example (the first ``n_rows``).

    Args:
        columns: column title -> images, each ``[H, W]`` or ``[1, H, W]`` (arrays or CPU tensors).
        captions: column title -> one caption per row, written under that column's images.
    """
    captions = captions or {}
    n = min(n_rows, *(len(imgs) for imgs in columns.values()))
    fig, axes = plt.subplots(n, len(columns), figsize=(1.45 * len(columns), 1.45 * n + 0.6), squeeze=False)
    for j, (name, imgs) in enumerate(columns.items()):
        for i in range(n):
            ax = axes[i, j]
            ax.imshow(np.asarray(imgs[i]).reshape(np.shape(imgs[i])[-2:]), cmap="gray", vmin=vmin, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=8)
            if name in captions:
                ax.set_xlabel(captions[name][i], fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_confusion_matrix(matrix: np.ndarray, labels: Sequence[str], path: str | Path,
                          title: str = "Confusion matrix", normalize: bool = True) -> Path:
    """Confusion matrix heat map (rows: true class, columns: predicted), counts annotated."""
    matrix = np.asarray(matrix, dtype=float)
    shown = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1) if normalize else matrix
    size = max(4.0, 0.55 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    img = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(img, ax=ax, label="fraction of true class" if normalize else "count")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            if matrix[i, j]:
                ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if shown[i, j] > 0.5 else "black")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_confusion_grid(matrices: Sequence[np.ndarray], titles: Sequence[str], labels: Sequence[str],
                        path: str | Path, title: str) -> Path:
    """Several confusion matrices side by side, each row-normalised (rows: true class, columns: predicted)."""
    n = len(matrices)
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 3.6), squeeze=False)
    for ax, cm, name in zip(axes[0], matrices, titles):
        cm = np.asarray(cm, dtype=float)
        ax.imshow(cm / np.maximum(cm.sum(1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
        ax.set_title(name, fontsize=9)
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
        ax.set_xlabel("predicted")
    axes[0, 0].set_ylabel("true")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_grouped_bars(names: Sequence[str], series: Mapping[str, Sequence[float]], path: str | Path, *, ylabel: str,
                      title: str, xlabel: str | None = None, hline: tuple[float, str] | None = None,
                      ylim: tuple[float, float] | None = None, figsize: tuple[float, float] = (9, 3.8),
                      fontsize: int = 7) -> Path:
    """One group of bars per name, one bar per series (a score per source for each run of a study,
    validation and test accuracy per model, ...).

    Args:
        series: legend label -> one value per name.
        hline: ``(y, label)`` of a dashed reference line (e.g. a target), or None.
        ylim: the y range, e.g. ``(0, 1)`` for accuracies; None lets matplotlib choose.
    """
    pos = np.arange(len(names))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=figsize)
    for k, (label, values) in enumerate(series.items()):
        ax.bar(pos + (k - (len(series) - 1) / 2) * width, values, width, label=label)
    if hline is not None:
        ax.axhline(hline[0], color="k", ls="--", lw=1, label=hline[1])
    long_names = max(map(len, names), default=0) > 8
    ax.set_xticks(pos, names, fontsize=fontsize, rotation=40 if long_names else 0,
                  ha="right" if long_names else "center")
    if ylim is not None:
        ax.set_ylim(*ylim)
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_alignment(log_probs_tc, path, labels, *, title: str, out_path, class_names=None,
                   frame_s: float | None = None, occupancy_tc=None):
    """Save a PNG of one example's ``log_probs`` (classes x frames) with its Viterbi path on top.

    Args:
        log_probs_tc: ``[T, C]`` log-probabilities of one example (valid frames only).
        path: ``[T]`` class of the best alignment per frame (from ``ctc_decode.viterbi_align``).
        labels: the target (list of ints), shown in the title.
        title: figure title (say "synthetic" where the data are).
        out_path: PNG path.
        class_names: optional names for the C classes (y tick labels).
        frame_s: frame hop in seconds (x axis in seconds), else frames.
        occupancy_tc: optional ``[T, C]`` CTC posterior occupancy ``gamma_t(k)`` (Graves 2006
            eq. 15), drawn in a second panel with the same path.
    """
    lp = log_probs_tc.detach().cpu().float().numpy()
    path = [int(p) for p in path]
    T, C = lp.shape
    scale = frame_s or 1.0
    panels = [("log_probs (nats)", lp, max(float(lp.min()), -20.0), 0.0, "viridis")]
    if occupancy_tc is not None:
        panels.append(("posterior occupancy gamma_t(k)", occupancy_tc.detach().cpu().float().numpy(), 0.0, 1.0,
                       "magma"))
    fig, axes = plt.subplots(len(panels), 1, figsize=(min(5 + 0.06 * T, 14), (0.15 * C + 2.2) * len(panels)),
                             squeeze=False)
    xs = [t * scale for t in range(T)]
    for ax, (label, data, vmin, vmax, cmap) in zip(axes[:, 0], panels):
        img = ax.imshow(data.T, origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax,
                        extent=[-0.5 * scale, (T - 0.5) * scale, -0.5, C - 0.5], interpolation="nearest")
        ax.step(xs, path, where="mid", color="red", linewidth=1.2, label="Viterbi path")
        ax.plot(xs, path, "r.", markersize=3)
        ax.set_xlabel("time (s)" if frame_s else "frame")
        ax.set_ylabel("class (0 = blank)")
        if class_names is not None and C <= 40:
            ax.set_yticks(range(C))
            ax.set_yticklabels(class_names, fontsize=7)
        else:
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="upper right", fontsize=7)
        fig.colorbar(img, ax=ax, label=label)
    axes[0, 0].set_title(f"{title}\ntarget {labels}", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out_path)
