"""Speech denoising with a 1-D CNN on single STFT magnitude frames (homework problem 1).

What: every STFT frame of the noisy signal (n_fft = 1024 -> 513 bins, Hann window, hop
512) is one example of shape [B, 1, 513]. A 1-D CNN slides along frequency (no zero
padding; strides and max-pooling shrink the maps), a Linear layer maps the flattened
features to 513 values, and every layer, the last included, has an activation: by
default a sigmoid mask in [0, 1] that multiplies the noisy magnitude (``--output mask``),
or a ReLU that outputs the clean log1p magnitude directly (``--output magnitude``). The
estimated magnitude is recombined with the noisy phase and inverted to samples.

The rest is written once in hw_denoise.py and shared with hw_cnn2d.py (its docstring
has the details): the data (the homework's ``--clean/--noisy`` pair and ``--test`` files,
``--clean-dir/--noise-dir`` folders, the real TSP recordings, or SYNTHETIC eSpeak NG speech),
the training (best checkpoint by validation SNR improvement) and the scores (the homework's
SNR, SI-SNR, PESQ, STOI) beside the noisy input and noisereduce spectral gating.

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

from torch import nn

import hw_denoise as denoise
from audiolab.core.cli import main_guard

SCRIPT = "hw_cnn1d"
CONTEXT = 1  # STFT frames per example: [B, 1, 513]


# ----------------------------------------------------------------------------- settings
def parse_args(argv=None):
    """The shared denoising flags (``hw_denoise.py``) plus ``--channels``; ``--quick`` resolved into sizes."""
    return denoise.parse_args(__doc__, argv, epochs=15, layers="Conv1d")


# ----------------------------------------------------------------------------- model
class CNN1d(denoise.FrameCNN):
    """1-D CNN along frequency: ``[B, 1, F]`` log1p magnitudes -> ``[B, F]`` mask or log1p magnitude.

    Layers (F = 513): Conv1d(k=9, stride 2) -> ReLU -> MaxPool(2) [253 -> 126];
    Conv1d(k=5) -> ReLU -> MaxPool(2) [122 -> 61]; Conv1d(k=3) -> ReLU [59];
    flatten -> Linear(-> F) -> sigmoid (mask) or ReLU (magnitude). No zero padding
    anywhere, so the maps shrink as the homework asks. The input normalisation and the
    head are ``denoise.FrameCNN``, shared with hw_cnn2d.py.
    """

    def __init__(self, n_freq: int = 513, channels=(16, 32, 32), output: str = "mask"):
        c1, c2, c3 = channels
        features = nn.Sequential(
            nn.Conv1d(1, c1, kernel_size=9, stride=2), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(c1, c2, kernel_size=5), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(c2, c3, kernel_size=3), nn.ReLU(),
        )
        super().__init__(n_freq, features, (n_freq,), output)


# ----------------------------------------------------------------------------- main
def main(argv=None):
    """Data, model, training, evaluation and outputs as ``denoise.run`` does them for both scripts."""
    args = parse_args(argv)
    denoise.run(args, script=SCRIPT, context=CONTEXT,
                build_model=lambda n_freq: CNN1d(n_freq, args.channels, args.output))


if __name__ == "__main__":
    sys.exit(main_guard(main))
