"""Question 1 (b): spectrograms of source1, source2 and their mixture.

Reads one example written by q1_generate.py (default: the first test example; `--id`
for another) and draws log-magnitude spectrograms (dB re full scale, n_fft 512, hop
128, Hann) with time in seconds, frequency in Hz and the 8 kHz boundary drawn:
one figure with the three side by side and one figure each, all on one colour scale.
It also checks that each spectrum's peak lies where info.csv says the tone is.

Outputs (outputs/q1_plot/): example_NNN_all.png, example_NNN_{source1,source2,mixture}.png,
metrics.json (tone frequencies and the measured spectral peaks).

Usage: python q1_generate.py && python q1_plot.py [--id 7]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from audiolab.core.cli import add_stft_args, base_parser, int_range, main_guard, positive_float, script_help
from audiolab.core.dsp import check_stft_fits, frequencies_hz, stft
from audiolab.core.io import AudioReadError, is_silent, load_audio
from audiolab.core.plotting import spectrogram_figure
from audiolab.core.outputs import out_dir_for, write_metrics
from audiolab.core.runtime import UserError
from audiolab.data.common import Q1_INFO_COLUMNS, read_table

NAMES = ("source1", "source2", "mixture")


def build_parser():
    p = script_help(base_parser(__doc__, epochs=None))
    p.add_argument("--data-dir", type=Path, default=Path("data/q1"),
                   help="folder written by q1_generate.py (default %(default)s)")
    p.add_argument("--id", type=int_range(0), default=None, help="example id to plot (default: the first test example)")
    add_stft_args(p, n_fft=512, hop_length=128)
    p.add_argument("--boundary-hz", type=positive_float, default=8000.0,
                   help="line drawn at this frequency (default %(default)s)")
    return p


def peak_frequency_hz(wav: np.ndarray, sample_rate: int, n_fft: int, hop_length: int) -> float:
    """Frequency in Hz of the loudest bin of the time-averaged magnitude spectrum."""
    mag = stft(wav, n_fft, hop_length).abs().mean(-1).numpy()
    return float(frequencies_hz(n_fft, sample_rate)[int(np.argmax(mag))])


def load_example(args) -> tuple[pd.Series, dict[str, np.ndarray], int]:
    """The example to plot (``--id``, else the first test example): ``(info row, signals by name, sample_rate)``.

    Raises:
        UserError: no info.csv or a malformed one (line and column named), no such id, or a file that
            is unreadable, silent, or whose rate or length differs from info.csv (the file is named).
    """
    info_path = args.data_dir / "info.csv"
    if not info_path.exists():
        raise UserError(f"{info_path} not found: run `python q1_generate.py` first (or point --data-dir at its output)")
    info = read_table(info_path, Q1_INFO_COLUMNS, unique="id", fix="re-run q1_generate.py")  # every cell checked
    if args.id is None:
        test = info[info["split"] == "test"]
        row = (test if not test.empty else info).sort_values("id").iloc[0]
    else:
        match = info[info["id"] == args.id]
        if match.empty:
            raise UserError(f"no example with --id {args.id}; ids run from {info['id'].min()} to {info['id'].max()}")
        row = match.iloc[0]
    signals = {}
    for name in NAMES:
        path = args.data_dir / row[f"{name}_path"]
        try:
            signals[name], sample_rate = load_audio(path)
        except AudioReadError as err:
            raise UserError(f"{err}; re-run q1_generate.py") from None
        if is_silent(signals[name]):
            raise UserError(f"{path} is silent (all zeros): it has no spectral peak to check; re-run q1_generate.py")
        expected = {"sample_rate": (sample_rate, "Hz"), "n_samples": (len(signals[name]), "samples")}
        for column, (got, unit) in expected.items():
            if column in row and int(row[column]) != got:
                raise UserError(f"{path} has {got} {unit} but {info_path} says {int(row[column])} {unit} "
                                f"(truncated or from another run?); re-run q1_generate.py")
    return row, signals, sample_rate


def main(argv=None):
    args = build_parser().parse_args(argv)
    row, signals, sample_rate = load_example(args)
    ex = int(row["id"])
    check_stft_fits(min(len(w) for w in signals.values()), args.n_fft, args.hop_length,
                    what=f"example {ex:03d} in {args.data_dir}")

    out = out_dir_for(args, "q1_plot")
    title = (f"Example {ex:03d} ({row['split']}): f1 = {row['f1_hz']:.0f} Hz, f2 = {row['f2_hz']:.0f} Hz, "
             f"{sample_rate} Hz [synthetic]")
    labels = {"source1": f"source1 ({row['f1_hz']:.0f} Hz)", "source2": f"source2 ({row['f2_hz']:.0f} Hz)",
              "mixture": "mixture = source1 + source2"}
    kw = dict(n_fft=args.n_fft, hop_length=args.hop_length, hlines_hz=[args.boundary_hz])
    paths = [spectrogram_figure({labels[n]: signals[n] for n in NAMES}, sample_rate,
                                out / f"example_{ex:03d}_all.png", suptitle=title, **kw)]
    for name in NAMES:
        paths.append(spectrogram_figure({labels[name]: signals[name]}, sample_rate,
                                        out / f"example_{ex:03d}_{name}.png", suptitle=title, **kw))

    peaks = {n: peak_frequency_hz(signals[n], sample_rate, args.n_fft, args.hop_length) for n in ("source1", "source2")}
    bin_hz = sample_rate / args.n_fft
    metrics = {"example_id": ex, "f1_hz": float(row["f1_hz"]), "f2_hz": float(row["f2_hz"]),
               "peak_source1_hz": peaks["source1"], "peak_source2_hz": peaks["source2"], "bin_width_hz": bin_hz,
               "peaks_match_info": bool(abs(peaks["source1"] - row["f1_hz"]) <= bin_hz
                                        and abs(peaks["source2"] - row["f2_hz"]) <= bin_hz)}
    write_metrics(out, metrics, args=args, dataset="q1_sinusoids", data_source="synthetic")
    print(f"q1_plot: example {ex:03d}: spectral peaks {peaks['source1']:.0f} Hz / {peaks['source2']:.0f} Hz "
          f"(info.csv: {row['f1_hz']:.0f} / {row['f2_hz']:.0f} Hz), {len(paths)} figures -> {out}/")


if __name__ == "__main__":
    sys.exit(main_guard(main))
