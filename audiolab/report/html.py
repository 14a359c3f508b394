"""Build ``outputs/report.html``: the run's summary, then one section per assignment question.

Usage::

    python -m audiolab.report [--outputs outputs] [--max-audio 12] [--max-figures 24]

The page opens with the summary table ``make run`` prints (``audiolab.report.summary``:
question, script, data real/synthetic/task data, headline beside its anchor or target,
wall time), each row linking to its section. Each section answers its question's parts
in order, the key figure and numbers first; the rest of the figures and the audio follow,
and provenance (dataset, commit, device, versions, every metric, ``config``) is folded
into one ``<details>``. A folder with a missing, non-UTF-8, malformed or wrongly shaped
``metrics.json`` / ``anchors.json`` is shown as broken and the page goes on. Folders
that no question claims appear at the end under "Other outputs". Paths in the page are
relative, so the ``outputs/`` folder can be zipped and opened elsewhere.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from audiolab.report.summary import RUNS, fmt_seconds, fmt_value, read_anchors, read_json_checked, summary_rows


@dataclass(frozen=True)
class Part:
    """One part of a question: its label, the output folder that answers it, the key
    figure(s) (glob patterns, first match each) and the key metric keys."""
    label: str
    folder: str
    figures: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    """A question: anchor id, title and its parts in the assignment's order."""
    id: str
    title: str
    parts: tuple[Part, ...]

    @property
    def folders(self) -> list[str]:
        return list(dict.fromkeys(p.folder for p in self.parts))


_DENOISE_KEYS = ("test_snr_improvement_db_input_0db", "test_snr_db", "baseline_gating_test_snr_db", "test_pesq",
                 "baseline_gating_test_pesq", "test_stoi", "test_pesq_input_0db", "test_stoi_input_0db",
                 "oracle_irm_test_pesq_input_0db", "oracle_irm_test_stoi_input_0db", "train_seconds")
SECTIONS: tuple[Section, ...] = (
    Section("q1", "Question 1: sinusoid source separation", (
        Part("Data: sinusoid pairs below / above 8 kHz and their mixtures", "q1_generate", (),
             ("n_train", "n_test", "sample_rate_hz", "n_samples", "f1_max_hz", "f2_min_hz")),
        Part("(i) Spectrograms of source 1, source 2 and the mixture", "q1_plot", ("example_*_all.png",),
             ("f1_hz", "peak_source1_hz", "f2_hz", "peak_source2_hz", "peaks_match_info")),
        Part("(ii) LSTM separator: test SI-SNR", "q1_train_lstm", ("curves.png",),
             ("test_si_snr_db", "test_si_snr_db_source1", "test_si_snr_db_source2", "test_si_snr_db_min",
              "train_seconds")),
        Part("(iii) Reconstructed vs true sources", "q1_train_lstm", ("spectrograms/*.png",), ()),
    )),
    Section("q2ctc", "Question 2 (i)-(ii): CTC loss from scratch", (
        Part("(i) CTC loss (forward-backward) on a demo task", "q2_ctc", ("training_curves.png", "alignment.png"),
             ("test_cer", "test_sequence_accuracy", "max_abs_loss_diff_vs_torch", "max_abs_grad_diff_vs_torch")),
        Part("(ii) Ours vs torch.nn.functional.ctc_loss on the exam's random tensors", "q2_compare",
             ("alignment.png",),
             ("loss_ours", "loss_torch", "max_abs_loss_diff", "max_rel_loss_diff", "max_abs_grad_diff",
              "fwd_bwd_time_ratio")),
    )),
    Section("q2multitask", "Question 2 (iii): multi-task ASR + emotion", (
        Part("ASR (CTC) and emotion heads on one encoder", "q2_multitask",
             ("confusion_matrix.png", "training_curves.png"),
             ("test_cer", "test_wer", "test_emotion_accuracy", "emotion_chance_accuracy", "test_emotion_macro_f1",
              "train_seconds")),
    )),
    Section("denoise", "Speech denoising: 1-D and 2-D CNNs on STFT magnitudes", (
        Part("1-D CNN (frequency bins as channels)", "hw_cnn1d",
             ("spectrograms_test.png", "quality_vs_input.png", "snr_vs_input.png"), _DENOISE_KEYS),
        Part("2-D CNN (time-frequency patches)", "hw_cnn2d",
             ("spectrograms_test.png", "quality_vs_input.png", "snr_vs_input.png"), _DENOISE_KEYS),
    )),
    Section("vae", "Blind source separation with VAEs", (
        Part("Images: MNIST + Fashion-MNIST mixtures", "vae_bss", ("images/grid_final.png", "images/*.png"),
             ("test_psnr_db_mean", "test_psnr_db_mnist", "test_psnr_db_fashion", "test_psnr_db_mixture",
              "test_ssim_mnist", "test_ssim_fashion", "images_train_seconds")),
        Part("Music: singing voice vs accompaniment", "vae_bss", ("music/spectrograms_*.png", "music/*.png"),
             ("vocals_gnsdr_db", "accompaniment_gnsdr_db", "vocals_gsir_db", "vocals_gsar_db",
              "music_train_seconds")),
    )),
    Section("kws", "Keyword classification: RNN / LSTM / CNN-LSTM", (
        Part("Test accuracy per model", "speechcommands_rnn", ("comparison.png", "confusion_all.png"),
             tuple(f"test_accuracy_{m}" for m in ("rnn", "lstm", "bilstm", "gru", "cnn_lstm", "attn_lstm"))),
        Part("Learning curve (`train --learning-curve 0.25,0.5,1`): accuracy vs training clips", "speechcommands_rnn",
             ("learning_curve.png",), ()),
    )),
)

