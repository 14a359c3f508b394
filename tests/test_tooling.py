"""The project's own tooling: the benchmarks' job pool, compare_metrics, progress in log files, --quick."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest

from audiolab.core import cli, progress

REPO = Path(__file__).resolve().parent.parent


def _load(name: str):
    """Import benchmarks/<name>.py (the benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ benchmarks/jobs.py
def test_job_pool_runs_every_job_logs_and_times_it(tmp_path):
    jobs = _load("jobs")
    code = "import os, sys; print('threads', os.environ['OMP_NUM_THREADS']); sys.exit(0)"
    seen = []
    results = jobs.run_jobs([jobs.Job(f"j{i}", [sys.executable, "-c", code], tmp_path / f"j{i}.log") for i in range(3)],
                            parallel=2, threads=1, on_done=lambda r: seen.append(r.name))
    assert sorted(results) == ["j0", "j1", "j2"] and sorted(seen) == ["j0", "j1", "j2"]
    for i in range(3):
        assert (tmp_path / f"j{i}.log").read_text().strip() == "threads 1"
        assert results[f"j{i}"].returncode == 0 and results[f"j{i}"].wall_s > 0 and results[f"j{i}"].cpu_s >= 0


def test_job_pool_stops_at_the_first_failure_and_names_its_log(tmp_path):
    jobs = _load("jobs")
    fail = jobs.Job("bad", [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], tmp_path / "bad.log")
    slow = jobs.Job("slow", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "slow.log")
    with pytest.raises(jobs.JobFailed) as err:
        jobs.run_jobs([fail, slow], parallel=2)
    assert err.value.result.name == "bad" and err.value.result.returncode == 3
    assert str(tmp_path / "bad.log") in str(err.value) and "boom" in (tmp_path / "bad.log").read_text()
    with pytest.raises(ValueError):
        jobs.run_jobs([fail, fail])


# ------------------------------------------------------------------ benchmarks/compare_metrics.py
def _tree(root: Path, metrics: dict) -> Path:
    (root / "s").mkdir(parents=True)
    (root / "s" / "metrics.json").write_text(json.dumps(metrics))
    return root


def test_compare_metrics_lists_each_differing_key_and_nothing_else(tmp_path):
    cm = _load("compare_metrics")
    base = {"test_si_snr_db": 12.5, "config": {"lr": 0.01, "out_dir": "a"}, "git_commit": "x", "train_seconds": 3.0}
    old = _tree(tmp_path / "old", base)
    same = _tree(tmp_path / "same", {**base, "git_commit": "y", "train_seconds": 9.0, "config": {"lr": 0.01,
                                                                                               "out_dir": "b"}})
    assert cm.compare(old, same) == []
    new = _tree(tmp_path / "new", {**base, "test_si_snr_db": 12.500000000000002, "config": {"lr": 0.02},
                                   "extra": 1})
    lines = cm.compare(old, new)
    assert any("test_si_snr_db" in ln for ln in lines)      # a last-bit difference is a difference
    assert any("config.lr" in ln for ln in lines) and any("extra" in ln for ln in lines)
    assert not any("git_commit" in ln or "train_seconds" in ln for ln in lines)
    assert cm.compare(old, new, tolerance=1e-9) != [] and len(cm.compare(old, new, tolerance=1e-9)) == len(lines) - 1
    assert cm.main([str(old), str(same)]) == 0 and cm.main([str(old), str(new)]) == 1


# ------------------------------------------------------------------ audiolab.core.progress
def test_progress_in_a_log_file_writes_whole_lines_not_frames(monkeypatch):
    err = io.StringIO()                               # not a terminal
    monkeypatch.setattr(sys, "stderr", err)
    items = list(progress.progress(range(5), "loading", every_s=0.0))
    assert items == [0, 1, 2, 3, 4]
    text = err.getvalue()
    assert "\r" not in text and text.count("\n") == 5 and "loading: 5/5 (100 %)" in text
    err.truncate(0)
    err.seek(0)
    assert list(progress.progress(iter(range(3)), "slow", every_s=3600)) == [0, 1, 2] and err.getvalue() == ""


# ------------------------------------------------------------------ audiolab.core.cli
def test_quick_sets_sizes_but_keeps_what_the_user_gave():
    parser = cli.base_parser("demo", epochs=10)
    parser.add_argument("--n-train", type=int, default=1000)
    sizes = {"epochs": 2, "n_train": 64, "hidden_size": lambda a: a.n_train // 2}
    argv = ["--quick", "--epochs", "3"]
    args = cli.apply_quick(parser.parse_args(argv), sizes, argv)
    assert (args.epochs, args.n_train, args.hidden_size) == (3, 64, 32)
    plain = cli.apply_quick(parser.parse_args([]), sizes, [])
    assert (plain.epochs, plain.n_train) == (10, 1000) and not hasattr(plain, "hidden_size")
    # a flag that is a prefix of a sized one (--n for --n-train) is another flag, not the sized one
    parser.add_argument("--n", type=int, default=0)
    argv = ["--quick", "--n", "3"]
    assert cli.apply_quick(parser.parse_args(argv), sizes, argv).n_train == 64
    with pytest.raises(SystemExit):
        parser.parse_args(["--epo", "3"])          # abbreviations are refused, so argv tells what was given


def test_shared_flags_are_declared_once_with_ranges():
    parser = cli.base_parser("demo", epochs=5)
    cli.add_training_args(parser, lr=1e-3, batch_size=16)
    cli.add_stft_args(parser, n_fft=512, hop_length=128)
    args = parser.parse_args([])
    assert (args.lr, args.batch_size, args.resume, args.n_fft, args.hop_length) == (1e-3, 16, False, 512, 128)
    for bad in (["--lr", "0"], ["--lr", "nan"], ["--batch-size", "0"], ["--n-fft", "1"], ["--hop-length", "-1"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    model_bound = cli.base_parser("demo")
    cli.add_stft_args(model_bound, n_fft=1024, hop_length=256, min_n_fft=256)
    assert model_bound.parse_args(["--n-fft", "256"]).n_fft == 256
    with pytest.raises(SystemExit):
        model_bound.parse_args(["--n-fft", "255"])


def test_progress_gives_the_same_batches_on_a_terminal_and_in_a_log(monkeypatch):
    """The batches a shuffling DataLoader yields (and so every trained number) must not depend on where
    stderr goes: in a log file progress() must draw from torch's generator exactly as the terminal bar."""
    import torch

    def first_batches(is_tty: bool) -> list:
        monkeypatch.setattr(progress, "on_terminal", lambda: is_tty)
        torch.manual_seed(0)
        loader = torch.utils.data.DataLoader(list(range(40)), batch_size=8, shuffle=True)
        out = [b.tolist() for epoch in range(2) for b in progress.progress(loader, "train")]
        return out + [torch.randint(0, 10**6, (1,)).item()]   # and the generator's state after

    assert first_batches(True) == first_batches(False)


# ------------------------------------------------------------------ benchmarks/multitask_emodb.py
def test_emodb_benchmark_quotes_anchors_with_their_source_and_draws_the_figures(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))       # it imports its sibling multitask_emovo
    bench = _load("multitask_emodb")
    rows = [{"test_speaker": "speaker08", "emotion_accuracy": 0.7, "majority_accuracy": 0.2},
            {"test_speaker": "speaker16", "emotion_accuracy": 0.6, "majority_accuracy": 0.2,
             "emotion_only_emotion_accuracy": 0.5, "asr_only_cer": 0.1}]
    bench.add_anchors(rows, {"speaker16": 0.9})
    k = bench.SPEAKERS.index("speaker08")
    assert rows[0]["egemaps_svm_accuracy"] == bench.QUOTED["egemaps_svm_accuracy"][k]
    assert rows[0]["source_egemaps"] == "run1"
    assert rows[0]["emotion_only_emotion_accuracy"] == bench.QUOTED["emotion_only_emotion_accuracy"][k]
    assert rows[0]["source_emotion_only"] == rows[0]["source_asr_only"] == "run9"
    assert (rows[1]["egemaps_svm_accuracy"], rows[1]["source_egemaps"]) == (0.9, "csv")
    assert (rows[1]["emotion_only_emotion_accuracy"], rows[1]["source_emotion_only"]) == (0.5, "this run")
    fold = tmp_path / "folds" / "speaker08"
    fold.mkdir(parents=True)
    (fold / "test_predictions.csv").write_text("true_emotion,predicted_emotion\nanger,anger\nfear,anger\n")
    paths = bench.fold_figures(rows, tmp_path / "folds", tmp_path / "out.csv")
    assert [p.name for p in paths] == ["out_folds.png", "out_confusion.png"] and all(p.stat().st_size for p in paths)
