"""Speech denoising with a 2-D CNN on 20 consecutive STFT magnitude frames (homework problem 2).

What: the noisy STFT (n_fft = 1024 -> 513 bins, Hann window, hop 512) is prefixed with
19 near-silent frames (tiny random magnitudes); each frame t then has an example of
shape [B, 1, 20, 513], frames t-19..t, from which the network predicts frame t alone,
so every frame gets an estimate and the model only looks at the past (causal). A 2-D
CNN with kernels larger than 1 on both axes (time x frequency; no zero padding, strides
and max-pooling shrink the maps), then the same head as hw_cnn1d.py: flatten, a Linear
layer to 513 values, and an activation on every layer, the last included: by
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

Data (shared with hw_cnn1d.py, see audiolab/denoise.py): ``--clean/--noisy`` training
pair plus ``--test`` noisy files as in the homework; or ``--clean-dir/--noise-dir``
folders mixed at SNRs (speaker- and noise-segment-disjoint test); or, with no flags, the
real TSP speech + noise recordings when found under the data root (``--dataset tsp``),
else synthetic eSpeak NG speech with white/pink/babble noise (labelled SYNTHETIC).

Evaluation: SNR as the homework defines it (10 log10 of clean energy over error energy,
time domain, dB), SI-SNR, PESQ wide-band and STOI, against the noisy input and
noisereduce spectral gating on the same signals.

Sources: S. R. Park and J. Lee, "A fully convolutional neural network for speech
enhancement", Interspeech 2017 (a window of past noisy STFT frames predicts the current
clean frame); K. Tan and D. Wang, "A convolutional recurrent neural network for
real-time speech enhancement", Interspeech 2018 (2-D convolutions over time-frequency);
Y. Wang, A. Narayanan, D. Wang, "On training targets for supervised speech separation",
IEEE/ACM TASLP 2014 (masks vs. direct magnitude targets); T. Sainburg, "noisereduce".

Example:
    python hw_cnn2d.py                                   # default data
    python hw_cnn2d.py --clean train_clean.wav --noisy train_dirty.wav --test test_01.wav
    python hw_cnn2d.py --dataset tsp --data-root ../shared/data --epochs 20
"""

from __future__ import annotations

import sys

import torch
from torch import nn

from audiolab.cli_text import script_help
from audiolab import denoise
from audiolab.runtime import (add_data_args, base_parser, int_range, main_guard, out_dir_for, seed_everything,
                              select_device)

SCRIPT = "hw_cnn2d"


# ----------------------------------------------------------------------------- settings
def parse_args(argv=None):
    parser = script_help(base_parser(__doc__, epochs=10))
    add_data_args(parser, ["tsp", "synthetic"])
    denoise.add_denoise_args(parser)
    parser.add_argument("--channels", type=int_range(1, 1024), nargs=3, default=(16, 32, 32),
                        help="channels of the three Conv2d layers (default 16 32 32)")
    args = parser.parse_args(argv)
    if args.quick:  # a smoke test: one short epoch
        args.epochs = min(args.epochs, 1)
        args.mixes_per_utterance = min(args.mixes_per_utterance, 2)
    return args


