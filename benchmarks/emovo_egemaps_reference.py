"""Reference anchor: eGeMAPS functionals + SVM, leave one speaker out (EMOVO, EmoDB or any emotion corpus).

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
the folds of ``benchmarks/multitask_emovo.py`` (``--dataset emovo``: train on three of
f1, f2, m1, m2, test on the fourth; 7 emotions, chance 0.143) or of
``benchmarks/multitask_emodb.py`` (``--dataset emodb``: the 8 speakers of the EmoDB copy,
one held out at a time)? Any corpus ``audiolab.data.emotion`` reads works (``--dataset``).
Prints a table (per fold and mean; accuracy, macro-F1 and the majority-class accuracy) and
writes ``benchmarks/results/<dataset>_egemaps_reference.csv``.

Needs the optional benchmark extras (openSMILE is not used by the scripts):
    pip install -r benchmarks/requirements.txt
    python benchmarks/emovo_egemaps_reference.py                   # EMOVO
    python benchmarks/emovo_egemaps_reference.py --dataset emodb   # EmoDB (8 folds)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
from audiolab.data import emotion as ed
from audiolab.core.outputs import format_table, write_csv

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
    Returns ``[(actor, accuracy, macro_f1, majority_accuracy, kernel, C)]``; ``majority_accuracy`` is what
    predicting the training folds' most frequent class for every test utterance scores."""
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
        classes, counts = np.unique(labels[train], return_counts=True)
        majority = float((labels[test] == classes[counts.argmax()]).mean())
        rows.append((speakers[test][0], float((pred == labels[test]).mean()),
                     float(f1_score(labels[test], pred, average="macro")), majority, best["svc__kernel"],
                     best["svc__C"]))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=default_data_root(),
                   help="folder holding the corpus (default $AUDIOLAB_DATA, else ../shared/data)")
    p.add_argument("--dataset", default="emovo", choices=sorted(ed.CORPORA),
                   help="corpus, found under --data-root by its usual folder names (default %(default)s)")
    p.add_argument("--out", type=Path, default=None,
                   help="CSV (default benchmarks/results/<dataset>_egemaps_reference.csv)")
    args = p.parse_args(argv)
    out = args.out or REPO / "benchmarks" / "results" / f"{args.dataset}_egemaps_reference.csv"
    try:
        import opensmile
    except ImportError:
        print("error: this reference needs openSMILE: pip install -r benchmarks/requirements.txt", file=sys.stderr)
        return 2
    root = ed.find_corpus(args.dataset, args.data_root)
    if root is None:
        print(f"error: no {args.dataset} folder ({' or '.join(ed.CORPORA[args.dataset].folders)}) under "
              f"{args.data_root}; set --data-root or AUDIOLAB_DATA", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    examples, _ = ed.load_corpus(args.dataset, root, 16000)
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.Functionals)
    features = np.nan_to_num(np.array([smile.process_signal(ex.waveform, 16000).values[0] for ex in examples]))
    labels = np.array([ex.emotion for ex in examples])
    speakers = np.array([ex.speaker for ex in examples])
    print(f"eGeMAPS v02: {features.shape[1]} functionals for {len(examples)} utterances "
          f"({time.perf_counter() - t0:.0f} s)")
    table = []
    for mode in ("speaker", "global"):
        for actor, acc, f1, majority, kernel, c in leave_one_actor_out(features, labels, speakers, mode):
            table.append({"normalisation": mode, "test_speaker": actor, "emotion_accuracy": acc,
                          "emotion_macro_f1": f1, "majority_class_accuracy": majority,
                          "svm": f"{kernel} C={c:g} (inner leave-one-speaker-out)"})
        fold_rows = [r for r in table if r["normalisation"] == mode]
        table.append({"normalisation": mode, "test_speaker": "mean", **{
            k: float(np.mean([r[k] for r in fold_rows]))
            for k in ("emotion_accuracy", "emotion_macro_f1", "majority_class_accuracy")}, "svm": ""})
    print(format_table(table))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(out, table)
    n_classes = len(set(labels))
    print(f"{args.dataset}: {n_classes} classes, chance 1/{n_classes} = {1 / n_classes:.3f}; wrote {out} "
          f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
