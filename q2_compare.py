"""Compare our CTC loss (ctc.ctc_loss) with torch.nn.functional.ctc_loss on the exam's data.

What: the exam's random batch, drawn with a fixed seed exactly as the exam writes it,

    log_probs = torch.randn(50, 16, 20).log_softmax(2)
    targets = torch.randint(1, 20, (16, 30), dtype=torch.long)
    input_lengths = torch.full((16,), 50, dtype=torch.long)
    target_lengths = torch.randint(10, 30, (16,), dtype=torch.long)      # blank = 0

goes through both implementations for every reduction (none, sum, mean), in float32 (the
exam's dtype) and float64. For each row: both losses, their absolute and relative
difference, the largest absolute difference of the gradients w.r.t. log_probs, and median
forward and backward times of both.

Why: the published solution printed "Custom CTC Loss: 5.11" against "PyTorch CTC Loss: 6.35"
and called it a comparison; two correct implementations agree to rounding error, in value
and in gradient. Columns ``*_grad_err_vs_f64`` give each float32 gradient's distance from
the exact one (PyTorch's kernel in float64 on the same inputs): at reduction ``sum`` /
``none`` PyTorch's own float32 gradient is the farther one (it exponentiates
``log(alpha beta) + nll`` with a large nll in float32; ours is float64 inside), so
their difference is PyTorch's rounding, not ours (experiments/ctc.md). The figure shows one example's best (Viterbi)
alignment over its
log_probs and its CTC posterior occupancy (what the gradient pushes towards).

Outputs (outputs/q2_compare/): metrics.json (loss_ours, loss_torch, max_abs_loss_diff,
max_abs_grad_diff, ...), anchors.json, comparison.csv (the table), alignment.png.
"""

from __future__ import annotations

import statistics
import sys
import time

import torch

from audiolab.core.cli import apply_quick, base_parser, int_range, main_guard, script_help
from audiolab.core.outputs import write_csv, format_table, out_dir_for, write_metrics
from audiolab.core.runtime import seed_everything
from audiolab.core.plotting import plot_alignment
from ctc import ctc_loss
from ctc_decode import viterbi_align

REDUCTIONS = ("none", "sum", "mean")
QUICK = {"repeats": 1}  # --quick (a smoke test): one timed repeat per row, unless --repeats is given


def build_parser():
    parser = script_help(base_parser(__doc__, seed=0))
    parser.add_argument("--repeats", type=int_range(1, 1000), default=21,
                        help="timed repeats per row; medians are reported (default %(default)s)")
    parser.add_argument("--example", type=int_range(0, 15), default=0,
                        help="batch item shown in the alignment figure (0-15)")
    return parser


