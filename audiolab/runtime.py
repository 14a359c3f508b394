"""Run-time plumbing every script shares: CLI flags, seeding, device choice, metrics.json.

Conventions (see README "Outputs"):
- every script takes ``--seed``, ``--device auto|cpu|cuda|mps``, ``--epochs``, ``--quick``
  and ``--out-dir`` (default ``outputs/<script name>``);
- ``write_metrics`` writes ``metrics.json`` atomically with flat snake_case keys plus
  ``dataset``, ``data_source``, ``config``, ``seed``, ``git_commit``, ``device`` and
  ``torch_version``.
"""

from __future__ import annotations

import argparse
import csv
import errno
import json
import math
import os
import random
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent


class UserError(Exception):
    """A problem with the user's input or set-up, reported as one clear message.

    Scripts catch it in ``main_guard`` and exit with status 2 and no traceback.
    """


def main_guard(main, argv=None) -> int:
    """Run ``main(argv)`` and turn :class:`UserError` and Ctrl-C into clean exits.

    Returns the process exit status: 0 on success, 2 for a ``UserError`` (message on
    stderr), 130 for KeyboardInterrupt (checkpoints written so far are kept).
    """
    try:
        main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in _OUTPUT_ERRNOS:
            raise
        print(f"error: {_describe_os_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: checkpoints written so far are kept; rerun with --resume "
              "where the script supports it.", file=sys.stderr)
        return 130
    finally:
        release_out_dir_locks()
    return 0


