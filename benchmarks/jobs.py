"""The one job pool of the benchmarks: run script command lines N at a time, each logged, timed and CPU-timed.

A benchmark builds one :class:`Job` per run (a fold, a model, a script) and calls
:func:`run_jobs`. Each job is a child process with its output in its own log file and
``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` set to ``threads``; on 2 cores ``--jobs 2 --threads 1``
keeps both busy without two OpenMP teams fighting over one core (experiments/make_run.md).
The first job that fails stops the others, and :class:`JobFailed` names it and its log.

Imported by the benchmark scripts, which Python runs with ``benchmarks/`` as ``sys.path[0]``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Job:
    """One child process: ``name`` (a fold, a model), its command line ``argv`` and its ``log`` file."""

    name: str
    argv: list[str]
    log: Path


@dataclass
class JobResult:
    """A finished job: exit status, wall-clock seconds and its own CPU seconds (user + system)."""

    name: str
    returncode: int
    wall_s: float
    cpu_s: float


class JobFailed(RuntimeError):
    """A job exited non-zero; ``result`` and ``log`` say which and where its output is."""

    def __init__(self, result: JobResult, log: Path):
        super().__init__(f"{result.name} failed (exit {result.returncode}); see {log}")
        self.result, self.log = result, log


def script(name: str, *args: str) -> list[str]:
    """The command line that runs the repository's script ``name`` (e.g. ``"q2_multitask.py"``) with ``args``."""
    return [sys.executable, str(REPO / name), *args]


def run_jobs(jobs: Sequence[Job], *, parallel: int = 1, threads: int | None = None,
             on_done: Callable[[JobResult], None] | None = None) -> dict[str, JobResult]:
    """Run ``jobs``, at most ``parallel`` at a time, in the order given; return ``{name: JobResult}``.

    Args:
        jobs: the runs; their names must be unique.
        parallel: how many children run at once (>= 1).
        threads: ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` for every child (``None``: inherited).
        on_done: called with each successful result as it finishes (one at a time), e.g. to write
            the results so far, so that an interrupted benchmark keeps them.

    Raises:
        ValueError: ``parallel`` < 1 or two jobs share a name.
        JobFailed: a job exited non-zero; the jobs still running are terminated first.
    """
    if parallel < 1:
        raise ValueError(f"parallel must be >= 1, got {parallel}")
    if len({j.name for j in jobs}) != len(jobs):
        raise ValueError("job names must be unique")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    procs: dict[str, subprocess.Popen] = {}
    stopping = threading.Event()
    print_lock = threading.Lock()

    def run_one(job: Job) -> JobResult:
        if stopping.is_set():
            return JobResult(job.name, -1, 0.0, 0.0)
        with print_lock:
            print(f">>> {job.name}: {' '.join(job.argv)}  (log: {job.log})", flush=True)
        job.log.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with open(job.log, "w") as log:
            proc = subprocess.Popen(job.argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
            procs[job.name] = proc
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own CPU time, even with others running
            proc.returncode = os.waitstatus_to_exitcode(status)
        result = JobResult(job.name, proc.returncode, time.perf_counter() - t0, usage.ru_utime + usage.ru_stime)
        if result.returncode != 0 and not stopping.is_set():
            raise JobFailed(result, job.log)
        with print_lock:
            print(f"<<< {job.name}: done in {result.wall_s / 60:.1f} min", flush=True)
            if on_done is not None:
                on_done(result)
        return result

    results: dict[str, JobResult] = {}
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = [pool.submit(run_one, job) for job in jobs]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in done if f.exception() is not None]
        if failed:
            stopping.set()
            for proc in procs.values():
                if proc.returncode is None:  # still running (its thread reaps it with os.wait4)
                    try:
                        proc.terminate()
                    except OSError:
                        pass
            for f in futures:
                f.cancel()
            wait(futures)
            raise failed[0].exception()
        for f in futures:
            result = f.result()
            results[result.name] = result
    return results
