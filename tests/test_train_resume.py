"""Exact resume and the resume fingerprint of audiolab.core.train.fit.

A run interrupted after epoch k and resumed must end where the uninterrupted run ends
(same weights bit for bit, same per-epoch rows): data order, augmentation draws and dropout
masks come from random state the checkpoint carries. ``--resume`` onto other settings or
other data stops with an error naming what differs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import hw_denoise as denoise
from audiolab.core.cli import main_guard
from audiolab.core.runtime import UserError
from audiolab.core.train import data_fingerprint, fit, load_checkpoint



class NoisyDataset(torch.utils.data.Dataset):
    """Random gain augmentation from a NumPy generator of its own (as the keyword dataset does)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, seed: int):
        self.x, self.y = x, y
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i] * float(self.rng.uniform(0.5, 1.5)), self.y[i]


class Crop:
    """A collate function with a generator of its own (as the keyword PadCollate does)."""

    def __init__(self, seed: int):
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, items):
        x = torch.stack([i[0] for i in items])
        keep = int(torch.randint(4, 7, (), generator=self.gen))
        return x[:, :keep], torch.stack([i[1] for i in items])


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(6, 1)
        self.drop = torch.nn.Dropout(0.3)
        self.noise = np.random.default_rng(5)  # model-side augmentation stream (as SpecAugment's)

    def forward(self, x):
        x = torch.nn.functional.pad(x, (0, 6 - x.shape[1]))
        return self.lin(self.drop(x)) + float(self.noise.normal(0, 0.01))


def make(seed: int = 0, scale: float = 1.0):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(40, 6, generator=g) * scale, torch.randn(40, 1, generator=g)
    torch.manual_seed(seed)
    model = Net()
    loader = torch.utils.data.DataLoader(NoisyDataset(x, y, 3), batch_size=8, shuffle=True, collate_fn=Crop(4),
                                         generator=torch.Generator().manual_seed(seed))
    return model, torch.optim.Adam(model.parameters(), lr=0.05), loader


def step(model, batch):
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def train(out: Path, epochs: int, resume: bool = False, lr: float = 0.05, scale: float = 1.0,
          stop_after: int | None = None):
    """``stop_after``: Ctrl-C in the first step of epoch ``stop_after + 1`` (an interrupted run)."""
    model, optimizer, loader = make(scale=scale)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, 0.9)
    calls = []

    def interruptible(model, batch):
        calls.append(1)
        if stop_after is not None and len(calls) > stop_after * len(loader):
            raise KeyboardInterrupt
        return step(model, batch)

    history = fit(model, optimizer, loader, interruptible, epochs, checkpoint_path=out / "ckpt.pt", resume=resume,
                  scheduler=scheduler, config={"lr": lr, "batch_size": 8}, progress=False)
    return model, history


def rows(history):
    return [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in history]


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path):
    full_model, full = train(tmp_path / "full", 4)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "part", 4, stop_after=2)
    saved = load_checkpoint(tmp_path / "part" / "ckpt.pt")
    torch.manual_seed(12345)  # a new process starts from other global random state
    np.random.seed(6789)
    model, resumed = train(tmp_path / "part", 4, resume=True)
    assert rows(resumed) == rows(full)
    for name, value in full_model.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name
    # train_seconds covers the whole run: the first segment's seconds plus the resumed epochs'
    assert resumed.train_seconds > saved["train_seconds"]
    assert resumed.train_seconds >= sum(r["epoch_seconds"] for r in resumed)


class Pairs:
    """``DenoiseData`` stand-in: fresh random (noisy, clean) pairs each epoch."""

    def sample_epoch(self, rng):
        return [(rng.standard_normal(1024).astype(np.float32), rng.standard_normal(1024).astype(np.float32))
                for _ in range(2)]


