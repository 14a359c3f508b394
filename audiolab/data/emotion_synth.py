"""Synthetic emotional speech from eSpeak NG: the embedded default corpus and synthetic training voices.

- :func:`synthesize_emotional_speech`: five emotions rendered through base pitch, pitch range,
  speaking rate and loudness (``EMOTION_PROSODY``), many voices (eSpeak variants with per-speaker
  pitch/rate), 24 Harvard sentences (IEEE 1969, public domain). It is a demo: every output that
  uses it says so.
- :func:`synthetic_training_voices`: eSpeak NG renderings of a real corpus' training sentences in
  the corpus' language (``CORPUS_LANGUAGE``), extra voices for the CTC term of ``q2_multitask.py``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from audiolab.core.runtime import UserError
from audiolab.data.emotion import Example
from audiolab.data.synth import HARVARD_SENTENCES

#: 24 Harvard sentences (lists 1-3), shared with the other synthetic speech defaults
SYNTH_SENTENCES = HARVARD_SENTENCES[:24]

#: emotion -> prosody relative to the speaker's base: rate factor, pitch offset (0-100 scale),
#: pitch range (0 = monotone, 100 = lively) and volume (0-200). After the acoustic correlates
#: summarised by Scherer (2003) and Murray & Arnott (1993): anger/joy fast, loud, wide range;
#: sadness slow, low, narrow, soft; fear fast and high with a narrow range.
EMOTION_PROSODY = {
    "neutral": {"rate": 1.00, "pitch": 0, "pitch_range": 45, "volume": 100},
    "happiness": {"rate": 1.10, "pitch": 14, "pitch_range": 85, "volume": 125},
    "sadness": {"rate": 0.78, "pitch": -12, "pitch_range": 10, "volume": 65},
    "anger": {"rate": 1.15, "pitch": 4, "pitch_range": 65, "volume": 175},
    "fear": {"rate": 1.25, "pitch": 24, "pitch_range": 25, "volume": 90},
}
#: voice variants used for synthetic speakers (whisper/croak dropped: they carry no pitch)
SYNTH_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
                  "Alex", "Andy", "annie", "david", "ed", "edward", "john", "linda", "max", "michel", "steph",
                  "robert"]


def synth_speakers(n_speakers: int, rng: np.random.Generator) -> list[dict]:
    """``n_speakers`` distinct synthetic speakers: an eSpeak variant plus base pitch and rate."""
    if not 1 <= n_speakers <= len(SYNTH_VARIANTS):
        raise UserError(f"the synthetic corpus has 1..{len(SYNTH_VARIANTS)} speakers, got {n_speakers}")
    variants = rng.choice(SYNTH_VARIANTS, size=n_speakers, replace=False)
    return [{"speaker": f"synth_{v}", "variant": str(v), "pitch": int(rng.integers(30, 62)),
             "rate": int(rng.integers(130, 171))} for v in variants]


def synthesize_emotional_speech(n_speakers: int = 8, sentences: Sequence[str] = SYNTH_SENTENCES,
                                emotions: Sequence[str] = tuple(EMOTION_PROSODY), per_sentence: int = 2,
                                sample_rate: int = 16000, seed: int = 0, language: str = "en-us",
                                snr_db: tuple[float, float] = (25.0, 40.0), progress: bool = True) -> list[Example]:
    """The embedded default: emotional-prosody speech from eSpeak NG (SYNTHETIC).

    Every speaker says every sentence in ``per_sentence`` emotions, rotated so that each
    emotion is equally frequent; the emotion sets pitch, pitch range, rate and loudness
    (``EMOTION_PROSODY``) around the speaker's base, with small per-utterance jitter, and
    pink noise at a random SNR in ``snr_db`` is added.

    Returns:
        ``n_speakers * len(sentences) * per_sentence`` :class:`Example` s (waveforms
        ``[n_samples]`` float32 at ``sample_rate`` Hz).

    Raises:
        UserError: bad sizes or an unknown emotion.
        audiolab.data.synth.SynthesisError: eSpeak NG is not usable.
    """
    from audiolab.core.progress import progress as progress_bar

    from audiolab.augment.waveform import mix_at_snr, pink_noise
    from audiolab.data.synth import Voice, synthesize

    unknown = [e for e in emotions if e not in EMOTION_PROSODY]
    if unknown:
        raise UserError(f"no prosody for emotion(s) {unknown}; choose from {sorted(EMOTION_PROSODY)}")
    if not 1 <= per_sentence <= len(emotions):
        raise UserError(f"per_sentence must be in 1..{len(emotions)}, got {per_sentence}")
    if not sentences:
        raise UserError("the synthetic corpus needs at least one sentence")
    rng = np.random.default_rng(seed)
    speakers = synth_speakers(n_speakers, rng)
    jobs = []
    for s_idx, spk in enumerate(speakers):
        for t_idx, text in enumerate(sentences):
            for k in range(per_sentence):
                jobs.append((spk, text, emotions[(s_idx + t_idx * per_sentence + k) % len(emotions)]))
    examples = []
    for spk, text, emotion in progress_bar(jobs, "synthesising (eSpeak NG)", disable=not progress):
        p = EMOTION_PROSODY[emotion]
        voice = Voice(name=f"{language}+{spk['variant']}",
                      rate=int(np.clip(spk["rate"] * p["rate"] * rng.uniform(0.93, 1.07), 80, 450)),
                      pitch=int(np.clip(spk["pitch"] + p["pitch"] + rng.integers(-4, 5), 0, 100)),
                      pitch_range=int(np.clip(p["pitch_range"] + rng.integers(-6, 7), 0, 100)),
                      volume=int(np.clip(p["volume"] * rng.uniform(0.9, 1.1), 10, 200)))
        wav = synthesize(text, voice, sample_rate=sample_rate)
        wav, _ = mix_at_snr(wav, pink_noise(len(wav), rng), float(rng.uniform(*snr_db)))
        examples.append(Example(wav.astype(np.float32), sample_rate, text, emotion, spk["speaker"],
                                f"synthetic:{spk['speaker']}:{emotion}"))
    return examples


#: eSpeak NG language of each corpus' speech, for synthetic training voices (``--synthetic-voices``)
CORPUS_LANGUAGE = {"emovo": "it", "emodb": "de", "cremad": "en-us", "ravdess": "en-us", "tess": "en-us",
                   "iemocap": "en-us"}


def synthetic_training_voices(transcripts: Sequence[str], n_voices: int, language: str, *,
                              per_sentence: int = 1, sample_rate: int = 16000, seed: int = 0,
                              progress: bool = True) -> list[Example]:
    """eSpeak NG renderings of a real corpus' training sentences, to add voices to its training split.

    With three or four actors, a CTC model learns their voices as much as the characters; the
    new actor's voice then costs it most of its errors. ``n_voices`` synthetic speakers
    (:func:`synthesize_emotional_speech`, in ``language``) say every distinct sentence of
    ``transcripts`` ``per_sentence`` times in the prosody of a rotating emotion. Their emotion
    labels are eSpeak caricatures, not acted emotions: callers should use them for the CTC
    term only. Speakers are named ``espeak_<variant>``, paths ``synthetic:...``.

    Returns:
        ``n_voices * n_distinct_sentences * per_sentence`` :class:`Example` s.

    Raises:
        UserError: ``n_voices`` outside 1..len(SYNTH_VARIANTS) or no sentence.
        audiolab.data.synth.SynthesisError: eSpeak NG is not usable.
    """
    sentences = sorted({t for t in transcripts if t.strip()})
    out = synthesize_emotional_speech(n_speakers=n_voices, sentences=sentences, per_sentence=per_sentence,
                                      sample_rate=sample_rate, seed=seed, language=language, progress=progress)
    for ex in out:
        ex.speaker = ex.speaker.replace("synth_", "espeak_", 1)
    return out

