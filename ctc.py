"""CTC loss from scratch (Graves et al., ICML 2006), with exactly the contract of PyTorch's.

What: ``ctc_loss`` with exactly the contract of ``torch.nn.functional.ctc_loss`` (value and
gradient agree with PyTorch to floating-point precision); Viterbi alignment and greedy decoding
are in ``ctc_decode.py``, which builds on the input checks here. Imported by ``q2_ctc.py`` (which trains a tiny
CTC model with it on a synthetic task and checks it against PyTorch), ``q2_compare.py``,
``q2_multitask.py``, ``benchmarks/ctc_speed.py`` and the tests; it is not a script.

How (Graves et al. 2006, "Connectionist Temporal Classification", section 4.1):
- The target ``l`` (length ``L``) is extended with blanks, ``l' = (b, l1, b, l2, ..., lL, b)``
  (``K = 2L + 1`` states). The forward variable ``alpha_t(s)`` sums the probability of every
  alignment prefix that is in state ``s`` at frame ``t`` (eq. 5-8):
  ``alpha_t(s) = y_t(l'_s) * (alpha_{t-1}(s) + alpha_{t-1}(s-1) + [skip] alpha_{t-1}(s-2))``
  where the skip from ``s-2`` is allowed when ``l'_s`` is a label different from ``l'_{s-2}``;
  ``p(l|x) = alpha_{T-1}(K-1) + alpha_{T-1}(K-2)`` (eq. 8). The backward variable
  ``beta`` runs the same recursion from the end (eq. 10-13).
- The gradient (eq. 14-16): the posterior occupancy of label ``k`` at frame ``t`` is
  ``gamma_t(k) = sum_{s: l'_s = k} alpha_t(s) beta_t(s) / p`` (with ``beta`` here *excluding*
  ``y_t``). PyTorch's ``ctc_loss`` returns, for ``-log p`` w.r.t. ``log_probs``,
  ``exp(log_probs) - gamma`` -- the gradient w.r.t. the *logits* of a log-softmax (Graves
  eq. 16), not the partial derivative w.r.t. free ``log_probs`` (which is ``-gamma``). The two
  differ by ``exp(log_probs)``, which log-softmax's backward maps to zero, so both train the
  same network. We return PyTorch's convention, so gradients match it exactly.

Design choices (speed without C++):
- Everything is vectorised over the batch and the ``K`` extended states; Python loops
  only over time. ``y = exp(log_probs)`` is gathered at the extended labels for all frames
  at once (``[T, N, K]``) before the loop.
- The fast path works in probability space in float64 with rescaling (Rabiner 1989,
  "scaling"; Graves 2006 section 4.1): every 4 frames alpha and beta are divided by their
  sum, whose logs are accumulated. Adds and multiplies replace log-sum-exp (an exp and a
  log per element per step). float64 has range for ~700 nats between rescalings, so this is
  exact in practice; an item whose rescaled sums still fall below 1e-280 (e.g. frames where
  every reachable label has log-probability below about -700, or logits so large that
  ``exp`` overflows) is recomputed with the exact log-space recursion
  (``_alpha_beta_log``), so results never depend on the fast path's range.
- With gradients, alpha and beta run in the *same* loop (one ``[2, N, K]`` tensor, alpha
  going forward in time and beta backward, via ``as_strided`` views), and each frame's
  gradient row is finished inside the loop as soon as both are known. Whole-tensor passes
  are few: on a busy CPU every multi-threaded op pays a thread wake-up, which dominates
  small kernels. Scratch buffers are reused across calls (``_buffer``).
- The gradient comes from the beta recursion inside a custom ``torch.autograd.Function``
  (computed in the forward when ``log_probs`` requires grad; backward only scales it by the
  incoming gradient), never from autograd through the time loop.
- float32 inputs are computed in float64 internally and cast back: the result is closer to
  the exact value than PyTorch's own float32 kernel (see q2_compare.py).

Sources: A. Graves, S. Fernandez, F. Gomez, J. Schmidhuber, "Connectionist Temporal
Classification", ICML 2006; L. Rabiner, "A tutorial on HMMs", Proc. IEEE 1989 (scaling,
Viterbi); PyTorch's ``aten/src/ATen/native/LossCTC.cpp`` for the contract (reductions,
``zero_infinity``, gradient convention).
"""

from __future__ import annotations

import math
import threading
import warnings

import torch

__all__ = ["ctc_loss", "ctc_feasible", "clear_workspace", "prepare_inputs", "extend_targets", "as_long_1d"]

_TINY = 1e-280       # float64 rescaled sums below this count as underflow -> exact log-space recompute
_RESCALE_EVERY = 4  # rescale alpha / beta every this many frames (float64 has range to spare)
_LOGPROB_TOL = 1e-3  # |logsumexp(row)| above this -> "these are not log-probabilities" warning