def test_custom_iterable_with_state_dict_resumes_exactly(tmp_path):
    """``denoise.TrainStream`` draws new mixtures each epoch; its ``state_dict`` makes the resume exact."""

    def run(epochs, extend_to=None):
        torch.manual_seed(0)
        stream = denoise.TrainStream(Pairs(), context=1, batch_size=16, n_fft=64, hop_length=32, seed=0)
        model = torch.nn.Linear(33, 33)

        def step_fn(m, batch):
            x, noisy, clean = batch
            return ((m(x[:, 0]) - clean) ** 2).mean()

        fit(model, torch.optim.SGD(model.parameters(), lr=0.01), stream, step_fn, epochs,
            checkpoint_path=tmp_path / "ckpt.pt", extend_to=extend_to, progress=False)
        return model

    full = run(3).weight.detach().clone()
    run(1)
    assert torch.equal(run(3, extend_to=3).weight.detach(), full)  # no LR schedule: extending 1 -> 3 is exact


def test_resume_with_other_settings_names_them(tmp_path):
    train(tmp_path, 1)
    with pytest.raises(UserError, match=r"lr 0\.05 -> 0\.1"):
        train(tmp_path, 2, resume=True, lr=0.1)
    train(tmp_path, 1, resume=True)  # the same settings resume


def test_resume_with_other_data_names_it(tmp_path):
    train(tmp_path, 1)
    with pytest.raises(UserError, match=r"training data differ \(in x, 40 items then, 40 items? now|"
                                        r"training data differ \(in x"):
        train(tmp_path, 2, resume=True, scale=2.0)


def test_resume_with_other_number_of_processes_refused(tmp_path):
    train(tmp_path, 1)
    state = load_checkpoint(tmp_path / "ckpt.pt")
    state["fingerprint"]["world_size"] = 2
    torch.save(state, tmp_path / "ckpt.pt")
    with pytest.raises(UserError, match="world_size 2 -> 1"):
        train(tmp_path, 2, resume=True)


def test_data_fingerprint_sees_content_not_identity():
    a = torch.utils.data.TensorDataset(torch.arange(10.0))
    b = torch.utils.data.TensorDataset(torch.arange(10.0))
    c = torch.utils.data.TensorDataset(torch.arange(10.0) + 1e-3)
    assert data_fingerprint(a)["sha256"] == data_fingerprint(b)["sha256"]
    assert data_fingerprint(a)["sha256"] != data_fingerprint(c)["sha256"]
    big = np.zeros(10_000_000, dtype=np.float32)  # above max_array_bytes: sampled, still sensitive to a change
    changed = big.copy()
    changed[-1] = 1.0
    assert data_fingerprint({"w": big})["sha256"] != data_fingerprint({"w": changed})["sha256"]


def test_q1_script_resume_exact_and_refuses_other_flags(tmp_path, capsys):
    """q1_train_lstm after 2 epochs, extended to 3 (--extend-to; no LR schedule), equals 3 uninterrupted."""
    import q1_generate
    import q1_train_lstm

    def run(module, *args, rc=0):
        assert main_guard(module.main, [str(a) for a in args]) == rc

    data = tmp_path / "data"
    run(q1_generate, "--out-dir", tmp_path / "gen", "--data-dir", data, "--n-examples", "12")
    common = ["--data-dir", data, "--hidden", "16", "--batch-size", "4"]
    run(q1_train_lstm, *common, "--out-dir", tmp_path / "full", "--epochs", "3")
    run(q1_train_lstm, *common, "--out-dir", tmp_path / "part", "--epochs", "2")
    run(q1_train_lstm, *common, "--out-dir", tmp_path / "part", "--epochs", "3", "--extend-to", "3")
    full = (tmp_path / "full" / "log.csv").read_text().splitlines()
    part = (tmp_path / "part" / "log.csv").read_text().splitlines()
    keep = [i for i, c in enumerate(full[0].split(",")) if c != "epoch_seconds"]
    assert [[r.split(",")[i] for i in keep] for r in part] == [[r.split(",")[i] for i in keep] for r in full]
    capsys.readouterr()
    run(q1_train_lstm, *common, "--out-dir", tmp_path / "part", "--epochs", "4", "--resume", "--lr", "0.5", rc=2)
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "lr 0.01 -> 0.5" in err
