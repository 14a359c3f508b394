"""One training loop for every script: progress bar, per-epoch CSV log, checkpoints, exact resume, torchrun.

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

Exact resume: the checkpoint holds, besides model / optimizer / scheduler / GradScaler
state, every random state the next epoch draws from -- Python's, NumPy's and PyTorch's
global generators and every ``torch.Generator`` / ``numpy.random.Generator`` /
``RandomState`` / ``random.Random`` found as an attribute of the training loader, its
sampler, dataset and collate function and of the model's modules (e.g. a DataLoader's
shuffling generator, a dataset's augmentation generator), plus ``train_loader.state_dict()``
when the loader is a custom iterable that has one. A run interrupted after epoch k and
resumed therefore trains epochs k+1... on the same batches with the same augmentation as
an uninterrupted run. Where it cannot hold: DataLoaders with ``persistent_workers`` (the
workers' random state lives in other processes; a warning says so), and step functions
that keep state of their own in closures (the caller restores that, as ``vae_bss.py`` does
for its warm-up counter). The checkpoint also stores a fingerprint of the settings
(``config``) and of the training data; ``--resume`` with other settings or other data
stops with a :class:`UserError` naming what differs.

Distributed (``torchrun``): when the process was started by ``torchrun``
(``torch.distributed.is_torchelastic_launched()``), ``fit`` initialises the process group
itself (``nccl`` on CUDA, ``gloo`` on the CPU), wraps the model in
``DistributedDataParallel``, gives a ``DataLoader`` a ``DistributedSampler`` (``set_epoch``
every epoch) and splits any other batch iterable round-robin (rank r takes batches r, r+W,
...), sums the logged training metrics over ranks, evaluates on rank 0 and lets only rank 0
write the checkpoint and the log. Each process keeps its own batch size, so the effective
batch is ``world_size x`` the per-process one. Without ``torchrun`` nothing of this happens.
The machinery is in :mod:`audiolab.core.distributed`; see ``experiments/ddp.md``.

Reading order: :func:`fit` (at the end) is the algorithm -- set up (:func:`_set_up`), maybe
resume (:func:`_resume`), then per epoch train (:func:`_train_epoch`, :func:`_train_step`),
reduce over ranks, evaluate, log and checkpoint (:func:`_save_epoch`). The random states and
resume fingerprints a checkpoint holds are :mod:`audiolab.core.checkpoint`'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch
import torch.distributed as dist

from audiolab.core.distributed import (DistContext, broadcast, count_ranks, distribute, gather, init_distributed,
                                       sync_gradients, world_size, zero_loss)
from audiolab.core.checkpoint import (capture_random_state, config_fingerprint, data_fingerprint, find_generators,
                                      fingerprint_mismatch, load_checkpoint, restore_random_state, save_checkpoint,
                                      resume_schedule, set_global_rng_state)
from audiolab.core.outputs import note_schedule, write_csv
from audiolab.core.progress import progress as progress_bar
from audiolab.core.progress import write as write_line
from audiolab.core.runtime import UserError, is_main_process

StepFn = Callable[[torch.nn.Module, Any], "torch.Tensor | tuple[torch.Tensor, Mapping[str, float]]"]

__all__ = ["fit", "History", "save_checkpoint", "load_checkpoint", "data_fingerprint", "config_fingerprint",
           "is_main_process", "world_size", "write_log_csv", "to_device", "n_parameters"]


# ------------------------------------------------------------------------------- history
class History(list):
    """``fit``'s per-epoch rows (a list of dicts) plus totals over the whole run, resumes included.

    Attributes:
        train_seconds: wall-clock seconds of training and per-epoch evaluation, all segments of
            the run (an interrupted run and its ``--resume``) together; on rank 0 under torchrun.
        train_cpu_seconds: process CPU seconds of the same, summed over all ranks.
        world_size: processes that trained together (1 without torchrun).
        backend: ``"gloo"`` / ``"nccl"`` under torchrun, else ``None``.
        schedule: ``{"epochs", "extended_from_epochs"}`` (:func:`resume_schedule`), saved in the checkpoint.
    """

    train_seconds: float = 0.0
    train_cpu_seconds: float = 0.0
    world_size: int = 1
    backend: str | None = None
    schedule: dict | None = None


def write_log_csv(path: str | Path, history: list[Mapping[str, Any]]) -> Path:
    """Write the per-epoch history as CSV (union of keys as columns), atomically."""
    return write_csv(path, history)


def n_parameters(model: torch.nn.Module) -> int:
    """The number of trainable parameters of ``model`` (buffers and frozen parameters not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def to_device(batch: Any, device: torch.device) -> Any:
    """Move tensors inside (nested) tuples/lists/dicts to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


# ------------------------------------------------------------------------------- the loop's parts
@dataclasses.dataclass
class _Run:
    """What every epoch of one :func:`fit` call works with, fixed by :func:`_set_up`."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler | None  # mixed precision on CUDA, else None
    loader: Any  # the caller's train_loader (its random state goes into the checkpoint)
    step_fn: StepFn
    step_model: Any  # what step_fn gets: the model, or a StepModel over DistributedDataParallel under torchrun
    batches_of: Callable[[int], Any]  # epoch -> this process's batches of that epoch
    generators: dict[str, Any]  # random generators found on the loader and the model (see find_generators)
    params: list[torch.nn.Parameter]
    device: torch.device
    ctx: DistContext | None  # None without torchrun
    grad_clip: float | None
    move_batch: bool
    first_loss: float | None = None  # this process's first step loss, the yardstick of DIVERGED_RATIO

    @property
    def main(self) -> bool:
        """This process evaluates, prints and writes (always without torchrun; rank 0 under it)."""
        return self.ctx is None or self.ctx.rank == 0

    @property
    def world(self) -> int:
        """Processes training together (1 without torchrun)."""
        return self.ctx.world if self.ctx is not None else 1

    def autocast(self) -> contextlib.AbstractContextManager:
        """``torch.autocast`` (CUDA, float16) under --amp, else a context that does nothing."""
        return torch.autocast("cuda", dtype=torch.float16) if self.scaler is not None else contextlib.nullcontext()


def _set_up(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, train_loader: Any,
            step_fn: StepFn, *, device: torch.device | str, config: Mapping[str, Any] | None, amp: bool | None,
            grad_clip: float | None, move_batch: bool, desc: str) -> _Run:
    """Join the process group under torchrun, move the model to its device, find the random generators
    the checkpoint carries, switch mixed precision on or off, and under torchrun wrap the model and split
    the batches (:func:`audiolab.core.distributed.distribute`)."""
    ctx = init_distributed(torch.device(device))
    device = ctx.device if ctx is not None else torch.device(device)
    model.to(device)
    generators = find_generators({"loader": train_loader, "model": model})
    if isinstance(train_loader, torch.utils.data.DataLoader) and train_loader.persistent_workers:
        warnings.warn("a DataLoader with persistent_workers keeps its workers' random state out of the checkpoint; "
                      "a resumed run will not repeat the uninterrupted one exactly", stacklevel=3)
    use_amp = bool(config.get("amp", False) if amp is None and config is not None else amp)
    if use_amp and device.type != "cuda":
        if ctx is None or ctx.rank == 0:
            print(f"--amp applies to CUDA only; training in float32 on {device.type}")
        use_amp = False
    if ctx is None:
        step_model, batches_of = model, (lambda epoch: train_loader)
    else:
        step_model, batches_of = distribute(model, train_loader, generators, ctx, desc)
    return _Run(model=model, optimizer=optimizer, scheduler=scheduler,
                scaler=torch.amp.GradScaler("cuda") if use_amp else None, loader=train_loader, step_fn=step_fn,
                step_model=step_model, batches_of=batches_of, generators=generators,
                params=[p for p in model.parameters() if p.requires_grad], device=device, ctx=ctx,
                grad_clip=grad_clip, move_batch=move_batch)


def _load_for_resume(checkpoint_path: str | Path | None, fingerprint: Mapping[str, Any],
                     ctx: DistContext | None) -> dict:
    """Rank 0 reads and checks the checkpoint and hands it to every rank; a problem stops all ranks alike."""
    result: tuple[str, Any]
    if ctx is None or ctx.rank == 0:
        try:
            if checkpoint_path is None:
                raise UserError("--resume needs a checkpoint path")
            state = load_checkpoint(checkpoint_path, map_location="cpu")
            problems = fingerprint_mismatch(state.get("fingerprint"), fingerprint)
            if problems:
                raise UserError(f"cannot --resume from {checkpoint_path}: it was written by a run with other "
                                f"settings or data -- {'; '.join(problems)}. Rerun with the checkpoint's settings, "
                                "or without --resume to start over")
            result = ("ok", state)
        except UserError as err:
            result = ("error", str(err))
    else:
        result = ("", None)
    kind, payload = broadcast(result, ctx)
    if kind == "error":
        raise UserError(payload)
    return payload


def _resume(run: _Run, checkpoint_path: str | Path | None, fingerprint: Mapping[str, Any], history: History,
            epochs: int, extend_to: int | None = None) -> tuple[int, Any]:
    """Continue from ``checkpoint_path``: check it was written by a run with this fingerprint, then load
    the model, optimizer, scheduler and GradScaler state, the history and its times, and this rank's
    random state (:func:`restore_random_state`).

    Returns:
        ``(first epoch to train, best value of best_key so far or None)``.

    Raises:
        UserError: no readable checkpoint, other settings / data / number of processes, or a
            checkpoint saved for another model shape.
    """
    state = _load_for_resume(checkpoint_path, fingerprint, run.ctx)
    history.schedule = resume_schedule(state, epochs, extend_to, checkpoint_path)
    try:
        run.model.load_state_dict(state["model"])
    except RuntimeError as err:  # missing/unexpected keys or other shapes: saved with other settings
        raise UserError(f"{checkpoint_path} does not fit this model (saved with other settings? "
                        f"{str(err).splitlines()[0]}); run without --resume or with the same flags") from None
    run.optimizer.load_state_dict(state["optimizer"])
    if run.scheduler is not None and state.get("scheduler") is not None:
        run.scheduler.load_state_dict(state["scheduler"])
    if run.scaler is not None and state.get("scaler") is not None:
        run.scaler.load_state_dict(state["scaler"])
    history.extend(state.get("history", []))
    history.train_seconds = float(state.get("train_seconds", sum(r.get("epoch_seconds", 0.0) for r in history)))
    history.train_cpu_seconds = float(state.get("train_cpu_seconds", 0.0))
    ranks = state.get("random_state")
    if ranks:
        restore_random_state(ranks[run.ctx.rank if run.ctx else 0], run.loader, run.generators)
    elif "rng" in state:  # written before the generators were saved
        set_global_rng_state(state["rng"])
    start_epoch = int(state["epoch"]) + 1
    if run.main:
        print(f"resumed from {checkpoint_path} after epoch {state['epoch']}")
        if start_epoch > epochs:
            print(f"nothing to do: the checkpoint already has {state['epoch']} of {epochs} epochs")
    return start_epoch, state.get("best_value")


@dataclasses.dataclass
class _EpochSums:
    """Running sums of one epoch's logged training metrics: the loss and each extra of ``step_fn``
    (an extra may be missing from some batches: it is averaged over those that have it)."""

    total: float = 0.0
    count: int = 0
    extras_sum: dict[str, float] = dataclasses.field(default_factory=dict)
    extras_n: dict[str, int] = dataclasses.field(default_factory=dict)

    def add(self, loss: torch.Tensor, extras: Mapping[str, float]) -> None:
        self.total += float(loss.detach())
        self.count += 1
        for k, v in extras.items():
            self.extras_sum[k] = self.extras_sum.get(k, 0.0) + float(v)
            self.extras_n[k] = self.extras_n.get(k, 0) + 1

    def reduce(self, ctx: DistContext | None) -> _EpochSums:
        """The sums over all ranks (every rank's steps count alike); ``self`` without torchrun."""
        if ctx is None:
            return self
        parts = gather((self.total, self.count, self.extras_sum, self.extras_n), ctx)
        out = _EpochSums(total=sum(p[0] for p in parts), count=sum(p[1] for p in parts))
        for _, _, sums, ns in parts:
            for k in sums:
                out.extras_sum[k] = out.extras_sum.get(k, 0.0) + sums[k]
                out.extras_n[k] = out.extras_n.get(k, 0) + ns[k]
        return out

    def row(self, epoch: int) -> dict[str, Any]:
        """The epoch's log row so far: ``epoch``, ``train_loss`` and the extras, averaged."""
        row: dict[str, Any] = {"epoch": epoch, "train_loss": self.total / max(self.count, 1)}
        row.update({k: v / self.extras_n[k] for k, v in self.extras_sum.items()})
        return row


def _train_step(run: _Run, batch: Any, epoch: int) -> tuple[torch.Tensor, Mapping[str, float]] | None:
    """One mini-batch: ``step_fn``, then ``zero_grad / backward / (clip) / step``.

    Under torchrun all ranks first agree (:func:`audiolab.core.distributed.count_ranks`) whether the
    step is taken, so that DDP's collectives stay in step. Returns ``(loss, extras)`` to log, or
    ``None`` when this process's batch does not count (its loss needs no gradient: no loss term
    applied to it).

    Raises:
        UserError: a non-finite loss or one over :data:`DIVERGED_RATIO` times the first step's (on any
            rank), or ranks that took different paths through ``step_fn``.
    """
    if run.move_batch:
        batch = to_device(batch, run.device)
    calls = run.step_model.calls if run.ctx is not None else 0
    with run.autocast():
        out = run.step_fn(run.step_model, batch)
    loss, extras = (out if isinstance(out, tuple) else (out, {}))
    value, has_grad = float(loss.detach()), bool(loss.requires_grad)
    finite = math.isfinite(value)
    if finite and has_grad and run.first_loss is None:
        run.first_loss = value
    exploded = finite and run.first_loss is not None and value > DIVERGED_RATIO * max(abs(run.first_loss), 1.0)
    if run.ctx is not None:  # agree on what to do with this step, all ranks alike
        n_grad, n_ddp, n_bad = count_ranks([has_grad, run.step_model.calls > calls, not finite or exploded], run.ctx)
    else:
        n_grad, n_ddp, n_bad = int(has_grad), 0, int(not finite or exploded)
    if n_bad:  # diverged: stop with the last good epoch's checkpoint kept, never write its numbers
        why = (f"the loss {value:.4g} is over {DIVERGED_RATIO:g} times the first step's ({run.first_loss:.4g})"
               if exploded else f"non-finite training loss ({value})" if not finite else "on another rank")
        raise UserError(f"training diverged at epoch {epoch}: {why}; lower the learning rate (--lr) or the loss "
                        "weights, or check the data (checkpoints of earlier epochs are kept)")
    if run.ctx is not None and 0 < n_ddp < run.world:
        raise UserError("step_fn called the model on some ranks but not on others in one step; "
                        "under torchrun every rank must take the same path through step_fn")
    if n_grad == 0 and n_ddp == 0:  # no loss term applied anywhere: nothing to learn, no step
        return None
    run.optimizer.zero_grad(set_to_none=True)
    # a rank with no loss term of its own still sends (zero) gradients: DDP waits for them
    backward = loss if has_grad else zero_loss(run.step_model)
    if backward is not None:
        (run.scaler.scale(backward) if run.scaler is not None else backward).backward()
    if run.ctx is not None:
        sync_gradients(run.step_model, run.params, run.ctx, ddp_ran=n_ddp > 0)
    if n_grad == 0:
        return None
    _optimizer_step(run)
    return (loss, extras) if has_grad else None


def _optimizer_step(run: _Run) -> None:
    """``optimizer.step()`` after clipping the gradient norm to ``grad_clip``, through the GradScaler under --amp."""
    if run.scaler is not None:
        if run.grad_clip:
            run.scaler.unscale_(run.optimizer)
            torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.grad_clip)
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        if run.grad_clip:
            torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.grad_clip)
        run.optimizer.step()


