"""Speech denoising with a 1-D CNN on single STFT magnitude frames (homework problem 1).

What: every STFT frame of the noisy signal (n_fft = 1024 -> 513 bins, Hann window, hop
512) is one example of shape [B, 1, 513]. A 1-D CNN slides along frequency (no zero
padding; strides and max-pooling shrink the maps), a Linear layer maps the flattened
features to 513 values, and every layer, the last included, has an activation: by
default a sigmoid mask in [0, 1] that multiplies the noisy magnitude (``--output mask``),
or a ReLU that outputs the clean log1p magnitude directly (``--output magnitude``). The
estimated magnitude is recombined with the noisy phase and inverted to samples.

How: training minimises the MSE between square-root-compressed magnitudes of estimate
and clean speech (``--loss magnitude``; ``--loss log1p`` uses log1p magnitudes, see
experiments/denoise.md), with Adam and a cosine learning-rate decay; the
checkpoint with the best validation SNR improvement (held-out training-speaker
utterances) is the one evaluated. The network sees log1p|Y| standardised per frequency
bin with statistics of the first epoch's training mixtures (stored in the checkpoint).
Training mixtures are drawn afresh every epoch, with speed perturbation (0.8-1.2x) of
the clean speech so that a model trained on one speaker generalises to others.

Data (shared with hw_cnn2d.py, see audiolab/denoise.py): ``--clean/--noisy`` training
pair plus ``--test`` noisy files as in the homework; or ``--clean-dir/--noise-dir``
folders mixed at SNRs (speaker- and noise-segment-disjoint test); or, with no flags, the
real TSP speech + noise recordings when found under the data root (``--dataset tsp``),
else synthetic eSpeak NG speech with white/pink/babble noise (labelled SYNTHETIC).

Evaluation: SNR as the homework defines it (10 log10 of clean energy over error energy,
time domain, dB), SI-SNR, PESQ wide-band and STOI, against the noisy input and
noisereduce spectral gating on the same signals.

Sources: Y. Wang, A. Narayanan, D. Wang, "On training targets for supervised speech
separation", IEEE/ACM TASLP 2014 (masks vs. direct magnitude targets); S. R. Park and
J. Lee, "A fully convolutional neural network for speech enhancement", Interspeech 2017
(convolutions along frequency on STFT magnitudes); T. Sainburg, "noisereduce" (baseline).

Example:
    python hw_cnn1d.py                                   # default data
    python hw_cnn1d.py --clean train_clean.wav --noisy train_dirty.wav --test test_01.wav
    python hw_cnn1d.py --dataset tsp --data-root ../shared/data --epochs 20
"""

from __future__ import annotations

import sys

import torch
from torch import nn

from audiolab.cli_text import script_help
from audiolab import denoise
from audiolab.runtime import (add_data_args, base_parser, int_range, main_guard, out_dir_for, seed_everything,
                              select_device)

SCRIPT = "hw_cnn1d"


# ----------------------------------------------------------------------------- settings
def parse_args(argv=None):
    parser = script_help(base_parser(__doc__, epochs=15))
    add_data_args(parser, ["tsp", "synthetic"])
    denoise.add_denoise_args(parser)
    parser.add_argument("--channels", type=int_range(1, 1024), nargs=3, default=(16, 32, 32),
                        help="channels of the three Conv1d layers (default 16 32 32)")
    args = parser.parse_args(argv)
    if args.quick:  # a smoke test: one short epoch
        args.epochs = min(args.epochs, 1)
        args.mixes_per_utterance = min(args.mixes_per_utterance, 2)
    return args


# ----------------------------------------------------------------------------- model
class CNN1d(nn.Module):
    """1-D CNN along frequency: ``[B, 1, F]`` log1p magnitudes -> ``[B, F]`` mask or log1p magnitude.

    Layers (F = 513): Conv1d(k=9, stride 2) -> ReLU -> MaxPool(2) [253 -> 126];
    Conv1d(k=5) -> ReLU -> MaxPool(2) [122 -> 61]; Conv1d(k=3) -> ReLU [59];
    flatten -> Linear(-> F) -> sigmoid (mask) or ReLU (magnitude). No zero padding
    anywhere, so the maps shrink as the homework asks.
    """

    def __init__(self, n_freq: int = 513, channels=(16, 32, 32), output: str = "mask"):
        super().__init__()
        c1, c2, c3 = channels
        self.norm = denoise.FeatureNorm(n_freq)
        self.features = nn.Sequential(
            nn.Conv1d(1, c1, kernel_size=9, stride=2), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(c1, c2, kernel_size=5), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(c2, c3, kernel_size=3), nn.ReLU(),
        )
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, 1, n_freq)).numel()
        self.head = nn.Linear(n_flat, n_freq)
        self.out_act = nn.Sigmoid() if output == "mask" else nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[B, 1, F]`` log1p magnitudes -> ``[B, F]``."""
        h = self.features(self.norm(x))
        return self.out_act(self.head(h.flatten(1)))


# ----------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    seed_everything(args.seed)
    device = select_device(args.device)
    out_dir = out_dir_for(args, SCRIPT)

    # data: one frame per example, [B, 1, 513]
    data = denoise.prepare_data(args)
    stream = denoise.TrainStream(data, context=1, batch_size=args.batch_size, n_fft=args.n_fft,
                                 hop_length=args.hop_length, seed=args.seed)
    n_freq = args.n_fft // 2 + 1
    print(f"{SCRIPT}: {data.description}; {len(stream.bank)} training frames per epoch, "
          f"{len(data.val)} validation / {len(data.test)} test / {len(data.heldout)} held-out-noise signals")

    # model, with the input normaliser fitted on the first epoch's noisy frames
    model = CNN1d(n_freq, args.channels, args.output)
    model.norm.fit(stream.bank.features[stream.bank.ends])  # real frames only, not the prefix
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{SCRIPT}: CNN1d with {n_params:,} parameters, output={args.output}, loss={args.loss}")

    # training: Adam + cosine schedule, best checkpoint by validation SNR improvement (shared with hw_cnn2d.py)
    history, train_seconds, train_cpu_seconds = denoise.train_denoiser(
        model, stream, data, args, context=1, out_dir=out_dir, device=device, script=SCRIPT)

    # evaluation and outputs (shared with hw_cnn2d.py)
    denoise.evaluate_and_write(model, data, args, script=SCRIPT, out_dir=out_dir, context=1, history=history,
                               train_seconds=train_seconds, device=device,
                               extra_metrics={"model_parameters": n_params, "epochs": len(history),
                                              "train_cpu_seconds": train_cpu_seconds})


if __name__ == "__main__":
    sys.exit(main_guard(main))
