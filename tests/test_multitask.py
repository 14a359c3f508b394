"""Tests of q2_multitask.py: lengths, CTC feasibility, pooling, padding invariance, end to end, bad input."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

import q2_multitask as mt
from audiolab.augment.spectrogram import mask_by_length, mel_warp, tempo_perturb, trim_silent_frames
from audiolab.core.runtime import UserError
from audiolab.data import multitask as mtdata
from audiolab.data.features import normalise_per_speaker
from audiolab.data.text import CharVocab


# ----------------------------------------------------------------------------- lengths and CTC feasibility
@pytest.mark.parametrize("subsample", [1, 2, 4])
def test_subsampled_length_matches_the_convolutions(subsample):
    model = mt.MultiTaskModel(n_mels=8, vocab_size=5, n_emotions=3, conv_channels=4, hidden=4, layers=1,
                              subsample=subsample)
    for T in [1, 2, 3, 4, 5, 7, 8, 9, 31, 100, 101]:
        got = model.subsampling(torch.zeros(1, 8, T)).shape[-1]
        assert int(mtdata.subsampled_length(torch.tensor([T]), subsample)[0]) == got


def test_ctc_min_frames_counts_repeats():
    assert mtdata.ctc_min_frames([1, 2, 3]) == 3
    assert mtdata.ctc_min_frames([1, 1, 2, 2, 2]) == 8            # three repeated neighbours need a blank each
    assert mtdata.ctc_min_frames([]) == 0


def test_infeasible_utterances_are_flagged_and_loss_stays_finite():
    torch.manual_seed(0)
    feats = [torch.randn(40, 8), torch.randn(40, 8)]            # 40 frames -> 10 after 4x subsampling
    data = mtdata.Utterances(feats, [[1, 2, 3], [1] * 8], [0, 1], subsample=4)
    assert data.out_lengths.tolist() == [10, 10]
    assert data.feasible.tolist() == [True, False]             # 8 identical labels need 15 frames
    model = mt.MultiTaskModel(8, 5, 2, conv_channels=8, hidden=8, layers=1, subsample=4)
    total, ctc, ce, _ = mt.task_losses(model, data.batch([0, 1]), lambda_emotion=0.5)
    assert math.isfinite(float(total.detach())) and math.isfinite(float(ctc.detach()))
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


# ----------------------------------------------------------------------------- model pieces
def test_attentive_pooling_ignores_padding_and_reduces_to_mean_std():
    torch.manual_seed(0)
    pool = mt.AttentiveStatsPooling(6, attn_dim=4)
    h = torch.randn(1, 5, 6)
    padded = torch.cat([h, 100 * torch.randn(1, 3, 6)], dim=1)
    a, _ = pool(h, torch.tensor([5]))
    b, alpha = pool(padded, torch.tensor([5]))
    assert torch.allclose(a, b, atol=1e-5) and float(alpha.detach()[0, 5:].abs().sum()) == 0
    for p in pool.score.parameters():                          # constant scores: uniform attention
        torch.nn.init.zeros_(p)
    out, _ = pool(h, torch.tensor([5]))
    assert torch.allclose(out[0, :6], h[0].mean(0), atol=1e-5)
    assert torch.allclose(out[0, 6:], h[0].std(0, unbiased=False), atol=1e-4)


@pytest.mark.parametrize("emotion_input", ["lstm", "conv+lstm"])
def test_model_outputs_do_not_depend_on_batch_padding(emotion_input):
    """An utterance gives the same log_probs and emotion logits alone and padded inside a batch."""
    torch.manual_seed(0)
    model = mt.MultiTaskModel(8, 6, 3, conv_channels=8, hidden=8, layers=2, subsample=2,
                              emotion_input=emotion_input).eval()
    short, long = torch.randn(1, 21, 8), torch.randn(1, 50, 8)
    batch = torch.cat([torch.cat([short, torch.zeros(1, 29, 8)], 1), long])
    with torch.no_grad():
        alone = model(short, torch.tensor([21]))
        both = model(batch, torch.tensor([21, 50]))
    T = int(alone["out_lengths"][0])
    assert both["out_lengths"].tolist() == [T, 25]
    assert torch.allclose(alone["log_probs"][:, 0], both["log_probs"][:T, 0], atol=1e-5)
    assert torch.allclose(alone["emotion_logits"][0], both["emotion_logits"][0], atol=1e-5)
    assert torch.allclose(both["log_probs"].exp().sum(-1), torch.ones(25, 2), atol=1e-5)


def test_conv_features_reach_the_emotion_head_directly():
    """With emotion_input="conv+lstm" the emotion logits change when the BiLSTM output is held fixed and
    only the convolutional features change; with "lstm" they cannot. A bad value is an error."""
    torch.manual_seed(0)
    x, L = torch.randn(1, 40, 8), torch.tensor([40])
    for emotion_input, should_change in (("lstm", False), ("conv+lstm", True)):
        model = mt.MultiTaskModel(8, 5, 3, conv_channels=8, hidden=8, layers=1, subsample=2,
                                  emotion_input=emotion_input).eval()
        fixed_h = torch.randn(1, 20, 16)
        model.lstm.forward = lambda packed, h=fixed_h: (                       # BiLSTM output pinned
            torch.nn.utils.rnn.pack_padded_sequence(h, [20], batch_first=True), None)
        with torch.no_grad():
            a = model(x, L)["emotion_logits"]
            b = model(x + torch.randn_like(x), L)["emotion_logits"]
        assert (not torch.allclose(a, b, atol=1e-6)) == should_change
    with pytest.raises(ValueError, match="emotion_input"):
        mt.MultiTaskModel(8, 5, 3, emotion_input="mfcc")


def test_attention_weights_are_a_distribution_over_valid_frames():
    torch.manual_seed(0)
    pool = mt.AttentiveStatsPooling(4, attn_dim=3)
    _, alpha = pool(torch.randn(3, 7, 4), torch.tensor([7, 4, 1]))
    assert torch.allclose(alpha.sum(1), torch.ones(3), atol=1e-6) and bool((alpha >= 0).all())
    assert float(alpha[1, 4:].sum()) == 0 and float(alpha[2, 0]) == pytest.approx(1.0)


def test_own_emotion_encoder_separates_the_task_layers():
    """emotion_encoder="own": CE reaches the emotion BiLSTM and the shared trunk, never the CTC BiLSTM;
    CTC never reaches the emotion BiLSTM. Outputs stay padding-independent."""
    torch.manual_seed(0)
    model = mt.MultiTaskModel(8, 6, 3, conv_channels=8, hidden=8, layers=1, subsample=2, emotion_encoder="own")
    x, L = torch.randn(2, 30, 8), torch.tensor([30, 22])
    x[1, 22:] = 0                                                                   # zero padding, as batches are
    out = model(x, L)

    def grads(loss):
        model.zero_grad()
        loss.backward(retain_graph=True)
        return {n: p.grad is not None and float(p.grad.abs().sum()) > 0 for n, p in model.named_parameters()}

    ce, ctc = grads(out["emotion_logits"].sum()), grads(out["log_probs"].sum())
    assert not any(v for n, v in ce.items() if n.startswith("lstm.")) and ce["emotion_lstm.weight_ih_l0"]
    assert not any(v for n, v in ctc.items() if n.startswith("emotion_lstm.")) and ctc["lstm.weight_ih_l0"]
    assert ce["subsampling.0.weight"] and ctc["subsampling.0.weight"]           # the shared trunk
    model.eval()
    with torch.no_grad():
        alone, both = model(x[1:, :22], L[1:]), model(x, L)
    assert torch.allclose(alone["emotion_logits"][0], both["emotion_logits"][1], atol=1e-5)
    with pytest.raises(ValueError, match="emotion_encoder"):
        mt.MultiTaskModel(8, 5, 3, emotion_encoder="separate")


@pytest.mark.parametrize("heads", ["asr", "emotion"])
def test_ablations_are_the_same_network_for_either_emotion_encoder(heads):
    """The single-task ablations do not depend on --emotion-encoder: same parameters for the same seed."""
    nets = []
    for enc in ("shared", "own"):
        torch.manual_seed(3)
        nets.append(mt.MultiTaskModel(8, 5, 3, conv_channels=4, hidden=4, layers=1, heads=heads,
                                      emotion_encoder=enc, uncertainty=True).state_dict())
    assert nets[0].keys() == nets[1].keys() and all(torch.equal(nets[0][k], nets[1][k]) for k in nets[0])


def test_uncertainty_weighting_matches_kendall():
    """log_vars = 0 gives CTC + CE; the loss is minimised over s at s = log(2 L) (weight 1 / (2 L))."""
    torch.manual_seed(0)
    model = mt.MultiTaskModel(8, 5, 3, conv_channels=4, hidden=4, layers=1, subsample=2, dropout=0.0,
                              uncertainty=True)
    batch = (torch.randn(2, 24, 8), torch.tensor([24, 20]), torch.tensor([[1, 2], [3, 0]]), torch.tensor([2, 1]),
             torch.tensor([0, 2]), torch.tensor([True, True]))
    total, ctc, ce, _ = mt.task_losses(model, batch, lambda_emotion=0.1)
    assert float(total) == pytest.approx(float(ctc + ce), rel=1e-5)
    with torch.no_grad():
        model.log_vars.copy_(torch.log(2 * torch.stack([ctc, ce]).detach()))
    total, ctc, ce, _ = mt.task_losses(model, batch, lambda_emotion=0.1)
    (g,) = torch.autograd.grad(total, model.log_vars)
    assert torch.allclose(g, torch.zeros(2), atol=1e-5)
    assert float(total) == pytest.approx(1.0 + 0.5 * float(torch.log(4 * ctc * ce)), rel=1e-4)
    model.eval()                                                                  # evaluation: plain sum
    assert float(mt.task_losses(model, batch, 0.1)[0]) == pytest.approx(float(ctc + 0.1 * ce), rel=1e-5)


def test_ablation_heads():
    asr = mt.MultiTaskModel(8, 5, 3, conv_channels=4, hidden=4, layers=1, heads="asr")
    emo = mt.MultiTaskModel(8, 5, 3, conv_channels=4, hidden=4, layers=1, heads="emotion")
    x, L = torch.randn(2, 30, 8), torch.tensor([30, 20])
    assert set(asr(x, L)) == {"out_lengths", "log_probs"}
    assert set(emo(x, L)) == {"out_lengths", "emotion_logits", "attention"}


def test_speaker_normalisation_and_one_cycle():
    torch.manual_seed(0)
    feats = [torch.randn(30, 4) * 3 + 5, torch.randn(20, 4) * 3 + 5, torch.randn(25, 4) - 2]
    normalise_per_speaker(feats, ["a", "a", "b"])
    a = torch.cat(feats[:2])
    assert torch.allclose(a.mean(0), torch.zeros(4), atol=1e-5) and torch.allclose(a.std(0), torch.ones(4), atol=1e-4)
    assert torch.allclose(feats[2].mean(0), torch.zeros(4), atol=1e-5)
    f = mt.one_cycle(10, warmup_fraction=0.2)
    factors = [f(e) for e in range(10)]
    assert factors[1] == 1.0 and factors[0] == 0.5 and factors[-1] < 0.1
    assert all(x >= y for x, y in zip(factors[1:], factors[2:]))


def test_spec_augment_masks_to_zero_without_touching_the_input():
    torch.manual_seed(0)
    x = torch.randn(2, 100, 20) + 10
    y = mask_by_length(x, torch.tensor([100, 60]), freq_width=5)
    assert (x > 5).all() and ((y == 0) | (y == x)).all() and (y == 0).any()


# ----------------------------------------------------------------------------- end to end
def test_quick_run_synthetic_with_ablation(run_script, tmp_path):
    proc = run_script("q2_multitask.py", "--quick", "--ablation", "--out-dir", "out", env={"OMP_NUM_THREADS": "1"})
    out = tmp_path / "out"
    m = json.loads((out / "metrics.json").read_text())
    assert m["data_source"] == "synthetic" and "SYNTHETIC" in proc.stdout
    for key in ("test_cer", "test_wer", "test_emotion_accuracy", "test_emotion_macro_f1", "asr_only_test_cer",
                "emotion_only_test_emotion_accuracy", "ctc_infeasible_train"):
        assert key in m and m[key] is not None
    assert 0 <= m["test_emotion_accuracy"] <= 1 and m["test_cer"] >= 0
    for name in ("training_curves.png", "confusion_matrix.png", "alignment.png", "log.csv", "checkpoint.pt",
                 "anchors.json", "alignment_utterance_synthetic.wav", "log_asr_only.csv"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader(open(out / "test_predictions.csv")))
    assert len(rows) == m["n_test_utterances"] and {"reference", "hypothesis", "true_emotion",
                                                     "predicted_emotion"} <= set(rows[0])
    assert "test_cer=" in proc.stdout.strip().splitlines()[-1]


def test_bad_inputs_are_clear_errors(tmp_path, monkeypatch, capsys):
    """Run in-process through main_guard (as the script does): exit status 2 and one clear message."""
    from audiolab.core.cli import main_guard

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUDIOLAB_DATA", raising=False)
    assert main_guard(mt.main, ["--dataset", "emovo", "--data-root", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "emovo" in err
    assert main_guard(mt.main, ["--dataset", "csv"]) == 2
    assert "--manifest" in capsys.readouterr().err
    sf.write(tmp_path / "a.wav", np.zeros(100, dtype=np.float32), 16000)
    (tmp_path / "m.csv").write_text("path,transcript\na.wav,hi\n")
    assert main_guard(mt.main, ["--manifest", str(tmp_path / "m.csv")]) == 2
    assert "path,transcript,emotion,speaker" in capsys.readouterr().err
    (tmp_path / "emovo").mkdir()
    sf.write(tmp_path / "emovo" / "take1.wav", 0.1 * np.ones(1600, dtype=np.float32), 16000)
    assert main_guard(mt.main, ["--dataset", "emovo", "--data-root", str(tmp_path)]) == 2
    assert "<actor>/<emo>-<actor>-<sentence>.wav" in capsys.readouterr().err
    assert main_guard(mt.main, ["--quick", "--test-speakers", "nobody"]) == 2
    assert "not in the data" in capsys.readouterr().err
    for flag, value, needle in [("--tempo", "0.7", "--tempo: must be in [0, 0.5)"),
                                ("--synthetic-voices", "-1", "--synthetic-voices: must be in [0, inf)"),
                                ("--test-fraction", "1", "--test-fraction: must be in (0, 1)"),
                                ("--lambda-emotion", "-0.1", "--lambda-emotion: must be in [0, 1000]")]:
        with pytest.raises(SystemExit) as exc:  # argparse rejects the value at parse time
            mt.main(["--quick", flag, value])
        assert exc.value.code == 2 and needle in capsys.readouterr().err


@pytest.mark.realdata
def test_quick_run_on_real_emovo(shared_data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    mt.main(["--quick", "--dataset", "emovo", "--data-root", str(shared_data), "--test-speakers", "m2",
             "--out-dir", "out", "--ablation"])
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["n_synthetic_train_utterances"] > 0 and m["synthetic_language"] == "it" and m["n_train_speakers"] == 3
    assert "emotion_only_test_emotion_accuracy" in m and "asr_only_test_cer" in m   # emotion-only skips them
    assert m["data_source"] == "real" and m["dataset"] == "emovo" and m["test_speakers"] == ["m2"]
    assert m["n_emotions"] == 7 and m["n_oov_characters"] == sum(m["oov_characters"].values())
    assert "SYNTHETIC" not in capsys.readouterr().out


def test_mel_warp_is_identity_at_zero_and_stretches_the_mel_axis():
    torch.manual_seed(0)
    x = torch.randn(3, 7, 40)
    assert torch.equal(mel_warp(x, 0.0), x)
    ramp = torch.arange(40, dtype=torch.float32).expand(4, 5, 40).contiguous()
    y = mel_warp(ramp, 0.2)
    assert (y.diff(dim=-1) >= -1e-6).all()                      # still monotone along mel
    slope = (y[:, 0, 10] - y[:, 0, 0]) / 10                      # = 1 / alpha, alpha in [0.8, 1.2]
    assert ((slope > 1 / 1.2 - 1e-4) & (slope < 1 / 0.8 + 1e-4)).all() and slope.std() > 0


def test_trim_silent_frames_keeps_the_loud_span():
    spec = torch.full((4, 20), 1e-9)
    spec[:, 6:15] = 1.0
    spec[:, 10] = 1e-7                                           # a pause inside is kept
    out = trim_silent_frames(spec, top_db=40)
    assert out.shape == (4, 9) and torch.equal(out, spec[:, 6:15])
    assert trim_silent_frames(spec[:, :8], top_db=40).shape[1] == 8   # < 5 frames would remain: keep all


def test_unlabelled_emotions_train_ctc_only():
    """Utterances with IGNORE_EMOTION (synthetic voices) add to the CTC term and not to the cross-entropy."""
    torch.manual_seed(0)
    feats = [torch.randn(40, 8) for _ in range(3)]
    model = mt.MultiTaskModel(8, 5, 2, conv_channels=8, hidden=8, layers=1, subsample=4).eval()  # no dropout
    mixed = mtdata.Utterances(feats, [[1, 2], [2, 3], [3, 4]], [0, mtdata.IGNORE_EMOTION, 1], subsample=4)
    labelled = mtdata.Utterances([feats[0], feats[2]], [[1, 2], [3, 4]], [0, 1], subsample=4)
    _, ctc_all, ce_mixed, _ = mt.task_losses(model, mixed.batch([0, 1, 2]), lambda_emotion=1.0)
    _, _, ce_labelled, _ = mt.task_losses(model, labelled.batch([0, 1]), lambda_emotion=1.0)
    assert torch.allclose(ce_mixed, ce_labelled, atol=1e-5)   # the batch's other items do not change pooling
    only_synth = mtdata.Utterances([feats[1]], [[2, 3]], [mtdata.IGNORE_EMOTION], subsample=4)
    total, ctc, ce, _ = mt.task_losses(model, only_synth.batch([0]), lambda_emotion=1.0)
    assert ce is None and torch.equal(total, ctc) and math.isfinite(float(ctc.detach()))


def test_synthetic_voices_join_the_training_split_only(tmp_path):
    """--synthetic-voices: eSpeak NG (Italian for EMOVO) says each training sentence; test stays real."""
    from audiolab.data import emotion as ed

    real = [ed.Example(np.zeros(1600, np.float32), 16000, t, "neutral", s, f"{s}/{k}.wav")
            for k, (t, s) in enumerate([("Gli operai si alzano presto.", "f1"), ("Vorrei il numero telefonico.", "f1"),
                                        ("Gli operai si alzano presto.", "m1")])]
    args = mtdata.DataConfig.from_args(mt.build_parser().parse_args(["--synthetic-voices", "2"]))
    examples = list(real)
    train_idx, language = mtdata.add_synthetic_voices(args, examples, [0, 1], "emovo", synthetic=False)
    assert language == "it" and len(examples) == 3 + 2 * 2 * 2          # 2 voices x 2 sentences x 2 renderings
    assert train_idx == [0, 1, *range(3, 11)] and examples[2] is real[2]   # the test utterance is untouched
    extra = examples[3:]
    assert {ex.transcript for ex in extra} == {"Gli operai si alzano presto.", "Vorrei il numero telefonico."}
    assert all(ex.speaker.startswith("espeak_") and ex.path.startswith("synthetic:") for ex in extra)
    assert all(ex.waveform.size > 1600 and np.abs(ex.waveform).max() > 0.01 for ex in extra)
    assert len({ex.speaker for ex in extra}) == 2
    off = mtdata.DataConfig.from_args(mt.build_parser().parse_args(["--synthetic-voices", "0"]))
    assert mtdata.add_synthetic_voices(off, list(real), [0, 1], "emovo", synthetic=False) == ([0, 1], None)
    default = mtdata.DataConfig.from_args(mt.build_parser().parse_args([]))  # CSV: no known language, none added
    assert mtdata.add_synthetic_voices(default, list(real), [0, 1], "csv", synthetic=False) == ([0, 1], None)
    with pytest.raises(UserError, match="--synthetic-language"):
        mtdata.add_synthetic_voices(args, list(real), [0, 1], "csv", synthetic=False)


def test_labelled_subset_drops_synthetic_voices():
    feats = [torch.randn(12, 4) for _ in range(3)]
    data = mtdata.Utterances(feats, [[1], [2], [3]], [2, mtdata.IGNORE_EMOTION, 0], subsample=2)
    sub = data.labelled()
    assert len(sub) == 2 and sub.emotions.tolist() == [2, 0] and sub.targets == [[1], [3]]
    assert sub.feats[1] is feats[2] and sub.out_lengths.tolist() == data.out_lengths[[0, 2]].tolist()


def test_tempo_perturb_resamples_time_and_lengths_together():
    feats = torch.arange(50, dtype=torch.float32)[None, :, None].repeat(2, 1, 3)   # a ramp along time
    lengths = torch.tensor([50, 30])
    same, same_len = tempo_perturb(feats, lengths, 0.0)
    assert same is feats and same_len is lengths
    torch.manual_seed(3)
    out, new_len = tempo_perturb(feats, lengths, 0.2)
    T_new = out.shape[1]
    rate = T_new / 50
    assert T_new != 50 and 0.8 <= rate <= 1.2
    assert torch.allclose(out[0, :, 0], torch.linspace(0, 49, T_new), atol=1e-4)   # linear resampling
    assert new_len[0] == T_new and abs(int(new_len[1]) - 30 * rate) <= 1


# ------------------------------------------------------------ faults and clips without a whole transcript
def _tiny_manifest(tmp_path, rows, name="m.csv"):
    """Write one tone per distinct path (pitch by emotion; its own phase, so no two clips are the same audio, which
    a train/test split refuses) and a manifest with ``rows`` (path, text, emotion, spk)."""
    pitch = {"anger": 330.0, "sadness": 150.0}
    for k, (path, _, emotion, _) in enumerate(rows):
        if not (tmp_path / path).exists():
            t = np.arange(8000) / 16000
            f0 = pitch.get(emotion.strip().lower(), 220.0)
            sf.write(tmp_path / path, (0.3 * np.sin(2 * np.pi * f0 * t + 0.1 * k)).astype(np.float32), 16000)
    (tmp_path / name).write_text("path,transcript,emotion,speaker\n" + "".join(",".join(r) + "\n" for r in rows))
    return tmp_path / name


def test_heads_see_the_right_clips_and_faults_are_reported(tmp_path, monkeypatch, capsys):
    """Empty transcripts train/score emotion only and are called empty; a NaN clip is skipped by path; an exact
    duplicate row is counted once; ANGER and anger are one class; the majority-class level is recorded."""
    monkeypatch.chdir(tmp_path)
    rows = []
    for spk in ("s1", "s2", "s3"):
        for k in range(4):
            emo = "anger" if k % 2 == 0 else "sadness"
            rows.append((f"{spk}_{k}.wav", "" if k == 3 else "ab ba", emo.upper() if k == 0 else emo, spk))
    rows.append(rows[0])                                                    # exact duplicate row
    t = np.arange(8000) / 16000
    bad = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    bad[10] = np.inf
    sf.write(tmp_path / "s3_inf.wav", bad, 16000, subtype="FLOAT")
    rows.append(("s3_inf.wav", "ab", "anger", "s3"))
    manifest = _tiny_manifest(tmp_path, rows)
    mt.main(["--quick", "--manifest", str(manifest), "--test-speakers", "s3", "--out-dir", "out"])
    out = capsys.readouterr().out
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["n_emotions"] == 2 and m["emotions"] == ["anger", "sadness"]
    assert m["n_test_utterances"] == m["n_emotion_test_utterances"] == 4      # the inf clip is not among them
    assert m["n_cer_test_utterances"] == 3                                    # s3_3 has an empty transcript
    assert m["n_emotion_train_utterances"] == 8 and m["n_ctc_train_utterances"] == 6
    assert m["ctc_infeasible_train"] == 0 and m["data_files_skipped_unreadable"] == 1
    assert m["emotion_majority_accuracy"] == 0.5 and "s3_inf.wav" in out and "row 14 repeats row 2" in out
    assert "no whole transcript" in out and "too long" not in out
    rows_out = list(csv.DictReader(open(tmp_path / "out" / "test_predictions.csv")))
    assert sorted(r["transcript_complete"] for r in rows_out) == ["0", "1", "1", "1"]


def test_evaluate_scores_cer_on_whole_transcripts_only():
    torch.manual_seed(0)
    feats = [torch.randn(40, 8) for _ in range(3)]
    data = mtdata.Utterances(feats, [[1, 2], [], [2, 1]], [0, 1, 0], subsample=4)
    vocab = CharVocab(["a", "b"])
    model = mt.MultiTaskModel(8, len(vocab), 2, conv_channels=8, hidden=8, layers=1, subsample=4)
    res = mt.evaluate(model, data, vocab, ["ab", None, "ba"], torch.device("cpu"))
    import jiwer
    assert res["n_scored_transcripts"] == 2
    assert res["cer"] == pytest.approx(jiwer.cer(["ab", "ba"], [res["hyps"][0], res["hyps"][2]]))
    none = mt.evaluate(model, data, vocab, [None, None, None], torch.device("cpu"))
    assert none["n_scored_transcripts"] == 0 and math.isnan(none["cer"])


def test_split_and_frame_size_faults_exit_2(tmp_path, monkeypatch, capsys):
    from audiolab.core.cli import main_guard

    monkeypatch.chdir(tmp_path)
    rows = [(f"{s}_{k}.wav", "ab", "anger" if k % 2 else "sadness", s) for s in ("s1", "s2") for k in range(3)]
    rows.append(("s3_0.wav", "ab", "anger", "s3"))
    manifest = _tiny_manifest(tmp_path, rows)
    assert main_guard(mt.main, ["--quick", "--manifest", str(manifest), "--test-speakers", "s3"]) == 2
    assert "test split holds 1 utterance(s)" in capsys.readouterr().err
    assert main_guard(mt.main, ["--quick", "--manifest", str(manifest), "--test-speakers", "s1",
                                "--exclude-speakers", "s2,s3"]) == 2
    assert "no training speaker left" in capsys.readouterr().err
    assert main_guard(mt.main, ["--quick", "--manifest", str(manifest), "--n-fft", "20000", "--hop-length", "160"]) == 2
    err = capsys.readouterr().err
    assert "--n-fft 20000" in err and "choose --n-fft <= 8000" in err
    assert main_guard(mt.main, ["--quick", "--manifest", str(manifest), "--hop-length", "800"]) == 2
    assert "--hop-length 800 exceeds --n-fft 400" in capsys.readouterr().err
    clash = _tiny_manifest(tmp_path, rows + [("s1_0.wav", "ab", "anger", "s1")], name="clash.csv")
    assert main_guard(mt.main, ["--quick", "--manifest", str(clash)]) == 2
    assert "s1_0.wav twice with different labels" in capsys.readouterr().err


def test_check_split_warns_about_rare_and_test_only_classes(capsys):
    emotions = ["anger"] * 6 + ["fear"] + ["anger", "boredom"]
    warnings = mtdata.check_split(list(range(7)), [7, 8], emotions)
    assert any("'boredom' is in the test split" in w for w in warnings)
    assert any("'fear' has only 1 training" in w for w in warnings)
    assert "WARNING" in capsys.readouterr().out
    with pytest.raises(UserError, match="training split holds 1"):
        mtdata.check_split([0], [7, 8], emotions)


@pytest.mark.realdata
def test_quick_run_on_real_emodb_counts_each_head(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mt.main(["--quick", "--dataset", "emodb", "--data-root", str(shared_data), "--test-speakers", "speaker03",
             "--synthetic-voices", "0", "--out-dir", "out"])
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["dataset"] == "emodb" and m["data_files_transcript_complete"] < m["data_files_recognised"]
    assert m["n_cer_test_utterances"] < m["n_emotion_test_utterances"] == m["n_test_utterances"]
    assert m["n_ctc_train_utterances"] < m["n_emotion_train_utterances"]
