"""How long ``make run`` takes, per script and in total, idle and beside a competing process.

Usage::

    python benchmarks/make_run_time.py                      # make run on a fresh clone, idle + competing
    python benchmarks/make_run_time.py --conditions idle --jobs 1
    python benchmarks/make_run_time.py --threads-experiment # why 1 thread: a fixed training-step loop

``make run`` mode clones the repository's HEAD into a temporary folder (a fresh clone:
no ``data/``, no ``outputs/``, so every script runs its embedded synthetic default), links
this checkout's ``.venv`` into it, and runs ``make run JOBS=N`` there, once per condition:

- ``idle``: nothing else started by us (check the load average columns: other users'
  work on the machine is not under our control and is printed beside every number);
- ``compete``: one CPU-bound ``nice -n 19 python -c "while True: pass"`` runs throughout.

Per script it reads the wall and CPU time ``make run`` recorded (``outputs/.times``);
the total is the wall clock of the whole ``make run``. Targets: total <= 15 min
idle, <= 1.5x that with the competing process, no script's default over 3 min idle.

``--threads-experiment`` times a fixed number of Adam steps of two small models like the
scripts' (a 2-layer LSTM over 129 STFT bins, a 3-layer 2-D CNN on a spectrogram) in a
fresh process per setting: 1 or 2 PyTorch threads, OpenMP wait policy default or
``PASSIVE``, with and without the competing process, settings interleaved and repeated.

Results: a table on stdout and ``benchmarks/results/make_run_time.csv`` (or
``threads_experiment.csv``), each row with the load average before and after.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
from audiolab.core.outputs import format_table

TOTAL_IDLE_S, COMPETE_FACTOR, STEP_IDLE_S = 15 * 60, 1.5, 3 * 60


@contextmanager
def competitor(on: bool):
    """A CPU-bound ``nice -n 19`` Python loop while the block runs (when ``on``)."""
    proc = None
    if on:
        proc = subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
    try:
        yield
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()


def load() -> float:
    return round(os.getloadavg()[0], 2)


def clean_env() -> dict:
    """The environment a new user has: no thread or data settings of ours."""
    drop = {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "AUDIOLAB_DATA"}
    return {k: v for k, v in os.environ.items() if k not in drop}


QUICK_OVERRIDES = [f"CMD_{name}={cmd} --quick" for name, cmd in (
    ("q1_generate", "q1_generate.py"), ("q1_train_lstm", "q1_train_lstm.py"), ("q2_ctc", "q2_ctc.py"),
    ("q2_compare", "q2_compare.py"), ("q2_multitask", "q2_multitask.py"), ("hw_cnn1d", "hw_cnn1d.py"),
    ("hw_cnn2d", "hw_cnn2d.py"), ("vae_bss_images", "vae_bss.py images"), ("vae_bss_music", "vae_bss.py music"),
    ("speechcommands_rnn", "speechcommands_rnn.py"))]


def time_make_run(condition: str, jobs: int, keep: Path | None, quick: bool = False) -> list[dict]:
    """Run ``make run`` in a fresh clone under ``condition``; return one row per step plus a total row."""
    with tempfile.TemporaryDirectory(prefix="make_run_") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", "--local", str(REPO), str(clone)], check=True)
        venv = REPO / ".venv"
        if venv.exists():
            (clone / ".venv").symlink_to(venv.resolve())
        # the venv's install stamp names the requirements' checksum; an old mtime on the clone's
        # requirements.txt keeps make from re-installing into the shared venv
        os.utime(clone / "requirements.txt", (0, 0))
        load_before = load()
        with competitor(condition == "compete"):
            t0 = time.perf_counter()
            make = ["make", "-s", "run", f"JOBS={jobs}", *(QUICK_OVERRIDES if quick else [])]
            proc = subprocess.run(make, cwd=clone, env=clean_env(),
                                  capture_output=True, text=True)
            total = time.perf_counter() - t0
        load_after = load()
        print(proc.stdout[-4000:])
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
        rows = []
        for path in sorted((clone / "outputs" / ".times").glob("*.json")):
            rec = json.loads(path.read_text())
            rows.append({"condition": condition, "jobs": jobs, "step": rec["name"], "wall_s": rec["wall_s"],
                         "cpu_s": rec["cpu_s"], "returncode": rec["returncode"],
                         "load_before": load_before, "load_after": load_after})
        rows.append({"condition": condition, "jobs": jobs, "step": "TOTAL (make run)", "wall_s": round(total, 1),
                     "cpu_s": round(sum(r["cpu_s"] for r in rows), 1), "returncode": proc.returncode,
                     "load_before": load_before, "load_after": load_after})
        if keep is not None:
            dest = keep / condition
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(clone / "outputs", dest, ignore=shutil.ignore_patterns("*.pt"))
        return rows


STEP_LOOP = r"""
import resource, sys, time, torch, torch.nn as nn
kind, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads); torch.manual_seed(0)
if kind == "lstm":
    m = nn.LSTM(129, 128, num_layers=2, batch_first=True); x = torch.randn(16, 100, 129)
    f = lambda: m(x)[0].pow(2).mean()
