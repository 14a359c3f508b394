"""Worker for tests/test_ddp.py, started by ``python -m torch.distributed.run --nproc_per_node 2``.

Each rank trains tiny models without BatchNorm through ``audiolab.core.train.fit`` (which finds
torchrun by itself) and saves what the test compares under ``--out``:

- ``sampler``: a ``DataLoader`` (shuffled, batch B per rank) -> ``DistributedSampler``; the
  step calls the model (DDP's forward). 3 epochs uninterrupted (``full/``), and 2 epochs,
  then fresh objects and ``extend_to=3`` (a resume; no LR schedule, so exact) (``part/``).
- ``roundrobin``: a plain batch iterable with its own generator (split round-robin) and a
  step that calls a submodule only (gradients averaged by ``fit``'s own all_reduce).

The test builds the one-process, batch-2B references from the same helpers.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

import audiolab.core.train as T

N, B, EPOCHS, SEED = 32, 4, 3, 0


class Net(torch.nn.Module):
    """``[N, 6] -> [N, 1]``; ``net`` is also called directly (bypassing the wrapper's forward)."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

    def forward(self, x):
        return self.net(x)


def problem() -> tuple[torch.utils.data.TensorDataset, Net]:
    g = torch.Generator().manual_seed(123)
    x = torch.randn(N, 6, generator=g)
    y = x @ torch.randn(6, 1, generator=g) + 0.1 * torch.randn(N, 1, generator=g)
    torch.manual_seed(SEED)
    return torch.utils.data.TensorDataset(x, y, torch.arange(N)), Net()


class Batches:
    """Shuffled mini-batches of ``size`` from a generator of its own (a plain iterable, not a DataLoader);
    ``group`` > 1 concatenates consecutive batches (the one-process reference for round-robin)."""

    def __init__(self, ds, size: int, group: int = 1):
        self.ds, self.size, self.group = ds, size, group
        self.gen = torch.Generator().manual_seed(7)

    def __len__(self):
        return len(self.ds) // (self.size * self.group)

    def __iter__(self):
        order = torch.randperm(len(self.ds), generator=self.gen)
        step = self.size * self.group
        for i in range(0, len(order) - step + 1, step):
            yield self.ds[order[i:i + step]]


def run(kind: str, out: Path, epochs: int, extend_to: int | None = None, skip: str | None = None) -> dict:
    """``skip``: ``"one"`` -- rank 1's first batch of every epoch has no loss term (a loss without
    grad); ``"all"`` -- every rank's first batch has none (no optimizer step)."""
    ds, model = problem()
    seen: list[list[int]] = []
    steps_per_epoch = N // (2 * B)

    def step(m, batch):
        x, y, idx = batch
        seen.append(idx.tolist())
        pred = m(x) if kind == "sampler" else m.net(x)  # the second bypasses DDP's forward
        first = (len(seen) - 1) % steps_per_epoch == 0
        if first and (skip == "all" or (skip == "one" and os.environ["RANK"] == "1")):
            return pred.sum().detach() * 0.0  # no loss term applies to this batch
        return ((pred - y) ** 2).mean(), {"batch_items": float(len(idx))}

    if kind == "sampler":
        loader = torch.utils.data.DataLoader(ds, batch_size=B, shuffle=True,
                                             generator=torch.Generator().manual_seed(SEED))
    else:
        loader = Batches(ds, B)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    history = T.fit(model, optimizer, loader, step, epochs, checkpoint_path=out / "ckpt.pt", log_path=out / "log.csv",
                    extend_to=extend_to, config={"kind": kind, "lr": 0.05}, progress=False, desc=kind)
    return {"weights": {k: v.clone() for k, v in model.state_dict().items()}, "seen": seen,
            "optimizer_steps": int(optimizer.state_dict()["state"][0]["step"]),
            "epochs": [r["epoch"] for r in history], "train_loss": [r["train_loss"] for r in history],
            "world_size": history.world_size, "backend": history.backend}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    rank = int(os.environ["RANK"])
    writes: list[str] = []
    save, log = T.save_checkpoint, T.write_log_csv
    T.save_checkpoint = lambda path, state: (writes.append(str(path)), save(path, state))[1]
    T.write_log_csv = lambda path, hist: (writes.append(str(path)), log(path, hist))[1]
    results = {"sampler_full": run("sampler", args.out / "sampler_full", EPOCHS)}
    run("sampler", args.out / "sampler_part", EPOCHS - 1)
    torch.manual_seed(999 + rank)  # a restarted process starts from other random state: resume must restore it
    results["sampler_resumed"] = run("sampler", args.out / "sampler_part", EPOCHS, extend_to=EPOCHS)
    results["roundrobin"] = run("roundrobin", args.out / "roundrobin", EPOCHS)
    results["skip_one"] = run("sampler", args.out / "skip_one", EPOCHS, skip="one")
    results["skip_all"] = run("sampler", args.out / "skip_all", EPOCHS, skip="all")
    torch.save(results, args.out / f"result_rank{rank}.pt")
    (args.out / f"writes_rank{rank}.json").write_text(json.dumps(writes))


if __name__ == "__main__":
    main()
