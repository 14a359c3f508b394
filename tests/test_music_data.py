"""Tests of audiolab.data.music: MIR-1K channel convention, bad files, split protocol, synthetic songs."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from audiolab.data.music import (StemError, find_irmas_voi, find_mir1k, load_songs_from_stereo, load_stereo_stems,
                                 mir1k_files, synthetic_songs)

SR = 16000


def tone(freq: float, seconds: float = 0.5, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_stereo(path, left: np.ndarray, right: np.ndarray, sr: int = SR):
    sf.write(path, np.stack([left, right], axis=1), sr)
    return path


def dominant_hz(x: np.ndarray, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[spec.argmax()])


def test_stereo_stems_left_accompaniment_right_voice(tmp_path):
    path = write_stereo(tmp_path / "amy_1_01.flac", tone(220), tone(880))
    vocals, accompaniment = load_stereo_stems(path, SR)
    assert dominant_hz(vocals) == pytest.approx(880, abs=3)
    assert dominant_hz(accompaniment) == pytest.approx(220, abs=3)
    # resampling on load keeps the pitch
    vocals8k, _ = load_stereo_stems(path, 8000)
    assert len(vocals8k) == len(vocals) // 2
    assert dominant_hz(vocals8k, 8000) == pytest.approx(880, abs=3)


def test_mono_and_broken_files_are_reported_and_skipped(tmp_path, capsys):
    good = write_stereo(tmp_path / "abjones_1_01.wav", tone(220), tone(440))
    mono = tmp_path / "abjones_1_02.wav"
    sf.write(mono, tone(440), SR)
    broken = tmp_path / "abjones_1_03.wav"
    broken.write_bytes(b"RIFF not really a wave file")
    with pytest.raises(StemError, match="stereo"):
        load_stereo_stems(mono, SR)
    skipped: list = []
    songs = load_songs_from_stereo([good, mono, broken], SR, skipped)
    assert [s.name for s in songs] == ["abjones_1_01"]
    assert {p.name for p, _ in skipped} == {"abjones_1_02.wav", "abjones_1_03.wav"}
    assert "abjones_1_02.wav" in capsys.readouterr().out
    with pytest.raises(StemError, match="no usable stereo"):
        load_songs_from_stereo([mono], SR)


def test_mir1k_layouts_and_singer_split(tmp_path):
    wavfile = tmp_path / "MIR-1K" / "Wavfile"
    wavfile.mkdir(parents=True)
    for name in ("abjones_1_01", "amy_2_03", "Ani_1_01", "yifen_3_02"):
        write_stereo(wavfile / f"{name}.wav", tone(220, 0.1), tone(440, 0.1))
    root = find_mir1k(tmp_path)
    assert root == tmp_path / "MIR-1K"
    assert [p.stem for p in mir1k_files(root, "train")] == ["abjones_1_01", "amy_2_03"]
    assert [p.stem for p in mir1k_files(root, "test")] == ["Ani_1_01", "yifen_3_02"]
    split = tmp_path / "other" / "mir1k"
    for sub in ("train", "test"):
        (split / sub).mkdir(parents=True)
        write_stereo(split / sub / "x_1_01.flac", tone(220, 0.1), tone(440, 0.1))
    assert find_mir1k(tmp_path / "other") == split
    assert find_mir1k(tmp_path / "nothing") is None
    assert find_irmas_voi(tmp_path) is None


def test_synthetic_songs_properties():
    songs = synthetic_songs(2, seconds=2.0, sample_rate=SR, seed=5)
    again = synthetic_songs(2, seconds=2.0, sample_rate=SR, seed=5)
    np.testing.assert_array_equal(songs[0].vocals, again[0].vocals)
    s = songs[0]
    assert s.vocals.shape == s.accompaniment.shape == (2 * SR,)
    assert s.vocals.dtype == np.float32 and np.abs(s.vocals).max() <= 0.51
    assert not np.allclose(songs[0].vocals, songs[1].vocals)
    # the voice is a sung pitch (fundamental 100-700 Hz); the accompaniment has bass energy below 150 Hz
    f0 = [dominant_hz(s.vocals[i:i + 4096]) for i in range(0, 2 * SR - 4096, 4096)]
    assert np.median(f0) > 100 and np.median(f0) < 2500
    spec = np.abs(np.fft.rfft(s.accompaniment)) ** 2
    freqs = np.fft.rfftfreq(len(s.accompaniment), 1 / SR)
    spec_v = np.abs(np.fft.rfft(s.vocals)) ** 2
    assert spec[freqs < 150].sum() / spec.sum() > spec_v[freqs < 150].sum() / spec_v.sum()


@pytest.mark.realdata
def test_real_mir1k_clip(shared_data):
    root = find_mir1k(shared_data)
    if root is None:
        pytest.skip("MIR-1K not in the shared data")
    train, test = mir1k_files(root, "train"), mir1k_files(root, "test")
    # every clip of the folders, no more (the shared copy holds Huang et al.'s whole training set: 175 / 63)
    for split, files in (("train", train), ("test", test)):
        on_disk = sorted(p for p in (root / split).iterdir() if p.suffix.lower() in (".wav", ".flac"))
        assert sorted(files) == on_disk and len(files) >= 63
    assert all(p.name.split("_")[0] in ("abjones", "amy") for p in train)
    vocals, accompaniment = load_stereo_stems(test[0], SR)
    assert vocals.shape == accompaniment.shape and len(vocals) > SR
    # two different stems, not a duplicated channel
    corr = np.corrcoef(vocals, accompaniment)[0, 1]
    assert abs(corr) < 0.5
