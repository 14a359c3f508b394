"""Emotional-speech corpora for the multi-task (ASR + emotion) script, ``q2_multitask.py``.

What is here:

- **Loaders** for the public layouts of six emotional-speech corpora and for a CSV
  manifest. Each lists the corpus from its file names (the sentence code gives the
  transcript, the emotion and speaker codes give the labels), then reads the audio with
  ``audiolab.core.io`` (any rate, mono or stereo: resampled and down-mixed), reporting and
  skipping unreadable, empty or silent files. Every example is
  ``(waveform, sample_rate, transcript, emotion, speaker)``.

  ============  ======================================================  ==========================
  corpus        public layout (any audio extension soundfile reads)     transcripts from
  ============  ======================================================  ==========================
  ``emovo``     ``<actor>/<emo>-<actor>-<sentence>.wav``, e.g.          14 sentence codes
                ``f1/dis-f1-b1.wav`` (Costantini et al., LREC 2014)     (``EMOVO_SENTENCES``)
  ``cremad``    ``AudioWAV/<actor>_<sentence>_<emo>_<level>.wav``,      12 sentence codes
                e.g. ``1001_DFA_ANG_XX.wav`` (Cao et al., 2014)         (``CREMAD_SENTENCES``)
  ``ravdess``   ``Actor_<nn>/<mod>-<voc>-<emo>-<int>-<stm>-<rep>-<act>``  2 statements
                ``.wav``, e.g. ``03-01-05-01-02-01-12.wav``
                (Livingstone & Russo, 2018); speech only (voc 01)
  ``tess``      ``<OAF|YAF>_<emotion>/<OAF|YAF>_<word>_<emotion>.wav``  "say the word <word>"
                (Dupuis & Pichora-Fuller, 2010)
  ``emodb``     ``wav/<spk><text><emo><version>.wav``, e.g.             10 text codes
                ``03a01Fa.wav`` (Burkhardt et al., 2005)                (``EMODB_SENTENCES``)
  ``iemocap``   ``IEMOCAP/Session<n>/sentences/wav/<dialog>/<utt>.wav``  ``dialog/transcriptions``
                + ``dialog/EmoEvaluation/*.txt`` (the
                ``torchaudio.datasets.IEMOCAP`` layout; Busso et al., 2008)
  ``csv``       a manifest with columns ``path,transcript,emotion,speaker``
                (paths relative to the manifest's folder)
  ============  ======================================================  ==========================

- **Elsewhere**: the CSV manifest and emotion-label normalisation in
  ``audiolab.data.emotion_manifest``; the synthetic default (emotional-prosody speech from
  eSpeak NG) and synthetic training voices in ``audiolab.data.emotion_synth``; transcript
  normalisation and the CTC character vocabulary in ``audiolab.data.text``; splits by speaker
  in ``audiolab.data.splits``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from audiolab.data.common import RealDataset
from audiolab.core.io import AUDIO_EXTENSIONS, find_audio_files, is_silent, iter_readable
from audiolab.core.runtime import UserError

# ----------------------------------------------------------------------------- corpus codes
#: EMOVO sentence codes -> text (corpus documentation; b = brief, l = long, n = nonsense, d = question)
EMOVO_SENTENCES = {
    "b1": "Gli operai si alzano presto.",
    "b2": "I vigili sono muniti di pistola.",
    "b3": "La cascata fa molto rumore.",
    "l1": "L'autunno prossimo Tony partirà per la Spagna nella prima metà di ottobre.",
    "l2": "Ora prendo la felpa di là ed esco per fare una passeggiata.",
    "l3": "Un attimo dopo s'è incamminato ... ed è inciampato.",
    "l4": "Vorrei il numero telefonico del Signor Piatti.",
    "n1": "La casa forte vuole col pane.",
    "n2": "La forza trova il passo e l'aglio rosso.",
    "n3": "Il gatto sta scorrendo nella pera.",
    "n4": "Insalata pastasciutta coscia d'agnello limoncello.",
    "n5": "Uno quarantatré dieci mille cinquantasette venti.",
    "d1": "Sabato sera cosa farà?",
    "d2": "Porti con te quella cosa?",
}
EMOVO_EMOTIONS = {"dis": "disgust", "gio": "happiness", "neu": "neutral", "pau": "fear", "rab": "anger",
                  "sor": "surprise", "tri": "sadness"}

#: CREMA-D sentence codes (github.com/CheyneyComputerScience/CREMA-D README)
CREMAD_SENTENCES = {
    "IEO": "It's eleven o'clock.", "TIE": "That is exactly what happened.", "IOM": "I'm on my way to the meeting.",
    "IWW": "I wonder what this is about.", "TAI": "The airplane is almost full.",
    "MTI": "Maybe tomorrow it will be cold.", "IWL": "I would like a new alarm clock.",
    "ITH": "I think I have a doctor's appointment.", "DFA": "Don't forget a jacket.",
    "ITS": "I think I've seen this before.", "TSI": "The surface is slick.",
    "WSI": "We'll stop in a couple of minutes.",
}
CREMAD_EMOTIONS = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happiness", "NEU": "neutral",
                   "SAD": "sadness"}

#: RAVDESS file-name fields (zenodo.org/record/1188976)
RAVDESS_SENTENCES = {"01": "Kids are talking by the door.", "02": "Dogs are sitting by the door."}
RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happiness", "04": "sadness", "05": "anger",
                    "06": "fear", "07": "disgust", "08": "surprise"}

#: TESS emotion suffixes ("ps" = pleasant surprise)
TESS_EMOTIONS = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness",
                 "neutral": "neutral", "ps": "surprise", "sad": "sadness"}

#: Berlin EmoDB text codes -> sentences and emotion letters (German emotion words: Wut, Langeweile, Ekel,
#: Angst, Freude, Trauer, Neutral), from the corpus documentation, http://emodb.bilderbar.info/docu/
#: ("Code of texts", "Code of emotions"); Burkhardt et al., "A Database of German Emotional Speech",
#: Interspeech 2005.
EMODB_SENTENCES = {
    "a01": "Der Lappen liegt auf dem Eisschrank.",
    "a02": "Das will sie am Mittwoch abgeben.",
    "a04": "Heute abend könnte ich es ihm sagen.",
    "a05": "Das schwarze Stück Papier befindet sich da oben neben dem Holzstück.",
    "a07": "In sieben Stunden wird es soweit sein.",
    "b01": "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "b02": "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter.",
    "b03": "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht.",
    "b09": "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
    "b10": "Die wird auf dem Platz sein, wo wir sie immer hinlegen.",
}
EMODB_EMOTIONS = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness", "T": "sadness",
                  "N": "neutral"}

#: IEMOCAP: the usual four-class set, "exc" (excited) merged into happiness
IEMOCAP_EMOTIONS = {"neu": "neutral", "hap": "happiness", "exc": "happiness", "ang": "anger", "sad": "sadness"}


# ----------------------------------------------------------------------------- data records
@dataclass(frozen=True)
class UtteranceInfo:
    """One corpus entry before its audio is read: file, transcript, emotion and speaker labels.

    ``transcript_complete`` is False when the audio holds only part of the transcript (e.g. a
    clip cut short) or the transcript is empty: such clips train and score the emotion head only.
    """

    path: Path
    transcript: str
    emotion: str
    speaker: str
    transcript_complete: bool = True


@dataclass
class Example:
    """One utterance with audio: ``waveform`` is ``[n_samples]`` float32 in [-1, 1] at ``sample_rate`` Hz."""

    waveform: np.ndarray
    sample_rate: int
    transcript: str
    emotion: str
    speaker: str
    path: str = ""
    transcript_complete: bool = True

    def as_tuple(self) -> tuple[torch.Tensor, int, str, str, str]:
        """``(waveform [1, n_samples] tensor, sample_rate, transcript, emotion, speaker)``."""
        return torch.from_numpy(self.waveform).unsqueeze(0), self.sample_rate, self.transcript, self.emotion, \
            self.speaker


@dataclass
class Listing:
    """What a corpus lister found: ``items``, files it did not recognise, excluded entries by reason, and
    ``problems``: one line per entry that needs the user's attention (printed in full, never dropped silently)."""

    items: list[UtteranceInfo] = field(default_factory=list)
    unrecognised: list[Path] = field(default_factory=list)
    excluded: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