# --------------------------------------------------------------------------- CLI
def base_parser(description: str, *, epochs: int | None = None, seed: int = 0) -> argparse.ArgumentParser:
    """An ``argparse`` parser with the flags every script shares.

    Args:
        description: the script's docstring (shown by ``--help``).
        epochs: default for ``--epochs``; ``None`` leaves the flag out (for scripts
            that do not train).
        seed: default random seed.
    """
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
        conflict_handler="resolve")  # a script may redefine a shared flag (e.g. denoise's --threads)
    parser.add_argument("--seed", type=int, default=seed, help="random seed (default %(default)s)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                        help="compute device; auto picks cuda, then mps, then cpu (default %(default)s)")
    if epochs is not None:
        parser.add_argument("--epochs", type=positive_int, default=epochs,
                            help="training epochs (default %(default)s)")
        parser.add_argument("--amp", action="store_true",
                            help="mixed precision (float16 autocast + GradScaler) on CUDA; ignored on the CPU")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes for a smoke test (seconds, not meaningful numbers)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where outputs go (default outputs/<script name>)")
    add_threads_arg(parser)
    return parser


# ------------------------------------------------------------------- CPU threads
def default_threads(n_cpus: int | None = None) -> int:
    """The intra-op thread count every script starts with: half the usable CPUs, 1 to 4.

    ``n_cpus`` defaults to the CPUs this process may run on (``os.sched_getaffinity``,
    which honours ``taskset`` and container CPU sets), else ``os.cpu_count()``. Half of
    them, because the models here are small: a second OpenMP thread gains little on an
    idle machine, while a thread that has to share its core with another process stalls
    every parallel region at OpenMP's barrier (its partner spin-waits), several times
    slower in wall and CPU time (measurements: experiments/make_run.md). With 2 CPUs that
    is 1 thread, and ``make run`` fills the second core with a second script.
    """
    if n_cpus is None:
        try:
            n_cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # macOS / Windows have no sched_getaffinity
            n_cpus = os.cpu_count() or 1
    return max(1, min(4, n_cpus // 2))


def set_threads(n: int | None = None) -> int:
    """Set PyTorch's intra-op CPU threads and return the number in force.

    ``n`` >= 1 is used as given (``--threads``). ``None`` or 0 keeps ``$OMP_NUM_THREADS``
    when the user set it (PyTorch read it at start-up), else :func:`default_threads`.
    Called once when this module is imported, so every script starts with the policy.
    """
    if n and n > 0:
        torch.set_num_threads(n)
    elif not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(default_threads())
    return torch.get_num_threads()


class _ThreadsAction(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        set_threads(values)


def add_threads_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads N``: PyTorch CPU threads for this run, applied as the flag is parsed."""
    parser.add_argument("--threads", type=positive_int, default=None, action=_ThreadsAction,
                        help="PyTorch CPU threads (default: $OMP_NUM_THREADS, else half the usable CPUs, "
                             "1 to 4; more threads only pay off on an otherwise idle machine)")


set_threads()  # the policy above, in force for every script that imports this module


def option_given(option: str, argv: list[str] | None = None) -> bool:
    """True when ``option`` (e.g. ``"--epochs"``) is on the command line ``argv`` (default ``sys.argv[1:]``).

    Accepts ``--epochs 5``, ``--epochs=5`` and argparse's unambiguous prefixes (``--ep 5``);
    stops at ``--``. Scripts use it to give a synthetic demo smaller sizes than real data
    unless the user chose the size.
    """
    argv = sys.argv[1:] if argv is None else argv
    for token in argv:
        if token == "--":
            break
        name = token.split("=", 1)[0]
        if name.startswith("--") and len(name) > 2 and option.startswith(name):
            return True
    return False


def add_data_args(parser: argparse.ArgumentParser, datasets: Iterable[str]) -> None:
    """Add ``--data-root``, ``--dataset`` and ``--download`` (see DESIGN "Data flow")."""
    names = ["auto", *datasets]
    parser.add_argument("--data-root", type=Path, default=None,
                        help="folder that holds the datasets (default $AUDIOLAB_DATA, else data/)")
    parser.add_argument("--dataset", default="auto", choices=names,
                        help="which dataset; auto uses a real one found under the data root, "
                             "else the embedded synthetic default (default %(default)s)")
    parser.add_argument("--download", action="store_true",
                        help="download the named real dataset into the data root if missing")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def float_range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
                hi_open: bool = False):
    """argparse type factory: a finite float in ``[lo, hi]`` (``lo_open``/``hi_open`` exclude the end).

    ``None`` leaves that side unbounded. The message names the allowed range, e.g.
    ``must be in [0, 1], got 2``; argparse prefixes the flag name.
    """
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        ok = math.isfinite(value)
        if lo is not None:
            ok = ok and (value > lo if lo_open else value >= lo)
        if hi is not None:
            ok = ok and (value < hi if hi_open else value <= hi)
        if not ok:
            raise argparse.ArgumentTypeError(f"must be in {_range_text(lo, hi, lo_open, hi_open)}, got {text}")
        return value
    parse.__name__ = "float_range"
    return parse


def int_range(lo: int | None = None, hi: int | None = None):
    """argparse type factory: an integer in ``[lo, hi]`` (``None`` leaves that side unbounded)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be in {_range_text(lo, hi, False, False)}, got {value}")
        return value
    parse.__name__ = "int_range"
    return parse


def _range_text(lo, hi, lo_open: bool, hi_open: bool) -> str:
    left = "(-inf" if lo is None else f"{'(' if lo_open else '['}{lo:g}"
    right = "inf)" if hi is None else f"{hi:g}{')' if hi_open else ']'}"
    return f"{left}, {right}"


def out_dir_for(args: argparse.Namespace, script: str) -> Path:
    """The output folder ``args.out_dir`` or ``outputs/<script>``, created and locked for this run.

    Every script calls this before it writes anything, so it is also where the checks that
    apply to every run live:

    - ``--device`` must name a device this machine has (:func:`select_device`), so
      ``--device cuda`` without CUDA is the same clear error in every script;
    - the folder is created (a read-only parent is a clear error, not a traceback);
    - the folder is locked (:func:`lock_out_dir`): a second run into the same folder
      while this one holds it stops with a clear error instead of mixing its outputs in;
    - the code's commit is read (:func:`git_commit`), so ``metrics.json`` names the commit the
      run started from, not one made while it trained.

    Raises:
        UserError: the device is unavailable, the folder cannot be created or written,
            or another live run holds it.
    """
    if getattr(args, "device", None) is not None:
        select_device(args.device)
    git_commit()                                    # fixed now: metrics.json names the code this run started with
    path = Path(args.out_dir) if getattr(args, "out_dir", None) else Path("outputs") / script
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create the output folder {path}: {_describe_os_error(err)}") from None
    if not path.is_dir():
        raise UserError(f"the output folder {path} is not a folder")
    lock_out_dir(path)
    return path


# ------------------------------------------------------------------ output-folder lock
LOCK_NAME = ".audiolab.lock"
_OUTPUT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOENT}
_HELD_LOCKS: dict[Path, int] = {}


def _describe_os_error(err: OSError) -> str:
    """``"<path>: <reason>"`` for an ``OSError`` from writing output, e.g. a read-only folder."""
    where = err.filename or ""
    reason = err.strerror or str(err)
    hint = {errno.EACCES: " (no write permission)", errno.EPERM: " (no write permission)",
            errno.EROFS: " (read-only file system)", errno.ENOSPC: " (disk full)",
            errno.ENOENT: " (it does not exist, or the folder vanished during the run)"}.get(err.errno, "")
    return f"{where}: {reason}{hint}" if where else f"{reason}{hint}"


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
        raise UserError(f"cannot write to the output folder {path}: {_describe_os_error(err)}") from None
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


def is_main_process() -> bool:
    """False in the non-zero ranks of a ``torchrun`` launch (``RANK`` set by torchrun), else True.

    Only the main process writes outputs: the write helpers here, ``io.save_audio`` and
    ``plotting.save_figure`` do nothing elsewhere (see ``audiolab.train`` for torchrun).
    """
    return os.environ.get("RANK", "0") in ("", "0")


# ----------------------------------------------------------------- reproducibility
def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA); return a seeded torch.Generator."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def select_device(name: str = "auto") -> torch.device:
    """Resolve ``auto|cpu|cuda|mps`` to a ``torch.device``.

    ``auto`` prefers CUDA, then Apple MPS, then the CPU.

    Raises:
        UserError: the named device is not available on this machine.
    """
    name = (name or "auto").lower()
    if name in {"auto", "cuda"} and "LOCAL_RANK" in os.environ and torch.cuda.is_available():
        local = int(os.environ["LOCAL_RANK"])  # torchrun: one GPU per process
        if local >= torch.cuda.device_count():
            raise UserError(f"torchrun started more processes on this machine than it has GPUs "
                            f"({torch.cuda.device_count()}); lower --nproc_per_node")
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but CUDA is not available here; use --device cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None
                              and torch.backends.mps.is_available()):
        raise UserError("--device mps was asked for but MPS is not available here; use --device cpu")
    if name not in {"cpu", "cuda", "mps"}:
        raise UserError(f"unknown device {name!r}; choose auto, cpu, cuda or mps")
    return torch.device(name)


_GIT_COMMIT: str | None = None


def git_commit() -> str:
    """The commit of the code this process runs, for ``metrics.json``.

    HEAD's hash when first asked (:func:`out_dir_for` asks as every run starts), with
    ``-dirty`` appended when tracked files differed from it then (``git describe --dirty``'s
    convention); ``"unknown"`` outside a git checkout or without git. Asked once per process, so
    a commit made while a long run trains does not relabel the results of the code it started with.
    """
    global _GIT_COMMIT
    if _GIT_COMMIT is None:
        try:
            head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
                                  capture_output=True, text=True, timeout=5).stdout.strip()
            dirty = head and subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain",
                                             "--untracked-files=no"],
                                            capture_output=True, text=True, timeout=5).stdout.strip()
            _GIT_COMMIT = (head + ("-dirty" if dirty else "")) if head else "unknown"
        except (OSError, subprocess.SubprocessError):
            _GIT_COMMIT = "unknown"
    return _GIT_COMMIT


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
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON ({err})") from None


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

