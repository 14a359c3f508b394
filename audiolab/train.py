"""One training loop for every script: tqdm bar, per-epoch CSV log, checkpoints, resume.

Usage::

    history = fit(model, optimizer, train_loader, step_fn, epochs=10,
                  eval_fn=lambda m: {"test_loss": ..., "test_si_snr_db": ...},
                  checkpoint_path=out / "checkpoint.pt", log_path=out / "log.csv",
                  resume=args.resume, device=device, config=vars(args))

``step_fn(model, batch) -> loss`` (a scalar tensor) or ``(loss, {"name": float, ...})``
computes one mini-batch; ``fit`` does ``zero_grad / backward / (clip) / step``. After
each epoch ``eval_fn(model)`` (in ``eval`` mode, no grad) returns metrics; the epoch's
row (``epoch``, ``train_loss``, the step extras averaged, the eval metrics,
``epoch_seconds``) is appended to the history, the CSV is rewritten and the checkpoint
is saved atomically, so an interrupted run loses at most the epoch in flight and
``resume=True`` continues after the last finished epoch.
"""

from __future__ import annotations

import math
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from tqdm.auto import tqdm

from .runtime import UserError, write_csv

StepFn = Callable[[torch.nn.Module, Any], "torch.Tensor | tuple[torch.Tensor, Mapping[str, float]]"]


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> Path:
    """``torch.save`` to a temp file, then rename (never a half-written checkpoint)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(dict(state), tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Raises:
        UserError: the file is missing or cannot be read (e.g. truncated).
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint {path} does not exist; train first (without --resume)")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # truncated / corrupt file
        raise UserError(f"checkpoint {path} cannot be read ({err}); delete it and train again") from None


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_log_csv(path: str | Path, history: list[Mapping[str, Any]]) -> Path:
    """Write the per-epoch history as CSV (union of keys as columns), atomically."""
    return write_csv(path, history)


def to_device(batch: Any, device: torch.device) -> Any:
    """Move tensors inside (nested) tuples/lists/dicts to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def fit(model: torch.nn.Module, optimizer: torch.optim.Optimizer, train_loader, step_fn: StepFn, epochs: int, *,
        eval_fn: Callable[[torch.nn.Module], Mapping[str, float]] | None = None,
        device: torch.device | str = "cpu", checkpoint_path: str | Path | None = None,
        log_path: str | Path | None = None, resume: bool = False, scheduler=None,
        grad_clip: float | None = None, best_key: str | None = None, best_mode: str = "max",
        config: Mapping[str, Any] | None = None, desc: str = "train", progress: bool = True,
        move_batch: bool = True) -> list[dict]:
    """Train ``model`` for ``epochs`` epochs; return the per-epoch history (list of dicts).

    Args:
        model, optimizer: what to train (the model is moved to ``device``).
        train_loader: an iterable of batches (re-iterated each epoch).
        step_fn: ``step_fn(model, batch)`` -> loss or ``(loss, extras)``; batches are moved to
            ``device`` first unless ``move_batch`` is False. A loss that does not require grad
            (no term applied to the batch) skips the batch: no update, not counted.
        epochs: total number of epochs (a resumed run trains the remaining ones).
        eval_fn: per-epoch evaluation, called under ``torch.no_grad()`` in eval mode.
        checkpoint_path: where ``{model, optimizer, scheduler, epoch, history, rng, config}``
            is saved after every epoch; ``best_key`` also keeps ``<stem>_best.pt``.
        log_path: per-epoch CSV.
        resume: continue from ``checkpoint_path``.
        scheduler: stepped once per epoch.
        grad_clip: max gradient norm (``None`` for none).
        best_key, best_mode: keep the checkpoint with the best ``history[best_key]``
            (``"max"`` or ``"min"``).

    Raises:
        UserError: ``resume`` without a readable checkpoint or with one saved for another model
            shape, or a non-finite loss.
    """
    device = torch.device(device)
    model.to(device)
    history: list[dict] = []
    start_epoch = 1
    best_value = None
    if resume:
        if checkpoint_path is None:
            raise UserError("--resume needs a checkpoint path")
        state = load_checkpoint(checkpoint_path, map_location=device)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as err:  # missing/unexpected keys or other shapes: saved with other settings
            raise UserError(f"{checkpoint_path} does not fit this model (saved with other settings? "
                            f"{str(err).splitlines()[0]}); run without --resume or with the same flags") from None
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        history = list(state.get("history", []))
        best_value = state.get("best_value")
        start_epoch = int(state["epoch"]) + 1
        if "rng" in state:
            _set_rng_state(state["rng"])
        print(f"resumed from {checkpoint_path} after epoch {state['epoch']}")
        if start_epoch > epochs:
            print(f"nothing to do: the checkpoint already has {state['epoch']} of {epochs} epochs")
    for epoch in range(start_epoch, epochs + 1):
        model.train()
        t0 = time.perf_counter()
        total, count = 0.0, 0
        extras_sum: dict[str, float] = {}
        extras_n: dict[str, int] = {}  # an extra may be missing from some batches: average over those that have it
        bar = tqdm(train_loader, desc=f"{desc} epoch {epoch}/{epochs}", leave=False, disable=not progress,
                   dynamic_ncols=True)
        for batch in bar:
            if move_batch:
                batch = to_device(batch, device)
            out = step_fn(model, batch)
            loss, extras = (out if isinstance(out, tuple) else (out, {}))
            if not torch.isfinite(loss):
                raise UserError(f"non-finite training loss ({loss.item()}) at epoch {epoch}; "
                                "lower the learning rate or check the data")
            if not loss.requires_grad:  # no loss term applied to this batch: nothing to learn, no step
                continue
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            total += float(loss.detach())
            count += 1
            for k, v in extras.items():
                extras_sum[k] = extras_sum.get(k, 0.0) + float(v)
                extras_n[k] = extras_n.get(k, 0) + 1
            bar.set_postfix(loss=f"{total / count:.4g}")
        bar.close()
        if scheduler is not None:
            scheduler.step()
        row: dict[str, Any] = {"epoch": epoch, "train_loss": total / max(count, 1)}
        row.update({k: v / extras_n[k] for k, v in extras_sum.items()})
        if eval_fn is not None:
            model.eval()
            with torch.no_grad():
                row.update({k: float(v) for k, v in eval_fn(model).items()})
        row["epoch_seconds"] = time.perf_counter() - t0
        history.append(row)
        shown = ", ".join(f"{k}={v:.4g}" for k, v in row.items()
                          if k != "epoch" and isinstance(v, float) and math.isfinite(v))
        tqdm.write(f"[{desc}] epoch {epoch}/{epochs}: {shown}")
        if log_path is not None:
            write_log_csv(log_path, history)
        if checkpoint_path is not None:
            improved = False
            if best_key is not None and best_key in row:
                value = row[best_key]
                improved = best_value is None or (value > best_value if best_mode == "max" else value < best_value)
                if improved:
                    best_value = value
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict() if scheduler is not None else None,
                     "epoch": epoch, "history": history, "rng": _rng_state(), "config": dict(config or {}),
                     "best_value": best_value}
            save_checkpoint(checkpoint_path, state)
            if improved:
                p = Path(checkpoint_path)
                save_checkpoint(p.with_name(f"{p.stem}_best{p.suffix}"), state)
    return history