class EmotionSpeechDataset(torch.utils.data.Dataset):
    """A map-style dataset over :class:`Example` s; item ``n`` is
    ``(waveform [1, n_samples], sample_rate, transcript, emotion, speaker)`` like torchaudio's datasets."""

    def __init__(self, examples: Sequence[Example]):
        self.examples = list(examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, n: int):
        return self.examples[n].as_tuple()


# ----------------------------------------------------------------------------- listers
def _audio_files(root: Path) -> list[Path]:
    return find_audio_files(root, AUDIO_EXTENSIONS)


def list_emovo(root: Path) -> Listing:
    """EMOVO: ``<actor>/<emo>-<actor>-<sentence>.<ext>``; emotion and sentence codes in ``EMOVO_*``."""
    out = Listing()
    pattern = re.compile(r"^([a-z]{3})-([fm]\d)-([blnd]\d)$", re.IGNORECASE)
    for path in _audio_files(root):
        m = pattern.match(path.stem)
        if not m or m.group(1).lower() not in EMOVO_EMOTIONS or m.group(3).lower() not in EMOVO_SENTENCES:
            out.unrecognised.append(path)
            continue
        emo, spk, sent = (g.lower() for g in m.groups())
        out.items.append(UtteranceInfo(path, EMOVO_SENTENCES[sent], EMOVO_EMOTIONS[emo], spk))
    return out


