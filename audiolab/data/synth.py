"""Speech synthesis with eSpeak NG, for the embedded default datasets (no network).

The ``espeakng-loader`` wheel carries ``libespeak-ng`` and its voice data; this module
binds the library's C API (``speak_lib.h``) with ctypes in synchronous mode and
collects the 16-bit samples through the synth callback. eSpeak NG renders at
22050 Hz; ``synthesize`` resamples to the requested rate.

Prosody controls (``espeak_SetParameter``): ``rate`` in words per minute (80-450),
``pitch`` base pitch 0-100, ``pitch_range`` 0-100 (0 = monotone), ``volume`` 0-200.
Voices: ``<language>+<variant>``, e.g. ``en-us+f3`` or ``en+m7``; see ``VARIANTS``.

Reproducibility: eSpeak NG draws random numbers (the breath noise of the ``f2``/``f3``/``f5``
variants, among others) from its own generator, which ``espeak_Initialize`` seeds with the
clock. Each call here reseeds it (``espeak_ng_SetRandSeed``) from a hash of the text, voice and
prosody, so the same sequence of calls gives the same samples in every process (a rendering
still depends on the ones before it in the process: the engine carries filter and pitch-flutter
state from one utterance to the next).

Reference: eSpeak NG, https://github.com/espeak-ng/espeak-ng (GPL-3.0), ``speak_lib.h``.
Everything made here is synthetic and every output that uses it must say so.
"""

from __future__ import annotations

import ctypes
import threading
import zlib
from dataclasses import dataclass

import numpy as np

from audiolab.core.io import resample

# espeak_AUDIO_OUTPUT / espeak_PARAMETER / flags, from speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 0x02
_espeakRATE, _espeakVOLUME, _espeakPITCH, _espeakRANGE = 1, 2, 3, 4
_espeakCHARS_UTF8 = 1
_espeakENDPAUSE = 0x1000
_POS_CHARACTER = 1

#: voice variants shipped in the wheel's espeak-ng-data/voices/!v (a varied, stable subset)
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
            "klatt", "klatt2", "klatt3", "croak", "whisper", "Alex", "Andy", "annie", "belinda",
            "david", "ed", "edward", "john", "linda", "max", "michel", "steph", "robert"]

#: Harvard sentences (IEEE 1969, "Recommended practice for speech quality measurements"), lists 1-4:
#: phonetically balanced English text for the synthetic speech defaults.
HARVARD_SENTENCES = [
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.", "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.", "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.", "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.", "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.", "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.", "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.", "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.", "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.", "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.", "Read verse out loud for pleasure.",
    "Hoist the load to your left shoulder.", "Take the winding path to reach the lake.",
    "Note closely the size of the gas tank.", "Wipe the grease off his dirty face.",
    "Mend the coat before you go out.", "The wrist was badly strained and hung limp.",
    "The stray cat gave birth to kittens.", "The young girl gave no clear response.",
    "The meal was cooked before the bell rang.", "What joy there is in living.",
]

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class SynthesisError(RuntimeError):
    """eSpeak NG could not be loaded or failed to synthesise."""


