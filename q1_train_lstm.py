"""Question 1 (c)-(d): separate the two sinusoids with an LSTM + linear model.

How the 10000-sample signal is presented to the LSTM
----------------------------------------------------
A sinusoid is stationary: everything that tells source1 from source2 is on the
frequency axis, not the time axis. So the mixture is turned into an STFT (n_fft 512,
hop 256, Hann; 512-sample frames with 50 % overlap at 32 kHz give 257 bins of 62.5 Hz) and the LSTM
runs *along frequency* inside each frame (a frequency-LSTM, as in Li, Mohamed, Zweig &
Gong, "LSTM time and frequency recurrence for ASR", ASRU 2015). At each bin it sees two
numbers: the bin's log magnitude (normalised per example) and the bin's frequency
relative to the boundary, (f - 8000 Hz) / 2000 Hz. A bidirectional LSTM (hidden 16 per
direction) reads the 257 bins of a frame, and a linear layer + sigmoid turns each
bin's state into a soft mask m for source1; source2 gets 1 - m. Both masks are applied
to the mixture's complex STFT and inverted (iSTFT), so the two estimates add up to the
mixture exactly (mixture consistency). The loss is the L1 distance between estimated
and true waveforms (both sources), as the question asks.

Why these choices: (1) the frequency input lets the rule learned on 90 examples
generalise to frequencies never seen in training; without it the model cannot tell
the lower tone from the upper one and stays near 0 dB SI-SNR. (2) A mask on the
mixture's STFT keeps the phase exact, so the reachable SI-SNR is limited by spectral
leakage across the guard band, not by the network re-creating 10000 samples. (3) The
per-frame sequences are short (257 steps) and batched over all frames, so training is
fast on a CPU (timings: experiments/q1.md). A time-domain LSTM over raw frames was
the alternative; it must re-learn a sharp low-pass filter sample by sample.

Scoring: SI-SNR (Le Roux et al. 2019, zero-mean) in dB per source on the 10 test
examples, their mean, and SI-SNRi = SI-SNR(estimate) - SI-SNR(mixture as estimate).

Outputs (outputs/q1_train_lstm/): metrics.json, log.csv + curves.png (per-epoch
train/test loss and SI-SNR), audio/NNN_source{1,2}_estimate.wav, figures
spectrograms/NNN.png (ground truth, reconstruction, error for both sources),
checkpoint.pt (resume an interrupted run with --resume).

Usage: python q1_generate.py && python q1_train_lstm.py [--epochs 10] [--resume]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from audiolab.core.cli import (add_stft_args, add_training_args, apply_quick, base_parser, int_range, main_guard,
                               positive_float, script_help)
from audiolab.core.dsp import amplitude_to_db, check_stft_fits, istft, stft
from audiolab.core.io import AudioReadError, is_silent, load_audio, save_audio
from audiolab.core.metrics import si_snr
from audiolab.core.plotting import plot_spectrogram_db, plot_training_curves, save_figure
from audiolab.core.outputs import out_dir_for, write_metrics
from audiolab.core.runtime import UserError, seed_everything, select_device
from audiolab.core.train import fit
from audiolab.data.common import Q1_INFO_COLUMNS, read_table

SOURCES = ("source1", "source2")


# ----------------------------------------------------------------------------- settings
def build_parser():
    p = script_help(base_parser(__doc__, epochs=10))
    p.add_argument("--data-dir", type=Path, default=Path("data/q1"),
                   help="folder written by q1_generate.py (default %(default)s)")
    add_stft_args(p, n_fft=512, hop_length=256,
                  hop_help="STFT hop in samples; 50 %% overlap halves the LSTM's work against 75 %% at the same SI-SNR")
    p.add_argument("--hidden", type=int_range(1, 4096), default=16,
                   help="LSTM units per direction (default %(default)s)")
    add_training_args(p, lr=1e-2, batch_size=9, resume_help="continue from outputs/.../checkpoint.pt")
    p.add_argument("--boundary-hz", type=positive_float, default=8000.0,
                   help="frequency the model's position input is centred on (default %(default)s)")
    return p


QUICK = {"epochs": 2}  # --quick (a smoke test): 2 epochs, unless --epochs is given


# --------------------------------------------------------------------------------- data
def load_split(data_dir: Path, split: str) -> tuple[torch.Tensor, pd.DataFrame, int]:
    """Read one split written by q1_generate.py.

    Returns:
        ``(signals, info, sample_rate)``: ``signals`` is ``[n, 3, T]`` float32 (source1, source2,
        mixture), ``info`` the split's rows of info.csv.

    Raises:
        UserError: the dataset is missing (run q1_generate.py first), info.csv is malformed
            (:func:`audiolab.data.common.read_table`: line and column named), or a file is unreadable
            (truncated, NaN/inf samples) or silent, or its sample rate or length differs from the
            split's first file; the message names the file and the reason.
    """
    info_path = data_dir / "info.csv"
    if not info_path.exists():
        raise UserError(f"{info_path} not found: run `python q1_generate.py` first "
                        f"(or point --data-dir at its output folder)")
    info = read_table(info_path, Q1_INFO_COLUMNS, unique="id", fix="re-run q1_generate.py")  # every cell checked
    rows = info[info["split"] == split].reset_index(drop=True)
    if rows.empty:
        raise UserError(f"{info_path} has no '{split}' examples; re-run q1_generate.py")
    sample_rate = int(rows["sample_rate"].iloc[0])
    signals = []
    length, first = None, None
    for _, row in rows.iterrows():
        example = []
        for name in (*SOURCES, "mixture"):
            path = data_dir / row[f"{name}_path"]
            try:
                wav, sr = load_audio(path)
            except AudioReadError as err:
                raise UserError(f"{err}; re-run q1_generate.py") from None
            if is_silent(wav):
                raise UserError(f"{path} is silent (all zeros): SI-SNR against it is undefined; "
                                f"re-run q1_generate.py")
            if sr != sample_rate:
                raise UserError(f"{path} is at {sr} Hz but {info_path} says {sample_rate} Hz; all examples "
                                f"must share one rate: re-run q1_generate.py")
            if length is None:
                length, first = len(wav), path
            elif len(wav) != length:
                raise UserError(f"{path} has {len(wav)} samples but {first} has {length} (truncated or from "
                                f"another run?); all examples must have one length: re-run q1_generate.py")
            example.append(wav)
        signals.append(example)
    return torch.tensor(np.array(signals), dtype=torch.float32), rows, sample_rate


def load_data(args) -> tuple[torch.Tensor, torch.Tensor, pd.DataFrame, int]:
    """Both splits, checked against each other and the STFT settings: ``(train, test, test_info, sample_rate)``.

    Raises:
        UserError: as :func:`load_split`, or the splits differ in rate or length, or the STFT or
            ``--boundary-hz`` does not fit the signals.
    """
    train, _, sample_rate = load_split(args.data_dir, "train")
    test, test_info, test_rate = load_split(args.data_dir, "test")
    if test_rate != sample_rate:
        raise UserError(f"train and test sample rates differ ({sample_rate} vs {test_rate} Hz); re-run q1_generate.py")
    if test.shape[-1] != train.shape[-1]:
        raise UserError(f"train and test examples differ in length ({train.shape[-1]} vs {test.shape[-1]} samples); "
                        f"re-run q1_generate.py")
    check_stft_fits(train.shape[-1], args.n_fft, args.hop_length, what=f"the examples in {args.data_dir}")
    if args.boundary_hz >= sample_rate / 2:
        raise UserError(f"--boundary-hz {args.boundary_hz:g} is not below Nyquist ({sample_rate / 2:g} Hz)")
    print(f"data: {len(train)} train / {len(test)} test examples, T={train.shape[-1]} samples at {sample_rate} Hz")
    return train, test, test_info, sample_rate


# -------------------------------------------------------------------------------- model
class FrequencyLSTMSeparator(nn.Module):
    """BiLSTM along the frequency axis of each STFT frame + linear mask head (see module docstring).

    Args:
        sample_rate: in Hz (for the frequency input).
        n_fft, hop_length: STFT settings in samples.
        hidden: LSTM units per direction.
        boundary_hz: the frequency input is ``(f - boundary_hz) / 2000``.

    Shapes: ``forward(mixture [B, T]) -> [B, 2, T]`` (source1, source2), with
    ``output.sum(1) == mixture`` up to iSTFT round-off.
    """

    def __init__(self, sample_rate: int, n_fft: int = 512, hop_length: int = 256, hidden: int = 16,
                 boundary_hz: float = 8000.0):
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        freqs = torch.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
        self.register_buffer("freq_input", ((freqs - boundary_hz) / 2000.0).view(1, -1, 1), persistent=False)
        self.lstm = nn.LSTM(input_size=2, hidden_size=hidden, batch_first=True, bidirectional=True)
        self.mask = nn.Linear(2 * hidden, 1)

    def masks(self, spec: torch.Tensor) -> torch.Tensor:
        """Soft mask for source1, ``[B, F, frames]`` in (0, 1), from a complex STFT ``[B, F, frames]``."""
        b, f, t = spec.shape
        log_mag = torch.log(spec.abs() + 1e-6)
        log_mag = (log_mag - log_mag.mean(dim=(1, 2), keepdim=True)) / 5.0
        x = log_mag.permute(0, 2, 1).reshape(b * t, f, 1)              # one sequence per frame, along frequency
        x = torch.cat([x, self.freq_input.expand(b * t, f, 1)], dim=-1)  # [B*frames, F, 2]
        h, _ = self.lstm(x)                                              # [B*frames, F, 2*hidden]
        return torch.sigmoid(self.mask(h)).reshape(b, t, f).permute(0, 2, 1)

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        spec = stft(mixture, self.n_fft, self.hop_length)
        s1 = istft(spec * self.masks(spec), self.n_fft, self.hop_length, length=mixture.shape[-1])
        return torch.stack([s1, mixture - s1], dim=1)


# ----------------------------------------------------------------------------- training
def train_model(model: nn.Module, train: torch.Tensor, test: torch.Tensor, args, out: Path, device):
    """Adam on the L1 waveform loss, evaluated on both splits every epoch: ``(history, train_seconds)``.

    Checkpoints to ``out/checkpoint.pt`` (``--resume`` continues from it) and logs ``out/log.csv``.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loader = DataLoader(TensorDataset(train), batch_size=args.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(args.seed))

    def step(model, batch):
        (signals,) = batch
        est = model(signals[:, 2])
        return (est - signals[:, :2]).abs().mean()  # L1 on both sources' waveforms

    def eval_fn(model):
        tr, te = evaluate(model, train, device), evaluate(model, test, device)
        return {"train_eval_loss": tr["loss"], "test_loss": te["loss"], "train_si_snr_db": tr["si_snr_db"],
                "test_si_snr_db": te["si_snr_db"]}

    history = fit(model, optimizer, loader, step, args.epochs, eval_fn=eval_fn, device=device,
                  checkpoint_path=out / "checkpoint.pt", log_path=out / "log.csv", resume=args.resume,
                  config=vars(args), desc="q1 lstm")
    train_seconds = sum(row["epoch_seconds"] for row in history)  # all epochs, incl. per-epoch evaluation
    return history, train_seconds