def list_cremad(root: Path) -> Listing:
    """CREMA-D: ``<actor>_<sentence>_<emotion>_<level>.<ext>``, e.g. ``1001_DFA_ANG_XX.wav``."""
    out = Listing()
    pattern = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
    for path in _audio_files(root):
        m = pattern.match(path.stem)
        if not m or m.group(2) not in CREMAD_SENTENCES or m.group(3) not in CREMAD_EMOTIONS:
            out.unrecognised.append(path)
            continue
        actor, sent, emo, _level = m.groups()
        out.items.append(UtteranceInfo(path, CREMAD_SENTENCES[sent], CREMAD_EMOTIONS[emo], actor))
    return out


def list_ravdess(root: Path) -> Listing:
    """RAVDESS: ``Actor_<nn>/<modality>-<vocal>-<emotion>-<intensity>-<statement>-<repetition>-<actor>.<ext>``.

    Only speech (vocal channel ``01``) is used; song files are counted as excluded.
    """
    out = Listing()
    pattern = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
    for path in _audio_files(root):
        m = pattern.match(path.stem)
        if not m or m.group(3) not in RAVDESS_EMOTIONS or m.group(5) not in RAVDESS_SENTENCES:
            out.unrecognised.append(path)
            continue
        _mod, vocal, emo, _inten, stmt, _rep, actor = m.groups()
        if vocal != "01":
            out.excluded["song (vocal channel 02)"] += 1
            continue
        out.items.append(UtteranceInfo(path, RAVDESS_SENTENCES[stmt], RAVDESS_EMOTIONS[emo], f"actor{actor}"))
    return out


def list_tess(root: Path) -> Listing:
    """TESS: ``<OAF|YAF>_<word>_<emotion>.<ext>`` (carrier phrase "Say the word <word>")."""
    out = Listing()
    pattern = re.compile(r"^(OAF|YAF)_(.+)_([A-Za-z]+)$", re.IGNORECASE)
    for path in _audio_files(root):
        m = pattern.match(path.stem.strip())
        if not m or m.group(3).lower() not in TESS_EMOTIONS:
            out.unrecognised.append(path)
            continue
        spk, word, emo = m.groups()
        out.items.append(UtteranceInfo(path, f"Say the word {word.replace('_', ' ')}.",
                                       TESS_EMOTIONS[emo.lower()], spk.upper()))
    return out