def _train_epoch(run: _Run, epoch: int, label: str, progress: bool) -> _EpochSums:
    """One pass over this process's batches of ``epoch`` (:func:`_train_step` each) behind a progress bar
    named ``label``; returns this process's sums of the logged metrics."""
    run.model.train()
    sums = _EpochSums()
    batches = run.batches_of(epoch)
    try:
        n_steps = (len(batches) if run.ctx is None or not isinstance(batches, Iterator)
                   else len(run.loader) // run.world)
    except TypeError:
        n_steps = None
    bar = progress_bar(batches, desc=label, total=n_steps, disable=not progress or not run.main)
    for batch in bar:
        step = _train_step(run, batch, epoch)
        if step is not None:
            sums.add(*step)
            bar.set_postfix(loss=f"{sums.total / sums.count:.4g}")
    bar.close()
    return sums


def _evaluate(model: torch.nn.Module, eval_fn: Callable[[torch.nn.Module], Mapping[str, float]] | None) -> dict:
    """``eval_fn(model)`` in eval mode under ``torch.no_grad()``, as floats (``{}`` without one)."""
    if eval_fn is None:
        return {}
    model.eval()
    with torch.no_grad():
        return {k: float(v) for k, v in eval_fn(model).items()}


#: a step whose loss exceeds this many times the run's first step loss (at least 1) has diverged
DIVERGED_RATIO = 1e4


def _log_epoch(row: Mapping[str, Any], history: History, log_path: str | Path | None, label: str) -> None:
    """Print the epoch's finite metrics under the progress bar and rewrite the CSV log (rank 0 only)."""
    shown = ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch" and isinstance(v, float)
                      and math.isfinite(v))
    write_line(f"{label}: {shown}")
    if log_path is not None:
        write_log_csv(log_path, history)