# --------------------------------------------------------------------------- evaluation
@torch.no_grad()
def separate(model: nn.Module, mixtures: torch.Tensor, device, batch_size: int = 10) -> torch.Tensor:
    """Run the model on ``[n, T]`` mixtures in batches; return ``[n, 2, T]`` on the CPU."""
    model.eval()
    return torch.cat([model(mixtures[i:i + batch_size].to(device)).cpu()
                      for i in range(0, len(mixtures), batch_size)])


def evaluate(model: nn.Module, signals: torch.Tensor, device) -> dict:
    """L1 loss and SI-SNR in dB (per source, mean) of the model on ``signals`` ``[n, 3, T]``."""
    est = separate(model, signals[:, 2], device)
    ref = signals[:, :2]
    scores = si_snr(est.double(), ref.double())  # [n, 2]
    return {"loss": float((est - ref).abs().mean()), "si_snr_db": float(scores.mean()),
            "si_snr_db_source1": float(scores[:, 0].mean()), "si_snr_db_source2": float(scores[:, 1].mean())}


# ------------------------------------------------------------------------------ outputs
def comparison_figure(est: np.ndarray, ref: np.ndarray, sample_rate: int, title: str, path: Path,
                      n_fft: int = 512, hop_length: int = 128, boundary_hz: float = 8000.0) -> Path:
    """Ground truth | reconstruction | error spectrograms (dBFS) for both sources, ``est``/``ref`` ``[2, T]``."""
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5))
    specs = [[amplitude_to_db(stft(torch.tensor(x), n_fft, hop_length).abs(), top_db=None, ref=n_fft / 4)
              for x in (ref[k], est[k], est[k] - ref[k])] for k in range(2)]
    vmax = max(float(s.max()) for row in specs for s in row)
    vmin = vmax - 100.0
    for k, row in enumerate(specs):
        for j, (spec, label) in enumerate(zip(row, ("ground truth", "reconstructed", "error (est - true)"))):
            plot_spectrogram_db(axes[k, j], np.maximum(spec, vmin), sample_rate, hop_length, n_fft,
                                title=f"{SOURCES[k]}: {label}", vmin=vmin, vmax=vmax, hlines_hz=[boundary_hz],
                                cbar_label="dBFS")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def write_test_examples(out: Path, est: torch.Tensor, test: torch.Tensor, test_info: pd.DataFrame,
                        scores: torch.Tensor, mixture_scores: torch.Tensor, sample_rate: int, boundary_hz: float):
    """Per test example: a row of ``test_examples.csv``, the two estimates as WAVs and a spectrogram figure."""
    per_example = pd.DataFrame({"id": test_info["id"], "f1_hz": test_info["f1_hz"], "f2_hz": test_info["f2_hz"],
                                "si_snr_db_source1": scores[:, 0].numpy(), "si_snr_db_source2": scores[:, 1].numpy(),
                                "si_snri_db_source1": (scores - mixture_scores)[:, 0].numpy(),
                                "si_snri_db_source2": (scores - mixture_scores)[:, 1].numpy()})
    per_example.to_csv(out / "test_examples.csv", index=False, float_format="%.3f")
    for i, row in test_info.iterrows():
        for k, name in enumerate(SOURCES):
            save_audio(out / "audio" / f"{row['id']:03d}_{name}_estimate.wav", est[i, k].numpy(), sample_rate)
        comparison_figure(est[i].numpy(), test[i, :2].numpy(), sample_rate,
                          f"Test example {row['id']:03d} (f1 {row['f1_hz']:.0f} Hz, f2 {row['f2_hz']:.0f} Hz): "
                          f"SI-SNR {scores[i, 0]:.1f} / {scores[i, 1]:.1f} dB [synthetic]",
                          out / "spectrograms" / f"{row['id']:03d}.png", boundary_hz=boundary_hz)


