"""Benchmark: the 1-D and 2-D denoising CNNs on real speech (TSP) and real noise.

Protocol: train on TSP speaker FA, test on speaker MC (speaker-disjoint); noise from
Speech Commands' _background_noise_ recordings, each cut into a training part (first
75 %) and a test part (last 25 %, after a 0.5 s gap), so test noise segments were never
heard in training. Test mixtures: every MC utterance at -5, 0, 5 and 10 dB SNR.
Held-out noise types (no target): the recordings in noise/recorded except white_*
(air conditioner, forest, music, rain, water, wind), never used in training.

Targets: both CNNs improve SNR by >= 6 dB at 0 dB input; both beat spectral
gating (noisereduce) in SNR and PESQ on the test set; the 2-D model is at least as good
as the 1-D (test SNR); each trains in <= 10 minutes on 2 CPU cores.

Each model runs as its own script (``hw_cnn1d.py`` / ``hw_cnn2d.py --dataset tsp``) with
``--threads`` torch threads; its outputs go to ``benchmarks/results/denoise_tsp/<script>/``
and the summary table to ``benchmarks/results/denoise_tsp.csv``.

Usage:
    python benchmarks/denoise_tsp.py                       # full protocol, both models
    python benchmarks/denoise_tsp.py --models hw_cnn1d --epochs-1d 10
    python benchmarks/denoise_tsp.py --reduced             # 20 test utterances, PESQ on 10 per SNR
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
from audiolab.core.outputs import format_table

SNRS = ["m5db", "0db", "5db", "10db"]
TRAIN_LIMIT_S = 600.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_root = os.environ.get("AUDIOLAB_DATA") or str(REPO.parent / "shared" / "data")
    p.add_argument("--data-root", default=default_root, help="folder holding tsp/ and noise/ (default %(default)s)")
    p.add_argument("--models", nargs="+", default=["hw_cnn1d", "hw_cnn2d"], choices=["hw_cnn1d", "hw_cnn2d"])
    p.add_argument("--epochs-1d", type=int, default=None, help="epochs for hw_cnn1d (default: the script's)")
    p.add_argument("--epochs-2d", type=int, default=None, help="epochs for hw_cnn2d (default: the script's)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch/OpenMP threads per run (default %(default)s: on a shared, oversubscribed machine 2 "
                        "threads spin and run several times slower; on a dedicated 2-core machine use 2)")
    p.add_argument("--reduced", action="store_true",
                   help="20 test utterances and PESQ/STOI on 10 signals per input SNR (faster evaluation)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "denoise_tsp.csv")
    return p.parse_args(argv)


def run_model(script: str, args) -> tuple[dict, float]:
    out_dir = args.out.parent / "denoise_tsp" / script
    cmd = [sys.executable, str(REPO / f"{script}.py"), "--dataset", "tsp", "--data-root", args.data_root,
           "--out-dir", str(out_dir), "--threads", str(args.threads), "--seed", str(args.seed), "--device", "cpu"]
    epochs = args.epochs_1d if script == "hw_cnn1d" else args.epochs_2d
    if epochs:
        cmd += ["--epochs", str(epochs)]
    if args.reduced:
        cmd += ["--max-test-utterances", "20", "--pesq-max", "10"]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    print(">>>", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(script) or ln.startswith("[")]
    print("\n".join(lines[-4:]))
    if proc.returncode != 0:
        print(proc.stdout[-3000:])
        raise SystemExit(f"{script} failed with exit status {proc.returncode}")
    return json.loads((out_dir / "metrics.json").read_text()), wall


def row_for(script: str, m: dict, wall: float, set_: str = "test") -> dict:
    key = "test" if set_ == "test" else "heldout"  # metrics.json prefix of the set
    row = {"model": script, "set": set_ if set_ == "test" else "held-out noise types",
           "train_s": m.get("train_seconds"), "wall_s": wall, "epochs": m.get("epochs")}
    for tag in SNRS:
        row[f"dSNR@{tag}"] = m.get(f"{key}_snr_improvement_db_input_{tag}")
    row.update({
        "SNR_dB": m.get(f"{key}_snr_db"), "SI-SNR_dB": m.get(f"{key}_si_snr_db"),
        "PESQ": m.get(f"{key}_pesq"), "STOI": m.get(f"{key}_stoi"),
        "gate_SNR_dB": m.get(f"baseline_gating_{key}_snr_db"), "gate_PESQ": m.get(f"baseline_gating_{key}_pesq"),
        "gate_dSNR@0db": m.get(f"baseline_gating_{key}_snr_improvement_db_input_0db"),
        "noisy_SNR_dB": m.get(f"baseline_noisy_{key}_snr_db"), "noisy_PESQ": m.get(f"baseline_noisy_{key}_pesq"),
        "n_signals": m.get(f"{key}_n_signals"), "n_pesq": m.get(f"{key}_n_pesq_signals"),
    })
    return row


def main(argv=None) -> int:
    args = parse_args(argv)
    root = Path(args.data_root)
    if not (root / "tsp").is_dir() or not (root / "noise" / "speech_commands_background").is_dir():
        print(f"error: {root} lacks tsp/ or noise/speech_commands_background/; pass --data-root", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    results, rows = {}, []
    for script in args.models:
        m, wall = run_model(script, args)
        results[script] = m
        rows.append(row_for(script, m, wall, "test"))
        if m.get("heldout_n_signals"):
            rows.append(row_for(script, m, wall, "heldout"))
    load_after = os.getloadavg()

    cols = ["model", "set", "train_s", "epochs"] + [f"dSNR@{t}" for t in SNRS] + [
        "SNR_dB", "PESQ", "STOI", "gate_SNR_dB", "gate_PESQ", "gate_dSNR@0db", "noisy_SNR_dB", "noisy_PESQ"]
    print()
    print(format_table(rows, cols, floatfmt=".3g"))
    print(f"\nmachine: {os.cpu_count()} CPUs, load average {load_before[0]:.1f} before / {load_after[0]:.1f} after; "
          f"{args.threads} thread(s) per run; {'reduced' if args.reduced else 'full'} evaluation")

    checks = []
    for script, m in results.items():
        checks.append((f"{script}: SNR improvement at 0 dB >= 6 dB",
                       m.get("test_snr_improvement_db_input_0db"), ">=", 6.0))
        checks.append((f"{script}: test SNR beats spectral gating", m.get("test_snr_db"), ">",
                       m.get("baseline_gating_test_snr_db")))
        checks.append((f"{script}: test PESQ beats spectral gating", m.get("test_pesq"), ">",
                       m.get("baseline_gating_test_pesq")))
        checks.append((f"{script}: trains in <= 10 min", m.get("train_seconds"), "<=", TRAIN_LIMIT_S))
    if {"hw_cnn1d", "hw_cnn2d"} <= results.keys():
        checks.append(("2-D >= 1-D in test SNR", results["hw_cnn2d"].get("test_snr_db"), ">=",
                       results["hw_cnn1d"].get("test_snr_db")))
        checks.append(("2-D >= 1-D in test PESQ", results["hw_cnn2d"].get("test_pesq"), ">=",
                       results["hw_cnn1d"].get("test_pesq")))
    print("\ntargets:")
    for name, value, op, bound in checks:
        ok = value is not None and bound is not None and (value >= bound if op == ">=" else
                                                            value > bound if op == ">" else value <= bound)
        shown = "n/a" if value is None else f"{value:.3f}"
        print(f"  [{'PASS' if ok else 'MISS'}] {name}: {shown} {op} {bound if bound is None else round(bound, 3)}")
        rows.append({"model": "target", "set": name, "value": value, "bound": bound, "pass": ok})

    args.out.parent.mkdir(parents=True, exist_ok=True)
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns + ["load_before", "load_after", "threads"])
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "load_before": load_before[0], "load_after": load_after[0], "threads": args.threads})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
