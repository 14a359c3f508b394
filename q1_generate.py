"""Question 1 (a): generate the two-sinusoid source-separation dataset.

Each example has
  source1 = a1 sin(2 pi f1 t + phi1), f1 below the boundary (8 kHz by default),
  source2 = a2 sin(2 pi f2 t + phi2), f2 above the boundary,
  mixture = source1 + source2 (exactly: both sources are rounded to the 16-bit grid
            first, so the sum also holds sample for sample in the WAV files),
T = 10000 samples each, random amplitudes, phases and frequencies, split 90:10.

Why 32 kHz and not 16 kHz: a tone "above 8 kHz" sampled at 16 kHz is above Nyquist
and aliases back below 8 kHz (a 12 kHz tone shows up at 4 kHz), so the two classes
would overlap. At 32 kHz source2 lies in (8 kHz + guard, 15 kHz), below the 16 kHz
Nyquist frequency with a guard band; source1 lies in (f_min, 8 kHz - guard). Settings
that would alias are refused with an explanation.

Amplitudes are drawn from [amp_min, amp_max] with 2 * amp_max <= 0.95, so the mixture
never leaves [-1, 1] (no clipping).

Outputs: data/q1/{train,test}/NNN_{source1,source2,mixture}.wav (16-bit PCM) and
data/q1/info.csv (id, split, f1_hz, f2_hz, a1, a2, phase1_rad, phase2_rad,
sample_rate, n_samples and the three paths, relative to data/q1). The folder is
written to a temporary location and swapped in at the end, so an interrupted run
never leaves a half-written dataset. It replaces only a folder it wrote itself (the marker
.audiolab-owner, or just info.csv, train/ and test/): any other folder is refused, untouched.

Usage: python q1_generate.py [--n-examples 100] [--sample-rate 32000] [--seed 0]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from audiolab.core.cli import (apply_quick, base_parser, float_range, main_guard, positive_float, positive_int,
                               sample_rate_hz, script_help)
from audiolab.core.io import save_audio
from audiolab.core.outputs import check_owner, out_dir_for, replace_folder, write_metrics
from audiolab.core.progress import progress
from audiolab.core.runtime import UserError

PCM_SCALE = 32768.0  # 16-bit full scale: samples are k / 32768 for integer k
DATA_OWNER = "q1_generate data"  # the owner marker of its data folders (its --out-dir says q1_generate)
DATA_FILES = ("info.csv", "train", "test")  # what a data folder written before the owner marker holds
MAX_GIB = 4  # refuse sizes whose signals alone would need more memory than this


def build_parser():
    p = script_help(base_parser(__doc__, epochs=None))
    p.add_argument("--data-dir", type=Path, default=Path("data/q1"), help="output folder (default %(default)s)")
    p.add_argument("--n-examples", type=positive_int, default=100, help="number of examples (default %(default)s)")
    p.add_argument("--n-samples", type=positive_int, default=10000, help="samples per signal, T (default %(default)s)")
    p.add_argument("--sample-rate", type=sample_rate_hz, default=32000, help="sample rate in Hz (default %(default)s)")
    p.add_argument("--boundary-hz", type=positive_float, default=8000.0,
                   help="source1 below, source2 above this frequency (default %(default)s)")
    p.add_argument("--guard-hz", type=float_range(0), default=500.0,
                   help="no tone within this distance of the boundary or of Nyquist (default %(default)s)")
    p.add_argument("--f1-min-hz", type=positive_float, default=100.0,
                   help="lowest source1 frequency (default %(default)s)")
    p.add_argument("--f2-max-hz", type=positive_float, default=15000.0,
                   help="highest source2 frequency; must stay below Nyquist - guard (default %(default)s)")
    p.add_argument("--amp-min", type=positive_float, default=0.2, help="smallest amplitude (default %(default)s)")
    p.add_argument("--amp-max", type=positive_float, default=0.45, help="largest amplitude (default %(default)s)")
    p.add_argument("--test-fraction", type=float_range(0, 1, lo_open=True, hi_open=True), default=0.1,
                   help="fraction held out for test (default %(default)s)")
    return p


# --quick (a smoke test): these sizes, unless the flag is given on the command line
QUICK = {"n_examples": 20, "n_samples": 4000}


def check_settings(sample_rate: int, boundary_hz: float, guard_hz: float, f1_min_hz: float, f2_max_hz: float,
                   amp_min: float, amp_max: float, test_fraction: float, n_examples: int) -> None:
    """Refuse settings that alias, leave an empty frequency range, or could clip.

    Raises:
        UserError: with an explanation of what is wrong and what would work.
    """
    nyquist = sample_rate / 2
    if f2_max_hz > nyquist - guard_hz:
        raise UserError(
            f"source2 may reach {f2_max_hz:g} Hz but the sample rate {sample_rate} Hz has its Nyquist frequency at "
            f"{nyquist:g} Hz (guard {guard_hz:g} Hz): a tone above Nyquist aliases to sample_rate - f (e.g. "
            f"{f2_max_hz:g} Hz would appear at {abs(sample_rate - f2_max_hz):g} Hz), so 'above "
            f"{boundary_hz:g} Hz' would be violated. Use --sample-rate >= {int(2 * (f2_max_hz + guard_hz))} "
            f"or a lower --f2-max-hz.")
    if boundary_hz + guard_hz >= f2_max_hz:
        raise UserError(f"empty source2 range: boundary {boundary_hz:g} Hz + guard {guard_hz:g} Hz is not below "
                        f"--f2-max-hz {f2_max_hz:g} Hz (at sample rate {sample_rate} Hz, Nyquist {nyquist:g} Hz)")
    if f1_min_hz >= boundary_hz - guard_hz:
        raise UserError(f"empty source1 range: --f1-min-hz {f1_min_hz:g} is not below boundary - guard "
                        f"({boundary_hz - guard_hz:g} Hz)")
    if guard_hz < 0:
        raise UserError("--guard-hz must be >= 0")
    if not 0 < amp_min <= amp_max:
        raise UserError(f"need 0 < --amp-min <= --amp-max, got {amp_min} and {amp_max}")
    if 2 * amp_max > 0.95:
        raise UserError(f"--amp-max {amp_max} could make the mixture peak at {2 * amp_max:g}: keep 2 * amp_max <= 0.95 "
                        "so the mixture stays inside [-1, 1] without clipping")
    if not 0 < test_fraction < 1:
        raise UserError(f"--test-fraction must be in (0, 1), got {test_fraction}")
    if round(n_examples * test_fraction) < 1 or n_examples - round(n_examples * test_fraction) < 1:
        raise UserError(f"{n_examples} examples with test fraction {test_fraction} leave an empty split")


def make_examples(n_examples: int, n_samples: int, sample_rate: int, boundary_hz: float, guard_hz: float,
                  f1_min_hz: float, f2_max_hz: float, amp_min: float, amp_max: float, seed: int):
    """Draw the parameters and signals.

    Returns:
        ``(params, signals)``: a DataFrame with one row per example (``f1_hz``, ``f2_hz``, ``a1``, ``a2``,
        ``phase1_rad``, ``phase2_rad``) and a float64 array ``[n_examples, 3, n_samples]`` holding
        source1, source2 and mixture, each on the 16-bit grid, with mixture == source1 + source2.
    """
    rng = np.random.default_rng(seed)
    f1 = rng.uniform(f1_min_hz, boundary_hz - guard_hz, n_examples)
    f2 = rng.uniform(boundary_hz + guard_hz, f2_max_hz, n_examples)
    a1, a2 = rng.uniform(amp_min, amp_max, (2, n_examples))
    ph1, ph2 = rng.uniform(0, 2 * np.pi, (2, n_examples))
    t = np.arange(n_samples) / sample_rate
    s1 = a1[:, None] * np.sin(2 * np.pi * f1[:, None] * t + ph1[:, None])
    s2 = a2[:, None] * np.sin(2 * np.pi * f2[:, None] * t + ph2[:, None])
    s1 = np.round(s1 * PCM_SCALE) / PCM_SCALE  # on the 16-bit grid, so the sum below is exact in the files
    s2 = np.round(s2 * PCM_SCALE) / PCM_SCALE
    signals = np.stack([s1, s2, s1 + s2], axis=1)
    params = pd.DataFrame({"id": np.arange(n_examples), "f1_hz": f1, "f2_hz": f2, "a1": a1, "a2": a2,
                           "phase1_rad": ph1, "phase2_rad": ph2})
    return params, signals


def main(argv=None):
    argv = None if argv is None else [str(a) for a in argv]
    args = apply_quick(build_parser().parse_args(argv), QUICK, argv)
    check_settings(args.sample_rate, args.boundary_hz, args.guard_hz, args.f1_min_hz, args.f2_max_hz,
                   args.amp_min, args.amp_max, args.test_fraction, args.n_examples)
    gib = args.n_examples * 3 * args.n_samples * 8 / 2**30
    if gib > MAX_GIB:
        raise UserError(f"--n-examples {args.n_examples} x --n-samples {args.n_samples} would need {gib:.1f} GiB "
                        f"of memory (limit {MAX_GIB} GiB); ask for fewer or shorter examples")
    check_owner(args.data_dir, DATA_OWNER, what="data folder", legacy_names=DATA_FILES)  # before any write
    out_dir = out_dir_for(args, "q1_generate")  # locked before anything is written

    params, signals = make_examples(args.n_examples, args.n_samples, args.sample_rate, args.boundary_hz,
                                    args.guard_hz, args.f1_min_hz, args.f2_max_hz, args.amp_min, args.amp_max,
                                    args.seed)
    train_ids, test_ids = train_test_split(params["id"].to_numpy(), test_size=args.test_fraction,
                                           random_state=args.seed, shuffle=True)
    params["split"] = np.where(params["id"].isin(test_ids), "test", "train")
    params["sample_rate"] = args.sample_rate
    params["n_samples"] = args.n_samples

    final = Path(args.data_dir)
    names = ("source1", "source2", "mixture")
    for name in names:
        params[f"{name}_path"] = [f"{s}/{i:03d}_{name}.wav" for i, s in zip(params["id"], params["split"])]
    with replace_folder(final, DATA_OWNER, legacy_names=DATA_FILES) as tmp:  # only ever replaces its own folder
        for row, sig in progress(zip(params.itertuples(), signals), "writing WAVs", total=len(params)):
            for name, wav in zip(names, sig):
                save_audio(tmp / getattr(row, f"{name}_path"), wav, args.sample_rate)
        cols = ["id", "split", "f1_hz", "f2_hz", "a1", "a2", "phase1_rad", "phase2_rad", "sample_rate", "n_samples",
                "source1_path", "source2_path", "mixture_path"]
        params[cols].to_csv(tmp / "info.csv", index=False, float_format="%.6f")

    n_train, n_test = len(train_ids), len(test_ids)
    write_metrics(out_dir,
                  {"n_train": n_train, "n_test": n_test, "sample_rate_hz": args.sample_rate,
                   "n_samples": args.n_samples, "f1_max_hz": float(params.f1_hz.max()),
                   "f2_min_hz": float(params.f2_hz.min()), "f2_max_hz": float(params.f2_hz.max()),
                   "mixture_peak": float(np.abs(signals[:, 2]).max())},
                  args=args, dataset="q1_sinusoids", data_source="synthetic")
    print(f"q1_generate: {len(params)} examples ({n_train} train / {n_test} test), T={args.n_samples} samples at "
          f"{args.sample_rate} Hz, f1 in [{params.f1_hz.min():.0f}, {params.f1_hz.max():.0f}] Hz, "
          f"f2 in [{params.f2_hz.min():.0f}, {params.f2_hz.max():.0f}] Hz -> {final}/")


if __name__ == "__main__":
    sys.exit(main_guard(main))
