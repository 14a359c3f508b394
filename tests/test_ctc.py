"""Tests of ctc.py (CTC loss against PyTorch, gradients, Viterbi alignment, greedy decoding, bad input)
and of the q2_ctc.py and q2_compare.py scripts.

Reference for float32 cases: PyTorch's kernel run in float64 on the same (float32-rounded)
values, i.e. the exact answer for those inputs. PyTorch's own float32 kernel is itself
~1e-5 off in gradient when a loss is ~100 nats (it exponentiates log(alpha beta) + nll in
float32); ours computes in float64 inside, so comparing against PyTorch-float32 would test
PyTorch's rounding. Direct float32-vs-float32 checks are done where PyTorch's float32 error is
small (the exam data with reduction mean, short sequences).
"""

from __future__ import annotations

import itertools
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

import ctc
import q2_ctc
from ctc import ctc_feasible, ctc_loss
from ctc_decode import greedy_decode, viterbi_align

TOL = {torch.float32: dict(loss_rel=1e-6, grad_abs=1e-5), torch.float64: dict(loss_rel=1e-10, grad_abs=1e-10)}


def random_case(gen: torch.Generator, T: int, N: int, C: int, S: int, dtype=torch.float64, sharp: float = 1.0,
                repeats: bool = True):
    """Random log_probs and padded targets; ``repeats`` uses a tiny alphabet so labels repeat."""
    log_probs = (torch.randn(T, N, C, generator=gen, dtype=torch.float64) * sharp).log_softmax(2).to(dtype)
    hi = min(C, 3) if repeats else C
    targets = torch.randint(1, hi, (N, max(S, 1)), generator=gen)
    input_lengths = torch.randint(max(T // 2, 1), T + 1, (N,), generator=gen)
    target_lengths = torch.randint(0, S + 1, (N,), generator=gen)
    return log_probs, targets, input_lengths, target_lengths


def both(log_probs, targets, input_lengths, target_lengths, reduction="mean", zero_infinity=False, blank=0):
    """(ours loss, ours grad, reference loss, reference grad); the reference is PyTorch in float64."""
    a = log_probs.detach().clone().requires_grad_()
    b = log_probs.detach().double().clone().requires_grad_()
    la = ctc_loss(a, targets, input_lengths, target_lengths, blank=blank, reduction=reduction,
                  zero_infinity=zero_infinity)
    lb = F.ctc_loss(b, targets, input_lengths, target_lengths, blank=blank, reduction=reduction,
                    zero_infinity=zero_infinity)
    la.sum().backward()
    lb.sum().backward()
    return la.detach(), a.grad, lb.detach(), b.grad


def assert_close(la, ga, lb, gb, dtype):
    tol = TOL[dtype]
    assert la.dtype == dtype and ga.dtype == dtype
    la, lb = la.double(), lb.double()
    assert torch.equal(torch.isinf(la), torch.isinf(lb)), (la, lb)
    fin = torch.isfinite(lb)
    rel = ((la[fin] - lb[fin]).abs() / lb[fin].abs().clamp(min=1e-30)).max() if fin.any() else torch.tensor(0.0)
    # a loss that is exactly 0 (empty target, empty input) must be 0
    assert float(rel) <= tol["loss_rel"] or float((la[fin] - lb[fin]).abs().max()) <= 1e-12, (la, lb)
    assert torch.equal(torch.isnan(ga), torch.isnan(gb)), "NaN gradient pattern differs from PyTorch"
    ok = ~torch.isnan(gb)
    if ok.any():
        assert float((ga.double()[ok] - gb.double()[ok]).abs().max()) <= tol["grad_abs"]


# ------------------------------------------------------------------------------ loss
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_random_cases_match_torch(dtype, reduction):
    gen = torch.Generator().manual_seed(1 if dtype == torch.float32 else 2)
    for _ in range(12):
        T = int(torch.randint(1, 40, (), generator=gen))
        N = int(torch.randint(1, 6, (), generator=gen))
        C = int(torch.randint(2, 8, (), generator=gen))
        S = int(torch.randint(0, 12, (), generator=gen))
        case = random_case(gen, T, N, C, S, dtype, sharp=float(torch.rand((), generator=gen)) * 4,
                           repeats=bool(torch.rand((), generator=gen) < 0.5))
        for zero_infinity in (False, True):
            assert_close(*both(*case, reduction=reduction, zero_infinity=zero_infinity), dtype)


def test_exam_data_matches_torch_float32_directly():
    """The exam's batch against PyTorch's float32 kernel itself (reduction mean, the default)."""
    torch.manual_seed(0)
    log_probs = torch.randn(50, 16, 20).log_softmax(2)
    targets = torch.randint(1, 20, (16, 30), dtype=torch.long)
    input_lengths = torch.full((16,), 50, dtype=torch.long)
    target_lengths = torch.randint(10, 30, (16,), dtype=torch.long)
    a, b = log_probs.clone().requires_grad_(), log_probs.clone().requires_grad_()
    la, lb = ctc_loss(a, targets, input_lengths, target_lengths), F.ctc_loss(b, targets, input_lengths, target_lengths)
    la.backward()
    lb.backward()
    assert abs(float(la.detach()) - float(lb.detach())) <= 1e-6 * abs(float(lb.detach()))
    assert float((a.grad - b.grad).abs().max()) <= 1e-5
    # and the per-item losses, float32 against float32
    lo = ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="none")
    lt = F.ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="none")
    assert float(((lo - lt).abs() / lt).max()) <= 1e-6


