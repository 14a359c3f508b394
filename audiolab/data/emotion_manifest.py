"""A CSV manifest of emotional speech (``path,transcript,emotion,speaker``) and emotion-label normalisation.

:func:`list_manifest` is the ``csv`` entry of :func:`audiolab.data.emotion.list_corpus`;
:func:`normalize_emotion` maps a manifest's labels onto the names the corpus loaders produce.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from pathlib import Path

from audiolab.core.runtime import UserError
from audiolab.data.emotion import Listing, UtteranceInfo


#: the emotion names the corpus loaders produce; manifest labels are mapped onto them (``normalize_emotion``)
CANONICAL_EMOTIONS = ("anger", "boredom", "calm", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
#: other spellings of the canonical names (English adjectives, the corpora's own codes)
EMOTION_ALIASES = {
    "angry": "anger", "ang": "anger", "bored": "boredom", "disgusted": "disgust", "dis": "disgust",
    "fearful": "fear", "afraid": "fear", "scared": "fear", "fea": "fear", "happy": "happiness", "joy": "happiness",
    "hap": "happiness", "sad": "sadness", "neu": "neutral", "surprised": "surprise", "ps": "surprise",
    "pleasant surprise": "surprise", "sur": "surprise",
}


def normalize_emotion(label: str) -> tuple[str, bool]:
    """Map an emotion label onto one class name: case folded, whitespace/underscores/hyphens collapsed to
    one space, known spellings mapped (``ANGER``, ``Angry`` -> ``anger``; ``EMOTION_ALIASES``).

    Returns ``(name, known)``: ``known`` is False for a label outside ``CANONICAL_EMOTIONS`` and the
    aliases (e.g. a typo such as ``neutrale``); the caller reports it and keeps it as its own class.
    """
    name = re.sub(r"[\s_-]+", " ", unicodedata.normalize("NFC", label).casefold()).strip()
    name = EMOTION_ALIASES.get(name, name)
    return name, name in CANONICAL_EMOTIONS


def list_manifest(manifest: Path) -> Listing:
    """A CSV manifest with a header ``path,transcript,emotion,speaker`` (paths relative to its folder).

    Read as UTF-8 with or without a byte-order mark (spreadsheets write one). Emotion labels are
    normalised (:func:`normalize_emotion`); labels outside the known names are reported in
    ``problems`` and kept as their own class. A row with an empty transcript trains the emotion head
    only (``transcript_complete=False``). A path listed twice with identical labels is kept once and
    reported; twice with different labels is an error.

    Raises:
        UserError: the file is missing or unreadable, lacks one of the columns, or lists one audio path
            with different labels (the message names the path and the rows).
    """
    manifest = Path(manifest)
    if not manifest.is_file():
        raise UserError(f"manifest {manifest} does not exist; expected a CSV with columns "
                        "path,transcript,emotion,speaker")
    out = Listing()
    rows_of: dict[Path, tuple[int, UtteranceInfo]] = {}
    unknown: dict[str, list[str]] = {}
    empty: list[int] = []
    try:
        fh = open(manifest, newline="", encoding="utf-8-sig")
        with fh:
            reader = csv.DictReader(fh)
            fields = [f.strip() for f in (reader.fieldnames or [])]
            missing = {"path", "transcript", "emotion", "speaker"} - set(fields)
            if missing:
                raise UserError(f"manifest {manifest} lacks the column(s) {sorted(missing)}; expected a header "
                                "path,transcript,emotion,speaker")
            reader.fieldnames = fields
            for line_no, row in enumerate(reader, start=2):
                if not (row["path"] or "").strip() or not (row["emotion"] or "").strip():
                    out.excluded["row without path or emotion"] += 1
                    continue
                path = Path(row["path"].strip())
                path = path if path.is_absolute() else manifest.parent / path
                emotion, known = normalize_emotion(row["emotion"])
                if not known:
                    unknown.setdefault(row["emotion"].strip(), []).append(str(line_no))
                transcript = (row["transcript"] or "").strip()
                if not transcript:
                    empty.append(line_no)
                info = UtteranceInfo(path, transcript, emotion, (row["speaker"] or "").strip() or "unknown",
                                     bool(transcript))
                key = path.resolve()
                if key in rows_of:
                    first_line, first = rows_of[key]
                    if (first.transcript, first.emotion, first.speaker) != (info.transcript, info.emotion,
                                                                            info.speaker):
                        raise UserError(f"manifest {manifest} lists {path} twice with different labels (rows "
                                        f"{first_line} and {line_no}); keep one row per audio file")
                    out.problems.append(f"{manifest}: row {line_no} repeats row {first_line} ({path}); counted once")
                    out.excluded["exact duplicate row (named above)"] += 1
                    continue
                rows_of[key] = (line_no, info)
                out.items.append(info)
    except UnicodeDecodeError as err:
        raise UserError(f"manifest {manifest} is not UTF-8 text: {err}") from None
    for label, lines in unknown.items():
        out.problems.append(f"{manifest}: emotion label {label!r} (rows {', '.join(lines[:5])}"
                            f"{', ...' if len(lines) > 5 else ''}) is not a known emotion name "
                            f"({', '.join(CANONICAL_EMOTIONS)}); kept as its own class -- check its spelling")
    if empty:
        out.problems.append(f"{manifest}: {len(empty)} row(s) with an empty transcript (rows "
                            f"{', '.join(map(str, empty[:5]))}{', ...' if len(empty) > 5 else ''}); they train "
                            "and score the emotion head only")
    return out

