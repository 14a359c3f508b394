"""hw_cnn1d.py / hw_cnn2d.py: model properties, end-to-end --quick runs, bad input."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiolab.core.cli import main_guard

REPO = Path(__file__).resolve().parent.parent
SR = 16000


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hw1 = load_script("hw_cnn1d")
hw2 = load_script("hw_cnn2d")


def speechlike(seconds: float, f0: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    wav = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 8))
    env = 0.5 * (1 + np.sin(2 * np.pi * 2.5 * t)) ** 2
    return (0.1 * wav * env).astype(np.float32)


# ----------------------------------------------------------------------------- models
@pytest.mark.parametrize("output", ["mask", "magnitude"])
def test_models_map_to_513_non_negative_values(output):
    m1, m2 = hw1.CNN1d(output=output), hw2.CNN2d(output=output)
    y1 = m1(torch.rand(4, 1, 513) * 3)
    y2 = m2(torch.rand(4, 1, 20, 513) * 3)
    assert y1.shape == (4, 513) and y2.shape == (4, 513)
    y1, y2 = y1.detach(), y2.detach()
    assert float(y1.min()) >= 0 and float(y2.min()) >= 0
    if output == "mask":
        assert float(y1.max()) <= 1 and float(y2.max()) <= 1


def test_models_use_no_zero_padding_and_shrink_their_maps():
    for model, x in ((hw1.CNN1d(), torch.rand(2, 1, 513)), (hw2.CNN2d(), torch.rand(2, 1, 20, 513))):
        convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d))]
        assert len(convs) >= 2
        assert all(all(p == 0 for p in c.padding) for c in convs)
        sizes = []
        h = model.norm(x)
        for layer in model.features:
            h = layer(h)
            sizes.append(h.shape[-1])
        assert sizes == sorted(sizes, reverse=True) and sizes[-1] < 513 // 4
    kernels = [c.kernel_size for c in hw2.CNN2d().modules() if isinstance(c, torch.nn.Conv2d)]
    assert all(k[0] > 1 and k[1] > 1 for k in kernels)  # larger than 1 on both axes


def test_cnn2d_sees_the_newest_and_the_oldest_frame():
    """Gradients reach frame 19 (the one estimated) and frame 0: no layer drops the context edges."""
    torch.manual_seed(0)
    model = hw2.CNN2d()
    x = torch.rand(1, 1, 20, 513, requires_grad=True)
    model(x).sum().backward()
    per_frame = x.grad.abs().sum(-1)[0, 0]  # [20]
    assert float(per_frame[19]) > 0 and float(per_frame[0]) > 0
    assert bool((per_frame > 0).all())


def test_time_block_conv_equals_conv2d():
    torch.manual_seed(1)
    layer = hw2.TimeBlockConv2d(3, 8, kernel_size=(5, 9), stride=(5, 2))
    x = torch.randn(4, 3, 20, 101)
    ref = torch.nn.functional.conv2d(x, layer.weight, layer.bias, stride=(5, 2))
    assert torch.allclose(layer(x), ref, atol=1e-5)
    odd = torch.randn(2, 3, 17, 101)  # not a multiple of 5: falls back to nn.Conv2d
    assert torch.allclose(layer(odd), torch.nn.functional.conv2d(odd, layer.weight, layer.bias, stride=(5, 2)))


def test_cnn1d_learns_a_denoising_mask():
    """A few hundred steps on frames of a harmonic signal in white noise must beat the noisy input."""
    import hw_denoise as denoise
    from audiolab.augment import noise as noisemix
    from audiolab.core import evaluate, frames
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    clean = speechlike(3.0, 150, 0)
    noise = rng.standard_normal(clean.shape).astype(np.float32)
    noisy, clean = noisemix.random_mix(clean, noise, 0.0, rng)
    bank = frames.FrameBank([(noisy, clean)], context=1)
    model = hw1.CNN1d()
    model.norm.fit(bank.features)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(12):
        for x, nm, cm in bank.batches(32, gen):
            loss = denoise.spectral_loss(model(x), nm, cm, "mask", "magnitude")
            opt.zero_grad()
            loss.backward()
            opt.step()
    est = denoise.enhance(model, noisy, 1, "mask")
    assert evaluate.score(est, clean, noisy, with_perceptual=False)["snr_improvement_db"] > 3


# ----------------------------------------------------------------------------- end to end
def test_cnn1d_quick_end_to_end_on_synthetic_default(run_script, tmp_path):
    proc = run_script("hw_cnn1d.py", "--quick", "--threads", "1", env={"OMP_NUM_THREADS": "1"})
    out = tmp_path / "outputs" / "hw_cnn1d"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data_source"] == "synthetic" and "SYNTHETIC" in proc.stdout
    for key in ("test_snr_db", "test_snr_improvement_db", "test_snr_improvement_db_input_0db",
                "test_snr_improvement_db_input_m5db", "test_pesq", "test_stoi", "test_si_snr_db",
                "baseline_gating_test_snr_db", "baseline_gating_test_pesq", "baseline_noisy_test_pesq",
                "baseline_noisy_test_snr_db", "train_snr_db", "train_seconds"):
        assert isinstance(metrics[key], (int, float)) and math.isfinite(metrics[key]), key
    assert metrics["baseline_noisy_test_snr_db"] == pytest.approx(2.5, abs=1e-3)  # mean of -5, 0, 5, 10
    assert 1.0 <= metrics["test_pesq"] <= 4.7 and 0 <= metrics["test_stoi"] <= 1
    wavs = list((out / "test_denoised").glob("*.wav"))
    assert len(wavs) == metrics["test_n_signals"] > 0
    info = sf.info(str(wavs[0]))
    assert info.samplerate == SR and info.subtype == "PCM_16"
    for name in ("spectrograms_test.png", "snr_vs_input.png", "training_curves.png", "log.csv",
                 "checkpoint.pt", "results_by_condition.csv", "results_per_signal.csv", "anchors.json"):
        assert (out / name).exists(), name
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("hw_cnn1d [synthetic_espeak (SYNTHETIC)]: test SNR") and "PESQ" in last
    assert "nan" not in last.lower() and "inf" not in last.lower()


def test_cnn2d_quick_end_to_end_on_homework_files(run_script, tmp_path):
    rng = np.random.default_rng(1)
    clean = np.concatenate([speechlike(2.0, f0, i) for i, f0 in enumerate((120, 180, 140, 200, 160))])
    noisy = clean + 0.05 * rng.standard_normal(clean.shape).astype(np.float32)
    sf.write(tmp_path / "train_clean.wav", clean, SR)
    sf.write(tmp_path / "train_dirty.wav", np.stack([noisy, noisy], 1), SR)  # stereo: averaged, same signal
    test = speechlike(1.5, 170, 9) + 0.05 * rng.standard_normal(int(1.5 * SR)).astype(np.float32)
    sf.write(tmp_path / "test_x_01.wav", test, SR)
    (tmp_path / "test_broken.wav").write_bytes(b"RIFF....")
    proc = run_script("hw_cnn2d.py", "--quick", "--clean", "train_clean.wav", "--noisy", "train_dirty.wav",
                      "--test", "test_x_01.wav", "test_broken.wav", "--threads", "1",
                      env={"OMP_NUM_THREADS": "1"})
    assert "2 channels" in proc.stdout and "skipped:" in proc.stdout and "test_broken.wav" in proc.stdout
    out = tmp_path / "outputs" / "hw_cnn2d"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data_source"] == "real" and metrics["context_frames"] == 20
    assert math.isfinite(metrics["train_snr_db"]) and "test_snr_db" not in metrics  # no reference, no score
    denoised, _ = sf.read(out / "unlabeled_denoised" / "test_x_01.wav")
    assert denoised.shape == test.shape
    assert (out / "spectrograms_unlabeled.png").exists()
    assert "SNR undefined" in proc.stdout.strip().splitlines()[-1]


# ----------------------------------------------------------------------------- bad input
def run_main(module, argv, capsys) -> tuple[int, str]:
    rc = main_guard(module.main, argv)
    cap = capsys.readouterr()
    return rc, cap.err + cap.out


def test_mismatched_pairs_and_silent_reference_are_clear_errors(tmp_path, capsys):
    clean = speechlike(1.0, 150, 3)
    sf.write(tmp_path / "c.wav", clean, SR)
    sf.write(tmp_path / "short.wav", clean[:-160], SR)
    sf.write(tmp_path / "c8k.wav", clean, 8000)
    sf.write(tmp_path / "zero.wav", np.zeros_like(clean), SR)
    base = ["--quick", "--out-dir", str(tmp_path / "out")]
    rc, msg = run_main(hw1, base + ["--clean", str(tmp_path / "c.wav"), "--noisy", str(tmp_path / "short.wav")],
                       capsys)
    assert rc == 2 and "16000 samples" in msg and "15840" in msg
    rc, msg = run_main(hw2, ["--quick", "--out-dir", str(tmp_path / "out2"), "--clean", str(tmp_path / "c.wav"),
                             "--noisy", str(tmp_path / "c8k.wav")],
                       capsys)
    assert rc == 2 and "8000 Hz" in msg
    rc, msg = run_main(hw1, base + ["--clean", str(tmp_path / "zero.wav"), "--noisy", str(tmp_path / "c.wav")],
                       capsys)
    assert rc == 2 and "silent" in msg and "SNR is undefined" in msg
    assert "inf" not in msg and "nan" not in msg.lower()
    rc, msg = run_main(hw1, base + ["--clean", str(tmp_path / "c.wav")], capsys)
    assert rc == 2 and "go together" in msg
    rc, msg = run_main(hw1, base + ["--dataset", "tsp", "--data-root", str(tmp_path)], capsys)
    assert rc == 2 and "not found" in msg