#: the file beside a corpus' ``wav/`` that names the clips whose whole transcript is in the audio
#: (the processed EmoDB copy cut to 2 s has one); without it every transcript counts as whole
COMPLETE_FILE = "complete.txt"


def read_clip_list(path: Path) -> list[str]:
    """Clip names from a text file, one a line (``03a01Fa``, ``03a01Fa.wav`` or ``wav/03a01Fa.flac``: the
    file-name stem counts); blank lines and ``#`` comments ignored. Raises ``UserError`` if unreadable."""
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read the clip list {path}: {err}") from None
    return [Path(line.strip()).stem for line in lines if line.strip() and not line.strip().startswith("#")]


def list_emodb(root: Path) -> Listing:
    """EmoDB: ``wav/<speaker 2 digits><text code><emotion letter><version>.<ext>``, e.g. ``03a01Fa.wav``.

    Text codes and emotion letters come from ``EMODB_SENTENCES`` / ``EMODB_EMOTIONS``. A name of
    this shape with an unknown emotion letter or text code is reported by name (``problems``) and
    left out. Which transcripts are whole comes from ``complete.txt`` (:func:`apply_complete_list`).
    """
    out = Listing()
    pattern = re.compile(r"^(\d\d)([ab]\d\d)([A-Za-z])([a-z])$")
    for path in _audio_files(root):
        m = pattern.match(path.stem)
        if not m:
            out.unrecognised.append(path)
            continue
        spk, text, emo, _version = m.groups()
        if emo not in EMODB_EMOTIONS or text not in EMODB_SENTENCES:
            what = f"emotion letter {emo!r}" if emo not in EMODB_EMOTIONS else f"text code {text!r}"
            out.problems.append(f"{path}: unknown EmoDB {what} (letters {''.join(EMODB_EMOTIONS)}, texts "
                                f"{', '.join(EMODB_SENTENCES)}); left out")
            out.excluded["unknown EmoDB emotion letter or text code (named above)"] += 1
            continue
        out.items.append(UtteranceInfo(path, EMODB_SENTENCES[text], EMODB_EMOTIONS[emo], f"speaker{spk}"))
    return out


def find_complete_list(root: Path) -> Path | None:
    """``complete.txt`` in a corpus folder (or beside its ``wav/`` when ``root`` is that folder), if present."""
    root = Path(root)
    for cand in (root / COMPLETE_FILE, root.parent / COMPLETE_FILE if root.name == "wav" else None):
        if cand is not None and cand.is_file():
            return cand
    return None


def apply_complete_list(listing: Listing, complete_list: Path) -> Listing:
    """Mark the clips whose whole transcript is in the audio: those named in ``complete_list`` (one clip
    name a line, :func:`read_clip_list`) keep ``transcript_complete``; every other clip gets
    ``transcript_complete=False`` (it trains and scores the emotion head only). Names in the list that
    match no listed clip are reported by name in ``listing.problems``. Returns ``listing`` (changed in place).

    Raises:
        UserError: the list does not exist or cannot be read.
    """
    if not Path(complete_list).is_file():
        raise UserError(f"the complete-transcript list {complete_list} does not exist")
    names = read_clip_list(complete_list)
    wanted = set(names)
    listing.items = [it if it.path.stem in wanted else replace(it, transcript_complete=False)
                     for it in listing.items]
    found = {it.path.stem for it in listing.items}
    for name in sorted(wanted - found):
        listing.problems.append(f"{complete_list}: names clip {name!r}, which is not among the listed files; "
                                "ignored")
    return listing


def _iemocap_base(root: Path) -> Path:
    for cand in (root / "IEMOCAP", root / "IEMOCAP_full_release", root):
        if any(cand.glob("Session*")):
            return cand
    return root


