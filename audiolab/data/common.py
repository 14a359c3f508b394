"""Where the data lives and which dataset a run uses (docs/ARCHITECTURE.md, "Data flow of one run").

- ``resolve_data_root``: ``--data-root``, else ``$AUDIOLAB_DATA``, else ``data/``.
- ``choose_dataset``: with ``--dataset auto`` the first real dataset found under the data
  root, otherwise the embedded synthetic default, announced by a banner that says how to
  get the real one; a named real dataset that is missing is a :class:`DatasetNotFound`
  error (what was looked for, where, how to get it), never a silent fallback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from audiolab.core.runtime import UserError

SYNTHETIC_NOTE = "SYNTHETIC DEMO DATA: numbers on it show the pipeline works, not how it does on real audio."


class DatasetNotFound(UserError):
    """A named real dataset is not under the data root."""


def resolve_data_root(arg: str | Path | None) -> Path:
    """``arg`` if given, else ``$AUDIOLAB_DATA``, else ``data/`` (relative to the working directory)."""
    if arg:
        return Path(arg).expanduser()
    env = os.environ.get("AUDIOLAB_DATA")
    return Path(env).expanduser() if env else Path("data")


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
