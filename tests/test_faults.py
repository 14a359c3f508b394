"""Faults and bad input: a table of faults x scripts, each asserting the promised behaviour.

Promised behaviours (docs/ARCHITECTURE.md, "Tests"):
- ``exit2``: exit status 2, one ``error:`` line naming the flag or file, no traceback,
  and no half-written output (no ``metrics.json``);
- ``skip``: the bad file is named in the output (``skipped: ...``), the run goes on and
  its results are complete (``metrics.json`` written).

Most faults are caught while loading, so every case runs the script's ``main`` in-process
through ``main_guard`` on a tiny input (seconds). The lock tests need a second process.
This file covers q1_*, q2_ctc, q2_compare, hw_cnn1d/2d, vae_bss and the shared code they use
(audiolab.core.io, audiolab.core.runtime, audiolab.data.speech, audiolab.core.evaluate,
audiolab.data.music); speechcommands_rnn
and q2_multitask have their own fault tests.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiolab.core import evaluate
from audiolab.core.io import AudioReadError, iter_readable, load_audio, save_audio, unique_name
from audiolab.data import speech
from audiolab.data.music import Song, load_songs_from_stereo
from audiolab.core.cli import float_range, int_range, main_guard
from audiolab.core.outputs import (LOCK_NAME, lock_out_dir, out_dir_for, release_out_dir_locks, write_csv,
                                   write_json_atomic)
from audiolab.core.runtime import UserError, select_device

REPO = Path(__file__).resolve().parent.parent
SR = 16000


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"faults_{name}", REPO / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPTS = {name: load_script(name) for name in
           ("q1_generate", "q1_plot", "q1_train_lstm", "q2_ctc", "q2_compare", "hw_cnn1d", "hw_cnn2d", "vae_bss")}


def run_main(name: str, argv: list[str], capsys) -> tuple[int, str, str]:
    """``(exit status, stdout, stderr)`` of ``main_guard(script.main, argv)``; argparse exits count too."""
    try:
        rc = main_guard(SCRIPTS[name].main, [str(a) for a in argv])
    except SystemExit as exc:  # argparse: usage + "error:" line, status 2
        rc = exc.code
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def assert_exit2(rc: int, err: str, *needles: str, out_dir: Path | None = None) -> None:
    """Status 2, exactly one ``error:`` line holding every needle, no traceback, no metrics.json."""
    error_lines = [line for line in err.splitlines() if "error:" in line]
    assert rc == 2, f"exit status {rc}\n{err}"
    assert len(error_lines) == 1, err
    for needle in needles:
        assert needle in error_lines[0], f"{needle!r} not in {error_lines[0]!r}"
    assert "Traceback" not in err
    if out_dir is not None:
        assert not (out_dir / "metrics.json").exists()


def float_wav(path: Path, wav: np.ndarray, sample_rate: int = SR) -> Path:
    """Write a 32-bit float WAV (the format that can hold NaN/inf samples)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wav, sample_rate, subtype="FLOAT")
    return path


