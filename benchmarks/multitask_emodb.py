"""Benchmark: q2_multitask.py leave-one-speaker-out on the EmoDB copy.

Trains the multi-task model (CTC characters + emotion) on 7 of the 8 speakers of
``../shared/data/emodb_2s`` and tests on the eighth, for every speaker, by running the script
itself (so the numbers are exactly what a user gets). Per fold and as the mean over folds:
emotion accuracy and macro-F1 (7 classes), the majority-class accuracy (the training folds'
most frequent class predicted for every test clip: the chance level to beat), and CER/WER on
the test speaker's clips whose whole sentence is in the 2 s audio (``complete.txt``; the
other clips train and score the emotion head only). ``--ablation`` adds the same encoder
trained emotion-only and ASR-only. Prints a table and writes
``benchmarks/results/multitask_emodb.csv``; per-fold outputs go to
``benchmarks/results/multitask_emodb/<speaker>/``.

Anchor on exactly these folds: ``benchmarks/emovo_egemaps_reference.py --dataset emodb``
(eGeMAPS + SVM, optional extra); when its CSV is in ``benchmarks/results/`` its mean is
printed beside ours. Published EmoDB speaker-independent results use the full-length
recordings of all 10 speakers and are NOT comparable with this cut-to-2-s, 8-speaker copy.

Every fold row also carries, per test speaker: eGeMAPS + SVM (from that CSV, else the numbers
of experiments/multitask_emodb.md run 1, quoted), the majority class, and the emotion-only /
ASR-only ablations: this run's ``--ablation`` when given, else run 9's numbers, quoted (the
ablations are the same networks whatever ``--emotion-encoder`` / ``--loss-weighting`` say:
``tests/test_multitask.py::test_ablations_are_the_same_network_for_either_emotion_encoder``), so
a joint-only run of a new design prints its ablation beside it. The ``source_*`` columns say
which. Writes, beside the CSV, a per-fold bar figure (``<csv stem>_folds.png``) and the joint
model's confusion matrix summed over the folds (``<csv stem>_confusion.png``).

Targets: mean emotion accuracy of the joint model >= 0.75 and >= the eGeMAPS +
SVM reference on the same folds; one fold within 10 minutes on 2 CPU cores (``wall_s``
per fold; on a shared machine read ``cpu_s``, the fold's own CPU seconds).

Usage:
    python benchmarks/multitask_emodb.py                          # 8 folds, script defaults
    python benchmarks/multitask_emodb.py --folds speaker03,speaker08 --threads 1
    python benchmarks/multitask_emodb.py --ablation
    python benchmarks/multitask_emodb.py --reuse -- --epochs 30   # extra script flags after --
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
from audiolab.data import emotion as ed
from audiolab.core.outputs import format_table, write_csv
from multitask_emovo import default_data_root, mean_row, run_folds

TARGET_ACCURACY, TARGET_MINUTES = 0.75, 10.0
SPEAKERS = ["speaker03", "speaker08", "speaker09", "speaker10", "speaker12", "speaker14", "speaker15", "speaker16"]
#: experiments/multitask_emodb.md, per test speaker in SPEAKERS order: run 1 (eGeMAPS + SVM, per-speaker z-norm,
#: commit fcd4cfe) and run 9 (script defaults with --ablation, q2_multitask code of e25a1b5: the shared-encoder joint
#: model's accuracy and CER, the emotion-only accuracy and the ASR-only CER)
QUOTED = {
    "egemaps_svm_accuracy": [0.694, 0.724, 0.744, 0.684, 0.657, 0.739, 0.643, 0.676],
    "run9_joint_accuracy": [0.673, 0.638, 0.628, 0.632, 0.600, 0.623, 0.607, 0.577],
    "run9_joint_cer": [0.100, 0.084, 0.168, 0.289, 0.179, 0.163, 0.079, 0.091],
    "emotion_only_emotion_accuracy": [0.653, 0.603, 0.698, 0.816, 0.629, 0.725, 0.696, 0.704],
    "asr_only_cer": [0.088, 0.098, 0.137, 0.293, 0.173, 0.152, 0.072, 0.091],
}


def fold_row(speaker: str, m: dict, wall: float, cpu: float = float("nan")) -> dict:
    """One table row from a fold's metrics.json."""
    row = {"test_speaker": speaker, "emotion_accuracy": m["test_emotion_accuracy"],
           "emotion_macro_f1": m["test_emotion_macro_f1"], "majority_accuracy": m.get("emotion_majority_accuracy"),
           "test_cer": m["test_cer"], "test_wer": m["test_wer"], "n_cer_clips": m.get("n_cer_test_utterances"),
           "n_test_clips": m["n_test_utterances"], "epochs": m["epochs"], "train_s": m["train_seconds"],
           "wall_s": wall, "cpu_s": cpu}
    for k in ("emotion_only_test_emotion_accuracy", "emotion_only_test_emotion_macro_f1", "asr_only_test_cer",
              "asr_only_test_wer"):
        if k in m:
            row[k.replace("_test_", "_")] = m[k]
    return row


