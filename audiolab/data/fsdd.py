"""The Free Spoken Digit Dataset (Z. Jackson et al.): ``{digit}_{speaker}_{index}.wav``, 8 kHz, split by speaker.

:func:`load_fsdd` reads the ``recordings`` folder; :func:`fsdd_speaker_split` holds a whole speaker
out for testing (and, optionally, a second one for validation).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from audiolab.core.progress import progress as progress_bar

from audiolab.core.io import find_audio_files
from audiolab.core.runtime import UserError
from audiolab.data.common import RealDataset, first_existing
from audiolab.data.keyword_clips import DIGIT_WORDS, FSDD_SAMPLE_RATE, Clip, KwsData, read_clip

_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z0-9-]+)_(\d+)$")


def find_fsdd(root: Path) -> Path | None:
    """The FSDD ``recordings`` folder under ``root`` (``fsdd/recordings``, ``free-spoken-digit-dataset/recordings``,
    ``recordings``, ``fsdd``, or ``root`` itself), or None."""
    root = Path(root)
    found = first_existing(root, ["fsdd/recordings", "free-spoken-digit-dataset/recordings", "recordings", "fsdd"],
                           must_contain="[0-9]_*_*.wav")
    if found is None and next(root.glob("[0-9]_*_*.wav"), None) is not None:
        return root
    return found


FSDD = RealDataset(
    name="fsdd", find=find_fsdd, looked_for="fsdd/recordings/{digit}_{speaker}_{index}.wav",
    how_to_get="git clone https://github.com/Jakobovski/free-spoken-digit-dataset and put its recordings/ "
               "folder at <data root>/fsdd/recordings.")


def load_fsdd(folder: Path, sample_rate: int = FSDD_SAMPLE_RATE, test_speaker: str | None = None,
              val_indices: Sequence[int] = range(5), progress: bool = True,
              val_speaker: str | None = None) -> KwsData:
    """Load FSDD clips ``{digit}_{speaker}_{index}.wav`` with a speaker-independent split.

    Args:
        folder: the ``recordings`` folder.
        sample_rate: rate in Hz (FSDD is 8 kHz).
        test_speaker: the held-out speaker (all of their clips are the test split); default the
            alphabetically last speaker.
        val_indices: recording indices of the *training* speakers used for validation (FSDD's own
            test indices 0-4); see :func:`fsdd_speaker_split`.
        val_speaker: hold this second speaker out whole as the validation split instead
            (speaker-independent validation, at the cost of one training speaker).

    Files whose names do not follow the pattern are reported and skipped.

    Raises:
        UserError: no FSDD files, fewer than two speakers, or ``test_speaker`` unknown.
    """
    folder = Path(folder)
    issues: list[tuple[str, str]] = []
    clips = []
    for path in progress_bar(find_audio_files(folder), "reading fsdd", disable=not progress):
        m = _FSDD_NAME.match(path.stem)
        if m is None:
            print(f"skipped: {path}: name does not follow {{digit}}_{{speaker}}_{{index}}.wav")
            issues.append((str(path), "name does not follow {digit}_{speaker}_{index}.wav, skipped"))
            continue
        got = read_clip(path, sample_rate, issues)
        if got is None:
            continue
        wav, sr, ch = got
        digit, speaker, index = int(m.group(1)), m.group(2), int(m.group(3))
        clips.append(Clip(wav, DIGIT_WORDS[digit], speaker, f"idx{index}", str(path), sr, ch))
    if not clips:
        raise UserError(f"no readable FSDD files ({{digit}}_{{speaker}}_{{index}}.wav) in {folder}")
    data = KwsData("fsdd", "real", sample_rate, list(DIGIT_WORDS), clips, issues)
    return fsdd_speaker_split(data, test_speaker, val_indices, val_speaker)


def fsdd_speaker_split(data: KwsData, test_speaker: str | None = None,
                       val_indices: Sequence[int] = range(5), val_speaker: str | None = None) -> KwsData:
    """Re-split FSDD clips (in place) so that the test speaker is never seen in training.

    ``test``: every clip of ``test_speaker``. ``val``: recordings with an index in
    ``val_indices`` of the other speakers (so validation is *not* speaker-independent: with
    only 3-5 speakers in FSDD, holding a second speaker out for validation would leave too
    few to train on). ``train``: the rest. The recording index is read from ``clip.path``.
    With ``val_speaker`` every clip of that speaker is the validation split instead (validation
    is then speaker-independent too, and one speaker fewer is trained on).

    Raises:
        UserError: fewer than two speakers (three with ``val_speaker``), an unknown
            ``test_speaker`` / ``val_speaker``, or the two the same.
    """
    speakers = sorted({c.speaker for c in data.clips})
    if len(speakers) < 2:
        raise UserError(f"a speaker-independent split needs at least two speakers, found {speakers}")
    test_speaker = test_speaker or speakers[-1]
    if test_speaker not in speakers:
        raise UserError(f"--test-speaker {test_speaker!r} is not in the data; speakers: {speakers}")
    if val_speaker is not None:
        if val_speaker not in speakers or val_speaker == test_speaker or len(speakers) < 3:
            raise UserError(f"--val-speaker {val_speaker!r} must be a speaker other than the test speaker "
                            f"{test_speaker!r}, with at least one left to train on; speakers: {speakers}")
        for c in data.clips:
            c.split = "test" if c.speaker == test_speaker else ("val" if c.speaker == val_speaker else "train")
        data.notes = [f"speaker-independent: test speaker {test_speaker}; validation speaker {val_speaker}; "
                      f"train speakers {[s for s in speakers if s not in (test_speaker, val_speaker)]}"]
        return data
    val_set = set(int(i) for i in val_indices)
    for c in data.clips:
        index = int(_FSDD_NAME.match(Path(c.path).stem).group(3))
        c.split = "test" if c.speaker == test_speaker else ("val" if index in val_set else "train")
    data.notes = [f"speaker-independent: test speaker {test_speaker}; train speakers "
                  f"{[s for s in speakers if s != test_speaker]}; validation = their recordings "
                  f"{min(val_set)}-{max(val_set)}"]
    return data


def fsdd_speakers(folder: Path) -> list[str]:
    """The speaker names in an FSDD recordings folder (from file names, no audio read)."""
    return sorted({m.group(2) for p in Path(folder).glob("*.wav") if (m := _FSDD_NAME.match(p.stem))})