def list_iemocap(root: Path) -> Listing:
    """IEMOCAP in the ``torchaudio.datasets.IEMOCAP`` layout.

    ``Session<n>/sentences/wav/<dialog>/<utterance>.wav`` with labels from
    ``Session<n>/dialog/EmoEvaluation/<dialog>.txt`` (lines ``[start - end]<TAB>utt<TAB>emo<TAB>[v, a, d]``)
    and transcripts from ``Session<n>/dialog/transcriptions/<dialog>.txt`` (lines
    ``utt [start-end]: text``). Four classes (``IEMOCAP_EMOTIONS``); other labels and
    utterances without a transcript are counted as excluded. The speaker is session +
    the utterance's gender letter (``Ses01F_impro01_M000`` -> ``Ses01_M``).
    """
    out = Listing()
    base = _iemocap_base(root)
    labels: dict[str, str] = {}
    texts: dict[str, str] = {}
    for session in sorted(base.glob("Session*")):
        for label_path in sorted((session / "dialog" / "EmoEvaluation").glob("*.txt")):
            for line in label_path.read_text(errors="replace").splitlines():
                if line.startswith("["):
                    parts = re.split(r"\t", line)
                    if len(parts) >= 3:
                        labels[parts[1].strip()] = parts[2].strip()
        for text_path in sorted((session / "dialog" / "transcriptions").glob("*.txt")):
            for line in text_path.read_text(errors="replace").splitlines():
                m = re.match(r"^(\S+)\s+\[[^\]]*\]:\s*(.*)$", line)
                if m:
                    texts[m.group(1)] = m.group(2).strip()
    for path in sorted(base.glob("Session*/sentences/wav/*/*")):
        if path.suffix.lower() not in AUDIO_EXTENSIONS:
            continue
        stem = path.stem
        m = re.match(r"^Ses(\d\d)[FM]_.*_([FM])\d+$", stem)
        if not m or stem not in labels:
            out.unrecognised.append(path)
            continue
        label = labels[stem]
        if label not in IEMOCAP_EMOTIONS:
            out.excluded[f"emotion '{label}' outside the 4-class set"] += 1
            continue
        text = re.sub(r"\[[^\]]*\]", " ", texts.get(stem, "")).strip()
        if not text:
            out.excluded["no transcript"] += 1
            continue
        out.items.append(UtteranceInfo(path, text, IEMOCAP_EMOTIONS[label], f"Ses{m.group(1)}_{m.group(2)}"))
    return out



@dataclass(frozen=True)
class CorpusLayout:
    """A corpus the loaders understand: its lister, folder names to look for, and the expected layout."""

    name: str
    lister: Callable[[Path], Listing]
    folders: tuple[str, ...]
    layout: str
    how_to_get: str


CORPORA: dict[str, CorpusLayout] = {c.name: c for c in [
    CorpusLayout("emovo", list_emovo, ("emovo", "EMOVO"),
                 "<actor>/<emo>-<actor>-<sentence>.wav, e.g. f1/dis-f1-b1.wav",
                 "EMOVO (Costantini et al., LREC 2014) is distributed on request by its authors; put the actor "
                 "folders f1..m3 under <data-root>/emovo/."),
    CorpusLayout("cremad", list_cremad, ("cremad", "CREMA-D", "crema-d", "CREMAD"),
                 "AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav, e.g. 1001_DFA_ANG_XX.wav",
                 "CREMA-D: github.com/CheyneyComputerScience/CREMA-D (ODbL); put AudioWAV/ under "
                 "<data-root>/cremad/."),
    CorpusLayout("ravdess", list_ravdess, ("ravdess", "RAVDESS"),
                 "Actor_<nn>/03-01-<emo>-<intensity>-<statement>-<rep>-<actor>.wav",
                 "RAVDESS: zenodo.org/record/1188976 (Audio_Speech_Actors_01-24.zip, CC BY-NC-SA 4.0); unzip "
                 "into <data-root>/ravdess/."),
    CorpusLayout("tess", list_tess, ("tess", "TESS"),
                 "<OAF|YAF>_<emotion>/<OAF|YAF>_<word>_<emotion>.wav, e.g. OAF_angry/OAF_back_angry.wav",
                 "TESS: borealisdata.ca (University of Toronto, CC BY-NC-ND 4.0); unzip into <data-root>/tess/."),
    CorpusLayout("emodb", list_emodb, ("emodb", "EmoDB", "emo-db", "emodb_2s"),
                 "wav/<speaker><text><emotion><version>.wav, e.g. wav/03a01Fa.wav",
                 "Berlin EmoDB: emodb.bilderbar.info (download.zip); unzip into <data-root>/emodb/."),
    CorpusLayout("iemocap", list_iemocap, ("IEMOCAP", "iemocap", "IEMOCAP_full_release"),
                 "IEMOCAP/Session<n>/sentences/wav/<dialog>/<utt>.wav + Session<n>/dialog/{EmoEvaluation,"
                 "transcriptions}/<dialog>.txt (the torchaudio.datasets.IEMOCAP layout)",
                 "IEMOCAP: sail.usc.edu/iemocap (licence on request); put IEMOCAP/ (or IEMOCAP_full_release/) "
                 "under <data-root>/."),
]}


