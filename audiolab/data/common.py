"""Where the data lives and which dataset a run uses (docs/ARCHITECTURE.md, "Data flow of one run").

- ``resolve_data_root``: ``--data-root``, else ``$AUDIOLAB_DATA``, else ``data/``.
- ``choose_dataset``: with ``--dataset auto`` the first real dataset found under the data
  root, otherwise the embedded synthetic default, announced by a banner that says how to
  get the real one; a named real dataset that is missing is a :class:`DatasetNotFound`
  error (what was looked for, where, how to get it), never a silent fallback.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from audiolab.core.runtime import UserError

if TYPE_CHECKING:
    import pandas as pd

SYNTHETIC_NOTE = "SYNTHETIC DEMO DATA: numbers on it show the pipeline works, not how it does on real audio."


class DatasetNotFound(UserError):
    """A named real dataset is not under the data root."""


def resolve_data_root(arg: str | Path | None) -> Path:
    """``arg`` if given, else ``$AUDIOLAB_DATA``, else ``data/`` (relative to the working directory).

    Raises:
        UserError: the chosen root exists but is not a folder (a file would otherwise mean
            "no real data here" and a silent fall-back to the synthetic default).
    """
    env = os.environ.get("AUDIOLAB_DATA")
    root, where = ((Path(arg).expanduser(), "--data-root") if arg else
                   (Path(env).expanduser(), "$AUDIOLAB_DATA") if env else (Path("data"), "the default data root"))
    if root.exists() and not root.is_dir():
        raise UserError(f"{where} {root} is a file, not a folder of datasets")
    return root


# ------------------------------------------------------------------ task tables (CSV) checked before any work
def finite_float(text: str) -> float:
    """A finite number (the cell type of :func:`read_table`)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def relative_path(text: str) -> str:
    """A path inside the table's folder: relative, without ``..`` (the cell type of :func:`read_table`)."""
    if Path(text).is_absolute() or ".." in Path(text).parts:
        raise ValueError("not a path inside the data folder")
    return text


#: info.csv of q1_generate.py: column -> cell type
Q1_INFO_COLUMNS: dict[str, Callable[[str], Any]] = {
    "id": int, "split": lambda t: t if t in ("train", "test") else _bad("neither train nor test"),
    "f1_hz": finite_float, "f2_hz": finite_float, "a1": finite_float, "a2": finite_float,
    "phase1_rad": finite_float, "phase2_rad": finite_float, "sample_rate": int, "n_samples": int,
    "source1_path": relative_path, "source2_path": relative_path, "mixture_path": relative_path}


def _bad(why: str):
    raise ValueError(why)


def read_table(path: str | Path, columns: Mapping[str, Callable[[str], Any]], *, unique: str | None = None,
               fix: str = "") -> "pd.DataFrame":
    """Read a task's CSV table, every cell checked, before any training (docs/ARCHITECTURE.md, "Rules").

    Args:
        path: the CSV file (UTF-8, a header line).
        columns: the columns that must be present, each with its cell type (``int``,
            :func:`finite_float`, :func:`relative_path`, ...); other columns are kept as text.
        unique: a column whose values must not repeat (e.g. ``id``).
        fix: what to do about a bad table, appended to the message.

    Returns:
        the table, one row per data line, required columns converted.

    Raises:
        UserError: missing file, bytes that are not UTF-8, a missing column, a line with another
            number of fields than the header, an empty or malformed cell, a repeated ``unique``
            value, or no rows; the message names the line and column.
    """
    import pandas as pd
    path = Path(path)
    tail = f"; {fix}" if fix else ""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}{tail}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise UserError(f"{path}, line {line}: not UTF-8 text{tail}") from None
    lines = list(csv.reader(io.StringIO(text)))
    if not lines:
        raise UserError(f"{path} is empty{tail}")
    header, rows, seen = lines[0], [], {}
    missing = [c for c in columns if c not in header]
    if missing:
        raise UserError(f"{path} lacks the column(s) {', '.join(missing)}{tail}")
    for number, fields in enumerate(lines[1:], start=2):
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise UserError(f"{path}, line {number}: {len(fields)} fields, the header has {len(header)}{tail}")
        row = dict(zip(header, fields))
        for col, kind in columns.items():
            cell = row[col].strip()
            try:
                if not cell:
                    raise ValueError("empty")
                row[col] = kind(cell)
            except ValueError as err:
                why = (str(err) if str(err).startswith(("not ", "empty", "neither"))
                       else "not an integer" if kind is int else "not a number")
                raise UserError(f"{path}, line {number}, column {col}: {cell!r} is {why}{tail}") from None
        if unique is not None:
            if row[unique] in seen:
                raise UserError(f"{path}, line {number}: {unique} {row[unique]} repeats line {seen[row[unique]]}{tail}")
            seen[row[unique]] = number
        rows.append(row)
    if not rows:
        raise UserError(f"{path} holds no rows{tail}")
    return pd.DataFrame(rows, columns=header)