def tone(seconds: float, f0: float, seed: int = 0, sample_rate: int = SR) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    wav = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 6))
    return (0.1 * wav * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


# ============================================================== shared code: audio loading
def test_nan_or_inf_audio_is_reported_by_path_at_load_time(tmp_path, capsys):
    good = float_wav(tmp_path / "good.wav", tone(0.1, 200))
    bad = tone(0.1, 200)
    bad[100] = np.nan
    nan_path = float_wav(tmp_path / "nan.wav", bad)
    bad[100] = np.inf
    inf_path = float_wav(tmp_path / "inf.wav", bad)
    for path in (nan_path, inf_path):
        with pytest.raises(AudioReadError, match="NaN or inf") as info:
            load_audio(path)
        assert str(path) in str(info.value)
    skipped: list = []
    kept = [p for p, _, _ in iter_readable([nan_path, good, inf_path], skipped=skipped)]
    assert kept == [good]
    assert [p for p, _ in skipped] == [nan_path, inf_path]
    out = capsys.readouterr().out
    assert f"skipped: audio file {nan_path}" in out and str(inf_path) in out
    assert np.isfinite(load_audio(good)[0]).all()


def test_nan_stereo_stems_are_skipped_by_the_music_loader(tmp_path, capsys):
    ok = np.stack([tone(0.5, 110), tone(0.5, 220, 1)], axis=1)
    bad = ok.copy()
    bad[10, 1] = np.nan
    paths = [float_wav(tmp_path / "a" / "clip.wav", ok), float_wav(tmp_path / "b" / "clip.wav", ok),
             float_wav(tmp_path / "c" / "nan.wav", bad)]
    songs = load_songs_from_stereo(paths, SR)
    assert [s.name for s in songs] == ["clip", "clip_2"]  # same base name: two distinct output names
    assert str(paths[2]) in capsys.readouterr().out


def test_unique_name_never_repeats():
    used: set[str] = set()
    names = [unique_name(n, used) for n in ("x", "x", "y", "x", "x_2")]
    assert names == ["x", "x_2", "y", "x_3", "x_2_2"]
    assert len(set(names)) == len(names)


# ============================================================ shared code: output plumbing
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_atomic_outputs_get_the_users_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        paths = [write_json_atomic(tmp_path / "m.json", {"a": 1}), write_csv(tmp_path / "t.csv", [{"a": 1}]),
                 save_audio(tmp_path / "a.wav", np.zeros(160, dtype=np.float32), SR)]
        reference = tmp_path / "plain.txt"
        reference.write_text("x")  # what open() gives any other file of the user's
    finally:
        os.umask(old)
    want = stat.S_IMODE(reference.stat().st_mode)
    assert want == 0o666 & ~umask
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == want, path
    assert not list(tmp_path.glob("*.tmp"))


def test_range_validators():
    prob = float_range(0, 1)
    assert prob("0") == 0.0 and prob("1") == 1.0 and prob("0.25") == 0.25
    for bad in ("2", "-0.1", "nan", "inf", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            prob(bad)
    open_unit = float_range(0, 1, lo_open=True, hi_open=True)
    for bad in ("0", "1"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"\(0, 1\)"):
            open_unit(bad)
    beta = float_range(0)
    assert beta("1e6") == 1e6
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be in \[0, inf\), got -1"):
        beta("-1")
    count = int_range(1, 100)
    assert count("1") == 1 and count("100") == 100
    for bad in ("0", "101", "2.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            count(bad)


def test_device_cuda_without_cuda_is_a_user_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="--device cuda"):
        select_device("cuda")
    with pytest.raises(UserError, match="--device cuda"):  # every script reaches it through out_dir_for
        out_dir_for(argparse.Namespace(device="cuda", out_dir=None), "x")
    assert select_device("cpu") == torch.device("cpu")


def test_output_folder_that_cannot_be_created_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(UserError, match="cannot create the output folder"):
        out_dir_for(argparse.Namespace(device="cpu", out_dir=tmp_path / "file" / "out"), "x")
    if os.geteuid() != 0:  # root ignores permission bits
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            with pytest.raises(UserError, match="cannot create the output folder"):
                out_dir_for(argparse.Namespace(device="cpu", out_dir=ro / "out"), "x")
            with pytest.raises(UserError, match="cannot write to the output folder"):  # exists, read-only
                out_dir_for(argparse.Namespace(device="cpu", out_dir=ro), "x")
        finally:
            ro.chmod(0o755)


def test_main_guard_turns_a_vanished_or_read_only_output_into_exit_2(tmp_path, capsys):
    def main(argv):
        out = tmp_path / "gone"
        raise PermissionError(13, "Permission denied", str(out / "metrics.json"))

    assert main_guard(main, []) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "metrics.json" in err and "no write permission" in err


# ================================================================ shared code: out-dir lock
HOLDER = textwrap.dedent("""
    import sys, time
    from audiolab.core.outputs import lock_out_dir
    lock_out_dir({out!r})
    print("locked", flush=True)
    time.sleep(120)
""")
# The same protocol without importing torch (fast): flock on the lock file, pid written into it.
RAW_HOLDER = textwrap.dedent("""
    import fcntl, os, time
    fd = os.open(os.path.join({out!r}, {name!r}), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    print("locked", flush=True)
    time.sleep(120)
""")


def _hold_lock(out: Path, raw: bool = True) -> subprocess.Popen:
    """A second process holding ``out``'s lock; ``raw=False`` takes it through ``lock_out_dir`` itself."""
    code = (RAW_HOLDER if raw else HOLDER).format(repo=str(REPO), out=str(out), name=LOCK_NAME)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_run_into_a_held_folder_refuses_and_a_killed_holder_does_not_block(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    holder = _hold_lock(out, raw=False)
    try:
        rc, _, err = run_main("q1_generate", ["--quick", "--data-dir", tmp_path / "q1", "--out-dir", out], capsys)
        assert_exit2(rc, err, "another run", f"pid {holder.pid}", str(out), out_dir=out)
        assert not (tmp_path / "q1").exists()  # refused before writing anything
    finally:
        holder.send_signal(signal.SIGKILL)  # a killed run: the kernel drops its flock
        holder.wait()
    assert (out / LOCK_NAME).exists()  # the stale lock file is still there ...
    rc, stdout, err = run_main("q1_generate", ["--quick", "--data-dir", tmp_path / "q1", "--out-dir", out], capsys)
    assert rc == 0, err  # ... and does not block
    assert json.loads((out / "metrics.json").read_text())["n_train"] > 0


def test_a_script_process_refuses_a_folder_another_run_holds(tmp_path):
    """The script itself, as a process, refuses a folder another process holds (exit 2, one error line, no
    output written). The holder stands in for a first run that is still going, which makes the race
    deterministic; that the folder is usable again once the holder dies is tested above."""
    out = tmp_path / "out"
    cmd = [sys.executable, str(REPO / "q2_compare.py"), "--quick", "--out-dir", str(out)]
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    out.mkdir()
    holder = _hold_lock(out)
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    holder.kill()
    holder.wait()
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert [line for line in second.stderr.splitlines() if line.startswith("error:")] == [
        f"error: another run (pid {holder.pid}) is writing into {out}; wait for it to finish or choose another "
        f"--out-dir"]
    assert not (out / "metrics.json").exists() and not (out / "comparison.csv").exists()


def test_lock_is_reentrant_in_one_process_and_released_by_main_guard(tmp_path):
    import fcntl

    out = tmp_path / "o"
    out.mkdir()

    def can_take() -> bool:  # a new open file description conflicts with a held flock, even in this process
        fd = os.open(out / LOCK_NAME, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False
        finally:
            os.close(fd)

    lock_out_dir(out)
    lock_out_dir(out)  # the same process may lock its folder twice
    assert not can_take()
    assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())
    release_out_dir_locks()
    assert can_take()
    assert main_guard(lambda argv: lock_out_dir(out), []) == 0
    assert can_take()  # main_guard released it


def test_only_rank_0_of_a_torchrun_job_locks(tmp_path, monkeypatch):
    out = tmp_path / "o"
    out.mkdir()
    holder = _hold_lock(out)  # rank 0 of the job
    try:
        monkeypatch.setenv("RANK", "1")
        lock_out_dir(out)  # rank 1 of the same job shares the folder
        monkeypatch.setenv("RANK", "0")
        with pytest.raises(UserError, match="another run"):
            lock_out_dir(out)
    finally:
        holder.kill()
        holder.wait()
        release_out_dir_locks()


# ======================================================================== Q1 scripts
@pytest.fixture(scope="module")
def q1_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("q1")
    rc = main_guard(SCRIPTS["q1_generate"].main, ["--quick", "--n-examples", "10", "--n-samples", "2000",
                                                  "--data-dir", str(root / "q1"), "--out-dir", str(root / "gen")])
    assert rc == 0
    return root / "q1"


def _q1_copy(q1_data: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "q1"
    shutil.copytree(q1_data, dest)
    return dest


def _first(data: Path, split: str, name: str) -> Path:
    return sorted((data / split).glob(f"*_{name}.wav"))[0]


def _corrupt_rate(data: Path) -> Path:
    path = _first(data, "train", "source2")
    wav, _ = sf.read(path)
    sf.write(path, wav, 16000)
    return path


def _corrupt_length(data: Path) -> Path:
    path = _first(data, "test", "mixture")
    wav, sr = sf.read(path)
    sf.write(path, wav[:1500], sr)
    return path


def _corrupt_bytes(data: Path) -> Path:
    path = _first(data, "train", "mixture")
    path.write_bytes(path.read_bytes()[:30])  # cut inside the header: unreadable
    return path


def _corrupt_nan(data: Path) -> Path:
    path = _first(data, "train", "source1")
    wav, sr = sf.read(path)
    wav[5] = np.nan
    float_wav(path, wav, sr)
    return path


def _corrupt_silent(data: Path) -> Path:
    path = _first(data, "test", "source2")
    wav, sr = sf.read(path)
    sf.write(path, np.zeros_like(wav), sr)
    return path


Q1_DATA_FAULTS = {"other_rate": (_corrupt_rate, "16000 Hz"), "truncated_length": (_corrupt_length, "1500 samples"),
                  "truncated_bytes": (_corrupt_bytes, "cannot read"), "nan_samples": (_corrupt_nan, "NaN"),
                  "silent_source": (_corrupt_silent, "silent")}


@pytest.mark.parametrize("fault", list(Q1_DATA_FAULTS))
@pytest.mark.parametrize("script", ["q1_train_lstm", "q1_plot"])
def test_q1_bad_data_file_is_named(script, fault, q1_data, tmp_path, capsys):
    data = _q1_copy(q1_data, tmp_path)
    corrupt, needle = Q1_DATA_FAULTS[fault]
    path = corrupt(data)
    argv = ["--data-dir", data, "--out-dir", tmp_path / "out", "--epochs", "1"]
    if script == "q1_plot":
        # plot the example the fault is in
        argv = ["--data-dir", data, "--out-dir", tmp_path / "out", "--id", str(int(path.name[:3]))]
    rc, _, err = run_main(script, argv, capsys)
    assert_exit2(rc, err, str(path), needle, out_dir=tmp_path / "out")


@pytest.mark.parametrize("flag,value,needle", [("--n-fft", "4096", "2000 samples"),
                                               ("--hop-length", "2500", "2000 samples"),
                                               ("--hop-length", "1024", "larger than --n-fft")])
@pytest.mark.parametrize("script", ["q1_train_lstm", "q1_plot"])
def test_q1_stft_larger_than_the_clips_names_the_flag_and_limit(script, flag, value, needle, q1_data, tmp_path,
                                                                 capsys):
    argv = ["--data-dir", q1_data, "--out-dir", tmp_path / "out", flag, value]
    if script == "q1_train_lstm":
        argv += ["--epochs", "1"]
    rc, _, err = run_main(script, argv, capsys)
    assert_exit2(rc, err, f"{flag} {value}", needle, out_dir=tmp_path / "out")


# ================================================================== flag ranges (argparse)
RANGE_FAULTS = [
    ("q1_generate", ["--test-fraction", "1.5"], "--test-fraction"),
    ("q1_generate", ["--guard-hz", "-1"], "--guard-hz"),
    ("q1_generate", ["--n-examples", "100000", "--n-samples", "10000000"], "GiB"),
    ("q2_ctc", ["--n-test", "20000000"], "--n-test"),
    ("q2_ctc", ["--lr", "0"], "--lr"),
    ("q2_compare", ["--example", "16"], "--example"),
    ("q2_compare", ["--repeats", "0"], "--repeats"),
    ("hw_cnn1d", ["--test-snrs", "0", "1000"], "--test-snrs"),
    ("hw_cnn2d", ["--speed-perturb", "3"], "--speed-perturb"),
    ("hw_cnn2d", ["--val-fraction", "0.95"], "--val-fraction"),
    ("hw_cnn1d", ["--channels", "16", "0", "32"], "--channels"),
    ("hw_cnn1d", ["--pesq-max", "-3"], "--pesq-max"),
    ("vae_bss", ["images", "--beta", "-1"], "--beta"),
    ("vae_bss", ["images", "--test-pairs", "20000000"], "--test-pairs"),
    ("vae_bss", ["music", "--remix-prob", "2"], "--remix-prob"),
    ("vae_bss", ["music", "--beta", "-1"], "--beta"),
    ("vae_bss", ["music", "--save-audio", "-1"], "--save-audio"),
    ("vae_bss", ["music", "--hop-length", "2048"], "--hop-length 2048"),
    ("vae_bss", ["music", "--hidden", "100000000"], "--hidden"),
    ("vae_bss", ["images", "--latent-dim", "100000000"], "--latent-dim"),
    ("q1_train_lstm", ["--hidden", "100000000"], "--hidden"),
]


@pytest.mark.parametrize("script,argv,needle", RANGE_FAULTS, ids=[f"{s}{a[0] if s != 'vae_bss' else a[1]}"
                                                                  for s, a, _ in RANGE_FAULTS])
def test_meaningless_flag_values_are_refused(script, argv, needle, tmp_path, capsys):
    out = tmp_path / "out"
    if script == "vae_bss":
        argv = argv[:1] + ["--quick", "--out-dir", out, "--data-root", tmp_path / "none"] + argv[1:]
    elif script == "q1_generate":  # not --quick: it would cap the sizes the memory check is about
        argv = ["--out-dir", out, "--data-dir", tmp_path / "q1"] + argv
    else:
        argv = ["--quick", "--out-dir", out] + argv
    rc, _, err = run_main(script, argv, capsys)
    assert_exit2(rc, err, needle, out_dir=out)
    assert not (tmp_path / "q1").exists()


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_device_cuda_without_cuda_is_the_same_error_everywhere(script, q1_data, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    argv = ["--device", "cuda", "--quick", "--out-dir", tmp_path / "out"]
    if script.startswith("q1"):
        argv += ["--data-dir", q1_data if script != "q1_generate" else tmp_path / "q1"]
    if script == "vae_bss":
        argv = ["music"] + argv
    rc, _, err = run_main(script, argv, capsys)
    assert_exit2(rc, err, "--device cuda", "CUDA is not available", out_dir=tmp_path / "out")
    assert not (tmp_path / "q1").exists()


# ========================================================================= denoising
def test_denoise_folder_loader_skips_short_and_nan_clips_by_path(tmp_path, capsys):
    good = float_wav(tmp_path / "spk" / "good.wav", tone(0.5, 150))
    short = float_wav(tmp_path / "spk" / "short.wav", tone(0.02, 150))  # 320 samples < --n-fft 1024
    bad = tone(0.5, 150)
    bad[7] = np.inf
    nan = float_wav(tmp_path / "spk" / "nan.wav", bad)
    other = float_wav(tmp_path / "spk2" / "good.wav", tone(0.5, 180))  # same base name, other speaker
    utts = speech.load_folder(tmp_path, min_samples=1024)
    assert [(s, n) for s, n, _ in utts] == [("spk", "good"), ("spk2", "good_2")]
    out = capsys.readouterr().out
    assert f"skipped: {short}" in out and "--n-fft 1024" in out and str(nan) in out
    assert str(good) not in out and str(other) not in out


def test_denoise_unlabeled_test_files_same_base_name_short_and_nan(tmp_path, capsys):
    a = float_wav(tmp_path / "a" / "x.wav", tone(0.3, 150))
    b = float_wav(tmp_path / "b" / "x.wav", tone(0.3, 170))
    short = float_wav(tmp_path / "short.wav", tone(0.01, 150))
    bad = tone(0.3, 150)
    bad[0] = np.nan
    nan = float_wav(tmp_path / "nan.wav", bad)
    mixtures = speech.load_unlabeled([a, short, b, nan], min_samples=1024)
    assert [m.name for m in mixtures] == ["x", "x_2"]
    out = capsys.readouterr().out
    assert f"skipped: {short}" in out and str(nan) in out


def test_denoise_evaluation_skips_a_signal_whose_estimate_is_not_finite(tmp_path, capsys):
    clean = tone(0.3, 150)
    mixes = [evaluate.Mixture(name, clean + 0.01, clean, 10.0, "white", "test") for name in ("ok", "bad")]

    def method(x):
        return np.full_like(x, np.nan) if x is mixes[1].noisy else x * 0.9

    rows = evaluate.evaluate_set(mixes, {"m": method}, perceptual=False, wav_dir=tmp_path / "w", wav_method="m",
                                desc="test")
    assert [r["signal"] for r in rows] == ["ok"]
    assert "skipped: test signal bad" in capsys.readouterr().out
    assert (tmp_path / "w" / "ok.wav").exists() and not (tmp_path / "w" / "bad.wav").exists()


def test_hw_cnn_end_to_end_with_bad_and_clashing_test_files(tmp_path, capsys):
    """A trained run whose --test files include a NaN one, a too-short one and two with one base name."""
    clean = tone(1.0, 140, 1)
    noisy = clean + 0.02 * np.random.default_rng(0).standard_normal(clean.shape).astype(np.float32)
    sf.write(tmp_path / "clean.wav", clean, SR)
    sf.write(tmp_path / "noisy.wav", noisy, SR)
    x1 = float_wav(tmp_path / "a" / "x.wav", noisy[:8000])
    x2 = float_wav(tmp_path / "b" / "x.wav", noisy[6000:])
    short = float_wav(tmp_path / "short.wav", noisy[:300])
    bad = noisy[:8000].copy()
    bad[3] = np.nan
    nan = float_wav(tmp_path / "nan.wav", bad)
    out = tmp_path / "out"
    rc, stdout, err = run_main("hw_cnn1d", ["--quick", "--threads", "1", "--clean", tmp_path / "clean.wav",
                                            "--noisy", tmp_path / "noisy.wav", "--test", x1, short, x2, nan,
                                            "--out-dir", out], capsys)
    assert rc == 0, err
    assert f"skipped: {short}" in stdout and str(nan) in stdout
    denoised = sorted(p.name for p in (out / "unlabeled_denoised").glob("*.wav"))
    assert denoised == ["x.wav", "x_2.wav"]
    a, _ = sf.read(out / "unlabeled_denoised" / "x.wav")
    b, _ = sf.read(out / "unlabeled_denoised" / "x_2.wav")
    assert len(a) == 8000 and len(b) == len(noisy) - 6000  # each output belongs to its own input
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["test"] and metrics["dataset"].startswith("files:")


# ========================================================================= vae_bss music
def _music_args(**kw) -> argparse.Namespace:
    base = dict(n_fft=256, hop_length=64, patch_frames=4, sample_rate=SR)
    base.update(kw)
    return argparse.Namespace(**base)


def test_music_evaluation_skips_silent_short_and_nan_clips(capsys):
    vae = SCRIPTS["vae_bss"]
    args = _music_args()
    torch.manual_seed(0)
    model = vae.MusicVAE(args.n_fft // 2 + 1, args.patch_frames, hidden=16, latent_dim=4)
    v, a = tone(0.4, 220, 1), tone(0.4, 110, 2)
    nan_v = v.copy()
    nan_v[3] = np.nan
    songs = [Song("good", v, a, SR), Song("silent_vocals", np.zeros_like(v), a, SR),
             Song("short", v[:100], a[:100], SR), Song("nan", nan_v, a, SR)]
    skipped: list = []
    rows = vae.evaluate_songs(model, songs, args, "cpu", skipped=skipped)
    assert [r["clip"] for r in rows] == ["good"]
    assert all(np.isfinite(v) for k, v in rows[0].items() if k.endswith("_db"))
    assert [name for name, _ in skipped] == ["silent_vocals", "short", "nan"]
    out = capsys.readouterr().out
    assert "skipped: clip silent_vocals: the vocals reference stem is silent" in out
    assert "--n-fft 256" in out and "NaN" in out


def _mir1k(root: Path, test_clips: dict[str, np.ndarray]) -> Path:
    data = root / "data"
    for i in range(3):
        float_wav(data / "mir1k" / "train" / f"abjones_{i}_01.wav",
                  np.stack([tone(1.0, 110 + 10 * i, i), tone(1.0, 300 + 20 * i, i + 7)], axis=1))
    for name, wav in test_clips.items():
        float_wav(data / "mir1k" / "test" / f"{name}.wav", wav)
    return data


def test_music_run_with_a_silent_test_stem_still_writes_metrics(tmp_path, capsys):
    good = np.stack([tone(1.0, 120, 3), tone(1.0, 330, 4)], axis=1)
    silent = good.copy()
    silent[:, 1] = 0.0  # silent vocals: BSS Eval is singular for this clip
    data = _mir1k(tmp_path, {"singer_1_01": good, "singer_1_02": silent})
    out = tmp_path / "out"
    rc, stdout, err = run_main("vae_bss", ["music", "--quick", "--data-root", data, "--out-dir", out,
                                           "--n-fft", "256", "--hop-length", "128", "--patch-frames", "4",
                                           "--save-audio", "2", "--patches-per-epoch", "64"], capsys)
    assert rc == 0, err
    assert "skipped: clip singer_1_02" in stdout and "silent" in stdout
    metrics = json.loads((out / "music" / "metrics.json").read_text())
    assert metrics["music_test_clips"] == 1 and metrics["music_test_clips_skipped"] == 1
    assert metrics["vocals_gnsdr_db"] is not None and "singer_1_02" in metrics["music_test_skipped_note"]
    assert (out / "music" / "audio" / "singer_1_01" / "vocals_estimate.wav").exists()
    assert not (out / "music" / "audio" / "singer_1_02").exists()
    assert (out / "metrics.json").exists()


def _speech_folders(root: Path) -> tuple[Path, Path, dict]:
    """clean/<speaker>/*.wav (two speakers) and noise/*.wav, plus a short, a NaN and a short-noise file."""
    clean, noise = root / "clean", root / "noise"
    for s, spk in enumerate(("FA", "MC")):
        for k in range(2):
            float_wav(clean / spk / f"u{k}.wav", tone(1.0, 120 + 40 * s + 10 * k, 10 * s + k))
    rng = np.random.default_rng(0)
    float_wav(noise / "white.wav", (0.05 * rng.standard_normal(3 * SR)).astype(np.float32))
    bad = tone(1.0, 150, 5)
    bad[9] = np.nan
    faults = {"short": float_wav(clean / "FA" / "short.wav", tone(0.03, 150)),
              "nan": float_wav(clean / "MC" / "nan.wav", bad),
              "short_noise": float_wav(noise / "click.wav", (0.05 * rng.standard_normal(600)).astype(np.float32))}
    return clean, noise, faults


def test_hw_cnn2d_clean_dir_with_short_nan_and_short_noise_files(tmp_path, capsys):
    clean, noise, faults = _speech_folders(tmp_path)
    out = tmp_path / "out"
    rc, stdout, err = run_main("hw_cnn2d", ["--quick", "--threads", "1", "--clean-dir", clean, "--noise-dir", noise,
                                            "--test-snrs", "0", "--pesq-max", "1", "--out-dir", out], capsys)
    assert rc == 0, err
    for path in faults.values():
        assert f"skipped: {path}" in stdout or f"skipped: audio file {path}" in stdout, path
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_test_utterances"] == 2 and metrics["train_noises"] == ["white"]


@pytest.mark.parametrize("script", ["hw_cnn1d", "hw_cnn2d"])
def test_hw_cnn_n_fft_longer_than_every_clip_names_the_flag(script, tmp_path, capsys):
    clean, noise, _ = _speech_folders(tmp_path)
    out = tmp_path / "out"
    rc, _, err = run_main(script, ["--quick", "--clean-dir", clean, "--noise-dir", noise, "--n-fft", "32768",
                                   "--hop-length", "8192", "--out-dir", out], capsys)
    assert_exit2(rc, err, "--n-fft 32768", "16000 samples", out_dir=out)


# ============================================ rules (issue 28): one test per rule, docs/ARCHITECTURE.md "Rules"
def test_rule_a_script_replaces_only_folders_it_owns(q1_data, tmp_path, capsys):
    """outputs.check_owner: user folders, another script's results, files, links and a held staging folder."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.txt").write_text("mine")
    gen = ["--quick", "--n-examples", "10", "--n-samples", "2000"]
    rc, _, err = run_main("q1_generate", gen + ["--data-dir", notes, "--out-dir", tmp_path / "g"], capsys)
    assert_exit2(rc, err, str(notes), "thesis.txt")
    assert (notes / "thesis.txt").read_text() == "mine" and not (tmp_path / "notes.partial").exists()
    (tmp_path / "file").write_text("x")
    (tmp_path / "link").symlink_to(q1_data)
    for bad, needle in ((tmp_path / "file", "is a file"), (tmp_path / "link", "symbolic link")):
        rc, _, err = run_main("q1_generate", gen + ["--data-dir", bad, "--out-dir", tmp_path / "g"], capsys)
        assert_exit2(rc, err, str(bad), needle)
        assert not bad.with_name(bad.name + ".partial").exists()
    # --out-dir holding another script's results (q1_generate's) is never overwritten
    lstm_out = tmp_path / "gen_out"
    assert run_main("q1_generate", gen + ["--data-dir", tmp_path / "d", "--out-dir", lstm_out], capsys)[0] == 0
    before = (lstm_out / "metrics.json").read_bytes()
    rc, _, err = run_main("q1_plot", ["--data-dir", q1_data, "--out-dir", lstm_out], capsys)
    assert_exit2(rc, err, "q1_generate")
    assert (lstm_out / "metrics.json").read_bytes() == before
    # a folder written before the marker existed: its metrics.json names the flags of the script that wrote it
    (lstm_out / ".audiolab-owner").unlink()
    rc, _, err = run_main("q1_plot", ["--data-dir", q1_data, "--out-dir", lstm_out], capsys)
    assert_exit2(rc, err, "did not write", "metrics.json")
    # its own folder is replaced again; a data folder is not an output folder
    assert run_main("q1_generate", gen + ["--data-dir", tmp_path / "d", "--out-dir", lstm_out], capsys)[0] == 0
    rc, _, err = run_main("q1_generate", gen + ["--data-dir", tmp_path / "d2", "--out-dir", tmp_path / "d"], capsys)
    assert_exit2(rc, err, "q1_generate data")
    # a second q1_generate into the same folder while one is writing: the staging folder is locked
    staging = tmp_path / "d.partial"
    staging.mkdir()
    holder = _hold_lock(staging, raw=False)
    try:
        rc, _, err = run_main("q1_generate", gen + ["--data-dir", tmp_path / "d", "--out-dir", lstm_out], capsys)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert_exit2(rc, err, "another run", str(staging))
    assert (tmp_path / "d" / "info.csv").exists()


def test_rule_a_full_disk_during_a_checkpoint_is_one_error_and_keeps_the_previous(tmp_path, monkeypatch):
    """checkpoint.save_checkpoint: ENOSPC / EFBIG / torch's inline_container error -> UserError, old file intact."""
    import errno as errno_mod

    from audiolab.core import checkpoint
    path = checkpoint.save_checkpoint(tmp_path / "checkpoint.pt", {"epoch": 1})
    failures = [OSError(errno_mod.ENOSPC, "No space left on device"), OSError(errno_mod.EFBIG, "File too large"),
                RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0")]
    for failure in failures:
        def full(*_a, _f=failure, **_k):
            raise _f
        monkeypatch.setattr(checkpoint.torch, "save", full)
        with pytest.raises(UserError, match="--resume") as info:
            checkpoint.save_checkpoint(path, {"epoch": 2})
        assert "intact" in str(info.value)
        assert torch.load(path, weights_only=False)["epoch"] == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]
    monkeypatch.setattr(checkpoint.torch, "save", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("bug")))
    with pytest.raises(RuntimeError, match="bug"):  # other errors are not disguised as a full disk
        checkpoint.save_checkpoint(path, {"epoch": 2})


def _tiny_fit(tmp_path, epochs, resume=False, extend_to=None):
    from audiolab.core.train import fit
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    loader = [(torch.ones(4, 2), torch.zeros(4, 1))]
    config = {"epochs": epochs, "resume": resume, "extend_to": extend_to, "lr": 0.1}
    return fit(model, optimizer, loader, lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1]), epochs,
               checkpoint_path=tmp_path / "ck.pt", resume=resume, scheduler=scheduler, config=config,
               progress=False)


def test_rule_resume_is_exact_or_refused_and_an_extension_is_recorded(tmp_path, capsys):
    """checkpoint.resume_schedule (called by train.fit): other --epochs refused; --extend-to recorded."""
    from audiolab.core.outputs import read_json, write_metrics
    _tiny_fit(tmp_path, 2)
    for epochs in (3, 1):
        with pytest.raises(UserError, match=r"2-epoch run.*--epochs 2"):
            _tiny_fit(tmp_path, epochs, resume=True)
    assert len(_tiny_fit(tmp_path, 2, resume=True)) == 2          # same schedule: exact (nothing left to do)
    with pytest.raises(UserError, match="does not go beyond"):
        _tiny_fit(tmp_path, 2, extend_to=2)
    out_dir_for(argparse.Namespace(out_dir=tmp_path / "out", device=None), "tiny")
    history = _tiny_fit(tmp_path, 2, extend_to=4)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4] and history.schedule["extended_from_epochs"] == 2
    write_metrics(tmp_path / "out", {}, args={}, dataset="x", data_source="synthetic")
    assert read_json(tmp_path / "out" / "metrics.json")["training_schedule"] == {
        "train": {"epochs": 4, "extended_from_epochs": 2}}
    assert len(_tiny_fit(tmp_path, 4, resume=True)) == 4           # the extended run resumes as a 4-epoch one
    release_out_dir_locks()


@pytest.mark.parametrize("content", ["[" * 100000, "x" * 17 * 2**20, "/dev/zero"])
def test_rule_reports_show_a_bad_metrics_file_as_broken(content, tmp_path):
    """report.summary.read_json_checked: size cap, RecursionError, non-regular files -> 'broken'."""
    from audiolab.report.html import build_report
    from audiolab.report.summary import summary_rows
    folder = tmp_path / "q2_ctc"
    folder.mkdir()
    if content == "/dev/zero":
        (folder / "metrics.json").symlink_to("/dev/zero")
    else:
        (folder / "metrics.json").write_text(content)
    rows = [r for r in summary_rows(tmp_path) if r["folder"] == "q2_ctc"]
    assert rows and all(r["status"].startswith("broken") for r in rows), rows
    assert "is broken" in build_report(tmp_path).read_text() or "broken" in build_report(tmp_path).read_text()


def test_rule_timing_a_missing_command_is_a_sentence(tmp_path, monkeypatch, capsys):
    """report.summary.time_step: a command that cannot start -> 'error: cannot run', exit 2."""
    from audiolab.report import summary
    monkeypatch.setenv("AUDIOLAB_OUTPUTS", str(tmp_path))
    assert summary.main(["time", "x", "--", str(tmp_path / "missing" / "command")]) == 2
    err = capsys.readouterr().err
    assert "error: cannot run" in err and "Traceback" not in err


def _parsers(parser: argparse.ArgumentParser, prefix: str = ""):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{prefix}{name} ")


def _all_parsers():
    for name in ("q1_generate", "q1_plot", "q1_train_lstm", "q2_ctc", "q2_compare", "q2_multitask", "vae_bss",
                 "speechcommands_rnn"):
        module = SCRIPTS.get(name) or load_script(name)
        yield from ((f"{name} {p}", q) for p, q in _parsers(module.build_parser()))
    yield "hw_cnn1d/2d ", load_script("hw_denoise").script_parser("", epochs=1, layers="x")


def test_rule_every_numeric_flag_has_a_range():
    """cli.int_range / float_range / positive_* / sample_rate_hz / trim_db: no plain int or float flag anywhere."""
    from audiolab.core.cli import positive_float, positive_int
    plain = []
    for where, parser in _all_parsers():
        for action in parser._actions:
            kind = action.type
            if kind is None or kind in (str, Path) or action.choices is not None:
                continue
            bounds = getattr(kind, "bounds", None)
            if kind not in (positive_int, positive_float) and bounds is None:
                plain.append(f"{where}{action.option_strings[0]} ({getattr(kind, '__name__', kind)})")
            if action.dest == "sample_rate":
                assert bounds is not None and bounds[0] >= 8000, f"{where}--sample-rate accepts {bounds}"
            if action.dest == "trim_db":
                assert bounds == (0, 120), f"{where}--trim-db accepts {bounds}"
    assert not plain, plain


def _noise(n: int, seed: int, channels: int = 1) -> np.ndarray:
    wav = np.random.default_rng(seed).uniform(-0.3, 0.3, (n, channels) if channels > 1 else n)
    return wav.astype(np.float32)


def _overlap_fsdd(root: Path, allow: bool):
    import audiolab.data.keywords as kd
    rec = root / "fsdd" / "recordings"
    rec.mkdir(parents=True)
    for k, spk in enumerate("abcd"):
        for digit in range(10):
            for i in range(7):
                sf.write(rec / f"{digit}_{spk}_{i}.wav", _noise(800, 1000 * k + 10 * digit + i), 8000)
    shutil.copy(rec / "3_d_1.wav", rec / "3_a_9.wav")  # the test speaker's clip under a training speaker's name
    kws = load_script("speechcommands_rnn")
    args = kws.parse_args(["train", "--dataset", "fsdd", "--data-root", str(root), "--synthetic-voices", "0"]
                          + (["--allow-overlap"] if allow else []))
    return kd.load_keywords(args)


def _denoise_folders(root: Path) -> tuple[Path, Path]:
    for k, spk in enumerate(("A", "B")):
        for i in range(4):
            float_wav(root / "speech" / spk / f"{spk}{i}.wav", tone(0.5, 150 + 40 * i + 7 * k, seed=k))
    for i in range(2):
        float_wav(root / "noise" / f"n{i}.wav", _noise(SR, 50 + i))
    return root / "speech", root / "noise"


def _denoise_args(allow: bool) -> argparse.Namespace:
    from audiolab.core.cli import base_parser
    hw_denoise = load_script("hw_denoise")
    parser = base_parser("test", epochs=1)
    hw_denoise.add_denoise_args(parser)
    args = parser.parse_args(["--n-fft", "256"])
    args.allow_overlap = allow
    return args


def _overlap_denoise_speech(root: Path, allow: bool):
    speech_dir, noise_dir = _denoise_folders(root)
    shutil.copy(speech_dir / "B" / "B2.wav", speech_dir / "A" / "copy_of_B2.wav")
    return speech.folder_data(speech_dir, noise_dir, _denoise_args(allow), "toy")


def _overlap_denoise_heldout_noise(root: Path, allow: bool):
    speech_dir, noise_dir = _denoise_folders(root)
    return speech.folder_data(speech_dir, noise_dir, _denoise_args(allow), "toy", heldout_dir=noise_dir)


def _overlap_mir1k(root: Path, allow: bool):
    from audiolab.data.music import load_music_splits
    for split, n in (("train", 4), ("test", 2)):
        for i in range(n):
            float_wav(root / "mir1k" / split / f"{split}{i}.wav", _noise(4000, 7 * i + len(split), channels=2))
    shutil.copy(root / "mir1k" / "train" / "train2.wav", root / "mir1k" / "test" / "copy.wav")
    return load_music_splits("mir1k", root, sample_rate=SR, seed=0, min_samples=256, val_clips=1, allow_overlap=allow)


def _overlap_emotion(root: Path, allow: bool):
    from audiolab.data import multitask
    from audiolab.data.emotion import Example
    examples = [Example(_noise(1600, 10 * s + 2 * e + i), SR, "ciao", emo, f"s{s}", f"s{s}_{emo}_{i}.wav")
                for s in range(3) for e, emo in enumerate(("neutral", "anger")) for i in range(2)]
    examples[0].waveform = examples[-1].waveform.copy()  # a test speaker's clip again under s0
    cfg = multitask.DataConfig(test_speakers="s2", allow_overlap=allow)
    return multitask.split_indices(cfg, examples)


def _overlap_images(root: Path, allow: bool):
    import gzip
    import struct

    from audiolab.data.images import IDX_FILES, IMAGE_SETS, load_mnist_fashion
    rng = np.random.default_rng(0)
    for name in IMAGE_SETS:
        folder = root / IMAGE_SETS[name][0]
        folder.mkdir(parents=True)
        arrays = {"train": rng.integers(0, 256, (6, 28, 28)), "test": rng.integers(0, 256, (3, 28, 28))}
        arrays["test"][1] = arrays["train"][4]  # a test image that is a training image
        for split, images in arrays.items():
            for stem, arr in zip(IDX_FILES[split], (images, rng.integers(0, 10, len(images)))):
                with gzip.open(folder / f"{stem}.gz", "wb") as fh:
                    fh.write(bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
                             + arr.astype(np.uint8).tobytes())
    return load_mnist_fashion("mnist_fashion", root, download=False, seed=0, synthetic_sizes=(4, 2),
                              allow_overlap=allow)


OVERLAP_LOADERS = {"keywords_fsdd": _overlap_fsdd, "denoise_speech": _overlap_denoise_speech,
                   "denoise_heldout_noise": _overlap_denoise_heldout_noise, "music_mir1k": _overlap_mir1k,
                   "emotion": _overlap_emotion, "images_mnist_fashion": _overlap_images}


@pytest.mark.parametrize("loader", list(OVERLAP_LOADERS))
def test_rule_the_same_audio_on_both_sides_of_a_split_is_refused(loader, tmp_path, capsys):
    """splits.refuse_overlap, called by every loader: exit 2 naming a pair and the count; --allow-overlap warns."""
    with pytest.raises(UserError, match=r"[12] evaluation item\(s\) .* same audio as a training item") as info:
        OVERLAP_LOADERS[loader](tmp_path / "refused", allow=False)
    assert "--allow-overlap" in str(info.value)
    OVERLAP_LOADERS[loader](tmp_path / "allowed", allow=True)
    out = capsys.readouterr().out
    assert "WARNING: " in out and "evaluation item(s)" in out.split("WARNING: ", 1)[1]


@pytest.mark.parametrize("case", ["test_set_layout_words", "fsdd_unknown", "fsdd_words", "speech_commands_fsdd_flag"])
def test_rule_a_flag_the_data_ignore_is_refused(case, tmp_path, capsys):
    """cli.refuse_ignored, called by each keyword loader: a flag it would not read is an error, not a no-op."""
    import audiolab.data.keywords as kd
    layout = tmp_path / "speech_commands_test_v0.02"
    (layout / "_unknown_").mkdir(parents=True)
    float_wav(layout / "yes" / "abc_nohash_0.wav", tone(0.1, 200))
    float_wav(tmp_path / "fsdd" / "recordings" / "1_a_0.wav", tone(0.1, 200, sample_rate=8000), 8000)
    dataset, flags, needle = {"test_set_layout_words": ("speech_commands", ["--words", "up,down"], "--words"),
                              "fsdd_unknown": ("fsdd", ["--unknown", "--silence"], "--unknown, --silence"),
                              "fsdd_words": ("fsdd", ["--words", "up,down"], "--words"),
                              "speech_commands_fsdd_flag": ("speech_commands", ["--test-speaker", "a"],
                                                            "--test-speaker")}[case]
    kws = load_script("speechcommands_rnn")
    args = kws.parse_args(["train", "--dataset", dataset, "--data-root", str(tmp_path)] + flags)
    with pytest.raises(UserError, match="nothing") as info:
        kd.load_keywords(args)
    assert needle in str(info.value)


def test_rule_a_clip_silent_after_the_mono_mix_is_skipped_by_every_loader(tmp_path, capsys):
    """io.is_silent in the keyword (read_clip) and emotion (load_examples) loaders, as in the Q1 / denoising ones."""
    from audiolab.data.emotion import Listing, UtteranceInfo, load_examples
    from audiolab.data.keyword_clips import read_clip
    left = np.sign(tone(0.2, 300)) * 1.0  # full scale: -1.0 is -32768, +1.0 clips to 32767
    cancel = tmp_path / "cancel.wav"
    sf.write(cancel, np.stack([left, -left], axis=1), SR, subtype="PCM_16")
    zeros = tmp_path / "zeros.wav"
    sf.write(zeros, np.zeros(3200, np.float32), SR, subtype="PCM_16")
    good = float_wav(tmp_path / "good.wav", tone(0.2, 300))
    issues: list = []
    assert read_clip(cancel, SR, issues) is None and read_clip(zeros, SR, issues) is None
    assert read_clip(good, SR, issues) is not None
    assert [p for p, _ in issues] == [str(cancel), str(zeros)]
    listing = Listing([UtteranceInfo(p, "ciao", "neutral", "s1") for p in (cancel, zeros, good)])
    skipped: list = []
    assert [ex.path for ex in load_examples(listing, SR, skipped=skipped)] == [str(good)]
    assert {str(p) for p, _ in skipped} == {str(cancel), str(zeros)}
    out = capsys.readouterr().out
    assert f"skipped: audio file {cancel}" in out


INFO_FAULTS = {"not_utf8": (lambda lines: lines[:2] + [lines[2][:-1] + b"\xff\xfe"] + lines[3:], "line 3", "UTF-8"),
               "stray_row": (lambda lines: lines + [b"oops,1"], "line 12", "fields"),
               "empty_field": (lambda lines: lines[:4] + [lines[4].replace(b",train,", b",,").replace(b",test,", b",,")]
                               + lines[5:], "line 5", "column split"),
               "duplicate_id": (lambda lines: lines + [lines[1]], "line 12", "repeats"),
               "escaping_path": (lambda lines: lines[:1] + [lines[1].replace(b"train/", b"../../")
                                                              .replace(b"test/", b"../../")] + lines[2:],
                                 "line 2", "inside the data folder")}


@pytest.mark.parametrize("fault", list(INFO_FAULTS))
@pytest.mark.parametrize("script", ["q1_train_lstm", "q1_plot"])
def test_rule_a_malformed_task_table_is_refused_before_training(script, fault, q1_data, tmp_path, capsys):
    """data.common.read_table (Q1_INFO_COLUMNS): every cell of info.csv checked first; line and column named."""
    data = _q1_copy(q1_data, tmp_path)
    lines = (data / "info.csv").read_bytes().splitlines()
    change, line, needle = INFO_FAULTS[fault]
    (data / "info.csv").write_bytes(b"\n".join(change(lines)) + b"\n")
    argv = ["--data-dir", data, "--out-dir", tmp_path / "out"]
    argv += ["--epochs", "1"] if script == "q1_train_lstm" else []
    rc, out, err = run_main(script, argv, capsys)
    assert_exit2(rc, err, "info.csv", line, needle, out_dir=tmp_path / "out")
    assert "epoch 1" not in out  # refused before training


def test_rule_training_that_diverges_stops_with_a_sentence(tmp_path, capsys):
    """train._train_step (DIVERGED_RATIO): q2_ctc --lr 10 used to exit 0 with inf written as null."""
    rc, _, err = run_main("q2_ctc", ["--quick", "--lr", "10", "--out-dir", tmp_path / "out"], capsys)
    assert_exit2(rc, err, "training diverged at epoch 1", "--lr", out_dir=tmp_path / "out")


def test_rule_speaker_ids_that_differ_only_in_case_are_refused(tmp_path):
    """splits.refuse_case_twins, in splits.leave_speakers_out (every speaker split) and the denoising folders."""
    with pytest.raises(UserError, match="'M2' and 'm2' differ only in case"):
        from audiolab.data import splits
        splits.speaker_split(["f1", "m2", "M2", "f1"], 0.5)
    speech_dir, noise_dir = _denoise_folders(tmp_path)
    shutil.copytree(speech_dir / "A", speech_dir / "a")
    with pytest.raises(UserError, match="differ only in case"):
        speech.folder_data(speech_dir, noise_dir, _denoise_args(False), "toy")


def test_rule_an_emotion_training_split_of_one_class_is_refused():
    """multitask.check_split: a one-class manifest used to report accuracy 1.000."""
    from audiolab.data import multitask
    with pytest.raises(UserError, match="one emotion only"):
        multitask.check_split([0, 1, 2], [3, 4], ["anger"] * 5)
    assert multitask.check_split([0, 1, 2], [3, 4], ["anger", "joy", "anger", "joy", "anger"]) is not None


def test_rule_a_list_flag_with_a_value_given_twice_is_refused(tmp_path, capsys):
    """cli.comma_list (--models, --words) and cli.Distinct (--test-snrs): no model trained or SNR scored twice."""
    kws = load_script("speechcommands_rnn")
    for flag in ("--models", "--words"):
        with pytest.raises(UserError, match=f"{flag}: 'lstm' is given twice" if flag == "--models" else "twice"):
            kws.parse_args(["train", flag, "lstm,gru,lstm" if flag == "--models" else "up,down,up"])
    rc, _, err = run_main("hw_cnn1d", ["--quick", "--out-dir", tmp_path / "o", "--test-snrs", "0", "0", "5"], capsys)
    assert_exit2(rc, err, "--test-snrs", "given twice", out_dir=tmp_path / "o")


def test_rule_a_data_root_that_is_a_file_is_refused(tmp_path, monkeypatch):
    """data.common.resolve_data_root: $AUDIOLAB_DATA naming a file used to fall back to synthetic data silently."""
    from audiolab.data.common import resolve_data_root
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("AUDIOLAB_DATA", str(tmp_path / "file"))
    with pytest.raises(UserError, match=r"\$AUDIOLAB_DATA .* is a file"):
        resolve_data_root(None)
    with pytest.raises(UserError, match="--data-root .* is a file"):
        resolve_data_root(tmp_path / "file")
    monkeypatch.setenv("AUDIOLAB_DATA", str(tmp_path))
    assert resolve_data_root(None) == tmp_path


def test_rule_a_folder_where_files_are_expected_is_a_sentence(tmp_path, capsys):
    """speech.load_unlabeled: hw_cnn --test DIR used to say "Format not recognised"."""
    (tmp_path / "noisy").mkdir()
    rc, _, err = run_main("hw_cnn1d", ["--quick", "--out-dir", tmp_path / "o", "--test", tmp_path / "noisy"], capsys)
    assert_exit2(rc, err, "is a folder", "*.wav", out_dir=tmp_path / "o")
