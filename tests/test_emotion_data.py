"""Tests of audiolab/data/emotion*.py and data/text.py: corpus layouts, bad input, splits, text, synthesis."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiolab.data import emotion as ed
from audiolab.data.emotion_manifest import CANONICAL_EMOTIONS, normalize_emotion
from audiolab.data.emotion_synth import EMOTION_PROSODY, SYNTH_SENTENCES, synthesize_emotional_speech
from audiolab.data.text import CharVocab, normalize_transcript
from audiolab.data import splits
from audiolab.core.runtime import UserError


def tone(path: Path, sample_rate: int = 16000, seconds: float = 0.25, channels: int = 1, freq: float = 220.0):
    """Write a short sine (any rate, mono or stereo) and return its mono waveform at the file's rate."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    x = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    sf.write(path, np.stack([x] * channels, axis=1) if channels > 1 else x, sample_rate)
    return x


# ----------------------------------------------------------------------------- text
def test_normalize_transcript_rules():
    assert normalize_transcript("Un attimo dopo s'è incamminato ... ed è inciampato.") == \
        "un attimo dopo s'è incamminato ed è inciampato"
    assert normalize_transcript("  'Quoted'  words, it’s OK! ") == "quoted words it's ok"
    assert normalize_transcript("Partirà per la Spagna, metà", strip_accents=True) == "partira per la spagna meta"
    assert normalize_transcript("Tüten, Stück") == "tüten stück"


def test_char_vocab_roundtrip_and_oov():
    vocab = CharVocab.from_texts(["ciao mondo", "là"])
    assert vocab.chars[0] == "<blank>" and vocab.blank == 0
    ids = vocab.encode("ciao là")
    assert 0 not in ids and vocab.decode(ids) == "ciao là"
    oov = Counter()
    assert vocab.decode(vocab.encode("ciaoè!", oov)) == "ciao"
    assert oov == Counter({"è": 1, "!": 1})
    with pytest.raises(UserError):
        CharVocab.from_texts([""])


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
    assert [(e.transcript, e.emotion, e.speaker) for e in examples] == [("hello there", "happiness", "s1"),
                                                                         ("good bye", "sadness", "s2")]
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
    train, test = splits.speaker_split(speakers, 0.2, seed=3)
    assert sorted(train + test) == list(range(140))
    assert not {speakers[i] for i in train} & {speakers[i] for i in test}
    assert len(test) >= 0.2 * 140 and len(train) > 0
    assert splits.speaker_split(speakers, 0.2, seed=3) == (train, test)
    with pytest.raises(UserError, match="at least two speakers"):
        splits.speaker_split(["a"] * 5)


def test_leave_speakers_out_and_random_split():
    speakers = ["f1", "f2", "m1", "f1"]
    assert splits.leave_speakers_out(speakers, ["f1"]) == ([1, 2], [0, 3])
    with pytest.raises(UserError, match="not in the data"):
        splits.leave_speakers_out(speakers, ["m9"])
    train, test = splits.random_split(50, 0.2, seed=0)
    assert len(test) == 10 and sorted(train + test) == list(range(50))


# ----------------------------------------------------------------------------- synthetic
def test_synthetic_prosody_follows_the_emotion():
    """Same speaker and sentence in all five emotions: sadness slower and softer than anger, fear higher."""
    exs = synthesize_emotional_speech(n_speakers=1, sentences=SYNTH_SENTENCES[:1], per_sentence=5,
                                      seed=1, snr_db=(60.0, 60.0), progress=False)
    by = {e.emotion: e for e in exs}
    assert set(by) == set(EMOTION_PROSODY) and all(e.transcript == SYNTH_SENTENCES[0] for e in exs)
    rms = {k: float(np.sqrt(np.mean(v.waveform ** 2))) for k, v in by.items()}
    dur = {k: len(v.waveform) for k, v in by.items()}
    assert dur["sadness"] > dur["neutral"] > dur["fear"]
    assert rms["anger"] > rms["neutral"] > rms["sadness"]


def test_synthetic_corpus_size_and_balance():
    exs = synthesize_emotional_speech(n_speakers=2, sentences=SYNTH_SENTENCES[:5], per_sentence=1, seed=0,
                                      progress=False)
    assert len(exs) == 10 and len({e.speaker for e in exs}) == 2
    assert set(Counter(e.emotion for e in exs).values()) == {2}     # rotation balances the five emotions
    assert len(SYNTH_SENTENCES) >= 20 and len(EMOTION_PROSODY) >= 4
    with pytest.raises(UserError):
        synthesize_emotional_speech(emotions=["boredom"], progress=False)


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
    from audiolab.core.io import load_audio

    orig, sr = load_audio(shared_data / "emovo/original_format/dis-f1-b1.wav", sample_rate=16000)
    flac, _ = load_audio(shared_data / "emovo/f1/dis-f1-b1.flac")
    n = min(len(orig), len(flac))
    assert sr == 16000 and abs(len(orig) - len(flac)) <= 16
    assert np.corrcoef(orig[:n], flac[:n])[0, 1] > 0.95


