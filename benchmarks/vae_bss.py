"""Benchmark for vae_bss.py against its targets.

Runs ``vae_bss.py images --study`` (MNIST + Fashion-MNIST) and ``vae_bss.py music`` (MIR-1K)
on the real data, then prints a table of each headline metric beside its target and
writes it to ``benchmarks/results/vae_bss.csv`` (plus the loss-study table to
``benchmarks/results/vae_bss_study.csv``).

Targets:
- images: mean per-source PSNR >= 30 dB on 1000 fixed test mixtures, training <= 10 min on 2 CPU cores;
- music: vocals GNSDR >= 6.5 dB on the 63 MIR-1K test clips (trained on the 175 clips of the two training
  singers), training <= 20 min on 2 CPU cores; REPET-SIM (no training) scored on the same clips, and
  the published rows of Huang et al. quoted beside them.

Usage::

    python benchmarks/vae_bss.py                      # full: the scripts' defaults (images + study, music)
    python benchmarks/vae_bss.py --reduced            # the reduced sizes below (shared / slow CPUs)
    python benchmarks/vae_bss.py --only music --music-epochs 10

Data: ``--data-root`` (default ``$AUDIOLAB_DATA``, else ``../shared/data`` beside the repo).
The machine load (1-minute load average) is recorded before and after each run, since
wall-clock numbers on a shared machine mean little without it.
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

TARGETS = {  # metric -> (target, comparison, what)
    "test_psnr_db_mean": (30.0, ">=", "images: mean per-source PSNR (dB)"),
    "test_psnr_db_mnist": (None, "", "images: MNIST digit PSNR (dB)"),
    "test_psnr_db_fashion": (None, "", "images: Fashion-MNIST PSNR (dB)"),
    "test_psnr_db_mixture": (None, "", "images: reconstructed-mixture PSNR (dB)"),
    "test_ssim_mnist": (None, "", "images: MNIST SSIM"),
    "test_ssim_fashion": (None, "", "images: Fashion SSIM"),
    "images_train_seconds": (600.0, "<=", "images: training time (s), 2 CPU cores"),
    "vocals_gnsdr_db": (6.5, ">=", "music: vocals GNSDR (dB), 63 MIR-1K test clips"),
    "vocals_gsir_db": (None, "", "music: vocals GSIR (dB)"),
    "vocals_gsar_db": (None, "", "music: vocals GSAR (dB)"),
    "accompaniment_gnsdr_db": (None, "", "music: accompaniment GNSDR (dB)"),
    "accompaniment_gsir_db": (None, "", "music: accompaniment GSIR (dB)"),
    "accompaniment_gsar_db": (None, "", "music: accompaniment GSAR (dB)"),
    "repet_sim_vocals_gnsdr_db": (None, "", "music: REPET-SIM vocals GNSDR (dB), same clips, no training"),
    "repet_sim_vocals_gsir_db": (None, "", "music: REPET-SIM vocals GSIR (dB)"),
    "repet_sim_vocals_gsar_db": (None, "", "music: REPET-SIM vocals GSAR (dB)"),
    "repet_sim_accompaniment_gnsdr_db": (None, "", "music: REPET-SIM accompaniment GNSDR (dB)"),
    "music_train_seconds": (1200.0, "<=", "music: training time (s), 2 CPU cores"),
}
# Huang et al. (ISMIR 2014, IEEE/ACM TASLP 2015), vocals GNSDR / GSIR / GSAR in dB on the 825 clips of 17 singers
# (trained on the same 175 clips as here): quoted beside ours, a different (larger) test set
PUBLISHED = [("RPCA", 3.15, 4.43, 11.09), ("RNMF", 4.97, 7.66, 10.03), ("DNN", 5.64, 8.87, 9.73),
             ("DRNN", 7.27, 11.98, 9.99), ("DRNN + discriminative training", 7.45, 13.08, 9.68)]


def default_data_root() -> Path:
    env = os.environ.get("AUDIOLAB_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def run(cmd: list[str], log: Path) -> float:
    """Run a command with its output in ``log``; return wall seconds; exit with its status on failure."""
    print(">>>", " ".join(cmd), f"(log: {log})", flush=True)
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        print(f"failed with status {proc.returncode}; last lines of {log}:\n" + "".join(open(log).readlines()[-20:]))
        sys.exit(proc.returncode)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=default_data_root())
    p.add_argument("--only", choices=["images", "music"], default=None, help="run one part only")
    p.add_argument("--reduced", action="store_true",
                   help="reduced sizes: images 3 epochs, study 2 epochs x 6000 mixtures, music 12 epochs")
    p.add_argument("--images-epochs", type=int, default=None, help="default: the script's (reduced: 3)")
    p.add_argument("--music-epochs", type=int, default=None, help="default: the script's (reduced: 12)")
    p.add_argument("--no-study", action="store_true", help="skip the images loss study")
    p.add_argument("--threads", type=int, default=2, help="OMP/torch threads for the runs (default 2 cores)")
    p.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results" / "vae_bss_run")
    args = p.parse_args(argv)
    if not args.data_root.is_dir():
        print(f"error: data root {args.data_root} not found (set AUDIOLAB_DATA or --data-root)", file=sys.stderr)
        return 2
    results = REPO / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    base = [sys.executable, str(REPO / "vae_bss.py")]
    info = {}
    if args.only in (None, "images"):
        epochs = args.images_epochs or (3 if args.reduced else None)
        cmd = base + ["images", "--data-root", str(args.data_root), "--dataset", "mnist_fashion",
                      "--out-dir", str(args.out_dir)] + (["--epochs", str(epochs)] if epochs else [])
        if not args.no_study:
            cmd += ["--study"] + (["--study-epochs", "2", "--study-train-pairs", "6000"] if args.reduced else [])
        info["images_load_before"] = load_average()
        info["images_wall_seconds"] = run(cmd, args.out_dir / "images.log")
        info["images_load_after"] = load_average()
    if args.only in (None, "music"):
        epochs = args.music_epochs or (12 if args.reduced else None)
        cmd = base + ["music", "--data-root", str(args.data_root), "--dataset", "mir1k",
                      "--out-dir", str(args.out_dir)] + (["--epochs", str(epochs)] if epochs else [])
        info["music_load_before"] = load_average()
        info["music_wall_seconds"] = run(cmd, args.out_dir / "music.log")
        info["music_load_after"] = load_average()
    metrics = json.loads((args.out_dir / "metrics.json").read_text())
    rows = []
    for key, (target, op, what) in TARGETS.items():
        value = metrics.get(key)
        if value is None:
            continue
        status = ""
        if target is not None:
            ok = value >= target if op == ">=" else value <= target
            status = "met" if ok else "MISSED"
        rows.append({"metric": key, "what": what, "value": float(value),
                     "target": f"{op} {target:g}" if target is not None else "", "status": status})
    print(format_table(rows, ["metric", "value", "target", "status", "what"], floatfmt=".2f"))
    if args.only in (None, "music"):
        print("\npublished, Huang et al. 2014/2015 (825 test clips of 17 singers; quoted, not re-run):")
        print(format_table([{"method": m, "vocals_gnsdr_db": g, "vocals_gsir_db": i, "vocals_gsar_db": a}
                            for m, g, i, a in PUBLISHED], floatfmt=".2f"))
    print("runs:", ", ".join(f"{k}={v:.2f}" for k, v in info.items()))
    with open(results / "vae_bss.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["metric", "value", "target", "status", "what"])
        w.writeheader()
        w.writerows(rows)
        for k, v in info.items():
            w.writerow({"metric": k, "value": v, "target": "", "status": "", "what": "benchmark run info"})
    study = args.out_dir / "images" / "study.csv"
    if study.exists() and args.only in (None, "images") and not args.no_study:
        (results / "vae_bss_study.csv").write_text(study.read_text())
        with open(study) as fh:
            srows = list(csv.DictReader(fh))
        for r in srows:
            for k in list(r):
                try:
                    r[k] = float(r[k])
                except ValueError:
                    pass
        print("\nloss study (test pairs):")
        print(format_table(srows, ["model", "output", "loss", "beta", "psnr_mnist_db", "psnr_fashion_db",
                                   "psnr_mean_db", "ssim_mnist", "ssim_fashion", "psnr_mixture_db",
                                   "train_seconds"], floatfmt=".2f"))
    print(f"results: {results / 'vae_bss.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
