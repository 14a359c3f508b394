"""Run-time plumbing every script shares: the user-error type, CPU threads, seeding, device choice, git commit.

Command-line flags are in :mod:`audiolab.core.cli`, output folders and ``metrics.json`` in
:mod:`audiolab.core.outputs` (docs/ARCHITECTURE.md, "Data flow").
"""

from __future__ import annotations

import errno
import os
import random
import subprocess
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]  # audiolab/core/runtime.py -> the repository


class UserError(Exception):
    """A problem with the user's input or set-up, reported as one clear message.

    Scripts catch it in ``main_guard`` and exit with status 2 and no traceback.
    """


# OSErrors from writing output that main_guard reports as one line (disk full, read-only, ...)
OUTPUT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.ENOENT}


def describe_os_error(err: OSError) -> str:
    """``"<path>: <reason>"`` for an ``OSError`` from writing output, e.g. a read-only folder."""
    where = err.filename or ""
    reason = err.strerror or str(err)
    hint = {errno.EACCES: " (no write permission)", errno.EPERM: " (no write permission)",
            errno.EROFS: " (read-only file system)", errno.ENOSPC: " (disk full)",
            errno.EDQUOT: " (disk quota exceeded)", errno.EFBIG: " (file too large for this file system or limit)",
            errno.ENOENT: " (it does not exist, or the folder vanished during the run)"}.get(err.errno, "")
    return f"{where}: {reason}{hint}" if where else f"{reason}{hint}"


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


set_threads()  # the policy above, in force for every script that imports this module


def is_main_process() -> bool:
    """False in the non-zero ranks of a ``torchrun`` launch (``RANK`` set by torchrun), else True.

    Only the main process writes outputs: the write helpers here, ``io.save_audio`` and
    ``plotting.save_figure`` do nothing elsewhere (see ``audiolab.core.train`` for torchrun).
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
