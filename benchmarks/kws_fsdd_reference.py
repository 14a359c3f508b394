"""Reference anchor for the FSDD keyword targets: a classic MFCC + SVM digit classifier, FSDD leave-one-speaker-out.

The issue's published anchors are for Speech Commands, which is not available offline, so
this gives the FSDD numbers of ``benchmarks/kws_fsdd.py`` a yardstick on exactly the same
folds (train on three of george, jackson, lucas, nicolas; test on the fourth): 13 MFCCs
(librosa, 32 ms window, 10 ms hop at 8 kHz) of each silence-trimmed clip, per-clip
cepstral mean subtraction, each coefficient's track resampled to 20 points so that every
clip gives one 260-value vector, z-normalised with the training speakers' statistics, then
an RBF support-vector machine (scikit-learn) whose C is chosen by an inner
leave-one-speaker-out over the training speakers only. The fixed-length template is the
idea of early isolated-word recognisers; the SVM the usual shallow classifier.
No augmentation and no synthetic voices: real clips only.

Prints a table and writes ``benchmarks/results/kws_fsdd_reference.csv``.

    python benchmarks/kws_fsdd_reference.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
from audiolab.data import keywords as kd
from audiolab.data import fsdd
from audiolab.core.outputs import format_table, write_csv

N_MFCC, N_POINTS, C_GRID = 13, 20, (0.3, 1.0, 3.0, 10.0)


def default_data_root() -> Path:
    env = os.environ.get("AUDIOLAB_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def template(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """``[N_MFCC * N_POINTS]``: MFCCs with the clip's mean removed, each track resampled to N_POINTS."""
    import librosa

    mfcc = librosa.feature.mfcc(y=wav.astype(np.float32), sr=sample_rate, n_mfcc=N_MFCC,
                                n_fft=int(0.032 * sample_rate), hop_length=int(0.010 * sample_rate))
    mfcc = mfcc - mfcc.mean(axis=1, keepdims=True)
    grid = np.linspace(0, mfcc.shape[1] - 1, N_POINTS)
    return np.stack([np.interp(grid, np.arange(mfcc.shape[1]), row) for row in mfcc]).ravel()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=default_data_root(),
                   help="folder holding fsdd/ (default $AUDIOLAB_DATA, else ../shared/data)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "kws_fsdd_reference.csv")
    args = p.parse_args(argv)
    if not (args.data_root / "fsdd").is_dir():
        print(f"error: {args.data_root / 'fsdd'} not found; set --data-root or AUDIOLAB_DATA", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    data = fsdd.load_fsdd(fsdd.find_fsdd(args.data_root), progress=False)
    kd.trim_clips(data, 30.0)
    x = np.stack([template(c.wav, data.sample_rate) for c in data.clips])
    y = np.array([c.label for c in data.clips])
    speakers = np.array([c.speaker for c in data.clips])
    from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    rows = []
    for train, test in LeaveOneGroupOut().split(x, y, speakers):   # outer: each speaker held out once
        search = GridSearchCV(make_pipeline(StandardScaler(), SVC(kernel="rbf")), {"svc__C": list(C_GRID)},
                              cv=LeaveOneGroupOut())               # inner: C chosen on the training speakers
        search.fit(x[train], y[train], groups=speakers[train])
        rows.append({"test_speaker": speakers[test][0], "test_accuracy": float(search.score(x[test], y[test])),
                     "svm_C": search.best_params_["svc__C"], "n_test_clips": len(test)})
    rows.append({"test_speaker": "mean", "test_accuracy": float(np.mean([r["test_accuracy"] for r in rows])),
                 "svm_C": "", "n_test_clips": int(sum(r["n_test_clips"] for r in rows))})
    print(format_table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(args.out, rows)
    print(f"MFCC + RBF SVM, real clips only; wrote {args.out} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
