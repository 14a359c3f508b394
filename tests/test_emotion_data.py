"""Tests of audiolab/emotion_data.py: corpus layouts on fixture trees, bad input, splits, text, synthesis."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiolab import emotion_data as ed
from audiolab.runtime import UserError


def tone(path: Path, sample_rate: int = 16000, seconds: float = 0.25, channels: int = 1, freq: float = 220.0):
    """Write a short sine (any rate, mono or stereo) and return its mono waveform at the file's rate."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    x = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    sf.write(path, np.stack([x] * channels, axis=1) if channels > 1 else x, sample_rate)
    return x


# ----------------------------------------------------------------------------- text
def test_normalize_transcript_rules():
    assert ed.normalize_transcript("Un attimo dopo s'è incamminato ... ed è inciampato.") == \
        "un attimo dopo s'è incamminato ed è inciampato"
    assert ed.normalize_transcript("  'Quoted'  words, it’s OK! ") == "quoted words it's ok"
    assert ed.normalize_transcript("Partirà per la Spagna, metà", strip_accents=True) == "partira per la spagna meta"
    assert ed.normalize_transcript("Tüten, Stück") == "tüten stück"


def test_char_vocab_roundtrip_and_oov():
    vocab = ed.CharVocab.from_texts(["ciao mondo", "là"])
    assert vocab.chars[0] == "<blank>" and vocab.blank == 0
    ids = vocab.encode("ciao là")
    assert 0 not in ids and vocab.decode(ids) == "ciao là"
    oov = Counter()
    assert vocab.decode(vocab.encode("ciaoè!", oov)) == "ciao"
    assert oov == Counter({"è": 1, "!": 1})
    with pytest.raises(UserError):
        ed.CharVocab.from_texts([""])


# ----------------------------------------------------------------------------- layouts
def test_emovo_layout_resamples_and_downmixes(tmp_path):
    root = tmp_path / "emovo"
    tone(root / "f1" / "dis-f1-b1.wav", sample_rate=48000, channels=2)
    tone(root / "m3" / "tri-m3-l1.wav", sample_rate=16000)
    tone(root / "documents" / "readme.wav")                       # not an EMOVO name: ignored, counted
    examples, report = ed.load_corpus("emovo", root, sample_rate=16000, verbose=False)
    assert report["files_recognised"] == 2 and report["files_unrecognised"] == 1
    by_spk = {ex.speaker: ex for ex in examples}
    assert by_spk["f1"].transcript == ed.EMOVO_SENTENCES["b1"] and by_spk["f1"].emotion == "disgust"
    assert by_spk["m3"].emotion == "sadness" and by_spk["m3"].transcript.startswith("L'autunno")
    assert by_spk["f1"].waveform.ndim == 1 and abs(len(by_spk["f1"].waveform) - 4000) <= 2
    wav, sr, text, emo, spk = ed.EmotionSpeechDataset(examples)[0]
    assert wav.shape[0] == 1 and sr == 16000 and isinstance(text, str)


@pytest.mark.parametrize("name, files, expected", [
    ("cremad", ["AudioWAV/1001_DFA_ANG_XX.wav", "AudioWAV/1091_TSI_SAD_HI.wav"],
     {("1001", "Don't forget a jacket.", "anger"), ("1091", "The surface is slick.", "sadness")}),
    ("ravdess", ["Actor_12/03-01-05-01-02-01-12.wav", "Actor_01/03-01-01-01-01-02-01.wav",
                 "Actor_01/03-02-03-01-01-01-01.wav"],               # the last is song: excluded
     {("actor12", "Dogs are sitting by the door.", "anger"), ("actor01", "Kids are talking by the door.", "neutral")}),
    ("tess", ["OAF_angry/OAF_back_angry.wav", "YAF_pleasant_surprised/YAF_bean_ps.wav"],
     {("OAF", "Say the word back.", "anger"), ("YAF", "Say the word bean.", "surprise")}),
    ("emodb", ["wav/03a01Fa.wav", "wav/16b10Tb.wav"],
     {("speaker03", ed.EMODB_SENTENCES["a01"], "happiness"), ("speaker16", ed.EMODB_SENTENCES["b10"], "sadness")}),
])
def test_public_layouts(tmp_path, name, files, expected):
    for f in files:
        tone(tmp_path / name / f, sample_rate=22050)
    listing = ed.list_corpus(name, tmp_path / name)
    assert {(it.speaker, it.transcript, it.emotion) for it in listing.items} == expected
    if name == "ravdess":
        assert sum(listing.excluded.values()) == 1
    # the dataset finder recognises the folder under a data root
    assert ed.find_corpus(name, tmp_path) == tmp_path / name