@dataclass
class RealDataset:
    """A real dataset a script can use.

    Attributes:
        name: the ``--dataset`` value, e.g. ``"emovo"``.
        find: ``find(data_root) -> Path | None``: the dataset's folder if present.
        how_to_get: one or two sentences: where to download it and where to put it.
        download: optional ``download(data_root) -> Path`` used with ``--download``.
    """

    name: str
    find: Callable[[Path], Path | None]
    how_to_get: str
    download: Callable[[Path], Path] | None = None
    looked_for: str = ""


@dataclass
class DatasetChoice:
    """The outcome of :func:`choose_dataset`: ``name``, ``path`` (None for synthetic), ``source``."""

    name: str
    path: Path | None
    source: str  # "real" | "synthetic"
    notes: list[str] = field(default_factory=list)

    @property
    def synthetic(self) -> bool:
        return self.source == "synthetic"


def first_existing(root: Path, candidates: Sequence[str], must_contain: str | None = None) -> Path | None:
    """First ``root / c`` that is a folder (and, if given, has a file matching glob ``must_contain``)."""
    for cand in candidates:
        path = root / cand
        if path.is_dir() and (must_contain is None or next(path.rglob(must_contain), None) is not None):
            return path
    return None


def banner(lines: Sequence[str]) -> None:
    """Print a framed banner (dataset choice, synthetic-data warnings)."""
    width = max(len(s) for s in lines) + 4
    print("=" * width)
    for s in lines:
        print(f"| {s}")
    print("=" * width)


def choose_dataset(requested: str, data_root: Path, real: Sequence[RealDataset], synthetic_name: str,
                   synthetic_description: str, download: bool = False) -> DatasetChoice:
    """Pick the dataset for a run and print a banner saying which.

    Args:
        requested: the ``--dataset`` value: ``"auto"``, a real dataset's name or
            ``synthetic_name``.
        data_root: from :func:`resolve_data_root`.
        real: the real datasets the script understands, in order of preference.
        synthetic_name: the embedded default's name (e.g. ``"synthetic"``).
        synthetic_description: what the embedded default is, for the banner.
        download: try the dataset's ``download`` when it is named and missing.

    Raises:
        DatasetNotFound: a named real dataset is missing (and not downloadable).
        UserError: ``requested`` is unknown.
    """
    by_name = {d.name: d for d in real}
    hints = [f"  {d.name}: {d.how_to_get}" for d in real]
    if requested == synthetic_name:
        banner([f"dataset: {synthetic_name} ({synthetic_description})", SYNTHETIC_NOTE])
        return DatasetChoice(synthetic_name, None, "synthetic")
    if requested == "auto":
        for d in real:
            path = d.find(data_root)
            if path is not None:
                banner([f"dataset: {d.name} (real) from {path}"])
                return DatasetChoice(d.name, path, "real")
        banner([f"dataset: {synthetic_name} ({synthetic_description})", SYNTHETIC_NOTE,
                f"no real dataset found under {data_root.resolve()}; to use one, put it there "
                "(or pass --data-root / set AUDIOLAB_DATA):", *hints])
        return DatasetChoice(synthetic_name, None, "synthetic")
    if requested not in by_name:
        raise UserError(f"unknown dataset {requested!r}; choose auto, {synthetic_name} or one of {sorted(by_name)}")
    d = by_name[requested]
    path = d.find(data_root)
    if path is None and download:
        if d.download is None:
            raise DatasetNotFound(f"{d.name} cannot be downloaded automatically. {d.how_to_get}")
        path = d.download(data_root)
    if path is None:
        looked = d.looked_for or f"a '{d.name}' folder"
        raise DatasetNotFound(f"dataset {d.name!r} not found: looked for {looked} under {data_root.resolve()}. "
                              f"{d.how_to_get}")
    banner([f"dataset: {d.name} (real) from {path}"])
    return DatasetChoice(d.name, path, "real")
