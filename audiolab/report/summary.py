"""The end-of-run summary: one row per script of ``make run``, printed and opening the report.

Usage::

    python -m audiolab.report.summary [--outputs outputs]          # print the table
    python -m audiolab.report.summary time NAME -- CMD [ARGS...]  # run CMD, log it, record its time

``time`` is how the Makefile runs each script: the script's output goes to
``outputs/.logs/NAME.log`` (its last lines are shown if it fails), and its wall and CPU
time and exit status to ``outputs/.times/NAME.json``; the console gets one line when it
starts and one when it ends, so two scripts can run side by side (``make run`` uses two
jobs) without interleaving their progress bars.

The table's columns: question, script, data (real, synthetic, or the task's own data),
headline metric beside its anchor or target (from the script's ``anchors.json``), wall
time. A missing or unreadable ``metrics.json`` shows as "not run" or "broken: <reason>".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

LOGS, TIMES = ".logs", ".times"


@dataclass(frozen=True)
class Run:
    """One step of ``make run``.

    Attributes:
        name: the step's name (Makefile target, log and time file name).
        script: the script file it runs; ``args`` its arguments.
        folder: its output folder under ``outputs/`` (the report section's anchor).
        question: the assignment question it answers (the report's section title).
        headline: metric keys shown in the summary, first found wins per entry.
        task_data: the task defines its own data (Q1's sinusoids, the exam's random
            tensors), so "synthetic" there is not a stand-in for a real corpus.
    """
    name: str
    script: str
    folder: str
    question: str
    headline: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    task_data: bool = False


_DENOISE = ("test_snr_improvement_db_input_0db", "test_snr_db", "test_pesq")
RUNS: tuple[Run, ...] = (
    Run("q1_generate", "q1_generate.py", "q1_generate", "Q1", ("n_train", "n_test"), task_data=True),
    Run("q1_plot", "q1_plot.py", "q1_plot", "Q1", ("peaks_match_info",), task_data=True),
    Run("q1_train_lstm", "q1_train_lstm.py", "q1_train_lstm", "Q1", ("test_si_snr_db",), task_data=True),
    Run("q2_ctc", "q2_ctc.py", "q2_ctc", "Q2 (i)-(ii)", ("test_cer", "max_abs_grad_diff_vs_torch")),
    Run("q2_compare", "q2_compare.py", "q2_compare", "Q2 (i)-(ii)", ("loss_ours", "loss_torch", "max_rel_loss_diff"),
        task_data=True),
    Run("q2_multitask", "q2_multitask.py", "q2_multitask", "Q2 (iii)", ("test_cer", "test_emotion_accuracy")),
    Run("hw_cnn1d", "hw_cnn1d.py", "hw_cnn1d", "Denoising", _DENOISE),
    Run("hw_cnn2d", "hw_cnn2d.py", "hw_cnn2d", "Denoising", _DENOISE),
    Run("vae_bss_images", "vae_bss.py", "vae_bss", "VAE BSS", ("test_psnr_db_mean",), args=("images",)),
    Run("vae_bss_music", "vae_bss.py", "vae_bss", "VAE BSS", ("vocals_gnsdr_db",), args=("music",)),
    Run("speechcommands_rnn", "speechcommands_rnn.py", "speechcommands_rnn", "Keywords",
        ("test_accuracy_lstm", "test_accuracy_cnn_lstm")),
)
QUESTIONS: tuple[str, ...] = tuple(dict.fromkeys(r.question for r in RUNS))


# ----------------------------------------------------------------- reading outputs
#: the largest metrics.json / anchors.json / timing record read (a run writes a few KiB)
MAX_JSON_BYTES = 16 << 20


def read_json_checked(path: Path, kind: type) -> tuple[Any, str | None]:
    """Read ``path`` as JSON of type ``kind`` (dict or list); return ``(value, None)`` or ``(None, why)``.

    Never raises for a bad file: a missing file gives ``(None, "missing")``; bytes that
    are not UTF-8, text that is not JSON, JSON nested too deeply for the parser, a file over
    :data:`MAX_JSON_BYTES` or one that is not a regular file (a link to ``/dev/zero``), or
    JSON of another type give a short reason (docs/ARCHITECTURE.md, "Rules").
    """
    try:
        if not path.is_file():  # a link to /dev/zero or a FIFO would never end
            return (None, "missing") if not path.exists() else (None, f"{path.name} is not a regular file")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        return None, "missing"
    except OSError as err:
        return None, f"cannot read {path.name}: {err.strerror or err}"
    if len(raw) > MAX_JSON_BYTES:
        return None, f"{path.name} is larger than {MAX_JSON_BYTES >> 20} MiB"
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, f"{path.name} is not UTF-8 text"
    except json.JSONDecodeError as err:
        return None, f"{path.name} is not valid JSON ({err.msg}, line {err.lineno})"
    except RecursionError:
        return None, f"{path.name} is nested too deeply"
    if not isinstance(value, kind):
        return None, f"{path.name} holds a JSON {type(value).__name__}, not a {kind.__name__}"
    return value, None


def read_anchors(folder: Path) -> tuple[list[dict], str | None]:
    """``anchors.json`` as a list of ``{"metric", "anchor", "source"}`` dicts; entries of another shape are dropped."""
    anchors, err = read_json_checked(folder / "anchors.json", list)
    if anchors is None:
        return [], None if err == "missing" else err
    return [a for a in anchors if isinstance(a, dict) and isinstance(a.get("metric"), str)], None


def fmt_value(value: Any) -> str:
    """A metric value for a table cell: 4 significant digits, ``n/a`` for None/NaN/inf."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "n/a"
    if value is None:
        return "n/a"
    return str(value)


def fmt_seconds(seconds: float | None) -> str:
    """``"2 min 05 s"`` / ``"42 s"``; ``""`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def headline_cells(run: Run, metrics: dict, anchors: list[dict]) -> tuple[str, str]:
    """``("key value; key value", "anchor (source); ...")`` for the run's headline keys present in ``metrics``."""
    keys = [k for k in run.headline if k in metrics]
    if not keys:  # unknown layout: first numeric metric, so the row is never empty
        keys = [k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)][:1]
    ours = "; ".join(f"{k} {fmt_value(metrics.get(k))}" for k in keys)
    marks = [f"{fmt_value(a.get('anchor'))} ({a.get('source', '')})" for k in keys for a in anchors
             if a.get("metric") == k]
    return ours, "; ".join(marks)


def data_kind(run: Run, metrics: dict) -> str:
    """``real``, ``synthetic`` (a stand-in for a real corpus) or ``task data`` (the task's own)."""
    source = metrics.get("data_source")
    if run.task_data and source != "real":
        return "task data"
    return str(source) if source in ("real", "synthetic") else "unknown"


def read_time(outputs: Path, name: str) -> dict:
    """The ``time`` record of step ``name`` (``wall_s``, ``cpu_s``, ``returncode``), ``{}`` if none or broken."""
    record, _ = read_json_checked(outputs / TIMES / f"{name}.json", dict)
    return record or {}


def summary_rows(outputs: str | Path = "outputs", runs: tuple[Run, ...] = RUNS) -> list[dict]:
    """One dict per step: question, script, folder, data, headline, anchor, wall_s, cpu_s, status.

    ``status`` is ``ok``, ``not run``, ``failed (exit N)`` or ``broken: <reason>``.
    """
    outputs = Path(outputs)
    rows = []
    for run in runs:
        folder = outputs / run.folder
        metrics, err = read_json_checked(folder / "metrics.json", dict)
        anchors, anchor_err = read_anchors(folder)
        timing = read_time(outputs, run.name)
        rc = timing.get("returncode")
        row = {"name": run.name, "question": run.question, "script": " ".join((run.script, *run.args)),
               "folder": run.folder, "data": "", "headline": "", "anchor": "", "wall_s": timing.get("wall_s"),
               "cpu_s": timing.get("cpu_s"), "started_unix": timing.get("started_unix")}
        if isinstance(rc, int) and rc != 0:
            row["status"] = f"failed (exit {rc})"
        elif metrics is None:
            row["status"] = "not run" if err == "missing" else f"broken: {err}"
        else:
            row["status"] = "ok" if anchor_err is None else f"broken: {anchor_err}"
        if metrics is not None:
            row["data"] = data_kind(run, metrics)
            row["headline"], row["anchor"] = headline_cells(run, metrics, anchors)
        rows.append(row)
    return rows


def format_summary(rows: list[dict]) -> str:
    """The plain-text table ``make run`` prints, with the total wall time."""
    table = [{"question": r["question"], "script": r["script"], "data": r["data"] or r["status"],
              "headline": r["headline"] if r["status"] == "ok" else r["status"],
              "anchor / target": r["anchor"], "wall": fmt_seconds(r["wall_s"])} for r in rows]
    columns = list(table[0]) if table else []
    widths = {c: max(len(c), *(len(str(t[c])) for t in table)) for c in columns}
    widths["anchor / target"] = min(widths.get("anchor / target", 0), 60)
    lines = ["  ".join(c.ljust(widths[c]) for c in columns), "  ".join("-" * widths[c] for c in columns)]
    for t in table:
        cells = [str(t[c]) if len(str(t[c])) <= widths[c] else str(t[c])[:widths[c] - 1] + "…" for c in columns]
        lines.append("  ".join(v.ljust(widths[c]) for v, c in zip(cells, columns)))
    lines.append(total_line(rows))
    return "\n".join(lines)


def total_line(rows: list[dict]) -> str:
    """``"wall clock 12 min 03 s from the first start to the last end; sum of the steps 20 min 10 s"``."""
    timed = [r for r in rows if isinstance(r.get("wall_s"), (int, float))]
    total = sum(r["wall_s"] for r in timed)
    spans = [(r["started_unix"], r["started_unix"] + r["wall_s"]) for r in timed
             if isinstance(r.get("started_unix"), (int, float))]
    clock = max(e for _, e in spans) - min(s for s, _ in spans) if spans else None
    text = f"sum of the steps {fmt_seconds(total) or '0 s'}"
    return f"wall clock {fmt_seconds(clock)} from the first start to the last end; {text}" if clock else text


# ------------------------------------------------------------------ timing a step
def time_step(outputs: Path, name: str, cmd: list[str], tail: int = 25,
              clock: Callable[[], float] = time.perf_counter) -> int:
    """Run ``cmd`` with its output in ``outputs/.logs/<name>.log``; record its time; return its exit status.

    Records ``{"name", "cmd", "wall_s", "cpu_s", "returncode", "started_unix"}`` (seconds;
    CPU is user + system of the child and its children) in ``outputs/.times/<name>.json``.
    """
    (outputs / LOGS).mkdir(parents=True, exist_ok=True)
    (outputs / TIMES).mkdir(parents=True, exist_ok=True)
    log = outputs / LOGS / f"{name}.log"
    print(f">>> {name}: {' '.join(cmd)}  (log: {log})", flush=True)
    started, t0 = time.time(), clock()
    with open(log, "wb") as fh:
        try:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
        except OSError as err:  # a missing or non-executable command: one sentence, exit 2
            print(f"error: cannot run {cmd[0]!r}: {err.strerror or err}", file=sys.stderr, flush=True)
            return 2
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except KeyboardInterrupt:
            proc.wait()
            raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = clock() - t0
    cpu = usage.ru_utime + usage.ru_stime
    record = {"name": name, "cmd": cmd, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
              "returncode": proc.returncode, "started_unix": round(started, 2)}
    tmp = outputs / TIMES / f".{name}.json.tmp"
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(outputs / TIMES / f"{name}.json")
    lines = log.read_bytes().decode("utf-8", "replace").replace("\r", "\n").splitlines()
    lines = [ln for ln in lines if ln.strip()]
    if proc.returncode == 0:
        print(f"<<< {name}: done in {fmt_seconds(wall)} (CPU {fmt_seconds(cpu)}): "
              f"{lines[-1] if lines else ''}", flush=True)
    else:
        print(f"<<< {name}: FAILED (exit {proc.returncode}) after {fmt_seconds(wall)}; last lines of {log}:",
              flush=True)
        print("\n".join("    " + ln for ln in lines[-tail:]), flush=True)
    return proc.returncode


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "time":
        if "--" not in argv or argv.index("--") != 2 or len(argv) < 4:
            print("error: usage: python -m audiolab.report.summary time NAME -- CMD [ARGS...]", file=sys.stderr)
            return 2
        outputs = Path(os.environ.get("AUDIOLAB_OUTPUTS", "outputs"))
        return time_step(outputs, argv[1], argv[3:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outputs", type=Path, default=Path("outputs"), help="outputs folder (default %(default)s)")
    args = parser.parse_args(argv)
    rows = summary_rows(args.outputs)
    print(format_summary(rows))
    return 0 if all(r["status"] in ("ok", "not run") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