def test_iemocap_torchaudio_layout(tmp_path):
    session = tmp_path / "IEMOCAP" / "Session1"
    tone(session / "sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav")
    tone(session / "sentences/wav/Ses01F_impro01/Ses01F_impro01_M001.wav")
    tone(session / "sentences/wav/Ses01F_impro01/Ses01F_impro01_M002.wav")
    (session / "dialog/EmoEvaluation").mkdir(parents=True)
    (session / "dialog/EmoEvaluation/Ses01F_impro01.txt").write_text(
        "% header\n[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5, 2.5, 2.5]\n"
        "[10.0 - 11.0]\tSes01F_impro01_M001\texc\t[3, 3, 3]\n[12.0 - 13.0]\tSes01F_impro01_M002\tfru\t[2, 3, 3]\n")
    (session / "dialog/transcriptions").mkdir(parents=True)
    (session / "dialog/transcriptions/Ses01F_impro01.txt").write_text(
        "Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.\n"
        "Ses01F_impro01_M001 [010.0000-011.0000]: Yeah. [LAUGHTER] Sure.\n"
        "Ses01F_impro01_M002 [012.0000-013.0000]: No.\n")
    listing = ed.list_corpus("iemocap", tmp_path)
    got = {(it.speaker, it.transcript, it.emotion) for it in listing.items}
    assert got == {("Ses01_F", "Excuse me.", "neutral"), ("Ses01_M", "Yeah.   Sure.", "happiness")}
    assert sum(listing.excluded.values()) == 1                      # "fru" is outside the 4 classes


def test_csv_manifest(tmp_path):
    tone(tmp_path / "a.flac")
    tone(tmp_path / "sub" / "b.wav", sample_rate=8000, channels=2)
    (tmp_path / "m.csv").write_text("path,transcript,emotion,speaker\na.flac,hello there,happy,s1\n"
                                    "sub/b.wav,good bye,sad,s2\n")
    examples, report = ed.load_corpus("csv", tmp_path / "m.csv", sample_rate=16000, verbose=False)
    assert [(e.transcript, e.emotion, e.speaker) for e in examples] == [("hello there", "happy", "s1"),
                                                                         ("good bye", "sad", "s2")]
    assert abs(len(examples[1].waveform) - 4000) <= 2                # 8 kHz stereo -> 16 kHz mono
    (tmp_path / "bad.csv").write_text("file,text\nx.wav,hi\n")
    with pytest.raises(UserError, match="path,transcript,emotion,speaker"):
        ed.list_corpus("csv", tmp_path / "bad.csv")


# ----------------------------------------------------------------------------- bad input
def test_unreadable_empty_and_silent_files_are_skipped(tmp_path, capsys):
    root = tmp_path / "emovo"
    tone(root / "f1" / "neu-f1-b1.wav")
    (root / "f1" / "neu-f1-b2.wav").write_bytes(b"this is not audio")
    sf.write(root / "f1" / "neu-f1-b3.wav", np.zeros(0, dtype=np.float32), 16000)
    sf.write(root / "f1" / "neu-f1-d1.wav", np.zeros(800, dtype=np.float32), 16000)
    examples, report = ed.load_corpus("emovo", root, verbose=False)
    assert [Path(e.path).name for e in examples] == ["neu-f1-b1.wav"]
    assert report["files_skipped_unreadable"] == 3
    out = capsys.readouterr().out
    for name in ("neu-f1-b2.wav", "neu-f1-b3.wav", "neu-f1-d1.wav"):
        assert name in out


