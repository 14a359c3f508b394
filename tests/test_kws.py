"""Tests for speechcommands_rnn.py: features vs torchaudio, models, evaluation helpers, end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.transforms as T

REPO = Path(__file__).resolve().parent.parent
import speechcommands_rnn as kws
from audiolab.data import features as feat
from audiolab.data import keywords as kd
from audiolab.data import speech_commands
from audiolab.augment.spectrogram import SpecAugment
from audiolab.core.cli import main_guard
from audiolab.core.train import load_checkpoint


def _features(kind="mfcc", cmvn="none", sr=8000, n_fft=256, hop=80, **kw):
    return feat.Features(kind, sr, n_fft, hop, n_mels=32, n_mfcc=13, cmvn=cmvn, top_db=80.0, **kw)


# ----------------------------------------------------------------------------- features
def test_mfcc_features_match_torchaudio_per_clip():
    torch.manual_seed(0)
    wav = torch.randn(3, 8000) * torch.tensor([[1.0], [0.01], [0.3]])  # very different levels in one batch
    feats = _features("mfcc").raw(wav)
    ref = T.MFCC(8000, n_mfcc=13, log_mels=False, melkwargs=dict(n_fft=256, hop_length=80, n_mels=32, f_min=20.0))
    for i in range(3):  # each clip alone: the features of a clip must not depend on its batch
        torch.testing.assert_close(feats[i], ref(wav[i:i + 1])[0], rtol=1e-4, atol=1e-3)


def test_logmel_features_match_torchaudio():
    torch.manual_seed(1)
    wav = torch.randn(2, 8000)
    feats = _features("logmel").raw(wav)
    mel = T.MelSpectrogram(8000, n_fft=256, hop_length=80, n_mels=32, f_min=20.0)
    db = T.AmplitudeToDB("power", top_db=80.0)
    for i in range(2):
        torch.testing.assert_close(feats[i], db(mel(wav[i:i + 1]))[0], rtol=1e-4, atol=1e-3)


def test_standardisation_uses_training_statistics():
    torch.manual_seed(2)
    train = [kd.Clip((0.1 * np.random.default_rng(i).standard_normal(8000)).astype(np.float32), "yes", "s",
                     "train", "p", 8000) for i in range(12)]
    loader = torch.utils.data.DataLoader(kd.KwsDataset(train, ["yes"], 8000), batch_size=5,
                                         collate_fn=kd.PadCollate(8000))
    f = _features("mfcc", cmvn="meanvar")
    f.fit_stats(loader)
    x = torch.cat([f(w) for w, *_ in loader])  # [N, T, F]
    torch.testing.assert_close(x.mean(dim=(0, 1)), torch.zeros(13), atol=1e-3, rtol=0)
    torch.testing.assert_close(x.std(dim=(0, 1)), torch.ones(13), atol=2e-2, rtol=0)
    assert x.shape == (12, 101, 13)


def test_padding_frames_are_zero_and_left_out_of_cmvn():
    torch.manual_seed(3)
    f = _features("mfcc", cmvn="meanvar")
    speech = torch.randn(1, 4000) * 0.1
    short = torch.nn.functional.pad(speech, (0, 4000))  # half a second of digital silence after it
    x = f(short)[0]  # [T, F]
    assert torch.allclose(x[60:], x[60:61].expand(x.shape[0] - 60, -1))  # pure padding: one constant floor frame
    # the normalisation statistics come from the signal frames only: the same clip with more
    # padding gets the same features on the frames away from the boundary
    longer = f(torch.nn.functional.pad(speech, (0, 12000)))[0]
    torch.testing.assert_close(x[:45], longer[:45], rtol=0, atol=0.05)


def test_spec_augment_only_when_augmenting():
    sa = SpecAugment(129, 80, stretch=(0.9, 1.1), freq_mask=3, time_mask=10, stretch_prob=1.0)
    f = _features("mfcc", spec_augment=sa)
    wav = torch.randn(4, 8000)
    torch.testing.assert_close(f(wav), f(wav))  # eval path is deterministic
    assert not torch.allclose(f(wav, augment=True), f(wav))


# ----------------------------------------------------------------------------- models
@pytest.mark.parametrize("name", kws.MODELS)
def test_models_shapes_and_gradients(name):
    torch.manual_seed(0)
    net = kws.build_model(name, n_features=20, n_classes=7, hidden=16, layers=2, dropout=0.1)
    x = torch.randn(3, 101, 20, requires_grad=True)
    logits = net(x)
    assert logits.shape == (3, 7)
    logits.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert kws.n_parameters(net) > 0


def test_attention_pool_is_a_convex_combination():
    pool = kws.AttentionPool(4, 8)
    h = torch.randn(2, 9, 4)
    out, w = pool(h)
    torch.testing.assert_close(w.sum(1), torch.ones(2))
    assert (w >= 0).all()
    torch.testing.assert_close(out, (w.unsqueeze(-1) * h).sum(1))


def test_frame_stack_concatenates_consecutive_frames():
    net = kws.RecurrentClassifier(2, 3, cell="gru", hidden=4, layers=1, frame_stack=2)
    assert net.rnn.input_size == 4
    net.eval()
    x = torch.randn(1, 7, 2)
    captured = {}
    net.rnn.register_forward_hook(lambda m, inp, out: captured.update(x=inp[0]))  # returns None: output kept
    net(x)
    normed = net.input_norm(x.transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(captured["x"], normed[:, :6].reshape(1, 3, 4))


def test_confused_pairs_and_default_fft():
    cm = np.array([[5, 3, 0], [0, 4, 1], [2, 0, 7]])
    assert kws.confused_pairs(cm, ["a", "b", "c"], top=2) == [("a", "b", 3), ("c", "a", 2)]
    args = kws.parse_args([])
    assert (feat.default_stft(8000, args.n_fft, args.hop_length) == (256, 80)
            and feat.default_stft(16000, args.n_fft, args.hop_length) == (512, 160))


def test_mixup_step_matches_a_by_hand_mixture():
    """mixup_step = the network on lam*x + (1-lam)*x[perm] with the loss mixed by the same lam; the lam and
    perm are those drawn from the torch RNG (Beta(alpha, alpha), then a permutation)."""
    torch.manual_seed(5)
    model = kws.KwsModel(_features("logmel"), kws.build_model("cnn_lstm", 32, 3, hidden=8, layers=1)).eval()
    wav, y = torch.randn(4, 8000), torch.tensor([0, 1, 2, 1])
    crit = torch.nn.CrossEntropyLoss()
    torch.manual_seed(2)
    logits, loss = kws.mixup_step(model, wav, y, crit, alpha=0.4)
    torch.manual_seed(2)
    lam = float(torch.distributions.Beta(0.4, 0.4).sample())
    perm = torch.randperm(4)
    x = model.features(wav)
    ref_logits = model.net(lam * x + (1 - lam) * x[perm])
    torch.testing.assert_close(logits, ref_logits)
    torch.testing.assert_close(loss, lam * crit(ref_logits, y) + (1 - lam) * crit(ref_logits, y[perm]))
    assert 0.01 < lam < 0.99 and not torch.equal(perm, torch.arange(4))   # a real mixture in this draw
    assert not torch.allclose(logits, model.net(x))                        # ... which changes the output


@pytest.mark.parametrize("n_features", [8, 13, 40, 64])
def test_cnn_lstm_pools_time_by_4_and_frequency_by_8(n_features):
    """Two 2x2 poolings then one frequency-only pooling: the BiLSTM sees T // 4 steps of
    C' * (F // 8) values, for MFCC-sized and log-mel-sized inputs alike."""
    net = kws.build_model("cnn_lstm", n_features, 5, hidden=8).eval()
    x = net.conv(torch.randn(3, 1, n_features, 101))
    assert x.shape == (3, 64, n_features // 4 // 2, 101 // 4)
    assert net.proj.in_features == 64 * (n_features // 4 // 2)
    assert net(torch.randn(3, 101, n_features)).shape == (3, 5)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("argv, message", [
    (["--models", "lstm,transformer"], "unknown ['transformer']"),
    (["--augment", "reverb"], "unknown ['reverb']"),
    (["--dataset", "fsdd", "--data-root", "/nonexistent/place"], "not found"),
    (["--models", "cnn_lstm", "--n-mels", "4"], "at least 8 bins"),
])
def test_bad_input_is_a_clear_error(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main_guard(kws.main, argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--dropout", "1.5"], "argument --dropout: must be in [0, 1), got 1.5"),
    (["--mixup", "-1"], "argument --mixup: must be in [0, inf), got -1"),
    (["--speed-perturb", "0.5"], "argument --speed-perturb: must be in [0, 0.5), got 0.5"),
    (["--max-wavs", "-1"], "argument --max-wavs: must be in [0, inf), got -1"),
    (["--synthetic-voices", "two"], "argument --synthetic-voices: must be an integer, got 'two'"),
])
def test_out_of_range_flags_are_refused_by_argparse(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:        # usage + one "error:" line, before any work
        kws.parse_args(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


# ----------------------------------------------------------------------------- end to end
def test_quick_run_end_to_end(run_script, tmp_path):
    proc = run_script("speechcommands_rnn.py", "--quick", "--models", "rnn,cnn_lstm")
    out = tmp_path / "outputs" / "speechcommands_rnn"
    assert "SYNTHETIC" in proc.stdout
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("speechcommands_rnn on synthetic_keywords [SYNTHETIC DATA]: test accuracy")
    m = json.loads((out / "metrics.json").read_text())
    assert m["data_source"] == "synthetic" and m["dataset"] == "synthetic_keywords"
    assert m["tested_checkpoint"] == "best"
    for name in ("rnn", "cnn_lstm"):
        assert 0.0 <= m[f"test_accuracy_{name}"] <= 1.0 and m[f"n_params_{name}"] > 0
        assert (out / f"confusion_{name}.png").exists() and (out / f"curves_{name}.png").exists()
        assert (out / "checkpoints" / f"{name}.pt").exists() and (out / "checkpoints" / f"{name}_best.pt").exists()
        log = list(csv.DictReader(open(out / f"log_{name}.csv")))
        assert [int(r["epoch"]) for r in log] == [1, 2] and "val_accuracy" in log[0]
        # synthetic default: validation voices are unseen, so the best-validation epoch is tested (first maximum)
        val = [float(r["val_accuracy"]) for r in log]
        assert m[f"tested_epoch_{name}"] == 1 + val.index(max(val))
        assert "precision" in (out / f"report_{name}.txt").read_text()
    for fig in ("explore_waveforms", "explore_durations", "explore_class_counts", "explore_features",
                "confusion_all", "comparison"):
        assert (out / f"{fig}.png").exists(), fig
    rows = list(csv.DictReader(open(out / "comparison.csv")))
    assert [r["model"] for r in rows] == ["rnn", "cnn_lstm"]
    assert [int(r["tested_epoch"]) for r in rows] == [m["tested_epoch_rnn"], m["tested_epoch_cnn_lstm"]]
    assert float(rows[0]["test_acc"]) == pytest.approx(m["test_accuracy_rnn"], abs=1e-4)
    counts = list(csv.DictReader(open(out / "class_counts.csv")))
    assert len(counts) == 10 and sum(int(r["test"]) for r in counts) == m["n_test_clips"]
    # misclassified test clips as 16-bit WAV, named by true and predicted class (--quick keeps 3 per model)
    wavs = list((out / "misclassified").rglob("*.wav"))
    expected = sum(min(round((1 - m[f"test_accuracy_{n}"]) * m["n_test_clips"]), 3) for n in ("rnn", "cnn_lstm"))
    assert len(wavs) == expected
    assert all("_true-" in w.name and "_pred-" in w.name and sf.info(str(w)).subtype == "PCM_16" for w in wavs)


def test_experiment_grid_quick(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUDIOLAB_DATA", raising=False)
    kws.main(["--quick", "--experiment", "augment", "--experiment-model", "rnn"])
    out = tmp_path / "outputs" / "speechcommands_rnn"
    rows = list(csv.DictReader(open(out / "experiment_augment.csv")))
    assert [r["setting"] for r in rows] == ["none", "all", "only freq_mask"]
    assert (out / "experiment_augment.png").exists()
    m = json.loads((out / "metrics.json").read_text())
    assert m["experiment_augment_best_setting"] in {r["setting"] for r in rows}
    assert m["data_source"] == "synthetic"


@pytest.mark.parametrize("dataset, flags, expected", [
    ("fsdd", [], "last"),  # validation = the training speakers' own recordings
    ("fsdd", ["--val-speaker", "lucas"], "best"),  # a whole speaker validates: speaker-independent
    ("fsdd", ["--test-checkpoint", "best"], "best"),
    ("speech_commands", [], "best"),
    ("synthetic_keywords", ["--test-checkpoint", "last"], "last"),
])
def test_tested_checkpoint_default_follows_the_validation_set(dataset, flags, expected):
    data = kd.KwsData(name=dataset, source="real", sample_rate=8000, labels=[], clips=[])
    assert kws.tested_checkpoint(kws.parse_args(["train", *flags]), data) == expected


@pytest.mark.parametrize("dataset, flags, expected", [
    # FSDD and the synthetic default keep the FSDD-chosen settings: all six augmentations, mixup, 15 epochs
    ("fsdd", [], (15, kd.MIXUP_ALPHA, sorted(kd.AUGMENTATIONS), 30.0)),
    ("synthetic_keywords", [], (15, kd.MIXUP_ALPHA, sorted(kd.AUGMENTATIONS), 30.0)),
    # Speech Commands' validation-chosen values (experiments/keywords_speech_commands.md)
    ("speech_commands", [], (30, 0.0, ["freq_mask", "noise", "shift", "time_mask"], 30.0)),
    # a flag given on the command line always wins over the dataset's default
    ("speech_commands", ["--epochs", "3", "--mixup", "0.2", "--augment", "speed,none", "--trim-db", "20"],
     (3, 0.2, ["speed"], 20.0)),
    ("fsdd", ["--augment", "none", "--trim-db", "0"], (15, kd.MIXUP_ALPHA, [], 0.0)),
])
def test_dataset_defaults_fill_only_the_flags_not_given(dataset, flags, expected):
    args = kd.apply_dataset_defaults(kws.parse_args(["train", *flags]), dataset)
    assert (args.epochs, args.mixup, args.augment_set, args.trim_db) == expected


@pytest.mark.realdata
def test_quick_run_on_real_fsdd(shared_data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--quick", "--dataset", "fsdd", "--data-root", str(shared_data), "--test-speaker", "jackson",
            "--models", "gru"]
    kws.main(argv)
    out = tmp_path / "outputs" / "speechcommands_rnn"
    m = json.loads((out / "metrics.json").read_text())
    assert m["data_source"] == "real" and m["dataset"] == "fsdd" and m["n_classes"] == 10
    # FSDD validated on the training speakers: the final weights (checkpoints/gru.pt) are the ones tested
    assert m["tested_checkpoint"] == "last" and m["tested_epoch_gru"] == 2
    args = kws.parse_args(argv)
    data = kd.load_keywords(args, small=args.quick)
    n_samples = kws.clip_samples(args, data)
    features = kws.make_features(args, data, n_samples)  # as train_one: the model sized by features.n_features
    model = kws.KwsModel(features, kws.model_from_args("gru", args, features.n_features, len(data.labels)))
    model.load_state_dict(load_checkpoint(out / "checkpoints" / "gru.pt")["model"])
    y, p, _, _ = kws.predict(model, kws.make_loaders(args, data, n_samples, [])["test"], "cpu")
    assert float((y == p).mean()) == pytest.approx(m["test_accuracy_gru"], abs=1e-9)
    assert m["n_test_clips"] == 100  # --quick keeps recordings x0 and x1 of every digit: 10 digits x 10 of jackson's
    assert "SYNTHETIC" not in capsys.readouterr().out
    assert "fsdd" in (out / "report_gru.txt").read_text()
    anchors = json.loads((out / "anchors.json").read_text())
    assert {a["metric"] for a in anchors} == {"test_accuracy_cnn_lstm", "test_accuracy_lstm"}


# ----------------------------------------------------------------------------- canonical test-set layout
from test_kws_data import SPEAKER_IDS, make_test_set_layout


def _sc_root(tmp_path: Path, **kw) -> Path:
    """A data root holding a tiny test-set layout and an FSDD folder (Speech Commands must win)."""
    root = tmp_path / "data"
    make_test_set_layout(root / "speech_commands_test_v0.02", **kw)
    (root / "fsdd" / "recordings").mkdir(parents=True)
    for d in range(2):
        sf.write(root / "fsdd" / "recordings" / f"{d}_george_0.wav", np.zeros(4000, np.float32), 8000)
    return root


def test_auto_finds_the_test_set_layout_and_splits_it_by_speaker(tmp_path, monkeypatch, capsys):
    root = _sc_root(tmp_path)
    other = make_test_set_layout(tmp_path / "other_speakers", n_speakers=32)
    for k in range(20):  # keep only the 12 speakers the training folder does not have
        for p in other.rglob(f"*{SPEAKER_IDS[k]}*"):
            p.unlink()
    monkeypatch.chdir(tmp_path)
    kws.main(["--quick", "--data-root", str(root), "--models", "rnn", "--test-set", str(other)])
    out = tmp_path / "outputs" / "speechcommands_rnn"
    m = json.loads((out / "metrics.json").read_text())
    assert m["dataset"] == "speech_commands" and m["n_classes"] == 4  # yes, no, _unknown_, _silence_
    assert m["n_speakers_in_two_splits"] == 0 and m["n_duplicate_groups_across_splits"] == 0
    assert (m["n_speakers_train"], m["n_speakers_val"], m["n_speakers_test"]) == (16, 2, 2)
    spk = list(csv.DictReader(open(out / "speakers.csv")))
    assert len({r["speaker"] for r in spk if not r["speaker"].startswith("_silence_")}) == 20
    assert m["test_set_n_clips"] == 12 * 3 + 20 and m["test_set_missing_classes"] == []
    assert 0.0 <= m["test_set_accuracy_rnn"] <= 1.0 and 0.0 <= m["test_set_macro_f1_rnn"] <= 1.0
    # the reported test-set accuracy is the checkpoint's accuracy on every clip of the folder
    args = kws.parse_args(["--quick", "--data-root", str(root), "--models", "rnn"])
    data = kd.load_keywords(args, small=args.quick)
    ts = speech_commands.load_test_set_layout(other, progress=False)
    features = kws.make_features(args, data, 16000)
    model = kws.KwsModel(features, kws.model_from_args("rnn", args, features.n_features, len(data.labels)))
    model.load_state_dict(load_checkpoint(out / "checkpoints" / "rnn_best.pt")["model"])
    res = kws.score_test_set({"model": model, "name": "rnn"}, ts, data, 16000, "cpu")
    assert res["test_set_accuracy_rnn"] == pytest.approx(m["test_set_accuracy_rnn"], abs=1e-9)
    assert "test set rnn=" in capsys.readouterr().out


@pytest.mark.parametrize("change, message", [
    ("extra_class", "classes the model does not know: ['left']"),
    ("same_folder", "is the folder the model trains on"),
    ("not_layout", "not a folder in the Speech Commands test-set layout"),
])
def test_test_set_mismatch_is_a_clear_error(change, message, tmp_path, monkeypatch, capsys):
    root = _sc_root(tmp_path, n_speakers=20)
    other = make_test_set_layout(tmp_path / "other", n_speakers=2, words=("yes", "no", "left"))
    for p in other.rglob("*"):  # new speakers
        if p.is_file() and not p.parent.name == "_silence_":
            p.rename(p.with_name(p.name.replace("1a2b", "9f9f")))
    test_set = {"extra_class": other, "same_folder": root / "speech_commands_test_v0.02", "not_layout": tmp_path}
    monkeypatch.chdir(tmp_path)
    argv = ["--quick", "--data-root", str(root), "--models", "rnn", "--test-set", str(test_set[change])]
    assert main_guard(kws.main, argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "outputs" / "speechcommands_rnn" / "checkpoints").exists()  # refused before training


def test_too_few_speakers_or_near_empty_split_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "data"
    make_test_set_layout(root / "speech_commands_test", n_speakers=2, n_silence=4)
    assert main_guard(kws.main, ["train", "--quick", "--data-root", str(root)]) == 2
    assert "needs at least 3 speakers" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--n-fft", "32000"], "--n-fft 32000 is larger than the 1 s clip window"),
    (["--hop-length", "20000"], "--hop-length 20000 is larger than"),
    (["--hop-length", "8000"], "--hop-length 8000 leaves 3 frames"),
])
def test_stft_larger_than_the_clip_is_a_clear_error(argv, message, tmp_path, monkeypatch, capsys):
    root = _sc_root(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main_guard(kws.main, ["train", "--quick", "--data-root", str(root), "--models", "cnn_lstm", *argv]) == 2
    assert message in capsys.readouterr().err


def test_long_clip_is_reported_and_cropped(tmp_path, capsys):
    root = _sc_root(tmp_path)
    long = root / "speech_commands_test_v0.02" / "yes" / "abcdef01_nohash_0.flac"
    sf.write(long, _tone_16k(60.0), 16000, subtype="PCM_16")
    args = kws.parse_args(["train", "--quick", "--data-root", str(root), "--max-per-class", "100"])
    data = kd.load_keywords(args, small=args.quick)
    clip = next(c for c in data.clips if c.path == str(long))
    assert len(clip.wav) <= 4 * 16000
    assert f"cropped: {long}: 60.0 s long" in capsys.readouterr().out
    assert any(p == str(long) and "centre-cropped" in why for p, why in data.issues)


def _tone_16k(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_multi_model_run_killed_in_its_second_model_resumes(tmp_path, monkeypatch):
    root = _sc_root(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--quick", "--data-root", str(root), "--models", "rnn,gru,lstm", "--epochs", "2"]
    real_fit = kws.fit

    def killed_in_gru(model, optimizer, loader, step, epochs, **kw):
        if kw["desc"] == "gru":  # one epoch of gru, then Ctrl-C
            calls = []

            def interrupted(m, batch):
                calls.append(1)
                if len(calls) > len(loader):
                    raise KeyboardInterrupt
                return step(m, batch)
            return real_fit(model, optimizer, loader, interrupted, epochs, **kw)
        return real_fit(model, optimizer, loader, step, epochs, **kw)

    monkeypatch.setattr(kws, "fit", killed_in_gru)
    assert main_guard(kws.main, argv) == 130
    ckpt = tmp_path / "outputs" / "speechcommands_rnn" / "checkpoints"
    rnn_before = load_checkpoint(ckpt / "rnn.pt")
    assert load_checkpoint(ckpt / "gru.pt")["epoch"] == 1 and not (ckpt / "lstm.pt").exists()
    monkeypatch.setattr(kws, "fit", real_fit)
    # another data split or other settings are refused
    assert main_guard(kws.main, [*argv, "--resume", "--seed", "5"]) == 2
    kws.main([*argv, "--resume"])
    rnn_after = load_checkpoint(ckpt / "rnn.pt")
    assert rnn_after["epoch"] == 2 and all(torch.equal(rnn_before["model"][k], v)
                                           for k, v in rnn_after["model"].items())  # finished: kept, not retrained
    assert load_checkpoint(ckpt / "gru.pt")["epoch"] == 2 and load_checkpoint(ckpt / "lstm.pt")["epoch"] == 2
    gru_log = list(csv.DictReader(open(ckpt.parent / "log_gru.csv")))
    assert [int(r["epoch"]) for r in gru_log] == [1, 2]
    m = json.loads((ckpt.parent / "metrics.json").read_text())
    assert {f"test_accuracy_{n}" for n in ("rnn", "gru", "lstm")} <= set(m)


@pytest.mark.realdata
def test_quick_run_on_real_speech_commands_test_set(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kws.main(["--quick", "--data-root", str(shared_data), "--models", "lstm"])
    m = json.loads((tmp_path / "outputs" / "speechcommands_rnn" / "metrics.json").read_text())
    assert m["dataset"] == "speech_commands" and m["data_source"] == "real" and m["n_classes"] == 12
    assert m["n_speakers_in_two_splits"] == 0 and m["n_duplicate_groups_across_splits"] == 0
    assert m["n_duplicate_groups"] >= 0 and min(m["n_speakers_val"], m["n_speakers_test"]) >= 1
    assert m["n_speakers_train"] + m["n_speakers_val"] + m["n_speakers_test"] <= 180  # --quick: 20 clips a class