_PROVENANCE = ("dataset", "data_source", "seed", "git_commit", "device", "torch_version")

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{border-bottom:2px solid #444} h2{margin-top:2.2em;border-bottom:1px solid #aaa} h3{margin-top:1.4em}
table{border-collapse:collapse;margin:.6em 0} td,th{border:1px solid #ccc;padding:.25em .6em;font-size:.9em;
vertical-align:top} th{background:#f0f0f0;text-align:left} td.num{text-align:right;font-family:monospace}
table.summary td{font-size:.85em} tr.fail td{background:#fde8e8}
.fig{display:inline-block;margin:.4em;vertical-align:top;max-width:100%} .fig img{max-width:560px;border:1px solid #ddd}
.key img{max-width:100%} .fig p,.aud p{font-size:.8em;margin:.2em 0} .aud{display:inline-block;margin:.4em 1em .4em 0}
.synthetic{background:#fff3cd;border:1px solid #e0c060;padding:.5em;margin:.5em 0}
.bad{color:#a00;font-weight:bold} details{margin:.8em 0} summary{cursor:pointer;color:#444}
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


class _Folder:
    """One ``outputs/<name>/`` folder, read once, never raising for bad content."""

    def __init__(self, root: Path, name: str):
        self.name, self.path = name, root / name
        self.exists = self.path.is_dir()
        self.metrics, err = read_json_checked(self.path / "metrics.json", dict)
        self.problem = None if err in (None, "missing") else err
        self.anchors, anchor_err = read_anchors(self.path)
        self.problem = self.problem or anchor_err
        self.metrics = self.metrics or {}
        self.shown: set[Path] = set()

    def anchor_text(self, key: str) -> str:
        return "; ".join(f"{fmt_value(a.get('anchor'))} ({_e(a.get('source', ''))})"
                         for a in self.anchors if a.get("metric") == key)

    def metric_table(self, keys) -> str:
        rows = []
        for key in keys:
            if key not in self.metrics or isinstance(self.metrics[key], (dict, list)):
                continue
            value = self.metrics[key]
            cls = " class='num'" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
            rows.append(f"<tr><td>{_e(key)}</td><td{cls}>{_e(fmt_value(value))}</td>"
                        f"<td>{self.anchor_text(key)}</td></tr>")
        if not rows:
            return ""
        return "<table><tr><th>metric</th><th>ours</th><th>anchor / target</th></tr>" + "".join(rows) + "</table>"


def _figure(png: Path, root: Path, folder: Path, key: bool = False) -> str:
    rel = png.relative_to(root).as_posix()
    return (f"<div class='fig{' key' if key else ''}'><img src='{_e(rel)}' alt='{_e(png.name)}'>"
            f"<p>{_e(png.relative_to(folder).as_posix())}</p></div>")


def _banner(folder: _Folder) -> str:
    """The synthetic-data banner, only where the data stands in for a real corpus."""
    runs = [r for r in RUNS if r.folder == folder.name]
    if folder.metrics.get("data_source") != "synthetic" or (runs and all(r.task_data for r in runs)):
        return ""
    return ("<div class='synthetic'>Synthetic demo data (dataset "
            f"<b>{_e(folder.metrics.get('dataset'))}</b>) stands in for a real corpus here: these numbers show "
            "the method works, not how it does on real audio. Point <code>--data-root</code> at the real "
            "data for real numbers.</div>")


def _part(part: Part, folder: _Folder, root: Path, first_of_folder: bool, part_id: str) -> str:
    out = [f"<h3 id='{_e(part_id)}'>{_e(part.label)}</h3>"]
    if first_of_folder:
        out.append(f"<p id='{_e(folder.name)}' style='font-size:.85em;color:#555'>from "
                   f"<code>{_e(folder.name)}/</code></p>")
        if folder.problem:
            out.append(f"<p class='bad'>{_e(folder.name)} is broken: {_e(folder.problem)}</p>")
        out.append(_banner(folder))
    if not folder.exists:
        out.append(f"<p>(not run yet: no <code>{_e(folder.name)}/</code>)</p>")
        return "\n".join(out)
    out.append(folder.metric_table(part.keys))  # the key numbers, then the key figure
    for pattern in part.figures:
        match = next((p for p in sorted(folder.path.glob(pattern)) if p not in folder.shown), None)
        if match is not None:
            folder.shown.add(match)
            out.append(_figure(match, root, folder.path, key=True))
            break
    else:
        if part.figures and not part.keys:  # a figure-only part that this run did not make
            out.append(f"<p>(not made by this run: no <code>{_e(part.figures[0])}</code>)</p>")
    return "\n".join(out)


def _rest(folders: list[_Folder], root: Path, max_audio: int, max_figures: int) -> str:
    """The figures not shown as key figures, then the audio, of a section's folders."""
    out = []
    for folder in folders:
        if not folder.exists:
            continue
        figures = [p for p in sorted(folder.path.rglob("*.png")) if p not in folder.shown]
        wavs = sorted(folder.path.rglob("*.wav"))
        if not figures and not wavs:
            continue
        out.append(f"<h4>More from {_e(folder.name)}/</h4>")
        out += [_figure(p, root, folder.path) for p in figures[:max_figures]]
        if len(figures) > max_figures:
            out.append(f"<p>… and {len(figures) - max_figures} more figures in {_e(folder.name)}/</p>")
        for wav in wavs[:max_audio]:
            rel = wav.relative_to(root).as_posix()
            out.append(f"<div class='aud'><p>{_e(wav.relative_to(folder.path).as_posix())}</p>"
                       f"<audio controls preload='none' src='{_e(rel)}'></audio></div>")
        if len(wavs) > max_audio:
            out.append(f"<p>… and {len(wavs) - max_audio} more WAV files in {_e(folder.name)}/</p>")
    return "\n".join(out)


def _provenance(folders: list[_Folder], timing: dict[str, list[dict]]) -> str:
    """One <details> with each folder's provenance, every metric and its config."""
    out = []
    for folder in folders:
        if not folder.metrics and not folder.problem:
            continue
        out.append(f"<h4>{_e(folder.name)}/</h4>")
        if folder.problem:
            out.append(f"<p class='bad'>broken: {_e(folder.problem)}</p>")
        prov = "".join(f"<tr><td>{_e(k)}</td><td>{_e(fmt_value(folder.metrics.get(k)))}</td></tr>"
                       for k in _PROVENANCE if k in folder.metrics)
        prov += "".join(f"<tr><td>wall / CPU time ({_e(t['script'])})</td><td>{_e(fmt_seconds(t['wall_s']))} / "
                        f"{_e(fmt_seconds(t['cpu_s']))}</td></tr>" for t in timing.get(folder.name, [])
                        if t.get("wall_s") is not None)
        if prov:
            out.append(f"<table>{prov}</table>")
        keys = [k for k in folder.metrics if k not in _PROVENANCE and k != "config"]
        out.append(folder.metric_table(keys))
        if isinstance(folder.metrics.get("config"), dict):
            out.append(f"<pre>{_e(json.dumps(folder.metrics['config'], indent=1))}</pre>")
    if not out:
        return ""
    return "<details><summary>provenance, all metrics and config</summary>" + "\n".join(out) + "</details>"


def _summary_table(rows: list[dict], section_of: dict[str, str]) -> str:
    head = ("<table class='summary'><tr><th>question</th><th>script</th><th>data</th><th>headline (ours)</th>"
            "<th>anchor / target</th><th>wall time</th></tr>")
    body = []
    for r in rows:
        ok = r["status"] == "ok"
        href = f"#{section_of.get(r['folder'], r['folder'])}"
        body.append(f"<tr{'' if ok else ' class=fail'}><td>{_e(r['question'])}</td>"
                    f"<td><a href='{_e(href)}'>{_e(r['script'])}</a></td><td>{_e(r['data'] or '')}</td>"
                    f"<td>{_e(r['headline'] if ok else r['status'])}</td><td>{_e(r['anchor'])}</td>"
                    f"<td class='num'>{_e(fmt_seconds(r['wall_s']))}</td></tr>")
    return head + "".join(body) + "</table>"


def build_report(outputs: str | Path = "outputs", max_audio: int = 12, max_figures: int = 24) -> Path:
    """Write ``<outputs>/report.html`` from whatever script outputs exist; return its path.

    Raises:
        FileNotFoundError: the outputs folder does not exist.
    """
    from audiolab.report.summary import total_line

    root = Path(outputs)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist: run the scripts first (make run)")
    rows = summary_rows(root)
    timing: dict[str, list[dict]] = {}
    for r in rows:
        timing.setdefault(r["folder"], []).append(r)
    section_of = {f: s.id for s in SECTIONS for f in s.folders}
    cache: dict[str, _Folder] = {}

    def folder(name: str) -> _Folder:
        if name not in cache:
            cache[name] = _Folder(root, name)
        return cache[name]

    body = [f"<h2 id='summary'>Summary</h2>{_summary_table(rows, section_of)}<p>{_e(total_line(rows))}</p>"]
    for section in SECTIONS:
        seen: set[str] = set()
        parts = [f"<h2 id='{_e(section.id)}'>{_e(section.title)}</h2>"]
        for i, part in enumerate(section.parts, 1):
            parts.append(_part(part, folder(part.folder), root, part.folder not in seen, f"{section.id}-{i}"))
            seen.add(part.folder)
        folders = [folder(n) for n in section.folders]
        parts.append(_rest(folders, root, max_audio, max_figures))
        parts.append(_provenance(folders, timing))
        body.append("\n".join(parts))
    others = sorted(p.name for p in root.iterdir()
                    if p.is_dir() and not p.name.startswith(".") and p.name not in section_of)
    if others:
        body.append("<h2 id='other'>Other outputs</h2>")
        for name in others:
            f = folder(name)
            body.append(f"<h3 id='{_e(name)}'>{_e(name)}</h3>"
                        + (f"<p class='bad'>{_e(name)} is broken: {_e(f.problem)}</p>" if f.problem else "")
                        + _banner(f) + f.metric_table([k for k in f.metrics if k not in _PROVENANCE])
                        + _rest([f], root, max_audio, max_figures) + _provenance([f], timing))
    toc = " · ".join(["<a href='#summary'>Summary</a>"] + [f"<a href='#{_e(s.id)}'>{_e(s.title)}</a>"
                                                             for s in SECTIONS])
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>audiolab report</title>"
            f"<style>{_STYLE}</style></head><body><h1>audiolab report</h1><p>{toc}</p>"
            + "\n".join(body) + "</body></html>\n")
    path = root / "report.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
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
