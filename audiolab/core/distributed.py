"""The ``torchrun`` side of :func:`audiolab.core.train.fit`: process group, DistributedDataParallel, batch splitting.

Nothing here runs without ``torchrun``: :func:`init_distributed` returns ``None`` and ``fit``
trains in one process. Under ``torchrun`` (``torch.distributed.is_torchelastic_launched()``)
``fit`` uses, in this order:

1. :func:`init_distributed` joins the process group (``nccl`` on CUDA, ``gloo`` on the CPU);
2. :func:`distribute` wraps the model in ``DistributedDataParallel`` (a :class:`StepModel` is
   what ``step_fn`` gets), gives a ``DataLoader`` a ``DistributedSampler`` (:func:`shard`)
   or splits any other batch iterable round-robin (:func:`round_robin`), and gives every
   rank random streams of its own for augmentation (:func:`reseed`);
3. per step, :func:`count_ranks` lets all ranks agree on what to do with the step,
   :func:`zero_loss` and :func:`sync_gradients` keep ``backward`` in step across ranks;
4. :func:`broadcast` / :func:`gather` move the epoch's metrics, times and random state.

See ``experiments/ddp.md`` for the measurements.
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime
import os
import random
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist

from audiolab.core.runtime import UserError

#: how long a rank waits for the others in one collective (rank 0 evaluating, writing figures, ...)
DIST_TIMEOUT = datetime.timedelta(minutes=int(os.environ.get("AUDIOLAB_DIST_TIMEOUT_MIN", "60")))

__all__ = ["DIST_TIMEOUT", "DistContext", "world_size", "init_distributed", "broadcast", "gather", "distribute",
           "StepModel", "count_ranks", "zero_loss", "sync_gradients", "average_gradients", "shard", "round_robin",
           "reseed", "reseed_global"]


@dataclasses.dataclass
class DistContext:
    """This process's place in the ``torchrun`` process group."""

    rank: int
    world: int
    backend: str
    device: torch.device


