"""Blind source separation with variational autoencoders: image mixtures, then singing voice.

``images``: separate ``x = (a + b) / 2``, a random MNIST digit ``a`` plus a random Fashion-MNIST
image ``b`` (pairs re-drawn every epoch; 1000 fixed test pairs, the same for every seed). A
convolutional VAE (64-d Gaussian latent; ``--arch``, networks in ``vae_bss_models.py``) reads the
mixture; its decoder gives the reconstructed mixture ``x_hat`` (from ``z`` alone) and a soft mask
``m``: ``a_hat = m * 2x``, ``b_hat = (1 - m) * 2x``. Loss ``R(a_hat, a) + R(b_hat, b) +
R(x_hat, x) + beta_t * KL`` (``R`` = BCE, MSE or L1, KL annealed). ``--study``: {BCE, MSE, L1} x
beta {0, 0.1, 1}, the direct-output VAE, a same-size autoencoder and a small U-Net, one budget.

``music``: separate singing voice from accompaniment. An MLP VAE reads ``--patch-frames`` frames
of the mixture's log-magnitude STFT and returns a soft mask per source (softmax: they add up to
the mixture); loss: squared error of the masked magnitudes against the true stems' + beta * KL.
Beside it, on the same clips and scores, REPET-SIM (``--repet-sim``; no training).
Scored per clip by SDR / SIR / SAR (BSS Eval via ``fast_bss_eval``); GNSDR: their length-weighted mean.
The design in detail, the data layouts and the results: experiments/vae.md.

Top to bottom: settings; images (losses, evaluation, training, the study, ``run_images``);
music (separation and scoring, training, outputs, ``run_music``); ``main``. Outputs go to
``outputs/vae_bss/images/`` and ``.../music/`` (or ``--out-dir``), with ``metrics.json`` merging both.

Usage:
  python vae_bss.py images                       # default model, grids every 2 epochs
  python vae_bss.py images --study               # + the loss / beta / baseline table
  python vae_bss.py music --data-root ../shared/data

Sources: Kingma & Welling, ICLR 2014 (VAE); Higgins et al., ICLR 2017 (beta-VAE); Ronneberger et
al., MICCAI 2015 (U-Net); Huang, Kim, Hasegawa-Johnson & Smaragdis, ISMIR 2014 (singing-voice
separation, GNSDR 7.45 dB on MIR-1K); Hsu & Jang, IEEE TASLP 2010 (MIR-1K); Vincent, Gribonval &
Fevotte, IEEE TASLP 2006 (BSS Eval); Scheibler 2021 (fast_bss_eval); Wang et al., IEEE TIP 2004 (SSIM).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from audiolab.core import dsp
from audiolab.core.cli import (ShortUsageFormatter, add_data_args, add_stft_args, add_training_args, apply_quick,
                               base_parser, float_range, int_range, main_guard, positive_int, sample_rate_hz,
                               script_help)
from audiolab.core.io import find_audio_files, iter_readable, save_audio, unique_name
from audiolab.core.metrics import bss_scores, gnsdr_summary, length_weighted, psnr, ssim
from audiolab.core.outputs import format_table, part_out_dir, write_combined_metrics, write_csv, write_metrics
from audiolab.core.progress import progress as progress_bar
from audiolab.core.plotting import image_grid_figure, plot_grouped_bars, plot_training_curves, spectrogram_figure
from audiolab.core.runtime import UserError, seed_everything, select_device
from audiolab.data.images import MixturePairs, fixed_test_mixtures, load_mnist_fashion
from audiolab.data.music import (PatchSampler, Song, clip_problem, feature_stats, load_music_splits,
                                 magnitude_scale, patch_samples, separate_with_masks)
from audiolab.core.train import fit, is_main_process, load_checkpoint, n_parameters, world_size
from vae_bss_models import (ConvVAE, ImageVAE, MusicVAE, SmallUNet, build_image_model, outputs as _outputs,  # noqa: F401
                            repet_sim_separate)

SCRIPT = "vae_bss"
TEST_PAIR_SEED = 20_141_007  # the 1000 test pairs are the same whatever --seed is
LOSSES = ("bce", "mse", "l1")
STUDY_BETAS = (0.0, 0.1, 1.0)
MAX_PAIRS = 10_000_000      # mixtures / patches drawn per epoch (indices only: memory stays small)
MAX_TEST_PAIRS = 100_000    # fixed test mixtures are held in memory: 3 x 784 float32 each (~1 GB at the limit)

IMAGE_ANCHORS = [
    {"metric": "test_psnr_db_mean", "anchor": 30.0, "source": "target (mean per-source PSNR)"},
    {"metric": "test_psnr_db_mean", "anchor": 35.0, "source": "supervised U-Net, MSE 3e-4"},
]
HUANG = "Huang et al. 2014/2015 on 825 clips of 17 singers (quoted; not the same test set)"
MUSIC_ANCHORS = [
    {"metric": "vocals_gnsdr_db", "anchor": 6.5, "source": "target (63 MIR-1K test clips)"},
    {"metric": "vocals_gnsdr_db", "anchor": 7.45, "source": f"DRNN + discriminative training, {HUANG}"},
    {"metric": "vocals_gnsdr_db", "anchor": 7.27, "source": f"DRNN, {HUANG}"},
    {"metric": "vocals_gnsdr_db", "anchor": 5.64, "source": f"plain DNN, {HUANG}"},
    {"metric": "vocals_gnsdr_db", "anchor": 4.97, "source": f"RNMF, {HUANG}"},
    {"metric": "vocals_gnsdr_db", "anchor": 3.15, "source": f"RPCA, {HUANG}"},
    {"metric": "train_seconds", "anchor": 1200, "source": "budget: 20 min on 2 CPU cores"},
]


# ============================================================================ settings
def build_parser() -> argparse.ArgumentParser:
    """The CLI: ``vae_bss.py images ...`` and ``vae_bss.py music ...`` (each with the shared flags)."""
    top = script_help(argparse.ArgumentParser(description=__doc__, allow_abbrev=False))
    sub = top.add_subparsers(dest="command", required=True, metavar="{images,music}")

    shared = base_parser("", epochs=5)
    add_data_args(shared, ["mnist_fashion", "synthetic"])
    img = sub.add_parser("images", parents=[shared], add_help=False, allow_abbrev=False,
                         help="MNIST + Fashion-MNIST mixtures",
                         description="Separate (MNIST + Fashion-MNIST) / 2 mixtures with a VAE (see the docstring at "
                         "the top of vae_bss.py).", formatter_class=ShortUsageFormatter)
    add_image_args(img)

    shared_m = base_parser("", epochs=20)
    add_data_args(shared_m, ["mir1k", "musdb", "synthetic"])
    mus = sub.add_parser("music", parents=[shared_m], add_help=False, allow_abbrev=False,
                         help="singing voice vs accompaniment",
                         description="Separate singing voice and accompaniment with a VAE predicting soft masks "
                         "(see the docstring at the top of vae_bss.py).", formatter_class=ShortUsageFormatter)
    add_music_args(mus)
    return top


def add_image_args(img: argparse.ArgumentParser) -> None:
    """The flags of ``vae_bss.py images``."""
    img.add_argument("--model", choices=["vae", "ae", "unet"], default="vae",
                     help="vae (default), ae: the same network without sampling/KL, unet: small U-Net baseline")
    img.add_argument("--output", choices=["mask", "direct"], default="mask",
                     help="mask: decoder predicts a soft mask applied to the mixture (default); direct: decoder "
                          "predicts the two images' pixels")
    img.add_argument("--loss", choices=LOSSES, default="mse",
                     help="reconstruction loss, summed over pixels (default %(default)s, chosen by the study)")
    img.add_argument("--beta", type=float_range(0, 1000), default=0.1,
                     help="KL weight after annealing (default %(default)s)")
    img.add_argument("--kl-warmup-epochs", type=float_range(0, 10_000), default=2.0,
                     help="epochs over which beta rises linearly from 0 (default %(default)s)")
    img.add_argument("--latent-dim", type=int_range(1, 4096), default=64, help="latent size (default %(default)s)")
    img.add_argument("--arch", choices=["unet", "conv", "mlp"], default="unet",
                     help="vae/ae network: unet (default: U-Net-shaped VAE, encoder skips reach the mask head), conv "
                          "(skip-free bottleneck + a local path from the input) or mlp (fully connected)")
    img.add_argument("--width", type=int_range(1, 512), default=16,
                     help="channels of the first conv layer, conv VAE and U-Net (default %(default)s)")
    add_training_args(img, lr=2e-3, batch_size=128, batch_help="mixtures per batch",
                      resume_help="continue from <out>/images/checkpoint.pt")
    img.add_argument("--train-pairs", type=int_range(1, MAX_PAIRS), default=None,
                     help="mixtures drawn per epoch (default: 60000 real, 9000 synthetic)")
    img.add_argument("--test-pairs", type=int_range(1, MAX_TEST_PAIRS), default=1000,
                     help="fixed test mixtures (default %(default)s)")
    img.add_argument("--grid-every", type=positive_int, default=2,
                     help="save a grid PNG every N epochs (default %(default)s)")
    img.add_argument("--validate", action="store_true",
                     help="model selection: train on all but the last sixth of each training set and score on mixtures "
                          "of that held-out part instead of the test split")
    img.add_argument("--study", action="store_true",
                     help="also run the loss study: {bce,mse,l1} x beta {0,0.1,1} + AE + U-Net baselines")
    img.add_argument("--study-epochs", type=positive_int, default=2, help="epochs per study run (default %(default)s)")
    img.add_argument("--study-train-pairs", type=int_range(1, MAX_PAIRS), default=10000,
                     help="mixtures per epoch in each study run (default %(default)s)")
    # a size without a flag (QUICK sets it for --quick): the synthetic sets' images (train, test);
    # None: 12000 and max(--test-pairs, 200)
    img.set_defaults(synthetic_images=None)


def add_music_args(mus: argparse.ArgumentParser) -> None:
    """The flags of ``vae_bss.py music``."""
    mus.add_argument("--sample-rate", type=sample_rate_hz, default=16000, help="Hz (default %(default)s)")
    add_stft_args(mus, n_fft=1024, hop_length=256, n_fft_help="STFT size in samples, at least 16", min_n_fft=16)
    mus.add_argument("--patch-frames", type=int_range(1, 1024), default=8,
                     help="STFT frames per VAE input patch (default %(default)s)")
    mus.add_argument("--hidden", type=int_range(1, 16384), default=512, help="MLP width (default %(default)s)")
    mus.add_argument("--latent-dim", type=int_range(1, 4096), default=128, help="latent size (default %(default)s)")
    mus.add_argument("--beta", type=float_range(0, 1000), default=0.01,
                     help="KL weight after annealing over the first 20%% of training (default %(default)s)")
    add_training_args(mus, lr=1e-3, batch_size=64, batch_help="spectrogram patches per batch",
                      resume_help="continue from <out>/music/checkpoint.pt")
    mus.add_argument("--patches-per-epoch", type=int_range(1, MAX_PAIRS), default=4096, help="default %(default)s")
    mus.add_argument("--remix-prob", type=float_range(0, 1), default=0.5,
                     help="share of training patches that pair vocals and accompaniment of different clips")
    mus.add_argument("--mix-snr-db", type=float_range(-60, 60), default=0.0,
                     help="voice-to-accompaniment ratio of the test mixtures (default %(default)s, MIR-1K convention)")
    mus.add_argument("--max-train-clips", type=positive_int, default=None, help="use at most N training clips")
    mus.add_argument("--max-test-clips", type=positive_int, default=None, help="evaluate at most N test clips")
    mus.add_argument("--val-clips", type=positive_int, default=8,
                     help="training clips held out for per-epoch validation / best checkpoint (default %(default)s)")
    mus.add_argument("--pitch-shift", type=float_range(0, 12), default=3.0,
                     help="training vocals resampled by up to +-N semitones (default %(default)s; 0: off)")
    mus.add_argument("--val-singer", default=None,
                     help="validate on clips of this training singer and train on the others (e.g. abjones)")
    mus.add_argument("--repet-sim", choices=["auto", "on", "off", "only"], default="auto",
                     help="also score the training-free REPET-SIM baseline on the test clips (on; auto, the default: "
                          "on with real data), skip it (off), or score only it, without training the VAE (only)")
    mus.add_argument("--save-audio", type=int_range(0), default=3, help="test clips whose WAVs and figures are saved")
    mus.add_argument("--irmas-dir", type=Path, default=None,
                     help="IRMAS voi folder to separate for listening (default: looked for under the data root)")
    mus.add_argument("--irmas-max", type=int_range(0), default=3,
                     help="IRMAS excerpts to separate (default %(default)s)")
    # sizes without a flag (QUICK shrinks them for --quick): the synthetic songs (train, test,
    # seconds each) and the MUSDB18 tracks (train, test; None: --max-train-clips / --max-test-clips or 20 / 10)
    mus.set_defaults(synthetic_songs=(48, 12, 6.0), musdb_tracks=None)


# --quick (a smoke test): these sizes, set right after parsing, except for a flag given on the command line.
QUICK = {
    "images": {"epochs": 1, "test_pairs": 100, "train_pairs": 1024, "study_epochs": 1, "study_train_pairs": 256,
               "synthetic_images": (1024, 100)},
    "music": {"epochs": 2, "patches_per_epoch": 256, "hidden": 128, "latent_dim": 32,
              "synthetic_songs": (6, 2, 3.0), "musdb_tracks": (2, 1), "max_train_clips": 6, "max_test_clips": 2},
}


# ===================================================================== images: losses
def reconstruction_loss(kind: str, estimate: torch.Tensor, target: torch.Tensor,
                        logits: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image loss ``[B]`` summed over pixels: ``bce`` (targets in [0, 1]; from ``logits`` when given,
    numerically safer), ``mse`` (squared error) or ``l1`` (absolute error)."""
    if kind == "bce":
        if logits is not None:
            per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        else:
            per_pixel = F.binary_cross_entropy(estimate.clamp(1e-6, 1 - 1e-6), target, reduction="none")
    elif kind == "mse":
        per_pixel = (estimate - target) ** 2
    elif kind == "l1":
        per_pixel = (estimate - target).abs()
    else:
        raise ValueError(f"unknown loss {kind!r}")
    return per_pixel.flatten(1).sum(1)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))`` per item ``[B]``, in nats (Kingma & Welling 2014, appendix B)."""
    return -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)


def separation_loss(out: dict, x, a, b, loss: str, beta: float) -> tuple[torch.Tensor, dict]:
    """Mean over the batch of ``R(a_hat,a) + R(b_hat,b) + R(x_hat,x) + beta * KL``; returns (loss, terms)."""
    ra = reconstruction_loss(loss, out["a"], a, out["logits_a"])
    rb = reconstruction_loss(loss, out["b"], b, out["logits_b"])
    rm = reconstruction_loss(loss, out["mix"], x, out["logits_mix"])
    kl = kl_divergence(out["mu"], out["logvar"]) if out["logvar"] is not None else torch.zeros_like(ra)
    total = (ra + rb + rm + beta * kl).mean()
    terms = {"recon_a": ra.mean(), "recon_b": rb.mean(), "recon_mix": rm.mean(), "kl": kl.mean()}
    return total, {**{k: float(v.detach()) for k, v in terms.items()}, "beta": beta}


# ================================================================= images: evaluation
@torch.no_grad()
def evaluate_images(model: nn.Module, x, a, b, device, batch_size: int = 500) -> dict:
    """Per-item ``[N]`` scores ``psnr_a``, ``psnr_b``, ``psnr_mix`` (dB), ``ssim_a``, ``ssim_b``, and the
    estimates ``a_hat``, ``b_hat``, ``mix_hat`` ``[N, 1, 28, 28]``."""
    model.eval()
    outs = {"a": [], "b": [], "mix": []}
    for s in range(0, len(x), batch_size):
        o = model(x[s:s + batch_size].to(device))
        for k in outs:
            outs[k].append(o[k].cpu())
    a_hat, b_hat, mix_hat = (torch.cat(outs[k]) for k in ("a", "b", "mix"))
    return {"psnr_a": psnr(a_hat, a), "psnr_b": psnr(b_hat, b), "psnr_mix": psnr(mix_hat, x),
            "ssim_a": ssim(a_hat, a), "ssim_b": ssim(b_hat, b),
            "a_hat": a_hat, "b_hat": b_hat, "mix_hat": mix_hat}


def summarize_scores(scores: dict) -> dict:
    """Means of the per-item scores under the metrics.json key names."""
    m = {k: float(scores[k].mean()) for k in ("psnr_a", "psnr_b", "psnr_mix", "ssim_a", "ssim_b")}
    return {"test_psnr_db_mnist": m["psnr_a"], "test_psnr_db_fashion": m["psnr_b"],
            "test_psnr_db_mean": (m["psnr_a"] + m["psnr_b"]) / 2, "test_psnr_db_mixture": m["psnr_mix"],
            "test_ssim_mnist": m["ssim_a"], "test_ssim_fashion": m["ssim_b"]}


def save_image_grid(path: Path, x, a, b, scores: dict, title: str) -> Path:
    """The first 8 test examples: mixture, true and estimated sources (with PSNR), reconstructed mixture."""
    return image_grid_figure({"mixture": x, "true a": a, "estimated a": scores["a_hat"], "true b": b,
                              "estimated b": scores["b_hat"], "reconstructed mixture": scores["mix_hat"]}, path, title,
                             captions={f"estimated {k}": [f"{float(v):.1f} dB" for v in scores[f"psnr_{k}"][:8]]
                                       for k in "ab"})


# =================================================================== images: training
def train_image_model(kind: str, loss: str, beta: float, output: str, data: dict, test: tuple, args, device, *,
                      epochs: int, train_pairs: int, out_dir: Path | None = None, resume: bool = False,
                      desc: str = "images", progress: bool = True) -> tuple[nn.Module, list[dict]]:
    """Train one model on freshly drawn pairs each epoch; return ``(model, history)``. With ``out_dir``:
    ``log.csv``, ``checkpoint.pt`` (``--resume``), a grid PNG every ``--grid-every`` epochs (the study: none)."""
    gen = seed_everything(args.seed)
    model = build_image_model(kind, args.latent_dim, output, args.arch, args.width)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loader = MixturePairs(data["a_train"], data["b_train"], n_pairs=train_pairs, batch_size=args.batch_size,
                          generator=gen)
    warmup_steps = max(1, int(args.kl_warmup_epochs * len(loader)))
    step = {"n": 0, "epoch": 0}
    x_t, a_t, b_t = test
    label = " [SYNTHETIC]" if data["data_source"] == "synthetic" else ""

    def step_fn(m, batch):
        x, a, b = batch
        beta_t = beta * min(1.0, step["n"] / warmup_steps) if kind == "vae" else 0.0
        step["n"] += 1
        return separation_loss(m(x), x, a, b, loss, beta_t)

    def eval_fn(m):
        step["epoch"] += 1
        scores = evaluate_images(m, x_t, a_t, b_t, device)
        summary = summarize_scores(scores)
        if out_dir is not None and (step["epoch"] % args.grid_every == 0 or step["epoch"] == epochs):
            save_image_grid(out_dir / "grids" / f"grid_epoch{step['epoch']:03d}.png", x_t, a_t, b_t, scores,
                            f"{kind.upper()} ({output}) {loss} beta={beta:g}, epoch {step['epoch']}{label}: "
                            f"mean PSNR {summary['test_psnr_db_mean']:.2f} dB")
        return summary

    if resume and out_dir is not None and (out_dir / "checkpoint.pt").exists():
        done = int(load_checkpoint(out_dir / "checkpoint.pt").get("epoch", 0))
        step.update(n=done * len(loader), epoch=done)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)  # lr -> 0 at the last epoch
    history = fit(model, optimizer, loader, step_fn, epochs, eval_fn=eval_fn, device=device, scheduler=scheduler,
                  checkpoint_path=out_dir / "checkpoint.pt" if out_dir else None,
                  log_path=out_dir / "log.csv" if out_dir else None, resume=resume,
                  config=vars(args), desc=desc, progress=progress, grad_clip=10.0)
    return model, history


def run_study(args, data: dict, test: tuple, device, out_dir: Path) -> list[dict]:
    """The loss study: {BCE, MSE, L1} x beta {0, 0.1, 1} VAEs + AE + U-Net, equal budgets; writes study.csv/md/png."""
    runs = [("vae", loss, beta, "mask") for loss in LOSSES for beta in STUDY_BETAS]
    runs += [("vae", args.loss, args.beta, "direct"), ("ae", args.loss, 0.0, "mask"), ("unet", args.loss, 0.0, "mask")]
    rows = []
    epochs, pairs = args.study_epochs, args.study_train_pairs
    print(f"loss study: {len(runs)} runs x {epochs} epochs x {pairs} mixtures")
    for kind, loss, beta, output in runs:
        t0 = time.perf_counter()
        model, _ = train_image_model(kind, loss, beta, output, data, test, args, device, epochs=epochs,
                                     train_pairs=pairs, desc=f"study {kind} {output} {loss} b={beta:g}", progress=False)
        s = summarize_scores(evaluate_images(model, *test, device))
        rows.append({"model": kind, "output": output, "loss": loss, "beta": beta if kind == "vae" else float("nan"),
                     "params": n_parameters(model), "psnr_mnist_db": s["test_psnr_db_mnist"],
                     "psnr_fashion_db": s["test_psnr_db_fashion"], "psnr_mean_db": s["test_psnr_db_mean"],
                     "ssim_mnist": s["test_ssim_mnist"], "ssim_fashion": s["test_ssim_fashion"],
                     "psnr_mixture_db": s["test_psnr_db_mixture"], "train_seconds": time.perf_counter() - t0})
    write_csv(out_dir / "study.csv", rows)
    table = format_table(rows, floatfmt=".3f")
    label = " (SYNTHETIC data)" if data["data_source"] == "synthetic" else ""
    (out_dir / "study.md").write_text(f"# Loss study{label}: {epochs} epochs x {pairs} mixtures per run, "
                                      f"{len(test[0])} test pairs\n\n```\n{table}\n```\n")
    print(table)
    names = [f"{r['model']}{'' if r['output'] == 'mask' else '-direct'}\n{r['loss']}"
             + (f" b={r['beta']:g}" if r["model"] == "vae" else "") for r in rows]
    plot_grouped_bars(names, {"MNIST digit (a)": [r["psnr_mnist_db"] for r in rows],
                              "Fashion item (b)": [r["psnr_fashion_db"] for r in rows]}, out_dir / "study_psnr.png",
                      ylabel="test PSNR (dB)", hline=(30.0, "target 30 dB"),
                      title=f"Loss study: per-source PSNR on {len(test[0])} test mixtures{label}")
    return rows


def run_images(args) -> dict:
    device = select_device(args.device)
    seed_everything(args.seed)
    # the data before the folders: bad input leaves nothing behind
    data = load_mnist_fashion(args.dataset, args.data_root, download=args.download, seed=args.seed,
                              synthetic_sizes=args.synthetic_images or (12000, max(args.test_pairs, 200)),
                              allow_overlap=args.allow_overlap)
    if args.validate:  # held-out training images stand in for the test split (choices made on them, not on test)
        for k in "ab":
            n_keep = len(data[f"{k}_train"]) * 5 // 6
            data[f"{k}_train"], data[f"{k}_test"] = data[f"{k}_train"][:n_keep], data[f"{k}_train"][n_keep:]
    out_dir = part_out_dir(args, SCRIPT, "images")
    n_test = args.test_pairs
    test = fixed_test_mixtures(data, n_test, TEST_PAIR_SEED)
    train_pairs = args.train_pairs or (9000 if data["data_source"] == "synthetic" else 60000)
    print(f"images: {args.model} ({args.loss}, beta={args.beta:g}), {args.epochs} epochs x {train_pairs} mixtures, "
          f"{n_test} fixed test mixtures, device {device}")
    model, history = train_image_model(args.model, args.loss, args.beta, args.output, data, test, args, device,
                                       epochs=args.epochs, train_pairs=train_pairs, out_dir=out_dir,
                                       resume=args.resume)
    train_seconds = history.train_seconds  # the whole run, --resume included
    scores = evaluate_images(model, *test, device)
    metrics = summarize_scores(scores)
    metrics.update(images_train_seconds=train_seconds, images_params=n_parameters(model), images_epochs=len(history),
                   images_scored_on="validation: held-out training images" if args.validate else "test split")
    label = " [SYNTHETIC]" if data["data_source"] == "synthetic" else ""
    save_image_grid(out_dir / "grid_final.png", *test, scores,
                    f"{args.model.upper()} ({args.loss}, beta={args.beta:g}) on {n_test} test mixtures{label}: "
                    f"PSNR a {metrics['test_psnr_db_mnist']:.2f} dB, b {metrics['test_psnr_db_fashion']:.2f} dB")
    if history:
        plot_training_curves(history, out_dir / "training_curves.png",
                             {"loss terms (per image)": ["train_loss", "recon_a", "recon_b", "recon_mix", "kl"],
                              "test PSNR (dB)": ["test_psnr_db_mnist", "test_psnr_db_fashion", "test_psnr_db_mixture"]},
                             title=f"vae_bss images: training{label}")
    if args.study:
        rows = run_study(args, data, test, device, out_dir)
        for r in rows:
            name = f"{r['model']}{'' if r['output'] == 'mask' else '_direct'}_{r['loss']}" + (
                f"_beta{r['beta']:g}".replace(".", "p") if r["model"] == "vae" else "")
            metrics[f"study_{name}_psnr_db_mean"] = r["psnr_mean_db"]
    provenance = dict(args=args, dataset=data["dataset"], data_source=data["data_source"], device=device)
    write_metrics(out_dir, metrics, anchors=IMAGE_ANCHORS, **provenance)
    write_combined_metrics(out_dir.parent, "images", metrics, anchors=IMAGE_ANCHORS + MUSIC_ANCHORS, **provenance)
    print(f"vae_bss images{label}: test PSNR MNIST {metrics['test_psnr_db_mnist']:.2f} dB, Fashion "
          f"{metrics['test_psnr_db_fashion']:.2f} dB, mixture {metrics['test_psnr_db_mixture']:.2f} dB, SSIM "
          f"{metrics['test_ssim_mnist']:.3f}/{metrics['test_ssim_fashion']:.3f} ({train_seconds:.0f} s) -> {out_dir}")
    return metrics


# ================================================================== music: separation
def separate(model: MusicVAE, mixture: np.ndarray, args, device, batch_size: int = 256) -> tuple[np.ndarray, ...]:
    """Mono mixture ``[n_samples]`` -> ``(vocals, accompaniment)`` through the model's masks on patches
    (:func:`audiolab.data.music.separate_with_masks`); UserError if shorter than one STFT frame."""
    model.eval()
    return separate_with_masks(lambda patches: model(patches.to(device))["masks"].cpu(), mixture,
                               n_fft=args.n_fft, hop_length=args.hop_length, patch_frames=args.patch_frames,
                               batch_size=batch_size)


def evaluate_songs(model, songs: list[Song], args, device, progress: bool = False, skipped: list | None = None) -> list:
    """Separate every song's mixture and score it; one row per clip. ``model``: a :class:`MusicVAE`, or any
    function ``mixture [n_samples] -> (vocals, accompaniment)`` (the REPET-SIM baseline).

    A clip that cannot be scored (a silent reference stem: BSS Eval's projection is singular; shorter
    than one STFT frame; non-finite scores) is printed (``skipped: ...``), appended to ``skipped`` as
    ``(name, reason)`` and left out: one bad clip never loses the evaluation of the others.
    """
    rows = []
    for s in progress_bar(songs, "separating", disable=not progress):
        reason = clip_problem(s, args.n_fft)
        if reason is None:
            mixture = s.vocals + s.accompaniment
            try:
                is_net = isinstance(model, nn.Module)
                est_v, est_a = separate(model, mixture, args, device) if is_net else model(mixture)
                scores = bss_scores(s.vocals, s.accompaniment, est_v, est_a)
            except (ValueError, RuntimeError, UserError) as err:  # torch.linalg errors are RuntimeErrors
                reason = f"BSS Eval failed: {err}"
            else:
                if not all(math.isfinite(v) for v in scores.values()):
                    reason = "BSS Eval gave non-finite scores"
        if reason is not None:
            print(f"skipped: clip {s.name}: {reason}")
            if skipped is not None:
                skipped.append((s.name, reason))
            continue
        rows.append({"clip": s.name, "n_samples": s.n_samples, "seconds": s.n_samples / s.sample_rate, **scores})
    return rows


# ==================================================================== music: training
def train_music(model: MusicVAE, train: list[Song], val: list[Song], args, device, out_dir: Path):
    """Train ``model`` on random patches of ``train``; return ``fit``'s history.

    Loss: squared error of both masked magnitudes against the true stems' (divided by the fixed
    :func:`magnitude_scale`) + KL, its weight rising to ``--beta`` over the first 20 % of the steps.
    Checkpoints ``out_dir/checkpoint.pt`` (``--resume``); keeps the best by validation vocals NSDR.
    """
    epochs, n_patches = args.epochs, args.patches_per_epoch
    scale = magnitude_scale(train, args.n_fft, args.hop_length)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loader = PatchSampler(train, patch_samples(args.patch_frames, args.hop_length, args.n_fft), n_patches,
                          args.batch_size, args.remix_prob, args.seed, args.pitch_shift)
    warmup_steps = max(1, int(0.2 * epochs * len(loader)))
    state = {"step": 0}
    if args.resume and (out_dir / "checkpoint.pt").exists():
        state["step"] = int(load_checkpoint(out_dir / "checkpoint.pt").get("epoch", 0)) * len(loader)

    def step_fn(m, batch):
        v, a = batch
        spec_v = dsp.stft(v, n_fft=args.n_fft, hop_length=args.hop_length, center=False)
        spec_a = dsp.stft(a, n_fft=args.n_fft, hop_length=args.hop_length, center=False)
        mix_mag = (spec_v + spec_a).abs()
        out = m(mix_mag)
        err_v = (out["masks"][:, 0] * mix_mag - spec_v.abs()) / scale
        err_a = (out["masks"][:, 1] * mix_mag - spec_a.abs()) / scale
        rec_v, rec_a = (err_v ** 2).flatten(1).sum(1), (err_a ** 2).flatten(1).sum(1)
        kl = kl_divergence(out["mu"], out["logvar"])
        beta_t = args.beta * min(1.0, state["step"] / warmup_steps)
        state["step"] += world_size()  # one global step per batch of every process (torchrun), as on resume
        loss = (rec_v + rec_a + beta_t * kl).mean()
        terms = {"recon_vocals": rec_v.mean(), "recon_accompaniment": rec_a.mean(), "kl": kl.mean()}
        return loss, {**{k: float(v.detach()) for k, v in terms.items()}, "beta": beta_t}

    def eval_fn(m):
        if not val:
            return {}
        rows = evaluate_songs(m, val, args, device)
        return {"val_vocals_nsdr_db": length_weighted(rows, "vocals_nsdr_db"),
                "val_accompaniment_nsdr_db": length_weighted(rows, "accompaniment_nsdr_db")}

    return fit(model, optimizer, loader, step_fn, epochs, eval_fn=eval_fn, device=device,
               checkpoint_path=out_dir / "checkpoint.pt", log_path=out_dir / "log.csv", resume=args.resume,
               best_key="val_vocals_nsdr_db" if val else None, best_mode="max", config=vars(args),
               desc="music", grad_clip=5.0)


def write_music_examples(model, test: list[Song], rows: list[dict], args, device, out_dir: Path, label: str) -> None:
    """WAVs (mixture, true and estimated stems) and a spectrogram figure of the first ``--save-audio`` scored clips."""
    sr = args.sample_rate
    scored = {r["clip"]: r for r in rows}
    for s in [s for s in test if s.name in scored][:args.save_audio]:
        mixture = s.vocals + s.accompaniment
        est_v, est_a = separate(model, mixture, args, device)
        folder = out_dir / "audio" / s.name
        peak = max(1.0, float(np.abs(mixture).max()))  # one gain for all files of a clip keeps levels comparable
        for name, wav in (("mixture", mixture), ("vocals_true", s.vocals), ("vocals_estimate", est_v),
                          ("accompaniment_true", s.accompaniment), ("accompaniment_estimate", est_a)):
            save_audio(folder / f"{name}.wav", wav / peak, sr)
        row = scored[s.name]
        spectrogram_figure({"mixture": mixture, "true vocals": s.vocals,
                            f"estimated vocals (SDR {row['vocals_sdr_db']:.1f} dB)": est_v,
                            "true accompaniment": s.accompaniment,
                            f"estimated accompaniment (SDR {row['accompaniment_sdr_db']:.1f} dB)": est_a},
                           sr, out_dir / f"spectrograms_{s.name}.png", n_fft=1024, ncols=5,
                           suptitle=f"{s.name}: VAE mask separation{label}")


def run_music(args) -> dict:
    """``vae_bss.py music``: data, model, training, evaluation on the test clips, outputs; returns the metrics."""
    device = select_device(args.device)
    seed_everything(args.seed)
    if args.hop_length > args.n_fft:
        raise UserError(f"--hop-length {args.hop_length} is larger than --n-fft {args.n_fft}: samples between "
                        f"frames would be skipped; use --hop-length <= {args.n_fft}")
    # the data before the folders: bad input leaves nothing behind
    data = load_music_splits(args.dataset, args.data_root, sample_rate=args.sample_rate, seed=args.seed,
                             min_samples=patch_samples(args.patch_frames, args.hop_length, args.n_fft),
                             mix_snr_db=args.mix_snr_db, val_clips=args.val_clips, download=args.download,
                             synthetic=args.synthetic_songs, max_train_clips=args.max_train_clips,
                             max_test_clips=args.max_test_clips, musdb_tracks=args.musdb_tracks,
                             irmas_dir=args.irmas_dir, val_singer=args.val_singer,
                             allow_overlap=args.allow_overlap)
    out_dir = part_out_dir(args, SCRIPT, "music")
    label = " [SYNTHETIC]" if data["data_source"] == "synthetic" else ""
    train, val, test = data["train"], data["val"], data["test"]
    print(f"music: {len(train)} training, {len(val)} validation, {len(test)} test clips; {args.epochs} epochs x "
          f"{args.patches_per_epoch} patches of {args.patch_frames} frames; device {device}")

    repet_rows = None
    if args.repet_sim in ("on", "only") or (args.repet_sim == "auto" and data["data_source"] == "real"):
        # the classical baseline first: no training, same clips, same scores
        repet = lambda mix: repet_sim_separate(mix, args.sample_rate, n_fft=args.n_fft,  # noqa: E731
                                               hop_length=args.hop_length)
        t0 = time.perf_counter()
        repet_rows = evaluate_songs(repet, test, args, device, progress=True)
        print(f"REPET-SIM on {len(repet_rows)} test clips ({time.perf_counter() - t0:.0f} s)")
        if repet_rows:
            write_csv(out_dir / "test_clips_repet_sim.csv", repet_rows)
    if args.repet_sim == "only":
        metrics = {f"repet_sim_{k}": v for k, v in gnsdr_summary(repet_rows).items()}
        metrics.update(music_test_clips=len(repet_rows), music_train_clips=len(train))
        return finish_music(metrics, args, data, out_dir, device, label)

    # model, with the input statistics of the training mixtures; training
    model = MusicVAE(args.n_fft // 2 + 1, args.patch_frames, args.hidden, args.latent_dim)
    for buffer, stat in zip((model.feat_mean, model.feat_std), feature_stats(train, args.n_fft, args.hop_length)):
        buffer.copy_(stat)
    history = train_music(model, train, val, args, device, out_dir)
    train_seconds = history.train_seconds  # the whole run, --resume included
    if not is_main_process():  # torchrun: the other ranks helped train; rank 0 evaluates and writes
        return {}
    if (out_dir / "checkpoint_best.pt").exists():
        model.load_state_dict(load_checkpoint(out_dir / "checkpoint_best.pt", map_location=device)["model"])
    model.to(device)

    print(f"evaluating on {len(test)} test clips ...")
    eval_skipped: list = []
    rows = evaluate_songs(model, test, args, device, progress=True, skipped=eval_skipped)
    if rows:
        write_csv(out_dir / "test_clips.csv", rows)
    metrics = gnsdr_summary(rows)
    metrics.update(music_train_seconds=train_seconds, music_params=n_parameters(model),
                   music_epochs=len(history), music_test_clips=len(rows), music_train_clips=len(train),
                   music_test_seconds_total=float(sum(r["seconds"] for r in rows)),
                   music_test_clips_skipped=len(eval_skipped))
    if eval_skipped:
        metrics["music_test_skipped_note"] = "; ".join(f"{name}: {why}" for name, why in eval_skipped)
    if repet_rows:
        metrics.update({f"repet_sim_{k}": v for k, v in gnsdr_summary(repet_rows).items()})

    # outputs: audio, spectrograms, curves
    write_music_examples(model, test, rows, args, device, out_dir, label)
    if data["irmas"] is not None:
        separate_irmas(model, Path(data["irmas"]), args, device, out_dir)
    if history:
        plot_training_curves(history, out_dir / "training_curves.png",
                             {"loss terms (per patch)": ["train_loss", "recon_vocals", "recon_accompaniment"],
                              "KL (nats)": ["kl"],
                              "validation NSDR (dB)": ["val_vocals_nsdr_db", "val_accompaniment_nsdr_db"]},
                             title=f"vae_bss music: training{label}")
    finish_music(metrics, args, data, out_dir, device, label)
    if not rows:
        print(f"vae_bss music{label}: no test clip could be scored ({len(eval_skipped)} skipped); metrics.json "
              f"records training only -> {out_dir}")
    else:
        print(f"vae_bss music{label} ({data['dataset']}, {len(rows)} test clips): vocals GNSDR "
              f"{metrics['vocals_gnsdr_db']:.2f} dB (GSIR {metrics['vocals_gsir_db']:.2f}, GSAR "
              f"{metrics['vocals_gsar_db']:.2f}), accompaniment GNSDR {metrics['accompaniment_gnsdr_db']:.2f} dB; "
              f"training {train_seconds:.0f} s -> {out_dir}")
    return metrics


def finish_music(metrics: dict, args, data: dict, out_dir: Path, device, label: str) -> dict:
    """Write ``metrics.json`` (the music part's and the combined one), print the REPET-SIM line; return ``metrics``."""
    provenance = dict(args=args, dataset=data["dataset"], data_source=data["data_source"], device=device)
    write_metrics(out_dir, metrics, anchors=MUSIC_ANCHORS, **provenance)
    write_combined_metrics(out_dir.parent, "music", metrics, anchors=IMAGE_ANCHORS + MUSIC_ANCHORS, **provenance)
    if metrics.get("repet_sim_vocals_gnsdr_db") is not None:
        print(f"REPET-SIM{label} ({data['dataset']}, no training): vocals GNSDR "
              f"{metrics['repet_sim_vocals_gnsdr_db']:.2f} dB (GSIR {metrics['repet_sim_vocals_gsir_db']:.2f}, GSAR "
              f"{metrics['repet_sim_vocals_gsar_db']:.2f}), accompaniment GNSDR "
              f"{metrics['repet_sim_accompaniment_gnsdr_db']:.2f} dB")
    return metrics


def separate_irmas(model, folder: Path, args, device, out_dir: Path) -> None:
    """Separate a few IRMAS ``voi`` excerpts (no stems: WAVs and spectrograms for listening only)."""
    files = find_audio_files(folder)[:max(0, args.irmas_max)]
    print(f"IRMAS voi: separating {len(files)} excerpt(s) from {folder} (qualitative: no stems, no scores)")
    used: set[str] = set()
    for path, mixture, _ in iter_readable(files, sample_rate=args.sample_rate, mono=True):
        if mixture.shape[-1] < patch_samples(args.patch_frames, args.hop_length, args.n_fft):
            print(f"skipped: {path} is shorter than one patch")
            continue
        est_v, est_a = separate(model, mixture, args, device)
        stem = unique_name(path.stem, used)
        dest = out_dir / "irmas" / stem
        peak = max(1.0, float(np.abs(mixture).max()))
        for name, wav in (("mixture", mixture), ("vocals_estimate", est_v), ("accompaniment_estimate", est_a)):
            save_audio(dest / f"{name}.wav", wav / peak, args.sample_rate)
        spectrogram_figure({"IRMAS mixture": mixture, "estimated vocals": est_v, "estimated accompaniment": est_a},
                           args.sample_rate, out_dir / f"irmas_{stem}.png", n_fft=1024,
                           suptitle=f"IRMAS {path.name}: qualitative separation (no reference stems)")


# ============================================================================== main
def main(argv=None) -> None:
    argv = None if argv is None else [str(a) for a in argv]
    args = build_parser().parse_args(argv)
    apply_quick(args, QUICK[args.command], argv)
    if args.command == "images":
        run_images(args)
    else:
        run_music(args)


if __name__ == "__main__":
    sys.exit(main_guard(main))
