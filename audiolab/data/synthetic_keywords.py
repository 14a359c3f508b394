"""The embedded keyword default: words spoken by eSpeak NG voices (``audiolab.data.synth``). SYNTHETIC.

- :func:`make_synthetic_keywords`: the ten keywords (or any words) with many voices, rates and
  pitches, placed at a random time in a 1 s window and mixed with noise. The voice variants are
  split between train/val/test, so the test voices are unseen. Every output must say SYNTHETIC.
- :func:`add_synthetic_voices`: renderings of a real dataset's class words added to its training
  split only (more speaker variety for a corpus with few speakers, e.g. FSDD).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from audiolab.core.progress import progress as progress_bar

from audiolab.augment.waveform import mix_at_snr, pink_noise
from audiolab.data.keyword_clips import KEYWORDS, SC_SAMPLE_RATE, SILENCE, UNKNOWN, Clip, KwsData
from audiolab.data.synth import VARIANTS, Voice, synthesize

#: eSpeak voice variants held out for the synthetic validation and test splits (unseen voices)
SYNTH_VAL_VOICES = ("m3", "f2", "klatt2", "david")
SYNTH_TEST_VOICES = ("m6", "f4", "klatt3", "steph")


def make_synthetic_keywords(words: Sequence[str] = KEYWORDS, clips_per_voice: int = 2, *,
                            sample_rate: int = SC_SAMPLE_RATE, seed: int = 0, noise: Sequence[np.ndarray] = (),
                            snr_db: tuple[float, float] = (5.0, 30.0), voices: Sequence[str] = VARIANTS,
                            languages: Sequence[str] = ("en-us",), progress: bool = True) -> KwsData:
    """The embedded default: ``words`` spoken by eSpeak NG voices, 1 s clips mixed with noise.

    Each voice variant (``<language>+<variant>``, the language drawn from ``languages``, by default
    American English only) speaks every word ``clips_per_voice`` times with a random rate
    (120-220 words/min), pitch and pitch range; the word starts at a random time
    inside the 1 s window and is mixed with a random stretch of ``noise`` (or pink noise) at a
    random SNR in ``snr_db``. Voices in ``SYNTH_VAL_VOICES`` / ``SYNTH_TEST_VOICES`` form the
    val / test splits, so test voices are never heard in training.

    Returns a :class:`KwsData` with ``source="synthetic"``.

    Raises:
        audiolab.data.synth.SynthesisError: eSpeak NG cannot be loaded.
    """
    rng = np.random.default_rng(seed)
    n = sample_rate
    clips = []
    jobs = [(v, w, k) for v in voices for w in words for k in range(clips_per_voice)]
    for variant, word, k in progress_bar(jobs, "synthesising keywords (eSpeak NG)", disable=not progress):
        language = languages[int(rng.integers(len(languages)))] if len(languages) > 1 else languages[0]
        voice = Voice(name=f"{language}+{variant}", rate=int(rng.integers(120, 220)), pitch=int(rng.integers(20, 80)),
                      pitch_range=int(rng.integers(20, 80)), volume=100)
        speech = synthesize(word, voice, sample_rate)[: int(0.95 * n)]
        speech = 0.5 * speech / (np.abs(speech).max() + 1e-9) * float(rng.uniform(0.4, 1.0))
        wav = np.zeros(n, dtype=np.float32)
        start = int(rng.integers(0, n - len(speech) + 1))
        wav[start:start + len(speech)] = speech
        if noise:
            src = noise[int(rng.integers(len(noise)))]
            off = int(rng.integers(0, max(len(src) - n, 0) + 1))
            bg = np.resize(src[off:off + n], n).astype(np.float32)
        else:
            bg = pink_noise(n, rng)
        if np.any(bg):
            wav, _ = mix_at_snr(wav, bg, float(rng.uniform(*snr_db)))
        wav = np.clip(wav, -1.0, 1.0)
        split = "test" if variant in SYNTH_TEST_VOICES else ("val" if variant in SYNTH_VAL_VOICES else "train")
        clips.append(Clip(wav.astype(np.float32), word, variant, split, f"synthetic:{word}/{variant}/{k}",
                          sample_rate))
    notes = [f"eSpeak NG voices; val voices {list(SYNTH_VAL_VOICES)}, test voices {list(SYNTH_TEST_VOICES)} "
             "(unseen in training)"]
    return KwsData("synthetic_keywords", "synthetic", sample_rate, list(words), clips, [], notes)


#: eSpeak NG's English accents (language codes), drawn per clip by :func:`add_synthetic_voices`
ENGLISH_ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-029", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
                   "en-us-nyc")


def add_synthetic_voices(data: KwsData, clips_per_voice: int, *, seed: int = 0,
                         snr_db: tuple[float, float] = (20.0, 40.0), voices: Sequence[str] = VARIANTS,
                         languages: Sequence[str] = ENGLISH_ACCENTS, progress: bool = True) -> int:
    """Add eSpeak NG renderings of every class word to the *training* split of a real dataset.

    A corpus with few speakers (FSDD: three to train on) teaches a model those voices rather
    than the words: on FSDD leave-one-speaker-out, the errors are whole classes of the new
    speaker sent to one wrong word. Synthetic voices (``voices`` x ``clips_per_voice``
    renderings per word, each in a random English accent of ``languages``, random rate, pitch and
    pitch range; :func:`make_synthetic_keywords`,
    mixed with pink noise at ``snr_db``) add speaker variety that costs nothing to record. It is
    a form of data augmentation: validation and test stay real, and the added clips carry
    ``speaker="espeak:<variant>"`` and ``path="synthetic:..."`` so they can be told apart.
    Classes eSpeak cannot say (``_unknown_``, ``_silence_``) get none. Modifies ``data`` in
    place and returns the number of clips added.

    Raises:
        audiolab.data.synth.SynthesisError: eSpeak NG cannot be loaded.
    """
    words = [w for w in data.labels if w not in (UNKNOWN, SILENCE)]
    if clips_per_voice <= 0 or not words:
        return 0
    syn = make_synthetic_keywords(words, clips_per_voice, sample_rate=data.sample_rate, seed=seed + 1,
                                  snr_db=snr_db, voices=voices, languages=languages, progress=progress)
    for c in syn.clips:
        c.split, c.speaker = "train", f"espeak:{c.speaker}"
    data.clips.extend(syn.clips)
    data.notes.append(f"training split augmented with {len(syn.clips)} synthetic eSpeak NG clips "
                      f"({len(voices)} voices x {clips_per_voice} per word); validation and test are real")
    return len(syn.clips)
