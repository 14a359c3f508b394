"""Tests for audiolab.data.keywords: loaders (Speech Commands, FSDD, synthetic), splits, bad input, augmentation."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiolab.data import fsdd, speech_commands as sc, synthetic_keywords as synkw
from audiolab.data import keywords as kd
from audiolab.augment import waveform
from audiolab.augment.spectrogram import SpecAugment
from audiolab.core.runtime import UserError


def _tone(seconds=1.0, sr=16000, f=440.0, amp=0.3, channels=1):
    t = np.arange(int(seconds * sr)) / sr
    x = (amp * np.sin(2 * np.pi * f * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def _fake_speech_commands(root: Path, lists: bool = True) -> Path:
    """A tiny Speech Commands folder: yes/no/cat, background noise, lists naming one missing file."""
    folder = root / "SpeechCommands" / "speech_commands_v0.02"
    for word, f in (("yes", 300.0), ("no", 600.0), ("cat", 900.0)):
        (folder / word).mkdir(parents=True)
        for spk in ("aaaa1111", "bbbb2222", "cccc3333"):
            sf.write(folder / word / f"{spk}_nohash_0.wav", _tone(f=f), 16000, subtype="PCM_16")
    (folder / "_background_noise_").mkdir()
    rng = np.random.default_rng(0)
    sf.write(folder / "_background_noise_" / "white.wav", (0.1 * rng.standard_normal(16000 * 20)).astype(np.float32),
             16000, subtype="PCM_16")
    if lists:
        (folder / "validation_list.txt").write_text("yes/bbbb2222_nohash_0.wav\nno/bbbb2222_nohash_0.wav\n"
                                                    "cat/bbbb2222_nohash_0.wav\n")
        (folder / "testing_list.txt").write_text("yes/cccc3333_nohash_0.wav\nno/cccc3333_nohash_0.wav\n"
                                                 "cat/cccc3333_nohash_0.wav\nyes/dddd4444_nohash_9.wav\n")
    return folder


# ----------------------------------------------------------------------------- Speech Commands
def test_which_set_is_per_speaker_and_near_10_10_80():
    rng = np.random.default_rng(0)
    names = ["".join(rng.choice(list(string.hexdigits[:16]), 8)) for _ in range(4000)]
    sets = [sc.which_set(f"{n}_nohash_0.wav") for n in names]
    # all clips of one speaker land in the same split, whatever the utterance number or word folder
    assert all(sc.which_set(f"yes/{n}_nohash_3.wav") == s for n, s in zip(names[:200], sets))
    frac = {k: sets.count(k) / len(sets) for k in ("training", "validation", "testing")}
    assert 0.08 < frac["validation"] < 0.12 and 0.08 < frac["testing"] < 0.12, frac
    # percentages move the boundary monotonically
    assert sum(sc.which_set(f"{n}_nohash_0.wav", 30, 30) != "training" for n in names) > 0.55 * len(names)


def test_official_lists_used_and_missing_file_reported(tmp_path, capsys):
    folder = _fake_speech_commands(tmp_path)
    issues = []
    splits = sc.official_split_files(folder, issues)
    names = {k: sorted(f"{p.parent.name}/{p.name}" for p in v) for k, v in splits.items()}
    assert names["val"] == ["cat/bbbb2222_nohash_0.wav", "no/bbbb2222_nohash_0.wav", "yes/bbbb2222_nohash_0.wav"]
    assert "yes/dddd4444_nohash_9.wav" not in names["test"] and len(names["test"]) == 3
    assert len(names["train"]) == 3 and all("aaaa1111" in n for n in names["train"])
    assert any("dddd4444" in p and "missing" in why for p, why in issues)
    assert "missing" in capsys.readouterr().out
    assert sc.find_speech_commands(tmp_path) == folder


def test_load_speech_commands_unknown_silence_and_bad_files(tmp_path):
    folder = _fake_speech_commands(tmp_path)
    # bad input: a stereo 44.1 kHz clip, a truncated WAV, an unreadable file
    sf.write(folder / "yes" / "eeee5555_nohash_0.wav", _tone(sr=44100, channels=2), 44100, subtype="PCM_16")
    sf.write(folder / "no" / "ffff6666_nohash_0.wav", _tone(), 16000, subtype="PCM_16")
    raw = (folder / "no" / "ffff6666_nohash_0.wav").read_bytes()
    (folder / "no" / "ffff6666_nohash_0.wav").write_bytes(raw[: len(raw) // 2])
    (folder / "yes" / "gggg7777_nohash_0.wav").write_bytes(b"not a wav file at all")
    data = sc.load_speech_commands(folder, ["yes", "no"], unknown=True, silence=True, progress=False)
    assert data.labels == ["yes", "no", kd.UNKNOWN, kd.SILENCE]
    assert all(len(c.wav.shape) == 1 and c.wav.dtype == np.float32 for c in data.clips)
    problems = " | ".join(f"{Path(p).name}: {why}" for p, why in data.issues)
    assert "eeee5555_nohash_0.wav: sample rate 44100 Hz" in problems and "2 channels" in problems
    assert "ffff6666_nohash_0.wav: truncated" in problems
    assert "gggg7777_nohash_0.wav: unreadable" in problems
    stereo = next(c for c in data.clips if "eeee5555" in c.path)
    assert stereo.orig_sample_rate == 44100 and stereo.orig_channels == 2 and len(stereo.wav) == 16000
    trunc = next(c for c in data.clips if "ffff6666" in c.path)
    assert 7000 < len(trunc.wav) < 8100  # kept with what it holds
    unknown = [c for c in data.clips if c.label == kd.UNKNOWN]
    assert unknown and all("/cat/" in c.path for c in unknown)
    sil = [c for c in data.clips if c.label == kd.SILENCE]
    assert {c.split for c in sil} == {"train", "val", "test"} and all(len(c.wav) == 16000 for c in sil)
    # the speaker never crosses splits
    by_speaker = {}
    for c in data.clips:
        if c.label != kd.SILENCE:
            by_speaker.setdefault(c.speaker, set()).add(c.split)
    assert all(len(s) == 1 for s in by_speaker.values())


def test_speech_commands_without_lists_uses_hash_rule(tmp_path):
    folder = _fake_speech_commands(tmp_path, lists=False)
    data = sc.load_speech_commands(folder, ["yes", "no", "cat"], progress=False)
    want = {"training": "train", "validation": "val", "testing": "test"}
    assert all(c.split == want[sc.which_set(c.path)] for c in data.clips)
    assert "hash" in " ".join(data.notes)
    with pytest.raises(UserError, match="no clips of the words"):
        sc.load_speech_commands(folder, ["dog"], progress=False)


def test_wav_declared_frames(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, _tone(0.5), 16000, subtype="PCM_16")
    assert kd.wav_declared_frames(path) == sf.info(str(path)).frames == 8000
    path.write_bytes(path.read_bytes()[:-1000])
    assert kd.wav_declared_frames(path) == 8000 > sf.info(str(path)).frames
    (tmp_path / "b.wav").write_bytes(b"junk")
    assert kd.wav_declared_frames(tmp_path / "b.wav") is None


# ----------------------------------------------------------------------------- FSDD
def _fake_fsdd(root: Path, speakers=("ann", "bob", "cy"), n=6) -> Path:
    folder = root / "fsdd" / "recordings"
    folder.mkdir(parents=True)
    for spk in speakers:
        for d in range(10):
            for i in range(n):
                sf.write(folder / f"{d}_{spk}_{i}.wav", _tone(0.3, 8000, 200 + 50 * d), 8000, subtype="PCM_16")
    (folder / "readme.wav").write_bytes(b"x")
    return folder


def test_fsdd_whole_speaker_split(tmp_path, capsys):
    folder = _fake_fsdd(tmp_path)
    assert fsdd.find_fsdd(tmp_path) == folder
    data = fsdd.load_fsdd(folder, test_speaker="bob", progress=False)
    assert "readme.wav" in capsys.readouterr().out  # bad name reported
    assert {c.speaker for c in data.split("test")} == {"bob"}
    assert "bob" not in {c.speaker for c in data.split("train") + data.split("val")}
    val_idx = {int(Path(c.path).stem.split("_")[2]) for c in data.split("val")}
    assert val_idx == set(range(5))
    assert len(data.split("test")) == 60 and len(data.split("val")) == 100 and len(data.split("train")) == 20
    assert data.labels == kd.DIGIT_WORDS and data.sample_rate == 8000
    assert fsdd.fsdd_speakers(folder) == ["ann", "bob", "cy"]
    with pytest.raises(UserError, match="not in the data"):
        fsdd.load_fsdd(folder, test_speaker="zed", progress=False)
    # speaker-independent validation: a second whole speaker
    fsdd.fsdd_speaker_split(data, "bob", val_speaker="ann")
    assert {c.speaker for c in data.split("val")} == {"ann"} and {c.speaker for c in data.split("train")} == {"cy"}
    with pytest.raises(UserError, match="val-speaker"):
        fsdd.fsdd_speaker_split(data, "bob", val_speaker="bob")


@pytest.mark.realdata
def test_real_fsdd_and_speech_commands_mini(shared_data):
    folder = fsdd.find_fsdd(shared_data)
    assert folder is not None
    data = fsdd.load_fsdd(folder, test_speaker="george", progress=False)
    assert len(data.clips) == 2000 and not data.issues
    assert {c.orig_sample_rate for c in data.clips} == {8000}
    assert len(data.split("test")) == 500 and {c.speaker for c in data.split("test")} == {"george"}
    counts = data.counts()
    assert all(v == 50 for v in counts["test"].values())
    mini = sc.load_speech_commands(shared_data / "speech_commands_mini", kd.DIGIT_WORDS, progress=False)
    assert len(mini.clips) == 30 and mini.sample_rate == 16000
    assert sorted({c.label for c in mini.clips}) == sorted(kd.DIGIT_WORDS)
    assert all(c.split == {"training": "train", "validation": "val", "testing": "test"}[sc.which_set(c.path)]
               for c in mini.clips)
    noise = kd.find_noise_dir(shared_data)
    assert noise is not None and len(kd.load_noise_bank(noise, 8000)) == 6


# ----------------------------------------------------------------------------- synthetic
def test_synthetic_keywords_split_by_voice():
    voices = ["m1", synkw.SYNTH_VAL_VOICES[0], synkw.SYNTH_TEST_VOICES[0]]
    data = synkw.make_synthetic_keywords(["yes", "no"], 2, voices=voices, seed=1, progress=False)
    assert data.source == "synthetic" and len(data.clips) == 12
    assert {c.speaker for c in data.split("test")} == {synkw.SYNTH_TEST_VOICES[0]}
    assert {c.speaker for c in data.split("val")} == {synkw.SYNTH_VAL_VOICES[0]}
    assert all(len(c.wav) == 16000 and np.abs(c.wav).max() <= 1.0 for c in data.clips)
    again = synkw.make_synthetic_keywords(["yes", "no"], 2, voices=voices, seed=1, progress=False)
    # eSpeak NG renderings vary by a few samples between calls, so compare the design, not the samples
    assert [(c.label, c.speaker, c.split) for c in data.clips] == [(c.label, c.speaker, c.split) for c in again.clips]


def test_synthetic_voices_only_join_the_training_split(tmp_path):
    data = fsdd.load_fsdd(_fake_fsdd(tmp_path), test_speaker="bob", progress=False)
    before = {s: [(c.path, c.label) for c in data.split(s)] for s in kd.SPLITS}
    added = synkw.add_synthetic_voices(data, 1, voices=["m1", "f2"], progress=False)
    assert added == 2 * len(kd.DIGIT_WORDS)
    new = [c for c in data.clips if c.path.startswith("synthetic:")]
    assert len(new) == added and all(c.split == "train" and c.speaker.startswith("espeak:") for c in new)
    assert sorted(c.label for c in new) == sorted(kd.DIGIT_WORDS * 2)
    assert all(len(c.wav) == data.sample_rate and np.abs(c.wav).max() > 0.01 for c in new)  # 1 s at 8 kHz, not silent
    for s in ("val", "test"):  # evaluation splits stay real and unchanged
        assert [(c.path, c.label) for c in data.split(s)] == before[s]
    assert any("synthetic" in n for n in data.notes)
    data.labels = data.labels + [kd.UNKNOWN]  # classes eSpeak cannot say get no clips
    assert synkw.add_synthetic_voices(data, 1, voices=["m1"], progress=False) == len(kd.DIGIT_WORDS)
    assert synkw.add_synthetic_voices(data, 0, progress=False) == 0


# ----------------------------------------------------------------------------- batching / augmentation
def test_pad_collate_centres_and_crops():
    col = kd.PadCollate(10)
    short, long_ = torch.arange(1, 5, dtype=torch.float32), torch.arange(20, dtype=torch.float32)
    wav, labels, lengths, idx = col([(short, 1, 0), (long_, 2, 1)])
    assert wav.shape == (2, 10) and labels.tolist() == [1, 2] and lengths.tolist() == [4, 10]
    assert wav[0].tolist() == [0, 0, 0, 1, 2, 3, 4, 0, 0, 0]
    assert wav[1].tolist() == list(range(5, 15))
    rnd = kd.PadCollate(10, random_crop=True, seed=0)
    starts = {int(rnd.fit(long_)[0]) for _ in range(50)}
    assert len(starts) > 3 and all(0 <= s <= 10 for s in starts)
    with pytest.raises(ValueError):
        kd.PadCollate(0)


def test_time_shift_matches_roll_with_zero_fill():
    x = np.arange(1, 11, dtype=np.float32)
    assert waveform.time_shift(x, 3).tolist() == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    assert waveform.time_shift(x, -2).tolist() == [3, 4, 5, 6, 7, 8, 9, 10, 0, 0]
    assert waveform.time_shift(x, 0).tolist() == x.tolist()


def test_speed_perturb_scales_duration_and_pitch():
    sr = 8000
    x = _tone(1.0, sr, 500.0)
    y = waveform.speed_perturb(x, 1.25, sr)
    assert abs(len(y) - len(x) / 1.25) <= 2
    freq = np.argmax(np.abs(np.fft.rfft(y))) * sr / len(y)
    assert abs(freq - 625.0) < 5.0
    assert waveform.speed_perturb(x, 1.0, sr) is x


def test_trim_silence_keeps_the_word_and_a_margin():
    sr = 8000
    rng = np.random.default_rng(0)
    word = _tone(0.3, sr, 500.0)
    floor = (1e-4 * rng.standard_normal(int(0.4 * sr))).astype(np.float32)  # about -77 dB re the tone
    x = np.concatenate([floor, word, floor[: int(0.2 * sr)]])
    y = waveform.trim_silence(x, sr, top_db=30.0, margin_s=0.03)
    # the word (0.3 s) is kept whole, with about 30 ms on each side (frames are 25 ms / 10 ms hop)
    assert 0.3 * sr <= len(y) <= (0.3 + 2 * 0.03 + 0.04) * sr
    start = int(np.flatnonzero(np.abs(y) > 0.1)[0])
    assert 0.01 * sr <= start <= 0.06 * sr
    silent = np.zeros(800, np.float32)
    assert waveform.trim_silence(silent, sr) is silent
    # _silence_ clips are left alone by trim_clips
    data = kd.KwsData("t", "real", sr, ["yes", kd.SILENCE],
                      [kd.Clip(x.copy(), "yes", "s", "train", "a", sr),
                       kd.Clip(x.copy(), kd.SILENCE, "n", "train", "b", sr)])
    kd.trim_clips(data, 30.0)
    assert len(data.clips[0].wav) < len(x) and len(data.clips[1].wav) == len(x)


def test_add_noise_hits_the_snr():
    rng = np.random.default_rng(0)
    x = _tone(1.0, 8000)
    noise = [rng.standard_normal(20000).astype(np.float32)]
    y = waveform.add_noise(x, noise, 10.0, rng)
    snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean((y - x).astype(np.float64) ** 2))
    assert abs(snr - 10.0) < 0.05
    silent = np.zeros(100, np.float32)
    assert waveform.add_noise(silent, noise, 10.0, rng) is silent


def test_dataset_augments_only_when_asked():
    clips = [kd.Clip(_tone(0.5, 8000), "yes", "s", "train", "p", 8000)]
    plain = kd.KwsDataset(clips, ["yes", "no"], 8000)
    wav, label, i = plain[0]
    assert label == 0 and i == 0 and np.array_equal(wav.numpy(), clips[0].wav)
    aug = kd.KwsDataset(clips, ["yes", "no"], 8000, augment=waveform.WaveAugment(noise_prob=1.0),
                        noises=kd.synthetic_noise_bank(8000), seed=0)
    assert not np.array_equal(aug[0][0].numpy()[:3900], clips[0].wav[:3900])
    with pytest.raises(ValueError, match="not among the classes"):
        kd.KwsDataset(clips, ["no"], 8000)


def test_spec_augment_masks_and_stretch_keep_shape():
    torch.manual_seed(0)
    sa = SpecAugment(129, 80, stretch=(0.8, 0.8), freq_mask=4, time_mask=10, stretch_prob=1.0)
    feats = torch.ones(8, 20, 101)
    masked = sa.mask(feats)
    assert masked.shape == feats.shape and (masked == 0).any() and (masked == 1).any()
    assert not torch.equal(masked[0], masked[1])  # independent masks per clip
    wav = torch.randn(2, 8000)
    spec = torch.stft(wav, 256, 80, window=torch.hann_window(256), return_complex=True)
    out = sa.stretch(spec)
    assert out.shape == spec.shape and out.is_complex()
    # a 0.8x rate makes the clip longer: the centre crop differs from the input
    assert not torch.allclose(out.abs(), spec.abs())


# ----------------------------------------------------------------------------- canonical test-set layout
SPEAKER_IDS = [f"{k:08x}" for k in range(0x1a2b0000, 0x1a2b0000 + 40)]


def make_test_set_layout(folder: Path, n_speakers: int = 20, words=("yes", "no"), n_silence: int = 20,
                         ext: str = "flac", sr: int = 16000) -> Path:
    """A tiny folder in the canonical Speech Commands test-set layout: a tone per class (its pitch moved a
    little per speaker), ``_unknown_/<word>_<speaker>_nohash_0``, ``_silence_/<n>`` (white noise)."""
    rng = np.random.default_rng(len(words) + n_speakers)
    base = {w: 300.0 * (i + 1) for i, w in enumerate(words)}
    for k, spk in enumerate(SPEAKER_IDS[:n_speakers]):
        shift = 1.0 + 0.01 * k
        for w in words:
            (folder / w).mkdir(parents=True, exist_ok=True)
            sf.write(folder / w / f"{spk}_nohash_0.{ext}", _tone(sr=sr, f=base[w] * shift), sr, subtype="PCM_16")
        (folder / kd.UNKNOWN).mkdir(parents=True, exist_ok=True)
        sf.write(folder / kd.UNKNOWN / f"cat_{spk}_nohash_0.{ext}", _tone(sr=sr, f=2500.0 * shift), sr,
                 subtype="PCM_16")
    (folder / kd.SILENCE).mkdir(parents=True, exist_ok=True)
    for n in range(n_silence):
        sf.write(folder / kd.SILENCE / f"{n}.{ext}", (0.05 * rng.standard_normal(sr)).astype(np.float32), sr,
                 subtype="PCM_16")
    return folder


def test_test_set_layout_loader_speakers_and_bad_files(tmp_path, capsys):
    folder = make_test_set_layout(tmp_path / "speech_commands_test_v0.02", n_speakers=4)
    assert sc.is_test_set_layout(folder) and sc.find_speech_commands(tmp_path) == folder
    (folder / "left").mkdir()  # an empty class folder
    sf.write(folder / kd.UNKNOWN / "catnohash.flac", _tone(), 16000)  # speaker cannot be parsed
    sf.write(folder / "yes" / "ffff0000_nohash_0.wav", _tone(sr=8000, channels=2), 8000)  # other rate, stereo, WAV
    nan = _tone()
    nan[100] = np.nan
    sf.write(folder / "no" / "eeee0000_nohash_0.wav", nan, 16000, subtype="FLOAT")
    (folder / "no" / "dddd0000_nohash_0.flac").write_bytes(b"not audio")
    sf.write(folder / "no" / "cccc0000_nohash_0.flac", _tone(seconds=0.5), 16000)  # another length
    dup = folder / "yes" / f"{SPEAKER_IDS[0]}_nohash_1.flac"
    dup.write_bytes((folder / "yes" / f"{SPEAKER_IDS[0]}_nohash_0.flac").read_bytes())
    data = sc.load_test_set_layout(folder, progress=False)
    assert data.labels == ["yes", "no", kd.UNKNOWN, kd.SILENCE]  # the empty "left" is not a class
    problems = {}
    for p, why in data.issues:
        problems[Path(p).name] = problems.get(Path(p).name, "") + why + "; "
    assert "no audio clips" in problems["left"]
    assert "speaker cannot be parsed" in problems["catnohash.flac"]
    # reported (by audiolab.core.io.load_audio, or kws_data's own check) and skipped
    assert "NaN" in problems["eeee0000_nohash_0.wav"] and "skipped" in problems["eeee0000_nohash_0.wav"]
    assert "unreadable" in problems["dddd0000_nohash_0.flac"]
    assert "8000 Hz, resampled" in problems["ffff0000_nohash_0.wav"]
    assert "0.50 s long, not 1 s: kept" in problems["cccc0000_nohash_0.flac"]
    assert all(c.wav.dtype == np.float32 and np.all(np.isfinite(c.wav)) for c in data.clips)
    unknown = [c for c in data.clips if c.label == kd.UNKNOWN]
    assert sorted(c.speaker for c in unknown) == SPEAKER_IDS[:4]  # the field after the word
    assert len(data.clips) == 4 * 3 + 20 + 3  # + the resampled clip, the short one and the duplicate
    groups = kd.duplicate_groups(data.clips)
    assert [sorted(Path(c.path).name for c in g) for g in groups] == [[f"{SPEAKER_IDS[0]}_nohash_0.flac",
                                                                         dup.name]]
    assert "skipped" in capsys.readouterr().out


def test_find_prefers_the_full_release_over_the_test_set(tmp_path):
    make_test_set_layout(tmp_path / "speech_commands_test", n_speakers=3)
    release = _fake_speech_commands(tmp_path)
    assert sc.find_speech_commands(tmp_path) == release
    assert not sc.is_test_set_layout(release)  # it has validation_list.txt


def _clips(n_speakers: int, per_speaker: int = 3, n_silence: int = 30) -> list:
    wav = np.zeros(10, np.float32)
    clips = [kd.Clip(wav, "yes", f"s{k:03d}", "test", f"yes/s{k:03d}_nohash_{i}", 16000, sha1=f"{k}-{i}")
             for k in range(n_speakers) for i in range(per_speaker)]
    clips += [kd.Clip(wav, kd.SILENCE, f"{kd.SILENCE}/{i}", "test", f"{kd.SILENCE}/{i}", 16000, sha1=f"sil{i}")
              for i in range(n_silence)]
    return clips


def test_speaker_split_is_disjoint_seeded_and_80_10_10():
    data = kd.KwsData("speech_commands", "real", 16000, ["yes", kd.SILENCE], _clips(100))
    data.clips[1].sha1 = data.clips[0].sha1  # a byte-identical pair of one speaker
    kd.speaker_split(data, seed=3)
    splits_of = {}
    for c in data.clips:
        splits_of.setdefault(c.speaker, set()).add(c.split)
    assert all(len(v) == 1 for v in splits_of.values())  # no speaker in two splits
    n = {s: sum(1 for k, v in splits_of.items() if s in v and not k.startswith(kd.SILENCE)) for s in kd.SPLITS}
    assert n == {"train": 80, "val": 10, "test": 10}
    sil = [c.split for c in data.clips if c.label == kd.SILENCE]
    assert (sil.count("train"), sil.count("val"), sil.count("test")) == (24, 3, 3)
    again = kd.KwsData("speech_commands", "real", 16000, ["yes", kd.SILENCE], _clips(100))
    kd.speaker_split(again, seed=3)
    assert [c.split for c in again.clips] == [c.split for c in data.clips]
    other = kd.KwsData("speech_commands", "real", 16000, ["yes", kd.SILENCE], _clips(100))
    kd.speaker_split(other, seed=4)
    assert [c.split for c in other.clips] != [c.split for c in data.clips]
    with pytest.raises(UserError, match="at least 3 speakers"):
        kd.speaker_split(kd.KwsData("x", "real", 16000, ["yes"], _clips(2, n_silence=0)))


def test_duplicates_across_speakers_are_kept_in_one_split():
    data = kd.KwsData("speech_commands", "real", 16000, ["yes", kd.SILENCE], _clips(40, n_silence=0))
    for c in data.clips:
        c.sha1 = "same" if c.path.endswith("_nohash_0") else c.sha1  # one file under every speaker's name
    kd.speaker_split(data, seed=0)
    assert len({c.split for c in data.clips if c.sha1 == "same"}) == 1
    assert "moved" in data.notes[-1]


@pytest.mark.parametrize("train, val, test, ok", [(80, 10, 10, True), (1, 50, 49, False), (50, 50, 0, False),
                                                  (97, 1, 2, False)])
def test_check_splits_refuses_empty_or_nearly_empty(train, val, test, ok):
    wav = np.zeros(10, np.float32)
    clips = [kd.Clip(wav, "yes", "s", s, "p", 16000) for s, n in (("train", train), ("val", val), ("test", test))
             for _ in range(n)]
    data = kd.KwsData("speech_commands", "real", 16000, ["yes", "no"], clips)
    if ok:
        kd.check_splits(data)
    else:
        with pytest.raises(UserError, match="split of speech_commands holds"):
            kd.check_splits(data)


@pytest.mark.realdata
def test_real_speech_commands_test_set(shared_data):
    folder = sc.find_speech_commands(shared_data)
    assert folder is not None and sc.is_test_set_layout(folder)
    data = sc.load_test_set_layout(folder, progress=False)
    assert len(data.clips) == 3671 and not data.issues and len(data.labels) == 12
    assert len({c.speaker for c in data.clips if c.label != kd.SILENCE}) == 180
    groups = kd.duplicate_groups(data.clips)
    assert groups and all(len({(c.speaker, c.label) for c in g}) == 1 for g in groups)
    kd.speaker_split(data, seed=0)
    assert all(len({c.split for c in g}) == 1 for g in groups)
    spk = {}
    for c in data.clips:
        spk.setdefault(c.speaker, set()).add(c.split)
    assert all(len(v) == 1 for v in spk.values())
    kd.check_splits(data)