def find_corpus(name: str, data_root: Path) -> Path | None:
    """The folder of corpus ``name`` under ``data_root`` (first of its usual folder names holding audio)."""
    for folder in CORPORA[name].folders:
        path = Path(data_root) / folder
        if path.is_dir() and any(p.suffix.lower() in AUDIO_EXTENSIONS for p in path.rglob("*")):
            return path
    return None


def real_datasets() -> list[RealDataset]:
    """The corpora as :class:`audiolab.data.common.RealDataset` entries for ``choose_dataset`` (EMOVO first)."""
    return [RealDataset(name=c.name, find=lambda root, n=c.name: find_corpus(n, root), how_to_get=c.how_to_get,
                        looked_for=f"a folder named {' or '.join(c.folders)} holding {c.layout}")
            for c in CORPORA.values()]


def _drop_duplicates(listing: Listing) -> Listing:
    """Keep the first file per (speaker, emotion, transcript, file stem): a corpus copied twice in one tree
    (e.g. re-encoded FLAC beside the original WAV) must not count twice."""
    seen: set = set()
    kept = []
    for it in listing.items:
        key = (it.speaker, it.emotion, it.transcript, it.path.stem)
        if key in seen:
            listing.excluded["duplicate of an earlier file (same name stem)"] += 1
            continue
        seen.add(key)
        kept.append(it)
    listing.items = kept
    return listing


def list_corpus(name: str, root: Path, complete_list: Path | None = None) -> Listing:
    """List corpus ``name`` (a key of ``CORPORA``, or ``"csv"`` with ``root`` the manifest file).

    ``complete_list``: a file naming the clips whose transcript is whole (default: ``complete.txt``
    in the corpus folder or beside its ``wav/``, if present; :func:`apply_complete_list`).

    Raises:
        UserError: unknown corpus, missing folder, or no recognised file (the message names
            the layout that was expected).
    """
    root = Path(root)
    if name == "csv":
        from audiolab.data.emotion_manifest import list_manifest  # it builds on this module's records

        listing = list_manifest(root)
        if not listing.items:
            raise UserError(f"manifest {root} lists no usable rows (columns path,transcript,emotion,speaker)")
        return apply_complete_list(listing, complete_list) if complete_list is not None else listing
    if name not in CORPORA:
        raise UserError(f"unknown corpus {name!r}; choose one of {sorted(CORPORA)} or csv")
    layout = CORPORA[name]
    if not root.is_dir():
        raise UserError(f"{name} folder {root} does not exist; expected {layout.layout}")
    listing = layout.lister(root)
    listing = _drop_duplicates(listing)
    if not listing.items:
        seen = len(listing.unrecognised)
        raise UserError(f"no recognised {name} files in {root} ({seen} audio file(s) with other names, "
                        f"{sum(listing.excluded.values())} excluded); expected the layout {layout.layout}")
    complete_list = complete_list if complete_list is not None else find_complete_list(root)
    return apply_complete_list(listing, complete_list) if complete_list is not None else listing