def world_size() -> int:
    """Processes training together: the process group's size under ``torchrun``, else 1."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1")) if _launched() else 1


def _launched() -> bool:
    return dist.is_available() and dist.is_torchelastic_launched()


def _destroy_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def init_distributed(device: torch.device) -> DistContext | None:
    """Join the process group torchrun prepared (``nccl`` on CUDA, ``gloo`` on the CPU); ``None`` without torchrun.

    On CUDA each process takes the GPU ``LOCAL_RANK``. The group is destroyed at exit.

    Raises:
        UserError: ``device`` is Apple MPS (no distributed backend).
    """
    if not _launched():
        return None
    if device.type == "mps":
        raise UserError("torchrun on Apple MPS is not supported (no distributed backend); use --device cpu")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=DIST_TIMEOUT)
        atexit.register(_destroy_group)
    return DistContext(dist.get_rank(), dist.get_world_size(), str(dist.get_backend()), device)


def broadcast(obj: Any, ctx: DistContext | None) -> Any:
    """Rank 0's ``obj`` on every rank (``obj`` itself without torchrun)."""
    if ctx is None:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: Any, ctx: DistContext | None) -> list:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` without torchrun)."""
    if ctx is None:
        return [obj]
    out: list = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out


# ------------------------------------------------------------------------------- model and batches
def distribute(model: torch.nn.Module, train_loader: Any, generators: Mapping[str, Any], ctx: DistContext,
               desc: str) -> tuple[StepModel, Callable[[int], Any]]:
    """Wrap ``model`` in ``DistributedDataParallel`` and split ``train_loader`` over the ranks.

    Args:
        model: already on ``ctx.device``.
        train_loader: a ``DataLoader`` (given a ``DistributedSampler``, :func:`shard`) or any
            batch iterable with ``len()`` (split :func:`round_robin`).
        generators: the random generators ``fit`` checkpoints (``{"loader.…": gen, "model.…": gen}``);
            on ranks > 0 the model's, and with a sampler all of them, get streams of their own
            (:func:`reseed`) so augmentation differs between ranks while the batch order stays shared.
        desc: the run's name in the one line rank 0 prints.

    Returns:
        ``(step_model, batches_of)``: what ``step_fn`` gets, and ``batches_of(epoch)``, this
        rank's batches of that epoch.
    """
    ddp = torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None, find_unused_parameters=True)
    sharded, mode = shard(train_loader, ctx)
    if ctx.rank > 0:  # augmentation streams of their own per rank; the batch order stays shared
        for key, gen in generators.items():
            if key.startswith("model.") or sharded is not None:
                reseed(gen, ctx.rank)
        if sharded is not None:
            reseed_global(ctx.rank)

    def batches_of(epoch: int) -> Any:
        if sharded is None:
            return round_robin(train_loader, ctx)
        sharded.sampler.set_epoch(epoch)
        return sharded

    if ctx.rank == 0:
        print(f"[{desc}] torchrun: {ctx.world} processes ({ctx.backend}), batches split by "
              f"{mode.replace('_', ' ')}; effective batch = {ctx.world} x the per-process batch")
    return StepModel(ddp), batches_of


class StepModel:
    """What ``step_fn`` gets under torchrun: calling it runs ``DistributedDataParallel``'s forward
    (gradients are then averaged across ranks during ``backward``); any other attribute is the
    wrapped model's. A step that never calls the model itself (only its submodules) still trains
    correctly: ``fit`` then averages the gradients with one ``all_reduce`` after ``backward``
    (:func:`sync_gradients`). ``calls`` counts forward calls, ``last_output`` keeps the latest output."""

    def __init__(self, ddp: torch.nn.parallel.DistributedDataParallel):
        self.__dict__.update(ddp=ddp, calls=0, last_output=None)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        out = self.ddp(*args, **kwargs)
        self.last_output = out
        return out

    def __getattr__(self, name: str):
        return getattr(self.ddp.module, name)


def count_ranks(flags: Sequence[bool], ctx: DistContext) -> list[int]:
    """For each flag, how many ranks raised it (one ``all_reduce``), so that all ranks decide a step alike."""
    counts = torch.tensor([int(f) for f in flags], device=ctx.device)
    dist.all_reduce(counts)
    return [int(v) for v in counts.tolist()]


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, Mapping):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


def zero_loss(step_model: StepModel) -> torch.Tensor | None:
    """A loss of 0 over the step's model outputs: a rank with no loss term of its own sends zero gradients,
    for which DDP's ``backward`` on the other ranks waits. ``None`` when no output needs a gradient."""
    outs = [t for t in _tensors(step_model.last_output) if t.requires_grad]
    return sum(t.float().sum() * 0.0 for t in outs) if outs else None


def sync_gradients(step_model: StepModel, params: list[torch.nn.Parameter], ctx: DistContext,
                   ddp_ran: bool) -> None:
    """After ``backward``: drop the step's output and, when the step bypassed DDP's forward
    (``ddp_ran`` False on every rank), average the gradients ourselves (:func:`average_gradients`)."""
    step_model.last_output = None
    if not ddp_ran:
        average_gradients(params, ctx.world)


def average_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    """Mean of every parameter's gradient over ranks (one flat ``all_reduce``); a parameter no rank
    gave a gradient keeps ``grad None``, as in a single process."""
    if not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    has = torch.tensor([p.grad is not None for p in params], dtype=grads[0].dtype, device=grads[0].device)
    flat = torch.cat([g.reshape(-1) for g in grads] + [has])
    dist.all_reduce(flat)
    offset = 0
    counts = flat[-len(params):].tolist()
    for p, g, c in zip(params, grads, counts):
        n = g.numel()
        p.grad = (flat[offset:offset + n].view_as(p) / world).to(p.dtype) if c > 0 else None
        offset += n


def shard(loader: Any, ctx: DistContext) -> tuple[Any, str]:
    """A ``DataLoader`` with a ``DistributedSampler`` in place of its sampler, or ``None`` for round-robin.

    Returns ``(loader or None, "distributed_sampler" or "round_robin")``. The sampler's seed is
    rank 0's (the loader's generator seed, else PyTorch's initial seed), so all ranks share one order.
    """
    if not isinstance(loader, torch.utils.data.DataLoader) or loader.batch_size is None or isinstance(
            loader.dataset, torch.utils.data.IterableDataset):
        return None, "round_robin"
    shuffle = isinstance(loader.sampler, torch.utils.data.RandomSampler)
    seed = int(loader.generator.initial_seed()) if loader.generator is not None else int(torch.initial_seed())
    seed = broadcast(seed % 2**62, ctx)  # one order for all ranks
    sampler = torch.utils.data.DistributedSampler(loader.dataset, num_replicas=ctx.world, rank=ctx.rank,
                                                  shuffle=shuffle, seed=seed, drop_last=loader.drop_last)
    kwargs = dict(batch_size=loader.batch_size, sampler=sampler, num_workers=loader.num_workers,
                  collate_fn=loader.collate_fn, pin_memory=loader.pin_memory, drop_last=loader.drop_last,
                  timeout=loader.timeout, worker_init_fn=loader.worker_init_fn, generator=loader.generator,
                  persistent_workers=loader.persistent_workers)
    if loader.num_workers > 0:
        kwargs.update(prefetch_factor=loader.prefetch_factor, multiprocessing_context=loader.multiprocessing_context)
    return torch.utils.data.DataLoader(loader.dataset, **kwargs), "distributed_sampler"


def _share_global_rng(ctx: DistContext) -> None:
    """Set Python's, NumPy's and PyTorch's (CPU) global random state to rank 0's."""
    python, numpy, torch_cpu = broadcast((random.getstate(), np.random.get_state(), torch.get_rng_state()), ctx)
    random.setstate(python)
    np.random.set_state(numpy)
    torch.set_rng_state(torch_cpu)


def round_robin(loader: Any, ctx: DistContext) -> Iterator[Any]:
    """One epoch of ``loader`` split over ranks: every rank iterates the same batches (the global random
    state is rank 0's at the start) and keeps batches ``rank, rank + W, ...``; the last ``n % W``
    batches are left out so every rank takes the same number of steps.

    Raises:
        UserError: ``loader`` has no ``len()``, or fewer batches than processes.
    """
    _share_global_rng(ctx)
    it = iter(loader)
    try:
        n = len(loader)
    except TypeError:
        raise UserError(f"under torchrun the training batches ({type(loader).__name__}) need a len(); "
                        "give the iterable a __len__ or use a DataLoader") from None
    steps = n // ctx.world
    if steps == 0:
        raise UserError(f"{n} training batch(es) per epoch cannot be split over {ctx.world} processes; "
                        "lower --batch-size or use fewer processes")
    for i in range(steps * ctx.world):
        batch = next(it)
        if i == 0:
            reseed_global(ctx.rank)  # the batch order is drawn; from here each rank's randomness is its own
        if i % ctx.world == ctx.rank:
            yield batch


# ------------------------------------------------------------------------------- per-rank random streams
def reseed(gen: Any, rank: int) -> None:
    """Give ``gen`` (a ``torch.Generator``, NumPy ``Generator`` / ``RandomState`` or ``random.Random``)
    a stream of its own for ``rank`` (derived from its current state, so still reproducible)."""
    if isinstance(gen, torch.Generator):
        gen.manual_seed((gen.initial_seed() * 1_000_003 + rank) % 2**63)
    elif isinstance(gen, np.random.Generator):
        draw = int(gen.integers(2**62))
        gen.bit_generator.state = type(gen.bit_generator)(np.random.SeedSequence([draw, rank])).state
    elif isinstance(gen, np.random.RandomState):
        gen.seed((int(gen.randint(2**31)) * 1_000_003 + rank) % 2**32)
    else:
        gen.seed(gen.getrandbits(62) * 1_000_003 + rank)


def reseed_global(rank: int) -> None:
    """Per-rank global streams (Python, NumPy, PyTorch), drawn from the (rank-identical) current global state."""
    seed = int(torch.randint(0, 2**62, (1,)).item())
    random.seed(seed + rank)
    np.random.seed((seed + rank) % 2**32)
    torch.manual_seed(seed + rank)