def _improves(row: Mapping[str, Any], best_key: str | None, best_mode: str, best_value: Any) -> bool:
    """Whether ``row[best_key]`` beats ``best_value`` (``"max"``: larger is better, else smaller)."""
    if best_key is None or best_key not in row:
        return False
    value = row[best_key]
    return best_value is None or (value > best_value if best_mode == "max" else value < best_value)


def _checkpoint_state(run: _Run, epoch: int, history: History, random_state: list, config: Mapping[str, Any] | None,
                      fingerprint: Mapping[str, Any], best_value: Any) -> dict:
    """Everything a ``--resume`` after ``epoch`` needs: model / optimizer / scheduler / GradScaler state,
    the history and its times, every rank's random state (``rng``: rank 0's global generators, kept for
    older readers), the settings and the fingerprint they are checked against."""
    return {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
            "scaler": run.scaler.state_dict() if run.scaler is not None else None,
            "epoch": epoch, "history": list(history), "rng": random_state[0]["rng"],
            "random_state": random_state, "config": dict(config or {}), "fingerprint": fingerprint,
            "best_value": best_value, "world_size": run.world, "backend": history.backend,
            "schedule": history.schedule,
            "train_seconds": history.train_seconds, "train_cpu_seconds": history.train_cpu_seconds}


