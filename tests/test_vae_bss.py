"""Tests of vae_bss.py: losses against references, mask/mixture properties, BSS metrics, end-to-end runs, bad input."""

from __future__ import annotations

import argparse
import gzip
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

import vae_bss as V
from audiolab.core.metrics import bss_scores, length_weighted


# ------------------------------------------------------------------------------ losses
def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(5, 7), torch.randn(5, 7)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    ref = torch.distributions.kl_divergence(q, p).sum(1)
    torch.testing.assert_close(V.kl_divergence(mu, logvar), ref)


def test_reconstruction_losses_match_references():
    torch.manual_seed(0)
    logits, target = torch.randn(4, 1, 28, 28), torch.rand(4, 1, 28, 28)
    probs = torch.sigmoid(logits)
    ref_bce = F.binary_cross_entropy(probs, target, reduction="none").flatten(1).sum(1)
    torch.testing.assert_close(V.reconstruction_loss("bce", probs, target, logits), ref_bce, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(V.reconstruction_loss("bce", probs, target), ref_bce, rtol=1e-4, atol=1e-2)
    torch.testing.assert_close(V.reconstruction_loss("mse", probs, target),
                               F.mse_loss(probs, target, reduction="none").flatten(1).sum(1))
    torch.testing.assert_close(V.reconstruction_loss("l1", probs, target),
                               F.l1_loss(probs, target, reduction="none").flatten(1).sum(1))


def test_ideal_mask_recovers_sources_exactly():
    """With the ideal ratio mask a/(a+b) the mask output reproduces both sources (the design's premise)."""
    torch.manual_seed(0)
    a, b = torch.rand(3, 1, 28, 28), torch.rand(3, 1, 28, 28)
    x = (a + b) / 2
    m = a / (a + b)
    logits = torch.cat([torch.logit(m, eps=1e-7), torch.zeros_like(x)], 1)
    out = V._outputs(logits, x, None, None, "mask")
    torch.testing.assert_close(out["a"], a, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out["b"], b, atol=1e-5, rtol=1e-4)
    loss, terms = V.separation_loss(out, x, a, b, "mse", beta=0.0)
    assert terms["recon_a"] < 1e-6 and terms["recon_b"] < 1e-6


IMAGE_MODELS = [("vae", "mask", "conv"), ("ae", "mask", "conv"), ("vae", "direct", "conv"), ("vae", "mask", "unet"),
                ("ae", "mask", "unet"), ("vae", "mask", "mlp"), ("ae", "mask", "mlp"), ("vae", "direct", "mlp"),
                ("unet", "mask", "conv")]


@pytest.mark.parametrize("kind,output,arch", IMAGE_MODELS)
def test_image_models_shapes_and_ranges(kind, output, arch):
    torch.manual_seed(0)
    model = V.build_image_model(kind, 16, output, arch, width=4).eval()
    x = torch.rand(6, 1, 28, 28) / 2
    with torch.no_grad():
        out = model(x)
    for key in ("a", "b", "mix"):
        assert out[key].shape == (6, 1, 28, 28)
        assert float(out[key].min()) >= 0 and float(out[key].max()) <= 1
    assert (out["logvar"] is None) == (kind != "vae")
    if kind == "ae":  # same size as the VAE: the fair non-variational baseline
        assert V.n_parameters(model) == V.n_parameters(V.build_image_model("vae", 16, output, arch, width=4))
    with torch.no_grad():  # eval mode is deterministic (z = mu)
        torch.testing.assert_close(model(x)["a"], out["a"])


def test_psnr_and_ssim_of_evaluation():
    """evaluate_images: a model that returns the truth scores 100 dB / SSIM 1; PSNR matches 10log10(1/MSE)."""

    class Oracle(torch.nn.Module):
        def __init__(self, a, b):
            super().__init__()
            self.a, self.b = a, b

        def forward(self, x):
            n = len(x)
            return {"a": self.a[:n], "b": self.b[:n] * 0.9, "mix": x}

    torch.manual_seed(0)
    a, b = torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28)
    scores = V.evaluate_images(Oracle(a, b), (a + b) / 2, a, b, "cpu")
    assert torch.all(scores["psnr_a"] == 100.0) and torch.allclose(scores["ssim_a"], torch.ones(4))
    mse = ((b * 0.9 - b) ** 2).flatten(1).mean(1)
    torch.testing.assert_close(scores["psnr_b"], 10 * torch.log10(1 / mse))
    assert torch.all(scores["ssim_b"] < 1)


