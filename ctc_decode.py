"""Decoding CTC outputs: Viterbi forced alignment and greedy (best-path) decoding, from scratch.

``viterbi_align`` finds the single best alignment of a known target to ``log_probs`` (the
max-product twin of the loss's alpha recursion in ``ctc.py``); ``greedy_decode`` reads a
hypothesis off the frame-wise argmax. Imported by ``q2_ctc.py``, ``q2_compare.py`` and
``q2_multitask.py``; it is not a script. The alignment figure is
``audiolab.core.plotting.plot_alignment``.

Sources: A. Graves et al., "Connectionist Temporal Classification", ICML 2006 (eq. 6, section
3.2); L. Rabiner, "A tutorial on HMMs", Proc. IEEE 1989 (Viterbi, section III.B).
"""

from __future__ import annotations

import math

import torch

from ctc import as_long_1d, extend_targets, prepare_inputs

__all__ = ["viterbi_align", "greedy_decode"]


def viterbi_align(log_probs: torch.Tensor, targets, input_lengths, target_lengths, blank: int = 0,
                  return_positions: bool = False):
    """Viterbi forced alignment: the single best CTC path for each target (batched).

    Max-product version of the alpha recursion (Graves 2006 eq. 6 with max for sum;
    Rabiner 1989 section III.B), with back-pointers and a vectorised backtrack.

    Args:
        log_probs: ``(T, N, C)`` log-probabilities (or ``(T, C)``); same input contract as
            :func:`ctc_loss` (padded or concatenated targets).
        targets, input_lengths, target_lengths, blank: as for :func:`ctc_loss`.
        return_positions: also return the index into the target of each frame.

    Returns:
        ``(paths, scores)`` or ``(paths, scores, positions)``:
        - ``paths`` ``LongTensor [N, T]``: for each frame the class of the best alignment
          (a target token id or ``blank``), ``-1`` past ``input_lengths``;
        - ``scores`` ``[N]`` (dtype of log_probs): the best alignment's log-probability
          ``sum_t log_probs[t, n, paths[n, t]]`` (``-inf`` and paths of ``-1`` when infeasible);
        - ``positions`` ``LongTensor [N, T]``: index into the target (0..L-1) on label frames,
          ``-1`` on blank frames and past ``input_lengths``.
        Unbatched input gives ``[T]`` paths and a scalar score.
    """
    lp, tgt, il, tl, unbatched = prepare_inputs(log_probs, targets, input_lengths, target_lengths, blank)
    T, N, C = lp.shape
    dev = lp.device
    ext, valid, skip = extend_targets(tgt, tl, blank)
    K = ext.shape[1]
    ninf = -math.inf
    lpe = lp.detach().to(torch.float64).gather(2, ext[None].expand(T, N, K)).masked_fill(~valid[None], ninf)
    no_skip = torch.where(skip, 0.0, ninf).to(torch.float64)
    # delta with two leading -inf columns (column s + 2 holds state s): predecessors are views
    D = torch.full((N, K + 2), ninf, dtype=torch.float64, device=dev)
    D[:, 2:4] = lpe[0, :, :2]
    back = torch.zeros(T, N, K, dtype=torch.uint8, device=dev)     # 0: stay, 1: from s-1, 2: from s-2
    cand = torch.empty(3, N, K, dtype=torch.float64, device=dev)
    t_idx = torch.arange(T, device=dev)
    last_t = (il - 1).clamp(min=0)
    end = 2 * tl
    final = torch.full((N, K), ninf, dtype=torch.float64, device=dev)   # delta at each item's last frame
    ends: dict[int, list[int]] = {}
    for n, length in enumerate(il.tolist()):
        if length > 0:
            ends.setdefault(length - 1, []).append(n)
    for t in range(T):
        if t > 0:
            cand[0].copy_(D[:, 2:])
            cand[1].copy_(D[:, 1:-1])
            torch.add(D[:, :-2], no_skip, out=cand[2])
            best, arg = cand.max(0)                 # ties prefer staying, then s-1
            back[t] = arg
            torch.add(lpe[t], best, out=D[:, 2:])
        if t in ends:
            idx = torch.tensor(ends[t], device=dev)
            final[idx] = D[idx, 2:]
    ar = torch.arange(N, device=dev)
    s_end = final.gather(1, end[:, None]).squeeze(1)
    s_end1 = torch.where(tl > 0, final.gather(1, (end - 1).clamp(min=0)[:, None]).squeeze(1),
                         torch.full_like(s_end, ninf))
    take1 = s_end1 > s_end
    state = torch.where(take1, end - 1, end)
    scores = torch.maximum(s_end, s_end1)
    scores = torch.where(il > 0, scores, torch.where(tl == 0, 0.0, ninf).to(scores.dtype))
    states = torch.full((N, T), -1, dtype=torch.long, device=dev)
    for t in range(T - 1, -1, -1):
        active = t <= last_t
        states[:, t] = torch.where(active & (il > 0), state, -1)
        step = back[t, ar, state.clamp(0, K - 1)].long()
        state = torch.where(active & (t > 0), state - step, state)
    feasible = torch.isfinite(scores)
    keep = (t_idx[None, :] < il[:, None]) & feasible[:, None]
    safe = states.clamp(min=0)
    paths = torch.where(keep, ext.gather(1, safe), torch.full_like(safe, -1))
    positions = torch.where(keep & (safe % 2 == 1), (safe - 1) // 2, torch.full_like(safe, -1))
    scores = scores.to(lp.dtype)
    if unbatched:
        paths, scores, positions = paths[0], scores[0], positions[0]
    return (paths, scores, positions) if return_positions else (paths, scores)


def greedy_decode(log_probs: torch.Tensor, input_lengths=None, blank: int = 0) -> list[list[int]]:
    """Best-path (greedy) CTC decoding: argmax per frame, collapse repeats, drop blanks (batched).

    Graves 2006 section 3.2, "best path decoding".

    Args:
        log_probs: ``(T, N, C)`` scores (log-probabilities or logits: only the argmax matters),
            or ``(T, C)`` for one sequence.
        input_lengths: ``(N,)`` valid frames per item; ``None`` means all ``T``.
        blank: index of the blank class.
    Returns:
        One list of class indices per item (a list with one list for ``(T, C)`` input).
    Raises:
        ValueError: wrong rank, lengths out of ``[0, T]``, ``blank`` outside ``[0, C)``.
    """
    if not isinstance(log_probs, torch.Tensor) or log_probs.dim() not in (2, 3):
        raise ValueError("log_probs must be a tensor of shape (T, N, C) or (T, C)")
    if log_probs.dim() == 2:
        log_probs = log_probs.unsqueeze(1)
    T, N, C = log_probs.shape
    if not (isinstance(blank, int) and 0 <= blank < C):
        raise ValueError(f"blank must be an int in [0, {C}), got {blank!r}")
    il = torch.full((N,), T, dtype=torch.long) if input_lengths is None else \
        as_long_1d(input_lengths, "input_lengths", "cpu")
    if il.numel() != N or (il < 0).any() or (il > T).any():
        raise ValueError(f"input_lengths must have {N} entries in [0, T={T}]")
    best = log_probs.detach().argmax(2).cpu()                    # [T, N]
    new = torch.ones_like(best, dtype=torch.bool)
    new[1:] = best[1:] != best[:-1]
    keep = new & (best != blank) & (torch.arange(T)[:, None] < il[None, :])
    return [best[keep[:, n], n].tolist() for n in range(N)]