def test_folder_without_recognised_files_names_the_layout(tmp_path):
    tone(tmp_path / "emovo" / "clip.wav")
    with pytest.raises(UserError, match=r"expected the layout <actor>/<emo>-<actor>-<sentence>\.wav"):
        ed.list_corpus("emovo", tmp_path / "emovo")
    with pytest.raises(UserError, match="does not exist"):
        ed.list_corpus("tess", tmp_path / "nowhere")


# ----------------------------------------------------------------------------- splits
def test_speaker_split_is_disjoint_seeded_and_large_enough():
    speakers = [f"s{i % 7}" for i in range(140)]
    train, test = ed.speaker_split(speakers, 0.2, seed=3)
    assert sorted(train + test) == list(range(140))
    assert not {speakers[i] for i in train} & {speakers[i] for i in test}
    assert len(test) >= 0.2 * 140 and len(train) > 0
    assert ed.speaker_split(speakers, 0.2, seed=3) == (train, test)
    with pytest.raises(UserError, match="at least two speakers"):
        ed.speaker_split(["a"] * 5)


def test_leave_speakers_out_and_random_split():
    speakers = ["f1", "f2", "m1", "f1"]
    assert ed.leave_speakers_out(speakers, ["f1"]) == ([1, 2], [0, 3])
    with pytest.raises(UserError, match="not in the data"):
        ed.leave_speakers_out(speakers, ["m9"])
    train, test = ed.random_split(50, 0.2, seed=0)
    assert len(test) == 10 and sorted(train + test) == list(range(50))


# ----------------------------------------------------------------------------- synthetic
def test_synthetic_prosody_follows_the_emotion():
    """Same speaker and sentence in all five emotions: sadness slower and softer than anger, fear higher."""
    exs = ed.synthesize_emotional_speech(n_speakers=1, sentences=ed.SYNTH_SENTENCES[:1], per_sentence=5,
                                         seed=1, snr_db=(60.0, 60.0), progress=False)
    by = {e.emotion: e for e in exs}
    assert set(by) == set(ed.EMOTION_PROSODY) and all(e.transcript == ed.SYNTH_SENTENCES[0] for e in exs)
    rms = {k: float(np.sqrt(np.mean(v.waveform ** 2))) for k, v in by.items()}
    dur = {k: len(v.waveform) for k, v in by.items()}
    assert dur["sadness"] > dur["neutral"] > dur["fear"]
    assert rms["anger"] > rms["neutral"] > rms["sadness"]


def test_synthetic_corpus_size_and_balance():
    exs = ed.synthesize_emotional_speech(n_speakers=2, sentences=ed.SYNTH_SENTENCES[:5], per_sentence=1, seed=0,
                                         progress=False)
    assert len(exs) == 10 and len({e.speaker for e in exs}) == 2
    assert set(Counter(e.emotion for e in exs).values()) == {2}     # rotation balances the five emotions
    assert len(ed.SYNTH_SENTENCES) >= 20 and len(ed.EMOTION_PROSODY) >= 4
    with pytest.raises(UserError):
        ed.synthesize_emotional_speech(emotions=["boredom"], progress=False)


# ----------------------------------------------------------------------------- real EMOVO
@pytest.mark.realdata
def test_real_emovo_listing(shared_data):
    listing = ed.list_corpus("emovo", shared_data / "emovo")
    assert len(listing.items) == 392                                # the 3 original-format copies are duplicates
    assert {it.speaker for it in listing.items} == {"f1", "f2", "m1", "m2"}
    assert len({it.emotion for it in listing.items}) == 7 and len({it.transcript for it in listing.items}) == 14


@pytest.mark.realdata
def test_real_emovo_original_wav_matches_reencoded_flac(shared_data):
    """The untouched 48 kHz stereo original, resampled and down-mixed, matches the 16 kHz FLAC copy."""
    from audiolab.io import load_audio

    orig, sr = load_audio(shared_data / "emovo/original_format/dis-f1-b1.wav", sample_rate=16000)
    flac, _ = load_audio(shared_data / "emovo/f1/dis-f1-b1.flac")
    n = min(len(orig), len(flac))
    assert sr == 16000 and abs(len(orig) - len(flac)) <= 16
    assert np.corrcoef(orig[:n], flac[:n])[0, 1] > 0.95