else:
    m = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                      nn.Conv2d(16, 1, 3, padding=1))
    x = torch.randn(8, 1, 129, 100); f = lambda: m(x).pow(2).mean()
opt = torch.optim.Adam(m.parameters(), 1e-3)
def step():
    opt.zero_grad(); f().backward(); opt.step()
step(); step()
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
for _ in range(steps):
    step()
t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
print(t1 - t0, (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime))
"""


def threads_experiment(repeats: int, steps: int) -> list[dict]:
    """Wall and CPU seconds of ``steps`` training steps per (model, threads, wait policy, competitor)."""
    rows = []
    for rep in range(repeats):
        for compete in (False, True):
            with competitor(compete):
                for kind in ("lstm", "conv"):
                    for threads, policy in ((1, "default"), (2, "default"), (2, "PASSIVE")):
                        env = clean_env()
                        if policy == "PASSIVE":
                            env["OMP_WAIT_POLICY"] = "PASSIVE"
                        before = load()
                        out = subprocess.run([sys.executable, "-c", STEP_LOOP, kind, str(steps), str(threads)],
                                             env=env, capture_output=True, text=True, check=True).stdout.split()
                        row = {"repeat": rep, "competitor": "nice -n 19 loop" if compete else "none",
                               "model": kind, "threads": threads, "omp_wait_policy": policy,
                               "steps": steps, "wall_s": round(float(out[0]), 2), "cpu_s": round(float(out[1]), 2),
                               "load_before": before, "load_after": load()}
                        print(row, flush=True)
                        rows.append(row)
    return rows


def write_csv(rows: list[dict], name: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conditions", nargs="+", choices=["idle", "compete"], default=["idle", "compete"])
    p.add_argument("--jobs", type=int, default=2, help="make run JOBS= (default %(default)s)")
    p.add_argument("--keep", type=Path, default=None, help="copy each run's outputs (without checkpoints) here")
    p.add_argument("--quick", action="store_true",
                   help="every script with --quick: checks the plumbing in minutes, times mean nothing")
    p.add_argument("--threads-experiment", action="store_true", help="time the fixed step loop instead")
    p.add_argument("--repeats", type=int, default=2, help="threads experiment: repeats (default %(default)s)")
    p.add_argument("--steps", type=int, default=60, help="threads experiment: steps per run (default %(default)s)")
    args = p.parse_args(argv)
    if args.threads_experiment:
        rows = threads_experiment(args.repeats, args.steps)
        print(format_table(rows, floatfmt=".3g"))
        print(f"wrote {write_csv(rows, 'threads_experiment.csv')}")
        return 0
    rows = []
    for condition in args.conditions:
        rows += time_make_run(condition, args.jobs, args.keep, args.quick)
    print(format_table(rows, floatfmt=".4g"))
    totals = {r["condition"]: r["wall_s"] for r in rows if r["step"].startswith("TOTAL")}
    checks = []
    if "idle" in totals:
        checks.append(f"total idle {totals['idle']:.0f} s (target <= {TOTAL_IDLE_S} s): "
                      f"{'met' if totals['idle'] <= TOTAL_IDLE_S else 'MISSED'}")
        slow = [r["step"] for r in rows if r["condition"] == "idle" and not r["step"].startswith("TOTAL")
                and r["wall_s"] > STEP_IDLE_S]
        checks.append(f"steps over {STEP_IDLE_S} s idle: {', '.join(slow) or 'none'}")
    if "idle" in totals and "compete" in totals:
        ratio = totals["compete"] / totals["idle"]
        checks.append(f"competing / idle {ratio:.2f} (target <= {COMPETE_FACTOR}): "
                      f"{'met' if ratio <= COMPETE_FACTOR else 'MISSED'}")
    print("\n".join(checks))
    print(f"wrote {write_csv(rows, 'make_run_time.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