# ----------------------------------------------------------------------------- EmoDB and transcripts that are not whole
def test_emodb_complete_list_unknown_letter_and_missing_names(tmp_path, capsys):
    root = tmp_path / "emodb_2s"
    for name in ("03a01Fa", "03a02Nc", "16b10Tb", "08a04Wa"):
        tone(root / "wav" / f"{name}.flac", sample_rate=22050)
    tone(root / "wav" / "09a05Xa.flac", sample_rate=22050)         # X is no EmoDB emotion letter
    (root / "complete.txt").write_text("03a01Fa\n16b10Tb.wav\n# comment\n\n12a01Ta\n")
    assert ed.find_corpus("emodb", tmp_path) == root               # the processed copy's folder name is found
    examples, report = ed.load_corpus("emodb", root, sample_rate=16000)
    out = capsys.readouterr().out
    whole = {Path(e.path).stem: e.transcript_complete for e in examples}
    assert whole == {"03a01Fa": True, "16b10Tb": True, "03a02Nc": False, "08a04Wa": False}
    assert report["files_transcript_complete"] == 2 and report["files_excluded"] == 1
    assert "09a05Xa.flac" in out and "emotion letter 'X'" in out    # reported by name, not silently dropped
    assert "'12a01Ta'" in out and "not among the listed files" in out
    assert {e.emotion for e in examples} == {"happiness", "neutral", "sadness", "anger"}
    assert [e.transcript for e in examples if Path(e.path).stem == "08a04Wa"] == [ed.EMODB_SENTENCES["a04"]]
    # without complete.txt (the original release) every transcript is whole; a named list that is missing is an error
    (root / "complete.txt").unlink()
    assert all(it.transcript_complete for it in ed.list_corpus("emodb", root).items)
    with pytest.raises(UserError, match="does not exist"):
        ed.list_corpus("emodb", root, complete_list=tmp_path / "nope.txt")


def test_emodb_codes_follow_the_corpus_documentation():
    assert len(ed.EMODB_SENTENCES) == 10 and sorted(ed.EMODB_EMOTIONS) == sorted("WLEAFTN")
    assert (ed.EMODB_EMOTIONS["W"], ed.EMODB_EMOTIONS["L"], ed.EMODB_EMOTIONS["E"]) == ("anger", "boredom", "disgust")
    assert (ed.EMODB_EMOTIONS["A"], ed.EMODB_EMOTIONS["F"], ed.EMODB_EMOTIONS["T"]) == ("fear", "happiness", "sadness")
    assert set(ed.EMODB_EMOTIONS.values()) <= set(CANONICAL_EMOTIONS)


# ----------------------------------------------------------------------------- manifest faults
def test_manifest_duplicates_bom_labels_and_empty_transcripts(tmp_path, capsys):
    for name in ("a", "b", "c", "d"):
        tone(tmp_path / f"{name}.wav")
    text = ("path,transcript,emotion,speaker\n"
            "a.wav,hello there,anger,s1\n"
            "b.wav,good bye, ANGER ,s1\n"
            "c.wav,,Angry,s2\n"                                   # empty transcript: emotion only
            "d.wav,fine,neutrale,s2\n"                            # an unknown spelling: reported, kept
            "a.wav,hello there,anger,s1\n")                       # exact duplicate: counted once
    (tmp_path / "m.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())   # saved by a spreadsheet: UTF-8 BOM
    examples, report = ed.load_corpus("csv", tmp_path / "m.csv", sample_rate=16000)
    out = capsys.readouterr().out
    assert [Path(e.path).name for e in examples] == ["a.wav", "b.wav", "c.wav", "d.wav"]
    assert [e.emotion for e in examples] == ["anger", "anger", "anger", "neutrale"]
    assert [e.transcript_complete for e in examples] == [True, True, False, True]
    assert "row 6 repeats row 2" in out and "'neutrale'" in out and "empty transcript" in out
    assert report["files_excluded"] == 1
    (tmp_path / "clash.csv").write_text("path,transcript,emotion,speaker\na.wav,hi,anger,s1\nb.wav,x,sad,s1\n"
                                        "./a.wav,hi,sadness,s1\n")
    with pytest.raises(UserError, match=r"a\.wav twice with different labels \(rows 2 and 4\)"):
        ed.list_corpus("csv", tmp_path / "clash.csv")


def test_normalize_emotion_folds_case_space_and_aliases():
    assert {normalize_emotion(x)[0] for x in ("anger", "ANGER", " Anger ", "angry")} == {"anger"}
    assert normalize_emotion("Pleasant_Surprise") == ("surprise", True)
    assert normalize_emotion("neutrale") == ("neutrale", False)


def test_nan_clip_is_skipped_and_long_clip_cropped(tmp_path, capsys):
    tone(tmp_path / "ok.wav")
    bad = 0.1 * np.ones(1600, dtype=np.float32)
    bad[100] = np.nan
    sf.write(tmp_path / "nan.wav", bad, 16000, subtype="FLOAT")
    tone(tmp_path / "long.wav", seconds=3.0)
    (tmp_path / "m.csv").write_text("path,transcript,emotion,speaker\nok.wav,a,anger,s1\nnan.wav,b,anger,s1\n"
                                    "long.wav,c,sadness,s2\n")
    examples, report = ed.load_corpus("csv", tmp_path / "m.csv", sample_rate=16000, max_seconds=1.0)
    out = capsys.readouterr().out
    assert [Path(e.path).name for e in examples] == ["ok.wav", "long.wav"]
    assert "nan.wav" in out and "NaN" in out and report["files_skipped_unreadable"] == 1
    long = examples[1]
    assert len(long.waveform) == 16000 and not long.transcript_complete and "long.wav" in out and "cropped" in out
    assert np.all(np.isfinite(np.concatenate([e.waveform for e in examples])))


@pytest.mark.realdata
def test_real_emodb_copy(shared_data):
    listing = ed.list_corpus("emodb", ed.find_corpus("emodb", shared_data))
    assert len(listing.items) == 419 and not listing.problems
    assert sum(it.transcript_complete for it in listing.items) == 125
    assert len({it.speaker for it in listing.items}) == 8 and len({it.emotion for it in listing.items}) == 7