def test_larger_batch_matches_torch():
    gen = torch.Generator().manual_seed(5)
    case = random_case(gen, 120, 24, 12, 30, torch.float64, sharp=3.0, repeats=False)
    assert_close(*both(*case, reduction="sum"), torch.float64)


def test_repeated_labels_minimal_feasible_T():
    """T = L + repeats is the shortest feasible input; one frame less is infeasible."""
    targets = torch.tensor([[1, 1, 2, 2, 2, 3]])
    L, reps = 6, 3                                 # 1-1, 2-2, 2-2 need a blank between
    gen = torch.Generator().manual_seed(3)
    for T, feasible in ((L + reps, True), (L + reps - 1, False), (L + reps + 1, True)):
        lp = torch.randn(T, 1, 4, generator=gen, dtype=torch.float64).log_softmax(2)
        assert bool(ctc_feasible(torch.tensor([T]), targets, torch.tensor([L]))) == feasible
        la, ga, lb, gb = both(lp, targets, torch.tensor([T]), torch.tensor([L]), reduction="none")
        assert math.isfinite(float(la)) == feasible
        assert_close(la, ga, lb, gb, torch.float64)
    # at the minimal T there is exactly one alignment: loss = -sum of its log-probs
    T = L + reps
    lp = torch.randn(T, 1, 4, generator=gen, dtype=torch.float64).log_softmax(2)
    only = [1, 0, 1, 2, 0, 2, 0, 2, 3]
    expected = -sum(float(lp[t, 0, k]) for t, k in enumerate(only))
    assert float(ctc_loss(lp, targets, [T], [L], reduction="sum")) == pytest.approx(expected, rel=1e-12)