# ------------------------------------------------------------------------------- music
def music_args(**kw):
    base = dict(n_fft=256, hop_length=64, patch_frames=4, sample_rate=8000)
    base.update(kw)
    return argparse.Namespace(**base)


def test_masks_sum_to_one_so_estimates_add_up_to_the_mixture():
    torch.manual_seed(0)
    args = music_args()
    model = V.MusicVAE(args.n_fft // 2 + 1, args.patch_frames, hidden=32, latent_dim=4)
    mixture = np.random.default_rng(0).standard_normal(3001).astype(np.float32) * 0.1
    est_v, est_a = V.separate(model, mixture, args, "cpu")
    assert est_v.shape == est_a.shape == mixture.shape
    np.testing.assert_allclose(est_v + est_a, mixture, atol=1e-4)
    with pytest.raises(V.UserError, match="fewer than one STFT frame"):
        V.separate(model, mixture[:100], args, "cpu")


def test_conv_vae_reconstructs_the_mixture_from_z_alone():
    """The VAE's x_hat depends on the mixture only through the latent: same z, same x_hat, whatever the input."""
    torch.manual_seed(0)
    for arch in ("conv", "unet"):
        model = V.build_image_model("vae", 8, "mask", arch, width=4).eval()
        x1, x2 = torch.rand(2, 1, 28, 28) / 2, torch.rand(2, 1, 28, 28) / 2
        with torch.no_grad():
            h = model.enc3(F.max_pool2d(model.enc2(F.max_pool2d(model.enc1(x1), 2)), 2))
            model.to_mu.weight.zero_()  # z = bias for every input
            o1, o2 = model(x1), model(x2)
        torch.testing.assert_close(o1["mix"], o2["mix"])
        assert h.shape[1] == 4 * 4 * 49 and not torch.allclose(o1["a"], o2["a"])  # the mask still sees the input


def test_repet_sim_finds_the_repeating_accompaniment():
    """A looped accompaniment + a non-repeating voice: REPET-SIM improves both stems' SDR over the mixture;
    its masks are not made to sum to one; too-short input is refused."""
    sr, rng = 8000, np.random.default_rng(0)
    loop = np.concatenate([np.sin(2 * np.pi * f * np.arange(2000) / sr) for f in (220, 330, 440, 275)])
    accompaniment = np.tile(loop, 6).astype(np.float32) * 0.3
    t = np.arange(len(accompaniment)) / sr
    voice = (0.3 * np.sin(2 * np.pi * (600 * t + 150 * t ** 2)) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)
    est_v, est_a = V.repet_sim_separate(voice + accompaniment, sr, n_fft=256, hop_length=64, width_s=0.5)
    assert est_v.shape == est_a.shape == voice.shape
    scores = bss_scores(voice, accompaniment, est_v, est_a)
    assert scores["vocals_nsdr_db"] > 3 and scores["accompaniment_nsdr_db"] > 3
    with pytest.raises(ValueError, match="at least 8"):
        V.repet_sim_separate(voice[:300], sr, n_fft=256, hop_length=64)


def test_bss_scores_and_gnsdr():
    rng = np.random.default_rng(0)
    v, a = rng.standard_normal(8000), rng.standard_normal(8000)
    perfect = bss_scores(v, a, v, a)
    assert perfect["vocals_sdr_db"] > 60 and perfect["accompaniment_sdr_db"] > 60
    unprocessed = bss_scores(v, a, v + a, v + a)  # the mixture itself improves nothing
    assert abs(unprocessed["vocals_nsdr_db"]) < 1e-6
    assert unprocessed["vocals_sdr_mixture_db"] == pytest.approx(0.0, abs=1.0)  # equal-power stems
    noisy = bss_scores(v, a, v + 0.1 * a, a + 0.1 * v)  # 20 dB interference
    assert noisy["vocals_sir_db"] == pytest.approx(20.0, abs=1.0)
    rows = [{"n_samples": 100, "x": 1.0}, {"n_samples": 300, "x": 5.0}, {"n_samples": 50, "x": float("nan")}]
    assert length_weighted(rows, "x") == pytest.approx(4.0)


# --------------------------------------------------------------------- end to end runs
def test_images_quick_end_to_end(run_script, tmp_path):
    proc = run_script("vae_bss.py", "images", "--quick", "--study", "--grid-every", "1")
    out = tmp_path / "outputs" / "vae_bss"
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("test_psnr_db_mnist", "test_psnr_db_fashion", "test_psnr_db_mixture"):
        assert np.isfinite(metrics[key]) and 5 < metrics[key] < 100
    assert metrics["data_source"] == "synthetic" and metrics["images_data_source"] == "synthetic"
    assert (out / "images" / "grid_final.png").exists() and (out / "images" / "grids" / "grid_epoch001.png").exists()
    study = (out / "images" / "study.csv").read_text().splitlines()
    assert len(study) == 1 + 12  # 9 VAE settings + direct-output VAE + AE + U-Net
    assert "SYNTHETIC" in proc.stdout and "vae_bss images" in proc.stdout.strip().splitlines()[-1]


def test_music_quick_end_to_end(run_script, tmp_path):
    proc = run_script("vae_bss.py", "music", "--quick", "--save-audio", "1")
    out = tmp_path / "outputs" / "vae_bss"
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(metrics["vocals_gnsdr_db"]) and np.isfinite(metrics["accompaniment_gnsdr_db"])
    assert metrics["music_data_source"] == "synthetic"
    clip = next((out / "music" / "audio").iterdir())
    info = sf.info(clip / "vocals_estimate.wav")
    assert info.subtype == "PCM_16" and info.samplerate == 16000
    assert list((out / "music").glob("spectrograms_*.png"))
    assert "vocals GNSDR" in proc.stdout.strip().splitlines()[-1]


# ---------------------------------------------------------------------------- bad input
def test_named_image_dataset_missing_is_a_clear_error(run_script, tmp_path):
    proc = run_script("vae_bss.py", "images", "--quick", "--dataset", "mnist_fashion", "--data-root",
                      tmp_path / "empty", expect_rc=2)
    assert "not found" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs").exists()


def test_truncated_idx_file_is_a_clear_error(run_script, tmp_path):
    from tests.test_image_data import make_idx_folder

    root = tmp_path / "data"
    make_idx_folder(root / "mnist")
    make_idx_folder(root / "fashion_mnist")
    path = root / "fashion_mnist" / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-500]))
    proc = run_script("vae_bss.py", "images", "--quick", "--data-root", root, expect_rc=2)
    assert "truncated" in proc.stderr and str(path.name) in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs").exists()