# ----------------------------------------------------------------------------- model
class TimeBlockConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose time stride equals its time kernel (non-overlapping blocks of frames).

    Same parameters and same output as ``nn.Conv2d`` (tests check it), computed as a
    Conv1d over each block with the block's frames as input channels, which is several
    times faster on CPU than PyTorch's Conv2d with a single input channel.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, T, F]`` -> ``[B, out_channels, T // kt, F']`` (T a multiple of the time kernel kt)."""
        kt, kf = self.kernel_size
        b, c, t, f = x.shape
        if self.stride[0] != kt or any(self.padding) or t % kt:
            return super().forward(x)
        n = t // kt
        blocks = x.reshape(b, c, n, kt, f).permute(0, 2, 1, 3, 4).reshape(b * n, c * kt, f)
        y = nn.functional.conv1d(blocks, self.weight.reshape(self.out_channels, c * kt, kf), self.bias,
                                 stride=self.stride[1])
        return y.reshape(b, n, self.out_channels, -1).permute(0, 2, 1, 3)


class CNN2d(nn.Module):
    """2-D CNN over (time, frequency): ``[B, 1, 20, F]`` log1p magnitudes -> ``[B, F]`` for the last frame.

    Layers (T = 20 frames, F = 513 bins), shapes as [channels, time, frequency]:
    Conv2d(5x9, stride (5, 2)) -> ReLU -> MaxPool(1x2)   [c1, 4, 253] -> [c1, 4, 126];
    Conv2d(2x5) -> ReLU -> MaxPool(1x2)                  [c2, 3, 122] -> [c2, 3, 61];
    Conv2d(3x3) -> ReLU                                  [c3, 1, 59];
    flatten -> Linear(-> F) -> sigmoid (mask) or ReLU (magnitude). No zero padding.
    Along frequency this is the 1-D model's stack (kernels 9, 5, 3, stride 2, pooling 2),
    so the 1-D model is a special case (time weights on the newest frame only); along
    time the first layer summarises 4 blocks of 5 frames and the next two merge them,
    so the newest frame (the one estimated) reaches the head through every layer (a
    stride-2 kernel of 3 over 20 frames, or a 2x2 pooling of an odd length, would
    silently drop it).
    """

    def __init__(self, n_freq: int = 513, context: int = 20, channels=(16, 32, 32), output: str = "mask"):
        super().__init__()
        if context % 5:
            raise ValueError(f"context must be a multiple of 5 frames, got {context}")
        c1, c2, c3 = channels
        self.norm = denoise.FeatureNorm(n_freq)
        blocks = context // 5
        self.features = nn.Sequential(
            TimeBlockConv2d(1, c1, kernel_size=(5, 9), stride=(5, 2)), nn.ReLU(), nn.MaxPool2d((1, 2)),
            nn.Conv2d(c1, c2, kernel_size=(2, 5)), nn.ReLU(), nn.MaxPool2d((1, 2)),
            nn.Conv2d(c2, c3, kernel_size=(blocks - 1, 3)), nn.ReLU(),
        )
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, 1, context, n_freq)).numel()
        self.head = nn.Linear(n_flat, n_freq)
        self.out_act = nn.Sigmoid() if output == "mask" else nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[B, 1, T, F]`` log1p magnitudes (T = 20, oldest frame first) -> ``[B, F]``."""
        h = self.features(self.norm(x))
        return self.out_act(self.head(h.flatten(1)))


# ----------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    seed_everything(args.seed)
    device = select_device(args.device)
    out_dir = out_dir_for(args, SCRIPT)

    # data: 20 frames per example, [B, 1, 20, 513]
    data = denoise.prepare_data(args)
    stream = denoise.TrainStream(data, context=denoise.CONTEXT_2D, batch_size=args.batch_size, n_fft=args.n_fft,
                                 hop_length=args.hop_length, seed=args.seed)
    n_freq = args.n_fft // 2 + 1
    print(f"{SCRIPT}: {data.description}; {len(stream.bank)} training frames per epoch, "
          f"{len(data.val)} validation / {len(data.test)} test / {len(data.heldout)} held-out-noise signals")

    # model, with the input normaliser fitted on the first epoch's noisy frames
    model = CNN2d(n_freq, denoise.CONTEXT_2D, args.channels, args.output)
    model.norm.fit(stream.bank.features[stream.bank.ends])  # real frames only, not the prefix
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{SCRIPT}: CNN2d with {n_params:,} parameters, output={args.output}, loss={args.loss}")

    # training: Adam + cosine schedule, best checkpoint by validation SNR improvement (shared with hw_cnn1d.py)
    history, train_seconds, train_cpu_seconds = denoise.train_denoiser(
        model, stream, data, args, context=denoise.CONTEXT_2D, out_dir=out_dir, device=device, script=SCRIPT)

    # evaluation and outputs (shared with hw_cnn1d.py)
    denoise.evaluate_and_write(model, data, args, script=SCRIPT, out_dir=out_dir, context=denoise.CONTEXT_2D,
                               history=history, train_seconds=train_seconds, device=device,
                               extra_metrics={"model_parameters": n_params, "epochs": len(history),
                                              "train_cpu_seconds": train_cpu_seconds})


if __name__ == "__main__":
    sys.exit(main_guard(main))