def test_zero_length_targets_and_inputs():
    gen = torch.Generator().manual_seed(4)
    lp = torch.randn(7, 3, 5, generator=gen, dtype=torch.float64).log_softmax(2)
    targets = torch.tensor([[1, 2], [3, 3], [1, 1]])
    il, tl = torch.tensor([7, 0, 0]), torch.tensor([0, 0, 1])
    la, ga, lb, gb = both(lp, targets, il, tl, reduction="none")
    assert_close(la, ga, lb, gb, torch.float64)
    assert float(la[0]) == pytest.approx(-float(lp[:, 0, 0].sum()), rel=1e-12)   # all blanks
    assert float(la[1]) == 0.0 and math.isinf(float(la[2]))
    for reduction in ("sum", "mean"):
        assert_close(*both(lp, targets, il, tl, reduction=reduction, zero_infinity=True), torch.float64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_infeasible_with_and_without_zero_infinity(dtype):
    gen = torch.Generator().manual_seed(6)
    lp = torch.randn(5, 2, 4, generator=gen, dtype=torch.float64).log_softmax(2).to(dtype)
    targets = torch.tensor([[1, 2, 3, 1, 2, 3], [1, 2, 0, 0, 0, 0]])
    il, tl = torch.tensor([5, 4]), torch.tensor([6, 2])
    la, ga, lb, gb = both(lp, targets, il, tl, reduction="none")
    assert math.isinf(float(la[0])) and math.isfinite(float(la[1]))
    assert torch.isnan(ga[:, 0]).all() and not torch.isnan(ga[:, 1]).any()   # like PyTorch
    assert_close(la, ga, lb, gb, dtype)
    la, ga, lb, gb = both(lp, targets, il, tl, reduction="mean", zero_infinity=True)
    assert_close(la, ga, lb, gb, dtype)
    assert torch.isfinite(la) and (ga[:, 0] == 0).all()


def test_padded_and_concatenated_targets_agree():
    gen = torch.Generator().manual_seed(7)
    lp, targets, il, tl = random_case(gen, 30, 4, 6, 8, torch.float64, repeats=False)
    concat = torch.cat([targets[n, :tl[n]] for n in range(4)])
    for reduction in ("none", "mean"):
        a = ctc_loss(lp, targets, il, tl, reduction=reduction)
        b = ctc_loss(lp, concat, il, tl, reduction=reduction)
        c = F.ctc_loss(lp, concat, il, tl, reduction=reduction)
        assert torch.allclose(a, b, rtol=1e-12, atol=0) and torch.allclose(b, c, rtol=1e-10, atol=0)


def test_unbatched_and_list_lengths():
    gen = torch.Generator().manual_seed(8)
    lp = torch.randn(12, 5, generator=gen, dtype=torch.float64).log_softmax(1)
    target = torch.tensor([1, 2, 2, 4])
    for reduction in ("none", "mean"):
        ours = ctc_loss(lp, target, torch.tensor(12), torch.tensor(4), reduction=reduction)
        ref = F.ctc_loss(lp, target, torch.tensor(12), torch.tensor(4), reduction=reduction)
        assert ours.shape == ref.shape == torch.Size([])
        assert float(ours) == pytest.approx(float(ref), rel=1e-10)
    batched = ctc_loss(lp[:, None], target[None], [12], [4], reduction="none")
    assert float(batched[0]) == pytest.approx(float(ctc_loss(lp, target, 12, 4, reduction="none")), rel=1e-12)


def test_blank_not_zero():
    gen = torch.Generator().manual_seed(9)
    lp, targets, il, tl = random_case(gen, 20, 3, 5, 5, torch.float64, repeats=False)
    targets = targets.clamp(max=3)                 # labels 1..3, blank = 4
    assert_close(*both(lp, targets, il, tl, reduction="sum", blank=4), torch.float64)


def test_gradcheck_float64():
    """gradcheck through log_softmax (PyTorch's gradient convention is the gradient w.r.t. logits)."""
    gen = torch.Generator().manual_seed(10)
    logits = torch.randn(5, 2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([[1, 1], [2, 0]])
    il, tl = torch.tensor([5, 4]), torch.tensor([2, 1])
    for reduction in ("none", "mean"):
        assert torch.autograd.gradcheck(
            lambda x: ctc_loss(x.log_softmax(2), targets, il, tl, reduction=reduction), (logits,), eps=1e-6, atol=1e-7)


def test_gradient_convention_vs_finite_differences():
    """Our (and PyTorch's) gradient is exp(lp) - gamma; the partial derivative w.r.t. free lp is -gamma."""
    gen = torch.Generator().manual_seed(11)
    lp = torch.randn(5, 1, 3, generator=gen, dtype=torch.float64).log_softmax(2)
    targets, il, tl = torch.tensor([[1, 2]]), torch.tensor([5]), torch.tensor([2])
    x = lp.clone().requires_grad_()
    ctc_loss(x, targets, il, tl, reduction="sum").backward()
    eps = 1e-6
    numeric = torch.zeros_like(lp)
    for idx in itertools.product(range(5), range(1), range(3)):
        up, down = lp.clone(), lp.clone()
        up[idx] += eps
        down[idx] -= eps
        numeric[idx] = (ctc_loss(up, targets, il, tl, reduction="sum") - ctc_loss(down, targets, il, tl,
                                                                                   reduction="sum")) / (2 * eps)
    assert torch.allclose(x.grad - lp.exp(), numeric, atol=1e-7)
    assert torch.allclose((lp.exp() - x.grad).sum(2), torch.ones(5, 1, dtype=torch.float64))  # gamma sums to 1


def test_log_space_fallback_on_extreme_log_probs():
    """Very peaked log_probs underflow the scaled recursion; those items must be recomputed exactly."""
    gen = torch.Generator().manual_seed(12)
    lp, targets, il, tl = random_case(gen, 60, 4, 6, 10, torch.float64, sharp=400.0, repeats=False)
    tl = tl.clamp(min=3)
    assert_close(*both(lp, targets, il, tl, reduction="none"), torch.float64)
    nll_fast, grad_fast = ctc._ctc_core(lp, *_prep(lp, targets, il, tl), True)
    nll_log, grad_log = ctc._ctc_core(lp, *_prep(lp, targets, il, tl), True, force_log=True)
    assert torch.allclose(nll_fast, nll_log, rtol=1e-10) and torch.allclose(grad_fast, grad_log, atol=1e-10)


def _prep(lp, targets, il, tl):
    _, padded, il2, tl2, _ = ctc.prepare_inputs(lp, targets, il, tl, 0)
    return padded, il2, tl2, 0


def test_scaled_and_log_space_paths_agree_on_ordinary_input():
    gen = torch.Generator().manual_seed(13)
    lp, targets, il, tl = random_case(gen, 40, 5, 7, 9, torch.float64, sharp=2.0)
    nll_fast, grad_fast = ctc._ctc_core(lp, *_prep(lp, targets, il, tl), True)
    nll_log, grad_log = ctc._ctc_core(lp, *_prep(lp, targets, il, tl), True, force_log=True)
    fin = torch.isfinite(nll_log)
    assert torch.equal(fin, torch.isfinite(nll_fast))
    assert torch.allclose(nll_fast[fin], nll_log[fin], rtol=1e-12)
    assert torch.allclose(grad_fast.nan_to_num(7.0), grad_log.nan_to_num(7.0), atol=1e-12)


def test_forward_without_grad_equals_forward_with_grad():
    gen = torch.Generator().manual_seed(14)
    lp, targets, il, tl = random_case(gen, 33, 4, 6, 7, torch.float32)
    with torch.no_grad():
        a = ctc_loss(lp, targets, il, tl, reduction="none")
    b = ctc_loss(lp.clone().requires_grad_(), targets, il, tl, reduction="none")
    assert torch.equal(a, b.detach())


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad, match", [
    (dict(log_probs=torch.zeros(4)), "shape"),
    (dict(log_probs=torch.zeros(4, 2, 3, 1)), "shape"),
    (dict(log_probs=torch.zeros(5, 2, 4, dtype=torch.long)), "floating"),
    (dict(input_lengths=torch.tensor([6, 5])), "input_lengths"),
    (dict(input_lengths=torch.tensor([-1, 5])), "input_lengths"),
    (dict(input_lengths=torch.tensor([5, 5, 5])), "input_lengths"),
    (dict(target_lengths=torch.tensor([4, 2])), "exceed"),
    (dict(target_lengths=torch.tensor([-1, 2])), "target_lengths"),
    (dict(targets=torch.tensor([[0, 1, 2], [1, 2, 3]])), "blank"),
    (dict(targets=torch.tensor([[1, 4, 2], [1, 2, 3]])), r"\[0, C=4\)"),
    (dict(targets=torch.tensor([[1, -2, 2], [1, 2, 3]])), r"\[0, C=4\)"),
    (dict(targets=torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])), "integer"),
    (dict(targets=torch.tensor([1, 2, 3])), "sum"),
    (dict(targets=torch.ones(3, 3, dtype=torch.long)), "padded"),
    (dict(blank=4), "blank"),
    (dict(reduction="avg"), "reduction"),
])
def test_bad_input_raises(bad, match):
    args = dict(log_probs=torch.randn(5, 2, 4).log_softmax(2), targets=torch.tensor([[1, 2, 3], [1, 2, 3]]),
                input_lengths=torch.tensor([5, 5]), target_lengths=torch.tensor([3, 2]), blank=0, reduction="mean")
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        ctc_loss(**args)


