"""Reference anchor for the EMOVO emotion target: eGeMAPS functionals + SVM, EMOVO leave-one-actor-out.

The standard non-neural baseline of speech emotion recognition: the 88 eGeMAPS v02
utterance-level functionals (Eyben et al., "The Geneva Minimalistic Acoustic Parameter
Set (GeMAPS) for Voice Research and Affective Computing", IEEE Trans. Affective Computing
2016), extracted with the `opensmile` Python package, z-normalised per speaker (each
speaker's own statistics, no labels; the same unsupervised per-speaker normalisation
q2_multitask.py applies to its log-mel frames) or with the training speakers'
statistics, then a support-vector machine (scikit-learn). For each test actor the SVM's
kernel and C are chosen by an inner leave-one-actor-out over the three training actors
only, so the test actor never selects a hyper-parameter.

It answers one question for the README: what does a well-known method reach on exactly
the folds of ``benchmarks/multitask_emovo.py`` (train on three of f1, f2, m1, m2, test
on the fourth; 7 emotions, chance 0.143)? Prints a table and writes
``benchmarks/results/emovo_egemaps_reference.csv``.

Needs the optional benchmark extras (openSMILE is not used by the scripts):
    pip install -r benchmarks/requirements.txt
    python benchmarks/emovo_egemaps_reference.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from audiolab import emotion_data as ed  # noqa: E402
from audiolab.runtime import format_table, write_csv  # noqa: E402

GRID = [{"svc__kernel": ["linear"], "svc__C": [0.001, 0.01, 0.1, 1.0]},
        {"svc__kernel": ["rbf"], "svc__C": [0.1, 1.0, 10.0]}]


def default_data_root() -> Path:
    env = os.environ.get("AUDIOLAB_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def per_speaker_z(features: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """z-normalise ``[N, D]`` features with each speaker's own mean and standard deviation (no labels)."""
    out = features.copy()
    for s in np.unique(speakers):
        rows = speakers == s
        out[rows] = (out[rows] - out[rows].mean(0)) / (out[rows].std(0) + 1e-6)
    return out


def leave_one_actor_out(features, labels, speakers, mode: str):
    """Accuracy per held-out actor, with (kernel, C) picked by leave-one-actor-out inside the other actors
    (scikit-learn ``GridSearchCV`` over ``LeaveOneGroupOut``). ``mode``: ``speaker`` (per-speaker z-norm
    first) or ``global`` (a ``StandardScaler`` fitted on the training rows of each fit).
    Returns ``[(actor, accuracy, macro_f1, kernel, C)]``."""
    from sklearn.metrics import f1_score
    from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    x = per_speaker_z(features, speakers) if mode == "speaker" else features
    steps = ([] if mode == "speaker" else [("scale", StandardScaler())]) + [("svc", SVC())]
    rows = []
    for train, test in LeaveOneGroupOut().split(x, labels, speakers):
        search = GridSearchCV(Pipeline(steps), GRID, cv=LeaveOneGroupOut())
        search.fit(x[train], labels[train], groups=speakers[train])
        pred = search.predict(x[test])
        best = search.best_params_
        rows.append((speakers[test][0], float((pred == labels[test]).mean()),
                     float(f1_score(labels[test], pred, average="macro")), best["svc__kernel"], best["svc__C"]))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=default_data_root(),
                   help="folder holding emovo/ (default $AUDIOLAB_DATA, else ../shared/data)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "emovo_egemaps_reference.csv")
    args = p.parse_args(argv)
    try:
        import opensmile
    except ImportError:
        print("error: this reference needs openSMILE: pip install -r benchmarks/requirements.txt", file=sys.stderr)
        return 2
    if not (args.data_root / "emovo").is_dir():
        print(f"error: {args.data_root / 'emovo'} not found; set --data-root or AUDIOLAB_DATA", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    examples, _ = ed.load_corpus("emovo", ed.find_corpus("emovo", args.data_root), 16000)
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.Functionals)
    features = np.nan_to_num(np.array([smile.process_signal(ex.waveform, 16000).values[0] for ex in examples]))
    labels = np.array([ex.emotion for ex in examples])
    speakers = np.array([ex.speaker for ex in examples])
    print(f"eGeMAPS v02: {features.shape[1]} functionals for {len(examples)} utterances "
          f"({time.perf_counter() - t0:.0f} s)")
    table = []
    for mode in ("speaker", "global"):
        for actor, acc, f1, kernel, c in leave_one_actor_out(features, labels, speakers, mode):
            table.append({"normalisation": mode, "test_actor": actor, "emotion_accuracy": acc,
                          "emotion_macro_f1": f1, "svm": f"{kernel} C={c:g} (inner LOAO)"})
        fold_rows = [r for r in table if r["normalisation"] == mode]
        table.append({"normalisation": mode, "test_actor": "mean",
                      "emotion_accuracy": float(np.mean([r["emotion_accuracy"] for r in fold_rows])),
                      "emotion_macro_f1": float(np.mean([r["emotion_macro_f1"] for r in fold_rows])), "svm": ""})
    print(format_table(table))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(args.out, table)
    print(f"chance 1/7 = 0.143; target 0.50; wrote {args.out} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
