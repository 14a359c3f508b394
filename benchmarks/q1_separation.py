"""Benchmark for question 1: SI-SNR and training time of the LSTM separator.

Runs q1_generate.py and q1_train_lstm.py (default settings: 100 examples, 10 epochs)
in a temporary folder for each seed, reads their metrics.json and prints a table
against the targets (mean test SI-SNR >= 35 dB, training <= 60 s on a 2-core CPU).
Writes benchmarks/results/q1_separation.csv.

Usage: python benchmarks/q1_separation.py [--seeds 0 1 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
from audiolab.core.outputs import format_table, write_csv

TARGET_SI_SNR_DB, TARGET_SECONDS = 35.0, 60.0


def run(seed: int, threads: int, epochs: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        for cmd in (["q1_generate.py", "--seed", str(seed)],
                    ["q1_train_lstm.py", "--seed", str(seed), "--epochs", str(epochs), "--device", "cpu"]):
            subprocess.run([sys.executable, str(REPO / cmd[0]), *cmd[1:]], cwd=tmp, env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        m = json.loads((Path(tmp) / "outputs/q1_train_lstm/metrics.json").read_text())
    return {"seed": seed, "epochs": m["epochs"], "threads": threads, "n_params": m["n_params"],
            "test_si_snr_db": m["test_si_snr_db"], "test_si_snr_db_source1": m["test_si_snr_db_source1"],
            "test_si_snr_db_source2": m["test_si_snr_db_source2"], "test_si_snr_db_min": m["test_si_snr_db_min"],
            "test_si_snri_db": m["test_si_snri_db"], "train_seconds": m["train_seconds"],
            "meets_si_snr": m["test_si_snr_db"] >= TARGET_SI_SNR_DB, "meets_time": m["train_seconds"] <= TARGET_SECONDS}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default %(default)s)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--csv", type=Path, default=REPO / "benchmarks/results/q1_separation.csv")
    args = p.parse_args()
    rows = [run(s, args.threads, args.epochs) for s in args.seeds]
    print(format_table(rows))
    print(f"targets: test_si_snr_db >= {TARGET_SI_SNR_DB}, train_seconds <= {TARGET_SECONDS} (2-core CPU)")
    write_csv(args.csv, rows)
    print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