def test_padding_beyond_target_length_is_ignored():
    lp = torch.randn(6, 2, 4, dtype=torch.float64).log_softmax(2)
    a = ctc_loss(lp, torch.tensor([[1, 2, -1], [3, 0, 99]]), [6, 6], [2, 1], reduction="none")
    b = ctc_loss(lp, torch.tensor([[1, 2, 0], [3, 0, 0]]), [6, 6], [2, 1], reduction="none")
    assert torch.equal(a, b)


def test_warns_on_logits():
    logits = torch.randn(8, 2, 5) * 3
    with pytest.warns(RuntimeWarning, match="log_softmax"):
        ctc_loss(logits, torch.tensor([[1, 2], [3, 4]]), [8, 8], [2, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ctc_loss(logits.log_softmax(2), torch.tensor([[1, 2], [3, 4]]), [8, 8], [2, 2])


# --------------------------------------------------------------------------- Viterbi
def brute_force_best(lp_tc: torch.Tensor, target: list[int], blank: int = 0):
    """Max over all CTC alignments of the summed log-prob (enumerates C**T paths)."""
    T, C = lp_tc.shape
    best, best_path = -math.inf, None
    for path in itertools.product(range(C), repeat=T):
        collapsed = [k for i, k in enumerate(path) if k != blank and (i == 0 or path[i - 1] != k)]
        if collapsed == target:
            score = float(sum(lp_tc[t, k] for t, k in enumerate(path)))
            if score > best:
                best, best_path = score, list(path)
    return best, best_path


def test_viterbi_matches_brute_force():
    gen = torch.Generator().manual_seed(15)
    T, N, C = 6, 5, 3
    lp = torch.randn(T, N, C, generator=gen, dtype=torch.float64).mul(2).log_softmax(2)
    targets = torch.tensor([[1, 2, 1], [1, 1, 0], [2, 0, 0], [1, 1, 1], [2, 2, 2]])
    il = torch.tensor([6, 5, 4, 6, 4])
    tl = torch.tensor([3, 2, 1, 3, 3])               # the last is infeasible (needs 5 frames)
    paths, scores, positions = viterbi_align(lp, targets, il, tl, return_positions=True)
    assert paths.shape == (N, T) and positions.shape == (N, T) and scores.shape == (N,)
    for n in range(N):
        target = targets[n, :tl[n]].tolist()
        best, _ = brute_force_best(lp[:il[n], n], target)
        if math.isinf(best):
            assert math.isinf(float(scores[n])) and (paths[n] == -1).all()
            continue
        assert float(scores[n]) == pytest.approx(best, abs=1e-9)
        p = paths[n, :il[n]].tolist()
        assert (paths[n, il[n]:] == -1).all() and (positions[n, il[n]:] == -1).all()
        collapsed = [k for i, k in enumerate(p) if k != 0 and (i == 0 or p[i - 1] != k)]
        assert collapsed == target
        assert float(sum(lp[t, n, k] for t, k in enumerate(p))) == pytest.approx(best, abs=1e-9)
        pos = positions[n, :il[n]]
        assert ((pos == -1) == (paths[n, :il[n]] == 0)).all()
        lab = pos >= 0
        assert torch.equal(targets[n][pos[lab]], paths[n, :il[n]][lab])
        assert pos[lab].tolist() == sorted(pos[lab].tolist()) and set(pos[lab].tolist()) == set(range(len(target)))


def test_viterbi_score_bounds_ctc_probability():
    """log max_path p <= log sum_paths p = -ctc_loss."""
    gen = torch.Generator().manual_seed(16)
    lp, targets, il, tl = random_case(gen, 30, 6, 5, 8, torch.float64, sharp=2.0, repeats=False)
    _, scores = viterbi_align(lp, targets, il, tl)
    nll = ctc_loss(lp, targets, il, tl, reduction="none")
    fin = torch.isfinite(nll)
    assert (scores[fin] <= -nll[fin] + 1e-9).all()
    assert torch.isinf(scores[~fin]).all()


def test_viterbi_unbatched_and_concatenated():
    lp = torch.randn(8, 4, dtype=torch.float64).log_softmax(1)
    path, score = viterbi_align(lp, torch.tensor([1, 3]), 8, 2)
    assert path.shape == (8,) and score.shape == ()
    p2, s2 = viterbi_align(lp[:, None], torch.tensor([[1, 3]]), [8], [2])
    assert torch.equal(path, p2[0]) and float(score) == float(s2[0])


# ------------------------------------------------------------------------------ greedy
def test_greedy_decode_one_hot_path_returns_target():
    C = 6
    path = [0, 1, 1, 0, 1, 2, 2, 2, 0, 0, 5, 3, 3, 0]   # -> 1 1 2 5 3
    lp = torch.full((len(path), 1, C), -30.0)
    lp[torch.arange(len(path)), 0, torch.tensor(path)] = 0.0
    assert greedy_decode(lp, [len(path)]) == [[1, 1, 2, 5, 3]]
    assert greedy_decode(lp[:, 0]) == [[1, 1, 2, 5, 3]]
    assert greedy_decode(lp, [4]) == [[1]]               # only the first 4 frames
    assert greedy_decode(lp, [0]) == [[]]


def test_greedy_decode_matches_python_reference():
    gen = torch.Generator().manual_seed(17)
    lp = torch.randn(25, 7, 4, generator=gen)
    il = torch.randint(0, 26, (7,), generator=gen)
    out = greedy_decode(lp, il, blank=2)
    for n in range(7):
        best = lp[:il[n], n].argmax(1).tolist()
        ref = [k for i, k in enumerate(best) if k != 2 and (i == 0 or best[i - 1] != k)]
        assert out[n] == ref
    with pytest.raises(ValueError):
        greedy_decode(lp, il, blank=4)
    with pytest.raises(ValueError):
        greedy_decode(lp, torch.full((7,), 26))


def test_viterbi_of_one_hot_path_and_greedy_agree():
    target = [2, 2, 1]
    path = [0, 2, 0, 2, 2, 1, 0]
    lp = torch.full((len(path), 1, 3), -20.0, dtype=torch.float64)
    lp[torch.arange(len(path)), 0, torch.tensor(path)] = 0.0
    lp = lp.log_softmax(2)
    vp, _ = viterbi_align(lp, torch.tensor([target]), [len(path)], [3])
    assert vp[0].tolist() == path
    assert greedy_decode(lp, [len(path)]) == [target]


# ------------------------------------------------------------------------ end to end
def test_q2_ctc_demo_quick(run_script, tmp_path):
    import json

    proc = run_script("q2_ctc.py", "--quick", "--epochs", "1", "--n-train", "16", "--n-test", "8", timeout=300)
    out = tmp_path / "outputs" / "q2_ctc"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data_source"] == "synthetic"
    assert metrics["max_abs_grad_diff_vs_torch"] <= 1e-5
    assert metrics["max_abs_loss_diff_vs_torch"] <= 1e-4
    for name in ("alignment.png", "training_curves.png", "log.csv", "checkpoint.pt", "example_tones_synthetic.wav"):
        assert (out / name).exists(), name
    assert "q2_ctc (SYNTHETIC" in proc.stdout.strip().splitlines()[-1]
    with pytest.raises(SystemExit):                 # argparse rejects it before any work
        q2_ctc.main(["--n-train", "0"])


def test_q2_compare_quick(run_script, tmp_path):
    import csv
    import json

    proc = run_script("q2_compare.py", "--quick", timeout=300)
    out = tmp_path / "outputs" / "q2_compare"
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("loss_ours", "loss_torch", "max_abs_loss_diff", "max_abs_grad_diff"):
        assert key in metrics
    assert metrics["max_rel_loss_diff"] <= 1e-6
    assert metrics["max_rel_loss_diff_float64"] <= 1e-10
    assert metrics["max_abs_grad_err_vs_float64_ours"] <= 1e-6   # ours vs the exact gradient
    assert metrics["loss_ours"] == pytest.approx(metrics["loss_torch"], rel=1e-6)
    rows = list(csv.DictReader(open(out / "comparison.csv")))
    assert len(rows) == 6 and {r["reduction"] for r in rows} == {"none", "sum", "mean"}
    assert (out / "alignment.png").stat().st_size > 10_000
    assert "q2_compare" in proc.stdout.strip().splitlines()[-1]
    import q2_compare

    with pytest.raises(SystemExit):
        q2_compare.main(["--example", "99"])


# --------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_real_speech_features_and_transcripts(shared_data):
    """EMOVO clips: log-mel features of real speech through a fixed random projection as
    log_probs, the real Italian transcripts as character targets; ours must match PyTorch
    and the Viterbi path must spell the transcript."""
    import csv as _csv

    import torchaudio

    from audiolab.core.io import load_audio

    root = shared_data / "emovo"
    codes = root / "emovo_codes.tsv"
    files = sorted((root / "f1").glob("*.flac"))[:3]
    if not files or not codes.exists():
        pytest.skip("EMOVO clips or emovo_codes.tsv not found in the shared data")
    rows = list(_csv.reader(open(codes, encoding="utf-8"), delimiter="\t"))
    texts = {}
    for row in rows:                                                 # type, code, value
        if len(row) >= 3 and row[0].strip() == "text":
            texts[row[1].strip()] = row[2].strip().lower()
    alphabet = sorted({ch for t in texts.values() for ch in t})
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=16000, n_fft=400, hop_length=160, n_mels=40)
    gen = torch.Generator().manual_seed(0)
    proj = torch.randn(40, len(alphabet) + 1, generator=gen, dtype=torch.float64) * 0.3
    feats, targets = [], []
    for path in files:
        sentence = path.stem.split("-")[-1]
        text = texts.get(sentence)
        if text is None:
            pytest.skip(f"no transcript for sentence code {sentence!r} in {codes}")
        wav, _ = load_audio(path, sample_rate=16000)
        feats.append(torch.log(mel(torch.as_tensor(wav, dtype=torch.float32)) + 1e-6).T.double())
        targets.append(torch.tensor([alphabet.index(ch) + 1 for ch in text]))
    il = torch.tensor([f.shape[0] for f in feats])
    tl = torch.tensor([t.numel() for t in targets])
    x = torch.nn.utils.rnn.pad_sequence(feats)                       # [T, N, 40]
    lp = (x - x.mean()) / x.std() @ proj
    lp = lp.log_softmax(2)
    padded = torch.nn.utils.rnn.pad_sequence(targets, batch_first=True)
    assert_close(*both(lp, padded, il, tl, reduction="none"), torch.float64)
    paths, scores = viterbi_align(lp, padded, il, tl)
    for n in range(len(files)):
        p = paths[n, :il[n]].tolist()
        collapsed = [k for i, k in enumerate(p) if k != 0 and (i == 0 or p[i - 1] != k)]
        assert collapsed == targets[n].tolist()
