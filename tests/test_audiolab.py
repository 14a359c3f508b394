"""Shared building blocks: audio I/O, STFT, runtime helpers, training loop, datasets, synthesis, report."""

import json
import re
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from audiolab.core import cli, dsp, io, outputs, runtime
from audiolab.data import common as datasets
from audiolab.data import synth
from audiolab.augment import waveform
from audiolab.report import html as report
from audiolab.core.train import fit, load_checkpoint


# ---------------------------------------------------------------------------- io
def test_save_load_roundtrip_is_exact_on_16bit_grid(tmp_path):
    x = np.round(np.random.default_rng(0).uniform(-0.9, 0.9, 1000) * 32768) / 32768
    io.save_audio(tmp_path / "a.wav", x, 16000)
    y, sr = io.load_audio(tmp_path / "a.wav")
    assert sr == 16000 and sf.info(str(tmp_path / "a.wav")).subtype == "PCM_16"
    np.testing.assert_array_equal(y, x.astype(np.float32))


def test_load_downmixes_and_resamples(tmp_path):
    t = np.arange(48000) / 48000
    left, right = np.sin(2 * np.pi * 440 * t), np.zeros_like(t)
    sf.write(tmp_path / "st.flac", np.stack([left, right], 1) * 0.5, 48000)
    y, sr = io.load_audio(tmp_path / "st.flac", sample_rate=16000)
    assert sr == 16000 and y.ndim == 1 and abs(len(y) - 16000) <= 1
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * 16000 / len(y) - 440) < 2          # the tone survived resampling
    assert abs(np.abs(y).max() - 0.25) < 0.01                        # (0.5 + 0) / 2
    both, _ = io.load_audio(tmp_path / "st.flac", mono=False)
    assert both.shape == (2, 48000)


