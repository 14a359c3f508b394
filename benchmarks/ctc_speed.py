"""Speed of our CTC loss (ctc.ctc_loss) against PyTorch's kernel, in one run.

For each shape (T, N, C, S) it times, interleaved so that both see the same machine load:
forward only (inference: log_probs without grad) and forward + backward (training), for
ours and for ``torch.nn.functional.ctc_loss`` on the same tensors; it reports medians over
``--repeats`` and the ratio ours / torch (below 1 = ours faster). It also checks that both
losses agree. Targets: forward+backward ratio <= 1.0 at (256, 128, 32, 60) and
<= 5.0 at the exam's shape (50, 16, 20, 30).

Data: ``log_probs = randn(T, N, C).log_softmax(2)``, ``targets = randint(1, C, (N, S))``,
``input_lengths = T``, ``target_lengths = randint(S // 3, S, (N,))`` (the exam's
``randint(10, 30)`` at S = 30), float32, CPU (or --device).

    python benchmarks/ctc_speed.py                 # the four shapes of the issue
    python benchmarks/ctc_speed.py --quick         # exam shape + (256, 128, 32, 60), 3 repeats
    python benchmarks/ctc_speed.py --threads 1     # single-threaded comparison

Writes a CSV (default benchmarks/results/ctc_speed.csv) and prints a table; timings are
wall-clock (``*_ms``) and, for forward+backward, CPU time summed over threads
(``*_cpu_ms``); both depend on machine load (printed with the results).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from audiolab.core.outputs import format_table, write_csv
from ctc import ctc_loss

SHAPES = [(50, 16, 20, 30), (256, 128, 32, 60), (500, 32, 30, 100), (1000, 8, 40, 200)]
TARGETS = {(256, 128, 32, 60): 1.0, (50, 16, 20, 30): 5.0}   # max forward+backward ratio ours / torch


def parse_shape(text: str) -> tuple[int, int, int, int]:
    """argparse type: ``T,N,C,S``."""
    try:
        T, N, C, S = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape must be T,N,C,S (four integers), got {text!r}") from None
    if min(T, N, C, S) < 1 or C < 2:
        raise argparse.ArgumentTypeError(f"shape needs T, N, S >= 1 and C >= 2, got {text!r}")
    return T, N, C, S


def make_inputs(T: int, N: int, C: int, S: int, seed: int, device: torch.device):
    gen = torch.Generator().manual_seed(seed)
    log_probs = torch.randn(T, N, C, generator=gen).log_softmax(2).to(device)
    targets = torch.randint(1, C, (N, S), generator=gen).to(device)
    input_lengths = torch.full((N,), T, dtype=torch.long, device=device)
    target_lengths = torch.randint(max(S // 3, 1), S, (N,), generator=gen).to(device) if S > 1 else \
        torch.ones(N, dtype=torch.long, device=device)
    return log_probs, targets, input_lengths, target_lengths


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_once(fn, inputs, backward: bool, device: torch.device) -> tuple[float, float, float]:
    """Wall seconds and CPU seconds (all threads) of one call (forward, or forward + backward), and the loss."""
    log_probs, targets, input_lengths, target_lengths = inputs
    x = log_probs.detach().clone().requires_grad_(backward)
    _sync(device)
    c0, t0 = time.process_time(), time.perf_counter()
    loss = fn(x, targets, input_lengths, target_lengths, blank=0, reduction="mean")
    if backward:
        loss.backward()
    _sync(device)
    return time.perf_counter() - t0, time.process_time() - c0, float(loss.detach())


def bench_shape(shape, repeats: int, seed: int, device: torch.device) -> dict:
    T, N, C, S = shape
    inputs = make_inputs(T, N, C, S, seed, device)
    impls = {"torch": torch.nn.functional.ctc_loss, "ours": ctc_loss}
    times = {(name, bwd): [] for name in impls for bwd in (False, True)}
    cpu = {name: [] for name in impls}
    losses = {}
    for name, fn in impls.items():          # warm-up (workspace buffers, lazy init)
        time_once(fn, inputs, True, device)
    for r in range(repeats):
        order = list(impls.items()) if r % 2 == 0 else list(impls.items())[::-1]
        for bwd in (False, True):
            for name, fn in order:
                seconds, cpu_seconds, loss = time_once(fn, inputs, bwd, device)
                times[(name, bwd)].append(seconds)
                if bwd:
                    cpu[name].append(cpu_seconds)
                losses[name] = loss
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    target = TARGETS.get(tuple(shape))
    ratio_fb = med[("ours", True)] / med[("torch", True)]
    return {
        "T": T, "N": N, "C": C, "S": S,
        "torch_fwd_ms": med[("torch", False)], "ours_fwd_ms": med[("ours", False)],
        "fwd_ratio": med[("ours", False)] / med[("torch", False)],
        "torch_fwd_bwd_ms": med[("torch", True)], "ours_fwd_bwd_ms": med[("ours", True)],
        "fwd_bwd_ratio": ratio_fb,
        "torch_fwd_bwd_cpu_ms": statistics.median(cpu["torch"]) * 1e3,
        "ours_fwd_bwd_cpu_ms": statistics.median(cpu["ours"]) * 1e3,
        "target_ratio": "" if target is None else f"<= {target:g}",
        "met": "" if target is None else ("yes" if ratio_fb <= target else "NO"),
        "rel_loss_diff": abs(losses["ours"] - losses["torch"]) / abs(losses["torch"]),
        "repeats": repeats,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", type=parse_shape, nargs="+", default=None,
                        help="shapes T,N,C,S to time (default: the issue's four)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per shape (default %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="only (50,16,20,30) and (256,128,32,60), 3 repeats")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: PyTorch's default)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", type=Path, default=Path(__file__).resolve().parent / "results" / "ctc_speed.csv",
                        help="where the CSV goes (default %(default)s)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available here")
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = args.shapes or (SHAPES[:2] if args.quick else SHAPES)
    repeats = 3 if args.quick and args.repeats == 7 else args.repeats
    load0 = os.getloadavg()
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
          f"cpus {os.cpu_count()}, load average before {load0[0]:.2f}")
    rows = []
    for shape in shapes:
        rows.append(bench_shape(shape, repeats, args.seed, device))
        print(f"  done {shape}: fwd+bwd ours {rows[-1]['ours_fwd_bwd_ms']:.1f} ms, "
              f"torch {rows[-1]['torch_fwd_bwd_ms']:.1f} ms", flush=True)
    load1 = os.getloadavg()
    print(format_table(rows, floatfmt=".3g"))
    print(f"load average after {load1[0]:.2f}")
    for row in rows:
        row.update({"threads": torch.get_num_threads(), "device": str(device), "load_before": load0[0],
                    "load_after": load1[0]})
    write_csv(args.csv, rows)
    key = next((r for r in rows if (r["T"], r["N"], r["C"], r["S"]) == (256, 128, 32, 60)), rows[-1])
    print(f"wrote {args.csv}; fwd+bwd ratio ours/torch at ({key['T']},{key['N']},{key['C']},{key['S']}) = "
          f"{key['fwd_bwd_ratio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