# --------------------------------------------------------------------------------- main
def main(argv=None):
    argv = None if argv is None else [str(a) for a in argv]
    args = apply_quick(build_parser().parse_args(argv), QUICK, argv)
    seed_everything(args.seed)
    device = select_device(args.device)
    out = out_dir_for(args, "q1_train_lstm")

    # ---- data, model, training
    train, test, test_info, sample_rate = load_data(args)
    model = FrequencyLSTMSeparator(sample_rate, args.n_fft, args.hop_length, args.hidden, args.boundary_hz)
    n_params = sum(p.numel() for p in model.parameters())
    history, train_seconds = train_model(model, train, test, args, out, device)
    plot_training_curves(history, out / "curves.png", {
        "L1 loss": ["train_loss", "test_loss"], "SI-SNR (dB)": ["train_si_snr_db", "test_si_snr_db"]},
        title="Q1 frequency-LSTM separator (synthetic sinusoids)")

    # ---- final evaluation on the 10 test examples
    est = separate(model, test[:, 2], device)
    ref, mix = test[:, :2].double(), test[:, 2:3].expand(-1, 2, -1).double()
    scores = si_snr(est.double(), ref)               # [n, 2]
    mixture_scores = si_snr(mix, ref)                # the mixture as the estimate of each source

    # ---- outputs
    write_test_examples(out, est, test, test_info, scores, mixture_scores, sample_rate, args.boundary_hz)
    metrics = {
        "test_si_snr_db": float(scores.mean()),
        "test_si_snr_db_source1": float(scores[:, 0].mean()),
        "test_si_snr_db_source2": float(scores[:, 1].mean()),
        "test_si_snr_db_min": float(scores.min()),
        "test_si_snri_db": float((scores - mixture_scores).mean()),
        "test_mixture_si_snr_db": float(mixture_scores.mean()),
        "test_l1": float((est - test[:, :2]).abs().mean()),
        "train_si_snr_db": history[-1]["train_si_snr_db"] if history else None,
        "train_seconds": train_seconds,
        "epochs": args.epochs,
        "n_params": n_params,
        "n_train": len(train),
        "n_test": len(test),
        "sample_rate_hz": sample_rate,
    }
    write_metrics(out, metrics, args=args, dataset="q1_sinusoids", data_source="synthetic", device=device,
                  anchors=[{"metric": "test_si_snr_db", "anchor": 35.0, "source": "target: >= 35 dB"},
                           {"metric": "train_seconds", "anchor": 60.0, "source": "target: <= 60 s on 2 CPU cores"}])
    print(f"q1_train_lstm: test SI-SNR {metrics['test_si_snr_db']:.2f} dB (source1 "
          f"{metrics['test_si_snr_db_source1']:.2f}, source2 {metrics['test_si_snr_db_source2']:.2f}), "
          f"SI-SNRi {metrics['test_si_snri_db']:.2f} dB, {args.epochs} epochs in {train_seconds:.1f} s -> {out}/")


if __name__ == "__main__":
    sys.exit(main_guard(main))