def test_mono_and_short_music_files_are_clear_errors(run_script, tmp_path):
    root = tmp_path / "data" / "mir1k"
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        sf.write(root / split / "abjones_1_01.wav", np.zeros(16000, dtype=np.float32), 16000)  # mono
    proc = run_script("vae_bss.py", "music", "--quick", "--data-root", tmp_path / "data", expect_rc=2)
    assert "stereo" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs").exists()
    for split in ("train", "test"):  # now stereo, but 0.05 s: shorter than one patch
        shutil.rmtree(root / split)
        (root / split).mkdir()
        sf.write(root / split / "abjones_1_01.wav", np.zeros((800, 2), dtype=np.float32) + 0.1, 16000)
    proc = run_script("vae_bss.py", "music", "--quick", "--data-root", tmp_path / "data", expect_rc=2)
    assert "shorter than one patch" in proc.stderr + proc.stdout and "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.realdata
def test_music_on_two_real_mir1k_clips(run_script, shared_data, tmp_path):
    if not (shared_data / "mir1k").is_dir():
        pytest.skip("MIR-1K not in the shared data")
    run_script("vae_bss.py", "music", "--quick", "--data-root", shared_data, "--dataset", "mir1k",
               "--save-audio", "0", "--max-test-clips", "1")
    metrics = json.loads((tmp_path / "outputs" / "vae_bss" / "music" / "metrics.json").read_text())
    assert metrics["dataset"] == "mir1k" and metrics["data_source"] == "real"
    assert metrics["music_test_clips"] == 1 and np.isfinite(metrics["vocals_gnsdr_db"])


