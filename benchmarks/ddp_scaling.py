"""Time per epoch of the keyword CNN-LSTM with 1 and 2 processes (torchrun, DistributedDataParallel).

Trains ``speechcommands_rnn.py``'s CNN-LSTM (its features, augmentation, mixup step and
DataLoader) through ``audiolab.core.train.fit`` with no per-epoch evaluation, so the time per
epoch is training only, in four set-ups:

- 1 process, plain ``python`` (no torchrun; the reference);
- 1 process under ``torchrun`` (process group + DDP wrapper, nothing to share: its overhead);
- 2 processes under ``torchrun``, the script's batch per process (effective batch 2x, half the steps);
- 2 processes, half the batch per process (the same effective batch and steps as 1 process).

Each process runs with one thread (``OMP_NUM_THREADS=1``, gloo backend on the CPU). Prints a
table (median epoch time over the epochs after the first, CPU seconds per epoch summed over
processes, speed-up against the plain run) and writes ``benchmarks/results/ddp_scaling.csv``.
A GPU row is measured only when ``--gpu`` is given on a machine with CUDA (nccl).

Usage::

    python benchmarks/ddp_scaling.py --data-root ../shared/data --dataset speech_commands --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CSV = ROOT / "benchmarks" / "results" / "ddp_scaling.csv"


def worker(args: argparse.Namespace) -> None:
    """One process of a run (under torchrun or not): train the CNN-LSTM, rank 0 writes the timings."""
    import torch
    from torch import nn

    import speechcommands_rnn as sc
    from audiolab.core.runtime import seed_everything, select_device
    from audiolab.core.train import fit, is_main_process

    sargs = sc.parse_args(["train", "--models", "cnn_lstm", "--epochs", str(args.epochs), "--seed", "0",
                           "--batch-size", str(args.batch_size), "--device", args.device,
                           *(["--data-root", str(args.data_root)] if args.data_root else []),
                           "--dataset", args.dataset,
                           *(["--max-per-class", str(args.max_per_class)] if args.max_per_class else [])])
    torch.set_num_threads(1)
    device = select_device(sargs.device)
    data = sc.load_data(sargs)
    n_samples = sc.clip_samples(sargs, data)
    features = sc.make_features(sargs, data, n_samples)
    loaders = sc.make_loaders(sargs, data, n_samples, sc.noise_bank(sargs, data.sample_rate))
    seed_everything(0)
    net = sc.model_from_args("cnn_lstm", sargs, features.n_features, len(data.labels))
    model = sc.KwsModel(features, net)
    optimizer = sc.make_optimizer(sargs, model)
    criterion = nn.CrossEntropyLoss(label_smoothing=sargs.label_smoothing)

    def step(m, batch):  # as speechcommands_rnn.train_one
        wav, y, _, _ = batch
        if sargs.mixup > 0:
            return sc.mixup_step(m, wav, y, criterion, sargs.mixup)[1]
        return criterion(m(wav), y)

    t0 = time.perf_counter()
    history = fit(model, optimizer, loaders["train"], step, sargs.epochs, device=device, progress=False,
                  desc="bench")
    if is_main_process():
        Path(args.json).write_text(json.dumps({
            "epoch_seconds": [r["epoch_seconds"] for r in history], "wall_seconds": time.perf_counter() - t0,
            "cpu_seconds": history.train_cpu_seconds, "world_size": history.world_size,
            "backend": history.backend, "n_train_clips": len(data.split("train")), "dataset": data.name,
            "steps_per_epoch": len(loaders["train"]) // history.world_size, "device": str(device)}))


def launch(args: argparse.Namespace, procs: int, torchrun: bool, batch: int, device: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable]
        if torchrun:
            cmd += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs)]
        cmd += [str(Path(__file__).resolve()), "--worker", "--json", str(out), "--epochs", str(args.epochs),
                "--batch-size", str(batch), "--dataset", args.dataset, "--device", device]
        if args.data_root:
            cmd += ["--data-root", str(Path(args.data_root).resolve())]
        if args.max_per_class:
            cmd += ["--max-per-class", str(args.max_per_class)]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        print(f"$ {' '.join(cmd)}", flush=True)
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"run failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=3, help="epochs per run; the first is left out of the median")
    p.add_argument("--batch-size", type=int, default=64, help="per-process batch of the 1-process runs")
    p.add_argument("--data-root", type=Path, default=None)
    p.add_argument("--dataset", default="auto")
    p.add_argument("--max-per-class", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--gpu", action="store_true", help="also time 1 and 2 GPUs (nccl) where CUDA is available")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)

    from audiolab.core.outputs import format_table, write_csv

    b = args.batch_size
    setups = [("python, 1 process", 1, False, b, "cpu"), ("torchrun, 1 process", 1, True, b, "cpu"),
              ("torchrun, 2 processes", 2, True, b, "cpu"),
              ("torchrun, 2 processes, half batch", 2, True, b // 2, "cpu")]
    if args.gpu:
        setups += [("torchrun, 1 GPU", 1, True, b, "cuda"), ("torchrun, 2 GPUs", 2, True, b, "cuda")]
    rows = []
    for name, procs, torchrun, batch, device in setups:
        r = launch(args, procs, torchrun, batch, device)
        later = r["epoch_seconds"][1:] or r["epoch_seconds"]
        rows.append({"setup": name, "device": r["device"], "backend": r["backend"] or "-", "processes": procs,
                     "batch_per_process": batch, "effective_batch": batch * procs,
                     "steps_per_epoch": r["steps_per_epoch"], "epoch_s_median": statistics.median(later),
                     "cpu_s_per_epoch": r["cpu_seconds"] / len(r["epoch_seconds"]),
                     "clips_per_s": r["n_train_clips"] / statistics.median(later),
                     "epochs": len(r["epoch_seconds"]), "dataset": r["dataset"], "n_train_clips": r["n_train_clips"]})
    base = rows[0]["epoch_s_median"]
    for row in rows:
        row["speedup"] = base / row["epoch_s_median"]
    if not args.gpu:
        rows.append({"setup": "GPU (nccl)", "device": "cuda", "backend": "nccl",
                     "epoch_s_median": float("nan"), "speedup": float("nan"),
                     "dataset": "not measured: no GPU lent to this run (use --gpu)"})
    print(format_table(rows, ["setup", "processes", "batch_per_process", "effective_batch", "steps_per_epoch",
                              "epoch_s_median", "cpu_s_per_epoch", "clips_per_s", "speedup", "dataset"]))
    CSV.parent.mkdir(parents=True, exist_ok=True)
    write_csv(CSV, rows)
    print(f"-> {CSV}")


if __name__ == "__main__":
    main()
