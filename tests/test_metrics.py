"""audiolab.core.metrics against torchmetrics (the reference implementation) and their defining properties."""

import numpy as np
import pytest
import torch
from torchmetrics.functional.audio import scale_invariant_signal_noise_ratio, signal_noise_ratio

from audiolab.core.metrics import mean_finite, psnr, si_snr, si_snr_improvement, snr


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(4, 3, 1000, generator=g, dtype=torch.float64)
    est = ref + 0.3 * torch.randn(4, 3, 1000, generator=g, dtype=torch.float64)
    return est, ref


def test_si_snr_matches_torchmetrics(pair):
    est, ref = pair
    ours = si_snr(est, ref)
    theirs = scale_invariant_signal_noise_ratio(est, ref)  # zero-mean by definition
    assert ours.shape == (4, 3)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-7)


def test_snr_matches_torchmetrics(pair):
    est, ref = pair
    torch.testing.assert_close(snr(est, ref), signal_noise_ratio(est, ref, zero_mean=False), atol=1e-6, rtol=1e-7)


def test_si_snr_is_scale_and_offset_invariant(pair):
    est, ref = pair
    base = si_snr(est, ref)
    torch.testing.assert_close(si_snr(3.7 * est, ref), base)
    torch.testing.assert_close(si_snr(est + 0.5, ref), base)          # zero-mean: a DC offset does not count
    torch.testing.assert_close(si_snr(est, 0.1 * ref - 2.0), base)


def test_si_snr_sign_and_order(pair):
    est, ref = pair
    noise = torch.randn_like(ref)
    assert (si_snr(ref + 0.01 * noise, ref) > si_snr(ref + 0.1 * noise, ref)).all()
    assert (si_snr(ref + 10 * noise, ref) < 0).all()        # noise 20 dB louder than the signal
    assert (si_snr(ref, ref) > 80).all()                     # perfect estimate: limited by eps only


def test_snr_is_not_scale_invariant(pair):
    est, ref = pair
    assert (snr(0.5 * ref, ref) - 6.02).abs().max() < 0.01   # half the amplitude: error = s/2 -> 6.02 dB


def test_errors():
    with pytest.raises(ValueError, match="shapes differ"):
        si_snr(torch.zeros(10), torch.zeros(11))
    with pytest.raises(ValueError, match="silent"):
        snr(torch.ones(10), torch.zeros(10))


def test_si_snri_and_helpers(pair):
    est, ref = pair
    mix = ref + torch.randn_like(ref)
    torch.testing.assert_close(si_snr_improvement(est, ref, mix), si_snr(est, ref) - si_snr(mix, ref))
    assert mean_finite([1.0, float("inf"), 3.0]) == 2.0
    img = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    expected = 10 * torch.log10(1 / ((img - img * 0.9) ** 2).reshape(2, -1).mean(1))
    torch.testing.assert_close(psnr(img * 0.9, img), expected)


def test_mean_finite_is_float64_and_skips_missing_scores():
    """Python floats are averaged in float64 (no float32 round trip), None counts as missing."""
    values = [0.1, None, 1e-9 + 0.2, float("nan")]
    assert mean_finite(values) == float(np.mean([0.1, 1e-9 + 0.2]))
    assert mean_finite(torch.tensor([[1.0, float("inf")], [3.0, 5.0]], dtype=torch.float64)) == 3.0
    assert np.isnan(mean_finite([None, float("nan")]))
