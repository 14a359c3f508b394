"""Benchmark: q2_multitask.py leave-one-actor-out on real EMOVO (against the targets).

Trains the multi-task model (CTC characters + emotion) on three EMOVO actors and tests on
the fourth, for each of f1, f2, m1, m2, by running the script itself (so the numbers are
exactly what a user gets), then prints a table and writes
``benchmarks/results/multitask_emovo.csv``. Per-fold outputs (metrics.json, figures,
predictions) go to ``benchmarks/results/multitask_emovo/<actor>/``.

Targets: mean emotion accuracy >= 0.50 (7 classes, chance 0.143) and mean CER
<= 0.15 on the unseen actor; a full default run of the script (one train/test split, i.e.
one fold here) within 15 minutes on 2 CPU cores. With ``--jobs 2 --threads 1`` each fold
has one core to itself at most, so a fold's ``wall_s`` under 15 minutes is a conservative
check of that target. EMOVO's 14 sentences repeat across actors, so the CER measures generalisation to
new voices, not to new sentences.

Usage:
    python benchmarks/multitask_emovo.py                       # 4 folds, script defaults
    python benchmarks/multitask_emovo.py --folds f1,m1         # a reduced run
    python benchmarks/multitask_emovo.py --jobs 2 --threads 1  # two folds at a time, one core each
    python benchmarks/multitask_emovo.py --epochs 10 -- --hidden 96   # extra script flags after --
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from audiolab.core.outputs import format_table, write_csv
from jobs import REPO, Job, JobFailed, run_jobs, script

TARGET_ACCURACY, TARGET_CER, TARGET_MINUTES = 0.50, 0.15, 15.0


def default_data_root() -> Path:
    env = os.environ.get("AUDIOLAB_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def run_folds(dataset: str, folds: list[str], results_dir: Path, data_root: Path, extra: list[str], *,
              threads: int | None = None, jobs: int = 1, ablation: bool = False, reuse: bool = False,
              fold_flag: str = "--test-speakers") -> dict | int:
    """Run ``q2_multitask.py --dataset DATASET --test-speakers FOLD`` for each fold, ``jobs`` at a time
    (:func:`jobs.run_jobs`), into ``results_dir/<fold>/`` (metrics.json, figures, ``run.log``). With
    ``reuse`` a fold whose metrics.json exists is read instead of trained. Returns ``{fold: (metrics dict,
    wall seconds, CPU seconds)}`` in fold order (CPU = user + system time of the fold's own process; nan
    for reused folds), or the exit status of the first fold that failed (the others are stopped)."""
    done: dict[str, tuple] = {}
    to_run = []
    for fold in folds:
        out_dir = results_dir / fold
        if reuse and (out_dir / "metrics.json").is_file():
            metrics = json.loads((out_dir / "metrics.json").read_text())
            if ablation and "emotion_only_test_emotion_accuracy" not in metrics:
                print(f"fold {fold}: {out_dir / 'metrics.json'} has no ablation results; training it again")
            else:
                done[fold] = (metrics, float("nan"), float("nan"))
                print(f"fold {fold}: reusing {out_dir / 'metrics.json'} (wall time not measured here)")
                continue
        argv = script("q2_multitask.py", "--dataset", dataset, "--data-root", str(data_root), fold_flag, fold,
                      "--out-dir", str(out_dir), *extra, *(["--ablation"] if ablation else []))
        to_run.append(Job(fold, argv, out_dir / "run.log"))
    try:
        results = run_jobs(to_run, parallel=jobs, threads=threads)
    except JobFailed as err:
        print(f"fold {err}", file=sys.stderr)
        return err.result.returncode
    for fold, r in results.items():
        done[fold] = (json.loads((results_dir / fold / "metrics.json").read_text()), r.wall_s, r.cpu_s)
    return {fold: done[fold] for fold in folds}


def mean_row(rows: list[dict], key: str) -> dict:
    """A ``{key: "mean", column: mean over rows}`` row (NaN values, e.g. reused folds' wall time, skipped)."""
    mean = {key: "mean"}
    for k in rows[0]:
        if k != key:
            values = [r[k] for r in rows if isinstance(r.get(k), (int, float)) and r[k] == r[k]]
            mean[k] = sum(values) / len(values) if values else float("nan")
    return mean


def fold_row(actor: str, m: dict, wall: float) -> dict:
    row = {"test_actor": actor, "test_cer": m["test_cer"], "test_wer": m["test_wer"],
           "emotion_accuracy": m["test_emotion_accuracy"], "emotion_macro_f1": m["test_emotion_macro_f1"],
           "epochs": m["epochs"], "train_s": m["train_seconds"], "wall_s": wall}
    for k in ("asr_only_test_cer", "emotion_only_test_emotion_accuracy"):
        if k in m:
            row[k] = m[k]
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=default_data_root(),
                   help="folder holding emovo/ (default $AUDIOLAB_DATA, else ../shared/data)")
    p.add_argument("--folds", default="f1,f2,m1,m2", help="test actors, comma-separated (default %(default)s)")
    p.add_argument("--epochs", type=int, default=None, help="override the script's default epochs")
    p.add_argument("--threads", type=int, default=None, help="OMP/torch threads for each run (default: torch's)")
    p.add_argument("--jobs", type=int, default=1,
                   help="folds run at the same time (default 1; 2 on a 2-core machine with --threads 1)")
    p.add_argument("--ablation", action="store_true", help="also train ASR-only and emotion-only per fold")
    p.add_argument("--reuse", action="store_true",
                   help="keep folds whose metrics.json is already in the results folder (an interrupted "
                        "benchmark, or a fold run by hand with the same flags) instead of training them again")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "multitask_emovo.csv")
    p.add_argument("extra", nargs="*", help="extra q2_multitask.py flags (after --)")
    args = p.parse_args(argv)
    if not (args.data_root / "emovo").is_dir():
        print(f"error: {args.data_root / 'emovo'} not found; set --data-root or AUDIOLAB_DATA", file=sys.stderr)
        return 2
    folds = [f.strip() for f in args.folds.split(",") if f.strip()]
    t_all = time.perf_counter()
    extra = [*args.extra, *(["--epochs", str(args.epochs)] if args.epochs else [])]
    done = run_folds("emovo", folds, args.out.parent / "multitask_emovo", args.data_root, extra,
                     threads=args.threads, jobs=args.jobs, ablation=args.ablation, reuse=args.reuse)
    if isinstance(done, int):
        return done
    done = {actor: fold_row(actor, metrics, wall) for actor, (metrics, wall, _cpu) in done.items()}
    rows = [done[a] for a in folds]
    total_min = (time.perf_counter() - t_all) / 60
    mean = mean_row(rows, "test_actor")
    rows.append(mean)
    columns = list(rows[0].keys())
    print(format_table(rows, columns))
    write_csv(args.out, rows)
    walls = [r["wall_s"] for r in rows[:-1] if r["wall_s"] == r["wall_s"]]
    slowest_min = max(walls) / 60 if walls else float("nan")
    ok_acc = mean["emotion_accuracy"] >= TARGET_ACCURACY
    ok_cer = mean["test_cer"] <= TARGET_CER
    n = len(rows) - 1
    print(f"targets: mean emotion accuracy {mean['emotion_accuracy']:.3f} (>= {TARGET_ACCURACY}: "
          f"{'met' if ok_acc else 'MISSED'}), mean CER {mean['test_cer']:.3f} (<= {TARGET_CER}: "
          f"{'met' if ok_cer else 'MISSED'}), slowest timed fold {slowest_min:.1f} min "
          f"(target: one run <= {TARGET_MINUTES:g} min on 2 CPU cores; {args.jobs} fold(s) at a time), "
          f"{n} fold(s) in {total_min:.1f} min{'' if n == 4 else ' (reduced run)'}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