def load_examples(listing: Listing, sample_rate: int = 16000, limit: int | None = None,
                  skipped: list | None = None, max_seconds: float | None = None) -> list[Example]:
    """Read the audio of a :class:`Listing` (resampled to ``sample_rate`` Hz, down-mixed to mono).

    Unreadable and empty files are reported by path and skipped (``iter_readable``); so are
    all-zero (silent) files and files holding NaN or infinite samples (they would spoil the
    features and a whole speaker's normalisation statistics). A clip longer than
    ``max_seconds`` is reported by path and cropped to its first ``max_seconds`` (one long
    recording would otherwise slow every epoch; its transcript then no longer matches, so it
    counts as incomplete). ``skipped`` (a list) collects ``(path, reason)``.
    ``limit`` keeps ``limit`` evenly spaced items (for smoke tests).
    """
    skipped = [] if skipped is None else skipped
    items = listing.items
    if limit and limit < len(items):  # evenly spaced, so a small subset still spans speakers and emotions
        items = [items[int(i)] for i in np.linspace(0, len(items) - 1, limit).round()]
    by_path = {it.path: it for it in items}
    examples = []
    for path, wav, sr in iter_readable([it.path for it in items], sample_rate=sample_rate, mono=True,
                                       skipped=skipped):
        if is_silent(wav):
            print(f"skipped: audio file {path} is silent (all samples zero)")
            skipped.append((path, "silent"))
            continue
        it = by_path[path]
        complete = it.transcript_complete
        if max_seconds is not None and len(wav) > max_seconds * sr:
            print(f"cropped: audio file {path} lasts {len(wav) / sr:.1f} s, longer than the {max_seconds:g} s "
                  "limit (--max-seconds); its first part is used, for the emotion head only")
            wav, complete = wav[:int(max_seconds * sr)], False
        examples.append(Example(wav.astype(np.float32), sr, it.transcript, it.emotion, it.speaker, str(path),
                                complete and bool(it.transcript.strip())))
    return examples


def load_corpus(name: str, root: Path, sample_rate: int = 16000, limit: int | None = None,
                verbose: bool = True, complete_list: Path | None = None,
                max_seconds: float | None = None) -> tuple[list[Example], dict]:
    """List and read a corpus; return ``(examples, report)``.

    ``complete_list`` and ``max_seconds``: see :func:`list_corpus` and :func:`load_examples`.
    ``report`` holds counts: ``files_recognised``, ``files_unrecognised``, ``files_excluded``,
    ``files_skipped_unreadable``, ``files_transcript_complete``, the first unrecognised paths,
    the skipped files and every reported problem (``problems``).

    Raises:
        UserError: as :func:`list_corpus`, or when no file could be read.
    """
    listing = list_corpus(name, root, complete_list=complete_list)
    if verbose:
        extra = f", {len(listing.unrecognised)} file(s) with unrecognised names" if listing.unrecognised else ""
        print(f"{name}: {len(listing.items)} recognised file(s) in {root}{extra}")
        for path in listing.unrecognised[:5]:
            print(f"  not recognised (ignored): {path}")
        for reason, count in listing.excluded.items():
            print(f"  excluded: {count} x {reason}")
    for line in listing.problems:          # always printed: each names a file or row the user must check
        print(f"  warning: {line}")
    skipped: list = []
    examples = load_examples(listing, sample_rate=sample_rate, limit=limit, skipped=skipped, max_seconds=max_seconds)
    if not examples:
        raise UserError(f"none of the {len(listing.items)} {name} file(s) in {root} could be read")
    n_complete = sum(ex.transcript_complete for ex in examples)
    if verbose and n_complete < len(examples):
        print(f"  transcripts: {n_complete} of {len(examples)} clips have their whole transcript in the audio "
              "(CTC term and CER); the others train and score the emotion head only")
    report = {"files_recognised": len(listing.items), "files_unrecognised": len(listing.unrecognised),
              "files_excluded": int(sum(listing.excluded.values())), "files_skipped_unreadable": len(skipped),
              "files_transcript_complete": n_complete,
              "unrecognised_examples": [str(p) for p in listing.unrecognised[:5]],
              "skipped": [f"{p}: {r}" for p, r in skipped], "problems": list(listing.problems)}
    return examples, report

