"""The networks of ``vae_bss.py`` and its training-free music baseline (REPET-SIM).

Images (``[B, 1, 28, 28]`` mixtures ``x = (a + b) / 2`` in [0, 1]):
- ``ImageVAE``: MLP VAE (784 -> 512 -> 256 -> 64-d Gaussian latent and back) with a per-pixel mask head;
- ``ConvVAE``: convolutional VAE: conv encoder to a 64-d Gaussian latent, ``x_hat`` decoded from the
  sampled ``z`` alone, and a conv mask head that reads the decoder's features plus either the
  mixture's own local features (``--arch conv``: skip-free bottleneck) or the encoder's 28x28 and
  14x14 features (``--arch unet``, the default: a U-Net-shaped VAE);
- ``SmallUNet``: U-Net baseline (Ronneberger et al. 2015), no latent;
- ``outputs``: decoder channels -> ``a_hat``, ``b_hat`` (a soft mask on the mixture) and ``x_hat``.

Music: ``MusicVAE`` (MLP VAE on log-magnitude STFT patches -> a soft mask per source) and
``repet_sim_separate`` (Rafii & Pardo, ICASSP 2012 / Rafii, Liutkus & Pardo 2014: the accompaniment is
the repeating part, estimated by a median over the most similar frames; librosa's documented
vocal-separation recipe with ``librosa.decompose.nn_filter`` and ``librosa.util.softmask``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from audiolab.core import dsp


# ============================================================================ image outputs
def outputs(logits: torch.Tensor, x: torch.Tensor, mu, logvar, output: str = "mask") -> dict:
    """The decoder's two channels ``[B, 2, 28, 28]`` -> the separated images and the reconstructed mixture.

    ``mask``: channel 0 is a soft mask ``m = sigmoid(.)``, ``a_hat = m * 2x``, ``b_hat = (1 - m) * 2x``
    (clipped to [0, 1]); channel 1 is the VAE's ``x_hat`` (its ``p(x | z)``). ``direct``: the two
    channels are the sources' own logits and ``x_hat = (a_hat + b_hat) / 2``.
    """
    if output == "mask":
        m = torch.sigmoid(logits[:, :1])
        a, b = (m * 2 * x).clamp(0, 1), ((1 - m) * 2 * x).clamp(0, 1)
        return {"logits_a": None, "logits_b": None, "logits_mix": logits[:, 1:], "a": a, "b": b,
                "mix": torch.sigmoid(logits[:, 1:]), "mask": m, "mu": mu, "logvar": logvar}
    probs = torch.sigmoid(logits)
    a, b = probs[:, :1], probs[:, 1:]
    return {"logits_a": logits[:, :1], "logits_b": logits[:, 1:], "logits_mix": None, "a": a, "b": b,
            "mix": (a + b) / 2, "mu": mu, "logvar": logvar}


def sample_latent(h_mu: torch.Tensor, h_logvar: torch.Tensor | None, training: bool) -> torch.Tensor:
    """Reparameterisation (Kingma & Welling 2014): ``mu + eps * sigma`` in training, ``mu`` at test time."""
    if h_logvar is None or not training:
        return h_mu
    return h_mu + torch.randn_like(h_mu) * torch.exp(0.5 * h_logvar)


# ============================================================================ image models
class ImageVAE(nn.Module):
    """MLP VAE: mixture ``[B, 1, 28, 28]`` -> latent ``z [B, latent_dim]`` -> mask and ``x_hat`` (or two images).

    784 -> 512 -> 256 -> (mu, logvar) and back, fully connected as in Kingma & Welling (2014).
    ``variational=False``: the same network as a plain autoencoder (``z = mu``, no sampling, no KL).
    """

    def __init__(self, latent_dim: int = 64, variational: bool = True, hidden: int = 512, output: str = "mask",
                 mask_channels: int = 4):
        super().__init__()
        self.variational, self.output, self.mask_channels = variational, output, mask_channels
        out_channels = mask_channels + 1 if output == "mask" else 2
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.LeakyReLU(0.1),
                                     nn.Linear(hidden, hidden // 2), nn.LeakyReLU(0.1))
        self.to_mu = nn.Linear(hidden // 2, latent_dim)
        self.to_logvar = nn.Linear(hidden // 2, latent_dim)  # kept in the AE too (unused) so sizes match exactly
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden // 2), nn.LeakyReLU(0.1),
                                     nn.Linear(hidden // 2, hidden), nn.LeakyReLU(0.1),
                                     nn.Linear(hidden, out_channels * 784), nn.Unflatten(1, (out_channels, 28, 28)))
        # mask head, applied to every pixel: the decoder's mask features there + the mixture's 5x5
        # neighbourhood -> mask logit (a per-pixel MLP; Linear layers on [B, 784, features])
        self.mask_head = nn.Sequential(nn.Linear(mask_channels + 25, 32), nn.LeakyReLU(0.1), nn.Linear(32, 1))

    def forward(self, x: torch.Tensor) -> dict:
        """``x [B, 1, 28, 28]`` -> ``{"a", "b", "mix" [B, 1, 28, 28], "mu", "logvar", logits...}``."""
        h = self.encoder(x)
        mu = self.to_mu(h)
        logvar = self.to_logvar(h).clamp(-10, 10) if self.variational else None
        dec = self.decoder(sample_latent(mu, logvar, self.training))
        if self.output == "mask":
            patches = F.unfold(x, 5, padding=2)  # [B, 25, 784]
            feats = torch.cat([dec[:, :self.mask_channels].flatten(2), patches], 1).transpose(1, 2)  # [B, 784, C+25]
            mask_logit = self.mask_head(feats).transpose(1, 2).reshape(-1, 1, 28, 28)
            dec = torch.cat([mask_logit, dec[:, self.mask_channels:]], 1)
        return outputs(dec, x, mu, logvar, self.output)


def _block(i: int, o: int) -> nn.Sequential:
    """Two 3x3 convolutions with ReLU, size-preserving."""
    return nn.Sequential(nn.Conv2d(i, o, 3, 1, 1), nn.ReLU(), nn.Conv2d(o, o, 3, 1, 1), nn.ReLU())


class ConvVAE(nn.Module):
    """Convolutional VAE: mixture ``[B, 1, 28, 28]`` -> Gaussian latent ``z [B, latent_dim]`` -> mask and ``x_hat``.

    Encoder: 3x3 conv blocks at 28, 14 and 7 pixels (``width``, ``2 width``, ``4 width`` channels), then
    a linear map of the 7x7 features to ``(mu, logvar)``; ``z`` is sampled in training. Decoder: ``z`` ->
    7x7 features -> transposed convolutions back to 28x28. ``x_hat`` (the VAE's ``p(x | z)``) always
    comes from ``z`` alone. The mask (``output="mask"``) comes from a conv head on the decoder's
    features and:

    - ``skips=False`` (``--arch conv``): a conv block of the mixture itself at full resolution (a
      skip from the input, 9x9 pixels of context, none from the encoder's deeper layers): the
      latent carries the global content (what digit, what garment), the local path the strokes;
    - ``skips=True`` (``--arch unet``, U-Net-shaped VAE): the decoder also reads the encoder's 28x28
      and 14x14 features (Ronneberger et al. 2015), so pixel detail bypasses the latent.

    ``output="direct"``: the decoder paints both images (no mask). ``variational=False``: the same
    network as a plain autoencoder (``z = mu``, no sampling, no KL).
    """

    def __init__(self, latent_dim: int = 64, variational: bool = True, width: int = 16, output: str = "mask",
                 skips: bool = False):
        super().__init__()
        self.variational, self.output, self.skips = variational, output, skips
        w, k = width, 2 if skips else 1  # k: channel factor of the decoder blocks that read a skip
        self.enc1, self.enc2 = _block(1, w), _block(w, 2 * w)
        self.enc3 = nn.Sequential(_block(2 * w, 4 * w), nn.Flatten())
        self.to_mu = nn.Linear(4 * w * 49, latent_dim)
        self.to_logvar = nn.Linear(4 * w * 49, latent_dim)
        self.from_z = nn.Sequential(nn.Linear(latent_dim, 4 * w * 49), nn.ReLU(), nn.Unflatten(1, (4 * w, 7, 7)),
                                    _block(4 * w, 4 * w), nn.ConvTranspose2d(4 * w, 2 * w, 2, 2), nn.ReLU())
        self.dec2 = nn.Sequential(_block(k * 2 * w, 2 * w), nn.ConvTranspose2d(2 * w, w, 2, 2), nn.ReLU())
        self.dec1 = _block(k * w, w)
        self.to_mix = nn.Conv2d(w, 1, 1)
        # with skips, x_hat gets its own z-only decoder tail (14 -> 28 pixels), so no skip reaches it
        self.mix_tail = nn.Sequential(_block(2 * w, w), nn.ConvTranspose2d(w, w, 2, 2), nn.ReLU()) if skips else None
        self.to_sources = nn.Conv2d(w, 2, 1)  # direct output only
        self.local = _block(1, w) if output == "mask" and not skips else None
        self.mask_head = nn.Sequential(_block(w if skips else 2 * w, w), nn.Conv2d(w, 1, 1))

    def forward(self, x: torch.Tensor) -> dict:
        """``x [B, 1, 28, 28]`` -> ``{"a", "b", "mix" [B, 1, 28, 28], "mu", "logvar", logits...}``."""
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        h = self.enc3(F.max_pool2d(e2, 2))
        mu = self.to_mu(h)
        logvar = self.to_logvar(h).clamp(-10, 10) if self.variational else None
        z = sample_latent(mu, logvar, self.training)
        u2 = self.from_z(z)
        if not self.skips:  # x_hat and the mask's global features, from z alone
            d = self.dec1(self.dec2(u2))
            mix_logit = self.to_mix(d)
            feats = torch.cat([d, self.local(x)], 1) if self.local is not None else d
        else:
            mix_logit = self.to_mix(self.mix_tail(u2))
            feats = self.dec1(torch.cat([self.dec2(torch.cat([u2, e2], 1)), e1], 1))
        if self.output == "mask":
            return outputs(torch.cat([self.mask_head(feats), mix_logit], 1), x, mu, logvar, "mask")
        return outputs(self.to_sources(feats), x, mu, logvar, "direct")


class SmallUNet(nn.Module):
    """Small U-Net (Ronneberger et al. 2015): skip connections carry pixel detail past the bottleneck."""

    def __init__(self, width: int = 8, output: str = "mask"):
        super().__init__()
        self.output = output
        self.down1, self.down2, self.mid = _block(1, width), _block(width, 2 * width), _block(2 * width, 4 * width)
        self.up2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, 2)
        self.dec2 = _block(4 * width, 2 * width)
        self.up1 = nn.ConvTranspose2d(2 * width, width, 2, 2)
        self.dec1 = _block(2 * width, width)
        self.head = nn.Conv2d(width, 2, 1)

    def forward(self, x: torch.Tensor) -> dict:
        d1 = self.down1(x)                          # 28
        d2 = self.down2(F.max_pool2d(d1, 2))        # 14
        m = self.mid(F.max_pool2d(d2, 2))           # 7
        u2 = self.dec2(torch.cat([self.up2(m), d2], 1))
        u1 = self.dec1(torch.cat([self.up1(u2), d1], 1))
        return outputs(self.head(u1), x, None, None, self.output)


def build_image_model(kind: str, latent_dim: int, output: str = "mask", arch: str = "conv", width: int = 16):
    """``vae`` | ``ae`` (same network, deterministic) | ``unet``; ``arch``: ``conv`` / ``unet`` (:class:`ConvVAE`
    without / with encoder skips) or ``mlp`` (:class:`ImageVAE`); ``output`` is ``mask`` or ``direct``;
    ``width``: channels of the first conv layer.

    Raises:
        ValueError: an unknown ``kind`` or ``arch``.
    """
    if kind == "unet":
        return SmallUNet(width=width, output=output)
    if kind not in ("vae", "ae") or arch not in ("conv", "unet", "mlp"):
        raise ValueError(f"unknown image model {kind!r} / architecture {arch!r}")
    if arch == "mlp":
        return ImageVAE(latent_dim, variational=(kind == "vae"), output=output)
    return ConvVAE(latent_dim, variational=(kind == "vae"), width=width, output=output, skips=(arch == "unet"))


# ============================================================================ music
class MusicVAE(nn.Module):
    """MLP VAE: mixture magnitude patch ``[B, n_freq, patch_frames]`` -> a soft mask per source.

    The input's ``log1p`` is standardised per bin with the training set's statistics (buffers: the
    checkpoint carries them). Output: masks ``[B, 2, n_freq, patch_frames]`` (0 vocals, 1
    accompaniment; softmax over the sources), ``mu``, ``logvar`` ``[B, latent_dim]``.
    """

    def __init__(self, n_freq: int, patch_frames: int, hidden: int = 1024, latent_dim: int = 128,
                 dropout: float = 0.1):
        super().__init__()
        d = n_freq * patch_frames
        self.n_freq, self.patch_frames = n_freq, patch_frames
        self.register_buffer("feat_mean", torch.zeros(n_freq, 1))
        self.register_buffer("feat_std", torch.ones(n_freq, 1))
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(d, hidden), nn.ReLU(), nn.Dropout(dropout),
                                     nn.Linear(hidden, hidden // 2), nn.ReLU())
        self.to_mu = nn.Linear(hidden // 2, latent_dim)
        self.to_logvar = nn.Linear(hidden // 2, latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden // 2), nn.ReLU(),
                                     nn.Linear(hidden // 2, hidden), nn.ReLU(), nn.Linear(hidden, 2 * d))

    def features(self, magnitude: torch.Tensor) -> torch.Tensor:
        """``log1p(|X|)`` standardised per bin; ``[..., n_freq, n_frames]`` in and out."""
        return (torch.log1p(magnitude) - self.feat_mean) / self.feat_std

    def forward(self, magnitude: torch.Tensor) -> dict:
        """``magnitude [B, n_freq, patch_frames]`` -> ``{"masks" [B, 2, F, T], "mu", "logvar"}``."""
        h = self.encoder(self.features(magnitude))
        mu, logvar = self.to_mu(h), self.to_logvar(h).clamp(-10, 10)
        logits = self.decoder(sample_latent(mu, logvar, self.training)).view(-1, 2, self.n_freq, self.patch_frames)
        return {"masks": torch.softmax(logits, dim=1), "mu": mu, "logvar": logvar}


def repet_sim_separate(mixture: np.ndarray, sample_rate: int, *, n_fft: int = 1024, hop_length: int = 256,
                       width_s: float = 2.0, margin_v: float = 10.0, margin_a: float = 2.0,
                       power: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """REPET-SIM singing-voice separation, no training: mono ``[n_samples]`` -> ``(vocals, accompaniment)``.

    librosa's documented recipe ("Vocal separation" example): the repeating accompaniment's magnitude
    is the median over each frame's nearest neighbours by cosine similarity
    (``librosa.decompose.nn_filter``, neighbours at least ``width_s`` seconds apart), capped at the
    mixture's; the remainder is the voice. Soft masks (``librosa.util.softmask``, exponent ``power``)
    with margins ``margin_v`` (voice) and ``margin_a`` (accompaniment) multiply the complex mixture
    STFT (periodic Hann window, ``n_fft`` / ``hop_length`` samples), which is inverted.
    Source: Rafii & Pardo, ICASSP 2012 (REPET-SIM).

    Raises:
        ValueError: the mixture is shorter than 8 STFT frames (too short for a neighbour search).
    """
    import librosa

    spec = dsp.stft(torch.from_numpy(np.ascontiguousarray(mixture, dtype=np.float32)), n_fft=n_fft,
                    hop_length=hop_length)
    mag = spec.abs().numpy().astype(np.float64)
    n_frames = mag.shape[-1]
    if n_frames < 8:
        raise ValueError(f"{mixture.shape[-1]} samples give {n_frames} STFT frames; REPET-SIM needs at least 8")
    # recurrence_matrix needs 1 <= width < (n - 1) // 2: short clips get a shorter exclusion zone
    width = max(1, min(int(librosa.time_to_frames(width_s, sr=sample_rate, hop_length=hop_length)),
                       (n_frames - 1) // 2 - 1))
    rep = librosa.decompose.nn_filter(mag, aggregate=np.median, metric="cosine", width=width)
    rep = np.minimum(mag, rep)
    mask_a = librosa.util.softmask(rep, margin_a * (mag - rep), power=power)
    mask_v = librosa.util.softmask(mag - rep, margin_v * rep, power=power)
    masks = torch.from_numpy(np.stack([mask_v, mask_a]).astype(np.float32))
    est = dsp.istft(masks * spec, n_fft=n_fft, hop_length=hop_length, length=mixture.shape[-1])
    return est[0].numpy(), est[1].numpy()
