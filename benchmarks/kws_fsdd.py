"""Benchmark: speaker-independent digit recognition on FSDD, leave one speaker out (against the targets).

For each fold one FSDD speaker is the test set and the others are trained on (validation:
their recordings 0-4), exactly as ``speechcommands_rnn.py train --dataset fsdd --test-speaker S``
does at its default settings (log-mel features; the training split also holds the default
eSpeak NG renderings of the digit words, ``--synthetic-voices 8``; validation and test clips
are real); every model is trained and evaluated, and the fold's wall time is measured. Targets:
mean test accuracy CNN-LSTM >= 93 %, LSTM >= 88 %; all models
trained and evaluated at the default epochs within 15 minutes per fold on 2 CPU cores.

Usage::

    python benchmarks/kws_fsdd.py                                  # all folds, all models, default epochs
    python benchmarks/kws_fsdd.py --folds nicolas --models lstm,cnn_lstm --epochs 10   # reduced

Prints a table and writes ``benchmarks/results/kws_fsdd.csv`` (per fold and model) and
``kws_fsdd_summary.csv``; each fold's full outputs (figures, confusion matrices, misclassified
WAVs) go to ``benchmarks/results/kws_fsdd/<speaker>/``. Reads FSDD from ``--data-root``
(default ``$AUDIOLAB_DATA``, else ``../shared/data`` beside the repository).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import speechcommands_rnn as kws
from audiolab.data import fsdd
from audiolab.core.outputs import format_table, write_csv
from jobs import REPO, Job, JobFailed, run_jobs, script

TARGETS = {"cnn_lstm": 0.93, "lstm": 0.88}
BUDGET_S = 15 * 60


def default_root() -> Path:
    env = os.environ.get("AUDIOLAB_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=default_root(), help="folder holding fsdd/recordings")
    p.add_argument("--folds", default=None, help="comma list of test speakers (default every speaker)")
    p.add_argument("--models", default=",".join(kws.MODELS), help="comma list of models (default all)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default the script's default)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2, the target machine's cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "kws_fsdd.csv")
    p.add_argument("--jobs", type=int, default=1,
                   help="folds run at the same time, each its own process with --threads threads (default 1)")
    p.add_argument("--extra", default="", help="extra flags passed to speechcommands_rnn.py, e.g. '--hidden 96'")
    args = p.parse_args()
    folder = fsdd.find_fsdd(args.data_root)
    if folder is None:
        print(f"error: FSDD not found under {args.data_root} (expected fsdd/recordings/*.wav)", file=sys.stderr)
        return 2
    speakers = args.folds.split(",") if args.folds else fsdd.fsdd_speakers(folder)
    out_root = args.out.parent / "kws_fsdd"
    rows, fold_rows = [], []

    jobs = []
    for spk in speakers:
        argv = ["train", "--dataset", "fsdd", "--data-root", str(args.data_root), "--test-speaker", spk,
                "--models", args.models, "--seed", str(args.seed), "--out-dir", str(out_root / spk),
                "--device", "cpu", *args.extra.split()]
        if args.epochs:
            argv += ["--epochs", str(args.epochs)]
        jobs.append(Job(spk, script("speechcommands_rnn.py", *argv), out_root / f"{spk}.log"))
    try:
        walls = {name: r.wall_s for name, r in run_jobs(jobs, parallel=args.jobs, threads=args.threads).items()}
    except JobFailed as err:
        print(f"error: fold {err}", file=sys.stderr)
        return 1
    for spk in speakers:
        wall = walls[spk]
        metrics = json.loads((out_root / spk / "metrics.json").read_text())
        epochs = metrics["config"]["epochs"]
        for m in args.models.split(","):
            rows.append({"test_speaker": spk, "model": m, "epochs": epochs,
                         "test_accuracy": metrics[f"test_accuracy_{m}"],
                         "test_macro_f1": metrics[f"test_macro_f1_{m}"],
                         "best_val_accuracy": metrics[f"best_val_accuracy_{m}"],
                         "train_seconds": metrics[f"train_seconds_{m}"], "params": metrics[f"n_params_{m}"]})
        fold_rows.append({"test_speaker": spk, "fold_wall_s": wall, "within_15_min": wall <= BUDGET_S,
                          "train_s_all_models": sum(metrics[f"train_seconds_{m}"] for m in args.models.split(",")),
                          "parallel_folds": args.jobs, "load_avg_1min_at_end": os.getloadavg()[0]})
    summary = []
    for m in args.models.split(","):
        accs = [r["test_accuracy"] for r in rows if r["model"] == m]
        target = TARGETS.get(m)
        mean = sum(accs) / len(accs)
        summary.append({"model": m, "folds": len(accs), "mean_test_accuracy": mean,
                        "min": min(accs), "max": max(accs),
                        "mean_train_s": sum(r["train_seconds"] for r in rows if r["model"] == m) / len(accs),
                        "target": target if target is not None else "",
                        "met": ("yes" if mean >= target else "NO") if target is not None else ""})
    for path, table in ((args.out, rows), (args.out.with_name(args.out.stem + "_summary.csv"), summary),
                        (args.out.with_name(args.out.stem + "_folds.csv"), fold_rows)):
        write_csv(path, table)
    print("\nper fold and model:")
    print(format_table(rows))
    print("\nfold wall time (all models, train + evaluate + outputs):")
    print(format_table(fold_rows))
    print("\nsummary (leave-one-speaker-out, mean over folds):")
    print(format_table(summary))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