_workspace = threading.local()   # reusable scratch buffers, one set per thread
_WORKSPACE_MAX_BYTES = 1 << 28    # larger buffers are allocated per call and not kept


def _buffer(name: str, shape: tuple, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A scratch tensor of ``shape`` (uninitialised) reused across calls.

    Freshly allocated large tensors cost page faults on first touch (several ms per 32 MB
    on CPU); reusing the recursion buffers keeps ``ctc_loss`` cost close to its arithmetic.
    Results handed back to callers never alias these buffers. They are kept per thread
    (about 150 MB at (T, N, C, S) = (256, 128, 32, 60)); :func:`clear_workspace` frees them.
    """
    n = math.prod(shape)
    if n * torch.empty((), dtype=dtype).element_size() > _WORKSPACE_MAX_BYTES:
        return torch.empty(shape, dtype=dtype, device=device)
    key = (name, dtype, str(device))
    store = _workspace.__dict__
    buf = store.get(key)
    if buf is None or buf.numel() < n:
        buf = torch.empty(n, dtype=dtype, device=device)
        store[key] = buf
    return buf[:n].view(shape)


def clear_workspace() -> None:
    """Free this thread's scratch buffers (see :func:`_buffer`)."""
    _workspace.__dict__.clear()


# --------------------------------------------------------------------------- input checks
def as_long_1d(value, name: str, device) -> torch.Tensor:
    """Lengths given as tensor / list / tuple / int -> 1-D int64 tensor on ``device``."""
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() or value.is_complex():
            raise ValueError(f"{name} must hold integers, got dtype {value.dtype}")
        out = value.reshape(-1)
    else:
        try:
            out = torch.as_tensor(value, dtype=torch.long).reshape(-1)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{name} must be a tensor, sequence or int of lengths ({err})") from None
    return out.to(device=device, dtype=torch.long)


def prepare_inputs(log_probs, targets, input_lengths, target_lengths, blank):
    """Validate torch.nn.functional.ctc_loss-style inputs and normalise them.

    Returns ``(log_probs [T, N, C], targets [N, S] long (padding set to blank), input_lengths [N],
    target_lengths [N], unbatched)``.

    Raises:
        ValueError: wrong ranks/shapes/dtypes, lengths out of range, the blank index used as
            a label, or labels outside ``[0, C)``.
    """
    if not isinstance(log_probs, torch.Tensor) or not log_probs.is_floating_point():
        raise ValueError("log_probs must be a floating-point tensor (T, N, C) or (T, C)")
    if log_probs.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"log_probs must be float32 or float64, got {log_probs.dtype}")
    if log_probs.dim() not in (2, 3):
        raise ValueError(f"log_probs must have shape (T, N, C) or (T, C), got {tuple(log_probs.shape)}")
    unbatched = log_probs.dim() == 2
    if unbatched:
        log_probs = log_probs.unsqueeze(1)
    T, N, C = log_probs.shape
    if C < 1 or N < 1:
        raise ValueError(f"log_probs has an empty dimension: {tuple(log_probs.shape)}")
    if not (isinstance(blank, int) and 0 <= blank < C):
        raise ValueError(f"blank must be an int in [0, {C}), got {blank!r}")
    device = log_probs.device
    input_lengths = as_long_1d(input_lengths, "input_lengths", device)
    target_lengths = as_long_1d(target_lengths, "target_lengths", device)
    for name, lengths in (("input_lengths", input_lengths), ("target_lengths", target_lengths)):
        if lengths.numel() != N:
            raise ValueError(f"{name} must have {N} entries (one per batch item), got {lengths.numel()}")
    if (input_lengths < 0).any() or (input_lengths > T).any():
        raise ValueError(f"input_lengths must lie in [0, T={T}], got min {int(input_lengths.min())}, "
                         f"max {int(input_lengths.max())}")
    if (target_lengths < 0).any():
        raise ValueError(f"target_lengths must be >= 0, got min {int(target_lengths.min())}")

    if not isinstance(targets, torch.Tensor):
        targets = torch.as_tensor(targets)
    if targets.is_floating_point() or targets.is_complex():
        raise ValueError(f"targets must hold integer class indices, got dtype {targets.dtype}")
    targets = targets.to(device=device, dtype=torch.long)
    max_len = int(target_lengths.max()) if N else 0
    if targets.dim() == 2 and not unbatched:
        if targets.shape[0] != N:
            raise ValueError(f"padded targets must have shape (N={N}, S), got {tuple(targets.shape)}")
        if max_len > targets.shape[1]:
            raise ValueError(f"target_lengths (max {max_len}) exceed the padded targets' width "
                             f"S={targets.shape[1]}")
        padded = targets[:, :max_len]
    elif targets.dim() == 1:
        total = int(target_lengths.sum())
        if targets.numel() != total:
            raise ValueError(f"1-D (concatenated) targets must have sum(target_lengths)={total} "
                             f"entries, got {targets.numel()}")
        padded = torch.zeros(N, max_len, dtype=torch.long, device=device)
        mask = torch.arange(max_len, device=device)[None, :] < target_lengths[:, None]
        padded[mask] = targets
    else:
        want = "(S,)" if unbatched else "(N, S) padded or 1-D concatenated"
        raise ValueError(f"targets must have shape {want}, got {tuple(targets.shape)}")

    used = torch.arange(padded.shape[1], device=device)[None, :] < target_lengths[:, None]
    labels = padded[used]
    if labels.numel():
        if (labels < 0).any() or (labels >= C).any():
            raise ValueError(f"target labels must lie in [0, C={C}), got min {int(labels.min())}, "
                             f"max {int(labels.max())}")
        if (labels == blank).any():
            raise ValueError(f"the blank index {blank} appears inside the targets; blank cannot be a label")
    padded = torch.where(used, padded, torch.full_like(padded, blank))
    return log_probs, padded, input_lengths, target_lengths, unbatched


