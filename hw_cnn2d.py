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

Data, training and evaluation are those of hw_cnn1d.py, from hw_denoise.py (its
docstring has the details): the homework's files, folders, TSP or SYNTHETIC speech; MSE on
compressed magnitudes with Adam and cosine decay, the best checkpoint by validation SNR
improvement; the homework's SNR, SI-SNR, PESQ and STOI beside the noisy input and
noisereduce spectral gating.

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

import hw_denoise as denoise
from audiolab.core.cli import main_guard

SCRIPT = "hw_cnn2d"
CONTEXT = denoise.CONTEXT_2D  # STFT frames per example: [B, 1, 20, 513]


# ----------------------------------------------------------------------------- settings
def parse_args(argv=None):
    """The shared denoising flags (``hw_denoise.py``) plus ``--channels``; ``--quick`` resolved into sizes."""
    return denoise.parse_args(__doc__, argv, epochs=10, layers="Conv2d")


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


class CNN2d(denoise.FrameCNN):
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
    silently drop it). The input normalisation and the head are ``denoise.FrameCNN``,
    shared with hw_cnn1d.py.
    """

    def __init__(self, n_freq: int = 513, context: int = 20, channels=(16, 32, 32), output: str = "mask"):
        if context % 5:
            raise ValueError(f"context must be a multiple of 5 frames, got {context}")
        c1, c2, c3 = channels
        blocks = context // 5
        features = nn.Sequential(
            TimeBlockConv2d(1, c1, kernel_size=(5, 9), stride=(5, 2)), nn.ReLU(), nn.MaxPool2d((1, 2)),
            nn.Conv2d(c1, c2, kernel_size=(2, 5)), nn.ReLU(), nn.MaxPool2d((1, 2)),
            nn.Conv2d(c2, c3, kernel_size=(blocks - 1, 3)), nn.ReLU(),
        )
        super().__init__(n_freq, features, (context, n_freq), output)


# ----------------------------------------------------------------------------- main
def main(argv=None):
    """Data, model, training, evaluation and outputs as ``denoise.run`` does them for both scripts."""
    args = parse_args(argv)
    denoise.run(args, script=SCRIPT, context=CONTEXT,
                build_model=lambda n_freq: CNN2d(n_freq, CONTEXT, args.channels, args.output))


if __name__ == "__main__":
    sys.exit(main_guard(main))