def add_anchors(rows: list[dict], reference: dict | None) -> None:
    """Fill each fold row's eGeMAPS + SVM accuracy and missing ablation columns (run 1 / run 9 quoted, see
    QUOTED), with ``source_*`` columns naming where each came from; adds run 9's shared-encoder joint model."""
    for r in rows:
        k = SPEAKERS.index(r["test_speaker"]) if r["test_speaker"] in SPEAKERS else None
        quoted = {name: (v[k] if k is not None else float("nan")) for name, v in QUOTED.items()}
        if reference and r["test_speaker"] in reference:
            r["egemaps_svm_accuracy"], r["source_egemaps"] = reference[r["test_speaker"]], "csv"
        else:
            r["egemaps_svm_accuracy"], r["source_egemaps"] = quoted["egemaps_svm_accuracy"], "run1"
        for col in ("emotion_only_emotion_accuracy", "asr_only_cer"):
            src = "this run" if col in r else "run9"
            r.setdefault(col, quoted[col])
            r[f"source_{col.split('_only')[0]}_only"] = src
        r["run9_joint_accuracy"], r["run9_joint_cer"] = quoted["run9_joint_accuracy"], quoted["run9_joint_cer"]


def fold_figures(rows: list[dict], results_dir: Path, out_csv: Path) -> list[Path]:
    """Per-fold bars (joint, emotion-only, eGeMAPS + SVM, majority class) and the joint model's confusion
    matrix summed over the folds' ``test_predictions.csv``; returns the PNG paths written."""
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.metrics import confusion_matrix

    from audiolab.core.plotting import plot_confusion_matrix, save_figure

    bars = [("emotion_accuracy", "joint"), ("emotion_only_emotion_accuracy", "emotion-only"),
            ("egemaps_svm_accuracy", "eGeMAPS + SVM"), ("majority_accuracy", "majority class")]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(rows) + 2), 4))
    for j, (key, label) in enumerate(bars):
        ax.bar(x + (j - 1.5) * 0.2, [r.get(key, float("nan")) for r in rows], 0.2, label=label)
    ax.set_xticks(x, [r["test_speaker"] for r in rows], rotation=30, fontsize=8)
    ax.set_ylabel("emotion accuracy (7 classes)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, ncol=4, loc="upper left")
    ax.set_title("EmoDB 2 s, leave one speaker out: test accuracy per fold")
    paths = [save_figure(fig, out_csv.with_name(out_csv.stem + "_folds.png"))]
    true, pred = [], []
    for r in rows:
        f = results_dir / r["test_speaker"] / "test_predictions.csv"
        if f.is_file():
            with open(f, newline="", encoding="utf-8") as fh:
                for p in csv.DictReader(fh):
                    true.append(p["true_emotion"])
                    pred.append(p["predicted_emotion"])
    if true:
        labels = sorted(set(true) | set(pred))
        paths.append(plot_confusion_matrix(confusion_matrix(true, pred, labels=labels), labels,
                                           out_csv.with_name(out_csv.stem + "_confusion.png"),
                                           title=f"Joint model, {len(rows)} EmoDB folds summed"))
    return paths


def egemaps_reference(path: Path) -> dict | None:
    """Per-speaker-normalised eGeMAPS + SVM rows from ``emovo_egemaps_reference.py --dataset emodb`` (or None)."""
    if not path.is_file():
        return None
    with open(path, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["normalisation"] == "speaker"]
    return {r["test_speaker"]: float(r["emotion_accuracy"]) for r in rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=default_data_root(),
                   help="folder holding emodb_2s/ (or emodb/) (default $AUDIOLAB_DATA, else ../shared/data)")
    p.add_argument("--folds", default=",".join(SPEAKERS), help="test speakers, comma-separated (default: all 8)")
    p.add_argument("--threads", type=int, default=None, help="OMP/torch threads for each run (default: torch's)")
    p.add_argument("--jobs", type=int, default=1, help="folds run at the same time (default 1)")
    p.add_argument("--ablation", action="store_true",
                   help="also train emotion-only and ASR-only per fold (default: quote run 9's, see QUOTED)")
    p.add_argument("--reuse", action="store_true",
                   help="keep folds whose metrics.json is already in the results folder instead of training again")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "multitask_emodb.csv")
    p.add_argument("extra", nargs="*", help="extra q2_multitask.py flags (after --)")
    args = p.parse_args(argv)
    if ed.find_corpus("emodb", args.data_root) is None:
        print(f"error: no EmoDB folder ({' or '.join(ed.CORPORA['emodb'].folders)}) under {args.data_root}; set "
              "--data-root or AUDIOLAB_DATA", file=sys.stderr)
        return 2
    folds = [f.strip() for f in args.folds.split(",") if f.strip()]
    t_all = time.perf_counter()
    done = run_folds("emodb", folds, args.out.parent / "multitask_emodb", args.data_root, list(args.extra),
                     threads=args.threads, jobs=args.jobs, ablation=args.ablation, reuse=args.reuse)
    if isinstance(done, int):
        return done
    rows = [fold_row(s, m, wall, cpu) for s, (m, wall, cpu) in done.items()]
    add_anchors(rows, egemaps_reference(args.out.parent / "emodb_egemaps_reference.csv"))
    figures = fold_figures(rows, args.out.parent / "multitask_emodb", args.out)
    mean = mean_row(rows, "test_speaker")
    for k in [k for k in rows[0] if k.startswith("source_")]:
        mean[k] = "/".join(sorted({r[k] for r in rows}))
    rows.append(mean)
    print(format_table(rows, list(rows[0].keys())))
    write_csv(args.out, rows)
    print(f"wrote {', '.join(str(f) for f in figures)}")
    j_cer, a_cer = mean["test_cer"], mean["asr_only_cer"]
    e_acc = mean["emotion_only_emotion_accuracy"]
    print(f"joint vs ablations: emotion accuracy {mean['emotion_accuracy']:.3f} vs emotion-only {e_acc:.3f} "
          f"({'met' if mean['emotion_accuracy'] >= e_acc else 'MISSED'}); CER {j_cer:.3f} vs ASR-only {a_cer:.3f} "
          f"+ 0.01 ({'met' if j_cer <= a_cer + 0.01 else 'MISSED'}); ablation source: {mean['source_emotion_only']}")
    walls = [r["wall_s"] for r in rows[:-1] if r["wall_s"] == r["wall_s"]]
    slowest = max(walls) / 60 if walls else float("nan")
    cpus = [r["cpu_s"] for r in rows[:-1] if r["cpu_s"] == r["cpu_s"]]
    slowest_cpu = max(cpus) / 60 if cpus else float("nan")
    acc = mean["emotion_accuracy"]
    ref = mean.get("egemaps_svm_accuracy")
    ref_text = (f"eGeMAPS + SVM on the same folds {ref:.3f} ({'met' if acc >= ref else 'MISSED'})" if ref is not None
                else "eGeMAPS + SVM reference not run (benchmarks/emovo_egemaps_reference.py --dataset emodb)")
    n = len(rows) - 1
    print(f"targets: mean emotion accuracy {acc:.3f} (>= {TARGET_ACCURACY}: "
          f"{'met' if acc >= TARGET_ACCURACY else 'MISSED'}; majority class {mean['majority_accuracy']:.3f}, "
          f"chance 1/7 = 0.143); {ref_text}; slowest timed fold {slowest:.1f} min wall, {slowest_cpu:.1f} "
          f"CPU-min (target <= {TARGET_MINUTES:g} min on 2 CPU cores); mean CER {mean['test_cer']:.3f} on the "
          f"complete clips; {n} fold(s) in {(time.perf_counter() - t_all) / 60:.1f} min"
          f"{'' if n == len(SPEAKERS) else ' (reduced run)'}")
    print("context only, not comparable (full-length clips, all 10 speakers): published speaker-independent EmoDB "
          "results, e.g. Schuller et al., ASRU 2009 (feature brute-forcing + SVM); see experiments/multitask_emodb.md")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