def _warn_if_not_log_probs(log_probs: torch.Tensor, input_lengths: torch.Tensor) -> None:
    """Warn when frames are not log-probabilities (logits passed by mistake -> negative losses).

    Checks the first and the last valid frame of every item (cheap, O(N C)).
    """
    has = input_lengths > 0
    if not bool(has.any()):
        return
    idx = torch.nonzero(has).squeeze(1)
    last = (input_lengths[idx] - 1)
    with torch.no_grad():
        frames = torch.cat([log_probs[0, idx], log_probs[last, idx]]).double()
        lse = torch.logsumexp(frames, dim=-1)
        bad = (lse.abs() > _LOGPROB_TOL) | ~torch.isfinite(lse)
    if bool(bad.any()):
        warnings.warn(
            f"log_probs rows do not look like log-probabilities (logsumexp over classes up to "
            f"{float(lse[bad].abs().max()):.3g} away from 0); pass log_softmax outputs, not logits "
            f"(logits give meaningless, possibly negative, losses)", RuntimeWarning, stacklevel=3)


def ctc_feasible(input_lengths: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """Which items admit at least one CTC alignment: ``T_n >= L_n + (number of repeated neighbours)``.

    Args:
        input_lengths: [N] frames per item.
        targets: [N, S] padded targets.
        target_lengths: [N].
    Returns:
        [N] bool tensor.
    """
    S = targets.shape[1]
    if S < 2:
        repeats = torch.zeros_like(target_lengths)
    else:
        same = targets[:, 1:] == targets[:, :-1]
        inside = torch.arange(1, S, device=targets.device)[None, :] < target_lengths[:, None]
        repeats = (same & inside).sum(1)
    return input_lengths >= target_lengths + repeats


# ------------------------------------------------------------------- extended labels
def extend_targets(targets: torch.Tensor, target_lengths: torch.Tensor, blank: int):
    """The blank-extended labels and their transition masks (Graves 2006, section 4.1).

    Returns ``ext [N, K]`` (K = 2S+1, blanks at even states), ``valid [N, K]``
    (``s < 2 L_n + 1``) and ``skip [N, K]`` (the transition ``s-2 -> s`` is allowed:
    ``l'_s`` is a label and differs from ``l'_{s-2}``).
    """
    N, S = targets.shape
    K = 2 * S + 1
    ext = torch.full((N, K), blank, dtype=torch.long, device=targets.device)
    ext[:, 1::2] = targets
    states = torch.arange(K, device=targets.device)
    valid = states[None, :] < (2 * target_lengths + 1)[:, None]
    skip = torch.zeros(N, K, dtype=torch.bool, device=targets.device)
    if K > 2:
        skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    skip &= valid
    return ext, valid, skip


# --------------------------------------- the textbook recursions, in log space (exact)
def _lse3(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Elementwise log(exp a + exp b + exp c), safe when all three are -inf."""
    mx = torch.maximum(torch.maximum(a, b), c)
    mx = torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx))
    return mx + torch.log(torch.exp(a - mx) + torch.exp(b - mx) + torch.exp(c - mx))


def _alpha_beta_log(lpe: torch.Tensor, valid, skip, input_lengths, target_lengths, need_beta: bool):
    """The CTC forward-backward recursions in log space (Graves 2006 eq. 6-13): exact, the textbook form.

    Alpha (eq. 6-7) and beta excluding ``y_t`` are kept as logs; a log-sum-exp of three
    shifted copies (state ``s``, ``s-1`` and, where allowed, ``s-2``) replaces the sums. The fast
    path below (:func:`_alpha_beta_scaled`) computes the same quantities in probability space;
    this one is used for items where that underflows, and as an independent reference in the tests.

    Args:
        lpe: [T, N, K] float64 log-probabilities at the extended labels, ``-inf`` at invalid
            states (``s > 2 L_n``).
        valid, skip: [N, K] masks from :func:`_extend`.
        input_lengths, target_lengths: [N].
        need_beta: also compute the occupancies.
    Returns:
        ``(logp [N], gamma [T, N, K] or None, ok [N])``: ``log p(l|x)``; the state occupancies
        ``alpha_t(s) beta_t(s) / p`` (0 past ``input_lengths`` and for infeasible items);
        ``ok`` is all True.
    """
    T, N, K = lpe.shape
    dev, dt = lpe.device, lpe.dtype
    ninf = -math.inf
    t_idx = torch.arange(T, device=dev)
    inside = t_idx[:, None] < input_lengths[None, :]
    neg = torch.full((N, 2), ninf, dtype=dt, device=dev)
    no_skip = torch.where(skip, torch.zeros_like(lpe[0]), torch.full_like(lpe[0], ninf))
    la = torch.full((T, N, K), ninf, dtype=dt, device=dev)
    la[0, :, :2] = lpe[0, :, :2]
    for t in range(1, T):
        prev = la[t - 1]
        p1 = torch.cat([neg[:, :1], prev[:, :-1]], 1)
        p2 = torch.cat([neg, prev[:, :-2]], 1)[:, :K] + no_skip
        la[t] = lpe[t] + _lse3(prev, p1, p2)
    last_t = (input_lengths - 1).clamp(min=0)
    aT = la[last_t, torch.arange(N, device=dev)]
    end = 2 * target_lengths
    a_end = aT.gather(1, end[:, None]).squeeze(1)
    a_end1 = torch.where(target_lengths > 0, aT.gather(1, (end - 1).clamp(min=0)[:, None]).squeeze(1),
                         torch.full_like(a_end, ninf))
    logp = torch.logaddexp(a_end, a_end1)
    logp = torch.where(input_lengths > 0, logp,
                       torch.where(target_lengths == 0, torch.zeros_like(logp), torch.full_like(logp, ninf)))
    ok = torch.ones(N, dtype=torch.bool, device=dev)
    if not need_beta:
        return logp, None, ok
    states = torch.arange(K, device=dev)[None, :]
    init = torch.where((states == end[:, None]) | ((states == end[:, None] - 1) & (target_lengths[:, None] > 0)),
                       torch.zeros(N, K, dtype=dt, device=dev), torch.full((N, K), ninf, dtype=dt, device=dev))
    skip_next = torch.full((N, K), ninf, dtype=dt, device=dev)
    if K > 2:
        skip_next[:, :-2] = torch.where(skip[:, 2:], 0.0, ninf)
    lb = torch.full((T, N, K), ninf, dtype=dt, device=dev)
    is_last = (last_t[None, :] == t_idx[:, None]) & (input_lengths[None, :] > 0)
    lb[T - 1] = init
    for t in range(T - 2, -1, -1):
        g = lb[t + 1] + lpe[t + 1]
        g1 = torch.cat([g[:, 1:], neg[:, :1]], 1)
        g2 = torch.cat([g[:, 2:], neg], 1)[:, :K] + skip_next
        lb[t] = torch.where(is_last[t][:, None], init, _lse3(g, g1, g2))
    lg = la + lb - torch.where(torch.isfinite(logp), logp, torch.zeros_like(logp))[None, :, None]
    gamma = torch.exp(lg) * inside[:, :, None].to(dt)
    gamma = torch.where(torch.isfinite(logp)[None, :, None], gamma, torch.zeros_like(gamma))
    return logp, gamma, ok


# ------------------------------- the fast path: the same recursions, scaled, in probability space
def _state_probs(lp: torch.Tensor, ext: torch.Tensor, H: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities ``y_t(k) = exp(log_probs)`` in float64, for the scaled recursions.

    Returns ``P`` ``[H, T, N, C+1]`` (``P[0]`` = y with a zero column at index ``C`` for the
    invalid states; ``P[1]`` = ``P[0]`` reversed in time, for beta) and ``Y`` ``[H, T, N, K]``,
    ``P`` gathered at the extended labels (``Y[0, t]`` = y_t at the states, ``Y[1, i]`` = y_{T-1-i}).
    """
    T, N, C = lp.shape
    K = ext.shape[1]
    P = _buffer("P", (H, T, N, C + 1), torch.float64, lp.device)
    P[0, :, :, C] = 0
    P[0, :, :, :C].copy_(lp)
    P[0, :, :, :C].exp_()
    if H == 2:
        torch.index_select(P[0], 0, torch.arange(T - 1, -1, -1, device=lp.device), out=P[1])
    Y = _buffer("Y", (H, T, N, K), torch.float64, lp.device)
    torch.gather(P, 3, ext[None, None].expand(H, T, N, K), out=Y)
    return P, Y


def _transitions(skip: torch.Tensor, end: torch.Tensor, has_label: torch.Tensor, H: int):
    """Skip masks and start values of the recursions, ``[H, N, K]`` float64 each (half 0 alpha, 1 beta).

    ``skipm[0, n, s]`` = 1 where ``s-2 -> s`` is allowed (Graves 2006 eq. 7), ``skipm[1, n, s]``
    = 1 where ``s+2 -> s`` is (eq. 11). ``init[0]``: alpha at t = 0 is 1 on states 0 and 1
    (eq. 5); ``init[1]``: beta at the last frame is 1 on the end state ``2 L`` and, when the
    label is not empty, on ``2 L - 1`` (eq. 9). Values are *exclusive* (before multiplying by y).
    """
    N, K = skip.shape
    dt, dev = torch.float64, skip.device
    states = torch.arange(K, device=dev)[None, :]
    skipm = torch.zeros(H, N, K, dtype=dt, device=dev)
    skipm[0] = skip.to(dt)
    init = torch.zeros(H, N, K, dtype=dt, device=dev)
    init[0] = (states < 2).to(dt)
    if H == 2:
        if K > 2:
            skipm[1, :, :-2] = skip[:, 2:].to(dt)
        init[1] = ((states == end[:, None]) | ((states == end[:, None] - 1) & has_label[:, None])).to(dt)
    return skipm, init


def _scaled_log_likelihood(c: torch.Tensor, alpha_excl: torch.Tensor, y: torch.Tensor, input_lengths,
                           target_lengths) -> tuple[torch.Tensor, torch.Tensor]:
    """``log p(l|x)`` from the rescaled alphas (Graves 2006 eq. 8 with section 4.1's scaling).

    Args:
        c: [n_scales, N] the sums alpha was divided by at frames ``0, R, 2R, ...``.
        alpha_excl: [T, N, K] rescaled exclusive alphas; y: [T, N, K] y_t at the states.
    Returns:
        ``(logp [N], ok [N] bool)``: ``log p = sum(log c over frames < T_n) + log(alpha_{T_n-1}(2L)
        + alpha_{T_n-1}(2L-1))`` (``T_n = 0``: 0 for an empty label, else -inf); ``ok`` is False
        where a scale or the end probability underflowed (recompute in log space).
    """
    N, K = alpha_excl.shape[1:]
    dev = alpha_excl.device
    last_t = (input_lengths - 1).clamp(min=0)
    end = 2 * target_lengths
    has_label = target_lengths > 0
    r_frames = torch.arange(c.shape[0], device=dev)[:, None] * _RESCALE_EVERY   # [n_scales, 1]
    counted = r_frames <= last_t[None, :]
    ok = ((c > _TINY) | ~counted).all(0)
    cum = torch.where(counted, torch.log(c), torch.zeros_like(c)).sum(0)
    flat = (last_t * N + torch.arange(N, device=dev)) * K

    def alpha_at(state):                            # inclusive alpha at each item's last frame
        return alpha_excl.reshape(-1).take(flat + state) * y.reshape(-1).take(flat + state)

    a_end = alpha_at(end)
    a_end1 = torch.where(has_label, alpha_at((end - 1).clamp(min=0)), torch.zeros_like(a_end))
    p_end = a_end + a_end1
    logp = torch.log(p_end) + cum
    empty = torch.where(target_lengths == 0, 0.0, -math.inf).to(logp.dtype)  # T_n = 0: p = [L_n = 0]
    logp = torch.where(input_lengths > 0, logp, empty)
    ok = ok & ((p_end > _TINY) | (input_lengths == 0))
    return logp, ok


def _frames(t: torch.Tensor, lo: int, step: int, nf: int) -> torch.Tensor:
    """``[nf, N, width]`` view of frames ``lo`` and ``lo + step`` (``nf`` = 1 or 2) of a ``[T, N, width]`` tensor."""
    N, width = t.shape[-2:]
    return t.as_strided((nf, N, width), (step * N * width, width, 1), t.storage_offset() + lo * N * width)


def _finish_frames(lo: int, step: int, X, y, P0, ext2, g, occ, z_all, grad) -> None:
    """Occupancy and gradient rows of frames ``lo`` and ``lo + step`` (one frame when ``step`` = 0).

    ``gamma_t(s) ~ alpha_excl_t(s) y_t(s) beta_excl_t(s)`` from ``X`` ``[2, T, N, K]`` (exclusive
    alpha, beta) and ``y`` ``[T, N, K]``; summed per label into ``occ`` ``[T, N, C+1]`` (Graves 2006
    eq. 15) through the extended labels ``ext2`` ``[2, N, K]``; its per-frame sum ``z_all``
    ``[T, N, 1]`` is ``p`` up to the scales (eq. 14); then ``grad[t] = y_t - occ_t / z_t`` (eq. 16),
    with ``P0`` ``[T, N, C+1]`` the probabilities. ``g`` ``[2, N, K]`` is workspace. All in place.
    """
    nf = 1 if step == 0 else 2
    C = grad.shape[2]
    gv = g[:nf]
    torch.mul(_frames(X[0], lo, step, nf), _frames(X[1], lo, step, nf), out=gv)
    gv.mul_(_frames(y, lo, step, nf))
    o = _frames(occ, lo, step, nf)
    o.zero_()
    o.scatter_add_(2, ext2[:nf], gv)
    zf = _frames(z_all, lo, step, nf)
    torch.sum(o, dim=2, keepdim=True, out=zf)
    torch.addcdiv(_frames(P0, lo, step, nf)[:, :, :C], o[:, :, :C], zf, value=-1.0, out=_frames(grad, lo, step, nf))


def _alpha_beta_scaled(lp: torch.Tensor, ext: torch.Tensor, skip, input_lengths, target_lengths,
                       need_grad: bool, grad_dtype: torch.dtype):
    """Forward (and backward) recursions in probability space with rescaling, in one time loop.

    Graves 2006 eq. 6-13 computed on ``y_t(k) = exp(log_probs)`` (float64) with the rescaling of
    section 4.1 (Rabiner 1989, "scaling"): every ``_RESCALE_EVERY`` frames the recursion
    variables are divided by their sum ``c`` and ``log p = sum(log c) + log(alpha at the two
    end states)``. With gradients, alpha (frame ``i`` going up) and beta (frame ``T-1-i``
    going down) advance together as the two halves of one ``[2, N, K]`` tensor: fixed
    ``as_strided`` views shift the alpha half to ``s-1, s-2`` and the beta half to
    ``s+1, s+2``, and a per-step view writes the results at frames ``i`` and ``T-1-i``, so
    one loop of three small tensor ops per frame does both recursions. From the middle on,
    each step also finishes the two frames whose alpha and beta are both known: occupancy
    ``gamma_t(s) ~ alpha_excl_t(s) y_t(s) beta_excl_t(s)`` (the *exclusive* variables, before
    multiplying by ``y_t``, are what is stored), summed per label (eq. 15) and normalised per
    frame (their sum over ``s`` is ``p`` for every ``t``, eq. 14), then the gradient row
    ``y_t - gamma_t`` (eq. 16). Big whole-tensor passes are kept to a handful, because each
    is a multi-threaded region whose start-up dominates on a busy CPU.

    Args:
        lp: [T, N, C] log-probabilities (float32 or float64; computed in float64).
        ext: [N, K] extended labels with invalid states (``s > 2 L_n``) set to ``C``
            (a column of zeros, so they never carry probability).
        skip: [N, K] bool, the transition ``s-2 -> s`` is allowed.
        need_grad: also run beta and build the gradient.
        grad_dtype: dtype of the returned gradient.
    Returns:
        ``(logp [N] float64, grad [T, N, C] or None, ok [N] bool)``: ``log p(l|x)``; the
        gradient of ``-log p`` in PyTorch's convention, ``exp(lp) - gamma`` (garbage on frames
        ``t >= input_lengths``, to be masked by the caller); which items ran without
        underflow (others must be recomputed in log space).
    """
    T, N, C = lp.shape
    K = ext.shape[1]
    H = 2 if need_grad else 1                       # halves: alpha (and beta)
    W = K + 4                                       # two zero columns on each side of the states
    C1 = C + 1                                      # classes + a zero column for invalid states
    dev, dt = lp.device, torch.float64
    tiny = _TINY
    R = _RESCALE_EVERY
    end = 2 * target_lengths
    has_label = target_lengths > 0

    P, Y = _state_probs(lp, ext, H)                 # y_t(k) for all frames, and at the states
    skipm, init = _transitions(skip, end, has_label, H)

    X = _buffer("X", (H, T, N, K), dt, dev)         # exclusive alpha / beta, frame-aligned
    cur = torch.zeros(H, N, W, dtype=dt, device=dev)   # inclusive values of the previous step
    c0 = cur[:, :, 2:K + 2]
    if H == 2:
        hs, off = N * W, cur.storage_offset()
        c1 = cur.as_strided((2, N, K), (hs + 2, W, 1), off + 1)   # alpha s-1 | beta s+1
        c2 = cur.as_strided((2, N, K), (hs + 4, W, 1), off)       # alpha s-2 | beta s+2
    else:
        c1, c2 = cur[:, :, 1:K + 1], cur[:, :, :K]
    NK, TNK = N * K, T * N * K
    n_scales = (T - 1) // R + 1
    scales = torch.ones(n_scales, H, N, 1, dtype=dt, device=dev)   # scales[r]: frame r * R

    if H == 2:
        grad = torch.empty(T, N, C, dtype=grad_dtype, device=dev)
        occ = _buffer("occ", (T, N, C1), dt, dev)
        z_all = torch.empty(T, N, 1, dtype=dt, device=dev)
        g = torch.empty(2, N, K, dtype=dt, device=dev)    # workspace of _finish_frames
        ext2 = ext[None].expand(2, N, K)
        # beta of an item with input_length T_n < T starts at frame T_n - 1, i.e. step T - T_n
        starts = {}
        for n, length in enumerate(input_lengths.tolist()):
            if 0 < length < T:
                starts.setdefault(T - length, []).append(n)

    for i in range(T):
        v = X.as_strided((H, N, K), (TNK + (T - 1 - 2 * i) * NK, K, 1), X.storage_offset() + i * NK)
        if i == 0:
            v.copy_(init)
        else:
            torch.add(c0, c1, out=v)                # from s and s -+ 1
            v.addcmul_(c2, skipm)                   # from s -+ 2 where allowed
            if H == 2 and i in starts:
                idx = torch.tensor(starts[i], device=dev)
                v[1].index_copy_(0, idx, init[1].index_select(0, idx))
            if i % R == 0:
                torch.sum(v, dim=2, keepdim=True, out=scales[i // R])
                v.div_(scales[i // R])
        torch.mul(v, Y[:, i], out=c0)
        if H == 2 and 2 * i >= T - 1:               # frames i and T-1-i now have alpha and beta
            _finish_frames(T - 1 - i, 2 * i - (T - 1), X, Y[0], P[0], ext2, g, occ, z_all, grad)

    logp, ok = _scaled_log_likelihood(scales[:, 0, :, 0], X[0], Y[0], input_lengths, target_lengths)
    if H == 1:
        return logp, None, ok
    z = z_all[:, :, 0]
    if bool((input_lengths == T).all()):
        ok = ok & (z > tiny).all(0)
    else:
        inside = torch.arange(T, device=dev)[:, None] < input_lengths[None, :]
        ok = ok & ((z > tiny) | ~inside).all(0)
    return logp, grad, ok


def _ctc_core(log_probs, targets, input_lengths, target_lengths, blank, need_grad, force_log=False):
    """``(nll [N] float64, grad [T, N, C] (dtype of log_probs) or None)``.

    The gradient is PyTorch's convention (see the module docstring). Items whose scaled
    recursion underflows, or all items with ``force_log``, use the exact float64 log-space
    recursion.
    """
    T, N, C = log_probs.shape
    dev = log_probs.device
    ext, valid, skip = extend_targets(targets, target_lengths, blank)
    K = ext.shape[1]
    lp = log_probs.detach()
    feasible = ctc_feasible(input_lengths, targets, target_lengths)
    if force_log:
        redo = torch.ones(N, dtype=torch.bool, device=dev)
        logp = torch.zeros(N, dtype=torch.float64, device=dev)
        grad = torch.empty(T, N, C, dtype=lp.dtype, device=dev) if need_grad else None
    else:
        logp, grad, ok = _alpha_beta_scaled(lp, ext.masked_fill(~valid, C), skip, input_lengths,
                                            target_lengths, need_grad, lp.dtype)
        redo = ~ok & feasible
    logp = torch.where(feasible, logp, -math.inf)
    if bool(redo.any()):  # underflow in the scaled recursion: exact log space for those items
        idx = torch.nonzero(redo).squeeze(1)
        e = ext[idx]
        lp64 = lp[:, idx].double()
        lpe = lp64.gather(2, e[None].expand(T, idx.numel(), K)).masked_fill(~valid[idx][None], -math.inf)
        lp2, gamma, _ = _alpha_beta_log(lpe, valid[idx], skip[idx], input_lengths[idx], target_lengths[idx],
                                        need_grad)
        logp = logp.clone()
        logp[idx] = lp2
        if need_grad:
            occ2 = torch.zeros(T, idx.numel(), C, dtype=torch.float64, device=dev)
            occ2.scatter_add_(2, e[None].expand(T, idx.numel(), K), gamma)
            grad[:, idx] = (torch.exp(lp64) - occ2).to(grad.dtype)    # Graves eq. 16
    nll = -logp
    if not need_grad:
        return nll, None
    if not bool((input_lengths == T).all()):
        inside = torch.arange(T, device=dev)[:, None] < input_lengths[None, :]   # [T, N]
        grad.masked_fill_(~inside[:, :, None], 0.0)
        if bool((~feasible).any()):                  # infeasible: NaN on its frames, like PyTorch
            grad.masked_fill_((inside & ~feasible[None, :])[:, :, None], math.nan)
    elif bool((~feasible).any()):
        grad.masked_fill_(~feasible[None, :, None], math.nan)
    return nll, grad


class _CTCLossFunction(torch.autograd.Function):
    """Per-item negative log-likelihood with the gradient from the alpha-beta recursions.

    forward(log_probs [T, N, C], targets [N, S], input_lengths [N], target_lengths [N],
    blank, zero_infinity, force_log, need_grad) -> nll [N] (dtype of log_probs); with
    ``need_grad`` the gradient is computed in the forward (one fused loop) and saved.
    backward: ``grad_out[n] * (exp(log_probs) - gamma)`` on frames ``t < input_lengths[n]``
    (Graves 2006 eq. 16, PyTorch's convention), 0 elsewhere; 0 for items zeroed by
    ``zero_infinity``.
    """

    @staticmethod
    def forward(ctx, log_probs, targets, input_lengths, target_lengths, blank, zero_infinity, force_log, need_grad):
        nll, grad = _ctc_core(log_probs, targets, input_lengths, target_lengths, blank, need_grad, force_log)
        if zero_infinity:
            inf = torch.isinf(nll)
            if bool(inf.any()):
                nll = torch.where(inf, torch.zeros_like(nll), nll)
                if grad is not None:
                    grad.masked_fill_(inf[None, :, None], 0.0)
        ctx.save_for_backward(grad)
        return nll.to(log_probs.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (grad,) = ctx.saved_tensors
        if grad is None:
            return (None,) * 8
        return grad * grad_out[None, :, None], None, None, None, None, None, None, None


def ctc_loss(log_probs: torch.Tensor, targets, input_lengths, target_lengths, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False) -> torch.Tensor:
    """Connectionist Temporal Classification loss, same contract as ``torch.nn.functional.ctc_loss``.

    Args:
        log_probs: ``(T, N, C)`` (or ``(T, C)`` unbatched) log-softmax outputs, float32 or
            float64, any device.
        targets: ``(N, S)`` padded class indices (entries past ``target_lengths`` ignored) or
            the 1-D concatenation of all targets (``sum(target_lengths)`` entries); ``(S,)``
            for an unbatched input. Labels lie in ``[0, C)`` and are never ``blank``.
        input_lengths: ``(N,)`` frames per item, each in ``[0, T]`` (tensor, list or int).
        target_lengths: ``(N,)`` labels per item.
        blank: index of the blank class.
        reduction: ``"none"`` -> ``(N,)`` losses (scalar unbatched); ``"sum"``; ``"mean"`` ->
            each loss divided by its target length (at least 1), then averaged over the batch.
        zero_infinity: an infeasible item (``T_n < L_n + repeats``: loss ``inf``) gets loss 0
            and zero gradient instead of ``inf`` and NaN gradients.

    Returns:
        The loss (``-log p(target | log_probs)`` per item, Graves et al. 2006 eq. 8, 14), with
        a gradient w.r.t. ``log_probs`` equal to PyTorch's (``exp(log_probs) - occupancy``,
        eq. 16) computed from the beta recursion.

    Raises:
        ValueError: wrong ranks or shapes, lengths out of range, ``blank`` inside the targets,
            labels outside ``[0, C)``, unknown ``reduction``.
    Warns:
        RuntimeWarning: ``log_probs`` rows are not normalised (logits passed by mistake).
    """
    if reduction not in ("none", "sum", "mean"):
        raise ValueError(f"reduction must be 'none', 'sum' or 'mean', got {reduction!r}")
    lp, tgt, il, tl, unbatched = prepare_inputs(log_probs, targets, input_lengths, target_lengths, blank)
    _warn_if_not_log_probs(lp, il)
    need_grad = lp.requires_grad and torch.is_grad_enabled()      # else skip beta entirely
    nll = _CTCLossFunction.apply(lp, tgt, il, tl, blank, bool(zero_infinity), False, need_grad)
    if reduction == "none":
        return nll.squeeze(0) if unbatched else nll
    if reduction == "sum":
        return nll.sum()
    return (nll / tl.clamp(min=1).to(nll.dtype)).mean()
