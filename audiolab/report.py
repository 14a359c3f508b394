"""Build ``outputs/report.html``: one page with every script's metrics, figures and audio.

Usage::

    python -m audiolab.report [--outputs outputs] [--max-audio 12] [--max-figures 24]

Each ``outputs/<script>/`` folder becomes a section: its ``metrics.json`` as a table
(with ``anchors.json``, if present, shown beside our numbers), its PNG figures and an
``<audio>`` player per WAV. Scripts appear here just by writing their outputs the
conventional way; nothing is registered. Paths in the page are relative, so the
``outputs/`` folder can be zipped and opened elsewhere.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import sys
from pathlib import Path


SCRIPT_ORDER = ["q1_generate", "q1_plot", "q1_train_lstm", "q2_ctc", "q2_compare", "q2_multitask",
                "hw_cnn1d", "hw_cnn2d", "vae_bss", "speechcommands_rnn"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
h1{border-bottom:2px solid #444} h2{margin-top:2.2em;border-bottom:1px solid #aaa}
table{border-collapse:collapse;margin:.6em 0} td,th{border:1px solid #ccc;padding:.25em .6em;font-size:.9em}
th{background:#f0f0f0;text-align:left} td.num{text-align:right;font-family:monospace}
.fig{display:inline-block;margin:.4em;vertical-align:top;max-width:100%} .fig img{max-width:560px;border:1px solid #ddd}
.fig p,.aud p{font-size:.8em;margin:.2em 0} .aud{display:inline-block;margin:.4em 1em .4em 0}
.synthetic{background:#fff3cd;border:1px solid #e0c060;padding:.5em;margin:.5em 0}
.bad{color:#a00} details{margin:.4em 0}
"""


def _fmt(value) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4g}"
    if value is None:
        return "n/a"
    return html.escape(str(value))


def _section(folder: Path, root: Path, max_audio: int, max_figures: int) -> str:
    parts = [f"<h2 id='{html.escape(folder.name)}'>{html.escape(folder.name)}</h2>"]
    metrics_path = folder / "metrics.json"
    metrics: dict = {}
    if metrics_path.exists():
        try:
            metrics = json.loads(metrics_path.read_text())
        except json.JSONDecodeError as err:
            parts.append(f"<p class='bad'>metrics.json is broken: {html.escape(str(err))}</p>")
    if metrics.get("data_source") == "synthetic":
        parts.append("<div class='synthetic'>Synthetic demo data (dataset "
                     f"<b>{html.escape(str(metrics.get('dataset')))}</b>): these numbers show the pipeline "
                     "works, not how it does on real audio.</div>")
    anchors = []
    if (folder / "anchors.json").exists():
        try:
            anchors = json.loads((folder / "anchors.json").read_text())
        except json.JSONDecodeError:
            anchors = []
    if metrics:
        by_metric = {}
        for a in anchors:
            by_metric.setdefault(a.get("metric"), []).append(a)
        rows = []
        for key, value in metrics.items():
            if key == "config" or isinstance(value, (dict, list)):
                continue
            anchor = "; ".join(f"{_fmt(a.get('anchor'))} ({html.escape(str(a.get('source', '')))})"
                               for a in by_metric.get(key, []))
            cls = " class='num'" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
            rows.append(f"<tr><td>{html.escape(key)}</td><td{cls}>{_fmt(value)}</td><td>{anchor}</td></tr>")
        parts.append("<table><tr><th>metric</th><th>ours</th><th>anchor / target</th></tr>" + "".join(rows)
                     + "</table>")
        if isinstance(metrics.get("config"), dict):
            cfg = html.escape(json.dumps(metrics["config"], indent=1))
            parts.append(f"<details><summary>config</summary><pre>{cfg}</pre></details>")
    figures = sorted(folder.rglob("*.png"))
    for png in figures[:max_figures]:
        rel = png.relative_to(root).as_posix()
        parts.append(f"<div class='fig'><img src='{html.escape(rel)}' alt='{html.escape(png.name)}'>"
                     f"<p>{html.escape(png.relative_to(folder).as_posix())}</p></div>")
    if len(figures) > max_figures:
        parts.append(f"<p>… and {len(figures) - max_figures} more figures in {html.escape(folder.name)}/</p>")
    wavs = sorted(folder.rglob("*.wav"))
    if wavs:
        parts.append("<h3>audio</h3>")
    for wav in wavs[:max_audio]:
        rel = wav.relative_to(root).as_posix()
        parts.append(f"<div class='aud'><p>{html.escape(wav.relative_to(folder).as_posix())}</p>"
                     f"<audio controls preload='none' src='{html.escape(rel)}'></audio></div>")
    if len(wavs) > max_audio:
        parts.append(f"<p>… and {len(wavs) - max_audio} more WAV files in {html.escape(folder.name)}/</p>")
    if len(parts) == 1:
        parts.append("<p>(no metrics, figures or audio yet)</p>")
    return "\n".join(parts)


def build_report(outputs: str | Path = "outputs", max_audio: int = 12, max_figures: int = 24) -> Path:
    """Write ``<outputs>/report.html`` from whatever script outputs exist; return its path.

    Raises:
        FileNotFoundError: the outputs folder does not exist.
    """
    root = Path(outputs)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist: run the scripts first (make run)")
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    order = {name: i for i, name in enumerate(SCRIPT_ORDER)}
    folders.sort(key=lambda p: (order.get(p.name, len(order)), p.name))
    toc = " · ".join(f"<a href='#{html.escape(p.name)}'>{html.escape(p.name)}</a>" for p in folders)
    body = "\n".join(_section(p, root, max_audio, max_figures) for p in folders)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>audiolab report</title>"
            f"<style>{_STYLE}</style></head><body><h1>audiolab report</h1><p>{toc or 'no outputs yet'}</p>"
            f"{body}</body></html>\n")
    path = root / "report.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page)
    tmp.replace(path)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outputs", type=Path, default=Path("outputs"), help="outputs folder (default %(default)s)")
    parser.add_argument("--max-audio", type=int, default=12, help="audio players per script (default %(default)s)")
    parser.add_argument("--max-figures", type=int, default=24, help="figures per script (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        path = build_report(args.outputs, args.max_audio, args.max_figures)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
