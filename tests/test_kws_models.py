"""Tests for kws_models.py: M5 as in the torchaudio tutorial, the residual CNN-LSTM, the MFCC-statistics peer,
the learning curve's speaker subsets, and --models m5,mfcc_stats / --learning-curve end to end."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

import kws_models as km
import speechcommands_rnn as kws
from audiolab.core.cli import main_guard
from audiolab.core.train import n_parameters
from audiolab.data import keywords as kd


def test_m5_is_the_tutorial_network():
    # torchaudio's speech_command_classification tutorial prints "Number of parameters: 26915" for M5 with
    # n_channel=32 and its 35 classes
    net = km.M5(35)
    assert n_parameters(net) == 26915
    assert net(torch.randn(2, 1, 8000)).shape == (2, 35)
    with pytest.raises(ValueError, match="at least 6848 samples"):
        net(torch.randn(1, 1, 6847))
    net.eval()(torch.randn(1, 1, 6848))  # the shortest input it accepts runs


def test_wave_front_resamples_to_8khz():
    front = km.WaveFront(16000)
    t = torch.arange(16000) / 16000
    x = front(torch.sin(2 * torch.pi * 440 * t)[None])
    assert x.shape == (1, 1, 8000)
    ref = torch.sin(2 * torch.pi * 440 * torch.arange(8000) / 8000)
    torch.testing.assert_close(x[0, 0, 200:-200], ref[200:-200], atol=2e-2, rtol=0)


def test_cnn_lstm_without_res_blocks_is_the_issue_18_model_and_res_blocks_add_to_it():
    assert n_parameters(km.CNNLSTM(40, 12, hidden=64)) == 120_380  # the README's cnn_lstm row
    res = km.CNNLSTM(40, 12, hidden=64, res_blocks=1)  # one block of two 3x3 convs + 2 BatchNorms per stage
    assert n_parameters(res) - 120_380 == (2 * 16 * 16 * 9 + 4 * 16) + (2 * 32 * 32 * 9 + 4 * 32)
    assert res(torch.randn(3, 101, 40)).shape == (3, 12)


def test_res_block_with_a_zero_branch_is_relu_identity():
    block = km.ResBlock(4).eval()
    torch.nn.init.zeros_(block.body[-1].weight)  # last BatchNorm's scale 0 (bias 0): the branch adds nothing
    x = torch.randn(2, 4, 5, 6)
    torch.testing.assert_close(block(x), torch.relu(x))


def test_mfcc_stats_ignore_padding_and_see_time_order():
    rng = np.random.default_rng(0)
    word = torch.from_numpy(rng.standard_normal(8000).astype(np.float32)) * torch.linspace(0.1, 1, 8000)
    a = km.mfcc_stats(torch.nn.functional.pad(word, (2000, 6000))[None], 16000)
    b = km.mfcc_stats(torch.nn.functional.pad(word, (4000, 4000))[None], 16000)
    assert a.shape == (1, 2 * 2 * 20 + 3 * 20)
    # where the padding lies changes only the two edge frames; were the 50 padding frames (at the dB floor)
    # counted, the mean of c0 (~140) would move by tens
    assert abs(a[0, 0] - b[0, 0]) < 3 and np.median(np.abs(a - b)) < 0.1
    rev = km.mfcc_stats(torch.nn.functional.pad(word.flip(0), (4000, 4000))[None], 16000)
    seg = slice(80, 140)  # the three segment means: rising vs falling loudness differ
    assert np.abs(rev[0, seg] - b[0, seg]).max() > 10 * np.abs(a[0, seg] - b[0, seg]).max()


def test_fit_mfcc_classifier_chooses_on_validation():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((60, 5))
    y = (x[:, 0] > 0).astype(int)
    pipe, name, rows = km.fit_mfcc_classifier((x[:40], y[:40]), (x[40:], y[40:]))
    assert len(rows) == len(km.CLASSIFIERS) and name == max(rows, key=lambda r: r["val_accuracy"])["classifier"]
    assert pipe.score(x[40:], y[40:]) == max(r["val_accuracy"] for r in rows) >= 0.9


def _clip(spk, split, label="yes"):
    return kd.Clip(np.zeros(100, np.float32), label, spk, split, f"{spk}.wav", 16000)


def test_subsample_train_speakers_keeps_whole_speakers_and_other_splits():
    clips = ([_clip(f"s{i}", "train") for i in range(8) for _ in range(3)]
             + [_clip(f"_silence_/{i}", "train", "_silence_") for i in range(4)]
             + [_clip("v", "val"), _clip("t", "test")])
    data = kd.KwsData("speech_commands", "real", 16000, ["yes", "_silence_"], clips)
    sub = km.subsample_train_speakers(data, 0.25, seed=0)
    speakers = [c.speaker for c in sub.split("train")]
    assert len({s for s in speakers if not s.startswith("_silence_")}) == 2 and len(speakers) == 2 * 3 + 1
    assert sub.split("val") == data.split("val") and sub.split("test") == data.split("test")
    assert len(data.clips) == len(clips)  # the original is untouched
    assert km.subsample_train_speakers(data, 1.0) is data
    with pytest.raises(ValueError):
        km.subsample_train_speakers(data, 0.0)


@pytest.mark.parametrize("text, ok", [("1,0.25,0.5", [0.25, 0.5, 1.0]), ("0", None), ("1.5", None), (",", None)])
def test_parse_fractions(text, ok):
    if ok is None:
        with pytest.raises(ValueError):
            km.parse_fractions(text)
    else:
        assert km.parse_fractions(text) == ok


@pytest.mark.parametrize("argv, message", [
    (["--learning-curve", "0,1"], "--learning-curve: fractions must be"),
    (["--models", "m5", "--clip-seconds", "0.5"], "m5 needs --clip-seconds >= 0.856"),
])
def test_bad_peer_flags_are_clear_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main_guard(kws.main, ["--quick", *argv]) == 2
    assert message in capsys.readouterr().err


def test_peers_and_learning_curve_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kws.main(["train", "--quick", "--models", "m5,mfcc_stats", "--out-dir", "a"])
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert m["n_params_m5"] == n_parameters(km.M5(m["n_classes"])) and m["classifier_mfcc_stats"]
    assert 0 <= m["test_accuracy_mfcc_stats"] <= 1 and (tmp_path / "a" / "confusion_mfcc_stats.png").exists()
    kws.main(["train", "--quick", "--models", "mfcc_stats", "--learning-curve", "0.5,1", "--out-dir", "b"])
    rows = list(csv.DictReader(open(tmp_path / "b" / "learning_curve.csv")))
    assert [r["fraction"] for r in rows] == ["0.5", "1.0"]
    assert int(rows[0]["n_train_clips"]) < int(rows[1]["n_train_clips"])
    assert (tmp_path / "b" / "learning_curve.png").exists()
    m = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert m["learning_curve_test_accuracy_mfcc_stats_1"] == pytest.approx(float(rows[1]["test_acc"]), abs=1e-4)


@pytest.mark.parametrize("dataset, flags, expected", [("speech_commands", [], 1), ("fsdd", [], 0), ("synthetic", [], 0),
                                                      ("speech_commands", ["--res-blocks", "0"], 0)])
def test_res_blocks_default_per_dataset(dataset, flags, expected):
    args = kd.apply_dataset_defaults(kws.parse_args(["train", *flags]), dataset)
    assert args.res_blocks == expected
    net = kws.model_from_args("cnn_lstm", args, 40, 12)
    assert n_parameters(net) == n_parameters(km.CNNLSTM(40, 12, hidden=kws.HIDDEN, res_blocks=expected))