def test_irmas_excerpts_are_separated_for_listening(tmp_path, capsys):
    """IRMAS voi has no stems: separate_irmas writes WAVs + a figure per readable, long-enough excerpt."""
    from audiolab.data.music import find_irmas_voi

    voi = tmp_path / "data" / "IRMAS-TrainingData" / "voi"
    voi.mkdir(parents=True)
    rng = np.random.default_rng(0)
    sf.write(voi / "[voi][pop_roc]0001__1.wav", 0.1 * rng.standard_normal((8000, 2)), 8000)  # stereo, 1 s
    sf.write(voi / "[voi][pop_roc]0002__1.wav", 0.1 * rng.standard_normal(100), 8000)  # too short
    assert find_irmas_voi(tmp_path / "data") == voi
    args = music_args(irmas_max=5)
    model = V.MusicVAE(args.n_fft // 2 + 1, args.patch_frames, hidden=32, latent_dim=4)
    V.separate_irmas(model, voi, args, "cpu", tmp_path / "out")
    done = tmp_path / "out" / "irmas" / "[voi][pop_roc]0001__1"
    assert sorted(p.name for p in done.iterdir()) == ["accompaniment_estimate.wav", "mixture.wav",
                                                      "vocals_estimate.wav"]
    assert sf.info(done / "mixture.wav").samplerate == 8000
    assert "shorter than one patch" in capsys.readouterr().out
    assert not (tmp_path / "out" / "irmas" / "[voi][pop_roc]0002__1").exists()


def test_patch_sampler_pitch_shift_moves_the_voice_and_nothing_else():
    """--pitch-shift resamples only the vocals, by at most the given interval, and by varying amounts."""
    from audiolab.data.music import PatchSampler, Song

    sr, n = 8000, 16000
    t = np.arange(n) / sr
    song = Song("s", np.sin(2 * np.pi * 400 * t).astype(np.float32), np.sin(2 * np.pi * 100 * t).astype(np.float32),
                sr)
    peak = lambda w: np.fft.rfftfreq(len(w), 1 / sr)[np.argmax(np.abs(np.fft.rfft(w * np.hanning(len(w)))))]  # noqa
    plain = [peak(v.numpy()) for voc, _ in PatchSampler([song], 4000, 32, 8, 0.0, seed=1) for v in voc]
    assert np.allclose(plain, 400, atol=2)
    shifted = [b for b in PatchSampler([song], 4000, 32, 8, 0.0, seed=1, pitch_shift=6.0)]
    f_voice = np.array([peak(v.numpy()) for voc, _ in shifted for v in voc])
    f_acc = np.array([peak(a.numpy()) for _, acc in shifted for a in acc])
    assert np.all(f_voice >= 400 / 2 ** 0.5 - 4) and np.all(f_voice <= 400 * 2 ** 0.5 + 4) and f_voice.std() > 20
    assert np.allclose(f_acc, 100, atol=2)
