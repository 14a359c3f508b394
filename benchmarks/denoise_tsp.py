"""Benchmark: the 1-D and 2-D denoising CNNs on real speech (TSP) and real noise.

Protocol: train on TSP speaker FA (plus, by the scripts' default since issue 29, 200 clips per
epoch drawn from the EMOVO and EmoDB speakers under the data root: other voices, other
languages), test on speaker MC (speaker-disjoint, never trained on); noise from
Speech Commands' _background_noise_ recordings, each cut into a training part (first
75 %) and a test part (last 25 %, after a 0.5 s gap), so test noise segments were never
heard in training. Test mixtures: every MC utterance at -5, 0, 5 and 10 dB SNR.
Held-out noise types (no target): the recordings in noise/recorded except white_*
(air conditioner, forest, music, rain, water, wind), never used in training.

Targets (issue 29), for both CNNs at 0 dB input: PESQ >= 1.9, STOI >= 0.85, SNR improvement
>= 9 dB, each above spectral gating (noisereduce); on the held-out noise types STOI above the
noisy input's; at -5, 5 and 10 dB an SNR improvement no worse than before the issue
(experiments/denoise.md); each trains in <= 10 minutes on 2 CPU cores. The rows beside the
models: the noisy input, spectral gating and the oracle masks (ideal ratio mask |S|/(|S|+|N|)
and phase-sensitive mask, noisy phase, the models' STFT): what a magnitude mask can reach.

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


METHOD_PREFIX = {"noisy": "baseline_noisy_", "spectral gating": "baseline_gating_", "oracle IRM": "oracle_irm_",
                 "oracle PSM": "oracle_psm_"}
# the models' SNR improvement per input SNR before issue 29 (experiments/denoise.md, b7e00af): "no worse than today"
BEFORE_DSNR = {"hw_cnn1d": {"m5db": 8.92, "5db": 5.20, "10db": 2.47},
               "hw_cnn2d": {"m5db": 9.52, "5db": 6.19, "10db": 3.78}}


def row_for(method: str, prefix: str, m: dict, set_: str = "test", wall: float | None = None) -> dict:
    """One table row: ``method``'s scores in metrics.json ``m`` (keys ``{prefix}{set}_...``) on one set."""
    key = f"{prefix}{set_}_"
    row = {"method": method, "set": "test" if set_ == "test" else "held-out noise types"}
    for tag in SNRS:
        row[f"dSNR@{tag}"] = 0.0 if method == "noisy" else m.get(f"{key}snr_improvement_db_input_{tag}")
    row.update({"PESQ@0db": m.get(f"{key}pesq_input_0db"), "STOI@0db": m.get(f"{key}stoi_input_0db"),
                "SNR_dB": m.get(f"{key}snr_db"), "PESQ": m.get(f"{key}pesq"), "STOI": m.get(f"{key}stoi")})
    if not prefix:  # a model
        row.update({"train_s": m.get("train_seconds"), "train_cpu_s": m.get("train_cpu_seconds"),
                    "wall_s": wall, "epochs": m.get("epochs"), "hop": m.get("hop_length"),
                    "n_signals": m.get(f"{set_}_n_signals"), "n_pesq": m.get(f"{set_}_n_pesq_signals")})
    return row


def goal_checks(script: str, m: dict) -> list[tuple]:
    """Issue 29's goal for one model: ``(name, value, op, bound)``."""
    g = "baseline_gating_test_"
    checks = [(f"{script}: PESQ at 0 dB >= 1.9", m.get("test_pesq_input_0db"), ">=", 1.9),
              (f"{script}: STOI at 0 dB >= 0.85", m.get("test_stoi_input_0db"), ">=", 0.85),
              (f"{script}: SNR improvement at 0 dB >= 9 dB", m.get("test_snr_improvement_db_input_0db"), ">=", 9.0)]
    for name, k in (("PESQ", "pesq"), ("STOI", "stoi"), ("SNR", "snr_db")):
        checks.append((f"{script}: {name} at 0 dB above spectral gating", m.get(f"test_{k}_input_0db"), ">",
                       m.get(f"{g}{k}_input_0db")))
    checks.append((f"{script}: held-out noise STOI above the noisy input's", m.get("heldout_stoi"), ">",
                   m.get("baseline_noisy_heldout_stoi")))
    for tag, before in BEFORE_DSNR.get(script, {}).items():
        checks.append((f"{script}: SNR improvement at {tag} no worse than before issue 29",
                       m.get(f"test_snr_improvement_db_input_{tag}"), ">=", before))
    checks.append((f"{script}: trains in <= 10 min", m.get("train_seconds"), "<=", TRAIN_LIMIT_S))
    return checks


def main(argv=None) -> int:
    args = parse_args(argv)
    root = Path(args.data_root)
    if not (root / "tsp").is_dir() or not (root / "noise" / "speech_commands_background").is_dir():
        print(f"error: {root} lacks tsp/ or noise/speech_commands_background/; pass --data-root", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    results, walls = {}, {}
    for script in args.models:
        results[script], walls[script] = run_model(script, args)
    load_after = os.getloadavg()

    rows = []
    first = results[args.models[0]]
    for set_ in ("test", "heldout"):
        if not first.get(f"{set_}_n_signals"):
            continue
        rows += [row_for(name, prefix, first, set_) for name, prefix in METHOD_PREFIX.items()]
        rows += [row_for(script, "", m, set_, walls[script]) for script, m in results.items()]
    cols = ["method", "set"] + [f"dSNR@{t}" for t in SNRS] + ["PESQ@0db", "STOI@0db", "SNR_dB", "PESQ", "STOI",
                                                              "train_s", "train_cpu_s", "hop"]
    print()
    print(format_table(rows, cols, floatfmt=".3g"))
    print(f"\nmachine: {os.cpu_count()} CPUs, load average {load_before[0]:.1f} before / {load_after[0]:.1f} after; "
          f"{args.threads} thread(s) per run; {'reduced' if args.reduced else 'full'} evaluation; noisy, gating and "
          f"oracle rows from {args.models[0]}'s run (the same test signals in every run)")

    checks = [c for script, m in results.items() for c in goal_checks(script, m)]
    print("\ntargets:")
    for name, value, op, bound in checks:
        ok = value is not None and bound is not None and (value >= bound if op == ">=" else
                                                            value > bound if op == ">" else value <= bound)
        shown = "n/a" if value is None else f"{value:.3f}"
        print(f"  [{'PASS' if ok else 'MISS'}] {name}: {shown} {op} {bound if bound is None else round(bound, 3)}")
        rows.append({"method": "target", "set": name, "value": value, "bound": bound, "pass": ok})

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