def test_unreadable_files_are_reported_and_skipped(tmp_path, capsys):
    good = tmp_path / "good.wav"
    io.save_audio(good, np.zeros(100) + 0.1, 8000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00not really audio")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), 8000)
    with pytest.raises(io.AudioReadError, match="bad.wav"):
        io.load_audio(bad)
    skipped = []
    got = list(io.iter_readable([bad, good, empty], skipped=skipped))
    assert [p.name for p, _, _ in got] == ["good.wav"]
    assert {p.name for p, _ in skipped} == {"bad.wav", "empty.wav"}
    assert "skipped" in capsys.readouterr().out


def test_save_refuses_nan_and_rescales_clipping(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        io.save_audio(tmp_path / "x.wav", np.array([0.0, np.nan]), 8000)
    with pytest.warns(UserWarning, match="clipping"):
        io.save_audio(tmp_path / "y.wav", np.array([0.0, 2.0, -1.0]), 8000)
    y, _ = io.load_audio(tmp_path / "y.wav")
    assert np.abs(y).max() <= 1.0 and y[1] > 0.99
    assert not list(tmp_path.glob("*.tmp*"))


def test_fit_length():
    assert io.fit_length(np.ones(5), 8).tolist() == [1, 1, 1, 1, 1, 0, 0, 0]
    assert io.fit_length(np.arange(10), 4, offset=3).tolist() == [3, 4, 5, 6]


# --------------------------------------------------------------------------- dsp
def test_stft_matches_librosa_and_inverts():
    x = np.random.default_rng(1).standard_normal(4000).astype(np.float32)
    ours = dsp.stft(x, n_fft=512, hop_length=128).numpy()
    ref = librosa.stft(x, n_fft=512, hop_length=128, window="hann", center=True, pad_mode="reflect")
    np.testing.assert_allclose(ours, ref, atol=1e-3, rtol=1e-4)
    back = dsp.istft(torch.as_tensor(ours), n_fft=512, hop_length=128, length=4000).numpy()
    np.testing.assert_allclose(back, x, atol=1e-5)
    mag, phase = dsp.magnitude_phase(torch.tensor(x), n_fft=1024, hop_length=512)
    assert mag.shape[0] == 513
    y = dsp.from_magnitude_phase(mag, phase, n_fft=1024, hop_length=512, length=4000)
    np.testing.assert_allclose(y.numpy(), x, atol=1e-4)


def test_amplitude_to_db_and_axes():
    db = dsp.amplitude_to_db(np.array([1.0, 0.1, 1e-9]), top_db=60)
    np.testing.assert_allclose(db, [0.0, -20.0, -60.0])
    assert dsp.frequencies_hz(512, 32000)[-1] == 16000
    assert dsp.frame_times_s(3, 128, 32000).tolist() == [0, 0.004, 0.008]


# ----------------------------------------------------------------------- runtime
def test_write_metrics_atomic_with_provenance(tmp_path):
    parser = cli.base_parser("demo", epochs=3)
    args = parser.parse_args(["--seed", "7"])
    outputs.write_metrics(tmp_path, {"test_si_snr_db": 12.5, "bad_db": float("inf")}, args=args, dataset="d",
                          data_source="synthetic", anchors=[{"metric": "test_si_snr_db", "anchor": 10, "source": "x"}])
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["test_si_snr_db"] == 12.5 and m["bad_db"] is None            # never inf as a score
    assert m["seed"] == 7 and m["config"]["epochs"] == 3 and m["data_source"] == "synthetic"
    assert {"git_commit", "device", "torch_version", "dataset"} <= set(m)
    assert json.loads((tmp_path / "anchors.json").read_text())[0]["anchor"] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anchors.json", "metrics.json"]
    with pytest.raises(ValueError):
        outputs.write_metrics(tmp_path, {}, args=args, dataset="d", data_source="fake")


def test_devices_and_seeding():
    assert runtime.select_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(runtime.UserError, match="CUDA"):
            runtime.select_device("cuda")
    runtime.seed_everything(3)
    a = torch.rand(3), np.random.rand()
    runtime.seed_everything(3)
    b = torch.rand(3), np.random.rand()
    assert torch.equal(a[0], b[0]) and a[1] == b[1]


def test_main_guard_turns_user_errors_into_exit_2(capsys):
    def main(argv):
        raise runtime.UserError("bad input here")
    assert cli.main_guard(main) == 2
    assert "bad input here" in capsys.readouterr().err


# ------------------------------------------------------------------------- train
def _regression_run(tmp_path, epochs, resume=False, ckpt="c.pt", stop_after=None):
    runtime.seed_everything(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.1
    model = torch.nn.Linear(3, 1)
    runtime.seed_everything(1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16, shuffle=True)

    calls = []

    def step(m, batch):
        calls.append(1)
        if stop_after is not None and len(calls) > stop_after * len(loader):
            raise KeyboardInterrupt  # Ctrl-C in the first step of epoch stop_after + 1
        xb, yb = batch
        loss = ((m(xb).squeeze(-1) - yb) ** 2).mean()
        return loss, {"abs_err": float((m(xb).squeeze(-1) - yb).abs().mean().detach())}

    def eval_fn(m):
        return {"val_mse": float(((m(x).squeeze(-1) - y) ** 2).mean())}

    hist = fit(model, opt, loader, step, epochs, eval_fn=eval_fn,
               checkpoint_path=tmp_path / ckpt, log_path=tmp_path / "log.csv", resume=resume, best_key="val_mse",
               best_mode="min", progress=False)
    return model, hist


def test_fit_learns_logs_and_resumes_exactly(tmp_path):
    model_a, hist_a = _regression_run(tmp_path / "a", 6)
    assert hist_a[-1]["val_mse"] < 0.1 * hist_a[0]["val_mse"]
    assert (tmp_path / "a" / "c_best.pt").exists()
    assert len((tmp_path / "a" / "log.csv").read_text().strip().splitlines()) == 7
    with pytest.raises(KeyboardInterrupt):
        _regression_run(tmp_path / "b", 6, stop_after=3)        # interrupted after 3 epochs
    model_b, hist_b = _regression_run(tmp_path / "b", 6, resume=True)
    assert [r["epoch"] for r in hist_b] == list(range(1, 7))
    torch.testing.assert_close(model_b.weight, model_a.weight)  # resume == uninterrupted run
    assert load_checkpoint(tmp_path / "b" / "c.pt")["epoch"] == 6


def test_fit_averages_each_extra_over_the_batches_that_report_it():
    model = torch.nn.Linear(1, 1)
    batches = [torch.ones(2, 1), torch.ones(2, 1), torch.ones(2, 1)]

    def step(m, x):                                             # "ce" only in the first and last batch
        k = step.calls = getattr(step, "calls", 0) + 1
        return m(x).pow(2).mean(), ({"ce": 2.0 * k} if k != 2 else {})

    hist = fit(model, torch.optim.SGD(model.parameters(), lr=0.0), batches, step, 1, progress=False)
    assert hist[0]["ce"] == pytest.approx((2.0 + 6.0) / 2)      # not (2 + 6) / 3


def test_fit_skips_a_batch_with_no_loss_term():
    """A loss that needs no gradient (nothing applied to the batch) makes no update and is not averaged."""
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.ones_(model.weight)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.5)   # a zero-grad step would still move
    hist = fit(model, opt, [torch.ones(1, 1), torch.ones(1, 1)], lambda m, x: torch.zeros(()), 1, progress=False)
    assert float(model.weight.detach()) == 1.0 and hist[0]["train_loss"] == 0.0


def test_resume_without_checkpoint_and_broken_checkpoint(tmp_path):
    with pytest.raises(runtime.UserError, match="does not exist"):
        _regression_run(tmp_path, 2, resume=True)
    (tmp_path / "c.pt").write_bytes(b"truncated")
    with pytest.raises(runtime.UserError, match="cannot be read"):
        load_checkpoint(tmp_path / "c.pt")


def test_resume_with_a_checkpoint_of_another_model_shape_is_a_clear_error(tmp_path):
    model = torch.nn.Linear(1, 1)
    fit(model, torch.optim.SGD(model.parameters(), lr=0.1), [torch.ones(2, 1)],
        lambda m, x: m(x).pow(2).mean(), 1, checkpoint_path=tmp_path / "c.pt", progress=False)
    wider = torch.nn.Linear(1, 3)                               # e.g. saved before a default changed
    with pytest.raises(runtime.UserError, match="does not fit this model"):
        fit(wider, torch.optim.SGD(wider.parameters(), lr=0.1), [torch.ones(2, 1)],
            lambda m, x: m(x).pow(2).mean(), 1, checkpoint_path=tmp_path / "c.pt", resume=True, progress=False)


# ---------------------------------------------------------------------- datasets
def test_choose_dataset(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AUDIOLAB_DATA", raising=False)
    assert datasets.resolve_data_root(None).as_posix() == "data"
    monkeypatch.setenv("AUDIOLAB_DATA", str(tmp_path))
    assert datasets.resolve_data_root(None) == tmp_path
    real = [datasets.RealDataset("corpus", lambda root: datasets.first_existing(root, ["corpus"], "*.wav"),
                                 "download it from example.org and unpack into <data-root>/corpus")]
    choice = datasets.choose_dataset("auto", tmp_path, real, "synthetic", "eSpeak NG speech")
    assert choice.synthetic and "SYNTHETIC" in capsys.readouterr().out
    with pytest.raises(datasets.DatasetNotFound, match=re.escape(str(tmp_path.resolve()))):
        datasets.choose_dataset("corpus", tmp_path, real, "synthetic", "x")
    (tmp_path / "corpus").mkdir()
    io.save_audio(tmp_path / "corpus" / "a.wav", np.zeros(10), 8000)
    choice = datasets.choose_dataset("auto", tmp_path, real, "synthetic", "x")
    assert choice.source == "real" and choice.path == tmp_path / "corpus"
    with pytest.raises(runtime.UserError, match="unknown dataset"):
        datasets.choose_dataset("nope", tmp_path, real, "synthetic", "x")


# ------------------------------------------------------------------------- synth
def _f0_hz(wav, sr):
    """Median autocorrelation pitch over voiced frames (librosa.yin)."""
    f0 = librosa.yin(wav, fmin=60, fmax=500, sr=sr, frame_length=1024)
    return float(np.median(f0))


def test_synthesize_speech_and_pitch_control():
    low = synth.synthesize("hello there, how are you", synth.Voice("en-us", pitch=20), sample_rate=16000)
    high = synth.synthesize("hello there, how are you", synth.Voice("en-us", pitch=90), sample_rate=16000)
    assert 0.5 < len(low) / 16000 < 4 and np.abs(low).max() > 0.05
    assert _f0_hz(high, 16000) > 1.2 * _f0_hz(low, 16000)
    slow = synth.synthesize("one two three four", synth.Voice("en-us", rate=100))
    fast = synth.synthesize("one two three four", synth.Voice("en-us", rate=300))
    assert len(slow) > 1.5 * len(fast)
    with pytest.raises(synth.SynthesisError, match="no voice"):
        synth.synthesize("x", "no-such-voice")


_RENDER = ("import hashlib, sys; from audiolab.data.synth import Voice, synthesize; "
           "print(hashlib.sha1(b''.join(synthesize('The birch canoe slid on the smooth planks.', "
           "Voice('en-us+' + v, rate=150)).tobytes() for v in ('f3', 'f5', 'm1'))).hexdigest())")


def test_synthesize_is_the_same_in_every_process():
    """eSpeak NG seeds its generator (the breathy f3/f5 variants) with the clock at initialisation;
    two processes started in different seconds must still render the same samples."""
    import subprocess
    import sys
    import time
    repo = Path(__file__).resolve().parent.parent
    digests = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", _RENDER], cwd=repo, capture_output=True, text=True, check=True)
        digests.append(out.stdout.strip())
        time.sleep(1.1)                       # another second: another clock seed if we did not reseed
    assert len(digests[0]) == 40 and digests[0] == digests[1]


def test_noise_and_mixing():
    rng = np.random.default_rng(0)
    pink = waveform.pink_noise(2 ** 16, rng)
    f = np.fft.rfftfreq(2 ** 16)[1:]
    power = np.abs(np.fft.rfft(pink))[1:] ** 2
    slope = np.polyfit(np.log10(f), np.log10(power), 1)[0]
    assert -1.2 < slope < -0.8                          # 1/f power
    clean = rng.standard_normal(8000).astype(np.float32)
    mix, noise = waveform.mix_at_snr(clean, rng.standard_normal(8000).astype(np.float32), 5.0)
    assert abs(10 * np.log10(np.mean(clean ** 2) / np.mean(noise ** 2)) - 5.0) < 1e-3
    np.testing.assert_allclose(mix, clean + noise, atol=1e-6)
    with pytest.raises(ValueError, match="silent"):
        waveform.mix_at_snr(np.zeros(10, np.float32), np.ones(10, np.float32), 0)


# ------------------------------------------------------------------------ report
def test_save_figure_never_leaves_half_a_png(tmp_path):
    import matplotlib.pyplot as plt
    from audiolab.core.plotting import save_figure
    path = tmp_path / "fig.png"
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    save_figure(fig, path)
    good = path.read_bytes()
    assert good[:8] == b"\x89PNG\r\n\x1a\n"

    fig2, _ = plt.subplots()

    def crash(target, **kwargs):            # a kill in the middle of writing
        Path(target).write_bytes(b"\x89PNG half")
        raise KeyboardInterrupt

    fig2.savefig = crash
    with pytest.raises(KeyboardInterrupt):
        save_figure(fig2, path)
    assert path.read_bytes() == good        # the previous figure is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png"]   # no temp file left
    assert not plt.fignum_exists(fig2.number)


def test_report_collects_metrics_figures_audio(tmp_path):
    out = tmp_path / "outputs"
    args = cli.base_parser("x").parse_args([])
    outputs.write_metrics(out / "q1_train_lstm", {"test_si_snr_db": 41.25}, args=args, dataset="q1",
                          data_source="synthetic", anchors=[{"metric": "test_si_snr_db", "anchor": 35.0,
                                                             "source": "target"}])
    (out / "q1_train_lstm" / "curves.png").write_bytes(b"\x89PNG")
    io.save_audio(out / "q1_train_lstm" / "audio" / "000.wav", np.zeros(100), 8000)
    (out / "zz_other").mkdir()
    page = report.build_report(out).read_text()
    assert "41.25" in page and "35 (target)" in page
    assert "Synthetic demo data" not in page  # Q1's sinusoids are the task's own data (banner: test_report.py)
    assert "src='q1_train_lstm/curves.png'" in page and "src='q1_train_lstm/audio/000.wav'" in page
    assert page.index("q1_train_lstm") < page.index("zz_other")
    with pytest.raises(FileNotFoundError):
        report.build_report(tmp_path / "missing")


def test_write_csv_unions_columns_atomically(tmp_path):
    path = outputs.write_csv(tmp_path / "sub" / "t.csv", [{"a": 1, "b": 2.5}, {"a": 3, "c": "x"}])
    assert path.read_text().splitlines() == ["a,b,c", "1,2.5,", "3,,x"]
    assert [p.name for p in path.parent.iterdir()] == ["t.csv"]


def test_git_commit_names_the_code_at_start_not_at_write(tmp_path, monkeypatch):
    import subprocess

    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("commit", "-qm", "one")
    first = git("rev-parse", "HEAD")
    monkeypatch.setattr(runtime, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(runtime, "_GIT_COMMIT", None)
    assert runtime.git_commit() == first
    (tmp_path / "a.py").write_text("x = 2\n")       # a commit made while the run trains
    git("commit", "-qam", "two")
    assert runtime.git_commit() == first
    (tmp_path / "a.py").write_text("x = 3\n")       # a new run from uncommitted code
    monkeypatch.setattr(runtime, "_GIT_COMMIT", None)
    assert runtime.git_commit() == git("rev-parse", "HEAD") + "-dirty"
    monkeypatch.setattr(runtime, "REPO_ROOT", tmp_path / "not_a_repo")
    monkeypatch.setattr(runtime, "_GIT_COMMIT", None)
    assert runtime.git_commit() == "unknown"
