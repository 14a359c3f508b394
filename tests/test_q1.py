"""Question 1: generator invariants, bad input, and the three scripts end to end (--quick)."""

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

import q1_generate
from audiolab.core.runtime import UserError
from q1_train_lstm import FrequencyLSTMSeparator

DEFAULTS = dict(n_examples=100, n_samples=10000, sample_rate=32000, boundary_hz=8000.0, guard_hz=500.0,
                f1_min_hz=100.0, f2_max_hz=15000.0, amp_min=0.2, amp_max=0.45)


def test_generator_invariants():
    params, sig = q1_generate.make_examples(seed=0, **DEFAULTS)
    assert sig.shape == (100, 3, 10000)
    assert (params.f1_hz < 8000 - 500).all() and (params.f1_hz >= 100).all()
    assert (params.f2_hz > 8000 + 500).all() and (params.f2_hz <= 15000).all() and (params.f2_hz < 16000).all()
    np.testing.assert_array_equal(sig[:, 2], sig[:, 0] + sig[:, 1])       # exact sum
    assert np.abs(sig[:, 2]).max() <= 0.9 + 1e-4                          # no clipping
    np.testing.assert_array_equal(np.round(sig * 32768), sig * 32768)      # on the 16-bit grid
    # each source is the tone it claims: spectrum peak within one FFT bin (3.2 Hz) of f
    spec = np.abs(np.fft.rfft(sig[:5, :2], axis=-1))
    peaks = np.argmax(spec, axis=-1) * 32000 / 10000
    np.testing.assert_allclose(peaks, params[["f1_hz", "f2_hz"]].to_numpy()[:5], atol=3.2)


def test_same_seed_same_data_other_seed_other_data():
    a = q1_generate.make_examples(seed=5, **DEFAULTS)[1]
    b = q1_generate.make_examples(seed=5, **DEFAULTS)[1]
    c = q1_generate.make_examples(seed=6, **DEFAULTS)[1]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("change, message", [
    (dict(sample_rate=16000), "aliases"),
    (dict(f2_max_hz=15800.0), "Nyquist"),
    (dict(amp_max=0.6), "clipping"),
    (dict(f1_min_hz=7600.0), "empty source1"),
])
def test_bad_settings_are_refused(change, message):
    settings = {k: v for k, v in DEFAULTS.items() if k != "n_samples"}
    settings.update(test_fraction=0.1)
    settings.update(change)
    with pytest.raises(UserError, match=message):
        q1_generate.check_settings(**settings)


def test_model_output_sums_to_mixture():
    torch.manual_seed(0)
    model = FrequencyLSTMSeparator(32000)
    mix = torch.randn(2, 3000) * 0.3
    est = model(mix)
    assert est.shape == (2, 2, 3000)
    torch.testing.assert_close(est.sum(1), mix, atol=1e-5, rtol=0)


def test_scripts_refuse_to_run_before_the_generator(run_script, tmp_path):
    for script in ("q1_plot.py", "q1_train_lstm.py"):
        proc = run_script(script, "--quick", expect_rc=2)
        assert "q1_generate.py" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_script("q1_generate.py", "--sample-rate", "16000", expect_rc=2)
    assert "alias" in proc.stderr and not (tmp_path / "data").exists()


def test_generate_default_split_and_exact_files(run_script, tmp_path):
    run_script("q1_generate.py")
    info = pd.read_csv(tmp_path / "data/q1/info.csv")
    assert len(info) == 100 and (info.split == "train").sum() == 90 and (info.split == "test").sum() == 10
    assert {"f1_hz", "f2_hz", "a1", "a2", "phase1_rad", "phase2_rad", "sample_rate"} <= set(info.columns)
    for row in info.sample(5, random_state=0).itertuples():
        s1, sr = sf.read(tmp_path / "data/q1" / row.source1_path, dtype="int16")
        s2, _ = sf.read(tmp_path / "data/q1" / row.source2_path, dtype="int16")
        mix, _ = sf.read(tmp_path / "data/q1" / row.mixture_path, dtype="int16")
        assert sr == 32000 and len(mix) == 10000
        np.testing.assert_array_equal(mix.astype(int), s1.astype(int) + s2.astype(int))
    again = tmp_path / "again"
    again.mkdir()
    run_script("q1_generate.py", cwd=again)
    assert pd.read_csv(again / "data/q1/info.csv").equals(info)       # same seed, same dataset


def test_plot_and_train_end_to_end_with_resume(run_script, tmp_path):
    run_script("q1_generate.py", "--quick")
    run_script("q1_plot.py")
    plot = json.loads((tmp_path / "outputs/q1_plot/metrics.json").read_text())
    assert plot["peaks_match_info"] is True
    assert len(list((tmp_path / "outputs/q1_plot").glob("example_*.png"))) == 4
    proc = run_script("q1_plot.py", "--id", "999", expect_rc=2)
    assert "no example" in proc.stderr

    proc = run_script("q1_train_lstm.py", "--quick", "--epochs", "1")
    out = tmp_path / "outputs/q1_train_lstm"
    m = json.loads((out / "metrics.json").read_text())
    for key in ("test_si_snr_db", "test_si_snri_db", "train_seconds", "epochs"):
        assert isinstance(m[key], (int, float)), key
    assert m["data_source"] == "synthetic" and m["epochs"] == 1
    n_test = len(pd.read_csv(tmp_path / "data/q1/info.csv").query("split == 'test'"))
    assert len(list((out / "audio").glob("*.wav"))) == 2 * n_test
    assert len(list((out / "spectrograms").glob("*.png"))) == n_test
    assert "test SI-SNR" in proc.stdout.strip().splitlines()[-1]

    proc = run_script("q1_train_lstm.py", "--quick", "--epochs", "1", "--extend-to", "2")
    assert "resumed" in proc.stdout
    log = pd.read_csv(out / "log.csv")
    assert log.epoch.tolist() == [1, 2] and {"train_loss", "test_loss", "test_si_snr_db"} <= set(log.columns)
