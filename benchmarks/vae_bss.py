"""Benchmark for vae_bss.py against its targets.

Runs ``vae_bss.py images --study`` (MNIST + Fashion-MNIST) and ``vae_bss.py music`` (MIR-1K)
on the real data, then prints a table of each headline metric beside its target and
writes it to ``benchmarks/results/vae_bss.csv`` (plus the loss-study table to
``benchmarks/results/vae_bss_study.csv``).

Targets:
- images: mean per-source PSNR >= 22 dB on 1000 fixed test mixtures;
- music: vocals GNSDR >= 4 dB on the MIR-1K test clips, training <= 20 min on 2 CPU cores.

Usage::

    python benchmarks/vae_bss.py                      # full: images 10 epochs + study, music 20 epochs
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
    "test_psnr_db_mean": (22.0, ">=", "images: mean per-source PSNR (dB)"),
    "test_psnr_db_mnist": (None, "", "images: MNIST digit PSNR (dB)"),
    "test_psnr_db_fashion": (None, "", "images: Fashion-MNIST PSNR (dB)"),
    "test_psnr_db_mixture": (None, "", "images: reconstructed-mixture PSNR (dB)"),
    "test_ssim_mnist": (None, "", "images: MNIST SSIM"),
    "test_ssim_fashion": (None, "", "images: Fashion SSIM"),
    "images_train_seconds": (None, "", "images: training time (s)"),
    "vocals_gnsdr_db": (4.0, ">=", "music: vocals GNSDR (dB), anchor Huang et al. 2014: 7.45"),
    "accompaniment_gnsdr_db": (None, "", "music: accompaniment GNSDR (dB)"),
    "vocals_gsir_db": (None, "", "music: vocals GSIR (dB)"),
    "vocals_gsar_db": (None, "", "music: vocals GSAR (dB)"),
    "music_train_seconds": (1200.0, "<=", "music: training time (s), 2 CPU cores"),
}


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
    p.add_argument("--images-epochs", type=int, default=None, help="default 10 (reduced: 3)")
    p.add_argument("--music-epochs", type=int, default=None, help="default 20 (reduced: 12)")
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
        epochs = args.images_epochs or (3 if args.reduced else 10)
        cmd = base + ["images", "--data-root", str(args.data_root), "--dataset", "mnist_fashion",
                      "--epochs", str(epochs), "--out-dir", str(args.out_dir)]
        if not args.no_study:
            cmd += ["--study"] + (["--study-epochs", "2", "--study-train-pairs", "6000"] if args.reduced else [])
        info["images_load_before"] = load_average()
        info["images_wall_seconds"] = run(cmd, args.out_dir / "images.log")
        info["images_load_after"] = load_average()
    if args.only in (None, "music"):
        epochs = args.music_epochs or (12 if args.reduced else 20)
        cmd = base + ["music", "--data-root", str(args.data_root), "--dataset", "mir1k", "--epochs", str(epochs),
                      "--out-dir", str(args.out_dir)]
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
