"""audiolab.core.train.fit under torchrun (DistributedDataParallel, gloo, two CPU processes).

One ``torch.distributed.run`` launch of ``tests/_ddp_worker.py`` trains tiny models without
BatchNorm; this process trains the one-process references with batch 2B on the same data
order and compares: two ranks x batch B must end with the weights of one process x batch 2B
(float tolerance), only rank 0 writes checkpoints and logs, and a distributed run resumed
from its checkpoint continues the epoch count and the sampler's order bit for bit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import _ddp_worker as W

from audiolab.core.train import fit

ROOT = Path(__file__).resolve().parent.parent


def torchrun(*args: str, cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --standalone --nproc_per_node 2 ...`` with one thread per process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("RANK", None)
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    proc = torchrun(str(Path(__file__).resolve().parent / "_ddp_worker.py"), "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [torch.load(out / f"result_rank{r}.pt", weights_only=False) for r in range(2)]
    writes = [json.loads((out / f"writes_rank{r}.json").read_text()) for r in range(2)]
    return out, ranks, writes


class SamplerOrder:
    """The one-process reference for ``DistributedSampler`` (seed s, shuffle, 2 ranks x batch B):
    epoch e's permutation ``randperm(N, seed s + e)``, cut into batches of 2B in order."""

    def __init__(self, ds, seed: int):
        self.ds, self.seed, self.epoch = ds, seed, 0

    def __len__(self):
        return len(self.ds) // (2 * W.B)

    def __iter__(self):
        self.epoch += 1
        perm = torch.randperm(len(self.ds), generator=torch.Generator().manual_seed(self.seed + self.epoch))
        for k in range(len(self)):
            yield self.ds[perm[2 * W.B * k:2 * W.B * (k + 1)]]


def reference(kind: str) -> dict:
    """One process, batch 2B, the order the two ranks saw together."""
    ds, model = W.problem()
    loader = SamplerOrder(ds, W.SEED) if kind == "sampler" else W.Batches(ds, W.B, group=2)
    seen = []

    def step(m, batch):
        x, y, idx = batch
        seen.append(sorted(idx.tolist()))
        return ((m(x) - y) ** 2).mean()

    history = fit(model, torch.optim.Adam(model.parameters(), lr=0.05), loader, step, W.EPOCHS, progress=False)
    assert history.world_size == 1 and history.backend is None  # without torchrun nothing distributed happens
    return {"weights": model.state_dict(), "seen": seen, "train_loss": [r["train_loss"] for r in history]}


@pytest.mark.parametrize("kind", ["sampler", "roundrobin"])
def test_two_ranks_batch_b_equal_one_process_batch_2b(ddp_run, kind):
    _, ranks, _ = ddp_run
    ref = reference(kind)
    key = "sampler_full" if kind == "sampler" else "roundrobin"
    r0, r1 = ranks[0][key], ranks[1][key]
    assert r0["world_size"] == 2 and r0["backend"] == "gloo"
    # the two ranks saw disjoint halves of each reference batch, in the reference's order
    joint = [sorted(a + b) for a, b in zip(r0["seen"], r1["seen"])]
    assert joint == ref["seen"]
    assert all(not set(a) & set(b) for a, b in zip(r0["seen"], r1["seen"]))
    for name, value in ref["weights"].items():
        assert torch.equal(r0["weights"][name], r1["weights"][name]), name  # DDP keeps the replicas identical
        torch.testing.assert_close(r0["weights"][name], value, rtol=1e-5, atol=1e-6)
    # the logged loss is the mean over both ranks' steps = the reference's mean over its batches
    torch.testing.assert_close(torch.tensor(r0["train_loss"]), torch.tensor(ref["train_loss"]), rtol=1e-5, atol=1e-7)


def test_batches_without_a_loss_term_keep_ranks_in_step(ddp_run):
    """A rank whose batch has no loss term sends zero gradients (no hang, replicas stay identical);
    a step no rank has a loss for is skipped everywhere (no optimizer step)."""
    _, ranks, _ = ddp_run
    steps = W.N // (2 * W.B)
    for key, expected_steps in (("skip_one", W.EPOCHS * steps), ("skip_all", W.EPOCHS * (steps - 1))):
        r0, r1 = ranks[0][key], ranks[1][key]
        assert r0["optimizer_steps"] == r1["optimizer_steps"] == expected_steps, key
        for name, value in r0["weights"].items():
            assert torch.equal(r1["weights"][name], value), (key, name)
    # skipping one rank's batch changes the result (the zero gradient counts in the mean)
    skipped, full = ranks[0]["skip_one"]["weights"], ranks[0]["sampler_full"]["weights"]
    assert not torch.equal(skipped["net.0.weight"], full["net.0.weight"])


def test_only_rank0_writes_checkpoints_and_logs(ddp_run):
    out, _, writes = ddp_run
    assert writes[1] == []
    assert any(w.endswith("ckpt.pt") for w in writes[0]) and any(w.endswith("log.csv") for w in writes[0])
    rows = (out / "sampler_full" / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + W.EPOCHS
    state = torch.load(out / "sampler_full" / "ckpt.pt", weights_only=False)
    assert state["world_size"] == 2 and state["backend"] == "gloo" and len(state["random_state"]) == 2


def test_resumed_distributed_run_continues_epochs_and_sampler_order(ddp_run):
    _, ranks, _ = ddp_run
    steps = W.N // (2 * W.B)  # per rank and epoch
    for r in ranks:
        full, resumed = r["sampler_full"], r["sampler_resumed"]
        assert resumed["epochs"] == list(range(1, W.EPOCHS + 1))
        assert resumed["seen"] == full["seen"][-steps:]  # the resumed epoch drew the uninterrupted run's batches
        for name, value in full["weights"].items():
            assert torch.equal(resumed["weights"][name], value), name


def test_script_end_to_end_under_torchrun(tmp_path):
    """``torchrun --nproc_per_node 2 hw_cnn2d.py --quick``: trains as one model, rank 0 writes the outputs."""
    out = tmp_path / "out"
    proc = torchrun("hw_cnn2d.py", "--quick", "--device", "cpu", "--out-dir", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["distributed_backend"] == "gloo"
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["world_size"] == 2 and state["epoch"] == metrics["epochs"] == len(state["history"]) >= 1
    assert proc.stdout.count("torchrun: 2 processes (gloo)") == 1  # printed by rank 0 only