class _Engine:
    """The process-wide eSpeak NG instance (the C library keeps global state)."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as err:  # pragma: no cover - requirements.txt installs it
            raise SynthesisError("the espeakng-loader package is missing: pip install -r requirements.txt") from err
        try:
            self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        except OSError as err:
            raise SynthesisError(f"cannot load libespeak-ng: {err}") from err
        data = espeakng_loader.get_data_path().encode()
        lib = self.lib
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.set_rand_seed = getattr(lib, "espeak_ng_SetRandSeed", None)   # eSpeak NG >= 1.52
        if self.set_rand_seed is not None:
            self.set_rand_seed.argtypes = [ctypes.c_long]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if self.sample_rate <= 0:
            raise SynthesisError("espeak_Initialize failed (is the espeak-ng-data folder intact?)")
        self._chunks: list[np.ndarray] = []

        def _collect(wav_ptr, n_samples, _events):
            if n_samples > 0 and wav_ptr:
                self._chunks.append(np.ctypeslib.as_array(wav_ptr, shape=(n_samples,)).copy())
            return 0  # 0 = continue

        self._callback = _SYNTH_CALLBACK(_collect)  # keep a reference: ctypes does not
        lib.espeak_SetSynthCallback(self._callback)
        self.lock = threading.Lock()

    def speak(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int, volume: int) -> np.ndarray:
        lib = self.lib
        with self.lock:
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise SynthesisError(f"eSpeak NG has no voice {voice!r}")
            for param, value in ((_espeakRATE, rate), (_espeakPITCH, pitch), (_espeakRANGE, pitch_range),
                                 (_espeakVOLUME, volume)):
                lib.espeak_SetParameter(param, int(value), 0)
            if self.set_rand_seed is not None:   # same inputs -> same samples (module docstring)
                key = f"{text}\0{voice}\0{rate}\0{pitch}\0{pitch_range}\0{volume}".encode("utf-8")
                self.set_rand_seed(zlib.crc32(key))
            self._chunks = []
            buf = ctypes.create_string_buffer(text.encode("utf-8"))
            err = lib.espeak_Synth(buf, len(buf), 0, _POS_CHARACTER, 0, _espeakCHARS_UTF8 | _espeakENDPAUSE,
                                   None, None)
            if err != 0:
                raise SynthesisError(f"espeak_Synth failed with code {err} for {text!r}")
            lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32) / 32768.0


_ENGINE: _Engine | None = None


def _engine() -> _Engine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


@dataclass(frozen=True)
class Voice:
    """Prosody settings for one rendering. ``rate`` in words/minute, others 0-100 (volume 0-200)."""

    name: str = "en-us"
    rate: int = 160
    pitch: int = 50
    pitch_range: int = 50
    volume: int = 100


def synthesize(text: str, voice: Voice | str = "en-us", sample_rate: int = 16000, trim: bool = True) -> np.ndarray:
    """Speak ``text`` with eSpeak NG.

    Args:
        text: UTF-8 text (words in the voice's language).
        voice: a :class:`Voice` or a voice name such as ``"en-us+f3"``.
        sample_rate: output rate in Hz (eSpeak renders at 22050 Hz and is resampled).
        trim: drop leading/trailing samples below -50 dBFS.

    Returns:
        ``[n_samples]`` float32 waveform in [-1, 1].

    Raises:
        SynthesisError: the library is missing, the voice is unknown, or synthesis failed.
    """
    v = Voice(name=voice) if isinstance(voice, str) else voice
    eng = _engine()
    wav = eng.speak(text, v.name, v.rate, v.pitch, v.pitch_range, v.volume)
    if wav.size == 0:
        raise SynthesisError(f"eSpeak NG produced no audio for {text!r} with voice {v.name!r}")
    if trim:
        active = np.flatnonzero(np.abs(wav) > 10 ** (-50 / 20))
        if active.size:
            wav = wav[max(active[0] - 80, 0):active[-1] + 80]
    if sample_rate != eng.sample_rate:
        wav = resample(wav, eng.sample_rate, sample_rate)
    return np.clip(wav, -1.0, 1.0).astype(np.float32)


def random_voice(rng: np.random.Generator, language: str = "en-us", rate=(120, 220), pitch=(20, 80),
                 pitch_range=(20, 80), volume=(70, 130)) -> Voice:
    """A random voice: one of ``VARIANTS`` and prosody drawn uniformly from the given ranges."""
    variant = VARIANTS[int(rng.integers(len(VARIANTS)))]
    return Voice(name=f"{language}+{variant}", rate=int(rng.integers(*rate)), pitch=int(rng.integers(*pitch)),
                 pitch_range=int(rng.integers(*pitch_range)), volume=int(rng.integers(*volume)))