def _save_epoch(run: _Run, checkpoint_path: str | Path, improved: bool, **state_parts: Any) -> None:
    """Gather every rank's random state; rank 0 saves the checkpoint (and ``<stem>_best.pt`` when ``improved``)."""
    random_state = gather(capture_random_state(run.loader, run.generators), run.ctx)
    if run.main:
        state = _checkpoint_state(run, random_state=random_state, **state_parts)
        save_checkpoint(checkpoint_path, state)
        if improved:
            p = Path(checkpoint_path)
            save_checkpoint(p.with_name(f"{p.stem}_best{p.suffix}"), state)


def _fingerprint(config: Mapping[str, Any] | None, data: Any, world: int, with_data: bool) -> dict:
    """What a ``--resume`` must share with this run: settings, number of processes and (``with_data``) training data."""
    return {"config": config_fingerprint(config), "world_size": world,
            "data": data_fingerprint(data) if with_data else None}


def fit(model: torch.nn.Module, optimizer: torch.optim.Optimizer, train_loader, step_fn: StepFn, epochs: int, *,
        eval_fn: Callable[[torch.nn.Module], Mapping[str, float]] | None = None,
        device: torch.device | str = "cpu", checkpoint_path: str | Path | None = None,
        log_path: str | Path | None = None, resume: bool = False, scheduler=None,
        grad_clip: float | None = None, best_key: str | None = None, best_mode: str = "max",
        config: Mapping[str, Any] | None = None, desc: str = "train", progress: bool = True,
        move_batch: bool = True, data: Any = None, amp: bool | None = None, extend_to: int | None = None) -> History:
    """Train ``model`` for ``epochs`` epochs; return the per-epoch history (a :class:`History` list of dicts).

    Args:
        model, optimizer: what to train (the model is moved to ``device``).
        train_loader: an iterable of batches (re-iterated each epoch): a ``DataLoader`` or any
            iterable with ``len()``; optionally with ``state_dict()`` / ``load_state_dict()`` for
            random state the checkpoint should carry.
        step_fn: ``step_fn(model, batch)`` -> loss or ``(loss, extras)``; batches are moved to
            ``device`` first unless ``move_batch`` is False. A loss that does not require grad
            (no term applied to the batch) skips the batch: no update, not counted. Under
            torchrun ``model`` is a stand-in whose call runs ``DistributedDataParallel``.
        epochs: total number of epochs (a resumed run trains the remaining ones; it must be the
            checkpoint's, :func:`resume_schedule`).
        extend_to: resume a finished run and train it on to this many epochs in all, recorded in
            metrics.json (default ``config["extend_to"]``, the ``--extend-to`` flag).
        eval_fn: per-epoch evaluation, called under ``torch.no_grad()`` in eval mode (on rank 0
            only under torchrun; its metrics are sent to the other ranks).
        checkpoint_path: where ``{model, optimizer, scheduler, scaler, epoch, history, random
            state, config, fingerprint, train_seconds}`` is saved after every epoch; ``best_key``
            also keeps ``<stem>_best.pt``.
        log_path: per-epoch CSV.
        resume: continue from ``checkpoint_path``.
        scheduler: stepped once per epoch.
        grad_clip: max gradient norm (``None`` for none).
        best_key, best_mode: keep the checkpoint with the best ``history[best_key]``
            (``"max"`` or ``"min"``).
        config: the run's settings (``vars(args)``); stored, and compared on ``--resume``
            (:func:`config_fingerprint`). ``config["amp"]`` switches mixed precision on.
        data: what identifies the training data for the resume check (:func:`data_fingerprint`);
            default ``train_loader``.
        amp: mixed precision (``torch.autocast`` float16 + ``GradScaler``) on CUDA; ignored
            (float32) on other devices. Default: ``config["amp"]``.

    Raises:
        UserError: ``resume`` without a readable checkpoint, with one saved for another model
            shape, with other settings / data / number of processes / epochs (the message names
            what differs), a diverged run (a non-finite step loss, or one over :data:`DIVERGED_RATIO`
            times the first), or a batch iterable torchrun cannot split.
    """
    t_start, cpu_start = time.perf_counter(), time.process_time()
    run = _set_up(model, optimizer, scheduler, train_loader, step_fn, device=device, config=config, amp=amp,
                  grad_clip=grad_clip, move_batch=move_batch, desc=desc)
    fingerprint = _fingerprint(config, train_loader if data is None else data, run.world,
                               with_data=run.main and checkpoint_path is not None)
    history = History()
    history.world_size, history.backend = run.world, (run.ctx.backend if run.ctx else None)
    history.train_seconds, history.train_cpu_seconds = 0.0, 0.0
    start_epoch, best_value = 1, None
    extend_to = extend_to if extend_to is not None else (config or {}).get("extend_to")
    if extend_to is not None:  # --extend-to N: continue a finished run to N epochs (resume_schedule)
        resume, epochs = True, int(extend_to)
    history.schedule = {"epochs": epochs, "extended_from_epochs": None}
    if resume:
        start_epoch, best_value = _resume(run, checkpoint_path, fingerprint, history, epochs, extend_to)
    if history.schedule["extended_from_epochs"] is not None:
        note_schedule(desc, history.schedule)  # metrics.json says this is not a plain run of `epochs` epochs
    prev_seconds, prev_cpu = history.train_seconds, history.train_cpu_seconds

    for epoch in range(start_epoch, epochs + 1):
        t0 = time.perf_counter()
        sums = _train_epoch(run, epoch, label=f"{desc} epoch {epoch}/{epochs}", progress=progress)
        if scheduler is not None:
            scheduler.step()
        row = sums.reduce(run.ctx).row(epoch)
        if run.main:
            row.update(_evaluate(model, eval_fn))
            row["epoch_seconds"] = time.perf_counter() - t0
        row = broadcast(row, run.ctx)
        history.append(row)
        cpu = gather(time.process_time() - cpu_start, run.ctx)  # summed over ranks; wall time is rank 0's
        history.train_seconds = prev_seconds + broadcast(time.perf_counter() - t_start, run.ctx)
        history.train_cpu_seconds = prev_cpu + sum(cpu)
        if run.main:
            _log_epoch(row, history, log_path, label=f"[{desc}] epoch {epoch}/{epochs}")
        improved = _improves(row, best_key, best_mode, best_value)
        if improved:
            best_value = row[best_key]
        if checkpoint_path is not None:
            _save_epoch(run, checkpoint_path, improved, epoch=epoch, history=history, config=config,
                        fingerprint=fingerprint, best_value=best_value)

    if run.ctx is not None:
        dist.barrier()  # every rank returns once rank 0's checkpoints are on disk
    return history