def exam_data(seed: int):
    """The exam's tensors, drawn in the exam's order after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    log_probs = torch.randn(50, 16, 20).log_softmax(2)
    targets = torch.randint(1, 20, (16, 30), dtype=torch.long)
    input_lengths = torch.full((16,), 50, dtype=torch.long)
    target_lengths = torch.randint(10, 30, (16,), dtype=torch.long)
    return log_probs, targets, input_lengths, target_lengths


def run_once(fn, log_probs, targets, input_lengths, target_lengths, reduction):
    """One forward + backward; returns (loss detached, grad, forward s, backward s)."""
    x = log_probs.detach().clone().requires_grad_()
    t0 = time.perf_counter()
    loss = fn(x, targets, input_lengths, target_lengths, blank=0, reduction=reduction)
    t1 = time.perf_counter()
    loss.sum().backward()
    t2 = time.perf_counter()
    return loss.detach(), x.grad, t1 - t0, t2 - t1


def compare(data, dtype: torch.dtype, reduction: str, repeats: int) -> dict:
    """One table row: ours vs torch for one dtype and reduction."""
    log_probs, targets, input_lengths, target_lengths = data
    log_probs = log_probs.to(dtype)
    impls = {"ours": ctc_loss, "torch": torch.nn.functional.ctc_loss}
    results, fwd, bwd = {}, {k: [] for k in impls}, {k: [] for k in impls}
    for r in range(repeats + 1):                 # the first round is a warm-up
        for name, fn in (impls.items() if r % 2 == 0 else reversed(list(impls.items()))):
            loss, grad, tf, tb = run_once(fn, log_probs, targets, input_lengths, target_lengths, reduction)
            results[name] = (loss, grad)
            if r > 0:
                fwd[name].append(tf)
                bwd[name].append(tb)
    (l_ours, g_ours), (l_torch, g_torch) = results["ours"], results["torch"]
    abs_diff = float((l_ours.double() - l_torch.double()).abs().max())
    rel_diff = float(((l_ours.double() - l_torch.double()).abs() / l_torch.double().abs()).max())
    ms = {f"{k}_{p}_ms": statistics.median(v[k]) * 1e3 for p, v in (("fwd", fwd), ("bwd", bwd)) for k in impls}
    # the exact answer for these (rounded) inputs: PyTorch's kernel run in float64
    l_ref, g_ref, _, _ = run_once(torch.nn.functional.ctc_loss, log_probs.double(), targets, input_lengths,
                                  target_lengths, reduction)
    err = {f"{k}_grad_err_vs_f64": float((g.double() - g_ref).abs().max()) for k, (_, g) in results.items()}
    return {
        "dtype": str(dtype).replace("torch.", ""), "reduction": reduction,
        # 'none' gives 16 losses: show their mean, diffs are the max over the 16
        "loss_ours": float(l_ours.double().mean()), "loss_torch": float(l_torch.double().mean()),
        "abs_diff": abs_diff, "rel_diff": rel_diff,
        "max_abs_grad_diff": float((g_ours.double() - g_torch.double()).abs().max()),
        **err, **ms,
    }


def alignment_figure(data, n: int, seed: int, path) -> float:
    """Viterbi path over item ``n``'s log_probs and the CTC occupancy (PNG at ``path``); return the path's log-prob."""
    log_probs, targets, input_lengths, target_lengths = data
    paths, scores = viterbi_align(log_probs, targets, input_lengths, target_lengths)
    x = log_probs.detach().clone().requires_grad_()
    per_item = ctc_loss(x, targets, input_lengths, target_lengths, reduction="none")
    per_item.sum().backward()
    occupancy = log_probs.exp() - x.grad           # PyTorch's gradient convention: exp(lp) - gamma
    plot_alignment(log_probs[:, n], paths[n], targets[n, :target_lengths[n]].tolist(),
                   title=f"exam data (SYNTHETIC random log_probs, seed {seed}), item {n}: best path "
                         f"log-prob {float(scores[n]):.1f} nats, "
                         f"CTC loss -log p = {float(per_item[n].detach()):.1f} nats",
                   out_path=path, occupancy_tc=occupancy[:, n])
    return float(scores[n])


def summary_metrics(rows: list[dict]) -> dict:
    """The headline metrics of the comparison table: float32 mean-reduction losses and times, worst diffs."""
    f32 = [r for r in rows if r["dtype"] == "float32"]
    f64 = [r for r in rows if r["dtype"] == "float64"]
    mean32 = next(r for r in f32 if r["reduction"] == "mean")
    metrics = {
        "loss_ours": mean32["loss_ours"], "loss_torch": mean32["loss_torch"],
        "max_abs_loss_diff": max(r["abs_diff"] for r in f32),
        "max_rel_loss_diff": max(r["rel_diff"] for r in f32),
        "max_abs_grad_diff": max(r["max_abs_grad_diff"] for r in f32),
        "max_abs_grad_err_vs_float64_ours": max(r["ours_grad_err_vs_f64"] for r in f32),
        "max_abs_grad_err_vs_float64_torch": max(r["torch_grad_err_vs_f64"] for r in f32),
        "max_abs_loss_diff_float64": max(r["abs_diff"] for r in f64),
        "max_rel_loss_diff_float64": max(r["rel_diff"] for r in f64),
        "max_abs_grad_diff_float64": max(r["max_abs_grad_diff"] for r in f64),
        "ours_fwd_ms": mean32["ours_fwd_ms"], "torch_fwd_ms": mean32["torch_fwd_ms"],
        "ours_bwd_ms": mean32["ours_bwd_ms"], "torch_bwd_ms": mean32["torch_bwd_ms"],
        "fwd_bwd_time_ratio": (mean32["ours_fwd_ms"] + mean32["ours_bwd_ms"])
                              / (mean32["torch_fwd_ms"] + mean32["torch_bwd_ms"]),
    }
    return metrics


def main(argv=None) -> None:
    argv = None if argv is None else [str(a) for a in argv]
    args = apply_quick(build_parser().parse_args(argv), QUICK, argv)
    seed_everything(args.seed)
    out = out_dir_for(args, "q2_compare")
    data = exam_data(args.seed)
    print(f"exam data (seed {args.seed}): log_probs {tuple(data[0].shape)}, targets {tuple(data[1].shape)}, "
          f"target lengths {data[3].tolist()}; torch {torch.__version__}, {torch.get_num_threads()} threads")

    rows = [compare(data, dtype, red, args.repeats) for dtype in (torch.float32, torch.float64) for red in REDUCTIONS]
    print(format_table(rows, floatfmt=".4g"))
    write_csv(out / "comparison.csv", rows)

    viterbi_score = alignment_figure(data, args.example, args.seed, out / "alignment.png")
    metrics = summary_metrics(rows)
    metrics.update(viterbi_score_example=viterbi_score, repeats=args.repeats)
    anchors = [
        {"metric": "max_abs_loss_diff", "anchor": 6.35 - 5.11,
         "source": "published exam solution: 'Custom CTC Loss: 5.11' vs 'PyTorch CTC Loss: 6.35'"},
        {"metric": "max_rel_loss_diff", "anchor": 1e-6, "source": "target (float32)"},
        {"metric": "max_abs_grad_diff", "anchor": 1e-5, "source": "target (float32)"},
        {"metric": "max_rel_loss_diff_float64", "anchor": 1e-10, "source": "target (float64)"},
        {"metric": "fwd_bwd_time_ratio", "anchor": 5.0, "source": "target at the exam's shape (ours/torch)"},
    ]
    write_metrics(out, metrics, args=args, dataset="exam_random_log_probs", data_source="synthetic", device="cpu",
                  anchors=anchors)
    print(f"q2_compare (exam's random data, seed {args.seed}): loss ours {metrics['loss_ours']:.6f} vs torch "
          f"{metrics['loss_torch']:.6f}; max |loss diff| {metrics['max_abs_loss_diff']:.2e} (rel "
          f"{metrics['max_rel_loss_diff']:.2e}), max |grad diff| {metrics['max_abs_grad_diff']:.2e} (float32); "
          f"fwd+bwd time ours/torch {metrics['fwd_bwd_time_ratio']:.2f}")


if __name__ == "__main__":
    sys.exit(main_guard(main))
