"""Output folders and the files a run writes: the locked ``--out-dir``, atomic JSON / CSV, ``metrics.json``.

Conventions (docs/ARCHITECTURE.md, "Outputs"): ``write_metrics`` writes ``metrics.json``
atomically with flat snake_case keys plus ``dataset``, ``data_source``, ``config``, ``seed``,
``git_commit``, ``device`` and ``torch_version``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import torch

from audiolab.core.runtime import UserError, describe_os_error, git_commit, is_main_process, select_device


def out_dir_for(args: argparse.Namespace, script: str) -> Path:
    """The output folder ``args.out_dir`` or ``outputs/<script>``, created and locked for this run.

    Every script calls this before it writes anything, so it is also where the checks that
    apply to every run live:

    - ``--device`` must name a device this machine has (:func:`select_device`), so
      ``--device cuda`` without CUDA is the same clear error in every script;
    - the folder belongs to ``script`` (:func:`check_owner`): a folder holding another script's
      results or files no script wrote is refused before anything is written, and the folder
      gets the owner marker (:func:`mark_owner`);
    - the folder is created (a read-only parent is a clear error, not a traceback);
    - the folder is locked (:func:`lock_out_dir`): a second run into the same folder
      while this one holds it stops with a clear error instead of mixing its outputs in;
    - the code's commit is read (:func:`git_commit`), so ``metrics.json`` names the commit the
      run started from, not one made while it trained.

    Raises:
        UserError: the device is unavailable, the folder belongs to something else, cannot be
            created or written, or another live run holds it.
    """
    if getattr(args, "device", None) is not None:
        select_device(args.device)
    _SCHEDULES.clear()
    git_commit()                                    # fixed now: metrics.json names the code this run started with
    path = Path(args.out_dir) if getattr(args, "out_dir", None) else Path("outputs") / script
    check_owner(path, script, what="output folder (--out-dir)", config_keys=set(vars(args)))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create the output folder {path}: {describe_os_error(err)}") from None
    if not path.is_dir():
        raise UserError(f"the output folder {path} is not a folder")
    lock_out_dir(path)
    mark_owner(path, script)
    return path


def part_out_dir(args: argparse.Namespace, script: str, part: str) -> Path:
    """``<out>/<part>`` of a script with subcommands, created, with ``<out>`` locked (:func:`out_dir_for`).

    Each subcommand writes its own subfolder; :func:`write_combined_metrics` merges their
    headlines into ``<out>/metrics.json``.

    Raises:
        UserError: as :func:`out_dir_for`, or the subfolder cannot be created.
    """
    out_dir = out_dir_for(args, script) / part
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create the output folder {out_dir}: {err.strerror or err}") from None
    return out_dir


def write_combined_metrics(root: str | Path, part: str, metrics: Mapping[str, Any], *, args: argparse.Namespace,
                           dataset: str, data_source: str, device: torch.device | str | None = None,
                           anchors: Iterable[Mapping[str, Any]] = ()) -> Path:
    """Merge subcommand ``part``'s metrics into ``<root>/metrics.json``, which holds every part run so far.

    The file keeps the other parts' metrics and ``<part>_dataset`` / ``<part>_data_source``
    keys; its ``config`` maps each part to its arguments, its ``dataset`` lists the parts'
    datasets (parts in alphabetical order), and its ``data_source`` is ``real`` only when every
    part present used real data. ``anchors`` are kept for the metrics the file holds. A
    missing or unreadable file starts afresh.
    """
    path = Path(root) / "metrics.json"
    merged: dict = {}
    if path.exists():
        try:
            old = read_json(path)
            merged = {k: v for k, v in old.items() if k not in
                      {"dataset", "data_source", "seed", "git_commit", "device", "torch_version"}}
        except UserError:
            merged = {}
    configs = merged.pop("config", {}) if isinstance(merged.get("config"), dict) else {}
    configs[part] = vars(args)
    merged.update(metrics)
    merged[f"{part}_dataset"] = dataset
    merged[f"{part}_data_source"] = data_source
    parts = sorted(configs)
    sources = [merged[f"{p}_data_source"] for p in parts if f"{p}_data_source" in merged]
    datasets = "; ".join(f"{p}: {merged[p + '_dataset']}" for p in parts if p + "_dataset" in merged)
    return write_metrics(root, merged, args=configs, dataset=datasets,
                         data_source="real" if all(s == "real" for s in sources) else "synthetic",
                         device=device, anchors=[a for a in anchors if a["metric"] in merged])


# ------------------------------------------------------------------ ownership: delete only what we wrote
OWNER_NAME = ".audiolab-owner"
LOCK_NAME = ".audiolab.lock"


def folder_owner(path: str | Path) -> str | None:
    """The script named by ``<path>/.audiolab-owner`` (:func:`mark_owner`), or ``None`` without a readable marker."""
    try:
        with open(Path(path) / OWNER_NAME, "rb") as fh:
            return fh.read(200).decode("utf-8", "replace").strip() or None
    except OSError:
        return None


def check_owner(path: str | Path, script: str, *, what: str = "folder",
                legacy_names: Iterable[str] | None = None, config_keys: set[str] | None = None) -> None:
    """Refuse to write into ``path`` unless ``script`` may replace what is there (docs/ARCHITECTURE.md, "Rules").

    The rule every script follows before it writes, deletes or replaces anything: a folder is
    ``script``'s when it does not exist yet, is empty, or holds the marker ``.audiolab-owner``
    naming ``script`` (written by :func:`mark_owner`). A folder from before the marker existed
    counts as ``script``'s when ``legacy_names`` is given and it holds only those names (e.g.
    ``info.csv``, ``train``, ``test``); an output folder (no ``legacy_names``) when its own name
    is ``script`` (the default ``outputs/<script>``) or its ``metrics.json`` was written with
    every flag of ``config_keys`` (the same script's command line). Launcher logs (``*.log``,
    e.g. ``benchmarks/jobs.py``'s) in an output folder do not count as foreign files. A symbolic
    link to a data folder (it would be replaced, not its target) and a path naming a file are
    refused too. Nothing is written here.

    Raises:
        UserError: naming the folder, who owns it (another script, or files no audiolab script
            wrote) and what to do instead.
    """
    path = Path(path)
    if path.is_symlink() and legacy_names is not None:
        raise UserError(f"the {what} {path} is a symbolic link (to {os.readlink(path)}); name the real folder, "
                        "or a new one")
    if not path.exists():
        if path.is_symlink():
            raise UserError(f"the {what} {path} is a dangling symbolic link; name a real folder")
        return
    if not path.is_dir():
        raise UserError(f"the {what} {path} is a file, not a folder; name a new or empty folder")
    owner = folder_owner(path)
    if owner == script:
        return
    if owner is not None:
        raise UserError(f"the {what} {path} holds the outputs of {owner}, which {script} never overwrites; "
                        "choose another folder")
    try:
        names = sorted(p.name for p in path.iterdir() if p.name not in (LOCK_NAME, OWNER_NAME))
    except OSError as err:
        raise UserError(f"cannot read the {what} {path}: {describe_os_error(err)}") from None
    if legacy_names is None:
        names = [n for n in names if not n.endswith(".log")]
    if not names:
        return
    if legacy_names is not None and set(names) <= set(legacy_names):
        return
    if legacy_names is None and (path.resolve().name == script or _same_flags(path, config_keys)):
        return
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    raise UserError(f"the {what} {path} holds files {script.split()[0]} did not write ({shown}); it writes only "
                    "into a new or empty folder, or one it wrote before: choose another folder")


def _same_flags(folder: Path, config_keys: set[str] | None) -> bool:
    """Whether ``folder/metrics.json`` (from before the owner marker) was written with every flag in ``config_keys``."""
    if not config_keys or not (folder / "metrics.json").is_file():
        return False
    try:
        if (folder / "metrics.json").stat().st_size > 16 << 20:
            return False
        config = read_json(folder / "metrics.json").get("config")
    except (UserError, OSError, AttributeError):
        return False
    return isinstance(config, dict) and config_keys <= set(config)


def mark_owner(path: str | Path, script: str) -> None:
    """Write ``<path>/.audiolab-owner`` naming ``script`` (after :func:`check_owner` allowed it)."""
    if not is_main_process():
        return
    marker = Path(path) / OWNER_NAME
    if folder_owner(path) != script:
        try:
            marker.write_text(script + "\n")
        except OSError as err:
            raise UserError(f"cannot write to the folder {path}: {describe_os_error(err)}") from None


@contextmanager
def replace_folder(final: str | Path, script: str, legacy_names: Iterable[str]) -> Iterator[Path]:
    """Build a folder in ``<final>.partial`` and swap it in for ``final``, which only ``script`` may own.

    ``final`` and the staging folder are checked with :func:`check_owner` first (nothing is
    written when either belongs to something else, is a file or a symbolic link); the staging
    folder is locked (:func:`lock_out_dir`, so a second run into the same folder stops with a
    clear error), emptied of an interrupted run's files, marked, and yielded. On success the
    old ``final`` is removed and the staging folder renamed to it; on an error it stays
    (marked, so the next run reuses it) and ``final`` is untouched.

    Raises:
        UserError: as :func:`check_owner`, or another run is building the same folder.
    """
    final = Path(final)
    tmp = final.with_name(final.name + ".partial")
    check_owner(final, script, what="data folder", legacy_names=legacy_names)
    check_owner(tmp, script, what="staging folder", legacy_names=legacy_names)  # an older interrupted run's
    try:
        tmp.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create {tmp}: {describe_os_error(err)}") from None
    lock_out_dir(tmp)
    for entry in tmp.iterdir():
        if entry.name != LOCK_NAME:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    mark_owner(tmp, script)
    yield tmp
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    fd = _HELD_LOCKS.pop(tmp.resolve(), None)
    if fd is not None:
        os.close(fd)


# ------------------------------------------------------------------ output-folder lock
_HELD_LOCKS: dict[Path, int] = {}


def lock_out_dir(path: str | Path) -> Path:
    """Hold an exclusive lock on output folder ``path`` for the rest of this run.

    The lock is ``fcntl.flock`` on ``<path>/.audiolab.lock``: the kernel drops it when the
    process ends however it ends (crash, ``kill -9``), so a killed run never leaves the
    folder stuck; the lock file records the holder's pid for the error message only.
    Locking a folder this process already holds is a no-op (a script may call
    :func:`out_dir_for` twice, and tests call ``main`` repeatedly in one process).
    On platforms without ``fcntl`` (Windows) no lock is taken. Under ``torchrun`` only
    rank 0 (``$RANK``) takes the lock: the ranks of one job share their folder by design.

    Returns:
        the lock file's path.

    Raises:
        UserError: another live process holds the folder, or the folder is not writable.
    """
    path = Path(path)
    lock_path = path / LOCK_NAME
    key = path.resolve()
    if key in _HELD_LOCKS or not is_main_process():
        return lock_path
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return lock_path
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise UserError(f"cannot write to the output folder {path}: {describe_os_error(err)}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        try:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        except OSError:
            holder = "unknown"
        os.close(fd)
        raise UserError(f"another run (pid {holder}) is writing into {path}; wait for it to finish "
                        f"or choose another --out-dir") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD_LOCKS[key] = fd
    return lock_path


def release_out_dir_locks() -> None:
    """Release every output-folder lock this process holds (``main_guard`` calls it on exit)."""
    while _HELD_LOCKS:
        _, fd = _HELD_LOCKS.popitem()
        try:
            os.close(fd)  # closing the descriptor drops the flock
        except OSError:
            pass


# ------------------------------------------------------------------ atomic output
def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def match_umask(path: str | Path, mode: int = 0o666) -> None:
    """``chmod`` a temp file from ``tempfile.mkstemp`` (always 0600) to ``mode`` less the umask.

    Call it before the final ``os.replace`` of an atomic write, so outputs get the same
    permissions as the user's other files (normally 0644), not 0600.
    """
    os.chmod(path, mode & ~_current_umask())


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.Tensor):
        return _jsonable(value.detach().cpu().tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no inf/nan; a missing value is honest, "inf" is not a score
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


@contextmanager
def atomic_write(path: str | Path, suffix: str = ".tmp") -> Iterator[str]:
    """Yield a temp file's name beside ``path``; on success it replaces ``path``, on error it is removed.

    The pattern behind every output this project writes (JSON, CSV, WAV, checkpoints): write
    to ``tempfile.mkstemp`` in the same folder, give it the user's usual permissions
    (:func:`match_umask`; mkstemp makes 0600), then ``os.replace``, which is atomic on POSIX,
    so a crash or ``kill`` never leaves half a file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        match_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as pretty JSON via a temp file + rename, so a crash never leaves half a file.

    Non-finite floats are written as ``null``; tensors, arrays and paths are converted.
    """
    path = Path(path)
    if not is_main_process():
        return path
    with atomic_write(path) as tmp, open(tmp, "w") as fh:
        json.dump(_jsonable(obj), fh, indent=2, sort_keys=False)
        fh.write("\n")
    return path


def write_csv(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write dict rows as CSV via a temp file + rename; the columns are the union of the rows' keys, in order."""
    rows = list(rows)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    path = Path(path)
    if not is_main_process():
        return path
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


_SCHEDULES: dict[str, dict] = {}


def note_schedule(name: str, schedule: Mapping[str, Any]) -> None:
    """Record that training ``name`` followed ``schedule`` (an extended run); :func:`write_metrics` writes it
    as ``training_schedule``. :func:`out_dir_for` forgets earlier runs' notes."""
    _SCHEDULES[name] = dict(schedule)


def write_metrics(out_dir: str | Path, metrics: Mapping[str, Any], *, args: argparse.Namespace | Mapping | None,
                  dataset: str, data_source: str, device: torch.device | str | None = None,
                  anchors: list[Mapping[str, Any]] | None = None) -> Path:
    """Write ``<out_dir>/metrics.json`` (atomically) with the run's provenance.

    Args:
        out_dir: the script's output folder.
        metrics: flat snake_case keys with the unit in the name (``test_si_snr_db``).
        args: the parsed arguments, stored as ``config``; ``seed`` is taken from it.
        dataset: dataset name, e.g. ``"q1_sinusoids"`` or ``"emovo"``.
        data_source: ``"real"`` or ``"synthetic"``.
        device: the device the run used.
        anchors: optional reference numbers shown beside ours in the report, each
            ``{"metric": key, "anchor": value, "source": "who / where"}``; written to
            ``anchors.json`` beside the metrics.

    A run that extended a finished one (``--extend-to``, :func:`note_schedule`) also gets
    ``training_schedule``: ``{name: {"epochs": N, "extended_from_epochs": E}}``.

    Raises:
        ValueError: ``data_source`` is not ``real`` or ``synthetic``.
    """
    if data_source not in {"real", "synthetic"}:
        raise ValueError(f"data_source must be 'real' or 'synthetic', got {data_source!r}")
    config = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})
    record = dict(metrics)
    record.update({
        "dataset": dataset,
        "data_source": data_source,
        "config": config,
        "seed": config.get("seed"),
        "git_commit": git_commit(),
        "device": str(device) if device is not None else "cpu",
        "torch_version": torch.__version__,
        "world_size": torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1,
        "distributed_backend": str(torch.distributed.get_backend()) if torch.distributed.is_initialized() else None,
    })
    if _SCHEDULES:
        record["training_schedule"] = dict(_SCHEDULES)
    out_dir = Path(out_dir)
    path = write_json_atomic(out_dir / "metrics.json", record)
    if anchors:
        write_json_atomic(out_dir / "anchors.json", list(anchors))
    return path


def read_json(path: str | Path) -> Any:
    """Read a JSON file; raise UserError naming the path when it is missing or broken."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not valid JSON ({err})") from None
    except RecursionError:
        raise UserError(f"{path} is nested too deeply to be a metrics file") from None


def format_table(rows: list[Mapping[str, Any]], columns: list[str] | None = None, floatfmt: str = ".4g") -> str:
    """Format dict rows as a plain-text table (for benchmarks and final summaries)."""
    if not rows:
        return "(no rows)"
    columns = columns or list(rows[0].keys())

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return format(v, floatfmt) if math.isfinite(v) else "n/a"
        return "" if v is None else str(v)

    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)

